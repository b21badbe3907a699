#pragma once
/// The examples' and tools' top level: an exception that escapes the program becomes one line
/// `error: <what>` on stderr and exit status 1 (LibTorch's errors without their C++ backtrace).
#include <c10/util/Exception.h>

#include <exception>
#include <iostream>
#include <ostream>

namespace ohem_examples {

/// Runs `program` (returning the exit status) and reports an escaping exception as `error: <what>` on
/// `err` (default: stderr), then returns 1. Example: `int main(int argc, char** argv) { return
/// run_reporting_errors([&] { return train(argc, argv); }); }`
template <typename Program>
int run_reporting_errors(Program&& program, std::ostream& err = std::cerr) {
  try {
    return program();
  } catch (const c10::Error& e) {
    err << "error: " << e.what_without_backtrace() << "\n";
  } catch (const std::exception& e) {
    err << "error: " << e.what() << "\n";
  }
  return 1;
}

}  // namespace ohem_examples
