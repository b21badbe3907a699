// train_pairwise: the paper's BaseCNN trained on image pairs with the fidelity loss, --ohem on|off.
// See docs/examples.md.
#include <toolkit/pairwise_trainer.hpp>

#include <toolkit/command_line.hpp>
#include <toolkit/errors.hpp>

int main(int argc, char** argv) {
  ohem_examples::tune_heap_at_start(argc, argv);  // printed before the threads line (docs/benchmarks.md)
  return ohem_examples::run_reporting_errors([&] { return train_pairwise::main(argc, argv); });
}
