#pragma once
/// @file
/// Logistic fits that map predictions onto the MOS scale before PLCC and RMSE (VQEG's 4- and
/// 5-parameter functions), by Levenberg–Marquardt on standardised data from several standard starts;
/// see docs/metrics.md ("Logistic fits").

#include <ohem/detail/logistic.hpp>
#include <ohem/detail/statistics.hpp>
#include <ohem/scores.hpp>
#include <ohem/version.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

OHEM_BEGIN_NAMESPACE

/// The logistic functions that map predictions onto the MOS scale before PLCC and RMSE.
enum class LogisticModel {
  /// f(x) = (β1 − β2) / (1 + exp(−(x − β3)/|β4|)) + β2.
  FourParameter,
  /// f(x) = β1·(0.5 − 1/(1 + exp(β2·(x − β3)))) + β4·x + β5 (VQEG; DBCNN's and UNIQUE's evaluation).
  FiveParameter,
};

/// Returns the model's name: "logistic4" or "logistic5".
inline const char* to_string(LogisticModel m) {
  return m == LogisticModel::FourParameter ? "logistic4" : "logistic5";
}

/// Returns the number of parameters of a logistic model (4 or 5).
inline int64_t num_params(LogisticModel m) {
  return m == LogisticModel::FourParameter ? 4 : 5;
}

/// Evaluates the logistic model with parameters β (4 or 5 values) at x.
///
/// Throws if β has the wrong number of values.
/// Example: `double y = ohem::logistic(ohem::LogisticModel::FourParameter, {5, 1, 0.5, 0.1}, 0.7);`
inline double logistic(LogisticModel model, const std::vector<double>& beta, double x) {
  TORCH_CHECK(static_cast<int64_t>(beta.size()) == num_params(model), "ohem::logistic: ", to_string(model),
              " takes ", num_params(model), " parameters, got ", beta.size());
  return model == LogisticModel::FourParameter ? detail::logistic_eval<4>(beta.data(), x, nullptr)
                                               : detail::logistic_eval<5>(beta.data(), x, nullptr);
}

/// Returns the data-driven initial parameters of a logistic fit (docs/metrics.md, "Initial values").
///
/// With m = mean(prediction), s = std(prediction) (ddof 0), hi/lo = max/min(mos) and σ = +1 if
/// PLCC(prediction, mos) ≥ 0 else −1:
/// 4p: β = (hi, lo, m, s), with hi and lo swapped when σ = −1;
/// 5p: β = (hi − lo, σ/s, m, 0, (hi + lo)/2): the curve starts as a centred, increasing (or decreasing)
/// S of the MOS range. Scale-free, unlike the VQEG code's β2 = min(mos).
/// Throws like `plcc`, and if the predictions are constant (no fit is possible).
/// Example: `auto b0 = ohem::logistic_initial_params(ohem::LogisticModel::FiveParameter, pred, mos);`
inline std::vector<double> logistic_initial_params(LogisticModel model, const ScoresRef& prediction,
                                                   const ScoresRef& mos) {
  detail::check_scores("ohem::logistic_initial_params", prediction, mos);
  const int64_t n = prediction.size();
  const double* x = prediction.data();
  TORCH_CHECK(!detail::is_constant(x, n), "ohem::logistic_initial_params: the predictions are constant (all ",
              x[0], "); a logistic fit needs varying predictions");
  const double sign = detail::pearson(x, mos.data(), n) >= 0 ? 1.0 : -1.0;
  const auto mx = detail::moments(x, n);  // scale-safe (no overflow near 1e300)
  const double m = mx.mean, s = mx.std;
  const auto mm = std::minmax_element(mos.data(), mos.data() + n);
  const double lo = *mm.first, hi = *mm.second;
  if (model == LogisticModel::FourParameter) {
    return sign > 0 ? std::vector<double>{hi, lo, m, s} : std::vector<double>{lo, hi, m, s};
  }
  return {hi - lo, sign / s, m, 0.0, 0.5 * (hi + lo)};
}

