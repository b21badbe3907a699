#pragma once
/// \file
/// Inline-SVG charts (their CSS: html_page.hpp's `chart_style`): `bar_chart` (grouped bars with error
/// bars), `line_chart` (lines with markers) and `dot_chart` (dot strips with means), coloured from
/// `palette`. Part of html.hpp.
#include "html_text.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace ohem_examples::html {

/// The colours of the charts, by role (colour-blind safe, after Tableau 10).
inline const std::vector<std::string>& palette() {
  static const std::vector<std::string> colors = {"#4c78a8", "#f58518", "#54a24b", "#b279a2",
                                                  "#e45756", "#72b7b2", "#9d755d", "#bab0ac"};
  return colors;
}

/// One series of a bar chart: a value per group, and optionally an interval [low, high] per group
/// (NaN: no bar / no interval).
struct BarSeries {
  std::string name, color;
  std::vector<double> values, low, high;
};

/// A grouped bar chart: for each group, one bar per series side by side, with error bars.
struct BarChart {
  std::string id, title, y_label;
  std::vector<std::string> groups;
  std::vector<BarSeries> series;
  double y_min = std::numeric_limits<double>::quiet_NaN();  ///< NaN: from the data (0 included)
  double y_max = std::numeric_limits<double>::quiet_NaN();
  double reference = std::numeric_limits<double>::quiet_NaN();  ///< a dashed horizontal line (e.g. 1)
  int width = 900, height = 320;
  int digits = 3;  ///< decimals in the tooltips
};

namespace detail {

/// "Nice" tick values covering [lo, hi] (about `n` of them).
inline std::vector<double> ticks(double& lo, double& hi, int n = 5, double min_step = 0) {
  if (!(hi > lo)) {
    lo -= 0.5;
    hi += 0.5;
  }
  const double raw = (hi - lo) / n, mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double r = raw / mag, step = std::max(min_step, (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag);
  lo = std::floor(lo / step + 1e-9) * step;
  hi = std::ceil(hi / step - 1e-9) * step;
  std::vector<double> t;
  for (double v = lo; v <= hi + step * 1e-6; v += step) t.push_back(std::abs(v) < step * 1e-9 ? 0 : v);
  return t;
}

inline std::string tick_label(double v, double step) {
  const int d = std::max(0, static_cast<int>(std::ceil(-std::log10(step) - 1e-9)));
  return fmt::format("{:.{}f}", v, d);
}

inline std::string legend(const std::vector<std::pair<std::string, std::string>>& items, double x, double y) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    out += fmt::format(
        "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"12\" height=\"12\" rx=\"2\" fill=\"{}\"/><text x=\"{:.1f}\" "
        "y=\"{:.1f}\">{}</text>",
        x, y - 10, items[i].second, x + 16, y, escape(items[i].first));
    x += 28 + 7.0 * static_cast<double>(items[i].first.size());
  }
  return out;
}

/// A chart's horizontal grid lines at `t` (the ticks of the y axis) with their labels, and the rotated
/// label of the y axis; `y` maps a value to its vertical position.
template <typename Y>
std::string y_axis(const std::vector<double>& t, double left, double pw, double top, double ph, const Y& y,
                   const std::string& label) {
  const double step = t.size() > 1 ? t[1] - t[0] : 1;
  std::string svg;
  for (double v : t) {
    svg += fmt::format(
        "<line class=\"grid\" x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\"/><text class=\"tick\" "
        "x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>",
        left, left + pw, y(v), y(v), left - 6, y(v) + 4, tick_label(v, step));
  }
  return svg + fmt::format(
                   "<text class=\"tick\" transform=\"translate(13,{:.1f}) rotate(-90)\" "
                   "text-anchor=\"middle\">{}</text>",
                   top + ph / 2, escape(label));
}

/// The name of a group under the x axis (at `bottom`, the plot's lower edge), centred at `gx`; turned
/// by 30 degrees where the groups are narrower than 90 pixels.
inline std::string group_label(const std::string& name, double gx, double bottom, double gw) {
  if (gw < 90) {
    return fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\" transform=\"rotate(-30 {:.1f} "
        "{:.1f})\">{}</text>",
        gx, bottom + 16, gx, bottom + 16, escape(name));
  }
  return fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>", gx, bottom + 18,
                     escape(name));
}

