#include "support.hpp"

#include <ohem/ohem.hpp>

#include <filesystem>
#include <set>
#include <string>

TEST_CASE("version string matches the macros", "[version]") {
  CHECK(std::string(ohem::version_string()) == std::to_string(OHEM_VERSION_MAJOR) + "." +
                                                   std::to_string(OHEM_VERSION_MINOR) + "." +
                                                   std::to_string(OHEM_VERSION_PATCH));
}

namespace {

// Every value of E has a distinct name and key, its key reads back to it, and a value outside E reads "?".
template <typename E>
void check_enum_names(size_t expected_values) {
  std::set<std::string> names, keys;
  for (const auto& n : ohem::EnumNames<E>::values) {
    CHECK(std::string(ohem::to_string(n.value)) == n.name);
    CHECK(std::string(ohem::enum_key(n.value)) == n.key);
    CHECK(ohem::enum_from_key<E>(n.key) == n.value);
    names.insert(n.name);
    keys.insert(n.key);
  }
  CHECK(names.size() == expected_values);
  CHECK(keys.size() == expected_values);
  CHECK(std::string(ohem::enum_name(static_cast<E>(99))) == "?");
  CHECK_FALSE(ohem::enum_from_key<E>("no-such-key").has_value());
}

}  // namespace

TEST_CASE("enum names: each enum lists its values once, and to_string, keys and parsing agree", "[enum]") {
  check_enum_names<ohem::MaskCriterion>(4);
  check_enum_names<ohem::BatchNormPolicy>(3);
  check_enum_names<ohem::SelfCompetitorMode>(2);
  check_enum_names<ohem::ThinLayerAction>(3);
  check_enum_names<ohem::Consistency>(4);
  check_enum_names<ohem::LogisticModel>(2);
  check_enum_names<ohem::FitStatus>(3);
  // The names to_string returned before the tables (written out here, not read from them).
  CHECK(std::string(ohem::to_string(ohem::MaskCriterion::GlobalMagnitude)) == "GlobalMagnitude");
  CHECK(std::string(ohem::to_string(ohem::Consistency::SoftmaxMSE)) == "SoftmaxMSE");
  CHECK(std::string(ohem::to_string(ohem::LogisticModel::FiveParameter)) == "logistic5");
  CHECK(std::string(ohem::to_string(ohem::FitStatus::IterationLimit)) == "IterationLimit");
  // The keys the example tools have always accepted and written.
  CHECK(std::string(ohem::enum_key(ohem::MaskCriterion::GlobalMagnitude)) == "magnitude");
  CHECK(std::string(ohem::enum_key(ohem::MaskCriterion::StructuredL1)) == "structured-l1");
  CHECK(ohem::enum_from_key<ohem::BatchNormPolicy>("separate") == ohem::BatchNormPolicy::Separate);
  CHECK(ohem::enum_from_key<ohem::SelfCompetitorMode>("sequential") == ohem::SelfCompetitorMode::Sequential);
  static_assert(ohem::enum_from_key<ohem::ThinLayerAction>("refuse") == ohem::ThinLayerAction::Refuse);
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
