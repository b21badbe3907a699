#pragma once
/// @file
/// Correlation metrics of IQA: SRCC, KRCC (tau-b), PLCC, and the RMSE of scores on the same scale.
/// Predictions first, subjective scores (MOS) second; see docs/metrics.md.

#include <ohem/detail/statistics.hpp>
#include <ohem/scores.hpp>
#include <ohem/version.hpp>

#include <c10/util/Exception.h>

#include <cmath>
#include <cstdint>
#include <vector>

OHEM_BEGIN_NAMESPACE

/// Returns the ranks 1..n of `values`, ties given the mean of their ranks (scipy.stats.rankdata's
/// "average"): the ranks `srcc` correlates.
///
/// Throws if a value is NaN or infinite.
/// Example: `ohem::average_ranks(std::vector<double>{3, 1, 3, 2})  // {3.5, 1, 3.5, 2}`
inline std::vector<double> average_ranks(const ScoresRef& values) {
  for (int64_t i = 0; i < values.size(); ++i) {
    TORCH_CHECK(std::isfinite(values[i]), "ohem::average_ranks: values[", i, "] is ", values[i],
                "; values must be finite");
  }
  return detail::average_ranks(values.data(), values.size());
}

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
  return detail::rms_difference(prediction.data(), mos.data(), prediction.size());
}

OHEM_END_NAMESPACE
