// ohem-score: scores images with a trainer checkpoint (name,prediction) and exports the trained model as
// TorchScript. See --help and docs/scoring.md.
#include "ohem_score.hpp"

#include <toolkit/command_line.hpp>

#include <iostream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  ohem_examples::tune_heap_at_start(argc, argv);
  const std::vector<std::string> args(argv + 1, argv + argc);
  return ohem_score::run(args, std::cout, std::cerr);
}