/// How a logistic fit ended.
enum class FitStatus {
  /// Levenberg–Marquardt met its convergence test (from the best start).
  Converged,
  /// The iteration limit was reached; the parameters are the last (best so far) iterate.
  IterationLimit,
  /// No logistic fit was possible, or none beat the least-squares straight line (the 4p curve's
  /// optimum then lies at infinity, where it becomes a line); see `LogisticFit::message`. The reported
  /// PLCC and RMSE are those of the line mos ≈ a·prediction + b.
  Fallback,
};

/// Returns the status's name as written in this header, e.g. "Converged".
inline const char* to_string(FitStatus s) {
  switch (s) {
    case FitStatus::Converged:
      return "Converged";
    case FitStatus::IterationLimit:
      return "IterationLimit";
    case FitStatus::Fallback:
      return "Fallback";
  }
  return "?";
}

/// Options of `fit_logistic`.
///
/// Example: `ohem::FitOptions().model(ohem::LogisticModel::FourParameter).max_iterations(1000)`
struct FitOptions {
  /// Which logistic function to fit. Default: the 5-parameter one (DBCNN's and UNIQUE's evaluation).
  TORCH_ARG(LogisticModel, model) = LogisticModel::FiveParameter;
  /// Maximum number of accepted Levenberg–Marquardt steps per start. Well-posed fits take 5–50; where
  /// the optimum lies at infinity (e.g. the 4p curve on a linear relation tends to a straight line) the
  /// cost keeps creeping down and the run ends with `FitStatus::IterationLimit`.
  TORCH_ARG(int64_t, max_iterations) = 200;
  /// Relative tolerance of the step and cost-reduction convergence tests.
  TORCH_ARG(double, tolerance) = 1e-10;
  /// One start (β in data coordinates, e.g. a previous fit's parameters) instead of the standard starts
  /// of `logistic_standard_starts`; the fit then runs from it alone.
  TORCH_ARG(std::vector<double>, initial) = {};
};

/// A fitted mapping from predictions to the MOS scale, with the PLCC and RMSE it gives.
struct LogisticFit {
  /// The logistic function that was fitted.
  LogisticModel model = LogisticModel::FiveParameter;
  /// How the fit ended; with `Fallback`, `params` are the line's {a, b}.
  FitStatus status = FitStatus::Fallback;
  /// Why the fit fell back or stopped early; empty when it converged.
  std::string message;
  /// The fitted β (4 or 5 values, data coordinates), or {a, b} of the fallback line mos ≈ a·x + b.
  std::vector<double> params;
  /// The start β of the run that ended best (empty when no fit was attempted).
  std::vector<double> initial;
  /// The name of that start (see `logistic_standard_starts`; "initial" for `FitOptions::initial`).
  std::string start;
  /// Accepted Levenberg–Marquardt steps of the run that ended best.
  int64_t iterations = 0;
  /// PLCC between the mapped predictions and the MOS (0 when the mapping is constant).
  double plcc = 0;
  /// RMSE between the mapped predictions and the MOS, on the MOS scale.
  double rmse = 0;

  /// Returns true unless the fit fell back to the straight line.
  bool ok() const { return status != FitStatus::Fallback; }
  /// Maps one prediction onto the MOS scale with the fitted function (or the fallback line).
  double operator()(double x) const {
    if (status == FitStatus::Fallback) return params.at(0) * x + params.at(1);
    return logistic(model, params, x);
  }
};

/// A named start of a logistic fit (β in data coordinates).
struct LogisticStart {
  std::string name;
  std::vector<double> params;
};

