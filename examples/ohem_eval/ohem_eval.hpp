#pragma once
/// @file
/// The `ohem-eval` command-line tool as a library (main.cpp only calls `ohem_eval::run`), so that the
/// test suite can run it in-process: CSV reading with file:line:column errors, the metrics table and
/// JSON report, and the gMAD pairs as CSV and as a self-contained HTML page.

#include <ohem/gmad.hpp>
#include <ohem/metrics.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace ohem_eval {

/// A CSV file: the header's fields and the data records, with the position of every field.
struct CsvTable {
  std::string path;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  /// 1-based line of each record, and 1-based character column of each of its fields.
  std::vector<int64_t> lines;
  std::vector<std::vector<int64_t>> columns;
};

/// Reads a comma-separated file with a header row (RFC 4180 quoting: "a,b" and "" for a quote; CRLF or
/// LF line ends; a UTF-8 byte-order mark and empty lines are skipped). Every record must have as many
/// fields as the header.
///
/// Throws a c10::Error naming the file, line and column if the file cannot be read, is empty, has an
/// unterminated or misplaced quote, or a record with the wrong number of fields.
/// Example: `auto t = ohem_eval::read_csv("scores.csv"); t.rows[0][1];`
inline CsvTable read_csv(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  TORCH_CHECK(in.good(), path, ": cannot open the file for reading");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string s = ss.str();
  CsvTable t;
  t.path = path;
  size_t i = s.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0;
  int64_t line = 1;
  size_t line_start = i;
  auto col = [&](size_t pos) { return static_cast<int64_t>(pos - line_start) + 1; };
  while (i < s.size()) {
    if (s[i] == '\n' || (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n')) {  // empty line
      i += s[i] == '\r' ? 2 : 1;
      ++line;
      line_start = i;
      continue;
    }
    std::vector<std::string> fields;
    std::vector<int64_t> cols;
    const int64_t record_line = line;
    while (true) {
      const size_t field_start = i;
      std::string field;
      if (i < s.size() && s[i] == '"') {
        const int64_t quote_line = line, quote_col = col(i);
        ++i;
        while (true) {
          TORCH_CHECK(i < s.size(), path, ":", quote_line, ":", quote_col, ": unterminated quoted field");
          if (s[i] == '"') {
            if (i + 1 < s.size() && s[i + 1] == '"') {
              field += '"';
              i += 2;
              continue;
            }
            ++i;
            break;
          }
          if (s[i] == '\n') {
            ++line;
            line_start = i + 1;
          }
          field += s[i++];
        }
        TORCH_CHECK(i >= s.size() || s[i] == ',' || s[i] == '\n' || s[i] == '\r', path, ":", line, ":",
                    col(i), ": unexpected character '", s[i], "' after a closing quote");
      } else {
        while (i < s.size() && s[i] != ',' && s[i] != '\n' && s[i] != '\r') {
          TORCH_CHECK(s[i] != '"', path, ":", line, ":", col(i),
                      ": quote inside an unquoted field (quote the whole field and double the quote)");
          field += s[i++];
        }
      }
      fields.push_back(std::move(field));
      cols.push_back(static_cast<int64_t>(field_start - line_start) + 1);
      if (i < s.size() && s[i] == ',') {
        ++i;
        continue;
      }
      TORCH_CHECK(i >= s.size() || s[i] == '\n' || (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ||
                      (s[i] == '\r' && i + 1 == s.size()),
                  path, ":", line, ":", col(i), ": stray carriage return");
      break;
    }
    if (t.header.empty()) {
      t.header = std::move(fields);
    } else {
      TORCH_CHECK(fields.size() >= t.header.size(), path, ":", record_line, ":", col(i), ": expected ",
                  t.header.size(), " fields as in the header, got ", fields.size());
      TORCH_CHECK(fields.size() == t.header.size(), path, ":", record_line, ":", cols[t.header.size()],
                  ": expected ", t.header.size(), " fields as in the header, got ", fields.size());
      t.rows.push_back(std::move(fields));
      t.lines.push_back(record_line);
      t.columns.push_back(std::move(cols));
    }
    if (i < s.size()) {
      i += s[i] == '\r' ? 2 : 1;
      ++line;
      line_start = i;
    }
  }
  TORCH_CHECK(!t.header.empty(), path, ":1:1: the file is empty; expected a header row");
  return t;
}

/// Parses field `c` (0-based) of record `r` as a finite number; throws naming file, line, column and
/// header name otherwise.
inline double number_at(const CsvTable& t, size_t r, size_t c) {
  const std::string& f = t.rows[r][c];
  size_t b = f.find_first_not_of(" \t"), e = f.find_last_not_of(" \t");
  const std::string v = b == std::string::npos ? "" : f.substr(b, e - b + 1);
  char* end = nullptr;
  errno = 0;
  const double x = v.empty() ? 0.0 : std::strtod(v.c_str(), &end);
  const bool parsed = !v.empty() && end == v.c_str() + v.size();
  TORCH_CHECK(parsed && std::isfinite(x), t.path, ":", t.lines[r], ":", t.columns[r][c], ": column ", c + 1,
              " (\"", t.header[c], "\"): expected a finite number, got \"", f, "\"");
  return x;
}

/// Returns the doubles of column `c`, checked by `number_at`.
inline std::vector<double> numbers(const CsvTable& t, size_t c) {
  std::vector<double> out(t.rows.size());
  for (size_t r = 0; r < t.rows.size(); ++r) out[r] = number_at(t, r, c);
  return out;
}

/// Writes `content` to `path` atomically: a temporary file in the same directory, renamed over `path`.
inline void write_atomically(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  TORCH_CHECK(f != nullptr, path, ": cannot open ", tmp, " for writing");
  const bool ok = std::fwrite(content.data(), 1, content.size(), f) == content.size();
  const bool closed = std::fclose(f) == 0;
  if (!ok || !closed) std::remove(tmp.c_str());
  TORCH_CHECK(ok && closed, path, ": cannot write ", tmp);
  TORCH_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, path, ": cannot rename ", tmp, " to ", path);
}

/// Returns `s` as a JSON string literal.
inline std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      out += fmt::format("\\u{:04x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

/// Returns a finite double as its shortest round-trip JSON number, anything else as null.
inline std::string json_number(double x) {
  return std::isfinite(x) ? fmt::format("{}", x) : "null";
}

/// Returns `s` escaped for HTML text and attribute values.
inline std::string html_escape(const std::string& s) {
  std::string out;
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

/// Returns `s` as one CSV field (quoted when it holds a comma, quote or line break).
inline std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
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

/// Returns a data: URI with the file's bytes in base64; throws naming the file if it cannot be read.
inline std::string data_uri(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  TORCH_CHECK(in.good(), "ohem-eval: cannot read image ", path, " (for --embed-images)");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string bytes = ss.str();
  const auto dot = path.rfind('.');
  std::string ext = dot == std::string::npos ? "" : path.substr(dot + 1);
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const std::map<std::string, std::string> mime{
      {"png", "image/png"}, {"jpg", "image/jpeg"},  {"jpeg", "image/jpeg"}, {"bmp", "image/bmp"},
      {"gif", "image/gif"}, {"webp", "image/webp"}, {"tif", "image/tiff"},  {"tiff", "image/tiff"}};
  const auto m = mime.find(ext);
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out =
      "data:" + (m == mime.end() ? std::string("application/octet-stream") : m->second) + ";base64,";
  size_t k = 0;
  for (; k + 2 < bytes.size(); k += 3) {
    const uint32_t v =
        (uint32_t(uint8_t(bytes[k])) << 16) | (uint32_t(uint8_t(bytes[k + 1])) << 8) | uint8_t(bytes[k + 2]);
    out += {table[v >> 18], table[(v >> 12) & 63], table[(v >> 6) & 63], table[v & 63]};
  }
  if (k < bytes.size()) {
    uint32_t v = uint32_t(uint8_t(bytes[k])) << 16;
    if (k + 1 < bytes.size()) v |= uint32_t(uint8_t(bytes[k + 1])) << 8;
    out += table[v >> 18];
    out += table[(v >> 12) & 63];
    out += k + 1 < bytes.size() ? table[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

/// The command line, parsed.
struct Args {
  std::string input;
  bool gmad = false;
  bool help = false;
  std::string json;  ///< empty: <input stem>.metrics.json
  bool no_json = false;
  int64_t bootstrap = 1000;
  double confidence = 0.95;
  uint64_t seed = 0;
  int64_t levels = 5;
  double window = 0.2;
  std::string pairs, html;  ///< empty: <input stem>.gmad.csv / .gmad.html
  std::string image_root = ".";
  bool embed_images = false;
};

/// Returns the usage text.
inline std::string usage() {
  return R"(Usage: ohem-eval [options] SCORES.csv

Evaluation (default): SCORES.csv has a header row and the columns name,mos,prediction[,group].
Prints SRCC, KRCC, PLCC, PLCC and RMSE after 4- and 5-parameter logistic fits, with bootstrap
intervals, overall and per group; writes the same as JSON.
  --json PATH        JSON report (default: SCORES.metrics.json)
  --no-json          do not write the JSON report
  --bootstrap N      bootstrap resamples for the intervals (default 1000; 0: no intervals)
  --confidence C     coverage of the intervals, in (0, 1) (default 0.95)
  --seed S           seed of the resampling (default 0)

gMAD (--gmad): SCORES.csv has a header row and the columns name,A,B: two models' scores (the
header names the models). Runs gMAD with A defending and B attacking, and the reverse; writes the
selected pairs as CSV and as a self-contained HTML page.
  --levels L         quality levels (default 5)
  --window W         window width as a fraction of a level's width, in (0, 1] (default 0.2)
  --pairs PATH       CSV of the pairs (default: SCORES.gmad.csv)
  --html PATH        HTML page (default: SCORES.gmad.html)
  --image-root DIR   directory the image names are relative to, as written in the page (default: .)
  --embed-images     embed the images in the page (base64) instead of linking them

  -h, --help         show this text
)";
}

/// Parses the arguments (without the program name); throws a c10::Error naming the bad option.
inline Args parse_args(const std::vector<std::string>& argv) {
  Args a;
  auto value = [&](size_t& i) -> const std::string& {
    TORCH_CHECK(i + 1 < argv.size(), "ohem-eval: option ", argv[i], " needs a value (see --help)");
    return argv[++i];
  };
  auto integer = [](const std::string& opt, const std::string& v, int64_t min) {
    char* end = nullptr;
    errno = 0;
    const long long x = std::strtoll(v.c_str(), &end, 10);
    TORCH_CHECK(!v.empty() && end == v.c_str() + v.size() && errno == 0 && x >= min, "ohem-eval: ", opt,
                " expects an integer >= ", min, ", got \"", v, "\"");
    return static_cast<int64_t>(x);
  };
  auto real = [](const std::string& opt, const std::string& v) {
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    TORCH_CHECK(!v.empty() && end == v.c_str() + v.size() && std::isfinite(x), "ohem-eval: ", opt,
                " expects a number, got \"", v, "\"");
    return x;
  };
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& o = argv[i];
    if (o == "-h" || o == "--help") {
      a.help = true;
    } else if (o == "--gmad") {
      a.gmad = true;
    } else if (o == "--json") {
      a.json = value(i);
    } else if (o == "--no-json") {
      a.no_json = true;
    } else if (o == "--bootstrap") {
      a.bootstrap = integer(o, value(i), 0);
    } else if (o == "--confidence") {
      a.confidence = real(o, value(i));
      TORCH_CHECK(a.confidence > 0 && a.confidence < 1, "ohem-eval: --confidence must be in (0, 1), got ",
                  a.confidence);
    } else if (o == "--seed") {
      a.seed = static_cast<uint64_t>(integer(o, value(i), 0));
    } else if (o == "--levels") {
      a.levels = integer(o, value(i), 1);
    } else if (o == "--window") {
      a.window = real(o, value(i));
      TORCH_CHECK(a.window > 0 && a.window <= 1, "ohem-eval: --window must be in (0, 1], got ", a.window);
    } else if (o == "--pairs") {
      a.pairs = value(i);
    } else if (o == "--html") {
      a.html = value(i);
    } else if (o == "--image-root") {
      a.image_root = value(i);
    } else if (o == "--embed-images") {
      a.embed_images = true;
    } else {
      TORCH_CHECK(o.empty() || o[0] != '-' || o == "-", "ohem-eval: unknown option ", o, " (see --help)");
      TORCH_CHECK(a.input.empty(), "ohem-eval: more than one input file: ", a.input, " and ", o);
      a.input = o;
    }
  }
  TORCH_CHECK(a.help || !a.input.empty(), "ohem-eval: no input file (see --help)");
  return a;
}

/// Returns the input path without a trailing ".csv".
inline std::string stem(const std::string& path) {
  const std::string ext = ".csv";
  if (path.size() > ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0) {
    return path.substr(0, path.size() - ext.size());
  }
  return path;
}

namespace detail {

inline std::string cell(double v, const std::optional<ohem::Interval>& iv) {
  if (!iv) return fmt::format("{:.4f}", v);
  return fmt::format("{:.4f} [{:.4f}, {:.4f}]", v, iv->lower, iv->upper);
}

inline std::vector<std::string> cells(const ohem::Evaluation& e) {
  const auto& iv = e.intervals;
  auto at = [&](ohem::Interval ohem::BootstrapIntervals::*m) -> std::optional<ohem::Interval> {
    if (!iv) return std::nullopt;
    return (*iv).*m;
  };
  using B = ohem::BootstrapIntervals;
  return {cell(e.srcc, at(&B::srcc)),       cell(e.krcc, at(&B::krcc)),
          cell(e.plcc, at(&B::plcc)),       cell(e.fit4.plcc, at(&B::plcc4)),
          cell(e.fit4.rmse, at(&B::rmse4)), cell(e.fit5.plcc, at(&B::plcc5)),
          cell(e.fit5.rmse, at(&B::rmse5))};
}

inline std::string json_metric(double v, const std::optional<ohem::BootstrapIntervals>& iv,
                               ohem::Interval ohem::BootstrapIntervals::*m) {
  if (!iv) return fmt::format("{{\"value\": {}}}", json_number(v));
  const auto& i = (*iv).*m;
  return fmt::format("{{\"value\": {}, \"lower\": {}, \"upper\": {}}}", json_number(v), json_number(i.lower),
                     json_number(i.upper));
}

inline std::string json_fit(const ohem::LogisticFit& f, const std::optional<ohem::BootstrapIntervals>& iv,
                            ohem::Interval ohem::BootstrapIntervals::*plcc,
                            ohem::Interval ohem::BootstrapIntervals::*rmse) {
  std::string params;
  for (size_t k = 0; k < f.params.size(); ++k) params += (k ? ", " : "") + json_number(f.params[k]);
  return fmt::format(
      "{{\"status\": {}, \"message\": {}, \"params\": [{}], \"iterations\": {}, \"plcc\": {}, \"rmse\": {}}}",
      json_string(ohem::to_string(f.status)), json_string(f.message), params, f.iterations,
      json_metric(f.plcc, iv, plcc), json_metric(f.rmse, iv, rmse));
}

inline std::string json_evaluation(const ohem::Evaluation& e, const std::string& indent) {
  using B = ohem::BootstrapIntervals;
  const auto& iv = e.intervals;
  return fmt::format(
      "{{\n{0}  \"n\": {1},\n{0}  \"srcc\": {2},\n{0}  \"krcc\": {3},\n{0}  \"plcc\": {4},\n{0}  "
      "\"logistic4\": "
      "{5},\n{0}  \"logistic5\": {6}\n{0}}}",
      indent, e.n, json_metric(e.srcc, iv, &B::srcc), json_metric(e.krcc, iv, &B::krcc),
      json_metric(e.plcc, iv, &B::plcc), json_fit(e.fit4, iv, &B::plcc4, &B::rmse4),
      json_fit(e.fit5, iv, &B::plcc5, &B::rmse5));
}

}  // namespace detail

/// The evaluation mode: returns the table printed to stdout and writes the JSON report.
inline std::string evaluate_file(const Args& args) {
  const CsvTable t = read_csv(args.input);
  TORCH_CHECK(t.header.size() == 3 || t.header.size() == 4, args.input, ":1:1: expected the columns ",
              "name,mos,prediction[,group], got ", t.header.size(), " columns");
  TORCH_CHECK(t.rows.size() >= 2, args.input, ": needs at least 2 images, got ", t.rows.size());
  const auto mos = numbers(t, 1), pred = numbers(t, 2);
  const auto options =
      ohem::EvalOptions().bootstrap(args.bootstrap).confidence(args.confidence).seed(args.seed);
  std::vector<std::pair<std::string, ohem::Evaluation>> rows{{"all", ohem::evaluate(pred, mos, options)}};
  if (t.header.size() == 4) {
    std::vector<std::string> groups(t.rows.size());
    for (size_t r = 0; r < t.rows.size(); ++r) groups[r] = t.rows[r][3];
    try {
      for (auto& g : ohem::evaluate_groups(pred, mos, groups, options))
        rows.emplace_back(g.first, std::move(g.second));
    } catch (const c10::Error& e) {
      TORCH_CHECK(false, args.input, ": ", e.what_without_backtrace());
    }
  }

  const char* names[] = {"SRCC", "KRCC", "PLCC", "PLCC(4p)", "RMSE(4p)", "PLCC(5p)", "RMSE(5p)"};
  size_t gw = 5;
  for (const auto& r : rows) gw = std::max(gw, r.first.size());
  const size_t cw = args.bootstrap > 0 ? 24 : 8;
  std::string out = fmt::format("{}: {} images", args.input, t.rows.size());
  if (args.bootstrap > 0) {
    out += fmt::format(", {:g}% bootstrap intervals ({} resamples, seed {})", 100 * args.confidence,
                       args.bootstrap, args.seed);
  }
  out += fmt::format("\n{:<{}}  {:>7}", "group", gw, "n");
  for (const char* n : names) out += fmt::format("  {:>{}}", n, cw);
  out += "\n";
  std::string notes;
  for (const auto& [name, e] : rows) {
    out += fmt::format("{:<{}}  {:>7}", name, gw, e.n);
    for (const auto& c : detail::cells(e)) out += fmt::format("  {:>{}}", c, cw);
    out += "\n";
    for (const auto* f : {&e.fit4, &e.fit5}) {
      if (f->status != ohem::FitStatus::Converged) {
        notes += fmt::format("note: {}: {} fit {}: {}\n", name, ohem::to_string(f->model),
                             ohem::to_string(f->status), f->message);
      }
    }
  }
  out += notes;

  if (!args.no_json) {
    const std::string path = args.json.empty() ? stem(args.input) + ".metrics.json" : args.json;
    std::string j =
        fmt::format("{{\n  \"file\": {},\n  \"images\": {},\n", json_string(args.input), t.rows.size());
    j += fmt::format("  \"bootstrap\": {{\"samples\": {}, \"confidence\": {}, \"seed\": {}}},\n",
                     args.bootstrap, json_number(args.confidence), args.seed);
    j += "  \"overall\": " + detail::json_evaluation(rows[0].second, "  ") + ",\n  \"groups\": {";
    for (size_t k = 1; k < rows.size(); ++k) {
      j += fmt::format("{}\n    {}: {}", k > 1 ? "," : "", json_string(rows[k].first),
                       detail::json_evaluation(rows[k].second, "    "));
    }
    j += rows.size() > 1 ? "\n  }\n}\n" : "}\n}\n";
    write_atomically(path, j);
    out += fmt::format("wrote {}\n", path);
  }
  return out;
}

/// The gMAD mode: returns the summary printed to stdout and writes the pairs' CSV and HTML page.
inline std::string gmad_file(const Args& args) {
  const CsvTable t = read_csv(args.input);
  TORCH_CHECK(t.header.size() == 3, args.input,
              ":1:1: --gmad expects the columns name,A,B (two models' scores), got ", t.header.size(),
              " columns");
  TORCH_CHECK(t.rows.size() >= 2, args.input, ": needs at least 2 images, got ", t.rows.size());
  const auto a = numbers(t, 1), b = numbers(t, 2);
  const std::string na = t.header[1], nb = t.header[2];
  ohem::GmadCompetition comp;
  try {
    comp = ohem::gmad_competition(a, b, ohem::GmadOptions().levels(args.levels).window(args.window));
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, args.input, ": ", e.what_without_backtrace());
  }
  const std::string pairs_path = args.pairs.empty() ? stem(args.input) + ".gmad.csv" : args.pairs;
  const std::string html_path = args.html.empty() ? stem(args.input) + ".gmad.html" : args.html;
  auto name = [&](int64_t i) { return t.rows[static_cast<size_t>(i)][0]; };
  auto src = [&](int64_t i) {
    const std::string root = args.image_root;
    const std::string p =
        root.empty() || root == "." ? name(i) : root + (root.back() == '/' ? "" : "/") + name(i);
    return args.embed_images ? data_uri(p) : url_path(p);
  };

  std::string csv =
      "defender,attacker,level,center,lower,upper,count,image_high,image_low,defender_high,defender_low,"
      "attacker_high,attacker_low,gap,normalized_gap\n";
  std::string summary = fmt::format("{}: {} images, {} levels, window {}\n", args.input, t.rows.size(),
                                    args.levels, args.window);
  std::string html = fmt::format(
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>gMAD: {0} vs {1}</title>\n<style>\n"
      "body{{font-family:sans-serif;margin:1em 2em}} h2{{margin-top:1.5em}}\n"
      ".pair{{display:flex;gap:1em;align-items:flex-start;margin:.5em 0 1.5em}}\n"
      "figure{{margin:0;max-width:48%}} img{{max-width:100%;max-height:480px;border:1px solid #ccc}}\n"
      "figcaption{{font-size:90%;color:#333}} .meta{{color:#555}}\n</style></head><body>\n"
      "<h1>gMAD: {0} vs {1}</h1>\n<p class=\"meta\">{2}: {3} images, {4} levels, window {5} of a level. In "
      "each "
      "level the defender rates both images alike; the attacker rates the left one best and the right one "
      "worst.</p>\n",
      html_escape(na), html_escape(nb), html_escape(args.input), t.rows.size(), args.levels, args.window);
  for (const auto& [defender, attacker, result] :
       {std::tuple<std::string, std::string, const ohem::GmadResult*>{na, nb, &comp.a_defends},
        std::tuple<std::string, std::string, const ohem::GmadResult*>{nb, na, &comp.b_defends}}) {
    summary += fmt::format("{} defends, {} attacks: mean normalized gap {:.4f}\n", defender, attacker,
                           result->mean_normalized_gap());
    html += fmt::format("<h2>{} defends, {} attacks (mean normalized gap {:.4f})</h2>\n",
                        html_escape(defender), html_escape(attacker), result->mean_normalized_gap());
    for (const auto& p : result->pairs) {
      if (!p.found()) {
        summary += fmt::format("  level {}: {} image(s) in [{:.4g}, {:.4g}], no pair\n", p.level, p.count,
                               p.lower, p.upper);
        html += fmt::format("<h3>Level {} ({} in [{:.4g}, {:.4g}]): {} image(s), no pair</h3>\n", p.level,
                            html_escape(defender), p.lower, p.upper, p.count);
        continue;
      }
      csv += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", csv_field(defender),
                         csv_field(attacker), p.level, p.center, p.lower, p.upper, p.count,
                         csv_field(name(p.high)), csv_field(name(p.low)), p.defender_high, p.defender_low,
                         p.attacker_high, p.attacker_low, p.gap, p.normalized_gap);
      summary += fmt::format("  level {}: {} images, {} vs {}, gap {:.4g} ({:.4f})\n", p.level, p.count,
                             name(p.high), name(p.low), p.gap, p.normalized_gap);
      html += fmt::format("<h3>Level {} ({} in [{:.4g}, {:.4g}], {} images): gap {:.4g} ({:.4f})</h3>\n",
                          p.level, html_escape(defender), p.lower, p.upper, p.count, p.gap, p.normalized_gap);
      html += "<div class=\"pair\">\n";
      for (auto [i, d, s] : {std::tuple<int64_t, double, double>{p.high, p.defender_high, p.attacker_high},
                             std::tuple<int64_t, double, double>{p.low, p.defender_low, p.attacker_low}}) {
        html += fmt::format(
            "<figure><img src=\"{}\" alt=\"{}\"><figcaption>{}<br>{}: {:.4g} &middot; {}: "
            "{:.4g}</figcaption></figure>\n",
            html_escape(src(i)), html_escape(name(i)), html_escape(name(i)), html_escape(defender), d,
            html_escape(attacker), s);
      }
      html += "</div>\n";
    }
  }
  html += "</body></html>\n";
  write_atomically(pairs_path, csv);
  write_atomically(html_path, html);
  summary += fmt::format("wrote {} and {}\n", pairs_path, html_path);
  return summary;
}

/// Runs the tool: returns the exit status (0, or 1 after an error, whose message goes to `err`) and
/// appends what it prints to `out`.
/// Example: `std::string out, err; int rc = ohem_eval::run({"scores.csv", "--bootstrap", "0"}, out, err);`
inline int run(const std::vector<std::string>& argv, std::string& out, std::string& err) {
  try {
    const Args args = parse_args(argv);
    if (args.help) {
      out += usage();
      return 0;
    }
    out += args.gmad ? gmad_file(args) : evaluate_file(args);
    return 0;
  } catch (const c10::Error& e) {
    err += std::string(e.what_without_backtrace()) + "\n";
    return 1;
  }
}

}  // namespace ohem_eval
