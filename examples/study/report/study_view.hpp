#pragma once
/// \file
/// What every section of a v1 report (schema "ohem-study/1") reads: the validated results with the
/// distortion types, the comparison's rows by group and metric, the reference and the number of seeds;
/// and what a section gives back, its HTML and its Markdown.
#include "json_access.hpp"
#include "text.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace ohem_study {

namespace report_detail {

/// One section of the report: its part of report.html and of report.md (empty: HTML only).
struct Section {
  std::string html, markdown;
};

/// What the sections share: the validated results, the distortion types, the comparison's rows by
/// group and metric, the optional type-and-level reference, the number of seeds and the interval's name.
class Study {
 public:
  Study(const json& validated, std::filesystem::path images_dir)
      : results(validated), base_dir(std::move(images_dir)) {
    for (const auto& t : results.at("dataset").at("types")) types.push_back(t.get<std::string>());
    groups = {"overall"};
    groups.insert(groups.end(), types.begin(), types.end());
    for (const auto& c : results.at("comparison"))
      comparison_[{c.at("group").get<std::string>(), c.at("metric")}] = &c;
    if (results.contains("reference")) reference = &results.at("reference");
    const json* overall = comparison("overall", "srcc");
    seeds = overall ? to_int(num_or_nan(*overall, "seeds")) : 0;
    if (seeds <= 0) {  // no count in the comparison: the distinct seeds of the runs
      std::set<double> distinct;
      for (const auto& r : results.at("runs")) distinct.insert(num_or_nan(r, "seed"));
      seeds = static_cast<int>(distinct.size());
    }
    const double level =
        overall && std::isfinite(num_or_nan(*overall, "ci_level")) ? num_or_nan(*overall, "ci_level") : 0.95;
    ci_name = fmt::format("{:.0f}% CI", 100 * level);
  }

  /// The comparison's row for group `g` (a type or "overall") and metric `m`; nullptr where absent.
  const json* comparison(const std::string& g, const std::string& m) const {
    const auto it = comparison_.find({g, m});
    return it == comparison_.end() ? nullptr : it->second;
  }

  /// The reference's metric `m` of group `g`; NaN where absent.
  double reference_metric(const std::string& g, const std::string& m) const {
    if (!reference || !reference->contains("metrics")) return kNaN;
    const json& metrics = reference->at("metrics");
    return metrics.contains(g) ? num_or_nan(metrics.at(g), m) : kNaN;
  }

  /// Whether comparison row `c` has an interval: only from 2 seeds on (one seed: the "interval" is the
  /// one difference).
  bool has_interval(const json& c) const {
    const double n = num_or_nan(c, "seeds");
    return std::isfinite(num_or_nan(c, "ci_low")) && std::isfinite(num_or_nan(c, "ci_high")) &&
           !(std::isfinite(n) && n < 2) && !(!std::isfinite(n) && results.at("runs").size() < 4);
  }

  const json& results;
  std::filesystem::path base_dir;  ///< gMAD image paths are relative to it
  std::vector<std::string> types;
  std::vector<std::string> groups;  ///< "overall", then the types
  const json* reference = nullptr;
  int seeds = 0;
  std::string ci_name;  ///< "95% CI"

 private:
  std::map<std::pair<std::string, std::string>, const json*> comparison_;
};

}  // namespace report_detail

}  // namespace ohem_study
