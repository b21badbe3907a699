#pragma once
/// \file
/// The study report's input check: whether a results.json follows schema "ohem-study/1" or study v2's
/// "ohem-study/2" (docs/study.md) far enough to be reported, with errors that name the field's path.
/// Needs only nlohmann/json, fmt and the standard library.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace ohem_study {

namespace report_detail {

using nlohmann::json;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// A results.json error: "results.json: <where>: <what>".
[[noreturn]] inline void fail(const std::string& where, const std::string& what) {
  throw std::runtime_error("results.json: " + (where.empty() ? std::string() : where + ": ") + what);
}

/// `j`'s JSON type in words, for the errors: "null", "an object", "a number"...
inline std::string kind(const json& j) {
  return j.is_null()      ? "null"
         : j.is_object()  ? "an object"
         : j.is_array()   ? "an array"
         : j.is_string()  ? "a string"
         : j.is_boolean() ? "a boolean"
                          : "a number";
}

/// A value of results.json with its path ("gmad.pairs[0]"), for the input check: each accessor checks
/// the value's type and throws "results.json: <path>: <what>", e.g.
/// "results.json: gmad.pairs[0].attack_succeeded: expected true or false, got a number".
/// (nlohmann's `at()` with JSON_DIAGNOSTICS names a JSON pointer, in nlohmann's words; and the macro
/// makes `json` another type, so it would have to be set for every translation unit that includes this
/// header, the study's and the tests' too, before their first nlohmann/json.hpp.)
class Checked {
 public:
  explicit Checked(const json& j, std::string path = {}) : j_(&j), path_(std::move(path)) {}

  const std::string& path() const { return path_; }

  /// Whether this is an object with the field `key`.
  bool has(const std::string& key) const { return j_->is_object() && j_->contains(key); }

  /// The field `key` of this object.
  Checked operator[](const std::string& key) const {
    if (!j_->is_object()) fail(path_, "expected an object, got " + kind(*j_));
    const auto it = j_->find(key);
    if (it == j_->end()) fail(path_, "missing field \"" + key + "\"");
    return Checked(*it, path_.empty() ? key : path_ + "." + key);
  }

  /// The entries of this array (at least one where `non_empty`), each with its path.
  std::vector<Checked> items(bool non_empty = false) const {
    if (!j_->is_array()) fail(path_, "expected an array, got " + kind(*j_));
    if (non_empty && j_->empty()) fail(path_, "expected at least one entry, got none");
    std::vector<Checked> out;
    for (size_t i = 0; i < j_->size(); ++i) out.emplace_back((*j_)[i], fmt::format("{}[{}]", path_, i));
    return out;
  }

  /// This number (null, which results.json writes for NaN: NaN).
  double number() const {
    if (j_->is_null()) return kNaN;
    if (!j_->is_number()) fail(path_, "expected a number or null, got " + kind(*j_));
    return j_->get<double>();
  }

  std::string string() const {
    if (!j_->is_string()) fail(path_, "expected a string, got " + kind(*j_));
    return j_->get<std::string>();
  }

  bool boolean() const {
    if (!j_->is_boolean()) fail(path_, "expected true or false, got " + kind(*j_));
    return j_->get<bool>();
  }

