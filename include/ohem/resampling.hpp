#pragma once
/// @file
/// The resampling behind ohem's bootstrap intervals (`ohem::evaluate`): resample b of a seeded bootstrap
/// as n indices drawn with replacement from its own random stream (seed, b), and the percentile rule
/// that reads an interval off the sorted resampled values. Public so that a tool's own bootstrap (over
/// images, over seeds) draws the same resamples and reads its interval the same way (docs/metrics.md).
///
/// ```cpp
/// std::vector<int64_t> idx;
/// std::vector<double> means;
/// for (int64_t b = 0; b < 10000; ++b) {
///   ohem::bootstrap_indices(/*seed=*/7, b, n, idx);
///   means.push_back(mean_of(values, idx));
/// }
/// std::sort(means.begin(), means.end());
/// double lower = ohem::sorted_quantile(means, 0.025), upper = ohem::sorted_quantile(means, 0.975);
/// ```

#include <ohem/detail/bootstrap.hpp>
#include <ohem/version.hpp>

#include <c10/util/Exception.h>

#include <algorithm>
#include <cstdint>
#include <vector>

OHEM_BEGIN_NAMESPACE

/// Fills `indices` with resample `b`'s n indices in [0, n), drawn with replacement from its own stream
/// (seed, b) (splitmix64): the same indices for the same (seed, b, n) on every platform, standard library
/// and thread, so resamples can be drawn in any order and on any number of threads.
/// Throws if n < 1 or b < 0.
inline void bootstrap_indices(uint64_t seed, int64_t b, int64_t n, std::vector<int64_t>& indices) {
  TORCH_CHECK(n >= 1, "ohem::bootstrap_indices: n must be at least 1, got ", n);
  TORCH_CHECK(b >= 0, "ohem::bootstrap_indices: the resample index b must be >= 0, got ", b);
  detail::resample_indices(seed, b, n, indices);
}

/// Returns the q-quantile of `sorted` (ascending) by linear interpolation between the two nearest values
/// (numpy.quantile's default): the rule of ohem's percentile intervals.
/// Throws if `sorted` is empty or not ascending, or if q is not in [0, 1].
inline double sorted_quantile(const std::vector<double>& sorted, double q) {
  TORCH_CHECK(!sorted.empty(), "ohem::sorted_quantile: no values");
  TORCH_CHECK(q >= 0 && q <= 1, "ohem::sorted_quantile: q must be in [0, 1], got ", q);
  TORCH_CHECK(std::is_sorted(sorted.begin(), sorted.end()),
              "ohem::sorted_quantile: the values must be sorted ascending (std::sort them first)");
  return detail::sorted_quantile(sorted, q);
}

OHEM_END_NAMESPACE
