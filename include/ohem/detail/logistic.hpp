#pragma once
/// @file
/// Internals of the logistic fits (ohem/logistic_fit.hpp): the two logistic functions with their
/// gradients, the standardisation the fits run in, and one Levenberg–Marquardt run from one start.

#include <ohem/detail/levenberg_marquardt.hpp>
#include <ohem/detail/statistics.hpp>
#include <ohem/version.hpp>

#include <Eigen/Dense>

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

OHEM_BEGIN_NAMESPACE
namespace detail {

/// Returns 1/(1 + exp(−z)) without overflow.
/// (1/(1 + e) for z ≥ 0, e/(1 + e) below, with e = exp(−|z|): one exp, no branch on the sign, which is
/// as often mispredicted as not on real data.)
inline double sigmoid(double z) {
  const double e = std::exp(-std::abs(z));
  return (z >= 0 ? 1.0 : e) / (1.0 + e);
}

// Where the build targets x86-64 without AVX, Eigen's exp runs on SSE2 packets of two; the sigmoid of the
// fits' passes then runs four at a time with AVX2 where the CPU has it, with the same results.
#if defined(__GNUC__) && defined(__x86_64__) && defined(EIGEN_VECTORIZE_SSE2) && !defined(EIGEN_VECTORIZE_AVX)
#define OHEM_DETAIL_LOGISTIC_AVX2 1
/// Eigen 3.4's SSE2 `pexp_double` four lanes at a time: the same IEEE operations in the same order (a
/// Cody–Waite reduction by log 2, Cephes' rational approximation, without FMA, and its `pldexp`), so that
/// every lane is bit for bit what Eigen's exp gives on SSE2.
__attribute__((target("avx2"))) inline __m256d exp_avx2(__m256d x0) {
  // (Eigen's pmin(a, b) and pmax(a, b) are _mm_min_pd(b, a) and _mm_max_pd(b, a).)
  __m256d x = _mm256_max_pd(_mm256_set1_pd(-709.784), _mm256_min_pd(_mm256_set1_pd(709.784), x0));
  __m256d fx = _mm256_add_pd(_mm256_mul_pd(_mm256_set1_pd(1.4426950408889634073599), x), _mm256_set1_pd(0.5));
  fx = _mm256_floor_pd(fx);
  const __m256d tmp = _mm256_mul_pd(fx, _mm256_set1_pd(0.693145751953125));
  const __m256d z = _mm256_mul_pd(fx, _mm256_set1_pd(1.42860682030941723212e-6));
  x = _mm256_sub_pd(x, tmp);
  x = _mm256_sub_pd(x, z);
  const __m256d x2 = _mm256_mul_pd(x, x);
  __m256d px = _mm256_set1_pd(1.26177193074810590878e-4);
  px = _mm256_add_pd(_mm256_mul_pd(px, x2), _mm256_set1_pd(3.02994407707441961300e-2));
  px = _mm256_add_pd(_mm256_mul_pd(px, x2), _mm256_set1_pd(9.99999999999999999910e-1));
  px = _mm256_mul_pd(px, x);
  __m256d qx = _mm256_set1_pd(3.00198505138664455042e-6);
  qx = _mm256_add_pd(_mm256_mul_pd(qx, x2), _mm256_set1_pd(2.52448340349684104192e-3));
  qx = _mm256_add_pd(_mm256_mul_pd(qx, x2), _mm256_set1_pd(2.27265548208155028766e-1));
  qx = _mm256_add_pd(_mm256_mul_pd(qx, x2), _mm256_set1_pd(2.00000000000000000009e0));
  x = _mm256_div_pd(px, _mm256_sub_pd(qx, px));
  x = _mm256_add_pd(_mm256_mul_pd(_mm256_set1_pd(2.0), x), _mm256_set1_pd(1.0));
  // pldexp(x, fx): fx clamped to [-2099, 2099], 2^fx applied as 2^b three times and 2^(fx − 3b), b = ⌊fx/4⌋.
  const __m256d e = _mm256_min_pd(_mm256_set1_pd(2099.0), _mm256_max_pd(_mm256_set1_pd(-2099.0), fx));
  const __m128i ei = _mm256_cvtpd_epi32(e);
  const __m128i b = _mm_srai_epi32(ei, 2);
  const __m128i rest = _mm_sub_epi32(_mm_sub_epi32(_mm_sub_epi32(ei, b), b), b);
  const __m256i bias = _mm256_set1_epi64x(1023);
  const __m256d c =
      _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(_mm256_cvtepi32_epi64(b), bias), 52));
  const __m256d c2 =
      _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(_mm256_cvtepi32_epi64(rest), bias), 52));
  const __m256d out = _mm256_mul_pd(_mm256_mul_pd(_mm256_mul_pd(_mm256_mul_pd(x, c), c), c), c2);
  return _mm256_max_pd(x0, out);
}

