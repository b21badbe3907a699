#pragma once
/// @file
/// File helpers shared by the examples and tools: the examples' atomic write (the library's one
/// implementation, `ohem::write_atomically`, plus the examples' policy: path checks, creating
/// directories, syncing to disk) and the checks done on input and output paths *before*
/// any computation (an output that is one of the inputs, a missing directory, a directory given as a
/// file, no permission to write).
///
/// Portable: std::filesystem and <cstdio> only; syncing to disk uses POSIX fsync where available and
/// is skipped elsewhere.

#include <ohem/atomic_file.hpp>

#include <torch/torch.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <unistd.h>
#define OHEM_EXAMPLES_HAVE_FSYNC 1
#else
#define OHEM_EXAMPLES_HAVE_FSYNC 0
#endif

namespace ohem_examples {

/// Options of `atomic_write_file`.
struct AtomicWriteOptions {
  /// Flush the temporary file and the directory to disk (fsync) before and after the rename, so the
  /// new content survives a power loss. POSIX only; ignored elsewhere.
  TORCH_ARG(bool, sync) = false;
  /// Create the target's parent directories if they are missing (otherwise a missing directory is an
  /// error).
  TORCH_ARG(bool, create_directories) = false;
};

namespace files_detail {

/// Flushes a file or directory to disk (POSIX fsync); a no-op where unavailable.
inline void sync_path(const std::filesystem::path& p, bool directory) {
#if OHEM_EXAMPLES_HAVE_FSYNC
  const int fd = ::open(p.string().c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) {
    TORCH_CHECK(directory, "cannot open \"", p.string(), "\" to sync it: ", std::strerror(errno));
    return;  // some file systems do not let a directory be opened; the rename is still atomic
  }
  const int rc = ::fsync(fd);
  const int e = errno;
  ::close(fd);
  TORCH_CHECK(rc == 0 || directory, "cannot sync \"", p.string(), "\" to disk: ", std::strerror(e));
#else
  (void)p;
  (void)directory;
#endif
}

/// Writes `bytes` to the (new, empty) file `tmp` with checked writes and, with `sync`, flushes it to disk
/// (fsync). Throws c10::Error naming `target` (the file the bytes are for), the system's reason (e.g. "No
/// space left on device") and the bytes needed and available; the caller removes `tmp`.
inline void write_checked(const std::string& tmp, const std::string& bytes, const std::string& target,
                          bool sync) {
  std::function<bool(std::FILE*)> flush_to_disk;
#if OHEM_EXAMPLES_HAVE_FSYNC
  if (sync) flush_to_disk = [](std::FILE* f) { return ::fsync(::fileno(f)) == 0; };
#else
  (void)sync;
#endif
  ohem::write_bytes_checked(tmp, bytes, target, "", flush_to_disk);
}

}  // namespace files_detail

/// Returns the prefix of the temporary files `atomic_write_file` creates next to `target`
/// (`<file name>.tmp.`), e.g. to recognise and remove stale ones after a crash.
inline std::string atomic_temp_prefix(const std::string& target) {
  return ohem::atomic_temp_prefix(target);
}

/// Removes the temporaries `atomic_write_file` left next to `target` after a crash (files named
/// `atomic_temp_prefix(target)` followed by 16 hex digits). Only call it while no other process writes
/// `target` (e.g. while holding the output directory's lock). Returns how many were removed.
inline int64_t remove_stale_temporaries(const std::string& target) {
  namespace fs = std::filesystem;
  const fs::path dir = ohem::parent_directory(fs::path(target));
  const std::string prefix = atomic_temp_prefix(target);
  int64_t removed = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() != prefix.size() + 16 || name.compare(0, prefix.size(), prefix) != 0) continue;
    if (name.find_first_not_of("0123456789abcdef", prefix.size()) != std::string::npos) continue;
    std::error_code rm;
    if (fs::remove(it->path(), rm)) ++removed;
  }
  return removed;
}

