#pragma once
/// @file
/// Writing CSV (RFC 4180): `csv_field` quotes one field where it must be quoted. Every CSV file ohem and
/// its programs write (hardness, predictions, scores, gMAD pairs) goes through it, so a name with a
/// comma, a quote or a line break reads back as written.

#include <ohem/version.hpp>

#include <string>
#include <string_view>

OHEM_BEGIN_NAMESPACE

/// Returns `text` as one CSV field: as it is, or in double quotes (inner quotes doubled) when it holds a
/// comma, a double quote, a carriage return or a line feed.
///
/// Example: `out << ohem::csv_field(name) << ',' << score << '\n';` (`a,b` → `"a,b"`)
inline std::string csv_field(std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(text);
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

OHEM_END_NAMESPACE
