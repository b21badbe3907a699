// ohem-eval: IQA metrics with bootstrap intervals, and gMAD pairs, from a CSV file. See --help and
// docs/metrics.md, docs/gmad.md.
#include "ohem_eval.hpp"

#include <ohem/runtime.hpp>

#include <cstdio>
#include <string>
#include <vector>

int main(int argc, char* argv[]) {
  // glibc's heap set up as for training (the bootstrap's per-resample buffers are reused, not re-faulted).
  const ohem::HeapTuning heap = ohem::tune_heap_for_training();
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string out, err;
  const int rc = ohem_eval::run(args, out, err);
  // Once, after the line that names the bootstrap's threads (there is none without a bootstrap).
  const std::string threads_line = " thread(s)\n";
  const auto at = err.find(threads_line);
  if (at != std::string::npos) err.insert(at + threads_line.size(), "ohem-eval: " + heap.description + "\n");
  std::fputs(out.c_str(), stdout);
  std::fputs(err.c_str(), stderr);
  return rc;
}
