#pragma once
/// \file
/// The report's words and numbers as text: display names, percentages, signed numbers, lists and
/// paragraphs, each in HTML or in Markdown.
#include "validate.hpp"

#include <toolkit/html.hpp>

#include <fmt/format.h>

#include <cmath>
#include <string>
#include <vector>

namespace ohem_study {

namespace report_detail {

namespace html = ohem_examples::html;

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

/// A paragraph in HTML (`text` escaped, `bold` first) or in Markdown.
inline std::string paragraph(const std::string& bold, const std::string& text, bool md,
                             const std::string& id = {}) {
  if (md)
    return (bold.empty() ? "" : "**" + html::markdown_escape(bold) + "** ") + html::markdown_escape(text) +
           "\n\n";
  return "<p" + (id.empty() ? std::string() : " id=\"" + html::escape(id) + "\"") + ">" +
         (bold.empty() ? "" : "<b>" + html::escape(bold) + "</b> ") + html::escape(text) + "</p>\n";
}

}  // namespace report_detail

}  // namespace ohem_study
