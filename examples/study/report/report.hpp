#pragma once
/// \file
/// The study report (issue 14): reads the `study` program's results.json (schema "ohem-study/1", see
/// docs/study.md) and writes report.html (self-contained: inline SVG charts, the gMAD images as data:
/// URIs, a little inline CSS, no JavaScript, no network) and report.md (the same tables in Markdown).
/// Needs only nlohmann/json, fmt and the standard library (no LibTorch).
///
/// The report is a list of sections (the title, the plain-words summary, the comparison, the training
/// curves, the mechanism, gMAD, the run), each one function from the results to its HTML and Markdown
/// (report_detail::sections lists them). The input check is validate.hpp's, one function per part of
/// results.json (validate_results lists them). A new section is one more function in each list.
///
/// Study v2's results.json (schema "ohem-study/2", `study --design v2`) has its own sections
/// (report_detail::v2_sections): the registered endpoints first (the primary's line "Δ = …, 95 %
/// t-interval […], sign-flip p = …, n = … seeds", its reading by the registered rule, the minimum
/// detectable effect, the secondaries), then the per-type rows with Holm-adjusted p-values, the
/// mechanism, the per-seed tables and the run.
#include "validate.hpp"

#include <toolkit/html.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace ohem_study {

namespace report_detail {

namespace html = ohem_examples::html;

// The sections read the fields the check requires with `at()`; the optional ones (and numbers, which
// may be null) with the two readers below. nlohmann's `value(key, fallback)` would throw on null or on a
// field of another type; these fall back, so an odd optional field shows as "–" and stops nothing.

/// A number field if present (null, absent or not a number → NaN).
inline double num_or_nan(const json& j, const std::string& key) {
  if (!j.is_object()) return kNaN;
  const auto it = j.find(key);
  return it == j.end() || !it->is_number() ? kNaN : it->get<double>();
}

/// A string field if present, else `fallback`.
inline std::string str_or(const json& j, const std::string& key, const std::string& fallback) {
  if (!j.is_object()) return fallback;
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : fallback;
}

/// A method's display name.
inline std::string method_name(const std::string& m) {
  return m == "ohem" ? "OHEM" : m == "baseline" ? "baseline" : m;
}

inline std::string pct(double v) {
  return std::isfinite(v) ? fmt::format("{:.1f}%", 100 * v) : html::number(v);
}

inline std::string signed_num(double v, int d = 3) {
  return std::isfinite(v) ? fmt::format("{:+.{}f}", v, d) : html::number(v);
}

/// `v` as an int (0 when it is NaN or out of range).
inline int to_int(double v) {
  return std::isfinite(v) && std::abs(v) < 1e9 ? static_cast<int>(std::lround(v)) : 0;
}

/// Mean of the finite values (NaN if none).
inline double finite_mean(const std::vector<double>& v) {
  double s = 0;
  int n = 0;
  for (double x : v) {
    if (std::isfinite(x)) s += x, ++n;
  }
  return n ? s / n : kNaN;
}

/// "a, b, c".
inline std::string comma_list(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
  return s;
}

/// `v` as a bullet list, in HTML or (`md`) in Markdown.
inline std::string bullets(const std::vector<std::string>& v, bool md) {
  std::string out = md ? "" : "<ul>\n";
  for (const auto& s : v)
    out += md ? "- " + html::markdown_escape(s) + "\n" : "<li>" + html::escape(s) + "</li>\n";
  return out + (md ? "\n" : "</ul>\n");
}
}  // namespace report_detail

/// The report as text: `html` (the whole self-contained page) and `markdown` (the tables).
struct Report {
  std::string html, markdown;
};

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

// --- title ---

inline Section title_section(const Study& s) {
  const json& r = s.results;
  const bool quick = r.value("quick", false);
  const std::string photos = html::number(num_or_nan(r.at("dataset"), "photos"), 0);
  Section out;
  out.html = "<h1>OHEM study: baseline vs self-competitor OHEM</h1>\n";
  out.html += fmt::format(
      "<p class=\"meta\">{} seed(s) · {} distortion types · {} photographs · created {}{}</p>\n", s.seeds,
      s.types.size(), photos, html::escape(str_or(r, "created", "?")),
      quick ? " · <b>--quick run: checks the report's structure, the numbers mean nothing</b>" : "");
  out.markdown = "# OHEM study: baseline vs self-competitor OHEM\n\n";
  out.markdown += fmt::format("{} seed(s), {} distortion types, {} photographs, created {}{}.\n\n", s.seeds,
                              s.types.size(), photos, html::markdown_escape(str_or(r, "created", "?")),
                              quick ? " (--quick run: the numbers mean nothing)" : "");
  return out;
}

// --- 1. the comparison ---

