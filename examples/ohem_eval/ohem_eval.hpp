#pragma once
/// @file
/// The `ohem-eval` command-line tool as a library (main.cpp only calls `ohem_eval::run`), so that the
/// test suite can run it in-process: columns read by header name (examples/toolkit/csv.hpp), outputs
/// checked before any work and written atomically (examples/toolkit/files.hpp), the metrics table and
/// JSON report (nlohmann/json), a bootstrap on --threads threads with a progress bar, and the gMAD pairs
/// as CSV and as a self-contained HTML page. Options are parsed by CLI11. See docs/metrics.md.

#include <toolkit/csv.hpp>
#include <toolkit/files.hpp>
#include <toolkit/html.hpp>
#include <toolkit/io.hpp>
#include <toolkit/threads.hpp>

#include <ohem/csv.hpp>
#include <ohem/gmad.hpp>
#include <ohem/metrics.hpp>
#include <ohem/runtime.hpp>

#include <fmt/format.h>
#include <torch/torch.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <unistd.h>
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <new>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

namespace ohem_eval {

using ohem_examples::CsvFile;

/// A column role of the evaluation input and the header names (case-insensitive) that select it.
struct ColumnRole {
  const char* role;
  std::vector<std::string> aliases;
  bool required;
};

/// The columns `ohem-eval` reads (docs/metrics.md, "Input").
inline const std::vector<ColumnRole>& eval_columns() {
  static const std::vector<ColumnRole> roles{
      {"name",
       {"name", "image", "image_name", "image name", "img", "file", "filename", "path", "dist_img"},
       true},
      {"mos", {"mos", "score", "dmos", "label", "subjective", "gt", "ground_truth"}, true},
      {"prediction", {"prediction", "pred", "predicted", "predictions", "output", "y_pred"}, true},
      {"group", {"group", "type", "distortion", "distortion_type", "category"}, false}};
  return roles;
}

/// Returns the header names (aliases) of column role `role` (see `eval_columns`).
inline const std::vector<std::string>& role_aliases(const std::string& role) {
  for (const auto& r : eval_columns()) {
    if (role == r.role) return r.aliases;
  }
  TORCH_INTERNAL_ASSERT(false, "no column role ", role);
  return eval_columns().front().aliases;
}

/// The command line, parsed.
struct Args {
  std::string input;     ///< SCORES.csv, or --gmad's A.csv
  std::string second;    ///< --gmad's B.csv (empty with one file)
  std::string mos;       ///< --mos: the MOS file joined with SCORES.csv by name
  bool partial = false;  ///< a join evaluates the names in both files
  std::string names;     ///< --gmad: the models' names, "A,B"
  std::string group;     ///< --group: the group column's header name; "none": no groups; empty: by alias
  bool gmad = false;
  std::string json;  ///< empty: <input stem>.metrics.json
  bool no_json = false;
  int64_t bootstrap = -1;  ///< -1: scaled with the number of images (`default_bootstrap`)
  double confidence = 0.95;
  uint64_t seed = 0;
  int64_t threads = 1;  ///< set by add_threads_option (default_threads())
  int64_t levels = 5;
  double window = 0.2;
  std::string pairs, html;  ///< empty: <input stem>.gmad.csv / .gmad.html
  std::string image_root = ".";
  bool embed_images = false;
  bool no_header = false;
  std::string columns;  ///< with --no-header: the roles in file order
  bool allow_duplicates = false;
  std::string progress = "auto";
};

/// The most resamples --bootstrap accepts.
constexpr int64_t kMaxBootstrap = 1'000'000;

/// The default number of resamples for n images: 1000 up to 20,000 images, then 2·10^7 / n rounded to
/// hundreds, at least 100 (about 2·10^7 resampled pairs in all: seconds to a minute).
inline int64_t default_bootstrap(int64_t n) {
  if (n <= 20000) return 1000;
  return std::max<int64_t>(100, (20'000'000 / n) / 100 * 100);
}

/// One CSV field, quoted where it must be: the library's writer (every CSV ohem writes uses it).
using ohem::csv_field;

/// Builds the CLI11 parser for `a` (the option names of earlier versions are kept).
inline void describe(CLI::App& app, Args& a) {
  app.description(
      "IQA metrics with bootstrap intervals, and gMAD pairs, from CSV files (docs/metrics.md).\n\n"
      "Evaluation (default): SCORES.csv has a header naming the columns name, mos, prediction and\n"
      "optionally group, in any order (case-insensitive; aliases: name|image|image_name|image name|\n"
      "img|file|filename|path|dist_img, mos|score|dmos|label|subjective|gt|ground_truth,\n"
      "prediction|pred|predicted|predictions|output|y_pred, group|type|distortion|distortion_type|\n"
      "category). Prints SRCC, KRCC, PLCC, and PLCC and RMSE after 4- and 5-parameter logistic fits,\n"
      "with bootstrap intervals, overall and per group; writes the same as JSON.\n\n"
      "Join (--mos MOS.csv): SCORES.csv has name and prediction columns (as ohem-score writes them) and\n"
      "optionally group; MOS.csv has name and mos columns and optionally group (other columns are\n"
      "ignored: a dataset's metadata file works). Rows are joined by name (compared exactly), in the\n"
      "order of SCORES.csv; a name in one file only is an error unless --partial.\n\n"
      "gMAD (--gmad): SCORES.csv has a name column and two models' score columns (the header names the\n"
      "models), or two files A.csv B.csv, one per model, with name and prediction columns, joined by\n"
      "name (the file names name the models; --names A,B to choose). Runs gMAD with A defending and B\n"
      "attacking, and the reverse; writes the selected pairs as CSV and as a self-contained HTML page.");
  app.get_formatter()->column_width(28);
  app.add_option("SCORES.csv", a.input, "input CSV file (--gmad: the one file, or A.csv)")->required();
  app.add_option("B.csv", a.second, "--gmad: B.csv, the second model's name,prediction file");
  app.add_option("--mos", a.mos,
                 "MOS file joined with SCORES.csv by name (SCORES.csv then has no mos column)");
  app.add_flag("--partial", a.partial,
               "a join evaluates the names found in both files and reports how many rows of each were "
               "left out (default: names missing from either file are an error)");
  app.add_option("--group", a.group,
                 "the group column by its header name, where the aliases find several (\"none\": no groups)");
  app.add_option("--names", a.names,
                 "gMAD: the two models' names, A,B (default: the header or the file names)");
  app.add_flag("--gmad", a.gmad, "gMAD mode (see above)");
  app.add_flag("--no-header", a.no_header,
               "the file has no header row: columns in the order of --columns (default "
               "name,mos,prediction[,group]; --gmad: name,A,B)");
  app.add_option("--columns", a.columns,
                 "with --no-header: the columns' roles in file order, e.g. name,prediction,mos,group");
  app.add_flag("--allow-duplicates", a.allow_duplicates,
               "warn about repeated image names instead of stopping with an error (one merged file only; "
               "a join needs each name once in each file)");
  auto* json = app.add_option("--json", a.json, "JSON report (default: SCORES.metrics.json)");
  app.add_flag("--no-json", a.no_json, "do not write the JSON report")->excludes(json);
  app.add_option("--bootstrap", a.bootstrap,
                 "bootstrap resamples for the intervals, 0 for none (default: 1000 up to 20,000 images, "
                 "then 2e7/images, at least 100)")
      ->check(CLI::Range(int64_t{0}, kMaxBootstrap));
  app.add_option("--confidence", a.confidence, "coverage of the intervals, in (0, 1) (default 0.95)")
      ->check(CLI::Validator(
          [](std::string& v) {
            const double c = std::strtod(v.c_str(), nullptr);
            return c > 0 && c < 1 ? std::string() : "must be in (0, 1), got " + v;
          },
          "in (0, 1)"));
  app.add_option("--seed", a.seed, "seed of the resampling (default 0)");
  ohem_examples::add_threads_option(
      app, a.threads,
      "threads of the bootstrap and the point estimate's two fits (results do not depend on it)");
  app.add_option("--progress", a.progress, "progress bar on stderr: auto (on a terminal), on, off")
      ->check(CLI::IsMember({"auto", "on", "off"}));
  app.add_option("--levels", a.levels, "gMAD: quality levels (default 5)")
      ->check(CLI::Range(int64_t{1}, int64_t{10000}));
  app.add_option("--window", a.window,
                 "gMAD: window width as a fraction of a level's width, in (0, 1] (default 0.2)")
      ->check(CLI::Validator(
          [](std::string& v) {
            const double w = std::strtod(v.c_str(), nullptr);
            return w > 0 && w <= 1 ? std::string() : "must be in (0, 1], got " + v;
          },
          "in (0, 1]"));
  app.add_option("--pairs", a.pairs, "gMAD: CSV of the pairs (default: SCORES.gmad.csv; A_vs_B.gmad.csv)");
  app.add_option("--html", a.html, "gMAD: HTML page (default: SCORES.gmad.html; A_vs_B.gmad.html)");
  app.add_option("--image-root", a.image_root,
                 "gMAD: directory the image names are relative to, as written in the page (default: .)");
  app.add_flag("--embed-images", a.embed_images,
               "gMAD: embed the images in the page (base64; image files under --image-root only)");
}

/// Returns the usage text (CLI11's generated help).
inline std::string usage() {
  Args a;
  CLI::App app("", "ohem-eval");
  describe(app, a);
  return app.help();
}

/// Returns the input path without a trailing ".csv".
inline std::string stem(const std::string& path) {
  const std::string ext = ".csv";
  if (path.size() > ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0) {
    return path.substr(0, path.size() - ext.size());
  }
  return path;
}

/// Parses field `c` of record `r` as a finite number; throws naming file, line, column and header.
inline double number_at(const CsvFile& t, size_t r, size_t c, const std::string& column) {
  const std::string& f = t.rows[r].second[c];
  double x = 0.0;
  TORCH_CHECK(ohem_examples::parse_decimal(f, x), t.where(r, c), ": column ", c + 1, " (\"", column,
              "\"): expected a finite number, got \"", f, "\"");
  return x;
}

/// Returns the numbers of column `c` (see `number_at`).
inline std::vector<double> numbers(const CsvFile& t, size_t c, const std::string& column) {
  std::vector<double> out(t.rows.size());
  for (size_t r = 0; r < t.rows.size(); ++r) out[r] = number_at(t, r, c, column);
  return out;
}

/// The input table with the columns' indices by role.
struct Input {
  CsvFile csv;
  std::map<std::string, int64_t> column;     ///< role -> index (absent if not present)
  std::map<std::string, std::string> label;  ///< role -> the header's name (or the role without one)
  std::vector<std::string> warnings;
};

/// Returns the column named by `aliases`; the error adds a hint when the file may lack a header.
inline int64_t require(const CsvFile& t, const std::vector<std::string>& aliases, const char* role,
                       const Args& args) {
  try {
    return t.require_column(aliases, role);
  } catch (const c10::Error& e) {
    // A header with a prediction column but no MOS column: most likely ohem-score's name,prediction file.
    const bool scores_only =
        std::string(role) == "mos" && !args.no_header && t.column(role_aliases("prediction")) >= 0;
    TORCH_CHECK(false, e.what_without_backtrace(),
                scores_only
                    ? std::string("; to join a name,prediction file (as ohem-score writes) with a MOS file "
                                  "by name, pass --mos MOS.csv")
                : args.no_header ? std::string()
                                 : std::string("; if the file has no header row, pass --no-header"));
  }
  return -1;
}

/// Returns the group column of `t`'s header (or --columns' names): the column --group names, else the one
/// the group aliases find; -1 if there is none or --group is "none". Adds the other columns the aliases
/// match to `others` (--group chose among them: they are ignored). Throws if the aliases match several
/// columns and --group does not choose, or if --group names a column `t` lacks and `need` is set.
inline int64_t group_column(const CsvFile& t, const Args& args, bool need, std::vector<size_t>& others) {
  // A copy: GCC 14 (-Wdangling-reference) takes a reference bound here for one to the temporary argument.
  const std::vector<std::string> aliases = role_aliases("group");
  if (args.group.empty()) {
    try {
      return t.column(aliases);
    } catch (const c10::Error& e) {
      TORCH_CHECK(false, e.what_without_backtrace(), "; choose one with --group NAME (or --group none)");
    }
  }
  const bool none = CsvFile::lower(args.group) == "none";
  const int64_t c = none ? -1 : t.column(std::vector<std::string>{args.group});
  TORCH_CHECK(c >= 0 || none || !need, t.where(t.header_positions.empty() ? 1 : t.header_positions[0].line),
              ": --group \"", args.group, "\": no such column in the header");
  for (size_t i = 0; i < t.header.size(); ++i) {
    const std::string h = CsvFile::lower(t.header[i]);
    const bool alias = std::any_of(aliases.begin(), aliases.end(),
                                   [&](const std::string& a) { return CsvFile::lower(a) == h; });
    if (alias && static_cast<int64_t>(i) != c) others.push_back(i);
  }
  return c;
}

/// Returns field `cn` of every record (the image names); throws naming the file, line and column of an
/// empty one.
inline std::vector<std::string> image_names(const CsvFile& t, size_t cn) {
  std::vector<std::string> names(t.rows.size());
  for (size_t r = 0; r < t.rows.size(); ++r) {
    names[r] = t.rows[r].second[cn];
    TORCH_CHECK(!ohem_examples::trim(names[r]).empty(), t.where(r, cn), ": empty image name");
  }
  return names;
}

/// Returns `t` without its records (what the column lookups read): a copy of a million-row table costs
/// more than reading it.
inline CsvFile header_of(const CsvFile& t) {
  CsvFile h;
  h.path = t.path;
  h.header = t.header;
  h.header_positions = t.header_positions;
  return h;
}

/// Reads the input CSV and maps its columns to `roles` (by header name, or by --columns with
/// --no-header); for --gmad the two columns other than the name are the models. Throws naming the file,
/// line and column of a problem; an unknown or missing column, or a repeated image name (unless
/// --allow-duplicates), is an error.
inline Input read_input(const Args& args) {
  Input in;
  in.csv = ohem_examples::read_csv(args.input,
                                   ohem_examples::CsvOptions().header(!args.no_header).same_width(true));
  const CsvFile& t = in.csv;
  TORCH_CHECK(args.columns.empty() || args.no_header,
              "ohem-eval: --columns is for files without a header "
              "(--no-header); a header names the columns itself");
  const size_t width = args.no_header ? t.rows.front().second.size() : t.header.size();
  if (args.gmad) {
    std::vector<std::string> names =
        args.no_header
            ? ohem_examples::split_csv_line(args.columns.empty() ? "name,A,B" : args.columns, "--columns")
            : t.header;
    TORCH_CHECK(names.size() == 3 && width == 3, args.input,
                ":1:1: --gmad expects 3 columns (name and two models' ", "scores), got ", width,
                width == 2 ? "; for one name,prediction file per model, pass both: --gmad A.csv B.csv" : "");
    const CsvFile hdr = [&] {
      CsvFile h = header_of(t);
      h.header = names;
      if (h.header_positions.empty()) h.header_positions.assign(3, {1, 1});
      return h;
    }();
    const int64_t cn = require(hdr, eval_columns()[0].aliases, "name", args);
    int k = 0;
    for (int64_t c = 0; c < 3; ++c) {
      if (c == cn) continue;
      const std::string role = k++ == 0 ? "A" : "B";
      in.column[role] = c;
      in.label[role] = names[c];
    }
    in.column["name"] = cn;
    in.label["name"] = names[cn];
    TORCH_CHECK(CsvFile::lower(in.label["A"]) != CsvFile::lower(in.label["B"]), args.input,
                ":1: the two models' columns have the same name \"", in.label["A"], "\"");
  } else {
    std::vector<std::string> names;
    if (args.no_header) {
      names = ohem_examples::split_csv_line(
          args.columns.empty() ? (width == 4 ? "name,mos,prediction,group" : "name,mos,prediction")
                               : args.columns,
          "--columns");
      TORCH_CHECK(names.size() == width, args.input, ": --columns names ", names.size(),
                  " columns but the file has ", width);
    } else {
      names = t.header;
    }
    CsvFile hdr = header_of(t);
    hdr.header = names;
    if (args.no_header) hdr.header_positions.assign(names.size(), {1, 1});
    std::vector<bool> used(names.size(), false);
    for (const auto& r : eval_columns()) {
      std::vector<size_t> others;
      const int64_t c =
          r.required ? require(hdr, r.aliases, r.role, args) : group_column(hdr, args, true, others);
      for (size_t o : others) used[o] = true;
      if (c < 0) continue;
      in.column[r.role] = c;
      in.label[r.role] = names[c];
      used[c] = true;
    }
    for (size_t c = 0; c < names.size(); ++c) {
      if (used[c]) continue;
      const std::string where = args.no_header ? std::string("--columns") : t.where(static_cast<int64_t>(1));
      TORCH_CHECK(false, where, ": unknown column ", c + 1, " \"", names[c],
                  "\" (expected name, mos, prediction and optionally group; see --help for the aliases",
                  args.no_header ? "" : "; a file without a header row needs --no-header", ")");
    }
  }
  TORCH_CHECK(t.rows.size() >= 2, args.input, ": needs at least 2 images, got ", t.rows.size());
  // Repeated image names.
  const size_t cn = static_cast<size_t>(in.column.at("name"));
  const std::vector<std::string> names = image_names(t, cn);
  for (const ohem_examples::RepeatedKey& k : ohem_examples::repeated_keys(names)) {
    const std::string msg = fmt::format("{}: image \"{}\" appears again (first on line {})",
                                        t.where(k.row, cn), names[k.row], t.rows[k.first].first);
    TORCH_CHECK(args.allow_duplicates, msg, "; pass --allow-duplicates to keep every row");
    in.warnings.push_back("warning: " + msg);
  }
  return in;
}

/// Checks the combination of options that CLI11 cannot express, before any file is read: two files only
/// with --gmad, --mos only for the evaluation, --partial only for a join, --names only with --gmad, and
/// no --no-header, --columns or --allow-duplicates in a join.
inline void check_modes(const Args& args) {
  const bool two = !args.second.empty();
  const bool join = two || !args.mos.empty();
  TORCH_CHECK(!two || args.gmad,
              "ohem-eval: two input files are for --gmad (one name,prediction file per model); ",
              "to join predictions with MOS values, pass SCORES.csv --mos MOS.csv");
  TORCH_CHECK(
      args.mos.empty() || !args.gmad,
      "ohem-eval: --mos is for the evaluation; --gmad compares two models' predictions and reads no MOS");
  TORCH_CHECK(!args.partial || join,
              "ohem-eval: --partial is for a join (SCORES.csv --mos MOS.csv, or --gmad A.csv B.csv)");
  TORCH_CHECK(args.names.empty() || args.gmad, "ohem-eval: --names is for --gmad (the models' names)");
  TORCH_CHECK(args.group.empty() || !args.gmad,
              "ohem-eval: --group is for the evaluation; --gmad reads no groups");
  TORCH_CHECK(
      !join || (!args.no_header && args.columns.empty()),
      "ohem-eval: --no-header and --columns are for one merged file; the files of a join need a header "
      "row (ohem-score writes one)");
  TORCH_CHECK(
      !join || !args.allow_duplicates,
      "ohem-eval: --allow-duplicates is for one merged file; a join by name needs each name once in each "
      "file (a repeated name cannot be paired with a row of the other file)");
}

/// What one file of a join must, may and must not have.
struct SideSpec {
  std::vector<std::string> required;           ///< roles
  bool group = false;                          ///< may have a group column (`group_column`)
  std::map<std::string, std::string> refused;  ///< role -> why a column for it is an error
  bool ignore_others = false;                  ///< columns of no role are ignored (else an error)
  std::string expected;                        ///< the columns expected, for the unknown-column error
};

/// One file of a join: its table and the columns it supplies, by role.
struct Side {
  CsvFile csv;
  std::map<std::string, int64_t> column;     ///< role -> index
  std::map<std::string, std::string> label;  ///< role -> the header's name
};

/// Reads one file of a join (with a header row; every record as wide as it) and finds its columns as
/// `spec` says. Throws naming the file, line and column of a missing, unknown or refused column.
inline Side read_side(const std::string& path, const SideSpec& spec, const Args& args) {
  Side s;
  s.csv = ohem_examples::read_csv(path, ohem_examples::CsvOptions().header(true).same_width(true));
  const CsvFile& t = s.csv;
  std::vector<bool> used(t.header.size(), false);
  auto take = [&](const std::string& role, int64_t c) {
    s.column[role] = c;
    s.label[role] = t.header[static_cast<size_t>(c)];
    used[static_cast<size_t>(c)] = true;
  };
  for (const auto& role : spec.required) take(role, t.require_column(role_aliases(role), role));
  if (spec.group) {
    std::vector<size_t> others;
    const int64_t c = group_column(t, args, false, others);
    if (c >= 0) take("group", c);
    for (size_t o : others) used[o] = true;
  }
  for (const auto& [role, why] : spec.refused) {
    const int64_t c = t.column(role_aliases(role));
    if (c < 0) continue;
    const auto& p = t.header_positions[static_cast<size_t>(c)];
    TORCH_CHECK(false, path, ":", p.line, ":", p.column, ": column ", c + 1, " (\"",
                t.header[static_cast<size_t>(c)], "\") is a ", role, " column: ", why);
  }
  for (size_t c = 0; c < used.size() && !spec.ignore_others; ++c) {
    if (used[c]) continue;
    const auto& p = t.header_positions[c];
    TORCH_CHECK(false, path, ":", p.line, ":", p.column, ": unknown column ", c + 1, " \"", t.header[c],
                "\" (expected ", spec.expected, "; see --help for the aliases)");
  }
  return s;
}

/// The rows of two files paired by name, in the first file's order.
struct Joined {
  std::vector<std::pair<size_t, size_t>> rows;     ///< (record in the first file, record in the second)
  size_t first_rows = 0, second_rows = 0;          ///< the files' records
  size_t first_left_out = 0, second_left_out = 0;  ///< records whose name the other file lacks
};

/// Returns the names of `s`'s records; throws naming the file, line and column of an empty or repeated
/// name (a join cannot tell which of two rows of one name goes with the other file's row).
inline std::vector<std::string> join_names(const Side& s) {
  const CsvFile& t = s.csv;
  const size_t cn = static_cast<size_t>(s.column.at("name"));
  const std::vector<std::string> names = image_names(t, cn);
  for (const ohem_examples::RepeatedKey& k : ohem_examples::repeated_keys(names)) {
    TORCH_CHECK(false, t.where(k.row, cn), ": image \"", names[k.row], "\" appears again (first on line ",
                t.rows[k.first].first, "); a join by name needs each name once in each file");
  }
  return names;
}

/// Pairs the records of `a` and `b` by name (compared exactly, as written). A name in one file only is an
/// error that counts them and lists the first few of each file with file, line and column, unless
/// `partial`: then those records are left out and counted.
inline Joined join_by_name(const Side& a, const Side& b, bool partial) {
  const auto na = join_names(a), nb = join_names(b);
  std::map<std::string, size_t> in_b;
  for (size_t r = 0; r < nb.size(); ++r) in_b.emplace(nb[r], r);
  Joined j;
  j.first_rows = na.size();
  j.second_rows = nb.size();
  std::vector<bool> matched(nb.size(), false);
  std::vector<size_t> only_a, only_b;
  for (size_t r = 0; r < na.size(); ++r) {
    const auto it = in_b.find(na[r]);
    if (it == in_b.end()) {
      only_a.push_back(r);
      continue;
    }
    j.rows.emplace_back(r, it->second);
    matched[it->second] = true;
  }
  for (size_t r = 0; r < nb.size(); ++r) {
    if (!matched[r]) only_b.push_back(r);
  }
  j.first_left_out = only_a.size();
  j.second_left_out = only_b.size();
  if (partial || (only_a.empty() && only_b.empty())) return j;
  const std::string& pa = a.csv.path;
  const std::string& pb = b.csv.path;
  const size_t ca = static_cast<size_t>(a.column.at("name")), cb = static_cast<size_t>(b.column.at("name"));
  constexpr size_t kListed = 5;
  std::string list;
  auto add = [&](const Side& s, size_t c, const std::vector<size_t>& rows,
                 const std::vector<std::string>& names, const std::string& other) {
    for (size_t i = 0; i < std::min(rows.size(), kListed); ++i) {
      list += fmt::format("\n  {}: \"{}\" is not in {}", s.csv.where(rows[i], c), names[rows[i]], other);
    }
    if (rows.size() > kListed)
      list += fmt::format("\n  ... and {} more in {}", rows.size() - kListed, s.csv.path);
  };
  add(a, ca, only_a, na, pb);
  add(b, cb, only_b, nb, pa);
  // The likeliest cause when both sides have leftovers: the same image written with and without a folder.
  std::map<std::string, size_t> b_by_file;
  for (size_t r : only_b) b_by_file.emplace(std::filesystem::path(nb[r]).filename().string(), r);
  for (size_t r : only_a) {
    const auto it = b_by_file.find(std::filesystem::path(na[r]).filename().string());
    if (it == b_by_file.end()) continue;
    list += fmt::format(
        "\nhint: names are compared exactly as written: \"{}\" ({}) and \"{}\" ({}) differ in their "
        "folders",
        na[r], a.csv.where(a.csv.rows[r].first), nb[it->second], b.csv.where(b.csv.rows[it->second].first));
    break;
  }
  TORCH_CHECK(false, "ohem-eval: the files do not list the same images: ", only_a.size(), " of the ",
              na.size(), " names in ", pa, " are not in ", pb, ", and ", only_b.size(), " of the ", nb.size(),
              " names in ", pb, " are not in ", pa, "; --partial evaluates the ", j.rows.size(),
              " images in both", list);
  return j;
}

/// The data of the evaluation, from one merged file or from a join.
struct EvalData {
  std::string source;  ///< what the first line of the table names: the file, or the two files joined
  std::vector<double> mos, pred;
  std::vector<std::string> groups;           ///< one per image; empty without a group column
  std::map<std::string, std::string> label;  ///< role -> the header's name
  std::vector<std::string> notes;            ///< printed below the first line (--partial's counts)
  std::vector<std::string> warnings;         ///< printed to stderr
  nlohmann::json join;                       ///< the join, for the JSON report (null for one file)
};

/// Reads the evaluation's data from one merged file (`read_input`).
inline EvalData read_merged_eval(const Args& args) {
  const Input in = read_input(args);
  const CsvFile& t = in.csv;
  EvalData d;
  d.source = args.input;
  d.label = in.label;
  d.warnings = in.warnings;
  d.mos = numbers(t, in.column.at("mos"), in.label.at("mos"));
  d.pred = numbers(t, in.column.at("prediction"), in.label.at("prediction"));
  if (in.column.count("group")) {
    const size_t cg = static_cast<size_t>(in.column.at("group"));
    for (const auto& row : t.rows) d.groups.push_back(row.second[cg]);
  }
  return d;
}

/// Returns the note that says what --partial left out of a join ("" when nothing was).
inline std::string partial_note(const Joined& j, const std::string& first, const std::string& second) {
  if (j.first_left_out == 0 && j.second_left_out == 0) return "";
  return fmt::format(
      "note: --partial: {} images in both files; left out {} of the {} rows of {} and {} of the {} "
      "rows of {} (names not in the other file)",
      j.rows.size(), j.first_left_out, j.first_rows, first, j.second_left_out, j.second_rows, second);
}

/// Reads the evaluation's data from SCORES.csv (name, prediction, optionally group) joined by name with
/// --mos MOS.csv (name, mos, optionally group; other columns ignored), in the order of SCORES.csv.
inline EvalData read_joined_eval(const Args& args) {
  SideSpec scores_spec;
  scores_spec.required = {"name", "prediction"};
  scores_spec.group = true;
  scores_spec.refused["mos"] =
      "ambiguous with --mos " + args.mos +
      " (which MOS to use?); drop the column, or evaluate the file alone without --mos";
  scores_spec.expected = "name, prediction and optionally group, with --mos";
  SideSpec mos_spec;
  mos_spec.required = {"name", "mos"};
  mos_spec.group = true;
  mos_spec.refused["prediction"] =
      "ambiguous with the predictions of " + args.input + " (which to evaluate?); drop the column";
  mos_spec.ignore_others = true;
  const Side s = read_side(args.input, scores_spec, args);
  const Side m = read_side(args.mos, mos_spec, args);
  TORCH_CHECK(args.group.empty() || CsvFile::lower(args.group) == "none" || s.column.count("group") ||
                  m.column.count("group"),
              "ohem-eval: --group \"", args.group, "\": no such column in ", args.input, " or ", args.mos);
  if (s.column.count("group") && m.column.count("group")) {
    const auto& p = m.csv.header_positions[static_cast<size_t>(m.column.at("group"))];
    TORCH_CHECK(false, args.mos, ":", p.line, ":", p.column, ": column \"", m.label.at("group"),
                "\" is a group column, and so is \"", s.label.at("group"), "\" of ", args.input,
                ": ambiguous (which groups to use?); keep one of them");
  }
  const Joined j = join_by_name(s, m, args.partial);
  TORCH_CHECK(j.rows.size() >= 2, args.input, " and ", args.mos,
              ": needs at least 2 images in both files, got ", j.rows.size());
  EvalData d;
  d.source = args.input + " joined with " + args.mos + " by name";
  d.label = {
      {"name", s.label.at("name")}, {"prediction", s.label.at("prediction")}, {"mos", m.label.at("mos")}};
  const Side* g = s.column.count("group") ? &s : m.column.count("group") ? &m : nullptr;
  if (g) d.label["group"] = g->label.at("group");
  const size_t cp = static_cast<size_t>(s.column.at("prediction")),
               cm = static_cast<size_t>(m.column.at("mos"));
  for (const auto& [rs, rm] : j.rows) {
    d.pred.push_back(number_at(s.csv, rs, cp, d.label.at("prediction")));
    d.mos.push_back(number_at(m.csv, rm, cm, d.label.at("mos")));
    if (g)
      d.groups.push_back(g->csv.rows[g == &s ? rs : rm].second[static_cast<size_t>(g->column.at("group"))]);
  }
  const std::string note = partial_note(j, args.input, args.mos);
  if (!note.empty()) d.notes.push_back(note);
  d.join = {{"by", "name"},
            {"partial", args.partial},
            {"images", j.rows.size()},
            {"scores", {{"file", args.input}, {"rows", j.first_rows}, {"left_out", j.first_left_out}}},
            {"mos", {{"file", args.mos}, {"rows", j.second_rows}, {"left_out", j.second_left_out}}}};
  return d;
}

/// The data of gMAD, from one three-column file or from two files joined by name.
struct GmadData {
  std::string source;              ///< what the summary names: the file, or the two files joined
  std::vector<std::string> names;  ///< the images
  std::vector<std::string> where;  ///< "file:line" of each image's record (for --embed-images errors)
  std::vector<double> a, b;        ///< the two models' scores
  std::string label_a, label_b;    ///< the models' names
  std::string note;                ///< --partial's counts ("" when nothing was left out)
  std::vector<std::string> warnings;
};

/// Returns the --names pair, or the defaults `a`, `b` without --names; throws if the names are not two
/// different non-empty names.
inline std::pair<std::string, std::string> model_names(const Args& args, const std::string& a,
                                                       const std::string& b, const std::string& from) {
  std::pair<std::string, std::string> n{a, b};
  if (!args.names.empty()) {
    const auto v = ohem_examples::split_csv_line(args.names, "--names");
    TORCH_CHECK(v.size() == 2 && !v[0].empty() && !v[1].empty(),
                "ohem-eval: --names expects two names, A,B (e.g. --names baseline,ohem), got \"", args.names,
                "\"");
    n = {v[0], v[1]};
  }
  TORCH_CHECK(CsvFile::lower(n.first) != CsvFile::lower(n.second), from,
              ": the two models have the same name \"", n.first, "\"",
              args.names.empty() ? "; name them with --names A,B" : "");
  return n;
}

/// Reads gMAD's data from one file of three columns (`read_input`).
inline GmadData read_merged_gmad(const Args& args) {
  const Input in = read_input(args);
  const CsvFile& t = in.csv;
  GmadData d;
  d.source = args.input;
  d.warnings = in.warnings;
  const size_t cname = static_cast<size_t>(in.column.at("name"));
  for (const auto& row : t.rows) {
    d.names.push_back(row.second[cname]);
    d.where.push_back(t.where(row.first));
  }
  d.a = numbers(t, in.column.at("A"), in.label.at("A"));
  d.b = numbers(t, in.column.at("B"), in.label.at("B"));
  std::tie(d.label_a, d.label_b) = model_names(args, in.label.at("A"), in.label.at("B"), args.input + ":1");
  return d;
}

/// Reads gMAD's data from A.csv and B.csv (name and prediction each) joined by name, in the order of
/// A.csv; the models are named by the files' stems or --names.
inline GmadData read_joined_gmad(const Args& args) {
  SideSpec spec;
  spec.required = {"name", "prediction"};
  spec.expected = "name and prediction: one model's scores, as ohem-score writes them";
  namespace fs = std::filesystem;
  std::error_code ec;
  TORCH_CHECK(!(fs::equivalent(args.input, args.second, ec) && !ec), "ohem-eval: --gmad ", args.input, " ",
              args.second, ": the two files are the same file; gMAD compares two models");
  const Side a = read_side(args.input, spec, args);
  const Side b = read_side(args.second, spec, args);
  const Joined j = join_by_name(a, b, args.partial);
  TORCH_CHECK(j.rows.size() >= 2, args.input, " and ", args.second,
              ": needs at least 2 images in both files, got ", j.rows.size());
  GmadData d;
  d.source = args.input + " joined with " + args.second + " by name";
  std::tie(d.label_a, d.label_b) =
      model_names(args, fs::path(args.input).stem().string(), fs::path(args.second).stem().string(),
                  "ohem-eval: --gmad " + args.input + " " + args.second);
  const size_t an = static_cast<size_t>(a.column.at("name"));
  const size_t ap = static_cast<size_t>(a.column.at("prediction")),
               bp = static_cast<size_t>(b.column.at("prediction"));
  for (const auto& [ra, rb] : j.rows) {
    d.names.push_back(a.csv.rows[ra].second[an]);
    d.where.push_back(a.csv.where(a.csv.rows[ra].first));
    d.a.push_back(number_at(a.csv, ra, ap, a.label.at("prediction")));
    d.b.push_back(number_at(b.csv, rb, bp, b.label.at("prediction")));
  }
  d.note = partial_note(j, args.input, args.second);
  return d;
}

/// Whether to draw progress bars.
inline bool show_progress(const Args& args) {
  return args.progress == "on" || (args.progress == "auto" && ::isatty(2) != 0);
}

namespace detail {

inline std::string cell(double v, const std::optional<ohem::Interval>& iv) {
  if (!iv) return fmt::format("{:.4f}", v);
  return fmt::format("{:.4f} [{:.4f}, {:.4f}]", v, iv->lower, iv->upper);
}

using Member = ohem::Interval ohem::BootstrapIntervals::*;

inline std::vector<std::string> cells(const ohem::Evaluation& e) {
  const auto& iv = e.intervals;
  auto at = [&](Member m) -> std::optional<ohem::Interval> {
    if (!iv) return std::nullopt;
    return (*iv).*m;
  };
  using B = ohem::BootstrapIntervals;
  return {cell(e.srcc, at(&B::srcc)),       cell(e.krcc, at(&B::krcc)),
          cell(e.plcc, at(&B::plcc)),       cell(e.fit4.plcc, at(&B::plcc4)),
          cell(e.fit4.rmse, at(&B::rmse4)), cell(e.fit5.plcc, at(&B::plcc5)),
          cell(e.fit5.rmse, at(&B::rmse5))};
}

/// A finite number, or null.
inline nlohmann::json number(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

inline nlohmann::json metric(double v, const std::optional<ohem::BootstrapIntervals>& iv, Member m) {
  nlohmann::json j{{"value", number(v)}};
  if (iv) {
    j["lower"] = number(((*iv).*m).lower);
    j["upper"] = number(((*iv).*m).upper);
  }
  return j;
}

inline nlohmann::json fit(const ohem::LogisticFit& f, const std::optional<ohem::BootstrapIntervals>& iv,
                          Member plcc, Member rmse) {
  nlohmann::json params = nlohmann::json::array();
  for (double p : f.params) params.push_back(number(p));
  return {{"status", ohem::to_string(f.status)},
          {"message", f.message},
          {"params", params},
          {"start", f.start},
          {"iterations", f.iterations},
          {"plcc", metric(f.plcc, iv, plcc)},
          {"rmse", metric(f.rmse, iv, rmse)}};
}

inline nlohmann::json evaluation(const ohem::Evaluation& e) {
  using B = ohem::BootstrapIntervals;
  const auto& iv = e.intervals;
  return {{"n", e.n},
          {"srcc", metric(e.srcc, iv, &B::srcc)},
          {"krcc", metric(e.krcc, iv, &B::krcc)},
          {"plcc", metric(e.plcc, iv, &B::plcc)},
          {"logistic4", fit(e.fit4, iv, &B::plcc4, &B::rmse4)},
          {"logistic5", fit(e.fit5, iv, &B::plcc5, &B::rmse5)}};
}

/// Serialises JSON; invalid UTF-8 from the input (names, groups, the path) becomes U+FFFD.
inline std::string dump(const nlohmann::json& j) {
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace detail

/// The evaluation mode: returns the table printed to stdout and writes the JSON report.
inline std::string evaluate_file(const Args& args, std::string& err) {
  const std::string json_path =
      args.no_json ? "" : (args.json.empty() ? stem(args.input) + ".metrics.json" : args.json);
  const bool join = !args.mos.empty();
  ohem_examples::check_input_file(args.input, "input CSV");
  if (join) ohem_examples::check_input_file(args.mos, "--mos CSV");
  ohem_examples::check_output_paths(
      {{"--json", json_path}},
      join ? std::vector<std::string>{args.input, args.mos} : std::vector<std::string>{args.input});
  const EvalData data = join ? read_joined_eval(args) : read_merged_eval(args);
  for (const auto& w : data.warnings) err += w + "\n";
  const int64_t n = static_cast<int64_t>(data.pred.size());
  const auto& mos = data.mos;
  const auto& pred = data.pred;
  const int64_t B = args.bootstrap >= 0 ? args.bootstrap : default_bootstrap(n);
  const int64_t threads = args.threads;
  const bool bar = show_progress(args);
  if (B > 0) {
    err += fmt::format("ohem-eval: {} images; bootstrap: {} resamples{} on {} thread(s)\n", n, B,
                       args.bootstrap < 0 ? " (default for this many images; --bootstrap N to choose)" : "",
                       threads);
  }
  auto options =
      ohem::EvalOptions().bootstrap(B).confidence(args.confidence).seed(args.seed).threads(threads);
  auto run = [&](const std::string& label, const std::vector<double>& p, const std::vector<double>& m) {
    ohem_examples::Progress progress("bootstrap " + label, B, bar && B > 0);
    auto o = options;
    o.progress([&](int64_t done, int64_t) { progress.update(done); });
    auto e = ohem::evaluate(p, m, o);
    progress.finish();
    return e;
  };
  const ohem::Evaluation overall = run("overall", pred, mos);
  std::vector<std::pair<std::string, ohem::Evaluation>> groups;
  if (!data.groups.empty()) {
    std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> split;
    for (size_t r = 0; r < data.groups.size(); ++r) {
      auto& g = split[data.groups[r]];
      g.first.push_back(pred[r]);
      g.second.push_back(mos[r]);
    }
    for (const auto& [name, g] : split) {
      TORCH_CHECK(g.first.size() >= 2, data.source, ": group \"", name, "\" has ", g.first.size(),
                  " image; every group needs at least 2");
      groups.emplace_back(name, run("group " + name, g.first, g.second));
    }
  }

  const char* names[] = {"SRCC", "KRCC", "PLCC", "PLCC(4p)", "RMSE(4p)", "PLCC(5p)", "RMSE(5p)"};
  size_t gw = 7;
  for (const auto& r : groups) gw = std::max(gw, r.first.size());
  const size_t cw = B > 0 ? 24 : 8;
  std::string out = fmt::format("{}: {} images", data.source, n);
  if (B > 0) {
    out += fmt::format(", {:g}% bootstrap intervals ({} resamples, seed {})", 100 * args.confidence, B,
                       args.seed);
  }
  for (const auto& line : data.notes) out += "\n" + line;
  auto header = [&](const std::string& first) {
    std::string h = fmt::format("{:<{}}  {:>7}", first, gw, "n");
    for (const char* c : names) h += fmt::format("  {:>{}}", c, cw);
    return h + "\n";
  };
  auto row = [&](const std::string& name, const ohem::Evaluation& e) {
    std::string r = fmt::format("{:<{}}  {:>7}", name, gw, e.n);
    for (const auto& c : detail::cells(e)) r += fmt::format("  {:>{}}", c, cw);
    return r + "\n";
  };
  out += "\n" + header("") + row("overall", overall);
  if (!groups.empty()) {
    // A separate section: a group named "overall" cannot be taken for the overall row.
    out += fmt::format("\nper group (column \"{}\"):\n", data.label.at("group")) + header("group");
    for (const auto& [name, e] : groups) out += row(name, e);
  }
  std::string notes;
  auto note = [&](const std::string& where, const ohem::Evaluation& e) {
    for (const auto* f : {&e.fit4, &e.fit5}) {
      if (f->status != ohem::FitStatus::Converged) {
        notes += fmt::format("note: {}: {} fit {}: {}\n", where, ohem::to_string(f->model),
                             ohem::to_string(f->status), f->message);
      }
    }
  };
  note("overall", overall);
  for (const auto& [name, e] : groups) note("group \"" + name + "\"", e);
  out += notes;

  if (!json_path.empty()) {
    nlohmann::json j;
    j["file"] = args.input;
    if (join) {
      j["mos_file"] = args.mos;
      j["join"] = data.join;
    }
    j["images"] = n;
    j["columns"] = data.label;
    j["bootstrap"] = {{"samples", B}, {"confidence", args.confidence}, {"seed", args.seed}};
    j["overall"] = detail::evaluation(overall);
    j["groups"] = nlohmann::json::object();
    for (const auto& [name, e] : groups) j["groups"][name] = detail::evaluation(e);
    ohem_examples::atomic_write_text(json_path, detail::dump(j));
    out += fmt::format("wrote {}\n", json_path);
  }
  return out;
}

/// The file `--embed-images` may read for image `name` (of the input at `where`, "file:line"): the name
/// resolved under `--image-root` with every symbolic link followed, which must stay inside the resolved
/// root and be a regular file named as a raster image (.png, .jpg, .jpeg, .bmp, .gif, .webp, .tif, .tiff).
/// Throws naming the row, the name and the reason otherwise: a page must not carry a file the CSV merely
/// names (`/etc/passwd`, `../x`).
inline std::filesystem::path embeddable_image(const Args& args, const std::string& name,
                                              const std::string& where) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path root = fs::canonical(args.image_root.empty() ? "." : args.image_root, ec);
  TORCH_CHECK(!ec && fs::is_directory(root), "ohem-eval: --image-root \"", args.image_root,
              "\" is not a directory", ec ? ": " + ec.message() : std::string());
  const fs::path named(name);
  TORCH_CHECK(!named.is_absolute(), where, ": --embed-images: image \"", name,
              "\" is an absolute path; names must be relative to --image-root \"", args.image_root, "\"");
  const fs::path file = fs::canonical(root / named, ec);
  TORCH_CHECK(!ec, where, ": --embed-images: image \"", name, "\" not found under --image-root \"",
              args.image_root, "\": ", ec.message());
  const bool inside = std::mismatch(root.begin(), root.end(), file.begin(), file.end()).first == root.end();
  TORCH_CHECK(inside, where, ": --embed-images: image \"", name, "\" resolves to \"", file.string(),
              "\", outside --image-root \"", root.string(), "\"; refusing to embed it");
  const std::string mime = ohem_examples::html::mime_type(file);
  TORCH_CHECK(fs::is_regular_file(file, ec) && mime.rfind("image/", 0) == 0 && mime != "image/svg+xml", where,
              ": --embed-images: \"", name,
              "\" is not an image file (.png, .jpg, .jpeg, .bmp, .gif, .webp, .tif, "
              ".tiff); refusing to embed it");
  return file;
}

/// The gMAD mode: returns the summary printed to stdout and writes the pairs' CSV and HTML page.
inline std::string gmad_file(const Args& args, std::string& err) {
  const bool join = !args.second.empty();
  // Two files: A_vs_B beside A.csv.
  const std::string base =
      join ? stem(args.input) + "_vs_" + std::filesystem::path(args.second).stem().string()
           : stem(args.input);
  const std::string pairs_path = args.pairs.empty() ? base + ".gmad.csv" : args.pairs;
  const std::string html_path = args.html.empty() ? base + ".gmad.html" : args.html;
  ohem_examples::check_input_file(args.input, "input CSV");
  if (join) ohem_examples::check_input_file(args.second, "input CSV");
  ohem_examples::check_output_paths(
      {{"--pairs", pairs_path}, {"--html", html_path}},
      join ? std::vector<std::string>{args.input, args.second} : std::vector<std::string>{args.input});
  const GmadData data = join ? read_joined_gmad(args) : read_merged_gmad(args);
  for (const auto& w : data.warnings) err += w + "\n";
  const auto& a = data.a;
  const auto& b = data.b;
  const std::string na = data.label_a, nb = data.label_b;
  const size_t n = data.names.size();
  ohem::GmadCompetition comp;
  try {
    comp = ohem::gmad_competition(a, b, ohem::GmadOptions().levels(args.levels).window(args.window));
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, data.source, ": ", e.what_without_backtrace());
  }
  auto name = [&](int64_t i) { return data.names[static_cast<size_t>(i)]; };
  // One image of a pair: embedded (data: URI) or linked, at its native size when it is a readable PNG.
  auto figure = [&](int64_t i, const std::string& caption) {
    const std::string root = args.image_root;
    const std::string p =
        root.empty() || root == "." ? name(i) : root + (root.back() == '/' ? "" : "/") + name(i);
    namespace html = ohem_examples::html;
    html::Figure f{args.embed_images
                       ? html::data_uri(embeddable_image(args, name(i), data.where[static_cast<size_t>(i)]),
                                        "image (for --embed-images)")
                       : html::url_path(p),
                   name(i), caption};
    std::ifstream in(p, std::ios::binary);
    std::string head(24, '\0');
    if (in.read(head.data(), 24)) {
      if (const auto size = html::png_size(head)) std::tie(f.width, f.height) = *size;
    }
    return f;
  };
  using ohem_examples::html::escape;

  std::string csv =
      "defender,attacker,level,center,lower,upper,count,image_high,image_low,defender_high,defender_low,"
      "attacker_high,attacker_low,gap,normalized_gap\n";
  std::string summary =
      fmt::format("{}: {} images, {} levels, window {}\n", data.source, n, args.levels, args.window);
  if (!data.note.empty()) summary += data.note + "\n";
  std::string html = fmt::format(
      "<h1>gMAD: {0} vs {1}</h1>\n<p class=\"meta\">{2}: {3} images, {4} levels, window {5} of a level. In "
      "each level the defender rates both images alike; the attacker rates the left one best and the right "
      "one worst. Images at native size (small ones enlarged by a whole factor); click one to enlarge it, "
      "click again to close.</p>\n",
      escape(na), escape(nb), escape(data.source), n, args.levels, args.window);
  if (!data.note.empty()) html += "<p class=\"meta\">" + escape(data.note) + "</p>\n";
  for (const auto& [defender, attacker, result] :
       {std::tuple<std::string, std::string, const ohem::GmadResult*>{na, nb, &comp.a_defends},
        std::tuple<std::string, std::string, const ohem::GmadResult*>{nb, na, &comp.b_defends}}) {
    summary += fmt::format("{} defends, {} attacks: mean normalized gap {:.4f}\n", defender, attacker,
                           result->mean_normalized_gap());
    html += fmt::format("<h2>{} defends, {} attacks (mean normalized gap {:.4f})</h2>\n", escape(defender),
                        escape(attacker), result->mean_normalized_gap());
    for (const auto& p : result->pairs) {
      if (!p.found()) {
        summary += fmt::format("  level {}: {} image(s) in [{:.4g}, {:.4g}], no pair\n", p.level, p.count,
                               p.lower, p.upper);
        html += fmt::format("<h3>Level {} ({} in [{:.4g}, {:.4g}]): {} image(s), no pair</h3>\n", p.level,
                            escape(defender), p.lower, p.upper, p.count);
        continue;
      }
      csv += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", csv_field(defender),
                         csv_field(attacker), p.level, p.center, p.lower, p.upper, p.count,
                         csv_field(name(p.high)), csv_field(name(p.low)), p.defender_high, p.defender_low,
                         p.attacker_high, p.attacker_low, p.gap, p.normalized_gap);
      summary += fmt::format("  level {}: {} images, {} vs {}, gap {:.4g} ({:.4f})\n", p.level, p.count,
                             name(p.high), name(p.low), p.gap, p.normalized_gap);
      html += fmt::format("<h3>Level {} ({} in [{:.4g}, {:.4g}], {} images): gap {:.4g} ({:.4f})</h3>\n",
                          p.level, escape(defender), p.lower, p.upper, p.count, p.gap, p.normalized_gap);
      std::vector<ohem_examples::html::Figure> figures;
      for (auto [i, d, sc] : {std::tuple<int64_t, double, double>{p.high, p.defender_high, p.attacker_high},
                              std::tuple<int64_t, double, double>{p.low, p.defender_low, p.attacker_low}}) {
        figures.push_back(figure(i, fmt::format("{}<br>{}: {:.4g} &middot; {}: {:.4g}", escape(name(i)),
                                                escape(defender), d, escape(attacker), sc)));
      }
      html += ohem_examples::html::figure_pair(figures);
    }
  }
  html = ohem_examples::html::page(fmt::format("gMAD: {} vs {}", na, nb), html);
  // Both files or neither: written to temporaries first, renamed when both are complete.
  ohem_examples::atomic_write_texts({{pairs_path, csv}, {html_path, html}});
  summary += fmt::format("wrote {} and {}\n", pairs_path, html_path);
  return summary;
}

/// Runs the tool: returns the exit status (0; 1 after an error, whose message goes to `err`; 0 for
/// --help) and appends what it prints to `out`. Every exception is caught here.
/// Example: `std::string out, err; int rc = ohem_eval::run({"scores.csv", "--bootstrap", "0"}, out, err);`
inline int run(const std::vector<std::string>& argv, std::string& out, std::string& err) {
  try {
    Args args;
    CLI::App app("", "ohem-eval");
    describe(app, args);
    try {
      std::vector<std::string> reversed(argv.rbegin(), argv.rend());  // CLI11 takes them last first
      app.parse(reversed);
    } catch (const CLI::CallForHelp&) {
      out += app.help();
      return 0;
    } catch (const CLI::ParseError& e) {
      err += fmt::format("ohem-eval: {} (see --help)\n", e.what());
      return 1;
    }
    check_modes(args);
    out += args.gmad ? gmad_file(args, err) : evaluate_file(args, err);
    return 0;
  } catch (const c10::Error& e) {
    err += std::string(e.what_without_backtrace()) + "\n";
  } catch (const std::bad_alloc&) {
    err += "ohem-eval: out of memory (a smaller --bootstrap or fewer --threads may help)\n";
  } catch (const std::exception& e) {
    err += fmt::format("ohem-eval: {}\n", e.what());
  } catch (...) {
    err += "ohem-eval: unknown error\n";
  }
  return 1;
}

}  // namespace ohem_eval