namespace detail {

/// A start in standardised coordinates.
template <int P>
struct StandardStart {
  const char* name;
  std::array<double, P> c;
};

/// The standard starts of a P-parameter fit in standardised coordinates (see
/// `logistic_standard_starts`); starts given in data coordinates that map to non-finite values are left
/// out.
template <int P>
std::vector<StandardStart<P>> standard_starts(const double* x, const double* y, int64_t n,
                                              const Standardization& st, const std::vector<double>& z,
                                              const std::vector<double>& w) {
  const auto mx = moments(x, n), my = moments(y, n);
  const auto mm = std::minmax_element(y, y + n);
  const double lo = *mm.first, hi = *mm.second;
  std::vector<StandardStart<P>> out;
  auto add_data = [&](const char* name, const std::array<double, P>& b) {
    const auto c = st.to_standard<P>(b.data());
    if (std::all_of(c.begin(), c.end(), [](double v) { return std::isfinite(v); })) out.push_back({name, c});
  };
  // "data" (logistic_initial_params) directly in standardised coordinates: (±1.., 0, 0, 1) shapes.
  const double sign = pearson(z.data(), w.data(), n) >= 0 ? 1.0 : -1.0;
  const double wlo = (lo - my.mean) / my.std, whi = (hi - my.mean) / my.std;
  if constexpr (P == 4) {
    out.push_back({"data", sign > 0 ? std::array<double, 4>{whi, wlo, 0.0, 1.0}
                                    : std::array<double, 4>{wlo, whi, 0.0, 1.0}});
    add_data("pyiqa", {hi, lo, mx.mean, mx.std / 4});
    add_data("common", {hi, lo, mx.mean, 0.5});
  } else {
    out.push_back({"data", {whi - wlo, sign, 0.0, 0.0, 0.5 * (whi + wlo)}});
    add_data("dbcnn", {10, 0, mx.mean, 0.1, 0.1});
    add_data("pyiqa", {10, 0, my.mean, 0.1, 0.1});
    const auto line = least_squares_line(z.data(), w.data(), n);
    out.push_back({"line", {0.0, 1.0, 0.0, line.a, line.b}});
  }
  out.push_back({"grid", grid_start<P>(z, w)});
  return out;
}

}  // namespace detail

/// Returns the standard starts `fit_logistic` runs from (docs/metrics.md, "Starts"), β in data
/// coordinates, with m = mean(prediction), s = std(prediction), hi/lo = max/min(mos):
/// 4p: "data" = `logistic_initial_params`; "pyiqa" = (hi, lo, m, s/4) (pyiqa's `fit_curve`);
///     "common" = (hi, lo, m, 0.5) (the start many IQA scripts pass to scipy's curve_fit);
/// 5p: "data" = `logistic_initial_params`; "dbcnn" = (10, 0, m, 0.1, 0.1) (DBCNN's and UNIQUE's
///     verify_performance.m); "pyiqa" = (10, 0, mean(mos), 0.1, 0.1) (pyiqa's `fit_curve`); "line" =
///     (0, 1/s, m, a, b), the least-squares line mos ≈ a·x + b, which the 5p function contains;
/// both: "grid" = the best point of a coarse search over the sigmoid's centre and slope, with the
///     parameters that enter linearly solved by least squares (see docs/metrics.md).
/// Starts whose standardised form is not finite (fixed numbers on data of extreme scale) are left out;
/// values may be infinite when the two scales differ by more than ~1e300.
/// Throws like `logistic_initial_params`, and if the MOS are constant.
/// Example: `for (auto& s : ohem::logistic_standard_starts(model, pred, mos)) print(s.name);`
inline std::vector<LogisticStart> logistic_standard_starts(LogisticModel model, const ScoresRef& prediction,
                                                           const ScoresRef& mos) {
  const auto data = logistic_initial_params(model, prediction, mos);
  const int64_t n = prediction.size();
  const double *x = prediction.data(), *y = mos.data();
  TORCH_CHECK(!detail::is_constant(y, n), "ohem::logistic_standard_starts: the MOS are constant (all ", y[0],
              ")");
  std::vector<double> z, w;
  const auto st = detail::Standardization::of(x, y, n, z, w);
  std::vector<LogisticStart> out;
  auto convert = [&](const auto& starts, auto tag) {
    constexpr int P = decltype(tag)::value;
    for (const auto& s : starts) {
      const auto b = st.from_standard<P>(s.c.data());
      out.push_back({s.name, std::string(s.name) == "data" ? data : std::vector<double>(b.begin(), b.end())});
    }
  };
  if (model == LogisticModel::FourParameter) {
    convert(detail::standard_starts<4>(x, y, n, st, z, w), std::integral_constant<int, 4>{});
  } else {
    convert(detail::standard_starts<5>(x, y, n, st, z, w), std::integral_constant<int, 5>{});
  }
  return out;
}