/// `method`'s mean SRCC per group, its bars ± 1 s.d.
inline html::BarSeries srcc_bars(const Study& s, const std::string& method, const std::string& name,
                                 const std::string& color) {
  html::BarSeries out{name, color, {}, {}, {}};
  for (const auto& g : s.groups) {
    const json* c = s.comparison(g, "srcc");
    const double m = c ? num_or_nan(*c, method + "_mean") : kNaN,
                 sd = c ? num_or_nan(*c, method + "_std") : kNaN;
    out.values.push_back(m), out.low.push_back(m - sd), out.high.push_back(m + sd);
  }
  return out;
}

/// SRCC per group for each method (and the reference, where there is one).
inline std::string srcc_chart(const Study& s) {
  const auto& colors = html::palette();
  html::BarChart chart;
  chart.id = "chart-srcc";
  chart.title = "SRCC on held-out content, per distortion type (mean over seeds, bars: ± 1 s.d.)";
  chart.y_label = "SRCC";
  chart.groups = s.groups;
  chart.y_max = 1;
  chart.series = {srcc_bars(s, "baseline", "baseline", colors[0]), srcc_bars(s, "ohem", "OHEM", colors[1])};
  double lowest = 1;
  for (const auto& b : chart.series) {
    for (double v : b.low) {
      if (std::isfinite(v)) lowest = std::min(lowest, v);
    }
  }
  if (s.reference) {
    html::BarSeries ref{"type+level only (reference)", "#9a9a9a", {}, {}, {}};
    for (const auto& g : s.groups) {
      const double v = s.reference_metric(g, "srcc");
      ref.values.push_back(v), ref.low.push_back(kNaN), ref.high.push_back(kNaN);
      if (std::isfinite(v)) lowest = std::min(lowest, v);
    }
    chart.series.push_back(ref);
  }
  chart.y_min = lowest >= 0.5 ? 0.5 : lowest >= 0 ? 0 : -1;
  return html::bar_chart(chart);
}

/// The paired difference OHEM − baseline in SRCC per group, with its interval.
inline std::string difference_chart(const Study& s) {
  html::BarChart chart;
  chart.title =
      fmt::format("Paired difference OHEM − baseline in SRCC ({}, bootstrap over seeds)", s.ci_name);
  chart.y_label = "Δ SRCC";
  chart.groups = s.groups;
  chart.reference = 0;
  html::BarSeries d{"OHEM − baseline", html::palette()[2], {}, {}, {}};
  for (const auto& g : s.groups) {
    const json* c = s.comparison(g, "srcc");
    d.values.push_back(c ? num_or_nan(*c, "diff_mean") : kNaN);
    d.low.push_back(c ? num_or_nan(*c, "ci_low") : kNaN),
        d.high.push_back(c ? num_or_nan(*c, "ci_high") : kNaN);
  }
  chart.series = {d};
  return html::bar_chart(chart);
}

/// The comparison table: per group, SRCC and PLCC of both methods, the difference, its interval, wins.
inline html::Table comparison_table(const Study& s) {
  html::Table t;
  t.id = "table-comparison";
  t.caption = fmt::format(
      "Baseline vs OHEM per distortion type: mean ± s.d. over {} seeds; Δ = mean paired difference OHEM − "
      "baseline with its {} (bootstrap over seeds); wins = seeds where OHEM is higher.",
      s.seeds, s.ci_name);
  t.header = {"group", "metric", "baseline", "OHEM", "Δ", s.ci_name, "wins", "reading"};
  t.numeric = {false, false, true, true, true, true, true, false};
  if (s.reference) {
    t.caption +=
        " Type+level only: the reference predictor that knows each image's distortion type and "
        "level, not its content (it scores an image with the mean training label of its type and "
        "level).";
    t.header.insert(t.header.begin() + 4, "type+level only");
    t.numeric.insert(t.numeric.begin() + 4, true);
  }
  for (const auto& g : s.groups) {
    for (const std::string m : {"srcc", "plcc"}) {
      const json* c = s.comparison(g, m);
      if (!c) continue;
      const double lo = num_or_nan(*c, "ci_low"), hi = num_or_nan(*c, "ci_high");
      const std::string reading = !s.has_interval(*c) ? "no interval (fewer than 2 seeds)"
                                  : lo > 0            ? "OHEM higher"
                                  : hi < 0            ? "baseline higher"
                                                      : "no evidence of a difference";
      t.rows.push_back(
          {g, m == "srcc" ? "SRCC" : "PLCC",
           html::number(num_or_nan(*c, "baseline_mean")) + " ± " +
               html::number(num_or_nan(*c, "baseline_std")),
           html::number(num_or_nan(*c, "ohem_mean")) + " ± " + html::number(num_or_nan(*c, "ohem_std")),
           signed_num(num_or_nan(*c, "diff_mean")), "[" + signed_num(lo) + ", " + signed_num(hi) + "]",
           html::number(num_or_nan(*c, "wins"), 0) + "/" + html::number(num_or_nan(*c, "seeds"), 0),
           reading});
      if (s.reference)
        t.rows.back().insert(t.rows.back().begin() + 4, html::number(s.reference_metric(g, m)));
    }
  }
  return t;
}

