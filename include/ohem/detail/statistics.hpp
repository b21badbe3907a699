#pragma once
/// @file
/// Internals of the IQA metrics: compensated sums, moments, Pearson's r, average ranks and Kendall's
/// tau-b on raw arrays of finite doubles, safe for finite values of any magnitude.

#include <ohem/version.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <utility>
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

/// Sorts v in place with a bottom-up merge sort (buf: scratch, resized to v's size) and returns the number
/// of pairs i < j with v[i] > v[j] (the inversions: Kendall's discordant pairs).
inline int64_t count_inversions(std::vector<double>& v, std::vector<double>& buf) {
  const auto n = static_cast<int64_t>(v.size());
  buf.resize(v.size());
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
  return dis;
}

/// How many values of each rank 0..R-1 have been added (a Fenwick tree): `add` and `at_most` in
/// O(log R), with independent loads (no chain of dependent ones, as a merge has). Counts up to 2^32 − 1 in
/// all.
class RankCounts {
 public:
  /// Empties the counts of ranks 0..R-1.
  void reset(int64_t R) { tree_.assign(static_cast<size_t>(R) + 1, 0); }
  /// Adds c values of rank r.
  void add(int64_t r, uint32_t c) {
    const auto size = static_cast<uint64_t>(tree_.size());
    for (auto i = static_cast<uint64_t>(r) + 1; i < size; i += i & (~i + 1)) tree_[i] += c;
  }
  /// Returns how many values of rank ≤ r have been added.
  uint64_t at_most(int64_t r) const {
    uint64_t sum = 0;
    for (auto i = static_cast<uint64_t>(r) + 1; i > 0; i &= i - 1) sum += tree_[i];
    return sum;
  }

 private:
  std::vector<uint32_t> tree_;
};

/// Kendall's tau-b from the pair counts of n values: ties in x, in y, in both, and the discordant pairs;
/// 0 if either side is constant. The same expression, in the same order, as scipy.stats.kendalltau.
inline double kendall_from_counts(int64_t n, int64_t xtie, int64_t ytie, int64_t ntie, int64_t dis) {
  const int64_t tot = n * (n - 1) / 2;
  if (xtie == tot || ytie == tot) return 0.0;
  const int64_t con_minus_dis = tot - xtie - ytie + ntie - 2 * dis;
  const double tau = static_cast<double>(con_minus_dis) / std::sqrt(static_cast<double>(tot - xtie)) /
                     std::sqrt(static_cast<double>(tot - ytie));
  return std::clamp(tau, -1.0, 1.0);
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
  std::vector<double> v(n), buf;
  for (int64_t i = 0; i < n; ++i) v[i] = y[order[i]];
  const int64_t dis = count_inversions(v, buf);
  const int64_t ytie = tied_pairs(n, [&](int64_t i) { return v[i] == v[i - 1]; });
  return kendall_from_counts(n, xtie, ytie, ntie, dis);
}

