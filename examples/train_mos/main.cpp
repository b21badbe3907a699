// train_mos: MOS regression (L1 on MOS, multi-scale head), --ohem on|off. See docs/examples.md.
#include "trainer.hpp"

#include <exception>
#include <iostream>

int main(int argc, char** argv) {
  try {
    return train_mos::main(argc, argv);
  } catch (const c10::Error& e) {
    std::cerr << "error: " << e.what_without_backtrace() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
  }
  return 1;
}