inline Section comparison_section(const Study& s) {
  const html::Table t = comparison_table(s);
  return {"<h2>1. Does OHEM help?</h2>\n" + srcc_chart(s) + difference_chart(s) + html::table_html(t),
          "## Comparison\n\n" + html::table_markdown(t)};
}

// --- 2. training curves: per method, the mean over seeds of each quantity per epoch ---

/// One method's training curves: each quantity's values over seeds, by epoch.
struct Curve {
  std::map<double, std::vector<double>> task, twin, consistency, hardness, test;
};

inline std::map<std::string, Curve> curves_by_method(const json& runs) {
  std::map<std::string, Curve> curves;
  for (const auto& r : runs) {
    Curve& c = curves[r.at("method").get<std::string>()];
    for (const auto& e : r.at("curve")) {
      const double x = num_or_nan(e, "epoch");
      if (!std::isfinite(x)) continue;
      c.task[x].push_back(num_or_nan(e, "task_loss"));
      c.twin[x].push_back(num_or_nan(e, "twin_task_loss"));
      c.consistency[x].push_back(num_or_nan(e, "consistency"));
      c.hardness[x].push_back(num_or_nan(e, "mean_hardness"));
      c.test[x].push_back(num_or_nan(e, "test_srcc"));
    }
  }
  return curves;
}

/// The line of quantity `q` of `method` (empty where that method has no runs).
inline html::LineSeries curve_line(const std::map<std::string, Curve>& curves, const std::string& method,
                                   std::map<double, std::vector<double>> Curve::*q, const std::string& name,
                                   const std::string& color, bool dashed = false) {
  html::LineSeries s{name, color, {}, {}, dashed};
  const auto it = curves.find(method);
  if (it == curves.end()) return s;
  for (const auto& [x, v] : it->second.*q) s.x.push_back(x), s.y.push_back(finite_mean(v));
  return s;
}

/// The number of stage-1 epochs (config.epochs1), or -1 where the results do not say.
inline int stage1_epochs(const json& results) {
  if (!results.contains("config") || !results["config"].is_object()) return -1;
  const double e1 = num_or_nan(results["config"], "epochs1");
  return std::isfinite(e1) ? to_int(e1) : -1;
}

inline Section curves_section(const Study& s) {
  const auto& colors = html::palette();
  const std::string c_base = colors[0], c_ohem = colors[1];
  const std::map<std::string, Curve> curves = curves_by_method(s.results.at("runs"));
  const int stage1 = stage1_epochs(s.results);
  auto panel = [&](const std::string& title, const std::string& y_label,
                   std::vector<html::LineSeries> lines) {
    html::LineChart c;
    c.title = title, c.x_label = "epoch", c.y_label = y_label, c.series = std::move(lines);
    if (stage1 > 0) c.x_divider = stage1 + 0.5, c.divider_label = "stage 2";
    return html::line_chart(c);
  };
  std::string out =
      "<h2>2. Training curves</h2>\n<p class=\"note\">Mean over seeds per epoch. The twin's loss, the "
      "consistency term and the hardness exist for OHEM only.</p>\n";
  out += "<div class=\"charts\" id=\"chart-curves\">\n";
  out += panel("Task loss per branch", "loss",
               {curve_line(curves, "baseline", &Curve::task, "baseline", c_base),
                curve_line(curves, "ohem", &Curve::task, "OHEM main", c_ohem),
                curve_line(curves, "ohem", &Curve::twin, "OHEM twin", colors[3], true)});
  out += panel("Test SRCC", "SRCC",
               {curve_line(curves, "baseline", &Curve::test, "baseline", c_base),
                curve_line(curves, "ohem", &Curve::test, "OHEM", c_ohem)});
  out += panel("Consistency loss (OHEM)", "consistency",
               {curve_line(curves, "ohem", &Curve::consistency, "OHEM", c_ohem)});
  out += panel("Mean hardness (twin disagreement, OHEM)", "hardness",
               {curve_line(curves, "ohem", &Curve::hardness, "OHEM", c_ohem)});
  out += "</div>\n";
  return {out, {}};
}

// --- 3. the mechanism ---

/// A mechanism variant's weight on the rare types, for the summary.
struct Tail {
  std::string label;
  double train = 0, hardest = 0;  ///< the rare types' share of the training set, of the hardest images
  double max_enrichment = kNaN;
  std::string max_type;  ///< the most enriched type
  double herr = kNaN;    ///< SRCC(hardness, own error), mean over seeds
};

