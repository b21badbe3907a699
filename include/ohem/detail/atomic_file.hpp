#pragma once
/// @file
/// Internal: replacing a file atomically (write a temporary file beside it, then rename it over the
/// target), portably with `std::filesystem`.

#include <ohem/version.hpp>

#include <c10/util/Exception.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <system_error>

OHEM_BEGIN_NAMESPACE
namespace detail {

/// Calls `write(tmp)` to write a temporary file in `path`'s directory, then renames it over `path`, so a
/// reader sees the old file or the new one, never half of one. The temporary name carries a random
/// suffix, so concurrent writers do not collide. On failure (an exception from `write`, or the rename)
/// the temporary file is removed; a failed rename throws naming `who` and both paths.
inline void write_atomically(const std::string& path, const std::function<void(const std::string&)>& write,
                             const char* who) {
  std::random_device entropy;
  const std::uint64_t suffix = (static_cast<std::uint64_t>(entropy()) << 32) ^ entropy();
  const std::string tmp = path + ".tmp." + std::to_string(suffix);
  std::error_code ec;
  try {
    write(tmp);
  } catch (...) {
    std::filesystem::remove(tmp, ec);
    throw;
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    TORCH_CHECK(false, who, ": cannot rename \"", tmp, "\" to \"", path, "\": ", ec.message());
  }
}

}  // namespace detail
OHEM_END_NAMESPACE