/// q[i] = 1/(1 + exp(a[i])) for i < m, with a[i] = k·d[i], or −d[i]/k if `divide`: bit for bit what
/// Eigen's SSE2 expression `((k * d).exp() + 1.0).inverse()` (or `((-d / k).exp() + 1.0).inverse()`) gives
/// (its packets of two, then std::exp for an odd last point), four points at a time. Compiled for AVX2
/// whatever the build's baseline; called only where the CPU has it (`cpu_has_avx2_logistic()`).
__attribute__((target("avx2"))) inline void inverse_one_plus_exp_avx2(const double* d, double k, bool divide,
                                                                      int64_t m, double* q) {
  const __m256d kk = _mm256_set1_pd(k), one = _mm256_set1_pd(1.0), sign = _mm256_set1_pd(-0.0);
  const int64_t even = m - m % 2;
  int64_t i = 0;
  for (; i + 4 <= even; i += 4) {
    const __m256d x = _mm256_loadu_pd(d + i);
    const __m256d a = divide ? _mm256_div_pd(_mm256_xor_pd(x, sign), kk) : _mm256_mul_pd(kk, x);
    _mm256_storeu_pd(q + i, _mm256_div_pd(one, _mm256_add_pd(exp_avx2(a), one)));
  }
  if (i < even) {  // one packet of two: the lanes are independent, pad to four
    alignas(32) double buf[4] = {d[i], d[i + 1], 0.0, 0.0};
    const __m256d x = _mm256_load_pd(buf);
    const __m256d a = divide ? _mm256_div_pd(_mm256_xor_pd(x, sign), kk) : _mm256_mul_pd(kk, x);
    _mm256_store_pd(buf, _mm256_div_pd(one, _mm256_add_pd(exp_avx2(a), one)));
    q[i] = buf[0];
    q[i + 1] = buf[1];
  }
  if (even < m) q[even] = 1.0 / (std::exp(divide ? -d[even] / k : k * d[even]) + 1.0);
}

/// The 5p pass's quantities for i < m from d = x − β3: q = 1/(1 + exp(β2·d)), u = 0.5 − q,
/// t = q(1 − q), v = t·d and the residual r = β1·u + β4·x + β5 − y, bit for bit what `run_logistic`'s
/// Eigen expressions give (the same operations in the same order), four points at a time with AVX2.
__attribute__((target("avx2"))) inline void logistic5_columns_avx2(const double* d, const double* x,
                                                                   const double* y, const double* b,
                                                                   int64_t m, double* q, double* u, double* t,
                                                                   double* v, double* r) {
  inverse_one_plus_exp_avx2(d, b[1], false, m, q);
  const __m256d half = _mm256_set1_pd(0.5), one = _mm256_set1_pd(1.0), b0 = _mm256_set1_pd(b[0]),
                b3 = _mm256_set1_pd(b[3]), b4 = _mm256_set1_pd(b[4]);
  int64_t i = 0;
  for (; i + 4 <= m; i += 4) {
    const __m256d qi = _mm256_loadu_pd(q + i);
    const __m256d ui = _mm256_sub_pd(half, qi);
    const __m256d ti = _mm256_mul_pd(qi, _mm256_sub_pd(one, qi));
    _mm256_storeu_pd(u + i, ui);
    _mm256_storeu_pd(t + i, ti);
    _mm256_storeu_pd(v + i, _mm256_mul_pd(ti, _mm256_loadu_pd(d + i)));
    const __m256d ri =
        _mm256_add_pd(_mm256_add_pd(_mm256_mul_pd(b0, ui), _mm256_mul_pd(b3, _mm256_loadu_pd(x + i))), b4);
    _mm256_storeu_pd(r + i, _mm256_sub_pd(ri, _mm256_loadu_pd(y + i)));
  }
  for (; i < m; ++i) {
    u[i] = 0.5 - q[i];
    t[i] = q[i] * (1.0 - q[i]);
    v[i] = t[i] * d[i];
    r[i] = b[0] * u[i] + b[3] * x[i] + b[4] - y[i];
  }
}

