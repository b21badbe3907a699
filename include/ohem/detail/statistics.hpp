#pragma once
/// @file
/// Internals of the IQA metrics: compensated sums, moments, Pearson's r, average ranks and Kendall's
/// tau-b on raw arrays of finite doubles, safe for finite values of any magnitude.

#include <ohem/version.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

OHEM_BEGIN_NAMESPACE
namespace detail {

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

/// Returns 2^-e with 2^(e-1) <= max|x| < 2^e (1 if all are 0): multiplying by it is exact and brings the
/// values into [-1, 1], so squares and products of finite values never overflow or underflow to 0.
inline double pow2_scale(const double* x, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::abs(x[i]));
  if (!(m > 0) || !std::isfinite(m)) return 1.0;
  int e = 0;
  std::frexp(m, &e);
  return std::ldexp(1.0, -e);
}

/// Mean and population standard deviation (ddof = 0) of finite values, computed on pow2_scale'd values
/// (no overflow for |x| near the largest double).
struct Moments {
  double mean = 0, std = 0;
};
inline Moments moments(const double* x, int64_t n) {
  const double k = pow2_scale(x, n);
  const double m = accurate_sum(n, [&](int64_t i) { return x[i] * k; }) / static_cast<double>(n);
  const double v =
      accurate_sum(n, [&](int64_t i) { return (x[i] * k - m) * (x[i] * k - m); }) / static_cast<double>(n);
  return {m / k, std::sqrt(v) / k};
}

/// Population standard deviation (ddof = 0).
inline double stddev(const double* x, int64_t n) {
  return moments(x, n).std;
}

/// Pearson's r of two finite vectors; 0 if either is constant (docs/metrics.md). Scale-free: the inputs
/// are first scaled by powers of two (exact), so |x| near 1e300 or 1e-300 gives the same r as |x| near 1.
inline double pearson(const double* x, const double* y, int64_t n) {
  if (is_constant(x, n) || is_constant(y, n)) return 0.0;
  const double kx = pow2_scale(x, n), ky = pow2_scale(y, n);
  const double mx = accurate_sum(n, [&](int64_t i) { return x[i] * kx; }) / n;
  const double my = accurate_sum(n, [&](int64_t i) { return y[i] * ky; }) / n;
  const double sxx = accurate_sum(n, [&](int64_t i) { return (x[i] * kx - mx) * (x[i] * kx - mx); });
  const double syy = accurate_sum(n, [&](int64_t i) { return (y[i] * ky - my) * (y[i] * ky - my); });
  const double sxy = accurate_sum(n, [&](int64_t i) { return (x[i] * kx - mx) * (y[i] * ky - my); });
  if (!(sxx > 0) || !(syy > 0)) return 0.0;
  return std::clamp(sxy / (std::sqrt(sxx) * std::sqrt(syy)), -1.0, 1.0);
}

/// Root-mean-square of the differences a[i] − b[i], without overflow for finite extreme values.
inline double rms_difference(const double* a, const double* b, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::abs(a[i] * 0.5 - b[i] * 0.5));
  if (!(m > 0)) return 0.0;
  int e = 0;
  std::frexp(m, &e);
  const double k = std::ldexp(1.0, -e);  // (a − b)/2 · k is in [-1, 1]
  const double s = accurate_sum(n, [&](int64_t i) {
    const double d = (a[i] * 0.5 - b[i] * 0.5) * k;
    return d * d;
  });
  return std::sqrt(s / static_cast<double>(n)) * 2.0 / k;
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
OHEM_END_NAMESPACE
