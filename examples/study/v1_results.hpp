#pragma once
/// @file
/// Study v1's analyses as results.json records them (schema "ohem-study/1", docs/study.md): the paired
/// comparison, the mechanism, the type-and-level reference and gMAD; and their summary on the terminal.

#include "options.hpp"
#include "study.hpp"
#include "training.hpp"
#include "v1_training.hpp"

#include <toolkit/experiment.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace ohem_study::program {

using namespace ohem_examples;
namespace fs = std::filesystem;

// The metric `metric` of group `group` ("overall" or a type) of a run (NaN if absent).
inline double metric_of(const Run& r, const std::string& group, const std::string& metric) {
  const ohem::Evaluation* c = &r.test.overall;
  if (group != "overall") {
    auto it = r.test.by_type.find(group);
    if (it == r.test.by_type.end()) return NAN;
    c = &it->second;
  }
  return metric == "srcc" ? c->srcc : c->plcc;
}

inline nlohmann::ordered_json comparison_json(const StudyOptions& o, const std::vector<Run>& base,
                                              const std::vector<Run>& ohem_runs) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  std::vector<std::string> groups = {"overall"};
  for (const auto& t : demo::distortion_names()) groups.push_back(t);
  for (const auto& g : groups) {
    for (const char* metric : {"srcc", "plcc"}) {
      std::vector<double> b, h;
      for (size_t s = 0; s < base.size(); ++s) {
        b.push_back(metric_of(base[s], g, metric));
        h.push_back(metric_of(ohem_runs[s], g, metric));
      }
      const PairedDifference d = paired_difference(b, h, o.bootstrap, o.ci_level);
      out.push_back({{"group", g},
                     {"metric", metric},
                     {"baseline_mean", number(d.baseline_mean)},
                     {"baseline_std", number(d.baseline_std)},
                     {"ohem_mean", number(d.ohem_mean)},
                     {"ohem_std", number(d.ohem_std)},
                     {"diff_mean", number(d.diff_mean)},
                     {"ci_low", number(d.ci_low)},
                     {"ci_high", number(d.ci_high)},
                     {"ci_level", d.ci_level},
                     {"wins", d.wins},
                     {"seeds", d.seeds}});
    }
  }
  return out;
}

inline nlohmann::ordered_json mechanism_json(const StudyOptions& o, const Dataset& all,
                                             const std::vector<Variant>& vs, const std::vector<Run>& runs) {
  nlohmann::ordered_json variants_out = nlohmann::ordered_json::array();
  const std::vector<std::string>& types = demo::distortion_names();
  for (const auto& v : vs) {
    if (!v.ohem) continue;
    std::vector<int64_t> seeds;
    std::vector<double> per_seed;
    std::map<std::string, std::vector<double>> train_share, hardest_share, mean_h;
    for (const auto& r : runs) {
      if (r.method != v.name) continue;
      const Mechanism m = mechanism(all, r, types, o.top_fraction);
      seeds.push_back(r.seed);
      per_seed.push_back(m.hardness_error_srcc);
      for (const auto& t : m.by_type) {
        train_share[t.type].push_back(t.train_share);
        hardest_share[t.type].push_back(t.hardest_share);
        mean_h[t.type].push_back(t.mean_hardness);
      }
    }
    nlohmann::ordered_json by_type = nlohmann::ordered_json::array();
    for (const auto& t : types) {
      const double ts = mean(train_share[t]), hs = mean(hardest_share[t]);
      by_type.push_back({{"type", t},
                         {"train_share", number(ts)},
                         {"hardest_share", number(hs)},
                         {"enrichment", number(ts > 0 ? hs / ts : NAN)},
                         {"mean_hardness", number(mean(mean_h[t]))}});
    }
    nlohmann::ordered_json ps = nlohmann::ordered_json::array();
    for (double x : per_seed) ps.push_back(number(x));
    variants_out.push_back({{"name", v.name == "ohem" ? "magnitude" : v.name},  // the method's own twin
                            {"label", v.label},
                            {"twins", v.twins},
                            {"criterion", ohem::to_string(v.criterion)},
                            {"random_fraction", v.random_fraction},
                            {"seeds", seeds},
                            {"by_type", by_type},
                            {"hardness_error_srcc", {{"mean", number(mean(per_seed))}, {"per_seed", ps}}}});
  }
  return {{"top_fraction", o.top_fraction}, {"variants", variants_out}};
}

