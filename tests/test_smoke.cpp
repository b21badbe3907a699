#include "support.hpp"

#include <ohem/ohem.hpp>

TEST_CASE("version string matches the macros", "[version]") {
  CHECK(std::string(ohem::version_string()) == std::to_string(OHEM_VERSION_MAJOR) + "." +
                                                   std::to_string(OHEM_VERSION_MINOR) + "." +
                                                   std::to_string(OHEM_VERSION_PATCH));
}