/// What the summary reads of the mechanism: the hardest fraction, the rare types' bound (each type under
/// it is rare: under a uniform share) and each variant's tail.
struct Mechanism {
  Section section;
  double top = kNaN, rare = kNaN;
  std::vector<Tail> tails;
};

inline std::string variant_label(const json& v) {
  return str_or(v, "label", v.at("name").get<std::string>());
}

/// A variant's entry of type `t` in by_type (the last one, should there be two); nullptr where absent.
inline const json* by_type(const json& v, const std::string& t) {
  const json* found = nullptr;
  for (const auto& b : v.at("by_type")) {
    if (b.at("type").get<std::string>() == t) found = &b;
  }
  return found;
}

/// The variant's weight on the types under `rare` of the training set, and its most enriched type.
inline Tail tail_of(const json& v, const std::vector<std::string>& types, double rare) {
  Tail tail;
  tail.label = variant_label(v);
  for (const auto& t : types) {
    const json* b = by_type(v, t);
    if (!b) continue;
    const double e = num_or_nan(*b, "enrichment");
    const double ts = num_or_nan(*b, "train_share"), hs = num_or_nan(*b, "hardest_share");
    if (std::isfinite(ts) && ts < rare && std::isfinite(hs)) tail.train += ts, tail.hardest += hs;
    if (std::isfinite(e) && !(e <= tail.max_enrichment)) tail.max_enrichment = e, tail.max_type = t;
  }
  tail.herr = num_or_nan(v.at("hardness_error_srcc"), "mean");
  return tail;
}

/// Enrichment per type among the hardest training images, one series per variant.
inline std::string enrichment_chart(const Study& s, double top) {
  const auto& colors = html::palette();
  html::BarChart chart;
  chart.id = "chart-enrichment";
  chart.title = fmt::format(
      "Enrichment per type among the {} hardest training images (1 = as in the training set)", pct(top));
  chart.y_label = "hardest share / training share";
  chart.groups = s.types;
  chart.reference = 1;
  chart.digits = 2;
  size_t vi = 0;
  for (const auto& v : s.results.at("mechanism").at("variants")) {
    const size_t color = vi == 0 ? 1 : vi == 1 ? 7 : vi + 1;  // the method orange, the random mask grey
    html::BarSeries b{variant_label(v), colors[color % colors.size()], {}, {}, {}};
    for (const auto& t : s.types) {
      const json* e = by_type(v, t);
      b.values.push_back(e ? num_or_nan(*e, "enrichment") : kNaN);
    }
    chart.series.push_back(b);
    ++vi;
  }
  return html::bar_chart(chart);
}

/// Per variant and type: training share, hardest share, enrichment, mean hardness.
inline html::Table mechanism_table(const Study& s, double top) {
  html::Table t;
  t.id = "table-mechanism";
  t.caption = fmt::format(
      "Per variant and distortion type: share of the training set, share among the {} hardest training "
      "images (hardness = twin disagreement averaged over training; shares averaged over the variant's "
      "seeds), their ratio, mean hardness.",
      pct(top));
  t.header = {"variant", "type", "training share", "hardest share", "enrichment", "mean hardness"};
  t.numeric = {false, false, true, true, true, true};
  for (const auto& v : s.results.at("mechanism").at("variants")) {
    for (const auto& type : s.types) {
      const json* b = by_type(v, type);
      if (!b) continue;
      t.rows.push_back({variant_label(v), type, pct(num_or_nan(*b, "train_share")),
                        pct(num_or_nan(*b, "hardest_share")), html::number(num_or_nan(*b, "enrichment"), 2),
                        html::number(num_or_nan(*b, "mean_hardness"), 4)});
    }
  }
  return t;
}

/// Per variant: SRCC between an image's hardness and its own error, mean and per seed.
inline html::Table hardness_error_table(const Study& s) {
  html::Table t;
  t.id = "table-hardness-error";
  t.caption =
      "Spearman correlation between an image's hardness and its own absolute error under the final model "
      "(mean over seeds, and each seed).";
  t.header = {"variant", "SRCC(hardness, error)", "per seed"};
  t.numeric = {false, true, true};
  for (const auto& v : s.results.at("mechanism").at("variants")) {
    const json& he = v.at("hardness_error_srcc");
    std::string per;
    if (he.contains("per_seed") && he["per_seed"].is_array()) {
      for (const auto& x : he["per_seed"])
        per +=
            (per.empty() ? "" : ", ") + (x.is_number() ? html::number(x.get<double>()) : html::number(kNaN));
    }
    t.rows.push_back({variant_label(v), html::number(num_or_nan(he, "mean")), per});
  }
  return t;
}

