#pragma once
/// @file
/// IQA evaluation metrics on Eigen: SRCC, KRCC (tau-b), PLCC, PLCC and RMSE after a 4- or 5-parameter
/// logistic fit, per-group breakdowns and seeded bootstrap confidence intervals.
///
/// Every function takes the model's predictions first and the subjective scores (MOS) second, as
/// `std::vector<double>`, Eigen vectors or 1-D tensors (see `ScoresRef`). Formulas, initial values and
/// conventions are documented in docs/metrics.md.

#include <ohem/detail/metrics_lm.hpp>

#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <torch/torch.h>
#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <numeric>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace ohem {

/// A read-only view of a score vector, implicitly made from a `std::vector<double>`, an Eigen vector
/// expression or a 1-D tensor of a real dtype (copied to double on the CPU).
///
/// It is meant as a parameter type: it may point into its argument, so do not keep it beyond the call.
/// Throws if a tensor is undefined, not 1-D, or not of a real dtype.
/// Example: `double r = ohem::srcc(torch::rand({8}), std::vector<double>(8, 1.0));`
class ScoresRef {
 public:
  /// Views a vector of doubles.
  ScoresRef(const std::vector<double>& v)
      : data_(v.data()), size_(static_cast<int64_t>(v.size())) {}  // NOLINT
  /// Views an Eigen::VectorXd (no copy).
  ScoresRef(const Eigen::VectorXd& v) : data_(v.data()), size_(v.size()) {}  // NOLINT
  /// Copies any other Eigen vector expression (a Map, a block, a row vector, another scalar type).
  template <class Derived>
  ScoresRef(const Eigen::DenseBase<Derived>& v) {  // NOLINT(google-explicit-constructor)
    TORCH_CHECK(v.rows() == 1 || v.cols() == 1, "ohem::ScoresRef: expected an Eigen vector, got a ", v.rows(),
                "x", v.cols(), " matrix");
    owned_ = v.derived().template cast<double>();
    data_ = owned_.data();
    size_ = owned_.size();
  }
  /// Views a 1-D tensor of a real dtype (after copying it to double on the CPU).
  ScoresRef(const torch::Tensor& t) {  // NOLINT(google-explicit-constructor)
    TORCH_CHECK(t.defined(), "ohem::ScoresRef: the scores tensor is undefined");
    TORCH_CHECK(t.dim() == 1, "ohem::ScoresRef: expected a 1-D tensor of scores, got shape ", t.sizes());
    TORCH_CHECK(!t.is_complex() && t.scalar_type() != torch::kBool,
                "ohem::ScoresRef: expected a real dtype, got ", t.scalar_type());
    tensor_ = t.detach().to(torch::kCPU, torch::kDouble).contiguous();
    data_ = tensor_.data_ptr<double>();
    size_ = tensor_.numel();
  }
  ScoresRef(const ScoresRef&) = delete;
  ScoresRef& operator=(const ScoresRef&) = delete;

  /// Returns the number of scores.
  int64_t size() const { return size_; }
  /// Returns the scores' contiguous storage.
  const double* data() const { return data_; }
  /// Returns the i-th score.
  double operator[](int64_t i) const { return data_[i]; }
  /// Returns the scores as an Eigen map (no copy).
  Eigen::Map<const Eigen::VectorXd> vec() const { return {data_, size_}; }

 private:
  const double* data_ = nullptr;
  int64_t size_ = 0;
  Eigen::VectorXd owned_;
  torch::Tensor tensor_;
};

