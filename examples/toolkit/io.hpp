#pragma once
/// @file
/// Small I/O helpers of the trainers: a JSON-lines log (nlohmann/json) and a progress bar with ETA.
/// (Atomic file replacement: files.hpp.)

#include "files.hpp"

#include <torch/torch.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <unistd.h>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

namespace ohem_examples {

/// Appends JSON objects, one per line, to a file (flushed after each line). A default-constructed log
/// writes nothing. Non-finite numbers are written as null, invalid UTF-8 is replaced.
class JsonLog {
 public:
  JsonLog() = default;
  /// Opens `path` for appending (or truncates it when `append` is false); throws if it cannot.
  explicit JsonLog(const std::string& path, bool append = true) : path_(path) {
    const std::filesystem::path p(path);
    if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
    out_ =
        std::make_shared<std::ofstream>(path, std::ios::binary | (append ? std::ios::app : std::ios::trunc));
    TORCH_CHECK(out_->good(), "cannot open log file \"", path, "\"");
  }
  /// Writes one line.
  void write(const nlohmann::ordered_json& j) {
    if (!out_) return;
    const std::string line = j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + '\n';
    *out_ << line;
    out_->flush();
    TORCH_CHECK(out_->good(), "writing the log \"", path_, "\" failed",
                ohem::space_note(ohem::parent_directory(path_), line.size()));
  }
  /// Returns the size of the file in bytes (0 without a file).
  int64_t bytes() const {
    std::error_code ec;
    const auto n = out_ ? std::filesystem::file_size(path_, ec) : 0;
    return ec ? 0 : static_cast<int64_t>(n);
  }

 private:
  std::string path_;
  std::shared_ptr<std::ofstream> out_;
};

/// A progress bar with elapsed time, ETA and a free-text status (e.g. the running loss parts), drawn on
/// stderr: redrawn in place on a terminal, or one line every ~10% otherwise. Disabled when `enabled` is
/// false.
class Progress {
 public:
  Progress(std::string label, int64_t total, bool enabled = true)
      : label_(std::move(label)),
        total_(total),
        enabled_(enabled),
        tty_(::isatty(2) != 0),
        start_(std::chrono::steady_clock::now()) {}
  /// Sets the position (0..total) and status text.
  void update(int64_t done, const std::string& status = {}) {
    if (!enabled_ || total_ <= 0) return;
    const double f = std::min(1.0, static_cast<double>(done) / static_cast<double>(total_));
    const int decile = static_cast<int>(f * 10);
    const auto now = std::chrono::steady_clock::now();
    if (tty_) {
      if (now - last_ < std::chrono::milliseconds(100) && done < total_) return;
    } else if (decile == last_decile_ && done < total_) {
      return;
    }
    last_ = now;
    last_decile_ = decile;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double eta = f > 0 ? elapsed * (1 - f) / f : 0.0;
    const int width = 24, fill = static_cast<int>(f * width);
    const std::string bar =
        std::string(static_cast<size_t>(fill), '#') + std::string(static_cast<size_t>(width - fill), '.');
    const std::string line =
        fmt::format("{} [{}] {}/{} {:.0f}s ETA {:.0f}s {}", label_, bar, done, total_, elapsed, eta, status);
    if (tty_) {
      std::cerr << '\r' << line << "\033[K" << std::flush;
    } else {
      std::cerr << line << '\n';
    }
  }
  /// Ends the line (terminal mode).
  void finish() {
    if (enabled_ && tty_) std::cerr << '\n';
  }

 private:
  std::string label_;
  int64_t total_;
  bool enabled_, tty_;
  std::chrono::steady_clock::time_point start_, last_{};
  int last_decile_ = -1;
};

}  // namespace ohem_examples
