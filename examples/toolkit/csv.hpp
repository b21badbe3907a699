#pragma once
/// @file
/// The one CSV reader of the examples and tools (dataset readers, `ohem-eval`).
///
/// Format: RFC 4180 — fields separated by commas; a field in double quotes may hold commas, line
/// breaks and `""` for a quote; LF or CRLF line ends. Accepted beyond it: a UTF-8 byte-order mark,
/// blank lines (skipped), blanks around unquoted fields and around quotes (trimmed; switch off with
/// `CsvOptions::trim`). Rejected with the file, line and column: an unterminated quote (at the opening
/// quote), a quote inside an unquoted field, text after a closing quote, a stray carriage return, and —
/// with `CsvOptions::same_width` — a record with more or fewer fields than the header. Lines and columns
/// are 1-based; columns count bytes from the start of the physical line, so fields after a quoted field
/// that spans lines are reported on the line where they are.
///
/// Columns are found by header name, case-insensitively and ignoring surrounding blanks, through a
/// list of aliases the caller supplies (e.g. `{"mos", "score", "dmos"}`); two header columns matching
/// one list is an error (ambiguous), never a silent choice. Text is kept as bytes (no encoding check).

#include "files.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ohem_examples {

/// Options of `read_csv` / `parse_csv`.
struct CsvOptions {
  /// The first non-blank record is the header (column names); otherwise every record is data.
  TORCH_ARG(bool, header) = true;
  /// Every record must have as many fields as the header (or, without one, as the first record).
  TORCH_ARG(bool, same_width) = false;
  /// Remove blanks (spaces, tabs) around unquoted fields and around quoted ones.
  TORCH_ARG(bool, trim) = true;
  /// The field separator.
  TORCH_ARG(char, separator) = ',';
};

/// Where a field starts: 1-based line and 1-based byte column.
struct CsvPos {
  int64_t line = 0;
  int64_t column = 0;
};