namespace detail {

/// Checks what every metric needs: equal sizes, at least `min_n` values, all finite.
inline void check_scores(const char* fn, const ScoresRef& prediction, const ScoresRef& mos,
                         int64_t min_n = 2) {
  TORCH_CHECK(prediction.size() == mos.size(), fn, ": prediction has ", prediction.size(),
              " values but mos has ", mos.size());
  TORCH_CHECK(prediction.size() >= min_n, fn, ": needs at least ", min_n, " scores, got ", prediction.size());
  for (int64_t i = 0; i < prediction.size(); ++i) {
    TORCH_CHECK(std::isfinite(prediction[i]), fn, ": prediction[", i, "] is ", prediction[i],
                "; scores must be finite");
    TORCH_CHECK(std::isfinite(mos[i]), fn, ": mos[", i, "] is ", mos[i], "; scores must be finite");
  }
}

/// Returns true if all n values are equal.
inline bool is_constant(const double* x, int64_t n) {
  return std::all_of(x, x + n, [&](double v) { return v == x[0]; });
}

/// Returns the sum of n values with Neumaier's compensated summation.
template <class F>
double accurate_sum(int64_t n, F&& term) {
  double s = 0, c = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double v = term(i), t = s + v;
    c += std::abs(s) >= std::abs(v) ? (s - t) + v : (v - t) + s;
    s = t;
  }
  return s + c;
}

/// Pearson's r of two finite vectors; 0 if either is constant (docs/metrics.md).
inline double pearson(const double* x, const double* y, int64_t n) {
  if (is_constant(x, n) || is_constant(y, n)) return 0.0;
  const double mx = accurate_sum(n, [&](int64_t i) { return x[i]; }) / n;
  const double my = accurate_sum(n, [&](int64_t i) { return y[i]; }) / n;
  const double sxx = accurate_sum(n, [&](int64_t i) { return (x[i] - mx) * (x[i] - mx); });
  const double syy = accurate_sum(n, [&](int64_t i) { return (y[i] - my) * (y[i] - my); });
  const double sxy = accurate_sum(n, [&](int64_t i) { return (x[i] - mx) * (y[i] - my); });
  if (!(sxx > 0) || !(syy > 0)) return 0.0;
  return std::clamp(sxy / (std::sqrt(sxx) * std::sqrt(syy)), -1.0, 1.0);
}

/// Ranks 1..n with ties given their average rank (scipy.stats.rankdata's "average").
inline std::vector<double> average_ranks(const double* x, int64_t n) {
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), int64_t{0});
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return x[a] < x[b]; });
  std::vector<double> ranks(n);
  for (int64_t i = 0; i < n;) {
    int64_t j = i + 1;
    while (j < n && x[order[j]] == x[order[i]]) ++j;
    const double r = 0.5 * static_cast<double>(i + 1 + j);  // mean of the positions i+1 .. j
    for (int64_t k = i; k < j; ++k) ranks[order[k]] = r;
    i = j;
  }
  return ranks;
}

/// Returns the number of tied pairs within runs of equal values of a sorted sequence.
template <class Eq>
int64_t tied_pairs(int64_t n, Eq&& equal_to_previous) {
  int64_t pairs = 0, run = 1;
  for (int64_t i = 1; i <= n; ++i) {
    if (i < n && equal_to_previous(i)) {
      ++run;
    } else {
      pairs += run * (run - 1) / 2;
      run = 1;
    }
  }
  return pairs;
}

/// Kendall's tau-b by Knight's O(n log n) algorithm (sort by (x, y), then count the inversions of y
/// with a merge sort); 0 if either input is constant.
inline double kendall_tau_b(const double* x, const double* y, int64_t n) {
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), int64_t{0});
  std::sort(order.begin(), order.end(),
            [&](int64_t a, int64_t b) { return x[a] < x[b] || (x[a] == x[b] && y[a] < y[b]); });
  const int64_t xtie = tied_pairs(n, [&](int64_t i) { return x[order[i]] == x[order[i - 1]]; });
  const int64_t ntie = tied_pairs(
      n, [&](int64_t i) { return x[order[i]] == x[order[i - 1]] && y[order[i]] == y[order[i - 1]]; });
  std::vector<double> v(n), buf(n);
  for (int64_t i = 0; i < n; ++i) v[i] = y[order[i]];
  // Bottom-up merge sort of v counting the pairs i < j with v[i] > v[j] (the discordant pairs).
  int64_t dis = 0;
  for (int64_t width = 1; width < n; width *= 2) {
    for (int64_t lo = 0; lo < n; lo += 2 * width) {
      const int64_t mid = std::min(lo + width, n), hi = std::min(lo + 2 * width, n);
      int64_t i = lo, j = mid, k = lo;
      while (i < mid && j < hi) {
        if (v[j] < v[i]) {
          dis += mid - i;
          buf[k++] = v[j++];
        } else {
          buf[k++] = v[i++];
        }
      }
      while (i < mid) buf[k++] = v[i++];
      while (j < hi) buf[k++] = v[j++];
    }
    v.swap(buf);
  }
  const int64_t ytie = tied_pairs(n, [&](int64_t i) { return v[i] == v[i - 1]; });
  const int64_t tot = n * (n - 1) / 2;
  if (xtie == tot || ytie == tot) return 0.0;
  // The same expression, in the same order, as scipy.stats.kendalltau.
  const int64_t con_minus_dis = tot - xtie - ytie + ntie - 2 * dis;
  const double tau = static_cast<double>(con_minus_dis) / std::sqrt(static_cast<double>(tot - xtie)) /
                     std::sqrt(static_cast<double>(tot - ytie));
  return std::clamp(tau, -1.0, 1.0);
}

}  // namespace detail