/// The opening of a chart's SVG: its size, accessible title, visible title and the legend of its series.
template <typename Chart>
std::string chart_open(const Chart& c, double left) {
  std::string svg =
      fmt::format("<svg viewBox=\"0 0 {} {}\" width=\"{}\" height=\"{}\" role=\"img\" aria-label=\"{}\">",
                  c.width, c.height, c.width, c.height, escape(c.title));
  svg += fmt::format("<text x=\"{}\" y=\"16\" font-weight=\"600\" font-size=\"14\">{}</text>", left,
                     escape(c.title));
  std::vector<std::pair<std::string, std::string>> items;
  for (const auto& s : c.series) items.emplace_back(s.name, s.color);
  return svg + legend(items, left, 33);
}

}  // namespace detail

/// Returns the chart as an inline `<svg>` (no xmlns needed inside HTML) wrapped in
/// `<div class="chart" id="ID">` (no id attribute when `id` is empty).
inline std::string bar_chart(const BarChart& c) {
  const double left = 56, right = 12, top = 40, bottom = 64;
  const double pw = c.width - left - right, ph = c.height - top - bottom;
  double lo = c.y_min, hi = c.y_max;
  if (!std::isfinite(lo) || !std::isfinite(hi)) {
    double dlo = 0, dhi = 0;
    for (const auto& s : c.series) {
      for (size_t g = 0; g < s.values.size(); ++g) {
        for (double v :
             {s.values[g], g < s.low.size() ? s.low[g] : NAN, g < s.high.size() ? s.high[g] : NAN}) {
          if (std::isfinite(v)) dlo = std::min(dlo, v), dhi = std::max(dhi, v);
        }
      }
    }
    if (std::isfinite(c.reference)) dhi = std::max(dhi, c.reference);
    if (!std::isfinite(lo)) lo = dlo;
    if (!std::isfinite(hi)) hi = dhi;
  }
  const auto t = detail::ticks(lo, hi);
  auto y = [&](double v) { return top + ph * (hi - v) / (hi - lo); };
  std::string svg = detail::chart_open(c, left) + detail::y_axis(t, left, pw, top, ph, y, c.y_label);
  const size_t ng = std::max<size_t>(1, c.groups.size()), ns = std::max<size_t>(1, c.series.size());
  const double gw = pw / static_cast<double>(ng), bw = std::min(40.0, gw * 0.8 / static_cast<double>(ns));
  const double base = y(std::clamp(0.0, lo, hi));
  for (size_t g = 0; g < c.groups.size(); ++g) {
    const double gx = left + gw * static_cast<double>(g) + gw / 2;
    svg += detail::group_label(c.groups[g], gx, top + ph, gw);
    for (size_t k = 0; k < c.series.size(); ++k) {
      const auto& s = c.series[k];
      if (g >= s.values.size() || !std::isfinite(s.values[g])) continue;
      const double x = gx - bw * static_cast<double>(ns) / 2 + bw * static_cast<double>(k);
      const double v = s.values[g], yv = y(std::clamp(v, lo, hi));
      const double l = g < s.low.size() ? s.low[g] : NAN, h = g < s.high.size() ? s.high[g] : NAN;
      std::string tip = fmt::format("{} · {}: {:.{}f}", s.name, c.groups[g], v, c.digits);
      if (std::isfinite(l) && std::isfinite(h))
        tip += fmt::format(" [{:.{}f}, {:.{}f}]", l, c.digits, h, c.digits);
      svg += fmt::format(
          "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\" "
          "rx=\"1.5\"><title>{}"
          "</title></rect>",
          x + 1, std::min(yv, base), std::max(0.5, bw - 2), std::max(0.5, std::abs(base - yv)), s.color,
          escape(tip));
      if (std::isfinite(l) && std::isfinite(h)) {
        const double cx = x + bw / 2, y1 = y(std::clamp(l, lo, hi)), y2 = y(std::clamp(h, lo, hi));
        svg += fmt::format(
            "<path d=\"M{0:.1f} {1:.1f}V{2:.1f}M{3:.1f} {1:.1f}H{4:.1f}M{3:.1f} {2:.1f}H{4:.1f}\" "
            "stroke=\"#1f2328\" stroke-width=\"1.2\" fill=\"none\"/>",
            cx, y1, y2, cx - bw / 4, cx + bw / 4);
      }
    }
  }
  if (std::isfinite(c.reference) && c.reference >= lo && c.reference <= hi) {
    svg += fmt::format(
        "<line x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#59636e\" "
        "stroke-dasharray=\"5 4\"/>",
        left, left + pw, y(c.reference), y(c.reference));
  }
  svg += fmt::format("<line class=\"axis\" x1=\"{0:.1f}\" x2=\"{1:.1f}\" y1=\"{2:.1f}\" y2=\"{2:.1f}\"/>",
                     left, left + pw, base);
  svg += "</svg>";
  return "<div class=\"chart\"" + (c.id.empty() ? std::string() : " id=\"" + escape(c.id) + "\"") + ">" +
         svg + "</div>\n";
}

