// train_pairwise: the paper's BaseCNN trained on image pairs with the fidelity loss, --ohem on|off.
// See docs/examples.md.
#include "trainer.hpp"

#include <common/errors.hpp>

int main(int argc, char** argv) {
  return ohem_examples::run_reporting_errors([&] { return train_pairwise::main(argc, argv); });
}
