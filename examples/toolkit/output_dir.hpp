#pragma once
/// @file
/// One writer per output directory: `OutputLock` holds an advisory lock file (`.ohem.lock`, with the
/// holder's PID) for as long as a run writes into a directory; helpers to tell whether a directory
/// already holds a run, to remove what a crashed run of ours left half-written, and to cut a log back
/// to a checkpoint. POSIX (flock): the kernel releases the lock when its holder exits, also on
/// `kill -9`, so a lock file left by a crash is recognised as stale and taken over.

#include "files.hpp"

#include <torch/torch.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace ohem_examples {

/// An exclusive advisory lock on an output directory, released by the destructor (or by the kernel when
/// the process dies). Move-only.
class OutputLock {
 public:
  OutputLock() = default;
  /// Creates `dir` if needed and locks it. Throws naming the directory if it cannot be created or
  /// written, or if another live process holds the lock (naming its PID).
  explicit OutputLock(const std::string& dir) {
    namespace fs = std::filesystem;
    std::error_code ec;
    TORCH_CHECK(!fs::exists(dir, ec) || fs::is_directory(dir, ec), "output directory \"", dir,
                "\" exists and is not a directory");
    fs::create_directories(dir, ec);
    TORCH_CHECK(!ec, "cannot create output directory \"", dir, "\": ", ec.message());
    path_ = (fs::path(dir) / ".ohem.lock").string();
    for (int attempt = 0; attempt < 8; ++attempt) {
      fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
      TORCH_CHECK(fd_ >= 0, "cannot write into output directory \"", dir, "\" (", std::strerror(errno), ")");
      if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        const int err = errno;
        const std::string holder = read_pid();
        ::close(fd_);
        fd_ = -1;
        TORCH_CHECK(err != EWOULDBLOCK, "output directory \"", dir, "\" is in use by another run (process ",
                    holder.empty() ? "?" : holder, ", lock file \"", path_,
                    "\"); wait for it to end or choose another --out");
        TORCH_CHECK(false, "cannot lock \"", path_, "\": ", std::strerror(err));
      }
      // The file may have been removed by its previous holder between our open and our lock: then we
      // hold a lock on a file nobody else will see; try again with the file now at the path.
      struct stat mine {
      }, now{};
      if (::fstat(fd_, &mine) == 0 && ::stat(path_.c_str(), &now) == 0 && mine.st_ino == now.st_ino &&
          mine.st_dev == now.st_dev) {
        const std::string pid = std::to_string(::getpid()) + "\n";
        if (::ftruncate(fd_, 0) == 0) {
          [[maybe_unused]] const auto n = ::pwrite(fd_, pid.data(), pid.size(), 0);
        }
        return;
      }
      ::close(fd_);
      fd_ = -1;
    }
    TORCH_CHECK(false, "cannot lock \"", path_, "\": it keeps changing");
  }
  OutputLock(OutputLock&& o) noexcept : path_(std::move(o.path_)), fd_(std::exchange(o.fd_, -1)) {}
  OutputLock& operator=(OutputLock&& o) noexcept {
    if (this != &o) {
      release();
      path_ = std::move(o.path_);
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  OutputLock(const OutputLock&) = delete;
  OutputLock& operator=(const OutputLock&) = delete;
  ~OutputLock() { release(); }

  /// True while the lock is held.
  bool held() const { return fd_ >= 0; }
  /// Removes the lock file and releases the lock.
  void release() {
    if (fd_ < 0) return;
    ::unlink(path_.c_str());  // while still locked: nobody can take a lock on it in between
    ::close(fd_);
    fd_ = -1;
  }

 private:
  std::string read_pid() const {
    char buf[32] = {};
    const auto n = ::pread(fd_, buf, sizeof buf - 1, 0);
    std::string s(buf, n > 0 ? static_cast<size_t>(n) : 0);
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
  }

  std::string path_;
  int fd_ = -1;
};

/// The files a trainer run writes into its output directory.
inline const std::vector<std::string>& run_files() {
  static const std::vector<std::string> f{"log.jsonl",   "checkpoint.pt",   "results.json",
                                          "hardest.csv", "predictions.csv", "best.pt"};
  return f;
}

/// Returns the run files present in `dir` (empty if it holds no run).
inline std::vector<std::string> existing_run_files(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& f : run_files())
    if (std::filesystem::exists(std::filesystem::path(dir) / f, ec)) out.push_back(f);
  return out;
}

/// Removes the temporary files a run of ours may have left in `dir` when it was killed: names starting
/// with a run file's temporary prefix (`atomic_temp_prefix`, e.g. `checkpoint.pt.tmp.`), whatever
/// follows (also the `.tmp.<pid>` names of earlier versions). Call only while holding the directory's
/// lock: then no live writer owns them. Returns the names removed.
inline std::vector<std::string> remove_stale_run_temporaries(const std::string& dir) {
  std::vector<std::string> removed;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    for (const auto& f : run_files()) {
      if (name.rfind(atomic_temp_prefix(f), 0) == 0 && entry.is_regular_file(ec)) {
        std::filesystem::remove(entry.path(), ec);
        removed.push_back(name);
        break;
      }
    }
  }
  return removed;
}

}  // namespace ohem_examples