/// Returns Spearman's rank correlation (SRCC): Pearson's r of the average ranks (ties share the mean
/// of their ranks, as scipy.stats.spearmanr).
///
/// Throws if the sizes differ, if there are fewer than 2 scores, or if a score is NaN or infinite.
/// Returns 0 if either input is constant (where scipy returns NaN).
/// Example: `double r = ohem::srcc(predictions, mos);`
inline double srcc(const ScoresRef& prediction, const ScoresRef& mos) {
  detail::check_scores("ohem::srcc", prediction, mos);
  const int64_t n = prediction.size();
  const auto rx = detail::average_ranks(prediction.data(), n), ry = detail::average_ranks(mos.data(), n);
  return detail::pearson(rx.data(), ry.data(), n);
}

/// Returns Kendall's rank correlation tau-b (KRCC), computed in O(n log n) by Knight's algorithm.
///
/// Throws if the sizes differ, if there are fewer than 2 scores, or if a score is NaN or infinite.
/// Returns 0 if either input is constant (where scipy returns NaN).
/// Example: `double tau = ohem::krcc(predictions, mos);`
inline double krcc(const ScoresRef& prediction, const ScoresRef& mos) {
  detail::check_scores("ohem::krcc", prediction, mos);
  return detail::kendall_tau_b(prediction.data(), mos.data(), prediction.size());
}

/// Returns Pearson's linear correlation (PLCC) of the raw predictions and the MOS (no fit).
///
/// Throws if the sizes differ, if there are fewer than 2 scores, or if a score is NaN or infinite.
/// Returns 0 if either input is constant (where scipy returns NaN).
/// Example: `double r = ohem::plcc(predictions, mos);`
inline double plcc(const ScoresRef& prediction, const ScoresRef& mos) {
  detail::check_scores("ohem::plcc", prediction, mos);
  return detail::pearson(prediction.data(), mos.data(), prediction.size());
}

/// Returns the root-mean-square error sqrt(mean((prediction − mos)²)) of scores on the same scale.
///
/// Throws if the sizes differ, if there are fewer than 2 scores, or if a score is NaN or infinite.
/// Example: `double e = ohem::rmse(fitted, mos);`
inline double rmse(const ScoresRef& prediction, const ScoresRef& mos) {
  detail::check_scores("ohem::rmse", prediction, mos);
  const int64_t n = prediction.size();
  const double sse = detail::accurate_sum(n, [&](int64_t i) {
    const double d = prediction[i] - mos[i];
    return d * d;
  });
  return std::sqrt(sse / n);
}

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