inline Mechanism mechanism_section(const Study& s) {
  Mechanism out;
  out.top = num_or_nan(s.results.at("mechanism"), "top_fraction");
  out.rare = 1.0 / static_cast<double>(s.types.size());
  for (const auto& v : s.results.at("mechanism").at("variants"))
    out.tails.push_back(tail_of(v, s.types, out.rare));
  const html::Table per_type = mechanism_table(s, out.top), herr = hardness_error_table(s);
  out.section.html =
      "<h2>3. The mechanism: does the twin find the hard samples?</h2>\n<p class=\"note\">A bar above the "
      "dashed line: that type is over-represented among the hardest training images. Controls: a random "
      "mask at the same pruning ratio, and an ensemble of 4 magnitude-pruned twins.</p>\n" +
      enrichment_chart(s, out.top) + html::table_html(per_type) + html::table_html(herr);
  out.section.markdown = "## Mechanism\n\n" + html::table_markdown(per_type) + html::table_markdown(herr);
  return out;
}

// --- 4. gMAD ---

/// Per attacking method: attacks succeeded and pairs.
using GmadRates = std::map<std::string, std::pair<double, double>>;

inline GmadRates gmad_rates(const json& gmad) {
  GmadRates rates;
  for (const auto& s : gmad.at("summary"))
    rates[s.at("attacker").get<std::string>()] = {num_or_nan(s, "succeeded"), num_or_nan(s, "pairs")};
  return rates;
}

/// Per direction: attacks succeeded, pairs, success rate.
inline html::Table gmad_table(const json& gmad) {
  html::Table t;
  t.id = "table-gmad";
  t.caption =
      "gMAD between the two final models on held-out images: an attack succeeds when the image the attacker "
      "rates higher is also the one with the higher true (SSIM) label.";
  t.header = {"attacker", "defender", "attacks succeeded", "pairs", "success rate"};
  t.numeric = {false, false, true, true, true};
  for (const auto& s : gmad.at("summary")) {
    const std::string a = s.at("attacker"), d = s.at("defender");
    const double ok = num_or_nan(s, "succeeded"), n = num_or_nan(s, "pairs");
    t.rows.push_back({method_name(a), method_name(d), html::number(ok, 0), html::number(n, 0),
                      n > 0 ? pct(ok / n) : html::number(kNaN)});
  }
  return t;
}

inline std::string image_name(const json& im) {
  return str_or(im, "name", im.at("path").get<std::string>());
}

/// Image `k` of gMAD pair `p` (the `index`-th): the file embedded, its label and both models' scores.
inline html::Figure gmad_figure(const Study& s, const json& p, size_t index, size_t k) {
  const json& im = p.at("images")[k];
  const std::filesystem::path file = s.base_dir / im.at("path").get<std::string>();
  std::string bytes;
  try {
    bytes = html::read_bytes(file, "gMAD image");
  } catch (const std::exception& e) {
    fail(fmt::format("gmad.pairs[{}].images[{}].path", index, k), e.what());
  }
  html::Figure f;
  f.src = "data:" + html::mime_type(file) + ";base64," + html::base64(bytes);
  f.alt = image_name(im);
  if (const auto size = html::png_size(bytes)) f.width = size->first, f.height = size->second;
  const json& sc = im.at("scores");
  const bool label_prefers = to_int(num_or_nan(p, "label_prefers")) == static_cast<int>(k);
  f.caption_html =
      fmt::format("<b>{}</b> {}<br>{}{}<br>true label (SSIM) <b>{}</b>{}<br>baseline {} · OHEM {}",
                  k == 0 ? "A" : "B", html::escape(f.alt), html::escape(str_or(im, "type", "")),
                  f.width > 0 ? fmt::format(" · {}×{} px", f.width, f.height) : std::string(),
                  html::number(num_or_nan(im, "label")), label_prefers ? " ▲" : "",
                  html::number(num_or_nan(sc, "baseline")), html::number(num_or_nan(sc, "ohem")));
  if (to_int(num_or_nan(p, "attacker_prefers")) == static_cast<int>(k)) {
    f.caption_html += fmt::format("<br><i>{} rates this one higher</i>",
                                  html::escape(method_name(p.at("attacker").get<std::string>())));
  }
  return f;
}

/// The `index`-th gMAD pair: who attacks, the level, the verdict, both images side by side.
inline std::string gmad_pair_html(const Study& s, const json& p, size_t index) {
  const std::string a = p.at("attacker"), d = p.at("defender");
  const bool ok = p.at("attack_succeeded").get<bool>();
  return fmt::format(
             "<h3>{} attacks, {} defends · level {} ({} score ≈ {}) · <span class=\"{}\">attack "
             "{}</span></h3>\n",
             html::escape(method_name(a)), html::escape(method_name(d)),
             html::number(num_or_nan(p, "level"), 0), html::escape(method_name(d)),
             html::number(num_or_nan(p, "defender_level_score")), ok ? "verdict-yes" : "verdict-no",
             ok ? "succeeded" : "failed") +
         html::figure_pair({gmad_figure(s, p, index, 0), gmad_figure(s, p, index, 1)}, 192);
}