/// Rank and Kendall statistics of bootstrap resamples in linear time plus one merge sort (ohem::evaluate).
///
/// A resample draws each of the n original pairs c_j times (Σ c_j = n). Its sorted order is the original
/// sorted order with element j repeated c_j times, so the three sorts of a resample (the ranks of x and of
/// y, Kendall's sort by (x, y)) are made once for the original sample, and each resample only walks them
/// with its counts. Every number is the one `average_ranks` / `kendall_tau_b` give on the resampled
/// arrays: the same integer positions and pair counts enter the same expressions (ties are the runs of
/// equal values, -0 equal to +0, in both).
class ResampleRanks {
 public:
  /// Sorts the original sample (finite values) once.
  ResampleRanks(const double* x, const double* y, int64_t n) : x_(x), y_(y), n_(n) {
    by_x_.resize(n);
    std::iota(by_x_.begin(), by_x_.end(), int64_t{0});
    by_y_ = by_x_;
    by_xy_ = by_x_;
    std::sort(by_x_.begin(), by_x_.end(), [&](int64_t a, int64_t b) { return x[a] < x[b]; });
    std::sort(by_y_.begin(), by_y_.end(), [&](int64_t a, int64_t b) { return y[a] < y[b]; });
    std::sort(by_xy_.begin(), by_xy_.end(),
              [&](int64_t a, int64_t b) { return x[a] < x[b] || (x[a] == x[b] && y[a] < y[b]); });
    // Kendall's walk reads no value: y's dense rank (one per run of equal values) in the y and (x, y)
    // orders, and the runs of equal x and of equal (x, y) in the (x, y) order, numbered.
    packed_ = n < (int64_t{1} << 31);  // draw counts fit in RankCounts' 32 bits
    std::vector<int64_t> yrank(n);
    y_run_.resize(n);
    for (int64_t k = 0, r = -1; k < n; ++k) {
      if (k == 0 || y[by_y_[k]] != y[by_y_[k - 1]]) ++r;
      yrank[by_y_[k]] = y_run_[k] = r;
      y_ranks_ = r + 1;
    }
    xy_yrank_.resize(n);
    x_run_.resize(n);
    xy_run_.resize(n);
    for (int64_t k = 0, rx = -1, rxy = -1; k < n; ++k) {
      const int64_t j = by_xy_[k], p = k == 0 ? -1 : by_xy_[k - 1];
      const bool same_x = p >= 0 && x[j] == x[p];
      rx += !same_x;
      rxy += !(same_x && y[j] == y[p]);
      xy_yrank_[k] = yrank[j];
      x_run_[k] = rx;
      xy_run_[k] = rxy;
    }
  }

  /// One worker's buffers, reused from resample to resample.
  struct Scratch {
    std::vector<int64_t> count;         // c_j
    std::vector<double> rank;           // the average rank of original j in the resample
    std::vector<double> rx, ry;         // the resample's ranks, in resample order
    std::vector<double> v, buf;         // Kendall: y in (x, y) order, and the merge sort's buffer
    RankCounts drawn_y;                 // Kendall: y's ranks drawn so far in the (x, y) order
    std::vector<int64_t> drawn_rank;    // Kendall: y's rank of each drawn pair, in the (x, y) order
    std::vector<uint32_t> drawn_count;  // and its draw count
  };