namespace detail {

/// Returns 1/(1 + exp(−z)) without overflow.
inline double sigmoid(double z) {
  if (z >= 0) return 1.0 / (1.0 + std::exp(-z));
  const double e = std::exp(z);
  return e / (1.0 + e);
}

/// Evaluates a logistic model at x; if `grad` is non-null, also its gradient with respect to β.
inline double logistic_eval(LogisticModel m, const double* b, double x, double* grad) {
  if (m == LogisticModel::FourParameter) {
    const double a = std::abs(b[3]);
    const double s = sigmoid((x - b[2]) / a);
    if (grad) {
      const double ds = s * (1.0 - s);
      grad[0] = s;
      grad[1] = 1.0 - s;
      grad[2] = -(b[0] - b[1]) * ds / a;
      grad[3] = -(b[0] - b[1]) * ds * (x - b[2]) / (a * a) * (b[3] >= 0 ? 1.0 : -1.0);
    }
    return (b[0] - b[1]) * s + b[1];
  }
  const double q = sigmoid(-b[1] * (x - b[2]));  // 1/(1 + exp(β2 (x − β3)))
  if (grad) {
    const double dq = q * (1.0 - q);
    grad[0] = 0.5 - q;
    grad[1] = b[0] * dq * (x - b[2]);
    grad[2] = -b[0] * dq * b[1];
    grad[3] = x;
    grad[4] = 1.0;
  }
  return b[0] * (0.5 - q) + b[3] * x + b[4];
}

/// Population standard deviation (ddof = 0).
inline double stddev(const double* x, int64_t n) {
  const double m = accurate_sum(n, [&](int64_t i) { return x[i]; }) / n;
  return std::sqrt(accurate_sum(n, [&](int64_t i) { return (x[i] - m) * (x[i] - m); }) / n);
}

}  // namespace detail

/// Evaluates the logistic model with parameters β (4 or 5 values) at x.
///
/// Throws if β has the wrong number of values.
/// Example: `double y = ohem::logistic(ohem::LogisticModel::FourParameter, {5, 1, 0.5, 0.1}, 0.7);`
inline double logistic(LogisticModel model, const std::vector<double>& beta, double x) {
  TORCH_CHECK(static_cast<int64_t>(beta.size()) == num_params(model), "ohem::logistic: ", to_string(model),
              " takes ", num_params(model), " parameters, got ", beta.size());
  return detail::logistic_eval(model, beta.data(), x, nullptr);
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
  const double m = detail::accurate_sum(n, [&](int64_t i) { return x[i]; }) / n;
  const double s = detail::stddev(x, n);
  const auto mm = std::minmax_element(mos.data(), mos.data() + n);
  const double lo = *mm.first, hi = *mm.second;
  if (model == LogisticModel::FourParameter) {
    return sign > 0 ? std::vector<double>{hi, lo, m, s} : std::vector<double>{lo, hi, m, s};
  }
  return {hi - lo, sign / s, m, 0.0, 0.5 * (hi + lo)};
}

/// How a logistic fit ended.
enum class FitStatus {
  /// Levenberg–Marquardt met its convergence test.
  Converged,
  /// The iteration limit was reached; the parameters are the last (best so far) iterate.
  IterationLimit,
  /// No logistic fit was possible (see `LogisticFit::message`); the reported PLCC and RMSE are those of
  /// the least-squares straight line mos ≈ a·prediction + b instead.
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
  /// Maximum number of accepted Levenberg–Marquardt steps. Well-posed fits take 5–50; where the
  /// optimum lies at infinity (e.g. the 4p curve on a linear relation tends to a straight line) the
  /// cost keeps creeping down and the fit ends with `FitStatus::IterationLimit`.
  TORCH_ARG(int64_t, max_iterations) = 200;
  /// Relative tolerance of the step and cost-reduction convergence tests.
  TORCH_ARG(double, tolerance) = 1e-10;
  /// Start values of β instead of `logistic_initial_params` (e.g. a previous fit's parameters).
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
  /// The fitted β (4 or 5 values), or {a, b} of the fallback line mos ≈ a·x + b.
  std::vector<double> params;
  /// The initial β (empty when no fit was attempted).
  std::vector<double> initial;
  /// Accepted Levenberg–Marquardt steps.
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
    return detail::logistic_eval(model, params.data(), x, nullptr);
  }
};

