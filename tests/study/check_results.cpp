// Checks that a study's results.json holds every field of the "ohem-study/1" schema with the right JSON
// type (numbers may be null where a value is undefined), that the lists have the promised entries, and
// that every gMAD image file exists; for study v2's "ohem-study/2", its fields and design (check_v2).
// Prints each problem; exits 1 if there is one. Not its numbers.
// Usage: study_check_results results.json
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace {

using nlohmann::json;
int problems = 0;

void fail(const std::string& where, const std::string& what) {
  std::cerr << "results.json: " << where << ": " << what << "\n";
  ++problems;
}

enum class Kind { Number, NumberOrNull, Integer, String, Bool, Object, Array };

bool has(const json& j, const std::string& where, const std::string& key, Kind kind) {
  if (!j.is_object() || !j.contains(key)) {
    fail(where, "missing \"" + key + "\"");
    return false;
  }
  const json& v = j.at(key);
  bool ok = false;
  switch (kind) {
    case Kind::Number:
      ok = v.is_number();
      break;
    case Kind::NumberOrNull:
      ok = v.is_number() || v.is_null();
      break;
    case Kind::Integer:
      ok = v.is_number_integer();
      break;
    case Kind::String:
      ok = v.is_string();
      break;
    case Kind::Bool:
      ok = v.is_boolean();
      break;
    case Kind::Object:
      ok = v.is_object();
      break;
    case Kind::Array:
      ok = v.is_array();
      break;
  }
  if (!ok) fail(where, "\"" + key + "\" has the wrong type: " + v.dump());
  return ok;
}

void check_correlation(const json& m, const std::string& where) {
  has(m, where, "srcc", Kind::NumberOrNull);
  has(m, where, "plcc", Kind::NumberOrNull);
  has(m, where, "n", Kind::Integer);
}

void check_metrics(const json& m, const std::string& where, const std::vector<std::string>& types) {
  if (has(m, where, "overall", Kind::Object)) check_correlation(m["overall"], where + ".overall");
  for (const auto& t : types)
    if (has(m, where, t, Kind::Object)) check_correlation(m[t], where + "." + t);
}

void check_endpoint(const json& e, const std::string& where, size_t seeds) {
  has(e, where, "name", Kind::String);
  has(e, where, "definition", Kind::String);
  if (has(e, where, "per_seed", Kind::Array) && e["per_seed"].size() != seeds)
    fail(where + ".per_seed",
         std::to_string(e["per_seed"].size()) + " values for " + std::to_string(seeds) + " seeds");
  has(e, where, "n", Kind::Integer);
  has(e, where, "positive", Kind::Integer);
  has(e, where, "confidence", Kind::Number);
  for (const char* k : {"mean", "sd", "ci_low", "ci_high", "t_p_value", "sign_flip_p_value"})
    has(e, where, k, Kind::NumberOrNull);
  if (e.value("n", 0) >= 2)
    for (const char* k : {"ci_low", "ci_high", "sign_flip_p_value"})
      if (!e[k].is_number()) fail(where + "." + k, "null with n >= 2");
}

// Study v2 (study --design v2, schema "ohem-study/2"): its fields, and the design's promises that the
// file shows: the parts of each seed's photographs are disjoint, the tiered training mix holds 5 : 3 : 1
// images of a head, a mid and a tail type, every type is a tail type equally often, and every seed has
// the three arms. Returns the number of problems.
int check_v2(const json& j, const std::filesystem::path& path) {
  has(j, "root", "created", Kind::String);
  has(j, "root", "quick", Kind::Bool);
  if (has(j, "root", "seconds", Kind::Object))
    for (const char* k : {"dataset", "training", "total"}) has(j["seconds"], "seconds", k, Kind::Number);
  int64_t seeds = 0;
  if (has(j, "root", "config", Kind::Object) && has(j["config"], "config", "seeds", Kind::Integer))
    seeds = j["config"]["seeds"].get<int64_t>();
  std::vector<std::string> types;
  if (has(j, "root", "dataset", Kind::Object)) {
    const json& d = j["dataset"];
    if (has(d, "dataset", "types", Kind::Array))
      for (const auto& t : d["types"]) types.push_back(t.get<std::string>());
    if (types.size() != 6) fail("dataset.types", "expected 6 types");
    std::map<std::string, int> tail_count;
    if (has(d, "dataset", "seeds", Kind::Array)) {
      if (static_cast<int64_t>(d["seeds"].size()) != seeds) fail("dataset.seeds", "not one entry per seed");
      for (const auto& s : d["seeds"]) {
        const std::string w = "dataset.seeds[" + std::to_string(s.value("seed", -1)) + "]";
        std::set<std::string> seen;
        size_t named = 0;
        for (const char* part : {"pool", "train", "val", "test"}) {
          if (!has(s["photos"], w + ".photos", part, Kind::Array)) continue;
          if (s["photos"][part].empty()) fail(w + ".photos." + part, "empty");
          for (const auto& p : s["photos"][part]) seen.insert(p.get<std::string>());
          named += s["photos"][part].size();
        }
        if (seen.size() != named) fail(w + ".photos", "a photograph in two parts (not content-disjoint)");
        std::map<std::string, int64_t> per_tier;
        for (const char* tier : {"head", "mid", "tail"}) {
          if (!has(s["tiers"], w + ".tiers", tier, Kind::Array) || s["tiers"][tier].size() != 2) {
            fail(w + ".tiers." + tier, "expected 2 types");
            continue;
          }
          std::set<int64_t> counts;
          for (const auto& t : s["tiers"][tier]) {
            if (std::string(tier) == "tail") ++tail_count[t.get<std::string>()];
            counts.insert(s["train_images_by_type"].value(t.get<std::string>(), int64_t{-1}));
          }
          if (counts.size() != 1)
            fail(w + ".train_images_by_type", std::string("unequal ") + tier + " types");
          per_tier[tier] = *counts.begin();
        }
        if (per_tier["tail"] <= 0 || per_tier["head"] != 5 * per_tier["tail"] ||
            per_tier["mid"] != 3 * per_tier["tail"])
          fail(w + ".train_images_by_type", "head : mid : tail is not 5 : 3 : 1 per type");
      }
    }
    std::set<int> tails;
    for (const auto& t : types) tails.insert(tail_count[t]);
    if (tails.size() != 1) fail("dataset.seeds", "the types are not tail types equally often");
  }
  if (has(j, "root", "start", Kind::Array)) {
    if (static_cast<int64_t>(j["start"].size()) != seeds) fail("start", "not one W per seed");
    for (const auto& r : j["start"])
      if (has(r, "start", "metrics", Kind::Object)) check_metrics(r["metrics"], "start.metrics", types);
  }
  if (has(j, "root", "runs", Kind::Array)) {
    std::map<int64_t, std::set<std::string>> arms;
    for (size_t i = 0; i < j["runs"].size(); ++i) {
      const json& r = j["runs"][i];
      const std::string w = "runs[" + std::to_string(i) + "]";
      if (has(r, w, "seed", Kind::Integer) && has(r, w, "method", Kind::String))
        arms[r["seed"].get<int64_t>()].insert(r["method"].get<std::string>());
      has(r, w, "steps", Kind::Integer);
      if (has(r, w, "lr", Kind::Number) && has(r, w, "lr_tried", Kind::Array)) {
        const json grid = j["config"].value("ft_lr_grid", json::array());
        if (r["lr_tried"].size() != grid.size()) fail(w + ".lr_tried", "not one entry per rate of the grid");
        if (std::find(grid.begin(), grid.end(), r["lr"]) == grid.end())
          fail(w + ".lr", "not a rate of the grid");
        // The rate used is the first of those with the best validation SRCC (a null never wins).
        const json* best = nullptr;
        for (const json& t : r["lr_tried"])
          if (t.contains("val_srcc") && t["val_srcc"].is_number() &&
              (best == nullptr || t["val_srcc"].get<double>() > (*best)["val_srcc"].get<double>()))
            best = &t;
        if (best != nullptr && (*best)["lr"] != r["lr"])
          fail(w + ".lr", "not the rate with the best validation SRCC in lr_tried");
        if (best != nullptr && r.contains("val_metrics") &&
            r["val_metrics"].value("overall", json::object()).value("srcc", json()) != (*best)["val_srcc"])
          fail(w + ".val_metrics", "its overall SRCC is not the chosen rate's val_srcc");
      }
      if (has(r, w, "metrics", Kind::Object)) check_metrics(r["metrics"], w + ".metrics", types);
      if (has(r, w, "val_metrics", Kind::Object)) check_metrics(r["val_metrics"], w + ".val_metrics", types);
    }
    const std::set<std::string> three = {"baseline", "ohem", "random"};
    for (int64_t s = 0; s < seeds; ++s)
      if (arms[s] != three) fail("runs", "seed " + std::to_string(s) + " lacks one of the three arms");
  }
  if (has(j, "root", "endpoints", Kind::Object)) {
    const json& e = j["endpoints"];
    if (has(e, "endpoints", "primary", Kind::Object)) {
      check_endpoint(e["primary"], "endpoints.primary", static_cast<size_t>(seeds));
      has(e["primary"], "endpoints.primary", "minimum_detectable_effect", Kind::NumberOrNull);
    }
    if (has(e, "endpoints", "per_type", Kind::Array)) {
      if (e["per_type"].size() != types.size()) fail("endpoints.per_type", "not one row per type");
      for (const auto& x : e["per_type"]) {
        check_endpoint(x, "endpoints.per_type", static_cast<size_t>(seeds));
        has(x, "endpoints.per_type", "holm_p_value", Kind::NumberOrNull);
      }
    }
    if (has(e, "endpoints", "secondary", Kind::Array)) {
      if (e["secondary"].size() != 2) fail("endpoints.secondary", "expected 2 endpoints");
      for (const auto& x : e["secondary"])
        check_endpoint(x, "endpoints.secondary", static_cast<size_t>(seeds));
    }
  }
  if (has(j, "root", "mechanism", Kind::Object) && has(j["mechanism"], "mechanism", "arms", Kind::Array)) {
    if (j["mechanism"]["arms"].size() != 2) fail("mechanism.arms", "expected ohem and random");
    for (const auto& a : j["mechanism"]["arms"]) {
      has(a, "mechanism.arms", "arm", Kind::String);
      for (const char* k : {"within_type_hardness_error_srcc", "tail_enrichment_minus_1"})
        if (has(a, "mechanism.arms", k, Kind::Object))
          check_endpoint(a[k], std::string("mechanism.arms.") + k, static_cast<size_t>(seeds));
    }
  }
  if (problems > 0) {
    std::cerr << problems << " problem(s) in " << path << "\n";
    return 1;
  }
  std::cout << path.string() << ": every field of ohem-study/2 present\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: study_check_results results.json\n";
    return 2;
  }
  const std::filesystem::path path = argv[1];
  std::ifstream in(path);
  if (!in) {
    std::cerr << "cannot read " << path << "\n";
    return 1;
  }
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    std::cerr << path << ": not JSON: " << e.what() << "\n";
    return 1;
  }
  if (j.is_object() && j.value("schema", "") == "ohem-study/2") return check_v2(j, path);
  if (has(j, "root", "schema", Kind::String) && j["schema"] != "ohem-study/1")
    fail("schema", j["schema"].dump());
  has(j, "root", "created", Kind::String);
  has(j, "root", "quick", Kind::Bool);
  if (has(j, "root", "environment", Kind::Object)) {
    has(j["environment"], "environment", "libtorch", Kind::String);
    has(j["environment"], "environment", "compiler", Kind::String);
    has(j["environment"], "environment", "threads", Kind::Integer);
    has(j["environment"], "environment", "hardware_threads", Kind::Integer);
  }
  if (has(j, "root", "seconds", Kind::Object))
    for (const char* k : {"dataset", "training", "analysis", "total"})
      has(j["seconds"], "seconds", k, Kind::Number);
  if (has(j, "root", "config", Kind::Object))
    for (const char* k : {"seeds", "patch", "crop", "width", "epochs1", "epochs2"})
      has(j["config"], "config", k, Kind::Integer);
  std::vector<std::string> types;
  if (has(j, "root", "dataset", Kind::Object)) {
    const json& d = j["dataset"];
    for (const char* k : {"photos", "train_photos", "test_photos", "patch", "levels", "images"})
      has(d, "dataset", k, Kind::Integer);
    if (has(d, "dataset", "types", Kind::Array))
      for (const auto& t : d["types"]) types.push_back(t.get<std::string>());
    if (types.empty()) fail("dataset.types", "empty");
    for (const char* k : {"train_images", "test_images"})
      if (has(d, "dataset", k, Kind::Object))
        for (const auto& t : types) has(d[k], std::string("dataset.") + k, t, Kind::Integer);
  }
  std::set<std::string> methods;
  if (has(j, "root", "runs", Kind::Array)) {
    if (j["runs"].empty()) fail("runs", "empty");
    for (size_t i = 0; i < j["runs"].size(); ++i) {
      const json& r = j["runs"][i];
      const std::string w = "runs[" + std::to_string(i) + "]";
      has(r, w, "seed", Kind::Integer);
      if (has(r, w, "method", Kind::String)) methods.insert(r["method"].get<std::string>());
      has(r, w, "seconds", Kind::Number);
      has(r, w, "steps", Kind::Integer);
      if (has(r, w, "metrics", Kind::Object)) {
        if (has(r["metrics"], w + ".metrics", "overall", Kind::Object))
          check_correlation(r["metrics"]["overall"], w + ".metrics.overall");
        for (const auto& t : types)
          if (has(r["metrics"], w + ".metrics", t, Kind::Object))
            check_correlation(r["metrics"][t], w + ".metrics." + t);
      }
      if (has(r, w, "curve", Kind::Array)) {
        const int64_t epochs = j["config"].value("epochs1", 0) + j["config"].value("epochs2", 0);
        if (static_cast<int64_t>(r["curve"].size()) != epochs)
          fail(w + ".curve",
               std::to_string(r["curve"].size()) + " entries, expected " + std::to_string(epochs));
        for (const auto& e : r["curve"]) {
          has(e, w + ".curve", "epoch", Kind::Integer);
          for (const char* k : {"task_loss", "twin_task_loss", "consistency", "mean_hardness", "test_srcc"})
            has(e, w + ".curve", k, Kind::NumberOrNull);
        }
      }
    }
  }
  if (methods != std::set<std::string>{"baseline", "ohem"}) fail("runs", "methods are not baseline and ohem");
  if (has(j, "root", "comparison", Kind::Array)) {
    std::set<std::string> seen;
    for (const auto& c : j["comparison"]) {
      has(c, "comparison", "group", Kind::String);
      has(c, "comparison", "metric", Kind::String);
      for (const char* k :
           {"baseline_mean", "baseline_std", "ohem_mean", "ohem_std", "diff_mean", "ci_low", "ci_high"})
        has(c, "comparison", k, Kind::NumberOrNull);
      has(c, "comparison", "ci_level", Kind::Number);
      has(c, "comparison", "wins", Kind::Integer);
      has(c, "comparison", "seeds", Kind::Integer);
      seen.insert(c.value("group", "") + "/" + c.value("metric", ""));
    }
    std::vector<std::string> groups = types;
    groups.push_back("overall");
    for (const auto& g : groups)
      for (const char* m : {"srcc", "plcc"})
        if (!seen.count(g + "/" + m)) fail("comparison", "no entry for " + g + " " + m);
  }
  // The type-and-level reference: correlations for overall and every type. Stronger distortion lowers
  // SSIM, so the mean training label per type and level must correlate positively with the labels.
  if (has(j, "root", "reference", Kind::Object)) {
    const json& r = j["reference"];
    has(r, "reference", "label", Kind::String);
    if (has(r, "reference", "metrics", Kind::Object)) {
      std::vector<std::string> groups = types;
      groups.push_back("overall");
      for (const auto& g : groups) {
        if (!has(r["metrics"], "reference.metrics", g, Kind::Object)) continue;
        has(r["metrics"][g], "reference.metrics." + g, "srcc", Kind::NumberOrNull);
        has(r["metrics"][g], "reference.metrics." + g, "plcc", Kind::NumberOrNull);
      }
      const json& o = r["metrics"].value("overall", json::object());
      if (!o.value("srcc", json()).is_number() ||
          !(o["srcc"].get<double>() > 0 && o["srcc"].get<double>() <= 1))
        fail("reference.metrics.overall.srcc",
             "expected a number in (0, 1], got " + o.value("srcc", json()).dump());
    }
  }
  if (has(j, "root", "mechanism", Kind::Object)) {
    const json& m = j["mechanism"];
    has(m, "mechanism", "top_fraction", Kind::Number);
    std::set<std::string> names;
    if (has(m, "mechanism", "variants", Kind::Array)) {
      for (const auto& v : m["variants"]) {
        const std::string w = "mechanism.variants[" + v.value("name", std::string("?")) + "]";
        if (has(v, w, "name", Kind::String)) names.insert(v["name"].get<std::string>());
        has(v, w, "label", Kind::String);
        has(v, w, "twins", Kind::Integer);
        has(v, w, "criterion", Kind::String);
        has(v, w, "seeds", Kind::Array);
        if (has(v, w, "by_type", Kind::Array)) {
          if (v["by_type"].size() != types.size()) fail(w + ".by_type", "not one entry per type");
          for (const auto& t : v["by_type"]) {
            has(t, w + ".by_type", "type", Kind::String);
            for (const char* k : {"train_share", "hardest_share", "enrichment", "mean_hardness"})
              has(t, w + ".by_type", k, Kind::NumberOrNull);
          }
        }
        if (has(v, w, "hardness_error_srcc", Kind::Object)) {
          has(v["hardness_error_srcc"], w + ".hardness_error_srcc", "mean", Kind::NumberOrNull);
          has(v["hardness_error_srcc"], w + ".hardness_error_srcc", "per_seed", Kind::Array);
        }
      }
    }
    for (const char* n : {"magnitude", "random", "ensemble4"})
      if (!names.count(n)) fail("mechanism.variants", std::string("no variant \"") + n + "\"");
  }
  if (has(j, "root", "gmad", Kind::Object)) {
    const json& g = j["gmad"];
    has(g, "gmad", "seed", Kind::Integer);
    has(g, "gmad", "levels", Kind::Integer);
    has(g, "gmad", "margin", Kind::Number);
    if (has(g, "gmad", "pairs", Kind::Array)) {
      if (g["pairs"].empty()) fail("gmad.pairs", "empty");
      for (const auto& p : g["pairs"]) {
        has(p, "gmad.pairs", "attacker", Kind::String);
        has(p, "gmad.pairs", "defender", Kind::String);
        has(p, "gmad.pairs", "level", Kind::Integer);
        has(p, "gmad.pairs", "defender_level_score", Kind::Number);
        has(p, "gmad.pairs", "attacker_prefers", Kind::Integer);
        has(p, "gmad.pairs", "label_prefers", Kind::Integer);
        has(p, "gmad.pairs", "attack_succeeded", Kind::Bool);
        if (has(p, "gmad.pairs", "images", Kind::Array)) {
          if (p["images"].size() != 2) fail("gmad.pairs.images", "not 2 images");
          for (const auto& im : p["images"]) {
            if (has(im, "gmad.pairs.images", "path", Kind::String) &&
                !std::filesystem::is_regular_file(path.parent_path() / im["path"].get<std::string>()))
              fail("gmad.pairs.images", "no file " + im["path"].get<std::string>());
            has(im, "gmad.pairs.images", "name", Kind::String);
            has(im, "gmad.pairs.images", "type", Kind::String);
            has(im, "gmad.pairs.images", "label", Kind::Number);
            if (has(im, "gmad.pairs.images", "scores", Kind::Object))
              for (const char* k : {"baseline", "ohem"})
                has(im["scores"], "gmad.pairs.images.scores", k, Kind::Number);
          }
        }
      }
    }
    if (has(g, "gmad", "summary", Kind::Array)) {
      if (g["summary"].size() != 2) fail("gmad.summary", "not both directions");
      for (const auto& s : g["summary"]) {
        has(s, "gmad.summary", "attacker", Kind::String);
        has(s, "gmad.summary", "defender", Kind::String);
        has(s, "gmad.summary", "succeeded", Kind::Integer);
        has(s, "gmad.summary", "pairs", Kind::Integer);
      }
    }
  }
  if (problems > 0) {
    std::cerr << problems << " problem(s) in " << path << "\n";
    return 1;
  }
  std::cout << path.string() << ": every field of ohem-study/1 present\n";
  return 0;
}
