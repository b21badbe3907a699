#pragma once
/// \file
/// The v1 report's plain-words summary, from the numbers: what the comparison, the mechanism and gMAD
/// support, and what the study cannot say whatever its numbers.
#include "sections_gmad.hpp"
#include "sections_mechanism.hpp"
#include "study_view.hpp"

#include <fmt/format.h>

#include <cmath>
#include <string>
#include <vector>

namespace ohem_study {

namespace report_detail {

// --- the plain-words summary, from the numbers ---

/// The overall comparison, the baseline's level, the reference, and the types whose interval excludes 0.
inline std::vector<std::string> comparison_findings(const Study& s) {
  std::vector<std::string> says;
  const json* overall = s.comparison("overall", "srcc");
  if (!overall) return says;
  const double d = num_or_nan(*overall, "diff_mean"), lo = num_or_nan(*overall, "ci_low"),
               hi = num_or_nan(*overall, "ci_high");
  const std::string base =
      fmt::format("Overall SRCC: baseline {}, OHEM {} (Δ {}, {} [{}, {}]; OHEM higher in {} of {} seeds).",
                  html::number(num_or_nan(*overall, "baseline_mean")),
                  html::number(num_or_nan(*overall, "ohem_mean")), signed_num(d), s.ci_name, signed_num(lo),
                  signed_num(hi), html::number(num_or_nan(*overall, "wins"), 0), s.seeds);
  if (!s.has_interval(*overall)) {
    says.push_back(base + " No interval (fewer than 2 seeds): no conclusion about a difference.");
  } else if (lo > 0) {
    says.push_back(
        base + " The interval excludes 0: on this data OHEM's held-out SRCC is higher than the baseline's.");
  } else if (hi < 0) {
    says.push_back(
        base + " The interval excludes 0: on this data OHEM's held-out SRCC is lower than the baseline's.");
  } else {
    says.push_back(base +
                   " The interval includes 0: no evidence of a difference between the methods overall.");
  }
  const double bm = num_or_nan(*overall, "baseline_mean");
  if (std::isfinite(bm)) {
    says.push_back(bm >= 0.8
                       ? fmt::format("The baseline reaches SRCC {} ≥ 0.8 on held-out content, so the "
                                     "comparison is between competent models.",
                                     html::number(bm))
                       : fmt::format("The baseline reaches only SRCC {} (< 0.8) on held-out content: both "
                                     "models are weak, which limits what the comparison can show.",
                                     html::number(bm)));
  }
  const double lvl = s.reference_metric("overall", "srcc");
  if (std::isfinite(lvl)) {
    says.push_back(fmt::format(
        "Reference: a predictor that knew each test image's distortion type and level, and nothing about "
        "its content, would reach SRCC {} overall (it scores an image with the mean training label of its "
        "type and level). A model below it has not learnt to recognise the distortions.",
        html::number(lvl)));
  }
  if (!s.has_interval(*overall)) return says;
  std::vector<std::string> better, worse;
  for (const auto& t : s.types) {
    const json* c = s.comparison(t, "srcc");
    if (!c || !s.has_interval(*c)) continue;
    if (num_or_nan(*c, "ci_low") > 0) better.push_back(t);
    if (num_or_nan(*c, "ci_high") < 0) worse.push_back(t);
  }
  says.push_back(fmt::format(
      "Per distortion type ({} types, no correction for multiple comparisons): the SRCC interval excludes "
      "0 in favour of OHEM for {}, in favour of the baseline for {}; for the others it includes 0.",
      s.types.size(), better.empty() ? "none" : comma_list(better),
      worse.empty() ? "none" : comma_list(worse)));
  return says;
}

/// Each variant's weight on the rare types, and whether magnitude pruning beats the random mask there.
inline void mechanism_findings(const Mechanism& m, std::vector<std::string>& says,
                               std::vector<std::string>& not_says) {
  for (const auto& t : m.tails) {
    if (t.train > 0) {
      says.push_back(fmt::format(
          "{}: the rare types (each under {} of the training set) make up {} of the training set but {} of "
          "the {} hardest images (×{}); most enriched type: {} (×{}); SRCC(hardness, own error) = {}.",
          t.label, pct(m.rare), pct(t.train), pct(t.hardest), pct(m.top),
          html::number(t.hardest / t.train, 2), t.max_type.empty() ? "–" : t.max_type,
          html::number(t.max_enrichment, 2), html::number(t.herr)));
    }
  }
  const auto& tails = m.tails;
  if (tails.size() < 2 || !(tails[0].train > 0) || !(tails[1].train > 0)) return;
  const double magnitude = tails[0].hardest / tails[0].train, random = tails[1].hardest / tails[1].train;
  says.push_back(
      magnitude > random
          ? fmt::format("The magnitude-pruned twin concentrates on the rare types more than the "
                        "random-mask control (×{} vs ×{}).",
                        html::number(magnitude, 2), html::number(random, 2))
          : fmt::format("The random-mask control concentrates on the rare types at least as much as "
                        "the magnitude-pruned twin (×{} vs ×{}): this does not support magnitude "
                        "pruning as what finds the long tail.",
                        html::number(random, 2), html::number(magnitude, 2)));
  not_says.push_back(
      "The enrichment figures carry no interval (one number per variant, averaged over its seeds); small "
      "differences between variants may be noise.");
}

/// What the study cannot say whatever its numbers: few seeds, synthetic data, one setting, few gMAD pairs.
inline std::vector<std::string> caveats(const Study& s) {
  std::vector<std::string> out;
  if (s.seeds < 5)
    out.push_back(
        fmt::format("Only {} seed(s): bootstrap intervals over so few seeds are unreliable; read the numbers "
                    "as a smoke test.",
                    s.seeds));
  out.push_back(
      "All images are synthetic distortions of a few dozen photographs, labelled by SSIM, not by people: the "
      "results say nothing directly about human opinion scores or authentic distortions.");
  out.push_back(
      "One backbone, one training recipe and one data mix: a difference (or its absence) may not carry over "
      "to other settings.");
  if (!s.results.at("gmad").at("pairs").empty())
    out.push_back(
        "gMAD counts are small (a handful of pairs per direction): they illustrate failures, they do not "
        "rank the models.");
  return out;
}

/// "What the numbers support" and "what they do not", from the comparison, the mechanism and gMAD.
inline Section summary_section(const Study& s, const Mechanism& mechanism) {
  std::vector<std::string> says = comparison_findings(s), not_says;
  mechanism_findings(mechanism, says, not_says);
  for (const auto& [a, r] : gmad_rates(s.results.at("gmad"))) {
    if (r.second > 0) {
      says.push_back(fmt::format("gMAD: {}'s attacks succeed in {} of {} pairs.", method_name(a),
                                 html::number(r.first, 0), html::number(r.second, 0)));
    }
  }
  for (auto& c : caveats(s)) not_says.push_back(std::move(c));
  return {"<section class=\"summary\" id=\"summary\"><h3>What the numbers support</h3>\n" +
              bullets(says, false) + "<h3>What they do not</h3>\n" + bullets(not_says, false) +
              "</section>\n",
          "## What the numbers support\n\n" + bullets(says, true) + "## What they do not\n\n" +
              bullets(not_says, true)};
}

}  // namespace report_detail

}  // namespace ohem_study