// The type-and-level reference: a predictor that knows each test image's distortion type and level (1..5)
// and nothing about its content; it scores an image with the mean training label of its (type, level)
// (of its level over all types where the training mix has none of that type and level, else of all
// training images). It shows how far recognising the distortion alone goes; the SSIM labels also depend
// on the content (a flat patch keeps a high SSIM under blur). Mean over the seeds' test sets.
inline nlohmann::ordered_json reference_json(const Dataset& all, const std::vector<SeedData>& seeds) {
  std::map<std::string, std::vector<double>> srcc, plcc;  // group → one value per seed
  for (const auto& d : seeds) {
    std::map<std::pair<std::string, int>, std::vector<double>> by_type_level;
    std::map<int, std::vector<double>> by_level;
    std::vector<double> every;
    for (int64_t i : d.train) {
      const Sample& s = all.samples[static_cast<size_t>(i)];
      const int level = demo::distortion_level(s.path);
      by_type_level[{s.type, level}].push_back(s.mos);
      by_level[level].push_back(s.mos);
      every.push_back(s.mos);
    }
    std::vector<double> pred, mos;
    std::vector<std::string> types;
    for (int64_t i : d.test) {
      const Sample& s = all.samples[static_cast<size_t>(i)];
      const int level = demo::distortion_level(s.path);
      const auto tl = by_type_level.find({s.type, level});
      const auto l = by_level.find(level);
      pred.push_back(tl != by_type_level.end() ? mean(tl->second)
                     : l != by_level.end()     ? mean(l->second)
                                               : mean(every));
      mos.push_back(s.mos);
      types.push_back(s.type);
    }
    const ohem::Evaluation o = ohem::evaluate(pred, mos, correlations_only());
    srcc["overall"].push_back(o.srcc);
    plcc["overall"].push_back(o.plcc);
    for (const auto& [t, c] : ohem::evaluate_groups(pred, mos, types, correlations_only())) {
      srcc[t].push_back(c.srcc);
      plcc[t].push_back(c.plcc);
    }
  }
  nlohmann::ordered_json m;
  std::vector<std::string> groups = {"overall"};
  for (const auto& t : demo::distortion_names()) groups.push_back(t);
  for (const auto& g : groups)
    if (srcc.count(g)) m[g] = {{"srcc", number(mean(srcc[g]))}, {"plcc", number(mean(plcc[g]))}};
  return {{"name", "type_level"},
          {"label", "knows each image's distortion type and level, not its content"},
          {"seeds", static_cast<int64_t>(seeds.size())},
          {"metrics", m}};
}

