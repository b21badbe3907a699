#pragma once
/// @file
/// Paired comparisons at a few seeds: the paired t-test and t-interval of a mean difference, the exact
/// sign-flip permutation test, Holm's step-down adjustment, and the smallest effect the paired t-test
/// detects with a given power. See docs/statistics.md.

#include <ohem/detail/paired_math.hpp>
#include <ohem/detail/statistics.hpp>
#include <ohem/scores.hpp>
#include <ohem/version.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

OHEM_BEGIN_NAMESPACE

/// The largest number of pairs the exact sign-flip test enumerates (2^40 patterns, counted in about a
/// second by meeting in the middle); more is refused.
constexpr int64_t kSignFlipMaxPairs = 40;

/// The relative tolerance of the sign-flip test's ties: a sign pattern counts as at least as extreme as
/// the observed one when |Σ s_i d_i| >= |Σ d_i| − kSignFlipTieTolerance · Σ|d_i|.
constexpr double kSignFlipTieTolerance = 1e-12;

/// Options of `paired_t_test`.
struct PairedTTestOptions {
  /// The confidence level of the two-sided t-interval, in (0, 1).
  TORCH_ARG(double, confidence) = 0.95;
};

/// The paired t-test and t-interval of the mean of the differences d_i = a_i − b_i.
struct PairedTTest {
  int64_t n = 0;          ///< number of pairs
  double df = 0;          ///< degrees of freedom, n − 1
  double mean = 0;        ///< mean difference d̄
  double sd = 0;          ///< sample standard deviation of the differences (ddof = 1)
  double se = 0;          ///< standard error sd / √n
  double t = 0;           ///< d̄ / se (±inf when sd = 0 and d̄ ≠ 0; 0 when every difference is 0)
  double p_value = 1;     ///< two-sided p-value P(|T_{n−1}| >= |t|)
  double confidence = 0;  ///< the interval's confidence level
  double t_critical = 0;  ///< the (1 + confidence)/2 quantile of Student's t with df degrees of freedom
  double lower = 0;       ///< d̄ − t_critical · se
  double upper = 0;       ///< d̄ + t_critical · se
};

/// The exact sign-flip permutation test of the mean difference.
struct SignFlipTest {
  int64_t n = 0;                  ///< number of pairs
  double mean = 0;                ///< observed mean difference
  uint64_t extreme_patterns = 0;  ///< sign patterns with |mean| at least the observed |mean|
  uint64_t patterns = 0;          ///< all sign patterns, 2^n
  double p_value = 1;             ///< extreme_patterns / patterns (two-sided)
};

/// Options of `minimum_detectable_effect`.
struct DetectableEffectOptions {
  /// The power the paired t-test must reach, in (alpha, 1).
  TORCH_ARG(double, power) = 0.8;
  /// The two-sided level of the paired t-test, in (0, 1).
  TORCH_ARG(double, alpha) = 0.05;
};

/// Runs the paired t-test (the one-sample t-test of mean 0) on the differences themselves;
/// `paired_t_test(a, b, options)` (below) is this with d = a − b.
///
/// Throws if there are fewer than 2 differences, if one is NaN or infinite, or if the confidence is not
/// in (0, 1).
/// Example: `auto r = ohem::paired_t_test(std::vector<double>{0.01, -0.004, 0.02, 0.006, 0.011});`
inline PairedTTest paired_t_test(const ScoresRef& differences, const PairedTTestOptions& options = {}) {
  const char* fn = "ohem::paired_t_test";
  detail::check_level(fn, "confidence", options.confidence());
  detail::check_paired_values(fn, "differences", differences);
  const double* d = differences.data();
  const int64_t n = differences.size();
  const double confidence = options.confidence();
  PairedTTest r;
  r.n = n;
  r.df = static_cast<double>(n - 1);
  r.confidence = confidence;
  const auto m = detail::moments(d, n);
  r.mean = m.mean;
  // Equal differences have s.d. exactly 0 (moments may leave a rounding residue).
  r.sd = detail::is_constant(d, n) ? 0.0 : m.std * std::sqrt(static_cast<double>(n) / r.df);
  r.se = r.sd / std::sqrt(static_cast<double>(n));
  r.t_critical = detail::student_t_two_sided_quantile(1.0 - confidence, r.df);
  if (r.se > 0) {
    r.t = r.mean / r.se;
    r.p_value = detail::student_t_two_sided_tail(r.t, r.df);
  } else if (r.mean != 0) {
    r.t = std::copysign(std::numeric_limits<double>::infinity(), r.mean);
    r.p_value = 0.0;
  } else {
    r.t = 0.0;
    r.p_value = 1.0;
  }
  r.lower = r.mean - r.t_critical * r.se;
  r.upper = r.mean + r.t_critical * r.se;
  return r;
}

