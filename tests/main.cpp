// The shared Catch2 main: seeds torch, prints the versions under test, then runs the tests.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <torch/torch.h>
#include <ohem/version.hpp>

#include <cstdio>

int main(int argc, char* argv[]) {
  torch::manual_seed(0);
  std::fprintf(stderr, "ohem %s, LibTorch %s, %d torch thread(s)\n", ohem::version_string(), TORCH_VERSION,
               torch::get_num_threads());
  return Catch::Session().run(argc, argv);
}
