#pragma once
/// @file
/// Replacing a file atomically: write a uniquely named temporary file beside it, then rename it over
/// the target, so a reader sees the old file or the new one, never half of one; portably with
/// `std::filesystem` and `<cstdio>`. The library's own savers use it (`Masks::save`,
/// `HardnessTracker::save_csv`), and so do the toolkit and the tools (examples/toolkit/files.hpp adds
/// their policy: path checks, directory creation, syncing to disk). A failed write names the file, the
/// system's reason and the space it needed, and leaves no temporary behind.
///
/// ```cpp
/// ohem::write_atomically("scores.csv", [&](const std::string& tmp) {
///   std::ofstream out(tmp);
///   out << "name,prediction\n" << rows;
///   TORCH_CHECK(out.flush(), "cannot write ", tmp);
/// }, "my_tool");
/// ```

#include <ohem/version.hpp>

#include <c10/util/Exception.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <system_error>
#include <thread>

OHEM_BEGIN_NAMESPACE

/// Returns the prefix of the temporary files `write_atomically` creates next to `target`
/// (`<file name>.tmp.`); the prefix is followed by 16 lower-case hex digits.
inline std::string atomic_temp_prefix(const std::filesystem::path& target) {
  return target.filename().string() + ".tmp.";
}

/// Returns the directory a path's file lives in ("." for a bare file name).
inline std::filesystem::path parent_directory(const std::filesystem::path& p) {
  return p.has_parent_path() ? p.parent_path() : std::filesystem::path(".");
}

/// Creates a new, empty, uniquely named file `<dir>/<name>.tmp.<16 hex digits>` next to `target`
/// (exclusive creation: never an existing file). Returns an empty path and sets `error` to the reason
/// on failure.
inline std::filesystem::path create_temp_beside(const std::filesystem::path& target, std::string& error) {
  // Names only need to differ between writers; exclusive creation below makes a clash harmless (the
  // next name is tried). A per-process counter mixed with the clock, the thread and this function's
  // address (which differs between processes under address-space randomisation) through splitmix64.
  static std::atomic<std::uint64_t> counter{0};
  const auto seed =
      static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
      (static_cast<std::uint64_t>(std::hash<std::thread::id>{}(std::this_thread::get_id())) << 17) ^
      static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(&counter));
  auto next_name = [&] {
    std::uint64_t z = seed + 0x9e3779b97f4a7c15ull * (counter.fetch_add(1) + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  };
  const std::filesystem::path dir = parent_directory(target);
  for (int attempt = 0; attempt < 64; ++attempt) {
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(next_name()));
    std::filesystem::path tmp = dir / (atomic_temp_prefix(target) + hex);
    errno = 0;
    // "x": exclusive creation (C11 fopen mode, part of C++17's <cstdio>).
    if (std::FILE* f = std::fopen(tmp.string().c_str(), "wbx")) {
      std::fclose(f);
      return tmp;
    }
    if (errno != EEXIST) {
      error = errno ? std::strerror(errno) : "unknown error";
      return {};
    }
  }
  error = "64 unique names in a row already existed";
  return {};
}

/// " (N bytes needed, M available in "dir")": what a failed write says about the space it needed.
inline std::string space_note(const std::filesystem::path& dir, std::uintmax_t needed) {
  std::error_code ec;
  const std::filesystem::space_info sp = std::filesystem::space(dir, ec);
  if (ec) return " (" + std::to_string(needed) + " bytes needed)";
  return " (" + std::to_string(needed) + " bytes needed, " + std::to_string(sp.available) +
         " available in \"" + dir.string() + "\")";
}

/// Writes `bytes` to the file `tmp` (truncating) with checked writes, then `sync(file)` if given (e.g.
/// fsync; it returns false and sets errno on failure). Throws c10::Error starting with `who` (if not
/// empty) that names `target` (the file the bytes are for), the system's reason (e.g. "No space left on
/// device") and the bytes needed and available; it empties `tmp` first, so the space reported is real.
/// The caller removes `tmp`.
template <typename = void>
void write_bytes_checked(const std::string& tmp, const std::string& bytes, const std::string& target,
                         const std::string& who, const std::function<bool(std::FILE*)>& sync = nullptr) {
  const std::filesystem::path dir = parent_directory(std::filesystem::path(target));
  auto fail = [&](int err) {
    std::error_code ignored;
    std::filesystem::resize_file(tmp, 0, ignored);
    TORCH_CHECK(false, who, who.empty() ? "" : ": ", "cannot write \"", target,
                "\": ", err ? std::strerror(err) : "write error", space_note(dir, bytes.size()));
  };
  errno = 0;
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) fail(errno);
  errno = 0;
  const bool written = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size() && std::fflush(f) == 0;
  int err = errno;
  errno = 0;
  const bool synced = !written || !sync || sync(f);
  if (written && !synced) err = errno;
  errno = 0;
  const bool closed = std::fclose(f) == 0;
  if (written && synced && !closed) err = errno;
  if (!written || !synced || !closed) fail(err);
}

/// Replaces `path` atomically: creates a new, uniquely named temporary file in `path`'s directory,
/// calls `write(tmp)` to fill it (it may open it with any stream, truncating), then `before_rename(tmp)`
/// if given (e.g. to sync it to disk), then renames it over `path`, so a reader sees the old file or the
/// new one, never half of one. On every error path (the temporary cannot be created, `write` or
/// `before_rename` throws, the rename fails) the temporary is removed; errors of ours throw `c10::Error`
/// naming `who` and the paths, and what `write` throws is rethrown. (A template so that a translation unit
/// that never writes a file compiles none of it.)
template <typename = void>
void write_atomically(const std::string& path, const std::function<void(const std::string&)>& write,
                      const char* who,
                      const std::function<void(const std::string&)>& before_rename = nullptr) {
  namespace fs = std::filesystem;
  TORCH_CHECK(!path.empty(), who, ": cannot write a file with an empty path");
  std::string error;
  const fs::path tmp = create_temp_beside(fs::path(path), error);
  TORCH_CHECK(!tmp.empty(), who, ": cannot create a temporary file in \"", parent_directory(path).string(),
              "\" to write \"", path, "\": ", error);
  try {
    write(tmp.string());
    if (before_rename) before_rename(tmp.string());
    std::error_code ec;
    fs::rename(tmp, path, ec);
    TORCH_CHECK(!ec, who, ": cannot rename \"", tmp.string(), "\" to \"", path, "\": ", ec.message());
  } catch (...) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw;
  }
}

OHEM_END_NAMESPACE
