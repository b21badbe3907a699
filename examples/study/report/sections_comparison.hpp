#pragma once
/// \file
/// The v1 report's title, its comparison (SRCC per group, the paired difference OHEM − baseline with its
/// interval, the table) and its training curves.
#include "study_view.hpp"

#include <toolkit/html.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <map>
#include <string>
#include <vector>

namespace ohem_study {

namespace report_detail {

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

}  // namespace report_detail

}  // namespace ohem_study