// gMAD between the baseline and the OHEM model of one seed, both directions; copies each pair's images
// (native size) to OUT/gmad/.
inline nlohmann::ordered_json gmad_json(const StudyOptions& o, const Dataset& all, const Run& base,
                                        const Run& oh) {
  TORCH_CHECK(base.test.indices == oh.test.indices, "study: the two models were tested on different images");
  const fs::path dir = fs::path(o.out) / "gmad";
  fs::create_directories(dir);
  nlohmann::ordered_json pairs = nlohmann::ordered_json::array(), summary = nlohmann::ordered_json::array();
  int64_t k = 0;
  const std::vector<std::pair<const Run*, const Run*>> roles = {{&base, &oh},
                                                                {&oh, &base}};  // defender first
  for (const auto& [def, att] : roles) {
    const std::vector<GmadCase> cases =
        adjudicated_gmad(all, def->test.indices, def->test.predictions, att->test.predictions, def->method,
                         att->method, o.gmad_levels, o.gmad_margin);
    int64_t won = 0;
    for (const auto& c : cases) {
      nlohmann::ordered_json images = nlohmann::ordered_json::array();
      for (int i = 0; i < 2; ++i) {
        const Sample& s = all.samples[static_cast<size_t>(c.image[i])];
        const std::string file = fmt::format("p{}_{}.png", k, i == 0 ? "a" : "b");
        fs::copy_file(s.path, dir / file, fs::copy_options::overwrite_existing);
        images.push_back(
            {{"path", "gmad/" + file},
             {"name", fs::path(s.path).stem().string()},
             {"type", s.type},
             {"label", s.mos},
             {"scores", {{c.defender, c.defender_score[i]}, {c.attacker, c.attacker_score[i]}}}});
      }
      pairs.push_back({{"attacker", c.attacker},
                       {"defender", c.defender},
                       {"level", c.level},
                       {"defender_level_score", c.defender_level_score},
                       {"images", images},
                       {"attacker_prefers", c.attacker_prefers},
                       {"label_prefers", c.label_prefers},
                       {"attack_succeeded", c.attack_succeeded}});
      won += c.attack_succeeded ? 1 : 0;
      ++k;
    }
    summary.push_back({{"attacker", att->method},
                       {"defender", def->method},
                       {"succeeded", won},
                       {"pairs", static_cast<int64_t>(cases.size())}});
  }
  return {{"seed", base.seed},
          {"levels", o.gmad_levels},
          {"margin", o.gmad_margin},
          {"pairs", pairs},
          {"summary", summary}};
}

inline void print_summary(const nlohmann::ordered_json& j) {
  std::cout << fmt::format("\n{:<14} {:>6} {:>15} {:>15} {:>8} {:>19} {:>5}\n", "SRCC", "", "baseline",
                           "OHEM", "diff", "CI", "wins");
  for (const auto& c : j["comparison"]) {
    if (c["metric"] != "srcc") continue;
    auto f = [](const nlohmann::json& x) { return x.is_null() ? NAN : x.get<double>(); };
    std::cout << fmt::format(
        "{:<21} {:>7.3f}±{:<6.3f} {:>7.3f}±{:<6.3f} {:>+8.3f} [{:+.3f}, {:+.3f}] {:>2}/{}\n",
        c["group"].get<std::string>(), f(c["baseline_mean"]), f(c["baseline_std"]), f(c["ohem_mean"]),
        f(c["ohem_std"]), f(c["diff_mean"]), f(c["ci_low"]), f(c["ci_high"]), c["wins"].get<int64_t>(),
        c["seeds"].get<int64_t>());
  }
  if (j.contains("reference")) {
    const auto& r = j["reference"]["metrics"]["overall"]["srcc"];
    std::cout << fmt::format("{:<21} {}  (reference: {})\n", "type+level only",
                             r.is_null() ? "-" : fmt::format("{:7.3f}", r.get<double>()),
                             j["reference"]["label"].get<std::string>());
  }
  std::cout << "\nenrichment among the hardest training images (hardest share / training share):\n";
  for (const auto& v : j["mechanism"]["variants"]) {
    std::string line = fmt::format("  {:<10}", v["name"].get<std::string>());
    for (const auto& t : v["by_type"])
      line +=
          fmt::format(" {}={}", t["type"].get<std::string>(),
                      t["enrichment"].is_null() ? "-" : fmt::format("{:.2f}", t["enrichment"].get<double>()));
    const auto& h = v["hardness_error_srcc"]["mean"];
    line +=
        fmt::format("  SRCC(hardness, error)={}", h.is_null() ? "-" : fmt::format("{:.3f}", h.get<double>()));
    std::cout << line << "\n";
  }
  std::cout << "gMAD (attacks that the SSIM label confirms):\n";
  for (const auto& s : j["gmad"]["summary"])
    std::cout << fmt::format("  {} attacking {}: {} of {}\n", s["attacker"].get<std::string>(),
                             s["defender"].get<std::string>(), s["succeeded"].get<int64_t>(),
                             s["pairs"].get<int64_t>());
}

}  // namespace ohem_study::program
