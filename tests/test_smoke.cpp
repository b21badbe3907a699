#include "support.hpp"

#include <ohem/ohem.hpp>

#include <filesystem>
#include <string>

TEST_CASE("version string matches the macros", "[version]") {
  CHECK(std::string(ohem::version_string()) == std::to_string(OHEM_VERSION_MAJOR) + "." +
                                                   std::to_string(OHEM_VERSION_MINOR) + "." +
                                                   std::to_string(OHEM_VERSION_PATCH));
}

TEST_CASE("temp_path never returns a path that exists (stale files of an earlier process with our PID)",
          "[support]") {
  const std::string first = ohem_test::temp_path("stale");
  CHECK_FALSE(std::filesystem::exists(first));
  // The next two names temp_path would give, left behind by an earlier process that had this PID.
  const std::string prefix = first.substr(0, first.rfind('.') + 1);
  const int n = std::stoi(first.substr(first.rfind('.') + 1));
  for (int k = 1; k <= 2; ++k) std::filesystem::create_directories(prefix + std::to_string(n + k));
  const std::string next = ohem_test::temp_path("stale");
  CHECK_FALSE(std::filesystem::exists(next));
  CHECK(next == prefix + std::to_string(n + 3));
  for (int k = 1; k <= 2; ++k) std::filesystem::remove(prefix + std::to_string(n + k));
}
