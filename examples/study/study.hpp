#pragma once
/// @file
/// The study's analyses (examples/study/v1_run.hpp runs the trainings): paired per-seed differences with
/// bootstrap intervals, the mechanism (which training images the twin finds hard: enrichment of each
/// distortion type among the hardest, and the rank correlation of hardness with the image's own error),
/// and gMAD between the two final models adjudicated by the known labels. Results are JSON in the
/// "ohem-study/1" schema (STUDY_CONTRACT / docs/study.md); NaN is written as null.

#include <toolkit/datasets.hpp>
#include <toolkit/trainer_base.hpp>

#include <ohem/correlation.hpp>
#include <ohem/gmad.hpp>
#include <ohem/resampling.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ohem_study {

using ohem_examples::Dataset;
using ohem_examples::EpochStats;
using ohem_examples::EvalResult;

/// A number for results.json: NaN and infinities become null.
inline nlohmann::ordered_json number(double x) {
  return std::isfinite(x) ? nlohmann::ordered_json(x) : nlohmann::ordered_json();
}

/// Returns the mean of `v` (NaN if empty).
inline double mean(const std::vector<double>& v) {
  if (v.empty()) return NAN;
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

/// Returns the sample standard deviation of `v` (0 for one value, NaN if empty).
inline double stddev(const std::vector<double>& v) {
  if (v.size() < 2) return v.empty() ? NAN : 0.0;
  const double m = mean(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size() - 1));
}

/// One training run of the study and what the analyses need from it.
struct Run {
  int64_t seed = 0;
  std::string method;  ///< "baseline", "ohem" (the method), "random", "ensemble4"
  double seconds = 0;  ///< wall time of the training and final evaluation
  int64_t steps = 0;   ///< optimiser steps
  EvalResult test;     ///< final evaluation on the held-out content (predictions by dataset index)
  std::vector<EpochStats> curve;
  std::vector<int64_t> train;             ///< indices (into the study's dataset) of the training images
  std::vector<double> hardness;           ///< per training image: twin disagreement averaged over training
  std::vector<double> train_predictions;  ///< per training image: the final full model's score
};

/// A paired comparison over seeds of one metric: OHEM − baseline per seed.
struct PairedDifference {
  double baseline_mean = NAN, baseline_std = NAN, ohem_mean = NAN, ohem_std = NAN;
  double diff_mean = NAN, ci_low = NAN, ci_high = NAN, ci_level = 0.95;
  int64_t wins = 0;   ///< seeds where OHEM is higher
  int64_t seeds = 0;  ///< seeds compared
};

/// Compares `ohem[s]` with `baseline[s]` (the same seed s): means, standard deviations, the mean paired
/// difference with a percentile bootstrap interval over seeds (`resamples` resamples of the seeds, drawn
/// with ohem's seeded bootstrap streams), and the number of seeds OHEM wins. Values that are NaN on
/// either side drop that seed.
inline PairedDifference paired_difference(const std::vector<double>& baseline,
                                          const std::vector<double>& ohem, int64_t resamples = 10000,
                                          double level = 0.95, uint64_t seed = 0) {
  TORCH_CHECK(baseline.size() == ohem.size(), "paired_difference: ", baseline.size(), " baseline values but ",
              ohem.size(), " OHEM values");
  std::vector<double> b, o, d;
  for (size_t s = 0; s < baseline.size(); ++s) {
    if (std::isnan(baseline[s]) || std::isnan(ohem[s])) continue;
    b.push_back(baseline[s]);
    o.push_back(ohem[s]);
    d.push_back(ohem[s] - baseline[s]);
  }
  PairedDifference r;
  r.ci_level = level;
  r.seeds = static_cast<int64_t>(d.size());
  if (d.empty()) return r;
  r.baseline_mean = mean(b);
  r.baseline_std = stddev(b);
  r.ohem_mean = mean(o);
  r.ohem_std = stddev(o);
  r.diff_mean = mean(d);
  for (double x : d) r.wins += x > 0 ? 1 : 0;
  const auto n = static_cast<int64_t>(d.size());
  std::vector<double> means(static_cast<size_t>(resamples));
  std::vector<int64_t> idx;
  for (int64_t k = 0; k < resamples; ++k) {
    ohem::bootstrap_indices(seed, k, n, idx);
    double s = 0;
    for (int64_t i : idx) s += d[static_cast<size_t>(i)];
    means[static_cast<size_t>(k)] = s / static_cast<double>(n);
  }
  std::sort(means.begin(), means.end());
  r.ci_low = ohem::sorted_quantile(means, (1 - level) / 2);
  r.ci_high = ohem::sorted_quantile(means, 1 - (1 - level) / 2);
  return r;
}