namespace detail {

/// Fills PLCC and RMSE of a fit's mapped predictions.
inline void fit_quality(LogisticFit& fit, const double* x, const double* y, int64_t n) {
  std::vector<double> mapped(n);
  for (int64_t i = 0; i < n; ++i) mapped[i] = fit(x[i]);
  fit.plcc = pearson(mapped.data(), y, n);
  fit.rmse =
      std::sqrt(accurate_sum(n, [&](int64_t i) { return (mapped[i] - y[i]) * (mapped[i] - y[i]); }) / n);
}

/// The least-squares line mos ≈ a·x + b (a = 0, b = mean(mos) for constant predictions).
inline LogisticFit fallback_line(LogisticModel model, const double* x, const double* y, int64_t n,
                                 std::string why) {
  LogisticFit fit;
  fit.model = model;
  fit.status = FitStatus::Fallback;
  fit.message = std::move(why);
  const double mx = accurate_sum(n, [&](int64_t i) { return x[i]; }) / n;
  const double my = accurate_sum(n, [&](int64_t i) { return y[i]; }) / n;
  const double sxx = accurate_sum(n, [&](int64_t i) { return (x[i] - mx) * (x[i] - mx); });
  const double sxy = accurate_sum(n, [&](int64_t i) { return (x[i] - mx) * (y[i] - my); });
  const double a = is_constant(x, n) || !(sxx > 0) ? 0.0 : sxy / sxx;
  fit.params = {a, my - a * mx};
  fit_quality(fit, x, y, n);
  return fit;
}

template <int P>
LogisticFit fit_logistic_impl(const double* x, const double* y, int64_t n, const FitOptions& options,
                              std::vector<double> initial) {
  // A compile-time model lets the compiler drop the other model's branch of logistic_eval (which would
  // index β beyond P and trip -Warray-bounds in optimised builds).
  constexpr LogisticModel model = P == 4 ? LogisticModel::FourParameter : LogisticModel::FiveParameter;
  TORCH_INTERNAL_ASSERT(options.model() == model);
  Eigen::Matrix<double, P, 1> start;
  for (int k = 0; k < P; ++k) start[k] = initial[k];
  auto residuals = [&](const Eigen::Matrix<double, P, 1>& beta, Eigen::VectorXd& r,
                       Eigen::Matrix<double, Eigen::Dynamic, P>* J) {
    double grad[P];
    for (int64_t i = 0; i < n; ++i) {
      r[i] = logistic_eval(model, beta.data(), x[i], J ? grad : nullptr) - y[i];
      if (J)
        for (int k = 0; k < P; ++k) (*J)(i, k) = grad[k];
    }
  };
  const auto lm = levenberg_marquardt<P>(residuals, start, n, options.max_iterations(), options.tolerance(),
                                         options.tolerance());
  if (lm.end == LmEnd::Failed) {
    return fallback_line(
        model, x, y, n,
        fmt::format("{} fit failed: non-finite cost or Jacobian at the initial values", to_string(model)));
  }
  LogisticFit fit;
  fit.model = model;
  fit.status = lm.end == LmEnd::Converged ? FitStatus::Converged : FitStatus::IterationLimit;
  if (fit.status == FitStatus::IterationLimit) {
    fit.message = fmt::format("stopped after {} iterations without meeting the tolerance {}", lm.iterations,
                              options.tolerance());
  }
  fit.params.assign(lm.params.data(), lm.params.data() + P);
  fit.initial = std::move(initial);
  fit.iterations = lm.iterations;
  std::vector<double> mapped(n);
  for (int64_t i = 0; i < n; ++i) mapped[i] = fit(x[i]);
  if (is_constant(mapped.data(), n)) {
    auto line =
        fallback_line(model, x, y, n, fmt::format("{} fit is constant on the data", to_string(model)));
    line.initial = fit.initial;
    line.iterations = fit.iterations;
    return line;
  }
  fit_quality(fit, x, y, n);
  return fit;
}

}  // namespace detail

/// Fits a logistic function mapping predictions onto the MOS scale by Levenberg–Marquardt (analytic
/// Jacobian), and returns the parameters and the PLCC and RMSE of the mapped predictions.
///
/// Never returns NaN: when no fit is possible (fewer points than parameters + 1, constant predictions
/// or MOS, a non-finite start, a constant fitted curve) the result has status `Fallback`, a `message`,
/// and the PLCC/RMSE of the least-squares line (PLCC 0 and RMSE = std(mos) for constant predictions).
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
  auto initial =
      options.initial().empty() ? logistic_initial_params(model, prediction, mos) : options.initial();
  return model == LogisticModel::FourParameter
             ? detail::fit_logistic_impl<4>(x, y, n, options, std::move(initial))
             : detail::fit_logistic_impl<5>(x, y, n, options, std::move(initial));
}

