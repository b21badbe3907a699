#pragma once
/// @file
/// The `ohem-splits` command-line tool as a library (main.cpp only calls `ohem_splits::run`): the random
/// split protocol in one command. Runs a trainer (train_pairwise or train_mos) once per split seed as a
/// child process, `TRAINER ARGS --split-seed K --out OUT/split-K --resume auto`, skips the splits that
/// are complete, resumes the partial ones, stops at the first that fails, and then summarises all of
/// them (summary.hpp). See docs/splits.md.

#include "subprocess.hpp"
#include "summary.hpp"

#include <toolkit/command_line.hpp>
#include <toolkit/errors.hpp>
#include <toolkit/files.hpp>
#include <toolkit/output_dir.hpp>

#include <torch/torch.h>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <ostream>
#include <regex>
#include <string>
#include <utility>
#include <vector>

namespace ohem_splits {

/// The command line, parsed.
struct Args {
  uint64_t splits = 0;      ///< how many splits (0 with --summary-only: every split-<k> in --out)
  uint64_t first_seed = 0;  ///< the split seeds are first_seed, first_seed + 1, ...
  std::string out;
  bool summary_only = false;
  bool overwrite = false;
  bool quiet = false;
  std::vector<std::string> trainer;  ///< the trainer and its arguments (after `--`)
};

/// The trainer options ohem-splits sets itself for each split; the trainer's arguments may not hold them.
inline const std::vector<std::string>& reserved_trainer_options() {
  static const std::vector<std::string> r{"--split-seed", "--out", "--resume", "--overwrite"};
  return r;
}

/// Builds the CLI11 parser for `a` (the trainer's command after `--` is not CLI11's).
inline void describe(CLI::App& app, Args& a) {
  app.description(
      "The random split protocol in one command (docs/splits.md): runs a trainer once per split seed,\n"
      "  TRAINER ARGS --split-seed K --out OUT/split-K --resume auto\n"
      "(a complete split is kept, a partial one resumes; each split's output goes to\n"
      "OUT/split-K/ohem-splits.log), then writes the summary over the splits: SRCC and PLCC per test set\n"
      "and split, with mean, median, s.d., min and max, as OUT/summary.json, summary.md and summary.html.");
  app.footer(
      "Usage: ohem-splits --splits N --out DIR [OPTIONS] -- TRAINER [TRAINER ARGS...]\n"
      "       ohem-splits --summary-only --out DIR [--splits N] [--first-seed S]");
  app.get_formatter()->column_width(30);
  auto* splits = app.add_option("--splits", a.splits,
                                "the number of splits (with --summary-only: default every split-K in --out)")
                     ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 20));
  app.add_option("--first-seed", a.first_seed, "the first split seed; the others follow it")
      ->capture_default_str()
      ->check(ohem_examples::detail::non_negative())
      ->needs(splits);
  app.add_option("--out", a.out, "the directory of the splits (split-K) and the summary")->required();
  app.add_flag("--summary-only", a.summary_only,
               "run no trainer: summarise the finished splits in --out (a trainer command after -- is only "
               "recorded)");
  app.add_flag("--overwrite", a.overwrite,
               "train every split afresh (the trainer's --overwrite replaces the run in split-K)");
  app.add_flag("--quiet", a.quiet, "print errors only");
}