/// Returns `s` without leading and trailing blanks (spaces, tabs), as a view of `s`.
inline std::string_view trimmed(std::string_view s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

/// Removes leading and trailing blanks (spaces, tabs).
inline std::string trim(const std::string& s) {
  return std::string(trimmed(s));
}

/// A CSV file read into records, with the position of every field.
struct CsvFile {
  std::string path;
  std::vector<std::string> header;  ///< empty without a header
  std::vector<CsvPos> header_positions;
  /// The data records: the line the record starts on, and its fields.
  std::vector<std::pair<int64_t, std::vector<std::string>>> rows;
  /// `positions[r][f]`: where field `f` of record `r` starts.
  std::vector<std::vector<CsvPos>> positions;

  /// Returns "path:line" for error messages.
  std::string where(int64_t line) const { return path + ":" + std::to_string(line); }
  /// Returns "path:line:column" of field `field` of record `row` (of the record's end if it has fewer
  /// fields).
  std::string where(size_t row, size_t field) const {
    const auto& pos = positions.at(row);
    const CsvPos p = field < pos.size() ? pos[field] : end_positions.at(row);
    return path + ":" + std::to_string(p.line) + ":" + std::to_string(p.column);
  }
  /// Returns the lower-cased, trimmed form of a header name (how names are compared).
  static std::string lower(std::string s) {
    s = trim(s);
    for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return s;
  }
  /// Returns the index of the header column whose name is one of `aliases` (case-insensitive, blanks
  /// around the name ignored), or -1 if none is. Throws naming both columns if two columns match.
  int64_t column(const std::vector<std::string>& aliases) const {
    int64_t found = -1;
    for (size_t i = 0; i < header.size(); ++i) {
      const std::string h = lower(header[i]);
      for (const auto& a : aliases) {
        if (h != lower(a) || found == static_cast<int64_t>(i)) continue;
        TORCH_CHECK(found < 0, path, ":", header_positions[i].line, ":", header_positions[i].column,
                    ": ambiguous header: columns ", found + 1, " (\"", header[found], "\") and ", i + 1,
                    " (\"", header[i], "\") both name the same thing (", alias_list(aliases), ")");
        found = static_cast<int64_t>(i);
      }
    }
    return found;
  }
  int64_t column(std::initializer_list<const char*> aliases) const {
    return column(std::vector<std::string>(aliases.begin(), aliases.end()));
  }
  /// Returns the index of the header column named by one of `aliases`; throws naming `what`, the
  /// aliases looked for and the header found if there is none.
  int64_t require_column(const std::vector<std::string>& aliases, const std::string& what) const {
    const int64_t c = column(aliases);
    if (c < 0) {
      std::string got;
      for (const auto& h : header) got += (got.empty() ? "\"" : ", \"") + h + "\"";
      TORCH_CHECK(false, where(header_positions.empty() ? 1 : header_positions[0].line), ": no ", what,
                  " column in the header (looked for ", alias_list(aliases), "; found ", got, ")");
    }
    return c;
  }
  /// Joins aliases for messages: `a, b or c`.
  static std::string alias_list(const std::vector<std::string>& aliases) {
    std::string s;
    for (size_t i = 0; i < aliases.size(); ++i) {
      s += (i == 0 ? "" : i + 1 == aliases.size() ? " or " : ", ") + ("\"" + aliases[i] + "\"");
    }
    return s;
  }

  /// Where each record ends (for "too few fields" messages).
  std::vector<CsvPos> end_positions;
};

/// Parses CSV text; `path` only names the source in messages. See the file comment for the format.
/// Throws c10::Error with "path:line:column" on a malformed record and "path: the file is empty" if
/// there is no record at all.
///
/// Example: `auto f = parse_csv("name,mos\na.png,3.5\n", "inline.csv");  // f.rows[0].second[1] == "3.5"`
inline CsvFile parse_csv(const std::string& s, const std::string& path, const CsvOptions& o = {}) {
  CsvFile f;
  f.path = path;
  const char sep = o.separator();
  size_t i = s.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0;
  int64_t line = 1;
  size_t line_start = i;
  auto col = [&](size_t p) { return static_cast<int64_t>(p - line_start) + 1; };
  auto here = [&](int64_t l, int64_t c) { return path + ":" + std::to_string(l) + ":" + std::to_string(c); };
  auto blank = [&](size_t p) { return p < s.size() && (s[p] == ' ' || s[p] == '\t') && s[p] != sep; };
  // Is there a line end at p (LF, CRLF, or CR at the end of the text)? Sets `len` to its length.
  auto line_end = [&](size_t p, size_t& len) {
    if (p >= s.size()) return false;
    if (s[p] == '\n') {
      len = 1;
      return true;
    }
    if (s[p] == '\r' && (p + 1 == s.size() || s[p + 1] == '\n')) {
      len = p + 1 == s.size() ? 1 : 2;
      return true;
    }
    return false;
  };
  bool header_done = !o.header();
  size_t width = 0;
  bool width_known = false;
  const auto lines =
      static_cast<size_t>(std::count(s.begin() + static_cast<std::ptrdiff_t>(i), s.end(), '\n'));
  f.rows.reserve(lines + 1);
  f.positions.reserve(lines + 1);
  f.end_positions.reserve(lines + 1);
  while (i < s.size()) {
    size_t j = i, len = 0;
    while (blank(j)) ++j;
    if (j >= s.size()) break;
    if (line_end(j, len)) {  // blank line
      i = j + len;
      ++line;
      line_start = i;
      continue;
    }
    std::vector<std::string> fields;
    std::vector<CsvPos> pos;
    fields.reserve(width);
    pos.reserve(width);
    const int64_t record_line = line;
    while (true) {
      size_t k = i;
      if (o.trim()) {
        while (blank(k)) ++k;
      }
      std::string field;
      CsvPos start{line, col(k)};
      if (k < s.size() && s[k] == '"') {
        i = k + 1;
        while (true) {
          TORCH_CHECK(i < s.size(), here(start.line, start.column),
                      ": unterminated quoted field (the quote opened here is never closed)");
          const char c = s[i];
          if (c == '"') {
            if (i + 1 < s.size() && s[i + 1] == '"') {
              field += '"';
              i += 2;
              continue;
            }
            ++i;
            break;
          }
          if (c == '\n') {
            ++line;
            line_start = i + 1;
          }
          field += c;
          ++i;
        }
        if (o.trim()) {
          while (blank(i)) ++i;
        }
        TORCH_CHECK(i >= s.size() || s[i] == sep || line_end(i, len), here(line, col(i)), ": unexpected '",
                    std::string(1, s[i]),
                    "' after a closing quote (a quote inside a quoted field is written \"\")");
      } else {
        i = k;
        while (i < s.size() && s[i] != sep && s[i] != '\n' && s[i] != '\r') {
          TORCH_CHECK(s[i] != '"', here(line, col(i)),
                      ": quote inside an unquoted field (quote the whole field and double the quote: \"\")");
          ++i;
        }
        const std::string_view text(s.data() + k, i - k);
        field.assign(o.trim() ? trimmed(text) : text);
      }
      fields.push_back(std::move(field));
      pos.push_back(start);
      if (i < s.size() && s[i] == sep) {
        ++i;
        continue;
      }
      TORCH_CHECK(i >= s.size() || line_end(i, len), here(line, col(i)),
                  ": stray carriage return (line ends must be LF or CRLF)");
      break;
    }
    const CsvPos end{line, col(i)};
    if (i < s.size()) {
      line_end(i, len);
      i += len;
      ++line;
      line_start = i;
    }
    if (!header_done) {
      header_done = true;
      f.header = std::move(fields);
      f.header_positions = std::move(pos);
      width = f.header.size();
      width_known = true;
      continue;
    }
    if (o.same_width()) {
      if (!width_known) {
        width = fields.size();
        width_known = true;
      }
      const char* ref = o.header() ? "as in the header" : "as in the first record";
      TORCH_CHECK(fields.size() >= width, here(end.line, end.column), ": expected ", width, " fields ", ref,
                  ", got ", fields.size());
      TORCH_CHECK(fields.size() == width, here(pos[width].line, pos[width].column), ": expected ", width,
                  " fields ", ref, ", got ", fields.size());
    }
    f.rows.emplace_back(record_line, std::move(fields));
    f.positions.push_back(std::move(pos));
    f.end_positions.push_back(end);
  }
  TORCH_CHECK(header_done && (!f.header.empty() || !f.rows.empty()), path, ": the file is empty");
  return f;
}

/// Reads a CSV file (see `parse_csv`). Throws c10::Error naming the file if it does not exist, is a
/// directory, cannot be read or is empty, and "path:line:column" on a malformed record.
///
/// Example: `auto f = read_csv("scores.csv", CsvOptions().same_width(true));`
inline CsvFile read_csv(const std::string& path, const CsvOptions& options) {
  check_input_file(path, "CSV file");
  std::ifstream in(path, std::ios::binary);
  TORCH_CHECK(in.good(), "CSV file \"", path, "\": cannot open the file for reading (permission denied?)");
  std::ostringstream ss;
  ss << in.rdbuf();
  TORCH_CHECK(!in.bad(), "CSV file \"", path, "\": reading failed");
  return parse_csv(ss.str(), path, options);
}

/// Reads a CSV file; `has_header` takes the first non-blank record as the header.
inline CsvFile read_csv(const std::string& path, bool has_header) {
  return read_csv(path, CsvOptions().header(has_header));
}

/// Parses `text` (blanks around it ignored) as a plain decimal number: an optional sign, digits with an
/// optional decimal point (at least one digit), and an optional exponent (`e`/`E`, optional sign,
/// digits), e.g. `3.5`, `-0.25`, `.5`, `1e-3`. Hexadecimal (`0x1p3`), `inf`, `nan`, digit separators and
/// a value beyond the range of double are refused: returns false then. The one number parser of the
/// CSV inputs (the trainers' metadata, `ohem-eval`).
inline bool parse_decimal(const std::string& text, double& value) {
  const std::string_view t = trimmed(text);
  size_t i = 0, digits = 0;
  auto is_digit = [&](size_t k) { return k < t.size() && t[k] >= '0' && t[k] <= '9'; };
  if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
  while (is_digit(i)) ++i, ++digits;
  if (i < t.size() && t[i] == '.') {
    ++i;
    while (is_digit(i)) ++i, ++digits;
  }
  if (digits == 0) return false;
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
    if (!is_digit(i)) return false;
    while (is_digit(i)) ++i;
  }
  if (i != t.size()) return false;
  // from_chars (no '+' accepted) rounds correctly, as strtod does; anything else (out of range,
  // subnormal: where strtod may set ERANGE) goes through strtod itself.
  const size_t plus = t[0] == '+' ? 1 : 0;
  double fast = 0.0;
  const auto [ptr, ec] = std::from_chars(t.data() + plus, t.data() + t.size(), fast);
  if (ec == std::errc() && ptr == t.data() + t.size() && (fast == 0.0 || std::abs(fast) >= 0x1p-1022) &&
      std::isfinite(fast)) {
    value = fast;
    return true;
  }
  const std::string copy(t);
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(copy.c_str(), &end);  // the grammar above is a subset of strtod's
  if (end != copy.c_str() + copy.size() || !std::isfinite(v) || (errno == ERANGE && v != 0.0)) return false;
  value = v;
  return true;
}