/// Each gMAD pair as a row of text (report.md).
inline html::Table gmad_pairs_table(const json& gmad) {
  html::Table t;
  t.caption =
      "Each gMAD pair: images A and B, their label (SSIM) and both models' scores; the attack succeeds when "
      "the label prefers the image the attacker prefers.";
  t.header = {"attacker", "level", "A", "A: label / baseline / OHEM", "B", "B: label / baseline / OHEM",
              "attack"};
  t.numeric = {false, true, false, true, false, true, false};
  for (const auto& p : gmad.at("pairs")) {
    std::vector<std::string> row = {method_name(p.at("attacker").get<std::string>()),
                                    html::number(num_or_nan(p, "level"), 0)};
    for (const auto& im : p.at("images")) {
      row.push_back(image_name(im));
      row.push_back(fmt::format("{} / {} / {}", html::number(num_or_nan(im, "label")),
                                html::number(num_or_nan(im.at("scores"), "baseline")),
                                html::number(num_or_nan(im.at("scores"), "ohem"))));
    }
    row.push_back(p.at("attack_succeeded").get<bool>() ? "succeeded" : "failed");
    t.rows.push_back(row);
  }
  return t;
}

inline Section gmad_section(const Study& s) {
  const json& gmad = s.results.at("gmad");
  const html::Table summary = gmad_table(gmad);
  std::string out = fmt::format(
      "<h2>4. gMAD between the two models</h2>\n<p class=\"note\">Held-out images of seed {}. In each "
      "pair the defender rates both images alike and the attacker rates them as far apart as possible; "
      "▲ marks the image with the higher true label. Images at native size or an integer multiple; click "
      "one to enlarge it, click again to close.</p>\n",
      html::number(num_or_nan(gmad, "seed"), 0));
  out += html::table_html(summary) + "<div id=\"gmad-pairs\">\n";
  size_t index = 0;
  for (const auto& p : gmad.at("pairs")) out += gmad_pair_html(s, p, index++);
  if (gmad.at("pairs").empty()) out += "<p class=\"note\">No gMAD pairs in this run.</p>\n";
  out += "</div>\n";
  return {out, "## gMAD\n\n" + html::table_markdown(summary) + html::table_markdown(gmad_pairs_table(gmad))};
}

// --- the plain-words summary, from the numbers ---

/// The overall comparison, the baseline's level, the reference, and the types whose interval excludes 0.
inline std::vector<std::string> comparison_findings(const Study& s) {
  std::vector<std::string> says;
  const json* overall = s.comparison("overall", "srcc");
  if (!overall) return says;
  const double d = num_or_nan(*overall, "diff_mean"), lo = num_or_nan(*overall, "ci_low"),
               hi = num_or_nan(*overall, "ci_high");
  const std::string base =
      fmt::format("Overall SRCC: baseline {}, OHEM {} (Δ {}, {} [{}, {}]; OHEM higher in {} of {} seeds).",
                  html::number(num_or_nan(*overall, "baseline_mean")),
                  html::number(num_or_nan(*overall, "ohem_mean")), signed_num(d), s.ci_name, signed_num(lo),
                  signed_num(hi), html::number(num_or_nan(*overall, "wins"), 0), s.seeds);
  if (!s.has_interval(*overall)) {
    says.push_back(base + " No interval (fewer than 2 seeds): no conclusion about a difference.");
  } else if (lo > 0) {
    says.push_back(
        base + " The interval excludes 0: on this data OHEM's held-out SRCC is higher than the baseline's.");
  } else if (hi < 0) {
    says.push_back(
        base + " The interval excludes 0: on this data OHEM's held-out SRCC is lower than the baseline's.");
  } else {
    says.push_back(base +
                   " The interval includes 0: no evidence of a difference between the methods overall.");
  }
  const double bm = num_or_nan(*overall, "baseline_mean");
  if (std::isfinite(bm)) {
    says.push_back(bm >= 0.8
                       ? fmt::format("The baseline reaches SRCC {} ≥ 0.8 on held-out content, so the "
                                     "comparison is between competent models.",
                                     html::number(bm))
                       : fmt::format("The baseline reaches only SRCC {} (< 0.8) on held-out content: both "
                                     "models are weak, which limits what the comparison can show.",
                                     html::number(bm)));
  }
  const double lvl = s.reference_metric("overall", "srcc");
  if (std::isfinite(lvl)) {
    says.push_back(fmt::format(
        "Reference: a predictor that knew each test image's distortion type and level, and nothing about "
        "its content, would reach SRCC {} overall (it scores an image with the mean training label of its "
        "type and level). A model below it has not learnt to recognise the distortions.",
        html::number(lvl)));
  }
  if (!s.has_interval(*overall)) return says;
  std::vector<std::string> better, worse;
  for (const auto& t : s.types) {
    const json* c = s.comparison(t, "srcc");
    if (!c || !s.has_interval(*c)) continue;
    if (num_or_nan(*c, "ci_low") > 0) better.push_back(t);
    if (num_or_nan(*c, "ci_high") < 0) worse.push_back(t);
  }
  says.push_back(fmt::format(
      "Per distortion type ({} types, no correction for multiple comparisons): the SRCC interval excludes "
      "0 in favour of OHEM for {}, in favour of the baseline for {}; for the others it includes 0.",
      s.types.size(), better.empty() ? "none" : comma_list(better),
      worse.empty() ? "none" : comma_list(worse)));
  return says;
}

