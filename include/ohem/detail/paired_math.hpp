#pragma once
/// @file
/// Internals of the paired comparisons (ohem/paired.hpp): the regularized incomplete beta function,
/// Student's t distribution (tail, quantile), the noncentral t distribution function, the power of the
/// two-sided t-test, the exact count of the sign-flip permutation test, and the checks of the paired
/// values. Double precision; LibTorch only for its checks (TORCH_CHECK).

#include <ohem/detail/statistics.hpp>
#include <ohem/version.hpp>

#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

OHEM_BEGIN_NAMESPACE
namespace detail {

/// Continued fraction of the regularized incomplete beta function I_x(a, b), for x < (a + 1) / (a + b + 2)
/// (modified Lentz; Numerical Recipes §6.4). y = 1 − x is passed separately so that neither loses digits.
inline double incomplete_beta_fraction(double a, double b, double x, double y) {
  constexpr double tiny = 1e-300, eps = 1e-16;
  const double log_front =
      a * std::log(x) + b * std::log(y) - (std::lgamma(a) + std::lgamma(b) - std::lgamma(a + b));
  double c = 1.0, d = 1.0 - (a + b) * x / (a + 1.0);
  if (std::abs(d) < tiny) d = tiny;
  d = 1.0 / d;
  double h = d;
  for (int m = 1; m <= 10000; ++m) {
    const double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2));
    d = 1.0 + aa * d;
    if (std::abs(d) < tiny) d = tiny;
    c = 1.0 + aa / c;
    if (std::abs(c) < tiny) c = tiny;
    d = 1.0 / d;
    h *= d * c;
    aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0));
    d = 1.0 + aa * d;
    if (std::abs(d) < tiny) d = tiny;
    c = 1.0 + aa / c;
    if (std::abs(c) < tiny) c = tiny;
    d = 1.0 / d;
    const double del = d * c;
    h *= del;
    if (std::abs(del - 1.0) < eps) break;
  }
  return std::exp(log_front) * h / a;
}

/// Returns the regularized incomplete beta function I_x(a, b) for a, b > 0, with y = 1 − x given
/// separately (computed without cancellation by the caller).
inline double incomplete_beta(double a, double b, double x, double y) {
  if (x <= 0) return 0.0;
  if (y <= 0) return 1.0;
  if (x < (a + 1.0) / (a + b + 2.0)) return incomplete_beta_fraction(a, b, x, y);
  return 1.0 - incomplete_beta_fraction(b, a, y, x);
}

/// x = ν / (ν + t²) and y = t² / (ν + t²), each without cancellation or overflow for any finite t.
struct TSplit {
  double x, y;
};
inline TSplit t_split(double t, double df) {
  const double u = std::abs(t) / std::sqrt(df);
  if (u <= 1) return {1.0 / (1.0 + u * u), u * u / (1.0 + u * u)};
  const double r = 1.0 / u;
  return {r * r / (1.0 + r * r), 1.0 / (1.0 + r * r)};
}

/// Returns P(|T| >= |t|) for Student's t with df > 0 degrees of freedom: I_{ν/(ν+t²)}(ν/2, 1/2).
inline double student_t_two_sided_tail(double t, double df) {
  if (std::isinf(t)) return 0.0;
  const auto s = t_split(t, df);
  return incomplete_beta(0.5 * df, 0.5, s.x, s.y);
}

/// Returns the distribution function P(T <= t) of Student's t with df > 0 degrees of freedom.
inline double student_t_cdf(double t, double df) {
  const double half_tail = 0.5 * student_t_two_sided_tail(t, df);
  return t < 0 ? half_tail : 1.0 - half_tail;
}

