#pragma once
/// @file
/// Small I/O helpers of the trainers: a JSON value writer, a JSON-lines log, a progress bar with ETA
/// and atomic file replacement (write a temporary file in the same directory, then rename).

#include <torch/torch.h>

#include <fmt/format.h>

#include <unistd.h>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace ohem_examples {

/// Builds one JSON object, field by field, in insertion order. Non-finite numbers become null.
///
/// Example: `Json().add("epoch", 3).add("srcc", 0.91).str()` → `{"epoch":3,"srcc":0.91}`
class Json {
 public:
  /// Adds a string field.
  Json& add(const std::string& key, const std::string& v) { return raw(key, quote(v)); }
  Json& add(const std::string& key, const char* v) { return raw(key, quote(v)); }
  /// Adds a boolean field.
  Json& add(const std::string& key, bool v) { return raw(key, v ? "true" : "false"); }
  /// Adds a number field.
  Json& add(const std::string& key, double v) { return raw(key, number(v)); }
  Json& add(const std::string& key, int64_t v) { return raw(key, std::to_string(v)); }
  Json& add(const std::string& key, int v) { return raw(key, std::to_string(v)); }
  /// Adds a nested object.
  Json& add(const std::string& key, const Json& v) { return raw(key, v.str()); }
  /// Adds an array of numbers.
  Json& add(const std::string& key, const std::vector<double>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + number(v[i]);
    return raw(key, s + "]");
  }
  /// Adds an already serialised JSON value.
  Json& raw(const std::string& key, const std::string& json) {
    body_ += (body_.empty() ? "" : ",") + quote(key) + ":" + json;
    return *this;
  }
  /// Returns the object as compact JSON.
  std::string str() const { return "{" + body_ + "}"; }

  /// Returns `s` as a JSON string literal.
  static std::string quote(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          if (c < 0x20) {
            out += fmt::format("\\u{:04x}", c);
          } else {
            out += static_cast<char>(c);
          }
      }
    }
    return out + "\"";
  }
  /// Returns a number as JSON (shortest round-trip form; null if not finite).
  static std::string number(double v) { return std::isfinite(v) ? fmt::format("{}", v) : "null"; }

 private:
  std::string body_;
};

/// Replaces `path` atomically: `write(tmp)` writes a temporary file next to it, which is then renamed
/// over `path`, so a crash never leaves a half-written file. Throws naming the path on failure.
inline void atomic_write(const std::string& path, const std::function<void(const std::string&)>& write) {
  const std::filesystem::path p(path);
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  try {
    write(tmp);
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    TORCH_CHECK(false, "cannot rename \"", tmp, "\" to \"", path, "\": ", ec.message());
  }
}

/// Writes a text file atomically.
inline void write_text_file(const std::string& path, const std::string& text) {
  atomic_write(path, [&](const std::string& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    TORCH_CHECK(out.good(), "cannot open \"", tmp, "\" for writing");
    out << text;
    out.flush();
    TORCH_CHECK(out.good(), "writing \"", tmp, "\" failed");
  });
}

/// Appends JSON objects, one per line, to a file (flushed after each line). A default-constructed log
/// writes nothing.
class JsonLog {
 public:
  JsonLog() = default;
  /// Opens `path` for appending (or truncates it when `append` is false); throws if it cannot.
  explicit JsonLog(const std::string& path, bool append = true) {
    const std::filesystem::path p(path);
    if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
    out_ = std::make_shared<std::ofstream>(path, append ? std::ios::app : std::ios::trunc);
    TORCH_CHECK(out_->good(), "cannot open log file \"", path, "\"");
  }
  /// Writes one line.
  void write(const Json& j) {
    if (!out_) return;
    *out_ << j.str() << '\n';
    out_->flush();
  }

 private:
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