/// True if the CPU running this has AVX2 (checked once).
inline bool cpu_has_avx2_logistic() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}
#endif

/// Evaluates the P-parameter logistic function (P = 4 or 5, see ohem::LogisticModel) at x; if `grad` is
/// non-null, also its gradient with respect to β.
template <int P>
double logistic_eval(const double* b, double x, double* grad) {
  static_assert(P == 4 || P == 5, "the logistic functions have 4 or 5 parameters");
  if constexpr (P == 4) {
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
  } else {
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
}

/// Sums of data in which value i appears c[i] times (c: a bootstrap resample's draw counts of its
/// distinct points), over the n distinct values: the same sums as over the expanded data up to rounding
/// (the order and the products c·v differ). A null c counts every value once, with exactly the
/// operations of the unweighted code (`accurate_sum`, `moments`, `pearson`, `rms_difference`).
///
/// Σ c[i]·term(i) with `accurate_sum`.
template <class F>
double counted_sum(const double* c, int64_t n, F&& term) {
  if (!c) return accurate_sum(n, term);
  return accurate_sum(n, [&](int64_t i) { return c[i] * term(i); });
}
/// Σ c[i] (n for a null c).
inline double counted_total(const double* c, int64_t n) {
  return c ? accurate_sum(n, [&](int64_t i) { return c[i]; }) : static_cast<double>(n);
}
/// `moments` of the expanded data.
inline Moments counted_moments(const double* x, const double* c, int64_t n) {
  const double k = pow2_scale(x, n), total = counted_total(c, n);
  const double m = counted_sum(c, n, [&](int64_t i) { return x[i] * k; }) / total;
  const double v = counted_sum(c, n, [&](int64_t i) { return (x[i] * k - m) * (x[i] * k - m); }) / total;
  return {m / k, std::sqrt(v) / k};
}
/// `pearson` of the expanded data.
inline double counted_pearson(const double* x, const double* y, const double* c, int64_t n) {
  if (is_constant(x, n) || is_constant(y, n)) return 0.0;
  const double kx = pow2_scale(x, n), ky = pow2_scale(y, n), total = counted_total(c, n);
  const double mx = counted_sum(c, n, [&](int64_t i) { return x[i] * kx; }) / total;
  const double my = counted_sum(c, n, [&](int64_t i) { return y[i] * ky; }) / total;
  const double sxx = counted_sum(c, n, [&](int64_t i) { return (x[i] * kx - mx) * (x[i] * kx - mx); });
  const double syy = counted_sum(c, n, [&](int64_t i) { return (y[i] * ky - my) * (y[i] * ky - my); });
  const double sxy = counted_sum(c, n, [&](int64_t i) { return (x[i] * kx - mx) * (y[i] * ky - my); });
  if (!(sxx > 0) || !(syy > 0)) return 0.0;
  return std::clamp(sxy / (std::sqrt(sxx) * std::sqrt(syy)), -1.0, 1.0);
}
/// `rms_difference` of the expanded data.
inline double counted_rms_difference(const double* a, const double* b, const double* c, int64_t n) {
  double m = 0;  // max |a − b|/2
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::abs(a[i] * 0.5 - b[i] * 0.5));
  if (!(m > 0)) return 0.0;
  const double k = pow2_scale(&m, 1);  // (a − b)/2 · k is in [-1, 1]
  const double s = counted_sum(c, n, [&](int64_t i) {
    const double d = (a[i] * 0.5 - b[i] * 0.5) * k;
    return d * d;
  });
  return std::sqrt(s / counted_total(c, n)) * 2.0 / k;
}