namespace detail {

inline std::string utc_now() {
  char buf[32];
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

inline std::string duration(double s) {
  if (!(s >= 0)) return "?";
  const auto t = static_cast<int64_t>(s + 0.5);
  if (t < 60) return fmt::format("{}s", t);
  if (t < 3600) return fmt::format("{}m{:02}s", t / 60, t % 60);
  return fmt::format("{}h{:02}m", t / 3600, (t / 60) % 60);
}

/// The last `n` lines of a file (for the message of a failed split).
inline std::string tail_lines(const std::string& path, size_t n) {
  std::ifstream in(path);
  std::deque<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
    if (lines.size() > n) lines.pop_front();
  }
  std::string out;
  for (const auto& l : lines) out += "  | " + l + "\n";
  return out;
}

/// The options the trainer's arguments give (by the trainers' shared option table) whose values
/// define what a run computes, as JSON keyed by flag: a complete split whose results.json has other
/// values is not complete for this command and is run again (the trainer then resumes it, or refuses a
/// change a resume may not make). Throws CLI11's error for a bad value.
inline json given_run_options(const std::vector<std::string>& trainer_args) {
  CLI::App app;
  app.allow_extras();
  ohem_examples::TrainOptions o;
  ohem_examples::add_train_options(app, o);
  std::vector<std::string> reversed(trainer_args.rbegin(), trainer_args.rend());
  app.parse(reversed);
  json given = json::object();
  ohem_examples::visit_train_options(o, [&](const ohem_examples::OptionInfo& info, const auto& v) {
    if (per_split_options().count(info.name) != 0 || app.count(info.name) == 0) return;
    given[info.name] = ohem_examples::detail::json_value(v);
  });
  return given;
}

/// Why the split in `dir` must run: "" when it is complete for `given` (its results.json is there, of
/// split seed `seed`, with the given options' values); else a short reason.
inline std::string needs_run(const std::string& dir, uint64_t seed, const json& given) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const bool checkpoint = fs::is_regular_file(fs::path(dir) / "checkpoint.pt", ec);
  if (!fs::is_regular_file(fs::path(dir) / "results.json", ec))
    return checkpoint ? "partial: resumes from its checkpoint" : "new";
  SplitRun s;
  try {
    s = read_split(dir, seed);
  } catch (const c10::Error& e) {
    return std::string("its results.json is not usable (") + e.what_without_backtrace() + ")";
  }
  for (const auto& [k, v] : given.items()) {
    const json was = s.results["config"].contains(k) ? s.results["config"][k] : json();
    if (was != v) return fmt::format("its results.json has {} {}, the command {}", k, was.dump(), v.dump());
  }
  return "";
}

/// The split seeds of --summary-only without --splits: every `split-<k>` directory in `out`, in order.
inline std::vector<uint64_t> discover_seeds(const std::string& out) {
  namespace fs = std::filesystem;
  std::vector<uint64_t> seeds;
  const std::regex name("split-(0|[1-9][0-9]{0,18})");
  std::error_code ec;
  for (fs::directory_iterator it(out, ec), end; !ec && it != end; it.increment(ec)) {
    std::smatch m;
    const std::string f = it->path().filename().string();
    if (it->is_directory(ec) && std::regex_match(f, m, name)) seeds.push_back(std::stoull(m[1].str()));
  }
  TORCH_CHECK(!ec, "cannot list \"", out, "\": ", ec.message());
  std::sort(seeds.begin(), seeds.end());
  TORCH_CHECK(!seeds.empty(), "--summary-only: \"", out, "\" holds no split directory (split-K)");
  return seeds;
}

/// The trainer command a previous summary in `path` records (--summary-only without a command keeps
/// it), if there is one.
inline std::optional<std::vector<std::string>> previous_command(const std::string& path) {
  std::ifstream in(path);
  if (!in.good()) return std::nullopt;
  try {
    const json j = json::parse(in);
    if (j.value("schema", std::string()) == kSummarySchema && j.contains("command") &&
        j["command"].is_array())
      return j["command"].get<std::vector<std::string>>();
  } catch (const json::exception&) {
    // not ours, or damaged: it is replaced, and the command is unknown
  }
  return std::nullopt;
}

}  // namespace detail

/// Checks the command line before anything runs; throws naming the first problem.
inline void check_args(const Args& a) {
  namespace fs = std::filesystem;
  TORCH_CHECK(a.summary_only || !a.trainer.empty(),
              "no trainer to run: give its command after --, e.g. ohem-splits --splits 10 --out runs/splits "
              "-- train_pairwise --csv koniq.csv ...");
  TORCH_CHECK(a.summary_only || a.splits > 0, "--splits: how many splits? (e.g. --splits 10)");
  TORCH_CHECK(!(a.summary_only && a.overwrite), "--overwrite retrains the splits; --summary-only runs none");
  TORCH_CHECK(a.splits == 0 || a.first_seed <= std::numeric_limits<uint64_t>::max() - (a.splits - 1),
              "--first-seed ", a.first_seed, " + --splits ", a.splits, " overflows a 64-bit seed");
  std::vector<std::string> reserved;
  for (size_t i = 1; i < a.trainer.size(); ++i)
    for (const auto& r : reserved_trainer_options())
      if (a.trainer[i] == r || a.trainer[i].rfind(r + "=", 0) == 0) reserved.push_back(a.trainer[i]);
  TORCH_CHECK(reserved.empty(), "the trainer's arguments hold ", c10::Join(", ", reserved),
              ": ohem-splits sets --split-seed, --out and --resume for each split (and --overwrite with its "
              "own --overwrite); remove them");
  std::error_code ec;
  if (!a.summary_only && a.trainer[0].find('/') != std::string::npos) {  // else PATH finds it, or not
    TORCH_CHECK(fs::is_regular_file(a.trainer[0], ec) && ::access(a.trainer[0].c_str(), X_OK) == 0,
                "the trainer \"", a.trainer[0], "\" is not an executable file");
  }
  TORCH_CHECK(!a.summary_only || fs::is_directory(a.out, ec), "--summary-only: \"", a.out,
              "\" is not a directory");
}

