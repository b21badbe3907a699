#pragma once
/// @file
/// The summary of `ohem-splits`: reads each split's results.json (a train_pairwise or train_mos run),
/// checks that all of them are the same run apart from the split seed, and writes SRCC and PLCC per test
/// set and split with their mean, median, standard deviation (n − 1), minimum and maximum over the
/// splits, as JSON (schema "ohem-splits/1"), Markdown and a self-contained HTML page. See
/// docs/splits.md.

#include "subprocess.hpp"

#include <toolkit/command_line.hpp>
#include <toolkit/html.hpp>

#include <torch/torch.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace ohem_splits {

using json = nlohmann::ordered_json;

/// The schema name of summary.json.
inline constexpr const char* kSummarySchema = "ohem-splits/1";

/// The directory of the split with seed `seed` inside ohem-splits' --out: `split-<seed>`.
inline std::string split_dir_name(uint64_t seed) {
  return "split-" + std::to_string(seed);
}

/// One finished split: its seed, its directory and its results.json.
struct SplitRun {
  uint64_t seed = 0;
  std::string dir;
  json results;
};

/// Reads `dir`/results.json of the split with seed `seed`; throws naming the file if it is missing, is
/// not a JSON object or is the run of another split seed.
inline SplitRun read_split(const std::string& dir, uint64_t seed) {
  const std::string path = (std::filesystem::path(dir) / "results.json").string();
  std::ifstream in(path);
  TORCH_CHECK(in.good(), "split ", seed, ": \"", path, "\" does not exist (the split has not finished)");
  SplitRun s{seed, dir, json()};
  try {
    s.results = json::parse(in);
  } catch (const json::exception& e) {
    TORCH_CHECK(false, "split ", seed, ": \"", path, "\" is not JSON: ", e.what());
  }
  TORCH_CHECK(s.results.is_object() && s.results.contains("config") && s.results["config"].is_object(),
              "split ", seed, ": \"", path, "\" is not the results.json of train_pairwise or train_mos");
  const json& ss = s.results.contains("split_seed") ? s.results["split_seed"] : json();
  TORCH_CHECK(ss.is_number_unsigned() && ss.get<uint64_t>() == seed, "split ", seed, ": \"", path,
              "\" is the run of split seed ", ss.dump(), ", not ", seed);
  return s;
}

/// The trainer options that may differ between the splits of one protocol: the split seed, and the
/// options that change how a run is carried out but not what it computes (the trainers' runtime options:
/// --out, --resume, --threads, --device, ...), except --test and --max-steps, which change the results.
inline const std::set<std::string>& per_split_options() {
  static const std::set<std::string> names = [] {
    std::set<std::string> n{"--split-seed"};
    ohem_examples::TrainOptions o;
    ohem_examples::visit_train_options(o, [&](const ohem_examples::OptionInfo& info, const auto&) {
      const std::string name = info.name;
      if (info.role == ohem_examples::OptionRole::Runtime && name != "--test" && name != "--max-steps")
        n.insert(name);
    });
    return n;
  }();
  return names;
}

/// The names of a results.json's extra test sets (--test).
inline std::vector<std::string> test_set_names(const json& results) {
  std::vector<std::string> names;
  if (results.contains("tests") && results["tests"].is_object())
    for (const auto& [k, v] : results["tests"].items()) names.push_back(k);
  return names;
}

/// Returns one line per way in which the run of `b` differs from the run of `a` apart from what
/// `per_split_options()` allows (`--epochs2: 2 vs 1`); empty when they are the same run.
inline std::vector<std::string> run_differences(const json& a, const json& b) {
  std::vector<std::string> out;
  auto field = [](const json& j, const std::string& k) { return j.contains(k) ? j.at(k) : json(); };
  auto show = [](const json& v) { return v.is_null() ? std::string("(none)") : v.dump(); };
  if (field(a, "dataset") != field(b, "dataset"))
    out.push_back("dataset: " + show(field(a, "dataset")) + " vs " + show(field(b, "dataset")));
  const json &ca = a["config"], &cb = b["config"];
  std::set<std::string> keys;
  for (const auto& [k, v] : ca.items()) keys.insert(k);
  for (const auto& [k, v] : cb.items()) keys.insert(k);
  for (const auto& k : keys) {
    if (per_split_options().count(k) != 0) continue;
    if (field(ca, k) != field(cb, k))
      out.push_back(k + ": " + show(field(ca, k)) + " vs " + show(field(cb, k)));
  }
  if (test_set_names(a) != test_set_names(b))
    out.push_back("test sets: " + json(test_set_names(a)).dump() + " vs " + json(test_set_names(b)).dump());
  const bool sa = field(a, "selection").is_object(), sb = field(b, "selection").is_object();
  if (sa != sb)
    out.push_back(std::string("epoch chosen on validation: ") + (sa ? "yes" : "no") + " vs " +
                  (sb ? "yes" : "no"));
  return out;
}