/// One line of a line chart: points (x[i], y[i]); NaN y values leave a gap.
struct LineSeries {
  std::string name, color;
  std::vector<double> x, y;
  bool dashed = false;
};

/// A line chart with markers, a legend and nice axes.
struct LineChart {
  std::string id, title, x_label, y_label;
  std::vector<LineSeries> series;
  int width = 480, height = 260;
  std::optional<double> x_divider;  ///< a dotted vertical line (e.g. between training stages)
  std::string divider_label;
};

/// Returns the chart as an inline `<svg>` in `<div class="chart" id="ID">`.
inline std::string line_chart(const LineChart& c) {
  const double left = 56, right = 12, top = 40, bottom = 40;
  const double pw = c.width - left - right, ph = c.height - top - bottom;
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  for (const auto& s : c.series) {
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      xlo = std::min(xlo, s.x[i]), xhi = std::max(xhi, s.x[i]);
      ylo = std::min(ylo, s.y[i]), yhi = std::max(yhi, s.y[i]);
    }
  }
  std::string svg = detail::chart_open(c, left);
  if (!std::isfinite(xlo)) {
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" class=\"tick\">no data</text>",
                       left + pw / 2, top + ph / 2);
    return "<div class=\"chart\"" + (c.id.empty() ? std::string() : " id=\"" + escape(c.id) + "\"") + ">" +
           svg + "</svg></div>\n";
  }
  const double pad = (yhi - ylo) * 0.05;
  ylo -= pad, yhi += pad;
  const auto ty = detail::ticks(ylo, yhi, 4);
  if (!(xhi > xlo)) xlo -= 0.5, xhi += 0.5;
  auto X = [&](double v) { return left + pw * (v - xlo) / (xhi - xlo); };
  auto Y = [&](double v) { return top + ph * (yhi - v) / (yhi - ylo); };
  const double ystep = ty.size() > 1 ? ty[1] - ty[0] : 1;
  for (double v : ty) {
    svg += fmt::format(
        "<line class=\"grid\" x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\"/><text class=\"tick\" "
        "x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>",
        left, left + pw, Y(v), Y(v), left - 6, Y(v) + 4, detail::tick_label(v, ystep));
  }
  bool integers = true;  // epochs: whole-number ticks only
  for (const auto& s : c.series) {
    for (double v : s.x) integers = integers && (!std::isfinite(v) || v == std::round(v));
  }
  double x0 = xlo, x1 = xhi;
  const auto tx = detail::ticks(x0, x1, 6, integers ? 1.0 : 0.0);
  const double xstep = tx.size() > 1 ? tx[1] - tx[0] : 1;
  for (double v : tx) {
    if (v < xlo - 1e-9 || v > xhi + 1e-9) continue;
    svg += fmt::format("<text class=\"tick\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>",
                       X(v), top + ph + 16, detail::tick_label(v, xstep));
  }
  svg += fmt::format(
      "<line class=\"axis\" x1=\"{0:.1f}\" x2=\"{1:.1f}\" y1=\"{2:.1f}\" y2=\"{2:.1f}\"/><text "
      "class=\"tick\" "
      "x=\"{3:.1f}\" y=\"{4:.1f}\" text-anchor=\"middle\">{5}</text><text class=\"tick\" "
      "transform=\"translate(13,{6:.1f}) rotate(-90)\" text-anchor=\"middle\">{7}</text>",
      left, left + pw, top + ph, left + pw / 2, top + ph + 32, escape(c.x_label), top + ph / 2,
      escape(c.y_label));
  if (c.x_divider && *c.x_divider > xlo && *c.x_divider < xhi) {
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1:.1f}\" y2=\"{2:.1f}\" stroke=\"#8b949e\" "
        "stroke-dasharray=\"2 3\"/><text class=\"tick\" x=\"{3:.1f}\" y=\"{4:.1f}\">{5}</text>",
        X(*c.x_divider), top, top + ph, X(*c.x_divider) + 4, top + 12, escape(c.divider_label));
  }
  for (const auto& s : c.series) {
    std::string d, dots;
    bool pen = false;
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) {
        pen = false;
        continue;
      }
      d += fmt::format("{}{:.1f} {:.1f}", pen ? "L" : "M", X(s.x[i]), Y(s.y[i]));
      pen = true;
      dots += fmt::format(
          "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2.8\" fill=\"{}\"><title>{} · {}: {:.4g}"
          "</title></circle>",
          X(s.x[i]), Y(s.y[i]), s.color, escape(s.name), s.x[i], s.y[i]);
    }
    if (!d.empty()) {
      svg += fmt::format("<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{}/>", d, s.color,
                         s.dashed ? " stroke-dasharray=\"6 4\"" : "");
    }
    svg += dots;
  }
  svg += "</svg>";
  return "<div class=\"chart\"" + (c.id.empty() ? std::string() : " id=\"" + escape(c.id) + "\"") + ">" +
         svg + "</div>\n";
}

