// The shared main of the Google Benchmark programs (every benchmarks/bench_*.cpp without its own main;
// benchmarks/CMakeLists.txt links it in). Its own flags, parsed with CLI11:
//   --threads N       torch's intra-op threads, 1 to 4096 (default: the cores this process may use; the
//                     programs' one --threads, toolkit/threads.hpp; scripts/bench.sh passes it)
//   --heap training   glibc's heap set up for training as in every ohem program
//                     (`ohem::tune_heap_for_training`, the default); `--heap default` leaves glibc's
//                     defaults, for side-by-side runs (the values of bench_distributed's --heap)
// Every other argument goes, in order and untouched, to Google Benchmark (`--benchmark_filter=...`), which
// reports the ones it does not know. The context (threads, heap, LibTorch and ohem versions) is printed
// and stored in the JSON output.
#include <toolkit/threads.hpp>

#include <ohem/runtime.hpp>
#include <ohem/version.hpp>

#include <benchmark/benchmark.h>
#include <torch/torch.h>
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

int main(int argc, char** argv) {
  CLI::App app(
      "An ohem benchmark program (Google Benchmark): sets torch's threads and glibc's heap, prints them "
      "with the LibTorch and ohem versions, then runs the benchmarks.");
  app.allow_extras();  // Google Benchmark's flags
  app.footer(
      "Every other argument goes to Google Benchmark, e.g. --benchmark_filter=REGEX, "
      "--benchmark_min_time=SECONDS, --benchmark_repetitions=N, --benchmark_out=FILE "
      "--benchmark_out_format=json; an unknown one is an error. Google Benchmark's options:\n");
  int threads = 1;
  std::string heap_mode = "training";
  ohem_examples::add_threads_option(app, threads, "torch's intra-op threads");
  app.add_option("--heap", heap_mode,
                 "training: glibc's heap set up for training, as every ohem program does "
                 "(ohem::tune_heap_for_training); default: glibc's defaults")
      ->check(CLI::IsMember({"training", "default"}))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    app.exit(e);
    // Then Google Benchmark's own list of flags (it prints it and exits 0).
    std::vector<char*> help = {argv[0], const_cast<char*>("--help"), nullptr};
    int n = 2;
    benchmark::Initialize(&n, help.data());
    return 0;
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  // Google Benchmark gets the program name and every argument that is not ours, in their order.
  std::vector<std::string> rest = app.remaining();
  std::vector<char*> args = {argv[0]};
  for (std::string& a : rest) args.push_back(a.data());
  int n = static_cast<int>(args.size());
  args.push_back(nullptr);

  const std::string heap = heap_mode == "training" ? ohem::tune_heap_for_training().description
                                                   : std::string("heap: glibc's defaults (--heap=default)");
  torch::set_num_threads(threads);
  torch::manual_seed(0);
  benchmark::AddCustomContext("torch_threads", std::to_string(torch::get_num_threads()));
  benchmark::AddCustomContext("heap", heap.rfind("heap: ", 0) == 0 ? heap.substr(6) : heap);
  benchmark::AddCustomContext("libtorch", TORCH_VERSION);
  benchmark::AddCustomContext("ohem", ohem::version_string());
  benchmark::Initialize(&n, args.data());
  if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
