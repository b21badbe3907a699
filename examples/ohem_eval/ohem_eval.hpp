#pragma once
/// @file
/// The `ohem-eval` command-line tool as a library (main.cpp only calls `ohem_eval::run`), so that the
/// test suite can run it in-process: columns read by header name (examples/toolkit/csv.hpp), outputs
/// checked before any work and written atomically (examples/toolkit/files.hpp), the metrics table and
/// JSON report (nlohmann/json), a bootstrap on --threads threads with a progress bar, and the gMAD pairs
/// as CSV and as a self-contained HTML page. Options are parsed by CLI11. See docs/metrics.md.
///
/// This header is the tool's entry point (`run`) and includes its parts, one concept each: options.hpp
/// (the command line), columns.hpp (column roles), merged_file.hpp (one merged input file), join.hpp
/// (two files joined by name), eval_data.hpp and evaluation.hpp (the evaluation's data, and its table
/// and JSON report), gmad_data.hpp and gmad.hpp (gMAD's data, and its pairs as CSV and HTML).

#include "columns.hpp"
#include "eval_data.hpp"
#include "evaluation.hpp"
#include "gmad.hpp"
#include "gmad_data.hpp"
#include "join.hpp"
#include "merged_file.hpp"
#include "options.hpp"

#include <fmt/format.h>
#include <torch/torch.h>
#include <CLI/CLI.hpp>

#include <exception>
#include <new>
#include <string>
#include <vector>

namespace ohem_eval {

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