  /// Returns (SRCC, KRCC) of the resample whose i-th pair is original idx[i] (n indices in [0, n)),
  /// computing in `s`.
  std::pair<double, double> srcc_krcc(const std::vector<int64_t>& idx, Scratch& s) const {
    const int64_t n = n_;
    s.count.assign(static_cast<size_t>(n), 0);
    for (int64_t i = 0; i < n; ++i) ++s.count[idx[i]];
    s.rx.resize(n);
    s.ry.resize(n);
    s.rank.resize(n);
    ranks(by_x_, x_, idx, s, s.rx);
    ranks(by_y_, y_, idx, s, s.ry);
    const double srcc = pearson(s.rx.data(), s.ry.data(), n);
    // Kendall: runs of equal x (and of equal (x, y)) are contiguous in the (x, y) order.
    TiedRuns xtie, ntie, ytie;
    if (packed_) {
      // Each drawn pair once, in the (x, y) order: its c copies are discordant with the copies drawn
      // before it of a larger y (count_inversions of the resample's y: the same integers).
      // A pair drawn 0 times changes no tie count (it adds 0 to a run, or closes a run that no later
      // pair continues), so the walks need no branch on it; the drawn pairs are listed for the tree.
      s.drawn_rank.resize(static_cast<size_t>(n));
      s.drawn_count.resize(static_cast<size_t>(n));
      int64_t m = 0, prev_x = -1, prev_xy = -1;
      for (int64_t k = 0; k < n; ++k) {
        const auto c = s.count[by_xy_[k]];
        s.drawn_rank[m] = xy_yrank_[k];
        s.drawn_count[m] = static_cast<uint32_t>(c);
        m += c != 0;
        xtie.add(x_run_[k] == prev_x, c);
        ntie.add(xy_run_[k] == prev_xy, c);
        prev_x = x_run_[k];
        prev_xy = xy_run_[k];
      }
      s.drawn_y.reset(y_ranks_);
      uint64_t drawn = 0, dis = 0;
      for (int64_t t = 0; t < m; ++t) {
        const uint32_t c = s.drawn_count[t];
        dis += c * (drawn - s.drawn_y.at_most(s.drawn_rank[t]));
        s.drawn_y.add(s.drawn_rank[t], c);
        drawn += c;
      }
      int64_t prev_y = -1;
      for (int64_t k = 0; k < n; ++k) {
        ytie.add(y_run_[k] == prev_y, s.count[by_y_[k]]);
        prev_y = y_run_[k];
      }
      return {srcc,
              kendall_from_counts(n, xtie.pairs(), ytie.pairs(), ntie.pairs(), static_cast<int64_t>(dis))};
    }
    s.v.resize(n);
    int64_t pos = 0, prev = -1;
    for (const int64_t j : by_xy_) {
      const int64_t c = s.count[j];
      if (c == 0) continue;
      for (int64_t k = 0; k < c; ++k) s.v[pos++] = y_[j];
      const bool same_x = prev >= 0 && x_[j] == x_[prev];
      xtie.add(same_x, c);
      ntie.add(same_x && y_[j] == y_[prev], c);
      prev = j;
    }
    prev = -1;
    for (const int64_t j : by_y_) {
      const int64_t c = s.count[j];
      if (c == 0) continue;
      ytie.add(prev >= 0 && y_[j] == y_[prev], c);
      prev = j;
    }
    const int64_t dis = count_inversions(s.v, s.buf);
    return {srcc, kendall_from_counts(n, xtie.pairs(), ytie.pairs(), ntie.pairs(), dis)};
  }

 private:
  // The tied pairs of a sorted sequence given as runs of c equal copies: `tied_pairs` with multiplicities.
  struct TiedRuns {
    int64_t done = 0, run = 0;
    void add(bool same_as_previous, int64_t c) {
      if (same_as_previous) {
        run += c;
      } else {
        done += run * (run - 1) / 2;
        run = c;
      }
    }
    int64_t pairs() const { return done + run * (run - 1) / 2; }
  };

  // The resample's average ranks of `values` (sorted by `order`), in resample order, into `out`.
  void ranks(const std::vector<int64_t>& order, const double* values, const std::vector<int64_t>& idx,
             Scratch& s, std::vector<double>& out) const {
    int64_t pos = 0;  // positions before the current run of equal values
    for (int64_t a = 0; a < n_;) {
      int64_t b = a + 1;
      int64_t total = s.count[order[a]];
      while (b < n_ && values[order[b]] == values[order[a]]) total += s.count[order[b++]];
      // The mean of the positions pos+1 .. pos+total, as average_ranks computes it.
      const double r = 0.5 * static_cast<double>(pos + 1 + pos + total);
      for (int64_t k = a; k < b; ++k) s.rank[order[k]] = r;
      pos += total;
      a = b;
    }
    for (int64_t i = 0; i < n_; ++i) out[i] = s.rank[idx[i]];
  }

  const double* x_;
  const double* y_;
  int64_t n_;
  std::vector<int64_t> by_x_, by_y_, by_xy_;
  bool packed_ = true;                              // the Kendall walk with RankCounts (n < 2^31)
  int64_t y_ranks_ = 0;                             // distinct values of y
  std::vector<int64_t> y_run_;                      // y's dense rank at each position of by_y_
  std::vector<int64_t> xy_yrank_, x_run_, xy_run_;  // at each position of by_xy_
};

}  // namespace detail
OHEM_END_NAMESPACE