/// Returns each value's rank in [0, 1] (average ranks of ties, divided by n − 1).
inline std::vector<double> rank_normalised(const std::vector<double>& v) {
  std::vector<double> r = ohem::average_ranks(v);
  const double top = std::max<double>(1.0, static_cast<double>(v.size()) - 1.0);
  for (double& x : r) x = (x - 1.0) / top;
  return r;
}

/// One distortion type in the mechanism analysis.
struct TypeHardness {
  std::string type;
  double train_share = 0;    ///< share of the training images
  double hardest_share = 0;  ///< share of the `top_fraction` hardest training images
  double enrichment = NAN;   ///< hardest_share / train_share
  double mean_hardness = NAN;
};

/// The mechanism, measured on one run: how the distortion types are represented among the hardest
/// training images, and how hardness ranks against the image's own error.
struct Mechanism {
  std::vector<TypeHardness> by_type;
  /// Spearman between hardness and the absolute difference of the rank-normalised final prediction and
  /// the rank-normalised label, over the training images.
  double hardness_error_srcc = NAN;
};

/// The training images of a run that have a hardness value (seen), with their hardness and own error:
/// the absolute difference of the rank-normalised final prediction and the rank-normalised label.
struct HardnessError {
  std::vector<size_t> seen;  ///< positions in run.train
  std::vector<double> hardness, error;
};

/// Returns `run`'s HardnessError over the labels of `all` (empty with fewer than 2 seen images).
inline HardnessError hardness_error(const Dataset& all, const Run& run) {
  HardnessError e;
  for (size_t k = 0; k < run.train.size(); ++k)
    if (std::isfinite(run.hardness[k])) e.seen.push_back(k);
  if (e.seen.size() < 2) return HardnessError{};
  std::vector<double> pred, label;
  for (size_t k : e.seen) {
    e.hardness.push_back(run.hardness[k]);
    pred.push_back(run.train_predictions[k]);
    label.push_back(all.samples[static_cast<size_t>(run.train[k])].mos);
  }
  const std::vector<double> rp = rank_normalised(pred), rl = rank_normalised(label);
  e.error.resize(e.hardness.size());
  for (size_t i = 0; i < e.error.size(); ++i) e.error[i] = std::abs(rp[i] - rl[i]);
  return e;
}

/// Returns the within-type rank correlation of hardness and own error in `run`: Spearman over each
/// distortion type's seen training images (types with at least 3), averaged over the types (NaN if none).
inline double within_type_hardness_error_srcc(const Dataset& all, const Run& run) {
  const HardnessError e = hardness_error(all, run);
  std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> by_type;
  for (size_t i = 0; i < e.seen.size(); ++i) {
    auto& [h, err] = by_type[all.samples[static_cast<size_t>(run.train[e.seen[i]])].type];
    h.push_back(e.hardness[i]);
    err.push_back(e.error[i]);
  }
  std::vector<double> per_type;
  for (const auto& [type, v] : by_type) {
    if (v.first.size() < 3) continue;
    const double r = ohem::srcc(v.first, v.second);
    if (std::isfinite(r)) per_type.push_back(r);
  }
  return mean(per_type);
}