/// Throws, naming every difference, unless all `runs` are the same run apart from the split seed.
inline void check_same_run(const std::vector<SplitRun>& runs) {
  std::string lines;
  for (size_t i = 1; i < runs.size(); ++i)
    for (const auto& d : run_differences(runs[0].results, runs[i].results))
      lines += fmt::format("\n  split {} vs split {}: {}", runs[i].seed, runs[0].seed, d);
  TORCH_CHECK(lines.empty(),
              "the splits are not one run apart from the split seed, so they are not summarised "
              "(rerun the differing splits with the same trainer options, or summarise them apart):",
              lines);
}

/// The statistics of one metric over the splits: over the values that exist (a NaN, i.e. a JSON null
/// in results.json, is left out and counted as missing).
struct Stats {
  std::vector<double> values;  ///< per split, in seed order (NaN: missing)
  int64_t n = 0;               ///< the values that exist
  double mean = NAN, median = NAN, sd = NAN, min = NAN, max = NAN;  ///< sd: NaN below 2 values
};

/// Returns mean, median, sample standard deviation (n − 1), minimum and maximum of the finite `values`.
inline Stats statistics(const std::vector<double>& values) {
  Stats s;
  s.values = values;
  std::vector<double> v;
  for (double x : values)
    if (std::isfinite(x)) v.push_back(x);
  s.n = static_cast<int64_t>(v.size());
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / static_cast<double>(v.size());
  const size_t h = v.size() / 2;
  s.median = v.size() % 2 == 1 ? v[h] : (v[h - 1] + v[h]) / 2;
  if (v.size() > 1) {
    double ss = 0;
    for (double x : v) ss += (x - s.mean) * (x - s.mean);
    s.sd = std::sqrt(ss / static_cast<double>(v.size() - 1));
  }
  s.min = v.front();
  s.max = v.back();
  return s;
}

/// A number for JSON: null when it is not finite.
inline json number_or_null(double v) {
  return std::isfinite(v) ? json(v) : json();
}

inline json stats_json(const Stats& s) {
  json values = json::array();
  for (double v : s.values) values.push_back(number_or_null(v));
  return {{"values", values},
          {"n", s.n},
          {"mean", number_or_null(s.mean)},
          {"median", number_or_null(s.median)},
          {"sd", number_or_null(s.sd)},
          {"min", number_or_null(s.min)},
          {"max", number_or_null(s.max)}};
}

/// One test set at one epoch over the splits: SRCC, PLCC and the test images of each split.
struct ResultRow {
  std::string set;    ///< "test" (the run's own test split) or a --test set's name
  std::string epoch;  ///< "selected" (the epoch chosen on validation) or "last"
  std::vector<double> srcc, plcc;
  std::vector<int64_t> images;
};

/// The rows of the summary: the run's test split first, then the --test sets by name; for runs with an
/// epoch chosen on validation (--val-fraction) its results before the last epoch's.
inline std::vector<ResultRow> collect_rows(const std::vector<SplitRun>& runs) {
  TORCH_INTERNAL_ASSERT(!runs.empty(), "no split to summarise");
  const bool selected = runs[0].results.contains("selection") && runs[0].results["selection"].is_object();
  std::vector<std::string> sets{"test"};
  for (const auto& n : test_set_names(runs[0].results)) sets.push_back(n);
  auto num = [](const json& j, const char* k) {
    return j.is_object() && j.contains(k) && j[k].is_number() ? j[k].get<double>() : NAN;
  };
  std::vector<ResultRow> rows;
  for (const auto& set : sets) {
    for (const std::string epoch : {"selected", "last"}) {
      if (epoch == "selected" && !selected) continue;
      ResultRow row{set, epoch, {}, {}, {}};
      for (const auto& r : runs) {
        // results.json: the last epoch's test split at the top, its --test sets in "tests"; the chosen
        // epoch's in "selection": "test" and "tests".
        const bool last = epoch == "last";
        const json& base = last ? r.results : r.results["selection"];
        const json where = set == "test" ? (last ? base : base.value("test", json()))
                                         : base.value("tests", json::object()).value(set, json());
        row.srcc.push_back(num(where, "srcc"));
        row.plcc.push_back(num(where, "plcc"));
        const double images = num(where, set == "test" && last ? "test_images" : "count");
        row.images.push_back(std::isfinite(images) ? static_cast<int64_t>(images) : -1);
      }
      rows.push_back(std::move(row));
    }
  }
  return rows;
}

