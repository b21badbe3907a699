#pragma once
/// \file
/// Text in HTML and Markdown pages: `escape` (HTML text and attributes), `url_path` (a relative path in a
/// src attribute), `markdown_escape` (literal text in Markdown) and `number` (a number with fixed decimals,
/// NaN as an en dash). Part of html.hpp.
#include <cctype>
#include <cmath>
#include <string>

#include <fmt/format.h>

namespace ohem_examples::html {

/// Returns `s` escaped for HTML text and attribute values.
inline std::string escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

/// Percent-encodes a relative path for an HTML src attribute (keeps '/' and unreserved characters).
inline std::string url_path(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

/// Returns `s` as literal text in (GitHub-flavoured) Markdown: the characters of Markdown's inline
/// syntax and tables (backslash, backtick, `*`, `_`, `[`, `]`, `|`, `~`) get a backslash, line breaks
/// (CR, LF) become spaces, and `&`, `<`, `>` and quotes become HTML entities (`escape`), so a name can
/// neither inject HTML, format or link text, end a table cell, nor start a new line. The one escaping
/// of the Markdown the examples write (every copied name, caption and cell goes through it).
///
/// Example: `markdown_escape("<b>a_b</b>")  // "&lt;b&gt;a\\_b&lt;/b&gt;"`
inline std::string markdown_escape(const std::string& s) {
  static const std::string markup = "\\`*_[]|~";
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\r' || c == '\n') {
      out += ' ';
      continue;
    }
    if (c != '\0' && markup.find(c) != std::string::npos) out += '\\';
    out += c;
  }
  return escape(out);  // then &, <, >, " and ' as HTML entities (a backslash is no markup in HTML)
}

/// Formats a number with `digits` decimals; NaN (a JSON null) as an en dash.
inline std::string number(double v, int digits = 3) {
  if (!std::isfinite(v)) return "\xe2\x80\x93";
  return fmt::format("{:.{}f}", v, digits);
}

}  // namespace ohem_examples::html
