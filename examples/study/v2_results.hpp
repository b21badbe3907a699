#pragma once
/// @file
/// Study v2's results as results.json records them (schema "ohem-study/2", docs/study.md "Study v2"): the
/// registered endpoints with their intervals and sign-flip p-values, the mechanism per arm, each seed's
/// design.

#include "options.hpp"
#include "study.hpp"
#include "study_v2.hpp"
#include "v2_training.hpp"

#include <toolkit/experiment.hpp>

#include <ohem/paired.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace ohem_study::program {

using namespace ohem_examples;
namespace fs = std::filesystem;

// A paired endpoint over seeds: the per-seed differences, their mean, the paired t-interval and the exact
// sign-flip p-value (ohem/paired.hpp). Seeds whose difference is not finite are listed as null and left
// out; fewer than 2 left give null statistics.
inline nlohmann::ordered_json endpoint_json(const std::string& name, const std::string& definition,
                                            const std::vector<double>& per_seed, double level) {
  std::vector<double> d;
  nlohmann::ordered_json ps = nlohmann::ordered_json::array();
  for (double x : per_seed) {
    ps.push_back(number(x));
    if (std::isfinite(x)) d.push_back(x);
  }
  nlohmann::ordered_json e = {
      {"name", name},
      {"definition", definition},
      {"per_seed", ps},
      {"n", d.size()},
      {"mean", number(mean(d))},
      {"sd", nullptr},
      {"confidence", level},
      {"ci_low", nullptr},
      {"ci_high", nullptr},
      {"t_p_value", nullptr},
      {"sign_flip_p_value", nullptr},
      {"positive", static_cast<int64_t>(std::count_if(d.begin(), d.end(), [](double x) { return x > 0; }))}};
  if (d.size() < 2) {
    e["note"] = "the interval and the tests need at least 2 seeds with a finite difference";
    return e;
  }
  const ohem::PairedTTest t = ohem::paired_t_test(d, ohem::PairedTTestOptions().confidence(level));
  const ohem::SignFlipTest f = ohem::sign_flip_test(d);
  e["sd"] = number(t.sd);
  e["ci_low"] = number(t.lower);
  e["ci_high"] = number(t.upper);
  e["t_p_value"] = number(t.p_value);
  e["sign_flip_p_value"] = number(f.p_value);
  return e;
}

// SRCC of `group` ("overall" or a type) in `r` (NaN if absent).
inline double srcc_of(const EvalResult& r, const std::string& group) {
  if (group == "overall") return r.overall.srcc;
  const auto it = r.by_type.find(group);
  return it == r.by_type.end() ? NAN : it->second.srcc;
}

// The registered endpoints (issue 26 §3): primary Δ overall SRCC (ohem − baseline); secondary Δ on the
// seed's tail types minus Δ on its head types (each the mean over the tier's two types), and ohem − random.
inline nlohmann::ordered_json endpoints_json(const StudyOptions& o, const std::vector<SeedV2>& seeds) {
  std::vector<double> primary, tail_head, specificity;
  for (size_t s = 0; s < seeds.size(); ++s) {
    const auto& runs = seeds[s].runs;
    const EvalResult &a = runs.at("baseline").test, &b = runs.at("ohem").test, &c = runs.at("random").test;
    primary.push_back(srcc_of(b, "overall") - srcc_of(a, "overall"));
    specificity.push_back(srcc_of(b, "overall") - srcc_of(c, "overall"));
    auto delta = [&](v2::Tier tier) {
      std::vector<double> v;
      for (const auto& t : v2::types_of(static_cast<int64_t>(s), tier))
        v.push_back(srcc_of(b, t) - srcc_of(a, t));
      return mean(v);
    };
    tail_head.push_back(delta(v2::Tier::Tail) - delta(v2::Tier::Head));
  }
  nlohmann::ordered_json first =
      endpoint_json("delta_overall_srcc", "overall test SRCC, ohem − baseline", primary, o.ci_level);
  // The smallest true Δ the paired t-test (two-sided 5 %) detects with 80 % power at the observed spread.
  first["minimum_detectable_effect"] =
      first["sd"].is_null()
          ? nlohmann::ordered_json()
          : number(ohem::minimum_detectable_effect(first["n"].get<int64_t>(), first["sd"].get<double>()));
  // Per type: Δ SRCC (ohem − baseline), its paired t-test, and Holm's adjustment over the six types.
  nlohmann::ordered_json per_type = nlohmann::ordered_json::array();
  std::vector<double> p;
  for (const auto& t : demo::distortion_names()) {
    std::vector<double> d;
    for (const auto& seed : seeds)
      d.push_back(srcc_of(seed.runs.at("ohem").test, t) - srcc_of(seed.runs.at("baseline").test, t));
    per_type.push_back(
        endpoint_json("delta_srcc_" + t, "test SRCC on " + t + ", ohem − baseline", d, o.ci_level));
    if (per_type.back()["t_p_value"].is_number()) p.push_back(per_type.back()["t_p_value"].get<double>());
  }
  const std::vector<double> holm = p.size() == per_type.size() ? ohem::holm_adjust(p) : std::vector<double>{};
  for (size_t k = 0; k < per_type.size(); ++k)
    per_type[k]["holm_p_value"] = k < holm.size() ? number(holm[k]) : nlohmann::ordered_json();
  return {{"primary", first},
          {"per_type", per_type},
          {"secondary",
           {endpoint_json("delta_tail_minus_head",
                          "Δ SRCC (ohem − baseline) on the seed's tail types minus on its head types",
                          tail_head, o.ci_level),
            endpoint_json("ohem_minus_random", "overall test SRCC, ohem − random (specificity)", specificity,
                          o.ci_level)}}};
}

