#pragma once
/// \file
/// The v1 report's mechanism: which training images the twin finds hard (enrichment per type among the
/// hardest, per variant) and how hardness tracks an image's own error.
#include "study_view.hpp"

#include <toolkit/html.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <string>
#include <vector>

namespace ohem_study {

namespace report_detail {

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

}  // namespace report_detail

}  // namespace ohem_study