/// Runs the trainer for every split of `seeds` that is not complete, one after another; returns 0, or
/// the exit status of the first split that fails (after writing its log's last lines to `err`).
inline int run_splits(const Args& a, const std::vector<uint64_t>& seeds, std::ostream& out,
                      std::ostream& err) {
  namespace fs = std::filesystem;
  json given;
  try {
    given = detail::given_run_options({a.trainer.begin() + 1, a.trainer.end()});
  } catch (const CLI::Error& e) {
    TORCH_CHECK(false, "the trainer's arguments: ", e.what());
  }
  // With a separate test file the split seed draws no test split, only the validation images.
  const bool test_file = given.contains("--test-csv") && given["--test-csv"] != "";
  const bool validation = given.contains("--val-fraction") && given["--val-fraction"] != 0.0;
  TORCH_CHECK(
      !test_file || validation,
      "the trainer's arguments give --test-csv: then every split trains on all of --csv and tests on "
      "that file, and the split seed changes nothing (without --val-fraction, which it splits); leave "
      "--test-csv out, so that each split draws its test images from --csv (the file can be an extra "
      "--test set), or give --val-fraction");
  const size_t n = seeds.size();
  auto dir_of = [&](size_t i) { return (fs::path(a.out) / split_dir_name(seeds[i])).string(); };
  std::vector<std::string> why(n);  // why each split runs; empty: complete
  size_t to_run = 0, fresh = 0;
  for (size_t i = 0; i < n; ++i) {
    why[i] = a.overwrite ? "--overwrite" : detail::needs_run(dir_of(i), seeds[i], given);
    to_run += why[i].empty() ? 0 : 1;
    fresh += why[i] == "new" || a.overwrite ? 1 : 0;
  }
  if (!a.quiet)
    out << fmt::format(
               "ohem-splits: {} splits (seeds {}..{}) in {}: {} complete, {} to run ({} to resume); each "
               "split's output: {}/split-K/ohem-splits.log\n",
               n, seeds.front(), seeds.back(), a.out, n - to_run, to_run, to_run - fresh, a.out)
        << std::flush;
  const auto start = std::chrono::steady_clock::now();
  auto since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  };
  size_t ran = 0;
  for (size_t i = 0; i < n; ++i) {
    const std::string dir = dir_of(i);
    const std::string head = fmt::format("split {} of {} (seed {})", i + 1, n, seeds[i]);
    if (why[i].empty()) {
      if (!a.quiet) out << "ohem-splits: " << head << ": complete, kept\n" << std::flush;
      continue;
    }
    std::vector<std::string> cmd = a.trainer;
    cmd.insert(cmd.end(), {"--split-seed", std::to_string(seeds[i]), "--out", dir});
    if (a.overwrite) {
      cmd.emplace_back("--overwrite");
    } else {
      cmd.insert(cmd.end(), {"--resume", "auto"});
    }
    std::error_code ec;
    fs::create_directories(dir, ec);
    TORCH_CHECK(!ec, "cannot create \"", dir, "\": ", ec.message());
    const std::string log = (fs::path(dir) / "ohem-splits.log").string();
    {
      std::ofstream l(log, std::ios::app);
      l << fmt::format("=== ohem-splits {} · {} ({}): {}\n", detail::utc_now(), head, why[i],
                       shell_quote(cmd));
      TORCH_CHECK(l.good(), "cannot write \"", log, "\"");
    }
    const auto t0 = std::chrono::steady_clock::now();
    const ExitStatus s = run_logged(cmd, log);
    if (!s.ok()) {
      err << fmt::format("error: {} failed ({}) after {}; its log: {}\n{}", head, s.describe(),
                         detail::duration(since(t0)), log, detail::tail_lines(log, 12));
      return s.code != 0 ? s.code : 1;
    }
    ++ran;
    size_t left = 0;
    for (size_t k = i + 1; k < n; ++k) left += why[k].empty() ? 0 : 1;
    std::string srcc;
    try {
      const SplitRun r = read_split(dir, seeds[i]);
      if (r.results.contains("srcc") && r.results["srcc"].is_number())
        srcc = fmt::format(", test SRCC {:.4f}", r.results["srcc"].get<double>());
    } catch (const c10::Error&) {
      // the summary names what is wrong with it
    }
    const double elapsed = since(start);
    if (!a.quiet)
      out << fmt::format("ohem-splits: {}: done in {}{} · elapsed {} · ETA {}\n", head,
                         detail::duration(since(t0)), srcc, detail::duration(elapsed),
                         detail::duration(elapsed / static_cast<double>(ran) * static_cast<double>(left)))
          << std::flush;
  }
  return 0;
}

