#pragma once
/// @file
/// gMAD (group maximum differentiation, Ma et al., TPAMI 2018): let one model (the defender) pick
/// images it rates alike, and another (the attacker) pick, among them, the pair it rates most
/// differently. Plus self-gMAD between a model and its pruned twins (Wang & Ma, CVPR 2021), from
/// precomputed scores. See docs/gmad.md.

#include <ohem/scores.hpp>
#include <ohem/version.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

OHEM_BEGIN_NAMESPACE

/// The largest number of gMAD levels `gmad` accepts (each takes about 100 bytes).
constexpr int64_t kMaxGmadLevels = 1'000'000;

/// Options of a gMAD competition.
///
/// Example: `ohem::GmadOptions().levels(10).window(0.1)`
struct GmadOptions {
  /// Number L of quality levels: the defender's score range [min, max] is cut into L bins of equal
  /// width w = (max − min)/L, and level l is centred at min + (l + 1/2)·w.
  TORCH_ARG(int64_t, levels) = 5;
  /// Width of each level's window as a fraction of the bin width w, in (0, 1]: level l takes the
  /// images whose defender score is within window·w/2 of its centre. 1 takes every image.
  TORCH_ARG(double, window) = 0.2;
};

/// The pair of images one level yields: the defender rates them alike (both inside the level's
/// window), the attacker rates `high` best and `low` worst among the window's images.
struct GmadPair {
  /// Level index l in [0, L).
  int64_t level = 0;
  /// The level's centre and window [lower, upper] on the defender's scale.
  double center = 0, lower = 0, upper = 0;
  /// Number of images inside the window.
  int64_t count = 0;
  /// Index of the image the attacker rates highest in the window (smallest index among ties), −1 if
  /// the window holds fewer than 2 images.
  int64_t high = -1;
  /// Index of the image the attacker rates lowest in the window (largest index among ties), −1 if
  /// the window holds fewer than 2 images. Differs from `high` whenever it is not −1.
  int64_t low = -1;
  /// Defender's and attacker's scores of `high` and `low`.
  double defender_high = 0, defender_low = 0, attacker_high = 0, attacker_low = 0;
  /// attacker_high − attacker_low (≥ 0): how differently the attacker rates the pair.
  double gap = 0;
  /// gap divided by the attacker's score range over all images (comparable across attackers).
  double normalized_gap = 0;

  /// Returns true if the level's window holds a pair.
  bool found() const { return high >= 0; }
};

/// The outcome of one role assignment: one `GmadPair` per level.
struct GmadResult {
  std::vector<GmadPair> pairs;
  /// The defender's and attacker's score ranges over all images.
  double defender_min = 0, defender_max = 0, attacker_min = 0, attacker_max = 0;

  /// Returns the mean normalized gap over the levels that hold a pair (0 if none): the attacker's
  /// strength against this defender; the larger, the worse the defender.
  double mean_normalized_gap() const {
    double s = 0;
    int64_t k = 0;
    for (const auto& p : pairs) {
      if (p.found()) {
        s += p.normalized_gap;
        ++k;
      }
    }
    return k == 0 ? 0.0 : s / static_cast<double>(k);
  }
};

/// Runs gMAD with `defender` choosing the levels and `attacker` choosing each level's pair, in O(n)
/// time and O(L) memory (one pass; the windows of different levels never overlap).
///
/// Throws if the sizes differ, if there are fewer than 2 images, if a score is NaN or infinite, if the
/// defender's scores are constant (no range to split), if `levels` is not in [1, kMaxGmadLevels], or if
/// `window` is not in (0, 1].
/// Example: `auto r = ohem::gmad(scores_a, scores_b); for (auto& p : r.pairs) show(p.high, p.low);`
inline GmadResult gmad(const ScoresRef& defender, const ScoresRef& attacker,
                       const GmadOptions& options = {}) {
  TORCH_CHECK(defender.size() == attacker.size(), "ohem::gmad: defender has ", defender.size(),
              " scores but attacker has ", attacker.size());
  TORCH_CHECK(defender.size() >= 2, "ohem::gmad: needs at least 2 images, got ", defender.size());
  TORCH_CHECK(options.levels() >= 1 && options.levels() <= kMaxGmadLevels,
              "ohem::gmad: GmadOptions::levels must be in [1, ", kMaxGmadLevels, "], got ", options.levels());
  TORCH_CHECK(options.window() > 0 && options.window() <= 1,
              "ohem::gmad: GmadOptions::window must be in (0, 1], got ", options.window());
  const int64_t n = defender.size(), L = options.levels();
  const double *d = defender.data(), *a = attacker.data();
  GmadResult out;
  out.defender_min = out.attacker_min = std::numeric_limits<double>::infinity();
  out.defender_max = out.attacker_max = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < n; ++i) {
    TORCH_CHECK(std::isfinite(d[i]), "ohem::gmad: defender[", i, "] is ", d[i], "; scores must be finite");
    TORCH_CHECK(std::isfinite(a[i]), "ohem::gmad: attacker[", i, "] is ", a[i], "; scores must be finite");
    out.defender_min = std::min(out.defender_min, d[i]);
    out.defender_max = std::max(out.defender_max, d[i]);
    out.attacker_min = std::min(out.attacker_min, a[i]);
    out.attacker_max = std::max(out.attacker_max, a[i]);
  }
  TORCH_CHECK(out.defender_max > out.defender_min, "ohem::gmad: the defender's scores are constant (all ",
              out.defender_min, "); gMAD needs a score range to split into levels");
  const double width = (out.defender_max - out.defender_min) / static_cast<double>(L);
  const double half = 0.5 * options.window() * width;
  out.pairs.resize(L);
  for (int64_t l = 0; l < L; ++l) {
    auto& p = out.pairs[l];
    p.level = l;
    p.center = out.defender_min + (static_cast<double>(l) + 0.5) * width;
    p.lower = options.window() >= 1 ? out.defender_min + static_cast<double>(l) * width : p.center - half;
    p.upper = options.window() >= 1 ? out.defender_min + static_cast<double>(l + 1) * width : p.center + half;
  }
  for (int64_t i = 0; i < n; ++i) {
    const double t = (d[i] - out.defender_min) / width;
    const int64_t l = std::min(static_cast<int64_t>(t), L - 1);
    auto& p = out.pairs[l];
    if (options.window() < 1 && std::abs(d[i] - p.center) > half) continue;
    if (p.count++ == 0) {
      p.high = p.low = i;
    } else {
      if (a[i] > a[p.high]) p.high = i;
      if (a[i] <= a[p.low]) p.low = i;
    }
  }
  const double arange = out.attacker_max - out.attacker_min;
  for (auto& p : out.pairs) {
    if (p.count < 2) {
      p.high = p.low = -1;
      continue;
    }
    // All tied: `high` kept the first and `low` the last image of the window, so they differ.
    p.defender_high = d[p.high];
    p.defender_low = d[p.low];
    p.attacker_high = a[p.high];
    p.attacker_low = a[p.low];
    p.gap = p.attacker_high - p.attacker_low;
    p.normalized_gap = arange > 0 ? p.gap / arange : 0.0;
  }
  return out;
}

