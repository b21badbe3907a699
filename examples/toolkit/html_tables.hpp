#pragma once
/// \file
/// Tables of plain text cells (`Table`) written as HTML (`table_html`) or GitHub-flavoured Markdown
/// (`table_markdown`). Part of html.hpp.
#include "html_text.hpp"

#include <cstddef>
#include <string>
#include <vector>

namespace ohem_examples::html {

/// A table: header and rows of plain text cells (escaped on output); `numeric[j]` right-aligns column j.
struct Table {
  std::string id, caption;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<bool> numeric;
};

/// The table as HTML (`<table id="ID">`, with a caption when one is given).
inline std::string table_html(const Table& t) {
  auto cls = [&](size_t j) {
    return j < t.numeric.size() && t.numeric[j] ? std::string(" class=\"num\"") : std::string();
  };
  std::string out = "<table" + (t.id.empty() ? std::string() : " id=\"" + escape(t.id) + "\"") + ">";
  if (!t.caption.empty()) out += "<caption>" + escape(t.caption) + "</caption>";
  out += "<thead><tr>";
  for (size_t j = 0; j < t.header.size(); ++j) out += "<th" + cls(j) + ">" + escape(t.header[j]) + "</th>";
  out += "</tr></thead><tbody>\n";
  for (const auto& r : t.rows) {
    out += "<tr>";
    for (size_t j = 0; j < r.size(); ++j) out += "<td" + cls(j) + ">" + escape(r[j]) + "</td>";
    out += "</tr>\n";
  }
  return out + "</tbody></table>\n";
}

/// The table as GitHub-flavoured Markdown (every cell and the caption through `markdown_escape`),
/// preceded by its caption in italics.
inline std::string table_markdown(const Table& t) {
  auto cell = [](const std::string& s) { return markdown_escape(s); };
  std::string out = t.caption.empty() ? "" : "*" + cell(t.caption) + "*\n\n";
  out += "|";
  for (const auto& h : t.header) out += " " + cell(h) + " |";
  out += "\n|";
  for (size_t j = 0; j < t.header.size(); ++j) out += j < t.numeric.size() && t.numeric[j] ? "---:|" : "---|";
  out += "\n";
  for (const auto& r : t.rows) {
    out += "|";
    for (const auto& c : r) out += " " + cell(c) + " |";
    out += "\n";
  }
  return out + "\n";
}

}  // namespace ohem_examples::html
