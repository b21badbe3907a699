#pragma once
/// @file
/// The programs' one `--threads` option (every trainer, the demo, the study, ohem-score, ohem-eval and the
/// benchmarks): a whole number of threads in [1, kMaxThreads]; by default `default_threads()`, the cores
/// this process may use, shared among the processes a launcher started on this machine. There is no 0:
/// the default is the automatic value, and --help shows what it is here.

#include <ohem/runtime.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <string>

namespace ohem_examples {

/// The most threads `--threads` accepts.
constexpr int kMaxThreads = 4096;

/// The default `--threads`: the cores this process may use (`ohem::available_cores()`), shared among the
/// processes a launcher started on this machine (`LOCAL_WORLD_SIZE`, set by torchrun and
/// scripts/launch.sh), at least 1.
inline int default_threads() {
  const char* local = std::getenv("LOCAL_WORLD_SIZE");
  int processes = 1;
  if (local != nullptr) {
    try {
      processes = std::max(1, std::stoi(local));
    } catch (const std::exception&) {
      processes = 1;  // not a number: the launcher's own check reports it
    }
  }
  return std::max(1, ohem::available_cores() / processes);
}

/// The help text of `--threads`: `what` (e.g. "torch threads") and the default's rule.
inline std::string threads_help(const std::string& what) {
  return what + ", 1 to " + std::to_string(kMaxThreads) +
         " (default: the cores this process may use, shared among the processes a launcher started on this "
         "machine)";
}

/// `threads_help("torch threads")`, for tables that hold their help as `const char*`.
inline const char* torch_threads_help() {
  static const std::string text = threads_help("torch threads");
  return text.c_str();
}

/// Adds `--threads` to `app`, bound to `threads` (any integer type), which it sets to `default_threads()`
/// first (shown by --help). Example: `add_threads_option(app, o.threads, "torch threads");`
template <class Int>
CLI::Option* add_threads_option(CLI::App& app, Int& threads, const std::string& what) {
  threads = static_cast<Int>(default_threads());
  return app.add_option("--threads", threads, threads_help(what))
      ->capture_default_str()
      ->check(CLI::Range(Int{1}, static_cast<Int>(kMaxThreads)));
}

}  // namespace ohem_examples