/// Runs the paired t-test of a − b: the mean difference, its sample s.d. (ddof = 1), standard error,
/// the two-sided t-interval at `options.confidence()` and the two-sided p-value of H0: mean 0, with
/// n − 1 degrees of freedom (as scipy.stats.ttest_rel and scipy.stats.t.interval).
///
/// When every difference is equal (s.d. 0) the interval is [d̄, d̄]; the p-value is 0 if d̄ ≠ 0
/// (t = ±inf) and 1 if every difference is 0 (t = 0), where scipy returns t = ±inf and NaN.
/// Throws if the sizes differ, if there are fewer than 2 pairs, if a value or a difference is NaN or
/// infinite, or if the confidence is not in (0, 1).
/// Example: `auto r = ohem::paired_t_test(srcc_ohem, srcc_baseline); // r.mean, r.lower, r.upper, r.p_value`
inline PairedTTest paired_t_test(const ScoresRef& a, const ScoresRef& b,
                                 const PairedTTestOptions& options = {}) {
  const char* fn = "ohem::paired_t_test";
  detail::check_level(fn, "confidence", options.confidence());
  const auto d = detail::paired_differences(fn, a, b);
  return paired_t_test(ScoresRef(d), options);
}

/// Runs the exact sign-flip permutation test on the differences themselves; `sign_flip_test(a, b)`
/// (below) is this with d = a − b.
///
/// Throws if there are fewer than 2 or more than `kSignFlipMaxPairs` differences, or if one is NaN or
/// infinite.
/// Example: `ohem::sign_flip_test(std::vector<double>{1, 2, 3, 4, 5}).p_value  // 2/32`
inline SignFlipTest sign_flip_test(const ScoresRef& differences) {
  const char* fn = "ohem::sign_flip_test";
  detail::check_paired_values(fn, "differences", differences);
  const int64_t n = differences.size();
  TORCH_CHECK(n <= kSignFlipMaxPairs, fn,
              ": the exact test enumerates 2^n sign patterns and accepts at most ", kSignFlipMaxPairs,
              " pairs, got ", n);
  SignFlipTest r;
  r.n = n;
  r.mean = detail::moments(differences.data(), n).mean;
  r.patterns = uint64_t{1} << n;
  r.extreme_patterns = detail::sign_flip_extreme_count(differences.data(), n, kSignFlipTieTolerance);
  r.p_value = static_cast<double>(r.extreme_patterns) / static_cast<double>(r.patterns);
  return r;
}

/// Runs the exact sign-flip permutation test of the mean difference of a − b: under H0 (the differences
/// are symmetric about 0) every one of the 2^n sign patterns s is equally likely; the two-sided p-value is
/// the fraction of patterns with |Σ s_i d_i| >= |Σ d_i|. Ties: a pattern counts when its |sum| is within
/// `kSignFlipTieTolerance` · Σ|d_i| of the observed one, so exact ties count despite rounding.
///
/// All 2^n patterns are counted exactly (by meeting in the middle: O(2^(n/2) n) time and memory). The
/// p-value is at least 2 / 2^n (the observed pattern and its mirror): 0.0625 for 5 pairs of one sign.
/// Every difference 0 gives p = 1. Throws if the sizes differ, if there are fewer than 2 or more than
/// `kSignFlipMaxPairs` pairs, or if a value or a difference is NaN or infinite.
/// Example: `double p = ohem::sign_flip_test(srcc_ohem, srcc_baseline).p_value;`
inline SignFlipTest sign_flip_test(const ScoresRef& a, const ScoresRef& b) {
  const char* fn = "ohem::sign_flip_test";
  const auto d = detail::paired_differences(fn, a, b);
  return sign_flip_test(ScoresRef(d));
}

