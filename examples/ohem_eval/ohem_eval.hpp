#pragma once
/// @file
/// The `ohem-eval` command-line tool as a library (main.cpp only calls `ohem_eval::run`), so that the
/// test suite can run it in-process: columns read by header name (examples/common/csv.hpp), outputs
/// checked before any work and written atomically (examples/common/files.hpp), the metrics table and
/// JSON report (nlohmann/json), a bootstrap on --threads threads with a progress bar, and the gMAD pairs
/// as CSV and as a self-contained HTML page. Options are parsed by CLI11. See docs/metrics.md.

#include <common/csv.hpp>
#include <common/files.hpp>
#include <common/html.hpp>
#include <common/io.hpp>

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
      {"name", {"name", "image", "image_name", "img", "file", "filename", "path"}, true},
      {"mos", {"mos", "score", "dmos", "label", "subjective", "gt", "ground_truth"}, true},
      {"prediction", {"prediction", "pred", "predicted", "predictions", "output", "y_pred"}, true},
      {"group", {"group", "type", "distortion", "distortion_type", "category"}, false}};
  return roles;
}

/// The command line, parsed.
struct Args {
  std::string input;
  bool gmad = false;
  std::string json;  ///< empty: <input stem>.metrics.json
  bool no_json = false;
  int64_t bootstrap = -1;  ///< -1: scaled with the number of images (`default_bootstrap`)
  double confidence = 0.95;
  uint64_t seed = 0;
  int64_t threads = 0;  ///< 0: the cores this process may use (ohem::available_cores())
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

/// Returns the largest --threads value accepted: 4 × the hardware threads (at least 4).
inline int64_t max_threads() {
  return 4 * std::max<int64_t>(1, static_cast<int64_t>(std::thread::hardware_concurrency()));
}

/// The default number of resamples for n images: 1000 up to 20,000 images, then 2·10^7 / n rounded to
/// hundreds, at least 100 (about 2·10^7 resampled pairs in all: seconds to a minute).
inline int64_t default_bootstrap(int64_t n) {
  if (n <= 20000) return 1000;
  return std::max<int64_t>(100, (20'000'000 / n) / 100 * 100);
}

/// Returns `s` as one CSV field (quoted when it holds a comma, quote or line break).
inline std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

/// Builds the CLI11 parser for `a` (the option names of earlier versions are kept).
inline void describe(CLI::App& app, Args& a) {
  app.description(
      "IQA metrics with bootstrap intervals, and gMAD pairs, from a CSV file (docs/metrics.md).\n\n"
      "Evaluation (default): SCORES.csv has a header naming the columns name, mos, prediction and\n"
      "optionally group, in any order (case-insensitive; aliases: name|image|image_name|img|file|\n"
      "filename|path, mos|score|dmos|label|subjective|gt|ground_truth, prediction|pred|predicted|\n"
      "predictions|output|y_pred, group|type|distortion|distortion_type|category). Prints SRCC, KRCC,\n"
      "PLCC, and PLCC and RMSE after 4- and 5-parameter logistic fits, with bootstrap intervals, overall\n"
      "and per group; writes the same as JSON.\n\n"
      "gMAD (--gmad): SCORES.csv has a name column and two models' score columns (the header names the\n"
      "models). Runs gMAD with A defending and B attacking, and the reverse; writes the selected pairs\n"
      "as CSV and as a self-contained HTML page.");
  app.get_formatter()->column_width(28);
  app.add_option("SCORES.csv", a.input, "input CSV file")->required();
  app.add_flag("--gmad", a.gmad, "gMAD mode (see above)");
  app.add_flag("--no-header", a.no_header,
               "the file has no header row: columns in the order of --columns (default "
               "name,mos,prediction[,group]; --gmad: name,A,B)");
  app.add_option("--columns", a.columns,
                 "with --no-header: the columns' roles in file order, e.g. name,prediction,mos,group");
  app.add_flag("--allow-duplicates", a.allow_duplicates,
               "warn about repeated image names instead of stopping with an error");
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
  app.add_option("--threads", a.threads,
                 "threads of the bootstrap and the point estimate's two fits (default: the cores available); "
                 "results do not depend on it")
      ->check(CLI::Range(int64_t{1}, max_threads()));
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
  app.add_option("--pairs", a.pairs, "gMAD: CSV of the pairs (default: SCORES.gmad.csv)");
  app.add_option("--html", a.html, "gMAD: HTML page (default: SCORES.gmad.html)");
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
    TORCH_CHECK(
        false, e.what_without_backtrace(),
        args.no_header ? std::string() : std::string("; if the file has no header row, pass --no-header"));
  }
  return -1;
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
                ":1:1: --gmad expects 3 columns (name and two models' ", "scores), got ", width);
    const CsvFile hdr = [&] {
      CsvFile h = t;
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
    CsvFile hdr = t;
    hdr.header = names;
    if (args.no_header) hdr.header_positions.assign(names.size(), {1, 1});
    std::vector<bool> used(names.size(), false);
    for (const auto& r : eval_columns()) {
      const int64_t c = r.required ? require(hdr, r.aliases, r.role, args) : hdr.column(r.aliases);
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
  std::vector<std::string> names(t.rows.size());
  for (size_t r = 0; r < t.rows.size(); ++r) {
    names[r] = t.rows[r].second[cn];
    TORCH_CHECK(!ohem_examples::trim(names[r]).empty(), t.where(r, cn), ": empty image name");
  }
  for (const ohem_examples::RepeatedKey& k : ohem_examples::repeated_keys(names)) {
    const std::string msg = fmt::format("{}: image \"{}\" appears again (first on line {})",
                                        t.where(k.row, cn), names[k.row], t.rows[k.first].first);
    TORCH_CHECK(args.allow_duplicates, msg, "; pass --allow-duplicates to keep every row");
    in.warnings.push_back("warning: " + msg);
  }
  return in;
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
  ohem_examples::check_input_file(args.input, "input CSV");
  ohem_examples::check_output_paths({{"--json", json_path}}, {args.input});
  const Input in = read_input(args);
  for (const auto& w : in.warnings) err += w + "\n";
  const CsvFile& t = in.csv;
  const int64_t n = static_cast<int64_t>(t.rows.size());
  const auto mos = numbers(t, in.column.at("mos"), in.label.at("mos"));
  const auto pred = numbers(t, in.column.at("prediction"), in.label.at("prediction"));
  const int64_t B = args.bootstrap >= 0 ? args.bootstrap : default_bootstrap(n);
  const int64_t threads = args.threads > 0 ? args.threads : ohem::available_cores();
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
  if (in.column.count("group")) {
    const size_t cg = static_cast<size_t>(in.column.at("group"));
    std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> split;
    for (size_t r = 0; r < t.rows.size(); ++r) {
      auto& g = split[t.rows[r].second[cg]];
      g.first.push_back(pred[r]);
      g.second.push_back(mos[r]);
    }
    for (const auto& [name, g] : split) {
      TORCH_CHECK(g.first.size() >= 2, args.input, ": group \"", name, "\" has ", g.first.size(),
                  " image; every group needs at least 2");
      groups.emplace_back(name, run("group " + name, g.first, g.second));
    }
  }

  const char* names[] = {"SRCC", "KRCC", "PLCC", "PLCC(4p)", "RMSE(4p)", "PLCC(5p)", "RMSE(5p)"};
  size_t gw = 7;
  for (const auto& r : groups) gw = std::max(gw, r.first.size());
  const size_t cw = B > 0 ? 24 : 8;
  std::string out = fmt::format("{}: {} images", args.input, n);
  if (B > 0) {
    out += fmt::format(", {:g}% bootstrap intervals ({} resamples, seed {})", 100 * args.confidence, B,
                       args.seed);
  }
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
    out += fmt::format("\nper group (column \"{}\"):\n", in.label.at("group")) + header("group");
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
    j["images"] = n;
    j["columns"] = in.label;
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
  const std::string pairs_path = args.pairs.empty() ? stem(args.input) + ".gmad.csv" : args.pairs;
  const std::string html_path = args.html.empty() ? stem(args.input) + ".gmad.html" : args.html;
  ohem_examples::check_input_file(args.input, "input CSV");
  ohem_examples::check_output_paths({{"--pairs", pairs_path}, {"--html", html_path}}, {args.input});
  const Input in = read_input(args);
  for (const auto& w : in.warnings) err += w + "\n";
  const CsvFile& t = in.csv;
  const size_t cname = static_cast<size_t>(in.column.at("name"));
  const auto a = numbers(t, in.column.at("A"), in.label.at("A"));
  const auto b = numbers(t, in.column.at("B"), in.label.at("B"));
  const std::string na = in.label.at("A"), nb = in.label.at("B");
  ohem::GmadCompetition comp;
  try {
    comp = ohem::gmad_competition(a, b, ohem::GmadOptions().levels(args.levels).window(args.window));
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, args.input, ": ", e.what_without_backtrace());
  }
  auto name = [&](int64_t i) { return t.rows[static_cast<size_t>(i)].second[cname]; };
  // One image of a pair: embedded (data: URI) or linked, at its native size when it is a readable PNG.
  auto figure = [&](int64_t i, const std::string& caption) {
    const std::string root = args.image_root;
    const std::string p =
        root.empty() || root == "." ? name(i) : root + (root.back() == '/' ? "" : "/") + name(i);
    namespace html = ohem_examples::html;
    html::Figure f{
        args.embed_images
            ? html::data_uri(embeddable_image(args, name(i), t.where(t.rows[static_cast<size_t>(i)].first)),
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
  std::string summary = fmt::format("{}: {} images, {} levels, window {}\n", args.input, t.rows.size(),
                                    args.levels, args.window);
  std::string html = fmt::format(
      "<h1>gMAD: {0} vs {1}</h1>\n<p class=\"meta\">{2}: {3} images, {4} levels, window {5} of a level. In "
      "each level the defender rates both images alike; the attacker rates the left one best and the right "
      "one worst. Images at native size (small ones enlarged by a whole factor); click one to enlarge it, "
      "click again to close.</p>\n",
      escape(na), escape(nb), escape(args.input), t.rows.size(), args.levels, args.window);
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
