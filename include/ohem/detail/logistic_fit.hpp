#pragma once
/// @file
/// Internals of the logistic fits (ohem/logistic_fit.hpp): the standard starts in standardised
/// coordinates, the fallback line, and the multi-start Levenberg–Marquardt driver.

#include <ohem/detail/logistic.hpp>
#include <ohem/detail/statistics.hpp>
#include <ohem/logistic_model.hpp>
#include <ohem/version.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

OHEM_BEGIN_NAMESPACE
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

namespace detail {

/// The quality of a mapping given on standardised data: PLCC, and RMSE on the MOS scale (point i counted
/// c[i] times if c is not null: see `counted_sum`).
inline void fit_quality(LogisticFit& fit, const std::vector<double>& mapped, const std::vector<double>& w,
                        double sy, const double* c = nullptr) {
  const int64_t n = static_cast<int64_t>(w.size());
  fit.plcc = counted_pearson(mapped.data(), w.data(), c, n);
  fit.rmse = counted_rms_difference(mapped.data(), w.data(), c, n) * sy;
}

/// The cost 0.5·Σ (a·z + b − w)² of the least-squares line of standardised data (point i counted c[i]
/// times if c is not null).
inline double line_cost(const std::vector<double>& z, const std::vector<double>& w, const double* c) {
  const int64_t n = static_cast<int64_t>(z.size());
  const auto line = least_squares_line(z.data(), w.data(), n, c);
  return 0.5 * counted_sum(c, n, [&](int64_t i) {
           return (line.a * z[i] + line.b - w[i]) * (line.a * z[i] + line.b - w[i]);
         });
}

/// Sets the status, message and data-coordinate β of a fit that ended at `run`, and its PLCC and RMSE
/// from `mapped`, the fitted curve at the standardised z (point i counted c[i] times if c is not null).
template <int P>
void finish_fit(LogisticFit& fit, const LogisticRun<P>& run, const Standardization& st,
                const FitOptions& options, const std::vector<double>& mapped, const std::vector<double>& w,
                const double* c) {
  fit.model = P == 4 ? LogisticModel::FourParameter : LogisticModel::FiveParameter;
  fit.status = run.end == LmEnd::Converged ? FitStatus::Converged : FitStatus::IterationLimit;
  if (fit.status == FitStatus::IterationLimit) {
    fit.message = fmt::format("stopped after {} iterations without meeting the tolerance {}", run.iterations,
                              options.tolerance());
  }
  const auto b = st.from_standard<P>(run.params.data());
  fit.params.assign(b.begin(), b.end());
  fit_quality(fit, mapped, w, st.sy, c);
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
    if (line_cost(z, w, nullptr) < best_run.cost) {
      return with_start(fallback_line(
          model, x, y, n,
          fmt::format("no finite {} curve fits better than the least-squares line (after {} iterations from "
                      "the best start; the optimum lies at infinity, where the curve becomes a line): PLCC "
                      "and RMSE of the line",
                      to_string(model), best_run.iterations)));
    }
  }
  LogisticFit fit = with_start({});
  finish_fit<P>(fit, best_run, st, options, mapped, w, nullptr);
  return fit;
}

/// The buffers of `fit_logistic_counted` (the standardised data and the fitted curve), which a caller
/// making many fits reuses.
struct CountedFitScratch {
  std::vector<double> z, w, mapped;
};

/// The fit `fit_logistic_impl` makes from `initial` alone (data coordinates) on data in which the n
/// distinct points (x[i], y[i]) appear c[i] ≥ 1 times each (a bootstrap resample; once each if c is
/// null), computed over the n
/// distinct points with the counts as weights: the same objective (Σ c·r²), standardisation and
/// Levenberg–Marquardt iterates as on the expanded data, up to rounding (the sums run in another order),
/// at the cost of the distinct points. Returns nothing where that fit would fall back to the line (too
/// few points, constant data, a failed start, a constant curve, a 4p curve worse than the line): the
/// caller fits the expanded data, whose fallback then gives the numbers and message. `scratch` (optional)
/// holds the standardised data and the fitted curve, reused from call to call (a bootstrap worker's).
template <int P>
std::optional<LogisticFit> fit_logistic_counted(const double* x, const double* y, const double* c, int64_t n,
                                                const FitOptions& options, const std::vector<double>& initial,
                                                CountedFitScratch* scratch = nullptr) {
  if (static_cast<int64_t>(initial.size()) != P || n < 1 || counted_total(c, n) < P + 1 ||
      is_constant(x, n) || is_constant(y, n)) {
    return std::nullopt;
  }
  CountedFitScratch local;
  CountedFitScratch& buffers = scratch ? *scratch : local;
  std::vector<double>& z = buffers.z;
  std::vector<double>& w = buffers.w;
  std::vector<double>& mapped = buffers.mapped;
  const auto st = Standardization::of(x, y, n, z, w, c);
  const auto start = st.to_standard<P>(initial.data());
  if (!std::all_of(start.begin(), start.end(), [](double v) { return std::isfinite(v); }))
    return std::nullopt;
  const auto run = run_logistic<P>(z, w, start, options.max_iterations(), options.tolerance(), c);
  if (run.end == LmEnd::Failed || !std::isfinite(run.cost)) return std::nullopt;
  mapped.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) mapped[i] = logistic_eval<P>(run.params.data(), z[i], nullptr);
  if (is_constant(mapped.data(), n)) return std::nullopt;
  if constexpr (P == 4) {
    if (line_cost(z, w, c) < run.cost) return std::nullopt;
  }
  LogisticFit fit;
  const auto b0 = st.from_standard<P>(start.data());  // as fit_logistic_impl reports its start
  fit.initial.assign(b0.begin(), b0.end());
  fit.start = "initial";
  fit.iterations = run.iterations;
  finish_fit<P>(fit, run, st, options, mapped, w, c);
  return fit;
}

}  // namespace detail

OHEM_END_NAMESPACE