/// Returns Holm's step-down adjustment of m p-values, in the input order: with p_(1) <= ... <= p_(m)
/// sorted, p̃_(k) = max_{j <= k} min(1, (m − j + 1) p_(j)). Rejecting where p̃ <= alpha controls the
/// family-wise error rate at alpha (Holm 1979). Equal p-values get equal adjusted values.
///
/// Throws if a p-value is NaN or outside [0, 1]. An empty input gives an empty result.
/// Example: `ohem::holm_adjust({0.01, 0.04, 0.03})  // {0.03, 0.06, 0.06}`
inline std::vector<double> holm_adjust(const std::vector<double>& p_values) {
  const size_t m = p_values.size();
  for (size_t i = 0; i < m; ++i) {
    TORCH_CHECK(p_values[i] >= 0 && p_values[i] <= 1, "ohem::holm_adjust: p_values[", i, "] is ", p_values[i],
                "; p-values must be in [0, 1]");
  }
  std::vector<size_t> order(m);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t i, size_t j) { return p_values[i] < p_values[j]; });
  std::vector<double> adjusted(m);
  double running = 0.0;
  for (size_t k = 0; k < m; ++k) {
    running = std::max(running, std::min(1.0, static_cast<double>(m - k) * p_values[order[k]]));
    adjusted[order[k]] = running;
  }
  return adjusted;
}

/// Returns the power of the two-sided paired t-test at level alpha with n pairs when the true mean
/// difference is `effect` and the differences' s.d. is `sd`: P(|T'| > c), T' noncentral t with n − 1
/// degrees of freedom and noncentrality effect·√n / sd, c the (1 − alpha/2) quantile of Student's t.
///
/// With sd = 0 the power is 1 for effect ≠ 0 and alpha for effect 0. Throws if n < 2, if effect or sd is
/// not finite, if sd < 0, or if alpha is not in (0, 1).
/// Example: `double power = ohem::paired_t_power(6, 0.01, 0.008);`
inline double paired_t_power(int64_t n, double effect, double sd, double alpha = 0.05) {
  const char* fn = "ohem::paired_t_power";
  TORCH_CHECK(n >= 2, fn, ": needs at least 2 pairs, got n = ", n);
  TORCH_CHECK(std::isfinite(effect), fn, ": effect must be finite, got ", effect);
  TORCH_CHECK(std::isfinite(sd) && sd >= 0, fn, ": sd must be finite and >= 0, got ", sd);
  detail::check_level(fn, "alpha", alpha);
  if (sd == 0) return effect == 0 ? alpha : 1.0;
  const double df = static_cast<double>(n - 1);
  const double lambda = effect / sd * std::sqrt(static_cast<double>(n));
  TORCH_CHECK(std::isfinite(lambda), fn, ": effect / sd = ", effect, " / ", sd, " overflows a double");
  return detail::t_test_power(std::abs(lambda), df, detail::student_t_two_sided_quantile(alpha, df));
}

/// Returns the minimum detectable effect: the smallest true mean difference δ > 0 that the two-sided
/// paired t-test at level `options.alpha()` with n pairs detects with probability `options.power()`
/// when the differences' s.d. is `sd` (e.g. the observed one). Exact for normal differences: δ = λ* sd / √n,
/// where λ* solves P(|T'_{n−1, λ}| > c) = power for the noncentral t (bisection to the last bit).
///
/// Returns 0 when sd = 0. Throws if n < 2, if sd is negative or not finite, if alpha is not in (0, 1), or
/// if the power is not in (alpha, 1).
/// Example: `double mde = ohem::minimum_detectable_effect(r.n, r.sd);  // r from paired_t_test`
inline double minimum_detectable_effect(int64_t n, double sd, const DetectableEffectOptions& options = {}) {
  const char* fn = "ohem::minimum_detectable_effect";
  TORCH_CHECK(n >= 2, fn, ": needs at least 2 pairs, got n = ", n);
  TORCH_CHECK(std::isfinite(sd) && sd >= 0, fn, ": sd must be finite and >= 0, got ", sd);
  detail::check_level(fn, "alpha", options.alpha());
  TORCH_CHECK(options.power() > options.alpha() && options.power() < 1, fn,
              ": power must be in (alpha, 1) = (", options.alpha(), ", 1), got ", options.power());
  if (sd == 0) return 0.0;
  const double df = static_cast<double>(n - 1);
  const double critical = detail::student_t_two_sided_quantile(options.alpha(), df);
  const double lambda = detail::t_test_noncentrality_for_power(options.power(), df, critical);
  return lambda * sd / std::sqrt(static_cast<double>(n));
}

OHEM_END_NAMESPACE