/// A strip chart: for each group, every value as a dot (side by side, in order) and their mean as a
/// short horizontal bar; e.g. one metric over random splits, a group per test set.
struct DotChart {
  std::string id, title, y_label;
  std::vector<std::string> groups;
  std::vector<std::vector<double>> values;       ///< per group; NaN: no dot
  std::vector<std::vector<std::string>> labels;  ///< per group and value: its tooltip's name (e.g. "seed 3")
  std::vector<double> mean;                      ///< per group; NaN: no bar
  std::string dot_name = "value", mean_name = "mean";  ///< the legend
  int width = 900, height = 300;
  int digits = 4;  ///< decimals in the tooltips
};

/// Returns the chart as an inline `<svg>` in `<div class="chart" id="ID">`. The y axis covers the values
/// (padded by 5 %), not necessarily 0.
inline std::string dot_chart(const DotChart& c) {
  const double left = 56, right = 12, top = 40, bottom = 64;
  const double pw = c.width - left - right, ph = c.height - top - bottom;
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& g : c.values)
    for (double v : g)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  if (!std::isfinite(lo)) lo = 0, hi = 1;
  const double pad = (hi - lo) * 0.05;
  lo -= pad, hi += pad;
  const auto t = detail::ticks(lo, hi, 4);
  auto y = [&](double v) { return top + ph * (hi - v) / (hi - lo); };
  const std::string dot = palette()[0], bar = "#1f2328";
  std::string svg =
      fmt::format("<svg viewBox=\"0 0 {} {}\" width=\"{}\" height=\"{}\" role=\"img\" aria-label=\"{}\">",
                  c.width, c.height, c.width, c.height, escape(c.title));
  svg += fmt::format("<text x=\"{}\" y=\"16\" font-weight=\"600\" font-size=\"14\">{}</text>", left,
                     escape(c.title)) +
         detail::legend({{c.dot_name, dot}, {c.mean_name, bar}}, left, 33);
  svg += detail::y_axis(t, left, pw, top, ph, y, c.y_label);
  const double gw = pw / static_cast<double>(std::max<size_t>(1, c.groups.size()));
  for (size_t g = 0; g < c.groups.size(); ++g) {
    const double gx = left + gw * static_cast<double>(g) + gw / 2;
    svg += detail::group_label(c.groups[g], gx, top + ph, gw);
    const std::vector<double> none;
    const auto& vs = g < c.values.size() ? c.values[g] : none;
    const double spread = std::min(gw * 0.6, 9.0 * static_cast<double>(vs.size()));
    for (size_t i = 0; i < vs.size(); ++i) {
      if (!std::isfinite(vs[i])) continue;
      const double x =
          vs.size() < 2
              ? gx
              : gx - spread / 2 + spread * static_cast<double>(i) / static_cast<double>(vs.size() - 1);
      const std::string name = g < c.labels.size() && i < c.labels[g].size() ? c.labels[g][i] : c.dot_name;
      svg += fmt::format(
          "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"4\" fill=\"{}\" fill-opacity=\"0.75\"><title>{} · {}: "
          "{:.{}f}</title></circle>",
          x, y(vs[i]), dot, escape(c.groups[g]), escape(name), vs[i], c.digits);
    }
    if (g < c.mean.size() && std::isfinite(c.mean[g])) {
      const double half = std::max(8.0, spread / 2 + 8);
      svg += fmt::format(
          "<line x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" stroke-width=\"2.5\">"
          "<title>{} · {}: {:.{}f}</title></line>",
          gx - half, gx + half, y(c.mean[g]), y(c.mean[g]), bar, escape(c.groups[g]), escape(c.mean_name),
          c.mean[g], c.digits);
    }
  }
  svg += fmt::format("<line class=\"axis\" x1=\"{0:.1f}\" x2=\"{1:.1f}\" y1=\"{2:.1f}\" y2=\"{2:.1f}\"/>",
                     left, left + pw, top + ph);
  svg += "</svg>";
  return "<div class=\"chart\"" + (c.id.empty() ? std::string() : " id=\"" + escape(c.id) + "\"") + ">" +
         svg + "</div>\n";
}

}  // namespace ohem_examples::html
