#pragma once
/// \file
/// The study report (issue 14): reads the `study` program's results.json (schema "ohem-study/1", see
/// docs/study.md) and writes report.html (self-contained: inline SVG charts, the gMAD images as data:
/// URIs, a little inline CSS, no JavaScript, no network) and report.md (the same tables in Markdown).
/// Needs only nlohmann/json, fmt and the standard library (no LibTorch).
#include "validate.hpp"

#include <common/html.hpp>

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
#include <vector>

namespace ohem_study {

namespace report_detail {

namespace html = ohem_examples::html;

// The report reads the fields the check requires with `at()`; the optional ones (and numbers, which
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

}  // namespace report_detail

/// The report as text: `html` (the whole self-contained page) and `markdown` (the tables).
struct Report {
  std::string html, markdown;
};

/// Renders the report of `results` (validated first); image paths in it are relative to `base_dir`
/// (the directory of results.json). Throws std::runtime_error on invalid input or an unreadable image.
inline Report render_report(const nlohmann::json& results, const std::filesystem::path& base_dir) {
  using namespace report_detail;
  validate_results(results);
  const json& ds = results.at("dataset");
  std::vector<std::string> types;
  for (const auto& t : ds.at("types")) types.push_back(t.get<std::string>());
  const auto& colors = html::palette();
  const std::string c_base = colors[0], c_ohem = colors[1];

  // --- the comparison: rows by (group, metric) ---
  std::map<std::pair<std::string, std::string>, const json*> cmp;
  for (const auto& c : results.at("comparison")) cmp[{c.at("group").get<std::string>(), c.at("metric")}] = &c;
  std::vector<std::string> groups = {"overall"};
  groups.insert(groups.end(), types.begin(), types.end());
  auto get = [&](const std::string& g, const std::string& m) -> const json* {
    const auto it = cmp.find({g, m});
    return it == cmp.end() ? nullptr : it->second;
  };
  // The type-and-level reference (optional): its metric `m` of group `g`, NaN where absent.
  const json* reference = results.contains("reference") ? &results.at("reference") : nullptr;
  auto ref_metric = [&](const std::string& g, const std::string& m) {
    if (!reference || !reference->contains("metrics")) return kNaN;
    const json& metrics = reference->at("metrics");
    return metrics.contains(g) ? num_or_nan(metrics.at(g), m) : kNaN;
  };
  // An interval means something only from 2 seeds on (one seed: the "interval" is the one difference).
  auto has_interval = [&](const json& c) {
    const double n = num_or_nan(c, "seeds");
    return std::isfinite(num_or_nan(c, "ci_low")) && std::isfinite(num_or_nan(c, "ci_high")) &&
           !(std::isfinite(n) && n < 2) && !(!std::isfinite(n) && results.at("runs").size() < 4);
  };
  const json* overall = get("overall", "srcc");
  int seeds = overall ? to_int(num_or_nan(*overall, "seeds")) : 0;
  if (seeds <= 0) {  // no count in the comparison: the distinct seeds of the runs
    std::set<double> distinct;
    for (const auto& r : results.at("runs")) distinct.insert(num_or_nan(r, "seed"));
    seeds = static_cast<int>(distinct.size());
  }
  const double level =
      overall && std::isfinite(num_or_nan(*overall, "ci_level")) ? num_or_nan(*overall, "ci_level") : 0.95;
  const std::string ci_name = fmt::format("{:.0f}% CI", 100 * level);

  html::BarChart srcc;
  srcc.id = "chart-srcc";
  srcc.title = "SRCC on held-out content, per distortion type (mean over seeds, bars: ± 1 s.d.)";
  srcc.y_label = "SRCC";
  srcc.groups = groups;
  srcc.y_max = 1;
  html::BarChart diff;
  diff.title = fmt::format("Paired difference OHEM − baseline in SRCC ({}, bootstrap over seeds)", ci_name);
  diff.y_label = "Δ SRCC";
  diff.groups = groups;
  diff.reference = 0;
  html::BarSeries sb{"baseline", c_base, {}, {}, {}}, so{"OHEM", c_ohem, {}, {}, {}},
      sd{"OHEM − baseline", colors[2], {}, {}, {}};
  double lowest = 1;
  for (const auto& g : groups) {
    const json* c = get(g, "srcc");
    const double bm = c ? num_or_nan(*c, "baseline_mean") : kNaN,
                 bs = c ? num_or_nan(*c, "baseline_std") : kNaN;
    const double om = c ? num_or_nan(*c, "ohem_mean") : kNaN, os = c ? num_or_nan(*c, "ohem_std") : kNaN;
    sb.values.push_back(bm), sb.low.push_back(bm - bs), sb.high.push_back(bm + bs);
    so.values.push_back(om), so.low.push_back(om - os), so.high.push_back(om + os);
    sd.values.push_back(c ? num_or_nan(*c, "diff_mean") : kNaN);
    sd.low.push_back(c ? num_or_nan(*c, "ci_low") : kNaN),
        sd.high.push_back(c ? num_or_nan(*c, "ci_high") : kNaN);
    for (double v : {bm - bs, om - os}) {
      if (std::isfinite(v)) lowest = std::min(lowest, v);
    }
  }
  srcc.series = {sb, so};
  if (reference) {
    html::BarSeries sr{"type+level only (reference)", "#9a9a9a", {}, {}, {}};
    for (const auto& g : groups) {
      const double v = ref_metric(g, "srcc");
      sr.values.push_back(v), sr.low.push_back(kNaN), sr.high.push_back(kNaN);
      if (std::isfinite(v)) lowest = std::min(lowest, v);
    }
    srcc.series.push_back(sr);
  }
  srcc.y_min = lowest >= 0.5 ? 0.5 : lowest >= 0 ? 0 : -1;
  diff.series = {sd};

  html::Table t_cmp;
  t_cmp.id = "table-comparison";
  t_cmp.caption = fmt::format(
      "Baseline vs OHEM per distortion type: mean ± s.d. over {} seeds; Δ = mean paired difference OHEM − "
      "baseline with its {} (bootstrap over seeds); wins = seeds where OHEM is higher.",
      seeds, ci_name);
  t_cmp.header = {"group", "metric", "baseline", "OHEM", "Δ", ci_name, "wins", "reading"};
  t_cmp.numeric = {false, false, true, true, true, true, true, false};
  if (reference) {
    t_cmp.caption +=
        " Type+level only: the reference predictor that knows each image's distortion type and "
        "level, not its content (it scores an image with the mean training label of its type and "
        "level).";
    t_cmp.header.insert(t_cmp.header.begin() + 4, "type+level only");
    t_cmp.numeric.insert(t_cmp.numeric.begin() + 4, true);
  }
  for (const auto& g : groups) {
    for (const std::string m : {"srcc", "plcc"}) {
      const json* c = get(g, m);
      if (!c) continue;
      const double lo = num_or_nan(*c, "ci_low"), hi = num_or_nan(*c, "ci_high");
      const std::string reading = !has_interval(*c) ? "no interval (fewer than 2 seeds)"
                                  : lo > 0          ? "OHEM higher"
                                  : hi < 0          ? "baseline higher"
                                                    : "no evidence of a difference";
      t_cmp.rows.push_back(
          {g, m == "srcc" ? "SRCC" : "PLCC",
           html::number(num_or_nan(*c, "baseline_mean")) + " ± " +
               html::number(num_or_nan(*c, "baseline_std")),
           html::number(num_or_nan(*c, "ohem_mean")) + " ± " + html::number(num_or_nan(*c, "ohem_std")),
           signed_num(num_or_nan(*c, "diff_mean")), "[" + signed_num(lo) + ", " + signed_num(hi) + "]",
           html::number(num_or_nan(*c, "wins"), 0) + "/" + html::number(num_or_nan(*c, "seeds"), 0),
           reading});
      if (reference) t_cmp.rows.back().insert(t_cmp.rows.back().begin() + 4, html::number(ref_metric(g, m)));
    }
  }

  // --- training curves: per method, the mean over seeds of each quantity per epoch ---
  struct Curve {
    std::map<double, std::vector<double>> task, twin, consistency, hardness, test;
  };
  std::map<std::string, Curve> curves;
  int stage1_epochs = -1;
  if (results.contains("config") && results["config"].is_object()) {
    const double e1 = num_or_nan(results["config"], "epochs1");
    if (std::isfinite(e1)) stage1_epochs = to_int(e1);
  }
  for (const auto& r : results.at("runs")) {
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
  auto series = [&](const std::string& method, std::map<double, std::vector<double>> Curve::*q,
                    const std::string& name, const std::string& color, bool dashed = false) {
    html::LineSeries s{name, color, {}, {}, dashed};
    const auto it = curves.find(method);
    if (it == curves.end()) return s;
    for (const auto& [x, v] : it->second.*q) s.x.push_back(x), s.y.push_back(finite_mean(v));
    return s;
  };
  auto panel = [&](const std::string& title, const std::string& y_label, std::vector<html::LineSeries> s) {
    html::LineChart c;
    c.title = title, c.x_label = "epoch", c.y_label = y_label, c.series = std::move(s);
    if (stage1_epochs > 0) c.x_divider = stage1_epochs + 0.5, c.divider_label = "stage 2";
    return html::line_chart(c);
  };
  std::string curves_html = "<div class=\"charts\" id=\"chart-curves\">\n";
  curves_html += panel("Task loss per branch", "loss",
                       {series("baseline", &Curve::task, "baseline", c_base),
                        series("ohem", &Curve::task, "OHEM main", c_ohem),
                        series("ohem", &Curve::twin, "OHEM twin", colors[3], true)});
  curves_html += panel(
      "Test SRCC", "SRCC",
      {series("baseline", &Curve::test, "baseline", c_base), series("ohem", &Curve::test, "OHEM", c_ohem)});
  curves_html +=
      panel("Consistency loss (OHEM)", "consistency", {series("ohem", &Curve::consistency, "OHEM", c_ohem)});
  curves_html += panel("Mean hardness (twin disagreement, OHEM)", "hardness",
                       {series("ohem", &Curve::hardness, "OHEM", c_ohem)});
  curves_html += "</div>\n";

  // --- the mechanism ---
  const json& mech = results.at("mechanism");
  const double top = num_or_nan(mech, "top_fraction");
  html::BarChart enr;
  enr.id = "chart-enrichment";
  enr.title = fmt::format(
      "Enrichment per type among the {} hardest training images (1 = as in the training set)", pct(top));
  enr.y_label = "hardest share / training share";
  enr.groups = types;
  enr.reference = 1;
  enr.digits = 2;
  html::Table t_mech;
  t_mech.id = "table-mechanism";
  t_mech.caption = fmt::format(
      "Per variant and distortion type: share of the training set, share among the {} hardest training "
      "images "
      "(hardness = twin disagreement averaged over training; shares averaged over the variant's seeds), "
      "their ratio, mean hardness.",
      pct(top));
  t_mech.header = {"variant", "type", "training share", "hardest share", "enrichment", "mean hardness"};
  t_mech.numeric = {false, false, true, true, true, true};
  html::Table t_herr;
  t_herr.id = "table-hardness-error";
  t_herr.caption =
      "Spearman correlation between an image's hardness and its own absolute error under the final model "
      "(mean over seeds, and each seed).";
  t_herr.header = {"variant", "SRCC(hardness, error)", "per seed"};
  t_herr.numeric = {false, true, true};
  struct Tail {
    std::string label;
    double train = 0, hardest = 0, max_enrichment = kNaN;
    std::string max_type;
    double herr = kNaN;
  };
  std::vector<Tail> tails;
  const double rare = 1.0 / static_cast<double>(types.size());
  size_t vi = 0;
  for (const auto& v : mech.at("variants")) {
    const std::string label = str_or(v, "label", v.at("name").get<std::string>());
    html::BarSeries s{label, colors[(vi == 0 ? 1 : vi == 1 ? 7 : vi + 1) % colors.size()], {}, {}, {}};
    std::map<std::string, const json*> by;
    for (const auto& b : v.at("by_type")) by[b.at("type").get<std::string>()] = &b;
    Tail tail;
    tail.label = label;
    for (const auto& t : types) {
      const auto it = by.find(t);
      const json* b = it == by.end() ? nullptr : it->second;
      const double e = b ? num_or_nan(*b, "enrichment") : kNaN;
      s.values.push_back(e);
      if (!b) continue;
      const double ts = num_or_nan(*b, "train_share"), hs = num_or_nan(*b, "hardest_share");
      t_mech.rows.push_back(
          {label, t, pct(ts), pct(hs), html::number(e, 2), html::number(num_or_nan(*b, "mean_hardness"), 4)});
      if (std::isfinite(ts) && ts < rare && std::isfinite(hs)) tail.train += ts, tail.hardest += hs;
      if (std::isfinite(e) && !(e <= tail.max_enrichment)) tail.max_enrichment = e, tail.max_type = t;
    }
    enr.series.push_back(s);
    const json& he = v.at("hardness_error_srcc");
    tail.herr = num_or_nan(he, "mean");
    std::string per;
    if (he.contains("per_seed") && he["per_seed"].is_array()) {
      for (const auto& x : he["per_seed"])
        per +=
            (per.empty() ? "" : ", ") + (x.is_number() ? html::number(x.get<double>()) : html::number(kNaN));
    }
    t_herr.rows.push_back({label, html::number(tail.herr), per});
    tails.push_back(tail);
    ++vi;
  }

  // --- gMAD ---
  const json& gmad = results.at("gmad");
  html::Table t_gmad;
  t_gmad.id = "table-gmad";
  t_gmad.caption =
      "gMAD between the two final models on held-out images: an attack succeeds when the image the attacker "
      "rates higher is also the one with the higher true (SSIM) label.";
  t_gmad.header = {"attacker", "defender", "attacks succeeded", "pairs", "success rate"};
  t_gmad.numeric = {false, false, true, true, true};
  std::map<std::string, std::pair<double, double>> gmad_rate;
  for (const auto& s : gmad.at("summary")) {
    const std::string a = s.at("attacker"), d = s.at("defender");
    const double ok = num_or_nan(s, "succeeded"), n = num_or_nan(s, "pairs");
    gmad_rate[a] = {ok, n};
    t_gmad.rows.push_back({method_name(a), method_name(d), html::number(ok, 0), html::number(n, 0),
                           n > 0 ? pct(ok / n) : html::number(kNaN)});
  }
  std::string pairs_html = "<div id=\"gmad-pairs\">\n";
  html::Table t_pairs;  // the pairs as text (report.md)
  t_pairs.caption =
      "Each gMAD pair: images A and B, their label (SSIM) and both models' scores; the attack succeeds when "
      "the label prefers the image the attacker prefers.";
  t_pairs.header = {"attacker", "level", "A", "A: label / baseline / OHEM", "B", "B: label / baseline / OHEM",
                    "attack"};
  t_pairs.numeric = {false, true, false, true, false, true, false};
  size_t pi = 0;
  for (const auto& p : gmad.at("pairs")) {
    const std::string a = p.at("attacker"), d = p.at("defender");
    const bool ok = p.at("attack_succeeded").get<bool>();
    pairs_html += fmt::format(
        "<h3>{} attacks, {} defends · level {} ({} score ≈ {}) · <span class=\"{}\">attack "
        "{}</span></h3>\n",
        html::escape(method_name(a)), html::escape(method_name(d)), html::number(num_or_nan(p, "level"), 0),
        html::escape(method_name(d)), html::number(num_or_nan(p, "defender_level_score")),
        ok ? "verdict-yes" : "verdict-no", ok ? "succeeded" : "failed");
    const int ap = to_int(num_or_nan(p, "attacker_prefers")), lp = to_int(num_or_nan(p, "label_prefers"));
    std::vector<html::Figure> figs;
    for (size_t k = 0; k < 2; ++k) {
      const json& im = p.at("images")[k];
      const std::filesystem::path file = base_dir / im.at("path").get<std::string>();
      std::string bytes;
      try {
        bytes = html::read_bytes(file, "gMAD image");
      } catch (const std::exception& e) {
        fail(fmt::format("gmad.pairs[{}].images[{}].path", pi, k), e.what());
      }
      html::Figure f;
      f.src = "data:" + html::mime_type(file) + ";base64," + html::base64(bytes);
      f.alt = str_or(im, "name", im.at("path").get<std::string>());
      if (const auto size = html::png_size(bytes)) f.width = size->first, f.height = size->second;
      const json& sc = im.at("scores");
      f.caption_html =
          fmt::format("<b>{}</b> {}<br>{}{}<br>true label (SSIM) <b>{}</b>{}<br>baseline {} · OHEM {}",
                      k == 0 ? "A" : "B", html::escape(f.alt), html::escape(str_or(im, "type", "")),
                      f.width > 0 ? fmt::format(" · {}×{} px", f.width, f.height) : std::string(),
                      html::number(num_or_nan(im, "label")), lp == static_cast<int>(k) ? " ▲" : "",
                      html::number(num_or_nan(sc, "baseline")), html::number(num_or_nan(sc, "ohem")));
      if (ap == static_cast<int>(k))
        f.caption_html += fmt::format("<br><i>{} rates this one higher</i>", html::escape(method_name(a)));
      figs.push_back(f);
    }
    pairs_html += html::figure_pair(figs, 192);
    std::vector<std::string> row = {method_name(a), html::number(num_or_nan(p, "level"), 0)};
    for (const auto& im : p.at("images")) {
      row.push_back(str_or(im, "name", im.at("path").get<std::string>()));
      row.push_back(fmt::format("{} / {} / {}", html::number(num_or_nan(im, "label")),
                                html::number(num_or_nan(im.at("scores"), "baseline")),
                                html::number(num_or_nan(im.at("scores"), "ohem"))));
    }
    row.push_back(ok ? "succeeded" : "failed");
    t_pairs.rows.push_back(row);
    ++pi;
  }
  if (gmad.at("pairs").empty()) pairs_html += "<p class=\"note\">No gMAD pairs in this run.</p>\n";
  pairs_html += "</div>\n";

  // --- the plain-words summary, from the numbers ---
  std::vector<std::string> says, not_says;
  if (overall) {
    const double d = num_or_nan(*overall, "diff_mean"), lo = num_or_nan(*overall, "ci_low"),
                 hi = num_or_nan(*overall, "ci_high");
    const std::string base =
        fmt::format("Overall SRCC: baseline {}, OHEM {} (Δ {}, {} [{}, {}]; OHEM higher in {} of {} seeds).",
                    html::number(num_or_nan(*overall, "baseline_mean")),
                    html::number(num_or_nan(*overall, "ohem_mean")), signed_num(d), ci_name, signed_num(lo),
                    signed_num(hi), html::number(num_or_nan(*overall, "wins"), 0), seeds);
    if (!has_interval(*overall)) {
      says.push_back(base + " No interval (fewer than 2 seeds): no conclusion about a difference.");
    } else if (lo > 0) {
      says.push_back(
          base +
          " The interval excludes 0: on this data OHEM's held-out SRCC is higher than the baseline's.");
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
    const double lvl = ref_metric("overall", "srcc");
    if (std::isfinite(lvl)) {
      says.push_back(fmt::format(
          "Reference: a predictor that knew each test image's distortion type and level, and nothing about "
          "its content, would reach SRCC {} overall (it scores an image with the mean training label of its "
          "type and level). A model below it has not learnt to recognise the distortions.",
          html::number(lvl)));
    }
  }
  std::vector<std::string> better, worse;
  for (const auto& t : types) {
    const json* c = get(t, "srcc");
    if (!c) continue;
    if (!has_interval(*c)) continue;
    if (num_or_nan(*c, "ci_low") > 0) better.push_back(t);
    if (num_or_nan(*c, "ci_high") < 0) worse.push_back(t);
  }
  auto list = [](const std::vector<std::string>& v) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
    return s;
  };
  if (overall && has_interval(*overall)) {
    says.push_back(fmt::format(
        "Per distortion type ({} types, no correction for multiple comparisons): the SRCC interval excludes "
        "0 "
        "in favour of OHEM for {}, in favour of the baseline for {}; for the others it includes 0.",
        types.size(), better.empty() ? "none" : list(better), worse.empty() ? "none" : list(worse)));
  }
  for (const auto& t : tails) {
    if (t.train > 0) {
      says.push_back(fmt::format(
          "{}: the rare types (each under {} of the training set) make up {} of the training set but {} of "
          "the "
          "{} hardest images (×{}); most enriched type: {} (×{}); SRCC(hardness, own error) = {}.",
          t.label, pct(rare), pct(t.train), pct(t.hardest), pct(top), html::number(t.hardest / t.train, 2),
          t.max_type.empty() ? "–" : t.max_type, html::number(t.max_enrichment, 2), html::number(t.herr)));
    }
  }
  if (tails.size() >= 2 && tails[0].train > 0 && tails[1].train > 0) {
    const double m = tails[0].hardest / tails[0].train, r = tails[1].hardest / tails[1].train;
    says.push_back(
        m > r ? fmt::format("The magnitude-pruned twin concentrates on the rare types more than the "
                            "random-mask control (×{} vs ×{}).",
                            html::number(m, 2), html::number(r, 2))
              : fmt::format("The random-mask control concentrates on the rare types at least as much as "
                            "the magnitude-pruned twin (×{} vs ×{}): this does not support magnitude "
                            "pruning as what finds the long tail.",
                            html::number(r, 2), html::number(m, 2)));
    not_says.push_back(
        "The enrichment figures carry no interval (one number per variant, averaged over its seeds); small "
        "differences between "
        "variants may be noise.");
  }
  for (const auto& [a, r] : gmad_rate) {
    if (r.second > 0) {
      says.push_back(fmt::format("gMAD: {}'s attacks succeed in {} of {} pairs.", method_name(a),
                                 html::number(r.first, 0), html::number(r.second, 0)));
    }
  }
  if (seeds < 5)
    not_says.push_back(
        fmt::format("Only {} seed(s): bootstrap intervals over so few seeds are unreliable; read the numbers "
                    "as a smoke test.",
                    seeds));
  not_says.push_back(
      "All images are synthetic distortions of a few dozen photographs, labelled by SSIM, not by people: the "
      "results say nothing directly about human opinion scores or authentic distortions.");
  not_says.push_back(
      "One backbone, one training recipe and one data mix: a difference (or its absence) may not carry over "
      "to other settings.");
  if (!gmad.at("pairs").empty())
    not_says.push_back(
        "gMAD counts are small (a handful of pairs per direction): they illustrate failures, they do not "
        "rank the models.");

  auto bullets = [](const std::vector<std::string>& v, bool md) {
    std::string out = md ? "" : "<ul>\n";
    for (const auto& s : v)
      out += md ? "- " + html::markdown_escape(s) + "\n" : "<li>" + html::escape(s) + "</li>\n";
    return out + (md ? "\n" : "</ul>\n");
  };

  // --- run information ---
  html::Table t_run;
  t_run.caption = "The run.";
  t_run.header = {"item", "value"};
  const json& env = results.value("environment", json::object());
  const json& secs = results.value("seconds", json::object());
  t_run.rows.push_back({"created", str_or(results, "created", "–")});
  t_run.rows.push_back(
      {"mode", results.value("quick", false) ? "--quick (structure check, numbers meaningless)" : "full"});
  t_run.rows.push_back(
      {"LibTorch / compiler", str_or(env, "libtorch", "?") + " / " + str_or(env, "compiler", "?")});
  t_run.rows.push_back(
      {"threads", fmt::format("{} of {} hardware threads", html::number(num_or_nan(env, "threads"), 0),
                              html::number(num_or_nan(env, "hardware_threads"), 0))});
  t_run.rows.push_back({"time (s)", fmt::format("dataset {} · training {} · analysis {} · total {}",
                                                html::number(num_or_nan(secs, "dataset"), 0),
                                                html::number(num_or_nan(secs, "training"), 0),
                                                html::number(num_or_nan(secs, "analysis"), 0),
                                                html::number(num_or_nan(secs, "total"), 0))});
  t_run.rows.push_back({"photographs", fmt::format("{} ({} for training, {} held out)",
                                                   html::number(num_or_nan(ds, "photos"), 0),
                                                   html::number(num_or_nan(ds, "train_photos"), 0),
                                                   html::number(num_or_nan(ds, "test_photos"), 0))});
  t_run.rows.push_back({"images", fmt::format("{} patches of {} px, {} levels, {} distortion types",
                                              html::number(num_or_nan(ds, "images"), 0),
                                              html::number(num_or_nan(ds, "patch"), 0),
                                              html::number(num_or_nan(ds, "levels"), 0), types.size())});
  html::Table t_data;
  t_data.caption = "Images per distortion type (the training mix is long-tailed; the test set is balanced).";
  t_data.header = {"type", "training images", "test images"};
  t_data.numeric = {false, true, true};
  for (const auto& t : types) {
    t_data.rows.push_back({t, html::number(num_or_nan(ds.value("train_images", json::object()), t), 0),
                           html::number(num_or_nan(ds.value("test_images", json::object()), t), 0)});
  }
  html::Table t_cfg;
  t_cfg.caption = "Every option of the run.";
  t_cfg.header = {"option", "value"};
  if (results.contains("config") && results["config"].is_object()) {
    for (const auto& [k, v] : results["config"].items())
      t_cfg.rows.push_back({k, v.is_string() ? v.get<std::string>() : v.dump()});
  }

  // --- the page ---
  const bool quick = results.value("quick", false);
  std::string b;
  b += "<h1>OHEM study: baseline vs self-competitor OHEM</h1>\n";
  b += fmt::format(
      "<p class=\"meta\">{} seed(s) · {} distortion types · {} photographs · created {}{}</p>\n", seeds,
      types.size(), html::number(num_or_nan(ds, "photos"), 0), html::escape(str_or(results, "created", "?")),
      quick ? " · <b>--quick run: checks the report's structure, the numbers mean nothing</b>" : "");
  b += "<section class=\"summary\" id=\"summary\"><h3>What the numbers support</h3>\n" + bullets(says, false);
  b += "<h3>What they do not</h3>\n" + bullets(not_says, false) + "</section>\n";
  b += "<h2>1. Does OHEM help?</h2>\n" + html::bar_chart(srcc) + html::bar_chart(diff) +
       html::table_html(t_cmp);
  b += "<h2>2. Training curves</h2>\n<p class=\"note\">Mean over seeds per epoch. The twin's loss, the "
       "consistency "
       "term and the hardness exist for OHEM only.</p>\n" +
       curves_html;
  b +=
      "<h2>3. The mechanism: does the twin find the hard samples?</h2>\n<p class=\"note\">A bar above the "
      "dashed "
      "line: that type is over-represented among the hardest training images. Controls: a random mask at the "
      "same pruning ratio, and an ensemble of 4 magnitude-pruned twins.</p>\n" +
      html::bar_chart(enr) + html::table_html(t_mech) + html::table_html(t_herr);
  b +=
      fmt::format(
          "<h2>4. gMAD between the two models</h2>\n<p class=\"note\">Held-out images of seed {}. In each "
          "pair the defender rates both images alike and the attacker rates them as far apart as possible; "
          "▲ marks the image with the higher true label. Images at native size or an integer multiple; click "
          "one to enlarge it, click again to close.</p>\n",
          html::number(num_or_nan(gmad, "seed"), 0)) +
      html::table_html(t_gmad) + pairs_html;
  b += "<h2>5. The run</h2>\n" + html::table_html(t_run) + html::table_html(t_data) +
       "<details><summary>Configuration</summary>\n" + html::table_html(t_cfg) + "</details>\n";
  b += "<p class=\"note\">Generated by study_report from results.json (schema ohem-study/1). See "
       "docs/study.md for "
       "how each number is computed.</p>\n";

  Report rep;
  rep.html = html::page("OHEM study report", b, html::chart_style());
  std::string& md = rep.markdown;
  md += "# OHEM study: baseline vs self-competitor OHEM\n\n";
  md += fmt::format("{} seed(s), {} distortion types, {} photographs, created {}{}.\n\n", seeds, types.size(),
                    html::number(num_or_nan(ds, "photos"), 0),
                    html::markdown_escape(str_or(results, "created", "?")),
                    quick ? " (--quick run: the numbers mean nothing)" : "");
  md += "## What the numbers support\n\n" + bullets(says, true) + "## What they do not\n\n" +
        bullets(not_says, true);
  md += "## Comparison\n\n" + html::table_markdown(t_cmp);
  md += "## Mechanism\n\n" + html::table_markdown(t_mech) + html::table_markdown(t_herr);
  md += "## gMAD\n\n" + html::table_markdown(t_gmad) + html::table_markdown(t_pairs);
  md += "## The run\n\n" + html::table_markdown(t_run) + html::table_markdown(t_data);
  return rep;
}

/// Writes `dir`/report.html and `dir`/report.md for `results` (see render_report); image paths in
/// `results` are relative to `images_dir` (default: `dir`, where the study writes results.json).
/// Both files are written to temporaries (`<name>.tmp`, checked writes) and renamed only when both are
/// complete: the report appears whole or not at all. A failed write (a full disk) removes the
/// temporaries and throws std::runtime_error naming the file, the reason and the bytes needed and
/// available; so does any other error. (No LibTorch here, hence not examples/common/files.hpp.)
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
