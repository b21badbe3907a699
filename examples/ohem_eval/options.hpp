#pragma once
/// @file
/// The command line of `ohem-eval`: the parsed options (`Args`), the CLI11 parser and its help text, the
/// checks of option combinations that CLI11 cannot express, and the defaults derived from the options
/// (the bootstrap's size, the output files' stem, the progress bar). See docs/metrics.md.

#include <toolkit/threads.hpp>

#include <torch/torch.h>
#include <CLI/CLI.hpp>

#include <unistd.h>
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace ohem_eval {

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

/// Whether to draw progress bars.
inline bool show_progress(const Args& args) {
  return args.progress == "on" || (args.progress == "auto" && ::isatty(2) != 0);
}

}  // namespace ohem_eval