/// Both role assignments of a gMAD competition between models A and B.
struct GmadCompetition {
  /// A defends (chooses the levels), B attacks (chooses the pairs).
  GmadResult a_defends;
  /// B defends, A attacks.
  GmadResult b_defends;
};

/// Runs gMAD in both role assignments between models A and B.
///
/// Throws like `gmad` (the defender's constant-score error applies to either model).
/// Example: `auto c = ohem::gmad_competition(full, pruned); c.a_defends.mean_normalized_gap();`
inline GmadCompetition gmad_competition(const ScoresRef& a, const ScoresRef& b,
                                        const GmadOptions& options = {}) {
  return {gmad(a, b, options), gmad(b, a, options)};
}

/// Self-gMAD between a model and its twins: one competition per twin, and one against the twins'
/// ensemble (their mean score per image).
struct SelfGmadResult {
  /// `twins[k]`: the model is A, twin k is B.
  std::vector<GmadCompetition> twins;
  /// The model is A, the mean of all twins' scores is B.
  GmadCompetition ensemble;
};

/// Runs self-gMAD from precomputed scores: `model[i]` is the full model's score of image i, `twins[k][i]`
/// twin k's (e.g. pruned self-competitors with different masks). Pairs where the model defends and a
/// twin attacks show images the model rates alike but its own pruned versions tell apart: candidates for
/// the model's failures (Wang & Ma, CVPR 2021).
///
/// Throws if there is no twin, if a twin's size differs from the model's (naming the twin), and like
/// `gmad`.
/// Example: `auto s = ohem::self_gmad(full_scores, {twin0_scores, twin1_scores});`
inline SelfGmadResult self_gmad(const ScoresRef& model, const std::vector<std::vector<double>>& twins,
                                const GmadOptions& options = {}) {
  TORCH_CHECK(!twins.empty(), "ohem::self_gmad: needs at least one twin's scores");
  const int64_t n = model.size();
  std::vector<double> mean(n, 0.0);
  SelfGmadResult out;
  for (size_t k = 0; k < twins.size(); ++k) {
    TORCH_CHECK(static_cast<int64_t>(twins[k].size()) == n, "ohem::self_gmad: twin ", k, " has ",
                twins[k].size(), " scores but the model has ", n);
    out.twins.push_back(gmad_competition(model, twins[k], options));
    for (int64_t i = 0; i < n; ++i) mean[i] += twins[k][i];
  }
  for (auto& v : mean) v /= static_cast<double>(twins.size());
  out.ensemble = gmad_competition(model, mean, options);
  return out;
}

/// Runs self-gMAD with the twins' scores as the rows of a [K, n] tensor.
///
/// Throws if `twins` is not 2-D with n columns, and like the overload above.
/// Example: `auto s = ohem::self_gmad(full_scores, torch::stack({twin0, twin1}));`
inline SelfGmadResult self_gmad(const ScoresRef& model, const torch::Tensor& twins,
                                const GmadOptions& options = {}) {
  TORCH_CHECK(twins.defined() && twins.dim() == 2,
              "ohem::self_gmad: expected twins' scores of shape [K, n], got ",
              twins.defined() ? twins.sizes() : c10::IntArrayRef{});
  TORCH_CHECK(twins.size(1) == model.size(), "ohem::self_gmad: twins have ", twins.size(1),
              " scores per row but the model has ", model.size());
  const auto t = twins.detach().to(torch::kCPU, torch::kDouble).contiguous();
  std::vector<std::vector<double>> rows(t.size(0));
  for (int64_t k = 0; k < t.size(0); ++k) {
    const double* p = t[k].data_ptr<double>();
    rows[k].assign(p, p + t.size(1));
  }
  return self_gmad(model, rows, options);
}

OHEM_END_NAMESPACE