/// Each variant's weight on the rare types, and whether magnitude pruning beats the random mask there.
inline void mechanism_findings(const Mechanism& m, std::vector<std::string>& says,
                               std::vector<std::string>& not_says) {
  for (const auto& t : m.tails) {
    if (t.train > 0) {
      says.push_back(fmt::format(
          "{}: the rare types (each under {} of the training set) make up {} of the training set but {} of "
          "the {} hardest images (×{}); most enriched type: {} (×{}); SRCC(hardness, own error) = {}.",
          t.label, pct(m.rare), pct(t.train), pct(t.hardest), pct(m.top),
          html::number(t.hardest / t.train, 2), t.max_type.empty() ? "–" : t.max_type,
          html::number(t.max_enrichment, 2), html::number(t.herr)));
    }
  }
  const auto& tails = m.tails;
  if (tails.size() < 2 || !(tails[0].train > 0) || !(tails[1].train > 0)) return;
  const double magnitude = tails[0].hardest / tails[0].train, random = tails[1].hardest / tails[1].train;
  says.push_back(
      magnitude > random
          ? fmt::format("The magnitude-pruned twin concentrates on the rare types more than the "
                        "random-mask control (×{} vs ×{}).",
                        html::number(magnitude, 2), html::number(random, 2))
          : fmt::format("The random-mask control concentrates on the rare types at least as much as "
                        "the magnitude-pruned twin (×{} vs ×{}): this does not support magnitude "
                        "pruning as what finds the long tail.",
                        html::number(random, 2), html::number(magnitude, 2)));
  not_says.push_back(
      "The enrichment figures carry no interval (one number per variant, averaged over its seeds); small "
      "differences between variants may be noise.");
}

/// What the study cannot say whatever its numbers: few seeds, synthetic data, one setting, few gMAD pairs.
inline std::vector<std::string> caveats(const Study& s) {
  std::vector<std::string> out;
  if (s.seeds < 5)
    out.push_back(
        fmt::format("Only {} seed(s): bootstrap intervals over so few seeds are unreliable; read the numbers "
                    "as a smoke test.",
                    s.seeds));
  out.push_back(
      "All images are synthetic distortions of a few dozen photographs, labelled by SSIM, not by people: the "
      "results say nothing directly about human opinion scores or authentic distortions.");
  out.push_back(
      "One backbone, one training recipe and one data mix: a difference (or its absence) may not carry over "
      "to other settings.");
  if (!s.results.at("gmad").at("pairs").empty())
    out.push_back(
        "gMAD counts are small (a handful of pairs per direction): they illustrate failures, they do not "
        "rank the models.");
  return out;
}

/// "What the numbers support" and "what they do not", from the comparison, the mechanism and gMAD.
inline Section summary_section(const Study& s, const Mechanism& mechanism) {
  std::vector<std::string> says = comparison_findings(s), not_says;
  mechanism_findings(mechanism, says, not_says);
  for (const auto& [a, r] : gmad_rates(s.results.at("gmad"))) {
    if (r.second > 0) {
      says.push_back(fmt::format("gMAD: {}'s attacks succeed in {} of {} pairs.", method_name(a),
                                 html::number(r.first, 0), html::number(r.second, 0)));
    }
  }
  for (auto& c : caveats(s)) not_says.push_back(std::move(c));
  return {"<section class=\"summary\" id=\"summary\"><h3>What the numbers support</h3>\n" +
              bullets(says, false) + "<h3>What they do not</h3>\n" + bullets(not_says, false) +
              "</section>\n",
          "## What the numbers support\n\n" + bullets(says, true) + "## What they do not\n\n" +
              bullets(not_says, true)};
}

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

/// The report's sections, in page order (a new section is one more entry).
inline std::vector<Section> sections(const json& results, const std::filesystem::path& base_dir) {
  const Study study(results, base_dir);
  const Mechanism mechanism = mechanism_section(study);  // the summary, above it, reads its tails
  return {title_section(study),      summary_section(study, mechanism),
          comparison_section(study), curves_section(study),
          mechanism.section,         gmad_section(study),
          run_section(study)};
}

// --- study v2 (schema "ohem-study/2", `study --design v2`; docs/study.md "Study v2") ---

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

