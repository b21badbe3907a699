#pragma once
// Shared main of the benchmark programs: `--threads=N` sets torch's intra-op threads (default: the cores
// this process may use, as every ohem program; scripts/bench.sh passes it), glibc's heap is set up for
// training as in every ohem program (`ohem::tune_heap_for_training`; `--heap=default` leaves glibc's
// defaults, for side-by-side runs), and the context (threads, heap, LibTorch and ohem versions) is
// printed and stored in the JSON output. Include once per program, after the benchmarks.
#include <benchmark/benchmark.h>
#include <torch/torch.h>
#include <ohem/runtime.hpp>
#include <ohem/version.hpp>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  int threads = ohem::available_cores();
  bool tune_heap = true;
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0) {
      threads = std::atoi(argv[i] + 10);
    } else if (std::strcmp(argv[i], "--heap=default") == 0) {
      tune_heap = false;
    } else {
      rest.push_back(argv[i]);
    }
  }
  const std::string heap = tune_heap ? ohem::tune_heap_for_training().description
                                     : std::string("heap: glibc's defaults (--heap=default)");
  torch::set_num_threads(threads);
  torch::manual_seed(0);
  benchmark::AddCustomContext("torch_threads", std::to_string(torch::get_num_threads()));
  benchmark::AddCustomContext("heap", heap.rfind("heap: ", 0) == 0 ? heap.substr(6) : heap);
  benchmark::AddCustomContext("libtorch", TORCH_VERSION);
  benchmark::AddCustomContext("ohem", ohem::version_string());
  int n = static_cast<int>(rest.size());
  benchmark::Initialize(&n, rest.data());
  if (benchmark::ReportUnrecognizedArguments(n, rest.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
