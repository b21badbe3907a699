#pragma once
/// \file
/// How the report's sections read results.json's optional fields and its numbers (which may be null).
#include "validate.hpp"

#include <nlohmann/json.hpp>

#include <string>

namespace ohem_study {

namespace report_detail {

// The sections read the fields the check requires with `at()`; the optional ones (and numbers, which
// may be null) with the two readers below. nlohmann's `value(key, fallback)` would throw on null or on a
// field of another type; these fall back, so an odd optional field shows as "–" and stops nothing.

/// A number field if present (null, absent or not a number → NaN).
inline double num_or_nan(const json& j, const std::string& key) {
  if (!j.is_object()) return kNaN;
  const auto it = j.find(key);
  return it == j.end() || !it->is_number() ? kNaN : it->get<double>();
}

/// A string field if present, else `fallback`.
inline std::string str_or(const json& j, const std::string& key, const std::string& fallback) {
  if (!j.is_object()) return fallback;
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : fallback;
}

}  // namespace report_detail

}  // namespace ohem_study