/// The three files of a summary.
struct Summary {
  json data;  ///< summary.json
  std::string markdown, html;
};

namespace detail {

inline std::string images_text(const std::vector<int64_t>& images) {
  int64_t lo = -1, hi = -1;
  for (int64_t i : images) {
    if (i < 0) continue;
    lo = lo < 0 ? i : std::min(lo, i);
    hi = std::max(hi, i);
  }
  if (lo < 0) return "?";
  return lo == hi ? std::to_string(lo) : fmt::format("{}–{}", lo, hi);
}

inline std::string row_label(const ResultRow& r, bool selected) {
  return selected ? r.set + " (" + r.epoch + ")" : r.set;
}

inline std::string seeds_text(const std::vector<SplitRun>& runs) {
  std::string s;
  for (const auto& r : runs) s += (s.empty() ? "" : ", ") + std::to_string(r.seed);
  return s;
}

}  // namespace detail

/// Builds the summary of `runs` (in seed order): checks them with `check_same_run` (throws naming the
/// differences), then computes the statistics and renders the three files. `command`: the trainer's
/// command line without the per-split options, when known; `created`: a time stamp.
inline Summary summarize(const std::vector<SplitRun>& runs,
                         const std::optional<std::vector<std::string>>& command, const std::string& created) {
  namespace html = ohem_examples::html;
  check_same_run(runs);
  const std::vector<ResultRow> rows = collect_rows(runs);
  const json& first = runs[0].results;
  const bool selected = first.contains("selection") && first["selection"].is_object();
  const std::string dataset = first.value("dataset", std::string("?"));
  const std::string command_text = command ? shell_quote(*command) : std::string();

  Summary out;
  json& j = out.data;
  j["schema"] = kSummarySchema;
  j["created"] = created;
  j["dataset"] = dataset;
  j["command"] = command ? json(*command) : json();
  json seeds = json::array(), splits = json::array();
  for (const auto& r : runs) {
    seeds.push_back(r.seed);
    splits.push_back({{"seed", r.seed},
                      {"results", (std::filesystem::path(split_dir_name(r.seed)) / "results.json").string()},
                      {"steps", r.results.value("steps", json())},
                      {"elapsed_s", r.results.value("elapsed_s", json())}});
  }
  j["seeds"] = seeds;
  j["selection"] = selected;
  json config = json::object();
  for (const auto& [k, v] : first["config"].items())
    if (per_split_options().count(k) == 0) config[k] = v;
  j["config"] = config;
  j["splits"] = splits;
  json results = json::array();
  std::vector<Stats> srcc, plcc;
  for (const auto& r : rows) {
    srcc.push_back(statistics(r.srcc));
    plcc.push_back(statistics(r.plcc));
    json images = json::array();
    for (int64_t i : r.images) images.push_back(i < 0 ? json() : json(i));
    results.push_back({{"set", r.set},
                       {"epoch", r.epoch},
                       {"images", images},
                       {"srcc", stats_json(srcc.back())},
                       {"plcc", stats_json(plcc.back())}});
  }
  j["results"] = results;

  // Tables (the Markdown and the page share them; both escape every cell).
  html::Table stats_table;
  stats_table.id = "summary-table";
  stats_table.caption =
      fmt::format("SRCC and PLCC over {} splits (s.d.: sample standard deviation, n − 1).", runs.size());
  stats_table.header = {"test set", "epoch", "images", "metric", "mean",
                        "median",   "s.d.",  "min",    "max",    "splits"};
  stats_table.numeric = {false, false, true, false, true, true, true, true, true, true};
  for (size_t i = 0; i < rows.size(); ++i) {
    for (const auto& [name, s] : {std::pair<const char*, const Stats&>{"SRCC", srcc[i]}, {"PLCC", plcc[i]}}) {
      stats_table.rows.push_back({rows[i].set, rows[i].epoch, detail::images_text(rows[i].images), name,
                                  html::number(s.mean, 4), html::number(s.median, 4), html::number(s.sd, 4),
                                  html::number(s.min, 4), html::number(s.max, 4),
                                  fmt::format("{} of {}", s.n, runs.size())});
    }
  }
  html::Table per_split;
  per_split.id = "splits-table";
  per_split.caption = "Each split's results (its results.json).";
  per_split.header = {"split seed"};
  per_split.numeric = {true};
  for (const auto& r : rows) {
    for (const char* m : {"SRCC", "PLCC"}) {
      per_split.header.push_back(detail::row_label(r, selected) + " " + m);
      per_split.numeric.push_back(true);
    }
  }
  for (size_t k = 0; k < runs.size(); ++k) {
    std::vector<std::string> cells{std::to_string(runs[k].seed)};
    for (const auto& r : rows) {
      cells.push_back(html::number(r.srcc[k], 4));
      cells.push_back(html::number(r.plcc[k], 4));
    }
    per_split.rows.push_back(cells);
  }
  html::Table config_table;
  config_table.caption =
      "The trainer's options (the same in every split; per split: " + c10::Join(", ", per_split_options()) +
      ").";
  config_table.header = {"option", "value"};
  for (const auto& [k, v] : config.items())
    config_table.rows.push_back({k, v.is_string() ? v.get<std::string>() : v.dump()});

  const std::string title = "Split summary: " + dataset;
  const std::string meta =
      fmt::format("{} splits (split seeds {}){} · created {}", runs.size(), detail::seeds_text(runs),
                  selected ? " · epoch chosen on validation (--val-fraction)" : "", created);
  const Stats& main_srcc = srcc[0];
  const std::string headline =
      fmt::format("Test SRCC{}: median {}, mean {} ± {} (s.d.) over {} splits; PLCC median {}.",
                  selected ? " at the epoch chosen on validation" : "", html::number(main_srcc.median, 4),
                  html::number(main_srcc.mean, 4), html::number(main_srcc.sd, 4), main_srcc.n,
                  html::number(plcc[0].median, 4));

  // Markdown.
  std::string& md = out.markdown;
  md += "# " + html::markdown_escape(title) + "\n\n" + html::markdown_escape(meta) + ".\n\n";
  md += html::markdown_escape(headline) + "\n\n";
  if (!command_text.empty()) md += "Trainer: " + html::markdown_escape(command_text) + "\n\n";
  md += html::table_markdown(stats_table) + html::table_markdown(per_split) +
        html::table_markdown(config_table);
  md += "Generated by ohem-splits from each split's results.json (summary.json: schema " +
        std::string(kSummarySchema) + "; docs/splits.md).\n";

  // The page: a chart per metric, every split a dot and the mean a bar.
  std::string b = "<h1>" + html::escape(title) + "</h1>\n<p class=\"meta\">" + html::escape(meta) + "</p>\n";
  b += "<section class=\"summary\" id=\"summary\"><p>" + html::escape(headline) + "</p>";
  if (!command_text.empty())
    b += "<p class=\"note\">Trainer: <code>" + html::escape(command_text) + "</code></p>";
  b += "</section>\n<div class=\"charts\">\n";
  for (const auto& [metric, stats] :
       {std::pair<const char*, const std::vector<Stats>&>{"SRCC", srcc}, {"PLCC", plcc}}) {
    html::DotChart c;
    c.id = std::string("chart-") + (metric[0] == 'S' ? "srcc" : "plcc");
    c.title = std::string(metric) + " per split";
    c.y_label = metric;
    c.dot_name = "split";
    c.width = std::max(480, 140 * static_cast<int>(rows.size()) + 80);
    for (size_t i = 0; i < rows.size(); ++i) {
      c.groups.push_back(detail::row_label(rows[i], selected));
      c.values.push_back(stats[i].values);
      std::vector<std::string> labels;
      for (const auto& r : runs) labels.push_back("split seed " + std::to_string(r.seed));
      c.labels.push_back(labels);
      c.mean.push_back(stats[i].mean);
    }
    b += html::dot_chart(c);
  }
  b += "</div>\n<h2>Statistics over the splits</h2>\n" + html::table_html(stats_table);
  b += "<h2>Each split</h2>\n" + html::table_html(per_split);
  b += "<h2>The run</h2>\n<details><summary>The trainer's options</summary>\n" +
       html::table_html(config_table) + "</details>\n";
  b += "<p class=\"note\">Generated by ohem-splits from each split's results.json (summary.json: schema " +
       std::string(kSummarySchema) + "; docs/splits.md).</p>\n";
  out.html = html::page(title, b, html::chart_style());
  return out;
}

}  // namespace ohem_splits