/// Returns the t > 0 with P(|T| >= t) = alpha (0 < alpha < 1), i.e. the (1 − alpha/2) quantile, by
/// bisection on the tail to the last representable bit (the tail is monotone; ~100 evaluations).
inline double student_t_two_sided_quantile(double alpha, double df) {
  double lo = 0.0, hi = 1.0;
  while (student_t_two_sided_tail(hi, df) > alpha) {
    lo = hi;
    hi *= 2.0;
    if (!std::isfinite(hi)) return hi;
  }
  for (int i = 0; i < 2000; ++i) {
    const double mid = 0.5 * (lo + hi);
    if (mid <= lo || mid >= hi) break;
    (student_t_two_sided_tail(mid, df) > alpha ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

/// Returns P(T' <= t) for t >= 0, T' noncentral t with df degrees of freedom and noncentrality delta:
/// Φ(−δ) + ½ Σ_j [p_j I_x(j + ½, ν/2) + q_j I_x(j + 1, ν/2)], x = t²/(t² + ν),
/// p_j = e^{−δ²/2} (δ²/2)^j / j!, q_j = δ e^{−δ²/2} (δ²/2)^j / (√2 Γ(j + 3/2)) (Lenth 1989, AS 243).
/// The terms are summed over 12 standard deviations plus 40 terms either side of the Poisson weights' mean
/// δ²/2 (O(|δ|) terms): the weights left out are negligible next to the double precision of the sum.
inline double noncentral_t_cdf_nonnegative(double t, double df, double delta) {
  const double phi = 0.5 * std::erfc(delta / std::sqrt(2.0));
  if (t <= 0) return phi;
  const auto s = t_split(t, df);  // here x and y swap: x = t²/(t²+ν) is s.y
  const double lam = 0.5 * delta * delta;
  const double spread = 12.0 * std::sqrt(lam) + 40.0;
  const auto first = static_cast<int64_t>(std::max(0.0, std::floor(lam - spread)));
  const auto last = static_cast<int64_t>(std::ceil(lam + spread));
  double sum = 0.0;
  for (int64_t j = first; j <= last; ++j) {
    const double jd = static_cast<double>(j);
    if (lam == 0 && j > 0) break;
    const double log_pow = j == 0 ? 0.0 : jd * std::log(lam);
    const double p = std::exp(-lam + log_pow - std::lgamma(jd + 1.0));
    const double q = delta / std::sqrt(2.0) * std::exp(-lam + log_pow - std::lgamma(jd + 1.5));
    sum +=
        p * incomplete_beta(jd + 0.5, 0.5 * df, s.y, s.x) + q * incomplete_beta(jd + 1.0, 0.5 * df, s.y, s.x);
  }
  return phi + 0.5 * sum;
}

/// Returns P(T' <= t) of the noncentral t distribution (any finite t; P(T' <= t) = 1 − P(T'_{−δ} <= −t)).
inline double noncentral_t_cdf(double t, double df, double delta) {
  if (t >= 0) return std::clamp(noncentral_t_cdf_nonnegative(t, df, delta), 0.0, 1.0);
  return std::clamp(1.0 - noncentral_t_cdf_nonnegative(-t, df, -delta), 0.0, 1.0);
}

/// Returns the probability that the two-sided t-test at level alpha with df degrees of freedom rejects
/// when the statistic is noncentral t with noncentrality lambda: P(T' > c) + P(T' < −c), c the critical
/// value.
inline double t_test_power(double lambda, double df, double critical) {
  // P(T' <= c) = E[Φ(c W − λ)], W = sqrt(χ²_df / df), is at most Φ(−40) + P(W > 50) when λ >= 50 c + 40:
  // zero in double precision for every df >= 1, so the power is 1 (and the series is not summed).
  if (lambda >= 50.0 * critical + 40.0) return 1.0;
  const double upper = 1.0 - noncentral_t_cdf_nonnegative(critical, df, lambda);
  const double lower = 1.0 - noncentral_t_cdf_nonnegative(critical, df, -lambda);  // P(T' < −c)
  return std::clamp(upper + lower, 0.0, 1.0);
}

/// Returns the noncentrality λ > 0 at which the two-sided t-test reaches the given power (power > alpha):
/// power(λ) is increasing in λ ≥ 0, from alpha at 0; bracketed by doubling, then bisected to the last bit.
inline double t_test_noncentrality_for_power(double power, double df, double critical) {
  double lo = 0.0, hi = 1.0;
  while (t_test_power(hi, df, critical) < power) {
    lo = hi;
    hi *= 2.0;
  }
  for (int i = 0; i < 2000; ++i) {
    const double mid = 0.5 * (lo + hi);
    if (mid <= lo || mid >= hi) break;
    (t_test_power(mid, df, critical) < power ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

/// Sums Σ ±v_i over all 2^n sign patterns of v (n <= 20): 2^n sums, each of n terms.
inline std::vector<double> all_signed_sums(const double* v, int64_t n) {
  std::vector<double> sums{0.0};
  sums.reserve(size_t{1} << n);
  for (int64_t i = 0; i < n; ++i) {
    const size_t m = sums.size();
    for (size_t k = 0; k < m; ++k) {
      sums.push_back(sums[k] - v[i]);
      sums[k] += v[i];
    }
  }
  return sums;
}

/// Counts the sign patterns s ∈ {−1, +1}^n with |Σ s_i d_i| >= |Σ d_i| − tol · Σ|d_i| (n <= 40): every
/// pattern, counted exactly by meeting in the middle (the 2^⌊n/2⌋ sums of one half against the sorted
/// 2^⌈n/2⌉ sums of the other). The values are first scaled by a power of two (exact) so no sum overflows.
inline uint64_t sign_flip_extreme_count(const double* d, int64_t n, double tol) {
  const double k = pow2_scale(d, n);
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = d[i] * k;
  const double observed = std::abs(accurate_sum(n, [&](int64_t i) { return v[static_cast<size_t>(i)]; }));
  const double scale = accurate_sum(n, [&](int64_t i) { return std::abs(v[static_cast<size_t>(i)]); });
  const double threshold = observed - tol * scale;
  const uint64_t all = uint64_t{1} << n;
  if (!(threshold > 0)) return all;  // every pattern is at least as extreme (e.g. all differences 0)
  const int64_t h = n / 2;
  const auto first = all_signed_sums(v.data(), h);
  auto second = all_signed_sums(v.data() + h, n - h);
  std::sort(second.begin(), second.end());
  uint64_t count = 0;
  for (const double s : first) {
    // s + t >= threshold, or s + t <= −threshold (disjoint: threshold > 0).
    count +=
        static_cast<uint64_t>(second.end() - std::lower_bound(second.begin(), second.end(), threshold - s));
    count += static_cast<uint64_t>(std::upper_bound(second.begin(), second.end(), -threshold - s) -
                                   second.begin());
  }
  return count;
}

/// Checks n >= 2 finite values named `what` for the function `fn` (`Values`: ohem::ScoresRef).
template <class Values>
void check_paired_values(const char* fn, const char* what, const Values& v) {
  TORCH_CHECK(v.size() >= 2, fn, ": needs at least 2 pairs, got ", v.size(), " value(s) in ", what);
  for (int64_t i = 0; i < v.size(); ++i) {
    TORCH_CHECK(std::isfinite(v[i]), fn, ": ", what, "[", i, "] is ", v[i], "; values must be finite");
  }
}

/// Returns the differences a_i − b_i after checking the sizes, n >= 2 and finiteness.
template <class Values>
std::vector<double> paired_differences(const char* fn, const Values& a, const Values& b) {
  TORCH_CHECK(a.size() == b.size(), fn, ": a has ", a.size(), " values but b has ", b.size(),
              "; a paired comparison needs one value of each per seed");
  check_paired_values(fn, "a", a);
  check_paired_values(fn, "b", b);
  std::vector<double> d(static_cast<size_t>(a.size()));
  for (int64_t i = 0; i < a.size(); ++i) {
    d[static_cast<size_t>(i)] = a[i] - b[i];
    TORCH_CHECK(std::isfinite(d[static_cast<size_t>(i)]), fn, ": a[", i, "] - b[", i, "] = ", a[i], " - ",
                b[i], " overflows a double");
  }
  return d;
}

/// Checks a level (confidence, alpha) named `name` lies in (0, 1).
inline void check_level(const char* fn, const char* name, double value) {
  TORCH_CHECK(value > 0 && value < 1, fn, ": ", name, " must be in (0, 1), got ", value);
}

}  // namespace detail
OHEM_END_NAMESPACE
