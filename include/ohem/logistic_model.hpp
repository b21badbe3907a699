#pragma once
/// @file
/// The logistic models that map predictions onto the MOS scale (VQEG's 4- and 5-parameter functions),
/// their data-driven initial parameters, and the options and result of a fit; `ohem/logistic_fit.hpp`
/// fits them.

#include <ohem/detail/logistic.hpp>
#include <ohem/detail/statistics.hpp>
#include <ohem/enum_names.hpp>
#include <ohem/scores.hpp>
#include <ohem/version.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

OHEM_BEGIN_NAMESPACE

/// The logistic functions that map predictions onto the MOS scale before PLCC and RMSE.
enum class LogisticModel {
  /// f(x) = (β1 − β2) / (1 + exp(−(x − β3)/|β4|)) + β2.
  FourParameter,
  /// f(x) = β1·(0.5 − 1/(1 + exp(β2·(x − β3)))) + β4·x + β5 (VQEG; DBCNN's and UNIQUE's evaluation).
  FiveParameter,
};

/// The names of each LogisticModel (`to_string`, `enum_key`, `enum_from_key`).
template <>
struct EnumNames<LogisticModel> {
  static constexpr EnumName<LogisticModel> values[] = {
      {LogisticModel::FourParameter, "logistic4", "logistic4"},
      {LogisticModel::FiveParameter, "logistic5", "logistic5"},
  };
};

/// Returns the model's name: "logistic4" or "logistic5".
inline const char* to_string(LogisticModel m) {
  return enum_name(m);
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

/// The names of each FitStatus (`to_string`, `enum_key`, `enum_from_key`).
template <>
struct EnumNames<FitStatus> {
  static constexpr EnumName<FitStatus> values[] = {
      {FitStatus::Converged, "Converged", "converged"},
      {FitStatus::IterationLimit, "IterationLimit", "iteration-limit"},
      {FitStatus::Fallback, "Fallback", "fallback"},
  };
};

/// Returns the status's name as written in this header, e.g. "Converged".
inline const char* to_string(FitStatus s) {
  return enum_name(s);
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

OHEM_END_NAMESPACE
