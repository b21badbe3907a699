#pragma once
// Catch2 2 or 3, whichever CMake found (OHEM_CATCH2_MAJOR, set by tests/CMakeLists.txt), under the
// names the tests use: TEST_CASE/SECTION/CHECK..., Approx, GENERATE, and the string matcher Catch2 2
// calls Contains (Catch::Contains and Catch::Matchers::Contains; Catch2 3 names it ContainsSubstring).
// Define OHEM_CATCH_SESSION before including it for Catch::Session (the test main).

#if !defined(OHEM_CATCH2_MAJOR)
#error "OHEM_CATCH2_MAJOR is not defined: build the tests through tests/CMakeLists.txt"
#elif OHEM_CATCH2_MAJOR == 3

#include <catch2/catch_approx.hpp>
#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>
#ifdef OHEM_CATCH_SESSION
#include <catch2/catch_session.hpp>
#endif

#include <string>

// Catch2 3's Contains is the range matcher (catch_matchers_contains.hpp, deliberately not included):
// here it is Catch2 2's substring matcher again.
namespace Catch {
namespace Matchers {
inline StringContainsMatcher Contains(const std::string& str, CaseSensitive cs = CaseSensitive::Yes) {
  return ContainsSubstring(str, cs);
}
}  // namespace Matchers
using Matchers::Contains;
}  // namespace Catch
using Catch::Approx;

#elif OHEM_CATCH2_MAJOR == 2

#include <catch2/catch.hpp>

#else
#error "unsupported OHEM_CATCH2_MAJOR (expected 2 or 3)"
#endif