/// A confidence interval [lower, upper].
struct Interval {
  double lower = 0;
  double upper = 0;
};

/// Percentile bootstrap intervals of every metric of an `Evaluation`.
struct BootstrapIntervals {
  Interval srcc, krcc, plcc, plcc4, rmse4, plcc5, rmse5;
  /// Number of resamples.
  int64_t samples = 0;
  /// Coverage, e.g. 0.95.
  double confidence = 0;
};

/// Options of `evaluate` and `evaluate_groups`.
///
/// Example: `ohem::EvalOptions().bootstrap(1000).seed(7)`
struct EvalOptions {
  /// Number of bootstrap resamples for the confidence intervals; 0 computes no intervals.
  TORCH_ARG(int64_t, bootstrap) = 0;
  /// Coverage of the percentile intervals, in (0, 1).
  TORCH_ARG(double, confidence) = 0.95;
  /// Seed of the resampling. Results do not depend on the number of threads.
  TORCH_ARG(uint64_t, seed) = 0;
  /// Limits and tolerance of the logistic fits (`model` and `initial` are ignored).
  TORCH_ARG(FitOptions, fit) = {};
};

/// The standard IQA metrics of one set of predictions.
struct Evaluation {
  /// Number of images.
  int64_t n = 0;
  double srcc = 0, krcc = 0, plcc = 0;
  /// The 4-parameter fit (its `plcc` and `rmse` are the "fitted 4p" metrics).
  LogisticFit fit4;
  /// The 5-parameter fit (its `plcc` and `rmse` are the "fitted 5p" metrics).
  LogisticFit fit5;
  /// Bootstrap intervals, when `EvalOptions::bootstrap` > 0.
  std::optional<BootstrapIntervals> intervals;
};

namespace detail {

/// splitmix64: a tiny, portable generator, so seeded results are the same with every standard library.
inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// Linear-interpolation quantile of sorted values (numpy's default).
inline double sorted_quantile(const std::vector<double>& v, double q) {
  const double pos = q * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

inline BootstrapIntervals bootstrap(const double* x, const double* y, int64_t n, const EvalOptions& options,
                                    const Evaluation& point) {
  const int64_t B = options.bootstrap();
  std::vector<std::vector<double>> values(7, std::vector<double>(B));
  at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
    std::vector<double> xs(n), ys(n);
    for (int64_t b = begin; b < end; ++b) {
      // One independent stream per resample: the result does not depend on how threads split the work.
      uint64_t state = options.seed() ^ (0xD1B54A32D192ED03ull * static_cast<uint64_t>(b + 1));
      for (int64_t i = 0; i < n; ++i) {
        const double u = static_cast<double>(splitmix64(state) >> 11) * 0x1.0p-53;
        const int64_t k = std::min(static_cast<int64_t>(u * static_cast<double>(n)), n - 1);
        xs[i] = x[k];
        ys[i] = y[k];
      }
      values[0][b] = pearson(average_ranks(xs.data(), n).data(), average_ranks(ys.data(), n).data(), n);
      values[1][b] = kendall_tau_b(xs.data(), ys.data(), n);
      values[2][b] = pearson(xs.data(), ys.data(), n);
      int slot = 3;
      for (const LogisticFit* full : {&point.fit4, &point.fit5}) {
        // Warm start from the full sample's fit: the resample's optimum is near it.
        // Looser limits than the point estimate's: an interval needs ~4 digits, not 10.
        FitOptions fo = options.fit();
        fo.model(full->model);
        fo.tolerance(std::max(fo.tolerance(), 1e-8));
        fo.max_iterations(std::min<int64_t>(fo.max_iterations(), 50));
        if (full->ok()) fo.initial(full->params);
        const auto fit = fit_logistic(xs, ys, fo);
        values[slot++][b] = fit.plcc;
        values[slot++][b] = fit.rmse;
      }
    }
  });
  const double alpha = 1.0 - options.confidence();
  BootstrapIntervals out;
  out.samples = B;
  out.confidence = options.confidence();
  Interval* targets[] = {&out.srcc, &out.krcc, &out.plcc, &out.plcc4, &out.rmse4, &out.plcc5, &out.rmse5};
  for (int k = 0; k < 7; ++k) {
    std::sort(values[k].begin(), values[k].end());
    *targets[k] = {sorted_quantile(values[k], alpha / 2), sorted_quantile(values[k], 1 - alpha / 2)};
  }
  return out;
}

}  // namespace detail