/// The affine maps x = mx + sx·z and y = my + sy·w under which a fit runs on standardised data (mean 0,
/// standard deviation 1), so that its conditioning and the starts' meaning do not depend on the scale of
/// the scores (|x| near 1e300 or 1e-300 included), and the maps of β between the two coordinates.
struct Standardization {
  double mx = 0, sx = 1, my = 0, sy = 1;

  /// Standardises x and y (neither may be constant), point i counted c[i] times (once each if c is
  /// null: see `counted_sum`); `z` and `w` receive the standardised values.
  static Standardization of(const double* x, const double* y, int64_t n, std::vector<double>& z,
                            std::vector<double>& w, const double* c = nullptr) {
    // Moments of the pow2-scaled values (exact scaling), so that nothing overflows on the way.
    const double kx = pow2_scale(x, n), ky = pow2_scale(y, n);
    z.resize(n);
    w.resize(n);
    for (int64_t i = 0; i < n; ++i) {
      z[i] = x[i] * kx;
      w[i] = y[i] * ky;
    }
    const Moments a = counted_moments(z.data(), c, n), b = counted_moments(w.data(), c, n);
    for (int64_t i = 0; i < n; ++i) {
      z[i] = (z[i] - a.mean) / a.std;
      w[i] = (w[i] - b.mean) / b.std;
    }
    return {a.mean / kx, a.std / kx, b.mean / ky, b.std / ky};
  }

  /// β in data coordinates → β in standardised coordinates.
  template <int P>
  std::array<double, P> to_standard(const double* b) const {
    if constexpr (P == 4) {
      return {(b[0] - my) / sy, (b[1] - my) / sy, (b[2] - mx) / sx, b[3] / sx};
    } else {
      return {b[0] / sy, b[1] * sx, (b[2] - mx) / sx, b[3] * sx / sy, (b[3] * mx + b[4] - my) / sy};
    }
  }
  /// β in standardised coordinates → β in data coordinates.
  template <int P>
  std::array<double, P> from_standard(const double* c) const {
    if constexpr (P == 4) {
      return {my + sy * c[0], my + sy * c[1], mx + sx * c[2], sx * c[3]};
    } else {
      const double b4 = sy * c[3] / sx;
      return {sy * c[0], c[1] / sx, mx + sx * c[2], b4, my + sy * c[4] - b4 * mx};
    }
  }
};

/// The end of one Levenberg–Marquardt run of a P-parameter logistic fit on standardised data.
template <int P>
struct LogisticRun {
  std::array<double, P> params{};  ///< standardised β
  double cost = 0;                 ///< 0.5 · Σ (f(z) − w)²
  int64_t iterations = 0;
  LmEnd end = LmEnd::Failed;
};

/// Adds Σ over i < m of c[k][i]·c[l][i] (times weight[i] when `Weighted`) to S(k, l) for 0 ≤ k ≤ l < 5,
/// except (3, 3) when `skip33` (a sum the caller knows), two points at a time in SSE2/NEON packets
/// (Eigen::Array2d), in two passes of at most nine running sums each so that they stay in registers.
/// Unweighted, `weight` is not read.
template <bool Weighted, int Rows>
void accumulate_products(const double* const (&c)[5], const double* weight, int64_t m,
                         Eigen::Matrix<double, Rows, Rows>& S, bool skip33) {
  using Pair = Eigen::Array2d;
  using In = Eigen::Map<const Pair>;
  const int64_t even = m - m % 2;
  const auto total = [&](int k, int l, const Pair& acc) {
    double last = 0.0;
    if (even < m) last = Weighted ? weight[even] * c[k][even] * c[l][even] : c[k][even] * c[l][even];
    S(k, l) += acc[0] + acc[1] + last;
  };
  // (The left factor of each product carries the weight: Σ (weight·c[k])·c[l].)
  {
    Pair s00 = Pair::Zero(), s01 = s00, s02 = s00, s03 = s00, s04 = s00, s11 = s00, s12 = s00, s13 = s00,
         s14 = s00;
    for (int64_t i = 0; i < even; i += 2) {
      const Pair x0 = In(c[0] + i), x1 = In(c[1] + i), x2 = In(c[2] + i), x3 = In(c[3] + i),
                 x4 = In(c[4] + i);
      Pair l0 = x0, l1 = x1;
      if constexpr (Weighted) {
        const Pair wt = In(weight + i);
        l0 = wt * x0;
        l1 = wt * x1;
      }
      s00 += l0 * x0;
      s01 += l0 * x1;
      s02 += l0 * x2;
      s03 += l0 * x3;
      s04 += l0 * x4;
      s11 += l1 * x1;
      s12 += l1 * x2;
      s13 += l1 * x3;
      s14 += l1 * x4;
    }
    total(0, 0, s00), total(0, 1, s01), total(0, 2, s02), total(0, 3, s03), total(0, 4, s04);
    total(1, 1, s11), total(1, 2, s12), total(1, 3, s13), total(1, 4, s14);
  }
  Pair s22 = Pair::Zero(), s23 = s22, s24 = s22, s33 = s22, s34 = s22, s44 = s22;
  for (int64_t i = 0; i < even; i += 2) {
    const Pair x2 = In(c[2] + i), x3 = In(c[3] + i), x4 = In(c[4] + i);
    Pair l2 = x2, l3 = x3, l4 = x4;
    if constexpr (Weighted) {
      const Pair wt = In(weight + i);
      l2 = wt * x2;
      l3 = wt * x3;
      l4 = wt * x4;
    }
    s22 += l2 * x2;
    s23 += l2 * x3;
    s24 += l2 * x4;
    if (!skip33) s33 += l3 * x3;
    s34 += l3 * x4;
    s44 += l4 * x4;
  }
  total(2, 2, s22), total(2, 3, s23), total(2, 4, s24), total(3, 4, s34), total(4, 4, s44);
  if (!skip33) total(3, 3, s33);
}

