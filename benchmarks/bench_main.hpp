#pragma once
// Shared main of the benchmark programs: `--threads=N` sets torch's intra-op threads (default 1, as
// torch has here), and the context (threads, LibTorch and ohem versions) is printed and stored in the
// JSON output. Include once per program, after the benchmarks.
#include <benchmark/benchmark.h>
#include <torch/torch.h>
#include <ohem/version.hpp>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  int threads = 1;
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0) {
      threads = std::atoi(argv[i] + 10);
    } else {
      rest.push_back(argv[i]);
    }
  }
  torch::set_num_threads(threads);
  torch::manual_seed(0);
  benchmark::AddCustomContext("torch_threads", std::to_string(torch::get_num_threads()));
  benchmark::AddCustomContext("libtorch", TORCH_VERSION);
  benchmark::AddCustomContext("ohem", ohem::version_string());
  int n = static_cast<int>(rest.size());
  benchmark::Initialize(&n, rest.data());
  if (benchmark::ReportUnrecognizedArguments(n, rest.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
