#pragma once
/// @file
/// Internals of ohem/runtime.hpp: how the heap settings are printed.

#include <ohem/version.hpp>

#include <cstdint>
#include <string>

OHEM_BEGIN_NAMESPACE
namespace detail {

/// Returns `bytes` as "N MiB", "N KiB" or "N B", the largest unit that divides it.
inline std::string heap_bytes(int64_t bytes) {
  if (bytes >= (int64_t{1} << 20) && bytes % (int64_t{1} << 20) == 0)
    return std::to_string(bytes >> 20) + " MiB";
  if (bytes >= 1024 && bytes % 1024 == 0) return std::to_string(bytes >> 10) + " KiB";
  return std::to_string(bytes) + " B";
}

}  // namespace detail
OHEM_END_NAMESPACE