// The mechanism per seed (issue 26 §3), for the magnitude twin (`ohem`) and the random control (`random`):
// the within-type rank correlation of an image's hardness with its own error (0: none), and the
// enrichment of the seed's tail-type images among the --top-fraction hardest training images (hardest
// share / training share − 1; 0: none), each summarised over seeds like an endpoint.
inline nlohmann::ordered_json mechanism_v2_json(const StudyOptions& o, const Dataset& all,
                                                const std::vector<SeedV2>& seeds) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const char* arm : {"ohem", "random"}) {
    std::vector<double> within, enrichment;
    for (size_t s = 0; s < seeds.size(); ++s) {
      const Run& r = seeds[s].runs.at(arm);
      const std::vector<std::string> tail = v2::types_of(static_cast<int64_t>(s), v2::Tier::Tail);
      double train = 0, hardest = 0;
      for (const auto& t : mechanism(all, r, demo::distortion_names(), o.top_fraction).by_type)
        if (std::find(tail.begin(), tail.end(), t.type) != tail.end()) {
          train += t.train_share;
          hardest += t.hardest_share;
        }
      enrichment.push_back(train > 0 ? hardest / train - 1.0 : NAN);
      within.push_back(within_type_hardness_error_srcc(all, r));
    }
    out.push_back({{"arm", arm},
                   {"within_type_hardness_error_srcc",
                    endpoint_json("within_type_hardness_error_srcc",
                                  "Spearman of hardness and own error within each type, mean over types",
                                  within, o.ci_level)},
                   {"tail_enrichment_minus_1",
                    endpoint_json("tail_enrichment_minus_1",
                                  "tail-type share of the hardest training images / their training share − 1",
                                  enrichment, o.ci_level)}});
  }
  return {{"top_fraction", o.top_fraction}, {"arms", out}};
}

// One seed's design in results.json: its tiers, photographs and image counts.
inline nlohmann::ordered_json seed_json(const SeedV2& d, const Dataset& all, int64_t seed) {
  nlohmann::ordered_json tiers = nlohmann::ordered_json::object();
  for (v2::Tier t : {v2::Tier::Head, v2::Tier::Mid, v2::Tier::Tail})
    tiers[v2::tier_name(t)] = v2::types_of(seed, t);
  nlohmann::ordered_json by_type = nlohmann::ordered_json::object();
  for (const auto& t : demo::distortion_names()) by_type[t] = 0;
  for (int64_t i : d.split.train_images)
    by_type[all.samples[static_cast<size_t>(i)].type] =
        by_type[all.samples[static_cast<size_t>(i)].type].get<int64_t>() + 1;
  return {{"seed", seed},
          {"tiers", tiers},
          {"photos",
           {{"pool", d.split.pool}, {"train", d.split.train}, {"val", d.split.val}, {"test", d.split.test}}},
          {"images",
           {{"pool", d.split.pool_images.size()},
            {"train", d.split.train_images.size()},
            {"val", d.split.val_images.size()},
            {"test", d.split.test_images.size()}}},
          {"train_images_by_type", by_type}};
}

}  // namespace ohem_study::program