 private:
  const json* j_;
  std::string path_;
};

// One check per part of results.json; validate_results runs them in this order.

inline void validate_dataset(const Checked& results) {
  for (const Checked& t : results["dataset"]["types"].items(true)) t.string();
}

inline void validate_runs(const Checked& results) {
  for (const Checked& run : results["runs"].items(true)) {
    run["seed"].number();
    const std::string m = run["method"].string();
    if (m != "baseline" && m != "ohem")
      fail(run["method"].path(), "expected \"baseline\" or \"ohem\", got \"" + m + "\"");
    run["metrics"]["overall"]["srcc"].number();
    for (const Checked& e : run["curve"].items()) e["epoch"].number();
  }
}

inline void validate_comparison(const Checked& results) {
  for (const Checked& c : results["comparison"].items(true)) {
    c["group"].string();
    c["metric"].string();
    for (const char* k : {"baseline_mean", "ohem_mean", "diff_mean", "ci_low", "ci_high", "wins", "seeds"})
      c[k].number();
  }
}

/// The type-and-level reference is optional (studies since 2026-11-28 write it).
inline void validate_reference(const Checked& results) {
  if (!results.has("reference")) return;
  const Checked ref = results["reference"];
  ref["label"].string();
  ref["metrics"]["overall"]["srcc"].number();
}

inline void validate_mechanism(const Checked& results) {
  const Checked mech = results["mechanism"];
  mech["top_fraction"].number();
  for (const Checked& v : mech["variants"].items(true)) {
    v["name"].string();
    for (const Checked& b : v["by_type"].items()) {
      b["type"].string();
      for (const char* f : {"train_share", "hardest_share", "enrichment", "mean_hardness"}) b[f].number();
    }
    v["hardness_error_srcc"]["mean"].number();
  }
}

inline void validate_gmad(const Checked& results) {
  const Checked gmad = results["gmad"];
  for (const Checked& p : gmad["pairs"].items()) {
    p["attacker"].string();
    p["defender"].string();
    p["level"].number();
    const std::vector<Checked> images = p["images"].items();
    if (images.size() != 2) fail(p["images"].path(), fmt::format("expected 2 images, got {}", images.size()));
    for (const Checked& im : images) {
      im["path"].string();
      im["label"].number();
      im["scores"]["baseline"].number();
      im["scores"]["ohem"].number();
    }
    p["attacker_prefers"].number();
    p["label_prefers"].number();
    p["attack_succeeded"].boolean();
  }
  for (const Checked& s : gmad["summary"].items()) {
    s["attacker"].string();
    s["defender"].string();
    s["succeeded"].number();
    s["pairs"].number();
  }
}

// Study v2 (schema "ohem-study/2", `study --design v2`; docs/study.md "Study v2"): one check per part.

/// A paired endpoint over seeds (v2_results.hpp's endpoint_json): its statistics may be null (fewer than 2
/// seeds with a finite difference), never of another type.
inline void validate_endpoint(const Checked& e) {
  e["name"].string();
  e["definition"].string();
  for (const Checked& x : e["per_seed"].items()) x.number();
  for (const char* k :
       {"n", "mean", "sd", "confidence", "ci_low", "ci_high", "t_p_value", "sign_flip_p_value", "positive"})
    e[k].number();
}

inline void validate_v2_dataset(const Checked& results) {
  const Checked ds = results["dataset"];
  for (const Checked& t : ds["types"].items(true)) t.string();
  for (const Checked& s : ds["seeds"].items(true)) {
    s["seed"].number();
    for (const char* tier : {"head", "mid", "tail"})
      for (const Checked& t : s["tiers"][tier].items()) t.string();
    for (const char* part : {"pool", "train", "val", "test"}) s["images"][part].number();
  }
}

inline void validate_v2_runs(const Checked& results) {
  for (const Checked& run : results["start"].items(true)) {
    run["seed"].number();
    run["metrics"]["overall"]["srcc"].number();
  }
  for (const Checked& run : results["runs"].items(true)) {
    run["seed"].number();
    const std::string m = run["method"].string();
    if (m != "baseline" && m != "ohem" && m != "random")
      fail(run["method"].path(), "expected \"baseline\", \"ohem\" or \"random\", got \"" + m + "\"");
    run["metrics"]["overall"]["srcc"].number();
    run["metrics"]["overall"]["plcc"].number();
    run["val_metrics"]["overall"]["srcc"].number();
    run["lr"].number();
  }
}

inline void validate_v2_endpoints(const Checked& results) {
  const Checked ends = results["endpoints"];
  validate_endpoint(ends["primary"]);
  ends["primary"]["minimum_detectable_effect"].number();
  for (const Checked& e : ends["secondary"].items(true)) validate_endpoint(e);
  for (const Checked& e : ends["per_type"].items()) {
    validate_endpoint(e);
    e["holm_p_value"].number();
  }
}

inline void validate_v2_mechanism(const Checked& results) {
  const Checked mech = results["mechanism"];
  mech["top_fraction"].number();
  for (const Checked& a : mech["arms"].items(true)) {
    a["arm"].string();
    validate_endpoint(a["within_type_hardness_error_srcc"]);
    validate_endpoint(a["tail_enrichment_minus_1"]);
  }
}

/// The registration is optional (study does not record it yet): where present, its commit is a string.
inline void validate_v2_registration(const Checked& results) {
  if (results.has("registration")) results["registration"]["commit"].string();
}

}  // namespace report_detail

/// Checks that `results` follows schema "ohem-study/1" (study v1) or "ohem-study/2" (study v2) far
/// enough to be reported: the schema name and every field the report reads. Throws std::runtime_error
/// "results.json: <path>: <what>" otherwise.
inline void validate_results(const nlohmann::json& results) {
  namespace d = report_detail;  // not `using namespace`: a program's own ohem_study names could clash
  if (!results.is_object()) d::fail("", "expected a JSON object at the top level, got " + d::kind(results));
  const d::Checked root(results);
  const std::string schema = root["schema"].string();
  if (schema == "ohem-study/2") {
    for (auto check : {d::validate_v2_dataset, d::validate_v2_runs, d::validate_v2_endpoints,
                       d::validate_v2_mechanism, d::validate_v2_registration})
      check(root);
    return;
  }
  if (schema != "ohem-study/1") d::fail("schema", "expected \"ohem-study/1\", got \"" + schema + "\"");
  for (auto check : {d::validate_dataset, d::validate_runs, d::validate_comparison, d::validate_reference,
                     d::validate_mechanism, d::validate_gmad})
    check(root);
}

}  // namespace ohem_study