namespace detail {

/// The quality of a mapping given on standardised data: PLCC, and RMSE on the MOS scale.
inline void fit_quality(LogisticFit& fit, const std::vector<double>& mapped, const std::vector<double>& w,
                        double sy) {
  const int64_t n = static_cast<int64_t>(w.size());
  fit.plcc = pearson(mapped.data(), w.data(), n);
  fit.rmse = rms_difference(mapped.data(), w.data(), n) * sy;
}

/// The fallback: the least-squares line mos ≈ a·x + b (a = 0, b = mean(mos) if either side is constant).
inline LogisticFit fallback_line(LogisticModel model, const double* x, const double* y, int64_t n,
                                 std::string why) {
  LogisticFit fit;
  fit.model = model;
  fit.status = FitStatus::Fallback;
  fit.message = std::move(why);
  if (is_constant(x, n) || is_constant(y, n)) {
    const auto my = moments(y, n);
    fit.params = {0.0, my.mean};
    fit.plcc = 0;
    fit.rmse = my.std;
    return fit;
  }
  std::vector<double> z, w;
  const auto st = Standardization::of(x, y, n, z, w);
  const auto line = least_squares_line(z.data(), w.data(), n);
  const double a = line.a * st.sy / st.sx;
  fit.params = {a, st.my + st.sy * line.b - a * st.mx};
  std::vector<double> mapped(n);
  for (int64_t i = 0; i < n; ++i) mapped[i] = line.a * z[i] + line.b;
  fit_quality(fit, mapped, w, st.sy);
  return fit;
}

/// Iterations every start runs before only the best one continues (most well-posed fits end sooner).
constexpr int64_t kStartIterations = 40;

template <int P>
LogisticFit fit_logistic_impl(const double* x, const double* y, int64_t n, const FitOptions& options,
                              const std::vector<double>& initial) {
  constexpr LogisticModel model = P == 4 ? LogisticModel::FourParameter : LogisticModel::FiveParameter;
  std::vector<double> z, w;
  const auto st = Standardization::of(x, y, n, z, w);
  std::vector<StandardStart<P>> starts;
  if (initial.empty()) {
    starts = standard_starts<P>(x, y, n, st, z, w);
  } else {
    starts.push_back({"initial", st.to_standard<P>(initial.data())});
  }
  // Phase 1: every start runs up to kStartIterations steps; phase 2: the run with the lowest cost (the
  // earlier start on a tie) continues to max_iterations steps in all.
  const int64_t first =
      starts.size() == 1 ? options.max_iterations() : std::min(options.max_iterations(), kStartIterations);
  int best = -1;
  LogisticRun<P> best_run;
  for (size_t k = 0; k < starts.size(); ++k) {
    const auto& c = starts[k].c;
    if (!std::all_of(c.begin(), c.end(), [](double v) { return std::isfinite(v); })) continue;
    const auto run = run_logistic<P>(z, w, c, first, options.tolerance());
    if (run.end == LmEnd::Failed || !std::isfinite(run.cost)) continue;
    if (best < 0 || run.cost < best_run.cost) {
      best = static_cast<int>(k);
      best_run = run;
    }
  }
  if (best >= 0 && best_run.end == LmEnd::IterationLimit && best_run.iterations < options.max_iterations()) {
    auto more = run_logistic<P>(z, w, best_run.params, options.max_iterations() - best_run.iterations,
                                options.tolerance());
    if (more.end != LmEnd::Failed && more.cost <= best_run.cost) {
      more.iterations += best_run.iterations;
      best_run = more;
    }
  }
  if (best < 0) {
    return fallback_line(
        model, x, y, n,
        fmt::format("{} fit failed: non-finite cost or Jacobian at every start", to_string(model)));
  }
  std::vector<double> mapped(n);
  for (int64_t i = 0; i < n; ++i) mapped[i] = logistic_eval<P>(best_run.params.data(), z[i], nullptr);
  const auto with_start = [&](LogisticFit f) {
    const auto b0 = st.from_standard<P>(starts[best].c.data());
    f.initial.assign(b0.begin(), b0.end());
    f.start = starts[best].name;
    f.iterations = best_run.iterations;
    return f;
  };
  if (is_constant(mapped.data(), n)) {
    return with_start(
        fallback_line(model, x, y, n, fmt::format("{} fit is constant on the data", to_string(model))));
  }
  // The 5p function contains the line (and runs from it); the 4p one only tends to it at infinity.
  if constexpr (P == 4) {
    const auto line = least_squares_line(z.data(), w.data(), n);
    const double line_cost = 0.5 * accurate_sum(n, [&](int64_t i) {
                               return (line.a * z[i] + line.b - w[i]) * (line.a * z[i] + line.b - w[i]);
                             });
    if (line_cost < best_run.cost) {
      return with_start(fallback_line(
          model, x, y, n,
          fmt::format("no finite {} curve fits better than the least-squares line (after {} iterations from "
                      "the best start; the optimum lies at infinity, where the curve becomes a line): PLCC "
                      "and RMSE of the line",
                      to_string(model), best_run.iterations)));
    }
  }
  LogisticFit fit = with_start({});
  fit.model = model;
  fit.status = best_run.end == LmEnd::Converged ? FitStatus::Converged : FitStatus::IterationLimit;
  if (fit.status == FitStatus::IterationLimit) {
    fit.message = fmt::format("stopped after {} iterations without meeting the tolerance {}",
                              best_run.iterations, options.tolerance());
  }
  const auto b = st.from_standard<P>(best_run.params.data());
  fit.params.assign(b.begin(), b.end());
  fit_quality(fit, mapped, w, st.sy);
  return fit;
}

}  // namespace detail

