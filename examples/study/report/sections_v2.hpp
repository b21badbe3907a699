#pragma once
/// \file
/// Study v2's report sections (schema "ohem-study/2", `study --design v2`; docs/study.md "Study v2"): the
/// title, the registered endpoints, the per-type rows with Holm-adjusted p-values, the mechanism per arm,
/// the per-seed tables and the run.
#include "json_access.hpp"
#include "sections_run.hpp"
#include "text.hpp"
#include "v2_rule.hpp"

#include <toolkit/html.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>
#include <vector>

namespace ohem_study {

namespace report_detail {

/// The number of seeds of a v2 study (one entry per seed in dataset.seeds).
inline size_t v2_seeds(const json& results) {
  return results.at("dataset").at("seeds").size();
}

inline Section v2_title_section(const json& r) {
  const bool quick = r.value("quick", false);
  const std::string photos = html::number(num_or_nan(r.at("dataset"), "photos"), 0);
  const size_t seeds = v2_seeds(r), types = r.at("dataset").at("types").size();
  std::string commit;
  if (r.contains("registration")) commit = r.at("registration").at("commit").get<std::string>();
  const bool in_progress =
      r.contains("in_progress") && r.at("in_progress").is_boolean() && r.at("in_progress").get<bool>();
  const std::string registration =
      !commit.empty() ? "Registered design: commit " + commit +
                            " (docs/study.md, \"Study v2: registered design\"); the endpoints and the rules "
                            "that read them "
                            "were fixed there before this run."
      : in_progress ? "Not registered: results.json marks this run in_progress (it ran without study's "
                      "--registration), so nothing on this page is a finding."
                    : "The registration commit is not recorded in results.json.";
  Section out;
  out.html = "<h1>OHEM study v2: fine-tuning from a shared start, three arms</h1>\n";
  out.html += fmt::format(
      "<p class=\"meta\">{} seed(s) · {} distortion types · {} photographs · created {}{}</p>\n", seeds,
      types, photos, html::escape(str_or(r, "created", "?")),
      quick ? " · <b>--quick run: checks the report's structure, the numbers mean nothing</b>" : "");
  out.html += "<p class=\"note\" id=\"registration\">" + html::escape(registration) + "</p>\n";
  out.markdown = "# OHEM study v2: fine-tuning from a shared start, three arms\n\n";
  out.markdown += fmt::format("{} seed(s), {} distortion types, {} photographs, created {}{}.\n\n", seeds,
                              types, photos, html::markdown_escape(str_or(r, "created", "?")),
                              quick ? " (--quick run: the numbers mean nothing)" : "");
  out.markdown += html::markdown_escape(registration) + "\n\n";
  return out;
}

/// The registered endpoints: primary, then the secondaries, one row each.
inline html::Table v2_endpoint_table(const json& ends) {
  html::Table t;
  t.id = "table-endpoints";
  const json& primary = ends.at("primary");
  t.caption = fmt::format(
      "The registered endpoints, paired over seeds: mean, {} (paired t), two-sided p of the paired t-test "
      "and "
      "of the exact sign-flip test (all 2^n sign patterns), seeds with a positive difference. Reading: the "
      "registered rule (t-interval excludes 0 and sign-flip p < 0.05).",
      t_interval_name(primary));
  t.header = {"endpoint", "definition",  "mean",     t_interval_name(primary),
              "t-test p", "sign-flip p", "positive", "reading"};
  t.numeric = {false, false, true, true, true, true, true, false};
  auto row = [&](const std::string& role, const json& e) {
    t.rows.push_back({role + ": " + e.at("name").get<std::string>(), e.at("definition").get<std::string>(),
                      signed_num(num_or_nan(e, "mean"), 4), interval_text(e),
                      p_text(num_or_nan(e, "t_p_value")), p_text(num_or_nan(e, "sign_flip_p_value")),
                      html::number(num_or_nan(e, "positive"), 0) + "/" + html::number(num_or_nan(e, "n"), 0),
                      verdict_cell(verdict(e))});
  };
  row("primary", primary);
  for (const auto& e : ends.at("secondary")) row("secondary", e);
  return t;
}

inline Section v2_endpoints_section(const json& r) {
  const json& ends = r.at("endpoints");
  const json& primary = ends.at("primary");
  const std::string line = "Δ overall SRCC (OHEM − baseline): " + endpoint_line(primary) + ".";
  const double mde = num_or_nan(primary, "minimum_detectable_effect");
  const std::string mde_text =
      std::isfinite(mde)
          ? fmt::format(
                "{}: the smallest true Δ the paired t-test (two-sided 5 %) detects with 80 % power at "
                "the observed s.d. of the differences ({}) with n = {} seeds.",
                html::number(mde, 4), html::number(num_or_nan(primary, "sd"), 4),
                html::number(num_or_nan(primary, "n"), 0))
          : "– (fewer than 2 seeds: no observed spread).";
  std::vector<std::string> secondary;
  for (const auto& e : ends.at("secondary"))
    secondary.push_back(e.at("definition").get<std::string>() + ": " + endpoint_line(e) + ". " +
                        verdict_words(e, verdict(primary)));
  const html::Table table = v2_endpoint_table(ends);
  Section out;
  for (bool md : {false, true}) {
    std::string& s = md ? out.markdown : out.html;
    s += md ? "## Registered endpoints\n\n" : "<h2>1. Registered endpoints</h2>\n";
    s += paragraph("Primary.", line, md, "primary");
    s += paragraph("Reading (registered rule).", verdict_words(primary), md, "primary-reading");
    s += paragraph("Minimum detectable effect.", mde_text, md, "mde");
    s += paragraph("Secondary.", "The two registered secondaries, read by the same rule:", md);
    s += bullets(secondary, md);
    s += md ? html::table_markdown(table) : html::table_html(table);
  }
  return out;
}

/// Per type: Δ SRCC (OHEM − baseline) with its interval, p-values and Holm's adjustment over the types.
inline Section v2_per_type_section(const json& r) {
  html::Table t;
  t.id = "table-per-type";
  const json& rows = r.at("endpoints").at("per_type");
  t.caption =
      "Per distortion type: test SRCC, OHEM − baseline, paired over seeds; Holm-adjusted p: Holm's step-down "
      "adjustment of the paired t-tests' p over the types (family-wise 5 %). Reading: Holm-adjusted p < "
      "0.05.";
  t.header = {
      "type",     "Δ SRCC",          rows.empty() ? std::string("t-interval") : t_interval_name(rows.at(0)),
      "t-test p", "Holm-adjusted p", "sign-flip p",
      "positive", "reading"};
  t.numeric = {false, true, true, true, true, true, true, false};
  for (const auto& e : rows) {
    const double holm = num_or_nan(e, "holm_p_value");
    const double d = num_or_nan(e, "mean");
    std::string name = e.at("name").get<std::string>();
    if (name.rfind("delta_srcc_", 0) == 0) name = name.substr(11);
    t.rows.push_back({name, signed_num(d, 4), interval_text(e), p_text(num_or_nan(e, "t_p_value")),
                      p_text(holm), p_text(num_or_nan(e, "sign_flip_p_value")),
                      html::number(num_or_nan(e, "positive"), 0) + "/" + html::number(num_or_nan(e, "n"), 0),
                      !std::isfinite(holm) ? "no adjusted p"
                      : holm < kV2Alpha
                          ? (d > 0 ? "OHEM higher (Holm p < 0.05)" : "OHEM lower (Holm p < 0.05)")
                          : "no evidence after Holm"});
  }
  return {"<h2>2. Per distortion type</h2>\n" + html::table_html(t),
          "## Per distortion type\n\n" + html::table_markdown(t)};
}

/// The mechanism per arm: within-type SRCC(hardness, own error) and the tail types' enrichment − 1.
inline Section v2_mechanism_section(const json& r) {
  const json& mech = r.at("mechanism");
  html::Table t;
  t.id = "table-mechanism-v2";
  t.caption = fmt::format(
      "The mechanism per seed, summarised over seeds: within each type, the Spearman correlation of a "
      "training image's hardness (twin disagreement) with its own final error, mean over the types; and the "
      "seed's tail-type share among the {} hardest training images divided by their training share, minus 1 "
      "(0: as often as they occur). Descriptive: no decision rule reads them.",
      pct(num_or_nan(mech, "top_fraction")));
  t.header = {"arm", "measure", "mean", "t-interval", "t-test p", "sign-flip p", "n"};
  t.numeric = {false, false, true, true, true, true, true};
  for (const auto& a : mech.at("arms")) {
    for (const char* m : {"within_type_hardness_error_srcc", "tail_enrichment_minus_1"}) {
      const json& e = a.at(m);
      t.rows.push_back({arm_name(a.at("arm").get<std::string>()), e.at("definition").get<std::string>(),
                        signed_num(num_or_nan(e, "mean"), 4), interval_text(e),
                        p_text(num_or_nan(e, "t_p_value")), p_text(num_or_nan(e, "sign_flip_p_value")),
                        html::number(num_or_nan(e, "n"), 0)});
    }
  }
  if (!mech.at("arms").empty())
    t.header[3] = t_interval_name(mech.at("arms").at(0).at("tail_enrichment_minus_1"));
  return {"<h2>3. The mechanism</h2>\n" + html::table_html(t), "## Mechanism\n\n" + html::table_markdown(t)};
}

/// Per seed: its tiers, W's test SRCC and each arm's chosen rate, validation and test metrics.
inline html::Table v2_seed_table(const json& r) {
  html::Table t;
  t.id = "table-seeds";
  t.caption =
      "Per seed and arm: the fine-tuning learning rate used (where several were tried, the one with the best "
      "validation SRCC), the rates tried, the validation SRCC, and the test SRCC and PLCC. W: the shared "
      "start, trained from scratch on the pool photographs.";
  t.header = {"seed",        "tail types",      "arm",       "learning rate",
              "rates tried", "validation SRCC", "test SRCC", "test PLCC"};
  t.numeric = {true, false, false, true, false, true, true, true};
  std::map<int, std::string> tails;
  for (const auto& s : r.at("dataset").at("seeds")) {
    std::vector<std::string> names;
    for (const auto& n : s.at("tiers").at("tail")) names.push_back(n.get<std::string>());
    tails[to_int(num_or_nan(s, "seed"))] = comma_list(names);
  }
  auto overall = [](const json& run, const char* metrics, const char* m) {
    return html::number(num_or_nan(run.at(metrics).at("overall"), m));
  };
  for (const auto& w : r.at("start")) {
    const int seed = to_int(num_or_nan(w, "seed"));
    t.rows.push_back({std::to_string(seed), tails[seed], "W (shared start)", "–", "–", "–",
                      overall(w, "metrics", "srcc"), overall(w, "metrics", "plcc")});
    for (const auto& run : r.at("runs")) {
      if (to_int(num_or_nan(run, "seed")) != seed) continue;
      std::vector<std::string> tried;
      if (run.contains("lr_tried") && run.at("lr_tried").is_array())
        for (const auto& x : run.at("lr_tried")) tried.push_back(fmt::format("{:g}", num_or_nan(x, "lr")));
      t.rows.push_back({std::to_string(seed), tails[seed], arm_name(run.at("method").get<std::string>()),
                        fmt::format("{:g}", num_or_nan(run, "lr")), tried.empty() ? "–" : comma_list(tried),
                        overall(run, "val_metrics", "srcc"), overall(run, "metrics", "srcc"),
                        overall(run, "metrics", "plcc")});
    }
  }
  return t;
}

/// Per seed: the registered endpoints' paired differences (what the intervals summarise).
inline html::Table v2_differences_table(const json& r) {
  const json& ends = r.at("endpoints");
  html::Table t;
  t.id = "table-differences";
  t.caption = "Per seed: the paired differences the endpoints summarise.";
  t.header = {"seed", ends.at("primary").at("name").get<std::string>()};
  t.numeric = {true, true};
  std::vector<const json*> cols = {&ends.at("primary")};
  for (const auto& e : ends.at("secondary")) {
    cols.push_back(&e);
    t.header.push_back(e.at("name").get<std::string>());
    t.numeric.push_back(true);
  }
  for (size_t s = 0; s < v2_seeds(r); ++s) {
    std::vector<std::string> row = {
        std::to_string(to_int(num_or_nan(r.at("dataset").at("seeds").at(s), "seed")))};
    for (const json* e : cols) {
      const json& ps = e->at("per_seed");
      row.push_back(s < ps.size() && ps.at(s).is_number() ? signed_num(ps.at(s).get<double>(), 4)
                                                          : html::number(kNaN));
    }
    t.rows.push_back(row);
  }
  return t;
}

inline Section v2_seeds_section(const json& r) {
  const html::Table seeds = v2_seed_table(r), diffs = v2_differences_table(r);
  return {"<h2>4. Per seed</h2>\n" + html::table_html(diffs) + html::table_html(seeds),
          "## Per seed\n\n" + html::table_markdown(diffs) + html::table_markdown(seeds)};
}

inline Section v2_run_section(const json& r) {
  const json& secs = r.value("seconds", json::object());
  const json& first = r.at("dataset").at("seeds").at(0);
  const json& photos = first.value("photos", json::object());
  auto count = [&](const char* part) {
    return photos.contains(part) && photos.at(part).is_array() ? std::to_string(photos.at(part).size())
                                                               : std::string("–");
  };
  const json& images = first.at("images");
  html::Table t = run_table_start(r);
  t.rows.push_back({"time (s)", fmt::format("dataset {} · training {} · total {}",
                                            html::number(num_or_nan(secs, "dataset"), 0),
                                            html::number(num_or_nan(secs, "training"), 0),
                                            html::number(num_or_nan(secs, "total"), 0))});
  t.rows.push_back(
      {"photographs (seed 0)", fmt::format("{} in all: pool {}, training {}, validation {}, test {}",
                                           html::number(num_or_nan(r.at("dataset"), "photos"), 0),
                                           count("pool"), count("train"), count("val"), count("test"))});
  t.rows.push_back(
      {"images (seed 0)",
       fmt::format("pool {}, training {} (tiered), validation {}, test {} (balanced)",
                   html::number(num_or_nan(images, "pool"), 0), html::number(num_or_nan(images, "train"), 0),
                   html::number(num_or_nan(images, "val"), 0), html::number(num_or_nan(images, "test"), 0))});
  return {"<h2>5. The run</h2>\n" + html::table_html(t) + "<details><summary>Configuration</summary>\n" +
              html::table_html(config_table(r)) + "</details>\n",
          "## The run\n\n" + html::table_markdown(t)};
}

}  // namespace report_detail

}  // namespace ohem_study
