// The study report's readings of the registered endpoints (examples/study/report/report.hpp, docs/study.md
// "Study v2: registered design", decision rules): each sentence claims no more than the rule allows.
#include "support.hpp"

#include <study/report/report.hpp>

#include <nlohmann/json.hpp>

#include <string>

using Catch::Matchers::Contains;
namespace rd = ohem_study::report_detail;

namespace {

nlohmann::json endpoint(const std::string& name, double lo, double hi, double sign_flip_p) {
  return {{"name", name},
          {"n", 6},
          {"mean", (lo + hi) / 2},
          {"ci_low", lo},
          {"ci_high", hi},
          {"sign_flip_p_value", sign_flip_p},
          {"minimum_detectable_effect", 0.0012}};
}

}  // namespace

TEST_CASE("study report: the registered rule reads each endpoint, specificity only qualifies the primary",
          "[study]") {
  const auto none = endpoint("delta_overall_srcc", -0.0009, 0.0009, 1.0);
  const auto helps = endpoint("delta_overall_srcc", 0.01, 0.03, 0.03125);
  const auto hurts = endpoint("delta_overall_srcc", -0.03, -0.01, 0.03125);
  CHECK(rd::verdict(none) == rd::Verdict::Neither);
  CHECK(rd::verdict(helps) == rd::Verdict::Above);
  CHECK(rd::verdict(hurts) == rd::Verdict::Below);
  // The interval alone is not enough: the sign-flip p must be under 0.05 too (one seed of the other sign).
  CHECK(rd::verdict(endpoint("delta_overall_srcc", 0.01, 0.03, 0.0625)) == rd::Verdict::Neither);
  CHECK_THAT(rd::verdict_words(none), Contains("No evidence either way") && Contains("0.0012"));
  CHECK_THAT(rd::verdict_words(helps), Contains("OHEM helps on this data"));

  const auto specific = endpoint("ohem_minus_random", 0.02, 0.11, 0.03125);
  // With no primary effect, magnitude beating random masks is not an OHEM effect.
  const std::string alone = rd::verdict_words(specific, rd::verdict(none));
  CHECK_THAT(alone, Contains("random masks hurt the fine-tuning here") &&
                        Contains("not that OHEM with magnitude masks helps"));
  CHECK_THAT(alone, !Contains("is specific to magnitude pruning"));
  // With one, it qualifies it.
  CHECK_THAT(rd::verdict_words(specific, rd::verdict(helps)), Contains("is specific to magnitude pruning"));
  CHECK_THAT(rd::verdict_words(endpoint("ohem_minus_random", -0.01, 0.02, 0.5), rd::verdict(hurts)),
             Contains("no claim that OHEM's effect is specific"));
}