/// Fits a logistic function mapping predictions onto the MOS scale by Levenberg–Marquardt (analytic
/// Jacobian) and returns the parameters and the PLCC and RMSE of the mapped predictions.
///
/// The fit runs on standardised data (mean 0, standard deviation 1 on both sides; β is mapped back),
/// so scores of any finite magnitude fit alike. It runs from every start of `logistic_standard_starts`
/// for up to 40 steps, then continues the run with the lowest squared error to `max_iterations` steps
/// in all (or runs from `options.initial()` alone): it never ends worse than any standard start after 40
/// steps, and the 5p fit never worse than the least-squares line (one of its starts).
/// Never returns NaN: when no fit is possible (fewer points than parameters + 1, constant predictions
/// or MOS, non-finite costs at every start, a constant fitted curve) or the 4p curve does not beat the
/// line, the result has status `Fallback`, a `message`, and the PLCC/RMSE of the least-squares line
/// (PLCC 0 and RMSE = std(mos) for constant predictions).
/// Throws if the sizes differ, if there are fewer than 2 scores, if a score is NaN or infinite, or if
/// `options.initial()` has the wrong size.
/// Example: `auto fit = ohem::fit_logistic(pred, mos); if (fit.ok()) use(fit.plcc, fit.rmse);`
inline LogisticFit fit_logistic(const ScoresRef& prediction, const ScoresRef& mos,
                                const FitOptions& options = {}) {
  detail::check_scores("ohem::fit_logistic", prediction, mos);
  const LogisticModel model = options.model();
  const int64_t n = prediction.size(), p = num_params(model);
  TORCH_CHECK(options.initial().empty() || static_cast<int64_t>(options.initial().size()) == p,
              "ohem::fit_logistic: FitOptions::initial has ", options.initial().size(), " values, ",
              to_string(model), " takes ", p);
  TORCH_CHECK(options.max_iterations() >= 0,
              "ohem::fit_logistic: FitOptions::max_iterations must be >= 0, got ", options.max_iterations());
  const double *x = prediction.data(), *y = mos.data();
  if (n < p + 1) {
    return detail::fallback_line(
        model, x, y, n, fmt::format("{} fit needs at least {} points, got {}", to_string(model), p + 1, n));
  }
  if (detail::is_constant(x, n)) {
    return detail::fallback_line(model, x, y, n, fmt::format("the predictions are constant (all {})", x[0]));
  }
  if (detail::is_constant(y, n)) {
    return detail::fallback_line(model, x, y, n, fmt::format("the MOS are constant (all {})", y[0]));
  }
  return model == LogisticModel::FourParameter
             ? detail::fit_logistic_impl<4>(x, y, n, options, options.initial())
             : detail::fit_logistic_impl<5>(x, y, n, options, options.initial());
}

OHEM_END_NAMESPACE