/// A key (e.g. an image name) that appears again: the index of the record where it reappears and of
/// the record where it first appeared.
struct RepeatedKey {
  size_t row = 0;
  size_t first = 0;
};

/// Returns, in order, every record whose key appeared in an earlier record (paired with that first
/// record). The one check for repeated image names of the CSV inputs: `ohem-eval` refuses or warns
/// about every repeat, the trainers refuse a repeat whose MOS differs.
inline std::vector<RepeatedKey> repeated_keys(const std::vector<std::string>& keys) {
  // Records sorted by (hash of the key, record): equal keys are neighbours within a run of equal hashes,
  // and the first record of a key comes first (no tree of a million strings).
  std::vector<std::pair<size_t, size_t>> by_hash(keys.size());
  for (size_t r = 0; r < keys.size(); ++r) by_hash[r] = {std::hash<std::string>()(keys[r]), r};
  std::sort(by_hash.begin(), by_hash.end());
  std::vector<RepeatedKey> out;
  for (size_t a = 0; a < by_hash.size();) {
    size_t b = a + 1;
    while (b < by_hash.size() && by_hash[b].first == by_hash[a].first) ++b;
    for (size_t k = a + 1; k < b; ++k) {  // a run of equal hashes: compare the keys themselves
      const size_t r = by_hash[k].second;
      for (size_t e = a; e < k; ++e) {
        if (keys[by_hash[e].second] != keys[r]) continue;
        out.push_back({r, by_hash[e].second});  // the earliest record with this key
        break;
      }
    }
    a = b;
  }
  std::sort(out.begin(), out.end(), [](const RepeatedKey& x, const RepeatedKey& y) { return x.row < y.row; });
  return out;
}

/// Splits one line of comma-separated values (e.g. an option's value) into trimmed fields, with CSV
/// quoting. `where` names the text in messages. An empty line gives one empty field.
///
/// Example: `split_csv_line("a, \"b,c\"", "--shares")  // {"a", "b,c"}`
inline std::vector<std::string> split_csv_line(const std::string& line, const std::string& where,
                                               char sep = ',') {
  if (trim(line).empty()) return {std::string()};
  const CsvFile f = parse_csv(line, where, CsvOptions().header(false).separator(sep));
  TORCH_CHECK(f.rows.size() == 1, where, ": expected one line of values, got ", f.rows.size());
  return f.rows[0].second;
}

}  // namespace ohem_examples