/// Summarises the splits of `seeds` in --out and writes summary.json, summary.md and summary.html (all
/// or none); prints the statistics unless --quiet.
inline void write_summary(const Args& a, const std::vector<uint64_t>& seeds, std::ostream& out) {
  namespace fs = std::filesystem;
  const fs::path dir(a.out);
  std::optional<std::vector<std::string>> command;
  if (!a.trainer.empty()) {
    command = a.trainer;
  } else {
    command = detail::previous_command((dir / "summary.json").string());
  }
  std::vector<SplitRun> runs;
  for (uint64_t seed : seeds) runs.push_back(read_split((dir / split_dir_name(seed)).string(), seed));
  const Summary s = summarize(runs, command, detail::utc_now());
  const std::vector<std::pair<std::string, std::string>> files{
      {(dir / "summary.json").string(), s.data.dump(2, ' ', false, json::error_handler_t::replace) + "\n"},
      {(dir / "summary.md").string(), s.markdown},
      {(dir / "summary.html").string(), s.html}};
  ohem_examples::atomic_write_texts(files);
  if (a.quiet) return;
  out << fmt::format("\n{:<24} {:>9} {:>8} {:>8} {:>8}   {:>8} {:>8}\n", "test set", "epoch", "SRCC med",
                     "mean", "s.d.", "PLCC med", "mean");
  auto f = [](const json& v) { return v.is_number() ? fmt::format("{:.4f}", v.get<double>()) : "-"; };
  for (const auto& r : s.data["results"]) {
    out << fmt::format("{:<24} {:>9} {:>8} {:>8} {:>8}   {:>8} {:>8}\n", r["set"].get<std::string>(),
                       r["epoch"].get<std::string>(), f(r["srcc"]["median"]), f(r["srcc"]["mean"]),
                       f(r["srcc"]["sd"]), f(r["plcc"]["median"]), f(r["plcc"]["mean"]));
  }
  for (const auto& file : files) out << "ohem-splits: wrote " << file.first << "\n";
}

/// Runs ohem-splits with `argv` (without the program name); writes the console output to `out` and
/// `err`; returns the exit status: 0, 1 with the error on `err`, or a failing split's own exit status.
inline int run(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  Args a;
  CLI::App app("", "ohem-splits");
  describe(app, a);
  const auto dashes = std::find(argv.begin(), argv.end(), "--");
  if (dashes != argv.end()) a.trainer.assign(dashes + 1, argv.end());
  try {
    std::vector<std::string> reversed(std::make_reverse_iterator(dashes), argv.rend());  // CLI11: last first
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    out << app.help();
    return 0;
  } catch (const CLI::ParseError& e) {
    err << "ohem-splits: " << e.what() << " (see --help)\n";
    return 1;
  }
  return ohem_examples::run_reporting_errors(
      [&] {
        check_args(a);
        ohem_examples::OutputLock lock(a.out);  // one ohem-splits per directory (the trainers lock split-K)
        std::vector<uint64_t> seeds;
        if (a.splits == 0) {
          seeds = detail::discover_seeds(a.out);
        } else {
          for (uint64_t k = 0; k < a.splits; ++k) seeds.push_back(a.first_seed + k);
        }
        if (!a.summary_only) {
          const int rc = run_splits(a, seeds, out, err);
          if (rc != 0) return rc;
        }
        write_summary(a, seeds, out);
        return 0;
      },
      err);
}

}  // namespace ohem_splits