/// Replaces `path` atomically with the library's one implementation (`ohem::write_atomically`):
/// `write(tmp)` writes the new content to a new, uniquely named temporary file in the same directory (it
/// may open it with any stream, truncating), which is then renamed over `path` — readers see the old
/// file or the new one, never a half-written one. The temporary is removed if `write` throws, if syncing
/// fails or if the rename fails. Adds the examples' policy: the checks below, `create_directories` and
/// `sync`.
///
/// Throws c10::Error naming the path if `path` is a directory, its directory is missing (unless
/// `create_directories`) or not writable, or the rename fails; rethrows what `write` throws.
/// Example: `atomic_write_file("out/a.json", [&](const std::string& tmp) { std::ofstream(tmp) << s; });`
inline void atomic_write_file(const std::string& path, const std::function<void(const std::string&)>& write,
                              const AtomicWriteOptions& options = {}) {
  namespace fs = std::filesystem;
  TORCH_CHECK(!path.empty(), "cannot write a file with an empty path");
  const fs::path p(path);
  const fs::path dir = ohem::parent_directory(p);
  std::error_code ec;
  if (options.create_directories() && p.has_parent_path()) {
    fs::create_directories(dir, ec);
    TORCH_CHECK(!ec, "cannot create directory \"", dir.string(), "\" for \"", path, "\": ", ec.message());
  }
  TORCH_CHECK(!fs::is_directory(p, ec), "\"", path, "\" is a directory; expected a file path");
  TORCH_CHECK(fs::is_directory(dir, ec), "cannot write \"", path, "\": directory \"", dir.string(),
              "\" does not exist");
  std::function<void(const std::string&)> sync_file;
  if (options.sync()) sync_file = [](const std::string& tmp) { files_detail::sync_path(tmp, false); };
  ohem::write_atomically(path, write, "atomic_write_file", sync_file);
  if (options.sync()) files_detail::sync_path(dir, true);
}

/// Replaces `path` atomically with `bytes` (see `atomic_write_file`). Every write is checked: a full
/// disk is an error naming `path`, the system's reason and the bytes needed and available, and leaves
/// no temporary file behind (the previous `path` is untouched).
///
/// Example: `atomic_write_text("results.json", json.dump(2) + "\n");`
inline void atomic_write_text(const std::string& path, const std::string& bytes,
                              const AtomicWriteOptions& options = {}) {
  atomic_write_file(
      path, [&](const std::string& tmp) { files_detail::write_checked(tmp, bytes, path, options.sync()); },
      options);
}

/// Writes several files as one: every file's bytes go to its own temporary first (checked writes, as
/// `atomic_write_text`), and only when all are written are they renamed over their targets. A failure
/// while writing (e.g. a full disk) leaves every target as it was and no temporary behind: the outputs
/// appear all or none. (A rename failing midway, which needs no space, can still leave the first ones
/// replaced; it is reported.) `files` are `{path, bytes}` pairs with distinct paths.
///
/// Example: `atomic_write_texts({{"a.csv", csv}, {"a.html", page}});`
inline void atomic_write_texts(const std::vector<std::pair<std::string, std::string>>& files,
                               const AtomicWriteOptions& options = {}) {
  namespace fs = std::filesystem;
  std::vector<fs::path> temps;
  auto remove_temps = [&](size_t from) {
    for (size_t i = from; i < temps.size(); ++i) {
      std::error_code ignored;
      fs::remove(temps[i], ignored);
    }
  };
  try {
    for (const auto& [path, bytes] : files) {
      TORCH_CHECK(!path.empty(), "cannot write a file with an empty path");
      const fs::path dir = ohem::parent_directory(fs::path(path));
      std::error_code ec;
      if (options.create_directories()) fs::create_directories(dir, ec);
      TORCH_CHECK(!fs::is_directory(path, ec), "\"", path, "\" is a directory; expected a file path");
      std::string error;
      temps.push_back(ohem::create_temp_beside(fs::path(path), error));
      if (temps.back().empty()) {
        temps.pop_back();
        TORCH_CHECK(false, "cannot create a temporary file in \"", dir.string(), "\" to write \"", path,
                    "\": ", error);
      }
      files_detail::write_checked(temps.back().string(), bytes, path, options.sync());
    }
  } catch (...) {
    remove_temps(0);
    throw;
  }
  for (size_t i = 0; i < files.size(); ++i) {
    std::error_code ec;
    fs::rename(temps[i], files[i].first, ec);
    if (ec) {
      remove_temps(i);
      TORCH_CHECK(false, "cannot rename \"", temps[i].string(), "\" to \"", files[i].first,
                  "\": ", ec.message(), i > 0 ? " (the files before it were replaced)" : "");
    }
  }
  if (options.sync()) {
    for (const auto& f : files) files_detail::sync_path(ohem::parent_directory(fs::path(f.first)), true);
  }
}

