// The shared Catch2 main: seeds torch, prints the versions under test, then runs the tests. With
// OHEM_TEST_NEEDS_CUDA set (CTest's "cuda" test) and no CUDA device, it exits with OHEM_TEST_SKIP_CODE
// before running anything, which CTest reports as skipped.
#define CATCH_CONFIG_RUNNER  // Catch2 2: this file defines main()
#define OHEM_CATCH_SESSION   // Catch2 3: Catch::Session
#include "catch.hpp"

#include <torch/torch.h>
#include <ohem/platform.hpp>
#include <ohem/version.hpp>

#include <cstdio>
#include <cstdlib>

int main(int argc, char* argv[]) {
  torch::manual_seed(0);
  const bool cuda = torch::cuda::is_available();
  std::fprintf(stderr, "ohem %s, LibTorch %s, Catch2 %s, %d torch thread(s), %zu CUDA device(s)\n",
               ohem::version_string(), TORCH_VERSION, OHEM_CATCH2_VERSION, torch::get_num_threads(),
               cuda ? torch::cuda::device_count() : size_t{0});
  // Where LibTorch's convolution gradients read unwritten memory (Debian 13's 2.6), oneDNN is turned off,
  // as the trainers do: the tests check our code, not that defect (tested in test_platform.cpp).
  const std::string warning = ohem::guard_convolution_backward();
  if (!warning.empty()) std::fprintf(stderr, "%s\n", warning.c_str());
  if (std::getenv("OHEM_TEST_NEEDS_CUDA") != nullptr && !cuda) {
    std::printf("no CUDA device: the [cuda] tests are skipped\n");
    return OHEM_TEST_SKIP_CODE;
  }
  return Catch::Session().run(argc, argv);
}