/// Fits the P-parameter logistic function to (z, w) from `start` (standardised β), point i counted
/// `count[i]` times if `count` is not null (the weighted sums Σ c·r², Jᵀ C J and Jᵀ C r: the same
/// objective and iterates as on the expanded data, up to rounding).
template <int P>
LogisticRun<P> run_logistic(const std::vector<double>& z, const std::vector<double>& w,
                            const std::array<double, P>& start, int64_t max_iterations, double tolerance,
                            const double* count = nullptr) {
  const int64_t n = static_cast<int64_t>(z.size());
  Eigen::Matrix<double, P, 1> s;
  for (int k = 0; k < P; ++k) s[k] = start[k];
  // One pass per evaluation, in chunks that stay in the L1 cache: a chunk's sigmoid values come from
  // Eigen's vectorised exp, then its sums of JᵀJ (upper triangle), Jᵀr and r² are added to the totals;
  // neither r nor the n × P Jacobian is stored.
  constexpr int64_t kChunk = 256;
#ifdef OHEM_DETAIL_LOGISTIC_AVX2
  const bool avx2 = cpu_has_avx2_logistic();  // the sigmoid four points at a time (the same values)
#endif
  using Chunk = Eigen::Array<double, kChunk, 1>;
  Chunk d, q, u, v, t, r;
  // 5p: the Jacobian's columns 3 and 4 are x and 1, so that their products Σx², Σx and n are the same at
  // every β.
  double sum_xx = 0, sum_x = 0, total = static_cast<double>(n);
  if constexpr (P == 5) {
    if (count) {
      total = 0;
      for (int64_t i = 0; i < n; ++i) {
        sum_xx += count[i] * z[i] * z[i];
        sum_x += count[i] * z[i];
        total += count[i];
      }
    } else {
      for (int64_t i = 0; i < n; ++i) {
        sum_xx += z[i] * z[i];
        sum_x += z[i];
      }
    }
  }
  const auto accumulate = [&](const double* const(&cols)[5], int64_t i0, int64_t m, auto& S, bool skip33) {
    if (count) {
      accumulate_products<true>(cols, count + i0, m, S, skip33);
    } else {
      accumulate_products<false>(cols, nullptr, m, S, skip33);
    }
  };
  auto normal_equations = [&](const Eigen::Matrix<double, P, 1>& beta, Eigen::Matrix<double, P, P>& A,
                              Eigen::Matrix<double, P, 1>& g) {
    // Σ over the points of the products of the quantities the Jacobian's columns are multiples of.
    Eigen::Matrix<double, P + 1, P + 1> S = Eigen::Matrix<double, P + 1, P + 1>::Zero();
    for (int64_t i0 = 0; i0 < n; i0 += kChunk) {
      const int64_t m = std::min(kChunk, n - i0);
      const Eigen::Map<const Eigen::ArrayXd> x(z.data() + i0, m), y(w.data() + i0, m);
      auto dm = d.head(m);
      auto qm = q.head(m);
      dm = x - beta[2];
      if constexpr (P == 4) {
        // s = sigmoid((x − β3)/|β4|) = 1/(1 + exp(−(x − β3)/|β4|)) (an overflowing exp gives s = 0);
        // columns: s, 1 − s, and multiples of s(1 − s) and s(1 − s)(x − β3).
#ifdef OHEM_DETAIL_LOGISTIC_AVX2
        if (avx2) {
          inverse_one_plus_exp_avx2(d.data(), std::abs(beta[3]), true, m, q.data());
        } else {
          qm = ((-dm / std::abs(beta[3])).exp() + 1.0).inverse();
        }
#else
        qm = ((-dm / std::abs(beta[3])).exp() + 1.0).inverse();
#endif
        u.head(m) = 1.0 - qm;
        t.head(m) = qm * u.head(m);
        v.head(m) = t.head(m) * dm;
        r.head(m) = (beta[0] - beta[1]) * qm + beta[1] - y;
        const double* cols[] = {q.data(), u.data(), t.data(), v.data(), r.data()};
        accumulate(cols, i0, m, S, false);
      } else {
        // q = 1/(1 + exp(β2 (x − β3))) (an overflowing exp gives q = 0); columns: 0.5 − q, multiples of
        // q(1 − q)(x − β3) and q(1 − q), x and 1.
#ifdef OHEM_DETAIL_LOGISTIC_AVX2
        if (avx2) {
          logistic5_columns_avx2(d.data(), z.data() + i0, w.data() + i0, beta.data(), m, q.data(), u.data(),
                                 t.data(), v.data(), r.data());
        } else
#endif
        {
          qm = ((beta[1] * dm).exp() + 1.0).inverse();
          u.head(m) = 0.5 - qm;
          t.head(m) = qm * (1.0 - qm);
          v.head(m) = t.head(m) * dm;
          r.head(m) = beta[0] * u.head(m) + beta[3] * x + beta[4] - y;
        }
        const double* cols[] = {u.data(), v.data(), t.data(), z.data() + i0, r.data()};
        accumulate(cols, i0, m, S, true);
        // Σ of each column (the products with the column of ones).
        if (count) {
          const Eigen::Map<const Eigen::ArrayXd> cm(count + i0, m);
          S(0, 5) += (cm * u.head(m)).sum();
          S(1, 5) += (cm * v.head(m)).sum();
          S(2, 5) += (cm * t.head(m)).sum();
          S(4, 5) += (cm * r.head(m)).sum();
        } else {
          S(0, 5) += u.head(m).sum();
          S(1, 5) += v.head(m).sum();
          S(2, 5) += t.head(m).sum();
          S(4, 5) += r.head(m).sum();
        }
      }
    }
    // The Jacobian's columns are the accumulated quantities times factors that depend on β alone.
    if constexpr (P == 4) {
      const double span = beta[0] - beta[1], a = std::abs(beta[3]), sign = beta[3] >= 0 ? 1.0 : -1.0;
      // s, 1 − s, s(1 − s) · (−span/|β4|), s(1 − s)(x − β3) · (−span/β4² · sign β4); row 4 of S holds r.
      const double f[4] = {1.0, 1.0, -span / a, -span / (a * a) * sign};
      for (int k = 0; k < 4; ++k) {
        g[k] = f[k] * S(k, 4);
        for (int l = k; l < 4; ++l) A(k, l) = A(l, k) = f[k] * f[l] * S(k, l);
      }
      return 0.5 * S(4, 4);
    } else {
      S(3, 3) = sum_xx;
      S(3, 5) = sum_x;
      S(5, 5) = total;
      // u, q(1 − q)(x − β3) · β1, q(1 − q) · (−β1 β2), x, 1; row 4 of S holds r.
      const double fk[6] = {1.0, beta[0], -beta[0] * beta[1], 1.0, 0.0, 1.0};
      const int row[5] = {0, 1, 2, 3, 5};  // row of S for each Jacobian column
      for (int k = 0; k < 5; ++k) {
        const int rk = row[k];
        g[k] = fk[rk] * (rk < 4 ? S(rk, 4) : S(4, rk));
        for (int l = k; l < 5; ++l) {
          const int rl = row[l];
          A(k, l) = A(l, k) = fk[rk] * fk[rl] * S(std::min(rk, rl), std::max(rk, rl));
        }
      }
      return 0.5 * S(4, 4);
    }
  };
  const auto lm = levenberg_marquardt<P>(normal_equations, s, max_iterations, tolerance, tolerance);
  LogisticRun<P> out;
  for (int k = 0; k < P; ++k) out.params[k] = lm.params[k];
  out.cost = lm.cost;
  out.iterations = lm.iterations;
  out.end = lm.end;
  return out;
}