/// Computes SRCC, KRCC, PLCC, the 4- and 5-parameter logistic fits (PLCC and RMSE after each) and,
/// if requested, percentile bootstrap confidence intervals of all seven numbers.
///
/// Bootstrap: `options.bootstrap()` resamples of n pairs drawn with replacement (seeded, reproducible
/// across platforms and thread counts); each resample's fits start from the full sample's parameters,
/// with tolerance max(tolerance, 1e-8) and at most min(max_iterations, 50) steps. Percentile intervals
/// with numpy's linear interpolation between order statistics.
/// Throws like `srcc`, and if `confidence` is not in (0, 1) or `bootstrap` is negative.
/// Example: `auto e = ohem::evaluate(pred, mos, ohem::EvalOptions().bootstrap(1000)); e.fit5.plcc;`
inline Evaluation evaluate(const ScoresRef& prediction, const ScoresRef& mos,
                           const EvalOptions& options = {}) {
  detail::check_scores("ohem::evaluate", prediction, mos);
  TORCH_CHECK(options.bootstrap() >= 0, "ohem::evaluate: EvalOptions::bootstrap must be >= 0, got ",
              options.bootstrap());
  TORCH_CHECK(options.confidence() > 0 && options.confidence() < 1,
              "ohem::evaluate: EvalOptions::confidence must be in (0, 1), got ", options.confidence());
  const int64_t n = prediction.size();
  const double *x = prediction.data(), *y = mos.data();
  Evaluation e;
  e.n = n;
  e.srcc = detail::pearson(detail::average_ranks(x, n).data(), detail::average_ranks(y, n).data(), n);
  e.krcc = detail::kendall_tau_b(x, y, n);
  e.plcc = detail::pearson(x, y, n);
  FitOptions fo = options.fit();
  fo.initial({});
  e.fit4 = fit_logistic(prediction, mos, FitOptions(fo).model(LogisticModel::FourParameter));
  e.fit5 = fit_logistic(prediction, mos, FitOptions(fo).model(LogisticModel::FiveParameter));
  if (options.bootstrap() > 0) e.intervals = detail::bootstrap(x, y, n, options, e);
  return e;
}

/// Evaluates each group (e.g. distortion type) on its own: one `Evaluation` per distinct label, in
/// label order. `groups[i]` is the label of image i.
///
/// Throws if `groups` has a different size from the scores, if a group has fewer than 2 images (naming
/// it), and like `evaluate`.
/// Example: `for (auto& [name, e] : ohem::evaluate_groups(pred, mos, distortion)) print(name, e.srcc);`
inline std::map<std::string, Evaluation> evaluate_groups(const ScoresRef& prediction, const ScoresRef& mos,
                                                         const std::vector<std::string>& groups,
                                                         const EvalOptions& options = {}) {
  detail::check_scores("ohem::evaluate_groups", prediction, mos);
  TORCH_CHECK(static_cast<int64_t>(groups.size()) == prediction.size(), "ohem::evaluate_groups: groups has ",
              groups.size(), " labels but there are ", prediction.size(), " scores");
  std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> split;
  for (size_t i = 0; i < groups.size(); ++i) {
    auto& g = split[groups[i]];
    g.first.push_back(prediction[static_cast<int64_t>(i)]);
    g.second.push_back(mos[static_cast<int64_t>(i)]);
  }
  std::map<std::string, Evaluation> out;
  for (const auto& [name, g] : split) {
    TORCH_CHECK(g.first.size() >= 2, "ohem::evaluate_groups: group \"", name, "\" has ", g.first.size(),
                " image; every group needs at least 2");
    out.emplace(name, evaluate(g.first, g.second, options));
  }
  return out;
}

}  // namespace ohem
