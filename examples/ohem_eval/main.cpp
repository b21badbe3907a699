// ohem-eval: IQA metrics with bootstrap intervals, and gMAD pairs, from a CSV file. See --help and
// docs/metrics.md, docs/gmad.md.
#include "ohem_eval.hpp"

#include <cstdio>
#include <string>
#include <vector>

int main(int argc, char* argv[]) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string out, err;
  const int rc = ohem_eval::run(args, out, err);
  std::fputs(out.c_str(), stdout);
  std::fputs(err.c_str(), stderr);
  return rc;
}
