#pragma once
/// \file
/// The report's run section: when, how, on what and how long the study ran, its data and every option
/// (the first rows are study v2's too).
#include "study_view.hpp"

#include <toolkit/html.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <string>

namespace ohem_study {

namespace report_detail {

// --- 5. the run ---

/// The run table's first rows, v1's and v2's alike: when, in which mode, with which LibTorch, compiler and
/// threads.
inline html::Table run_table_start(const json& r) {
  const json& env = r.value("environment", json::object());
  html::Table t;
  t.caption = "The run.";
  t.header = {"item", "value"};
  t.rows.push_back({"created", str_or(r, "created", "–")});
  t.rows.push_back(
      {"mode", r.value("quick", false) ? "--quick (structure check, numbers meaningless)" : "full"});
  t.rows.push_back(
      {"LibTorch / compiler", str_or(env, "libtorch", "?") + " / " + str_or(env, "compiler", "?")});
  t.rows.push_back(
      {"threads", fmt::format("{} of {} hardware threads", html::number(num_or_nan(env, "threads"), 0),
                              html::number(num_or_nan(env, "hardware_threads"), 0))});
  return t;
}

/// When, how, on what and how long.
inline html::Table run_table(const Study& s) {
  const json& r = s.results;
  const json& ds = r.at("dataset");
  const json& secs = r.value("seconds", json::object());
  html::Table t = run_table_start(r);
  t.rows.push_back({"time (s)", fmt::format("dataset {} · training {} · analysis {} · total {}",
                                            html::number(num_or_nan(secs, "dataset"), 0),
                                            html::number(num_or_nan(secs, "training"), 0),
                                            html::number(num_or_nan(secs, "analysis"), 0),
                                            html::number(num_or_nan(secs, "total"), 0))});
  t.rows.push_back({"photographs", fmt::format("{} ({} for training, {} held out)",
                                               html::number(num_or_nan(ds, "photos"), 0),
                                               html::number(num_or_nan(ds, "train_photos"), 0),
                                               html::number(num_or_nan(ds, "test_photos"), 0))});
  t.rows.push_back({"images", fmt::format("{} patches of {} px, {} levels, {} distortion types",
                                          html::number(num_or_nan(ds, "images"), 0),
                                          html::number(num_or_nan(ds, "patch"), 0),
                                          html::number(num_or_nan(ds, "levels"), 0), s.types.size())});
  return t;
}

/// Images per distortion type, training and test.
inline html::Table data_table(const Study& s) {
  const json& ds = s.results.at("dataset");
  html::Table t;
  t.caption = "Images per distortion type (the training mix is long-tailed; the test set is balanced).";
  t.header = {"type", "training images", "test images"};
  t.numeric = {false, true, true};
  for (const auto& type : s.types) {
    t.rows.push_back({type, html::number(num_or_nan(ds.value("train_images", json::object()), type), 0),
                      html::number(num_or_nan(ds.value("test_images", json::object()), type), 0)});
  }
  return t;
}

/// Every option of the run (config), as written.
inline html::Table config_table(const json& results) {
  html::Table t;
  t.caption = "Every option of the run.";
  t.header = {"option", "value"};
  if (results.contains("config") && results["config"].is_object()) {
    for (const auto& [k, v] : results["config"].items())
      t.rows.push_back({k, v.is_string() ? v.get<std::string>() : v.dump()});
  }
  return t;
}

inline Section run_section(const Study& s) {
  const html::Table run = run_table(s), data = data_table(s);
  return {"<h2>5. The run</h2>\n" + html::table_html(run) + html::table_html(data) +
              "<details><summary>Configuration</summary>\n" + html::table_html(config_table(s.results)) +
              "</details>\n",
          "## The run\n\n" + html::table_markdown(run) + html::table_markdown(data)};
}

}  // namespace report_detail

}  // namespace ohem_study
