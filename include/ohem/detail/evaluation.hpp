#pragma once
/// @file
/// Internals of ohem/evaluation.hpp: the bootstrap of `evaluate`. It resamples, computes the three rank
/// and linear metrics of each resample and takes the percentile intervals; the four fitted metrics of a
/// resample come from the caller (`evaluate` owns the logistic fits).

#include <ohem/detail/bootstrap.hpp>
#include <ohem/detail/statistics.hpp>
#include <ohem/version.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <tuple>
#include <utility>
#include <vector>

OHEM_BEGIN_NAMESPACE
namespace detail {

/// A bootstrap resample as its distinct points (x, y) and how often it draws each (c).
struct CountedSample {
  std::vector<double> x, y, c;
};

/// One bootstrap worker's buffers, reused from resample to resample (no allocation after the first).
struct ResampleScratch {
  std::vector<int64_t> idx;
  std::vector<double> xs, ys;
  CountedSample distinct;
  ResampleRanks::Scratch ranks;
};

/// The number of metrics `evaluate` bootstraps: SRCC, KRCC, PLCC, then the 4 fitted ones.
constexpr int kBootstrapMetrics = 7;

/// Runs B seeded resamples of the n pairs (x, y) on `threads` threads and returns, per metric, the
/// percentile interval (lower, upper) of coverage `confidence`: SRCC, KRCC and PLCC computed here (the
/// ranks from the original sample's sorts `ranks`, a `ResampleRanks` of x, y, n), and the four fitted
/// metrics written by `fitted(xs, ys, distinct, worker, out)` into out[0..3], where (xs, ys) is the
/// resample, `distinct` its distinct points with their draw counts and `worker` in
/// [0, resample_workers(B, threads)) the calling worker (for its own scratch). `progress` is called as in
/// `parallel_resamples`.
template <typename Fitted>
std::array<std::pair<double, double>, kBootstrapMetrics> bootstrap_intervals(
    const double* x, const double* y, int64_t n, int64_t B, double confidence, uint64_t seed, int64_t threads,
    const ResampleRanks& ranks, const std::function<void(int64_t, int64_t)>& progress, Fitted&& fitted) {
  std::vector<std::vector<double>> values(kBootstrapMetrics, std::vector<double>(B));
  // Each resample's ranks and Kendall's tau follow from the original sample's three sorts (`ranks`) and
  // how often it draws each pair (the same numbers as sorting the resample).
  std::vector<ResampleScratch> scratch(static_cast<size_t>(resample_workers(B, threads)));
  parallel_resamples(
      B, threads,
      [&](int64_t b, int64_t worker) {
        ResampleScratch& s = scratch[static_cast<size_t>(worker)];
        resample_indices(seed, b, n, s.idx);
        s.xs.resize(n);
        s.ys.resize(n);
        for (int64_t i = 0; i < n; ++i) {
          s.xs[i] = x[s.idx[i]];
          s.ys[i] = y[s.idx[i]];
        }
        double v[kBootstrapMetrics];
        std::tie(v[0], v[1]) = ranks.srcc_krcc(s.idx, s.ranks);  // also counts the draws of each pair
        v[2] = pearson(s.xs.data(), s.ys.data(), n);
        CountedSample& d = s.distinct;
        d.x.clear(), d.y.clear(), d.c.clear();
        for (int64_t j = 0; j < n; ++j) {
          if (const int64_t c = s.ranks.count[static_cast<size_t>(j)]; c > 0) {
            d.x.push_back(x[j]);
            d.y.push_back(y[j]);
            d.c.push_back(static_cast<double>(c));
          }
        }
        fitted(s.xs, s.ys, static_cast<const CountedSample&>(d), worker, v + 3);
        for (int k = 0; k < kBootstrapMetrics; ++k) values[k][b] = v[k];
      },
      progress);
  const double alpha = 1.0 - confidence;
  std::array<std::pair<double, double>, kBootstrapMetrics> out;
  for (int k = 0; k < kBootstrapMetrics; ++k) {
    std::sort(values[k].begin(), values[k].end());
    out[k] = {sorted_quantile(values[k], alpha / 2), sorted_quantile(values[k], 1 - alpha / 2)};
  }
  return out;
}

}  // namespace detail
OHEM_END_NAMESPACE
