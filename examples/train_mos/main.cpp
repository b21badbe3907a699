// train_mos: MOS regression (L1 on MOS, multi-scale head), --ohem on|off. See docs/examples.md.
#include <toolkit/mos_trainer.hpp>

#include <toolkit/command_line.hpp>
#include <toolkit/errors.hpp>

int main(int argc, char** argv) {
  ohem_examples::tune_heap_at_start(argc, argv);  // printed before the threads line (docs/benchmarks.md)
  return ohem_examples::run_reporting_errors([&] { return train_mos::main(argc, argv); });
}