/// The least-squares line w ≈ a·z + b of standardised data (a = PLCC, b = 0 up to rounding), point i
/// counted c[i] times if c is not null (see `counted_sum`).
struct Line {
  double a = 0, b = 0;
};
inline Line least_squares_line(const double* x, const double* y, int64_t n, const double* c = nullptr) {
  const double total = counted_total(c, n);
  const double mx = counted_sum(c, n, [&](int64_t i) { return x[i]; }) / total;
  const double my = counted_sum(c, n, [&](int64_t i) { return y[i]; }) / total;
  const double sxx = counted_sum(c, n, [&](int64_t i) { return (x[i] - mx) * (x[i] - mx); });
  const double sxy = counted_sum(c, n, [&](int64_t i) { return (x[i] - mx) * (y[i] - my); });
  const double a = is_constant(x, n) || !(sxx > 0) ? 0.0 : sxy / sxx;
  return {a, my - a * mx};
}

/// A coarse search for a start on standardised data: for each centre (the 10 %, 20 %, ..., 90 % quantiles
/// of z) and slope (1/4 to 32, doubling) of the sigmoid, the parameters that enter linearly (4p: the two
/// asymptotes; 5p: amplitude, linear term and offset) are solved by least squares; returns the grid
/// point with the smallest squared error (standardised β). Cost: 72 passes over the data.
template <int P>
std::array<double, P> grid_start(const std::vector<double>& z, const std::vector<double>& w) {
  constexpr int L = P == 4 ? 2 : 3;  // linear parameters
  const int64_t n = static_cast<int64_t>(z.size());
  std::vector<double> sorted(z);
  std::sort(sorted.begin(), sorted.end());
  const double ww = accurate_sum(n, [&](int64_t i) { return w[i] * w[i]; });
  double best_sse = std::numeric_limits<double>::infinity();
  std::array<double, P> best{};
  for (int qi = 1; qi <= 9; ++qi) {
    const double c = sorted[static_cast<size_t>(qi * (n - 1) / 10)];
    for (double k = 0.25; k <= 32; k *= 2) {
      Eigen::Matrix<double, L, L> A = Eigen::Matrix<double, L, L>::Zero();
      Eigen::Matrix<double, L, 1> g = Eigen::Matrix<double, L, 1>::Zero();
      for (int64_t i = 0; i < n; ++i) {
        const double s = sigmoid(k * (z[i] - c));
        Eigen::Matrix<double, L, 1> phi;
        if constexpr (P == 4) {
          phi << s, 1.0 - s;
        } else {
          phi << s - 0.5, z[i], 1.0;  // 0.5 − 1/(1 + exp(k (z − c))) = sigmoid(k (z − c)) − 0.5
        }
        A.noalias() += phi * phi.transpose();
        g.noalias() += phi * w[i];
      }
      const Eigen::Matrix<double, L, 1> theta = A.ldlt().solve(g);
      if (!theta.allFinite()) continue;
      const double sse = ww - 2 * theta.dot(g) + theta.dot(A * theta);
      if (!(sse < best_sse)) continue;
      best_sse = sse;
      if constexpr (P == 4) {
        best = {theta[0], theta[1], c, 1.0 / k};
      } else {
        best = {theta[0], k, c, theta[1], theta[2]};
      }
    }
  }
  return best;
}

}  // namespace detail
OHEM_END_NAMESPACE