/// Analyses `run` (its `train`, `hardness` and `train_predictions`) over the labels and types of `all`:
/// the hardest ceil(top_fraction · n) training images against the whole training set, per type in
/// `types` order. Images without a hardness value (never seen) are left out.
inline Mechanism mechanism(const Dataset& all, const Run& run, const std::vector<std::string>& types,
                           double top_fraction) {
  const HardnessError e = hardness_error(all, run);
  const std::vector<size_t>& seen = e.seen;
  const std::vector<double>& h = e.hardness;
  Mechanism m;
  if (seen.size() < 2) return m;
  m.hardness_error_srcc = ohem::srcc(h, e.error);

  std::vector<size_t> order(h.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return h[a] > h[b]; });
  const auto top = std::max<size_t>(
      1, static_cast<size_t>(std::ceil(top_fraction * static_cast<double>(order.size()) - 1e-9)));
  std::map<std::string, double> count, hardest, sum;
  for (size_t i = 0; i < order.size(); ++i) {
    const std::string& t = all.samples[static_cast<size_t>(run.train[seen[order[i]]])].type;
    count[t] += 1;
    sum[t] += h[order[i]];
    if (i < top) hardest[t] += 1;
  }
  for (const auto& t : types) {
    TypeHardness th;
    th.type = t;
    th.train_share = count[t] / static_cast<double>(order.size());
    th.hardest_share = hardest[t] / static_cast<double>(top);
    th.enrichment = th.train_share > 0 ? th.hardest_share / th.train_share : NAN;
    th.mean_hardness = count[t] > 0 ? sum[t] / count[t] : NAN;
    m.by_type.push_back(th);
  }
  return m;
}

/// One adjudicated gMAD pair: the defender rates both images alike, the attacker rates image 0 higher.
struct GmadCase {
  std::string attacker, defender;
  int64_t level = 0;                  ///< 1-based quality level of the defender
  double defender_level_score = 0;    ///< the level's centre on the defender's scale
  int64_t image[2] = {-1, -1};        ///< dataset indices: [0] the attacker's preferred, [1] the other
  double attacker_score[2] = {0, 0};  ///< scores of image[0], image[1]
  double defender_score[2] = {0, 0};
  int64_t attacker_prefers = 0;   ///< always 0 (the order of `image`)
  int64_t label_prefers = 0;      ///< 0 or 1: which image the label (SSIM) rates higher
  bool attack_succeeded = false;  ///< the label agrees with the attacker by more than the margin
};

/// Runs gMAD with `defender` choosing levels and `attacker` choosing pairs, on the test images
/// `indices` (scores aligned with them), and adjudicates each pair by the labels of `all`: the attack
/// succeeds when the label prefers the image the attacker prefers by more than `margin`.
inline std::vector<GmadCase> adjudicated_gmad(const Dataset& all, const std::vector<int64_t>& indices,
                                              const std::vector<double>& defender,
                                              const std::vector<double>& attacker,
                                              const std::string& defender_name,
                                              const std::string& attacker_name, int64_t levels,
                                              double margin) {
  const ohem::GmadResult r = ohem::gmad(defender, attacker, ohem::GmadOptions().levels(levels));
  std::vector<GmadCase> out;
  for (const auto& p : r.pairs) {
    if (!p.found()) continue;
    GmadCase c;
    c.attacker = attacker_name;
    c.defender = defender_name;
    c.level = p.level + 1;
    c.defender_level_score = p.center;
    const int64_t pick[2] = {p.high, p.low};
    double label[2];
    for (int k = 0; k < 2; ++k) {
      c.image[k] = indices[static_cast<size_t>(pick[k])];
      c.attacker_score[k] = attacker[static_cast<size_t>(pick[k])];
      c.defender_score[k] = defender[static_cast<size_t>(pick[k])];
      label[k] = all.samples[static_cast<size_t>(c.image[k])].mos;
    }
    c.attacker_prefers = 0;
    c.label_prefers = label[0] >= label[1] ? 0 : 1;
    c.attack_succeeded = c.label_prefers == c.attacker_prefers && std::abs(label[0] - label[1]) > margin;
    out.push_back(c);
  }
  return out;
}

}  // namespace ohem_study
