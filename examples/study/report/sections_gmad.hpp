#pragma once
/// \file
/// The v1 report's gMAD section: the success rates per direction and each pair's two images, embedded.
#include "study_view.hpp"

#include <toolkit/html.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstddef>
#include <map>
#include <string>
#include <utility>

namespace ohem_study {

namespace report_detail {

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

}  // namespace report_detail

}  // namespace ohem_study