/// Checks that `path` can be read as an input file: it exists and is not a directory. `what` names it
/// in the message (e.g. "input CSV").
///
/// Example: `check_input_file(args.input, "input CSV");`
inline void check_input_file(const std::string& path, const std::string& what = "input file") {
  namespace fs = std::filesystem;
  std::error_code ec;
  TORCH_CHECK(!path.empty(), what, ": empty path");
  const auto st = fs::status(path, ec);
  TORCH_CHECK(fs::exists(st), what, " \"", path, "\": cannot open it: the file does not exist");
  TORCH_CHECK(!fs::is_directory(st), what, " \"", path, "\" is a directory; expected a file");
}

/// Checks an output path before any work is done, so that a run does not fail (or destroy an input)
/// after minutes of computation. Refuses: an empty path; an output that is one of `inputs` (the same
/// file, also through symbolic or hard links); an existing directory; a missing parent directory or a
/// parent that is not a directory; a directory where files cannot be created (checked by creating and
/// removing a temporary file there). `what` names the option in messages (e.g. "--json").
///
/// Example: `check_output_path(args.json, {args.input}, "--json");`
inline void check_output_path(const std::string& out, const std::vector<std::string>& inputs,
                              const std::string& what = "output") {
  namespace fs = std::filesystem;
  TORCH_CHECK(!out.empty(), what, ": empty output path");
  const fs::path p(out);
  std::error_code ec;
  const auto st = fs::status(p, ec);
  if (fs::exists(st)) {
    TORCH_CHECK(!fs::is_directory(st), what, " \"", out, "\" is a directory; expected a file path");
    for (const auto& in : inputs) {
      std::error_code e2;
      if (!in.empty() && fs::equivalent(p, fs::path(in), e2) && !e2) {
        TORCH_CHECK(false, what, " \"", out, "\" is the input file \"", in,
                    "\" (the same file); refusing to overwrite an input");
      }
    }
  }
  const fs::path dir = ohem::parent_directory(p);
  const auto ds = fs::status(dir, ec);
  TORCH_CHECK(fs::exists(ds), what, " \"", out, "\": directory \"", dir.string(), "\" does not exist");
  TORCH_CHECK(fs::is_directory(ds), what, " \"", out, "\": \"", dir.string(), "\" is not a directory");
  std::string err;
  const fs::path probe = ohem::create_temp_beside(p, err);
  TORCH_CHECK(!probe.empty(), what, " \"", out, "\": cannot create files in directory \"", dir.string(),
              "\": ", err);
  fs::remove(probe, ec);
}

/// Checks several outputs (`{what, path}` pairs; empty paths are skipped) as `check_output_path` does,
/// and that no two of them are the same file.
///
/// Example: `check_output_paths({{"--json", a.json}, {"--pairs", a.pairs}}, {a.input});`
inline void check_output_paths(const std::vector<std::pair<std::string, std::string>>& outputs,
                               const std::vector<std::string>& inputs) {
  namespace fs = std::filesystem;
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (outputs[i].second.empty()) continue;
    check_output_path(outputs[i].second, inputs, outputs[i].first);
    for (size_t j = 0; j < i; ++j) {
      if (outputs[j].second.empty()) continue;
      std::error_code e1, e2;
      bool same =
          fs::weakly_canonical(outputs[i].second, e1) == fs::weakly_canonical(outputs[j].second, e2) && !e1 &&
          !e2;
      same = same || (fs::equivalent(outputs[i].second, outputs[j].second, e1) && !e1);
      TORCH_CHECK(!same, outputs[i].first, " and ", outputs[j].first, " name the same file \"",
                  outputs[i].second, "\"");
    }
  }
}

}  // namespace ohem_examples

#undef OHEM_EXAMPLES_HAVE_FSYNC
