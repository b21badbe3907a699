#pragma once
/// \file
/// Study v2's registered decision rule (docs/study.md "Study v2: registered design") and its words: an
/// endpoint's verdict (above 0, below 0, neither), its reading by the endpoint's name, and its line
/// "Δ = …, 95 % t-interval […], sign-flip p = …, n = … seeds".
#include "json_access.hpp"
#include "text.hpp"

#include <toolkit/html.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <map>
#include <string>

namespace ohem_study {

namespace report_detail {

/// The level of the registered decision rules (docs/study.md "Study v2: registered design"): two-sided 5 %.
inline constexpr double kV2Alpha = 0.05;

/// An arm's display name.
inline std::string arm_name(const std::string& a) {
  return a == "ohem" ? "OHEM (magnitude masks)" : a == "random" ? "OHEM (random masks)" : a;
}

/// A p-value with 4 decimals (null: "–").
inline std::string p_text(double p) {
  return html::number(p, 4);
}

/// Endpoint `e`'s t-interval "[lo, hi]" (4 decimals).
inline std::string interval_text(const json& e) {
  return "[" + signed_num(num_or_nan(e, "ci_low"), 4) + ", " + signed_num(num_or_nan(e, "ci_high"), 4) + "]";
}

/// "95 % t-interval", from endpoint `e`'s confidence.
inline std::string t_interval_name(const json& e) {
  const double c = num_or_nan(e, "confidence");
  return fmt::format("{:.0f} % t-interval", 100 * (std::isfinite(c) ? c : 0.95));
}

/// What the registered rule says of an endpoint.
enum class Verdict { NoInterval, Above, Below, Neither };

/// The registered rule: above 0 only where the t-interval excludes 0 above it and the sign-flip p is
/// under kV2Alpha; below 0 symmetrically; otherwise neither (no evidence either way).
inline Verdict verdict(const json& e) {
  const double lo = num_or_nan(e, "ci_low"), hi = num_or_nan(e, "ci_high"),
               p = num_or_nan(e, "sign_flip_p_value");
  if (!std::isfinite(lo) || !std::isfinite(hi) || !std::isfinite(p)) return Verdict::NoInterval;
  if (lo > 0 && p < kV2Alpha) return Verdict::Above;
  if (hi < 0 && p < kV2Alpha) return Verdict::Below;
  return Verdict::Neither;
}

/// The verdict in a table cell.
inline std::string verdict_cell(Verdict v) {
  return v == Verdict::Above     ? "above 0"
         : v == Verdict::Below   ? "below 0"
         : v == Verdict::Neither ? "no evidence either way"
                                 : "no interval (fewer than 2 seeds)";
}

/// The registered readings of one endpoint: above 0, below 0, neither.
struct Readings {
  std::string above, below, neither;
};

/// The verdict on endpoint `e` in words, by the endpoint's name (the registered readings). The specificity
/// secondary (ohem − random) qualifies the primary's finding (docs/study.md): `primary` is the primary's
/// verdict, and where it found no effect a difference between the arms is read as what it is, a difference
/// between magnitude and random masks, not an effect of OHEM.
inline std::string verdict_words(const json& e, Verdict primary = Verdict::Neither) {
  const Verdict v = verdict(e);
  if (v == Verdict::NoInterval)
    return "No interval (fewer than 2 seeds with a finite difference): no reading.";
  const std::string at_n =
      fmt::format("at n = {} seeds (the rule needs the t-interval to exclude 0 and the sign-flip p < {})",
                  html::number(num_or_nan(e, "n"), 0), html::number(kV2Alpha, 2));
  const std::map<std::string, Readings> readings = {
      {"delta_overall_srcc",
       {"OHEM helps on this data: the t-interval excludes 0 above it and the sign-flip p < 0.05.",
        "OHEM hurts on this data: the t-interval excludes 0 below it and the sign-flip p < 0.05.",
        fmt::format("No evidence either way {}; the design detects |Δ| ≥ {} (the minimum detectable effect) "
                    "with 80 % power.",
                    at_n, html::number(num_or_nan(e, "minimum_detectable_effect"), 4))}},
      {"delta_tail_minus_head",
       {"OHEM's gain is larger on the tail types than on the head types.",
        "OHEM's gain is smaller on the tail types than on the head types.",
        "No evidence that OHEM's effect differs between the tail and the head types " + at_n + "."}},
      {"ohem_minus_random",
       primary == Verdict::Above || primary == Verdict::Below
           ? Readings{"Magnitude masks beat random masks: OHEM's effect (the primary) is specific to "
                      "magnitude "
                      "pruning.",
                      "Random masks beat magnitude masks: OHEM's effect (the primary) is not specific to "
                      "magnitude pruning.",
                      "No evidence that magnitude masks differ from random masks " + at_n +
                          ": no claim that OHEM's effect is specific to magnitude pruning."}
           : Readings{
                 "The random-mask arm did worse than the magnitude-mask arm. The primary found no effect "
                 "of OHEM for this to qualify, so it says that OHEM with random masks hurt the "
                 "fine-tuning here, not that OHEM with magnitude masks helps.",
                 "The random-mask arm did better than the magnitude-mask arm. The primary found no "
                 "effect of OHEM for this to qualify, so it says that OHEM with random masks helped "
                 "the fine-tuning here, not that OHEM with magnitude masks hurts.",
                 "No evidence that magnitude masks differ from random masks " + at_n + "."}}};
  const auto it = readings.find(e.at("name").get<std::string>());
  const Readings r = it != readings.end()
                         ? it->second
                         : Readings{"Above 0.", "Below 0.", "No evidence either way " + at_n + "."};
  return v == Verdict::Above ? r.above : v == Verdict::Below ? r.below : r.neither;
}

/// One endpoint's line: "Δ = …, 95 % t-interval […], sign-flip p = …, n = … seeds".
inline std::string endpoint_line(const json& e) {
  return fmt::format("Δ = {}, {} {}, sign-flip p = {}, n = {} seeds", signed_num(num_or_nan(e, "mean"), 4),
                     t_interval_name(e), interval_text(e), p_text(num_or_nan(e, "sign_flip_p_value")),
                     html::number(num_or_nan(e, "n"), 0));
}

}  // namespace report_detail

}  // namespace ohem_study
