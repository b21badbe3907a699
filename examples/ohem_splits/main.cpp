// ohem-splits: the random split protocol in one command (a trainer run per split seed, then the summary
// over the splits). See --help and docs/splits.md.
#include "ohem_splits.hpp"

#include <iostream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  return ohem_splits::run(args, std::cout, std::cerr);
}
