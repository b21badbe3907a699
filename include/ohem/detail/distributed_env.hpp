#pragma once
/// @file
/// Internals of ohem/distributed.hpp: the launcher's environment (the variables torchrun sets), parsed
/// and checked.

#include <ohem/version.hpp>

#include <c10/util/Exception.h>

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <string>

OHEM_BEGIN_NAMESPACE
namespace detail {

/// The names of the variables, in the order they are reported.
inline const char* const* launcher_variables() {
  static const char* const names[] = {"MASTER_ADDR", "MASTER_PORT", "RANK",
                                      "WORLD_SIZE",  "LOCAL_RANK",  nullptr};
  return names;
}

/// Parses a non-negative decimal integer variable; throws naming the variable and its value.
inline int64_t parse_env_int(const char* name, const std::string& value) {
  TORCH_CHECK(!value.empty(), "ohem::distributed: environment variable ", name,
              " is set but empty; expected a non-negative integer");
  int64_t out = 0;
  for (char c : value) {
    TORCH_CHECK(c >= '0' && c <= '9', "ohem::distributed: environment variable ", name,
                " must be a non-negative integer, got \"", value, "\"");
    TORCH_CHECK(out <= (INT64_C(1) << 40), "ohem::distributed: environment variable ", name,
                " is out of range: \"", value, "\"");
    out = out * 10 + (c - '0');
  }
  return out;
}

/// Looks a variable up: returns true and sets `out` if it is set.
using EnvLookup = std::function<bool(const char* name, std::string& out)>;

inline EnvLookup process_env() {
  return [](const char* name, std::string& out) {
    const char* v = std::getenv(name);
    if (v == nullptr) return false;
    out = v;
    return true;
  };
}

inline EnvLookup map_env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name, std::string& out) {
    auto it = vars.find(name);
    if (it == vars.end()) return false;
    out = it->second;
    return true;
  };
}

}  // namespace detail
OHEM_END_NAMESPACE