/// A paragraph in HTML (`text` escaped, `bold` first) or in Markdown.
inline std::string paragraph(const std::string& bold, const std::string& text, bool md,
                             const std::string& id = {}) {
  if (md)
    return (bold.empty() ? "" : "**" + html::markdown_escape(bold) + "** ") + html::markdown_escape(text) +
           "\n\n";
  return "<p" + (id.empty() ? std::string() : " id=\"" + html::escape(id) + "\"") + ">" +
         (bold.empty() ? "" : "<b>" + html::escape(bold) + "</b> ") + html::escape(text) + "</p>\n";
}

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

/// Study v2's report sections, in page order: the registered endpoints first.
inline std::vector<Section> v2_sections(const json& results) {
  return {v2_title_section(results),     v2_endpoints_section(results), v2_per_type_section(results),
          v2_mechanism_section(results), v2_seeds_section(results),     v2_run_section(results)};
}

}  // namespace report_detail

/// Renders the report of `results` (validated first); image paths in it are relative to `base_dir`
/// (the directory of results.json). Throws std::runtime_error on invalid input or an unreadable image.
inline Report render_report(const nlohmann::json& results, const std::filesystem::path& base_dir) {
  // No `using namespace report_detail` here: the study's own ohem_study::Mechanism would clash.
  validate_results(results);
  std::string body;
  Report rep;
  if (results.at("schema") == "ohem-study/2") {  // study v2: its own sections, no charts
    for (const auto& s : report_detail::v2_sections(results)) body += s.html, rep.markdown += s.markdown;
    body +=
        "<p class=\"note\">Generated by study_report from results.json (schema ohem-study/2). See "
        "docs/study.md, \"Study v2\", for how each number is computed and the rules that read them.</p>\n";
    rep.html = ohem_examples::html::page("OHEM study v2 report", body);
    return rep;
  }
  for (const auto& s : report_detail::sections(results, base_dir)) body += s.html, rep.markdown += s.markdown;
  body +=
      "<p class=\"note\">Generated by study_report from results.json (schema ohem-study/1). See "
      "docs/study.md for how each number is computed.</p>\n";
  rep.html = ohem_examples::html::page("OHEM study report", body, ohem_examples::html::chart_style());
  return rep;
}

/// Writes `dir`/report.html and `dir`/report.md for `results` (see render_report); image paths in
/// `results` are relative to `images_dir` (default: `dir`, where the study writes results.json).
/// Both files are written to temporaries (`<name>.tmp`, checked writes) and renamed only when both are
/// complete: the report appears whole or not at all. A failed write (a full disk) removes the
/// temporaries and throws std::runtime_error naming the file, the reason and the bytes needed and
/// available; so does any other error. (No LibTorch here, hence not examples/toolkit/files.hpp.)
inline void write_report(const nlohmann::json& results, const std::filesystem::path& dir,
                         const std::filesystem::path& images_dir = {}) {
  namespace fs = std::filesystem;
  const Report rep = render_report(results, images_dir.empty() ? dir : images_dir);
  fs::create_directories(dir);
  const std::pair<std::string, const std::string*> files[] = {{"report.html", &rep.html},
                                                              {"report.md", &rep.markdown}};
  std::vector<fs::path> temps;
  auto remove_temps = [&] {
    for (const auto& t : temps) {
      std::error_code ignored;
      fs::remove(t, ignored);
    }
  };
  for (const auto& [name, text] : files) {
    const fs::path target = dir / name;
    temps.push_back(dir / (name + ".tmp"));
    errno = 0;
    std::FILE* f = std::fopen(temps.back().string().c_str(), "wb");
    bool ok =
        f != nullptr && std::fwrite(text->data(), 1, text->size(), f) == text->size() && std::fflush(f) == 0;
    int err = errno;
    if (f != nullptr && std::fclose(f) != 0 && ok) {
      ok = false;
      err = errno;
    }
    if (!ok) {
      remove_temps();
      std::error_code ec;
      const fs::space_info sp = fs::space(dir, ec);
      throw std::runtime_error(
          "cannot write " + target.string() + ": " + (err ? std::strerror(err) : "write error") + " (" +
          std::to_string(text->size()) + " bytes needed" +
          (ec ? std::string() : ", " + std::to_string(sp.available) + " available") + ")");
    }
  }
  for (size_t i = 0; i < temps.size(); ++i) {
    std::error_code ec;
    fs::rename(temps[i], dir / files[i].first, ec);
    if (ec) {
      std::error_code ignored;
      for (size_t k = i; k < temps.size(); ++k) fs::remove(temps[k], ignored);
      throw std::runtime_error("cannot rename " + temps[i].string() + " to " +
                               (dir / files[i].first).string() + ": " + ec.message());
    }
  }
}

}  // namespace ohem_study
