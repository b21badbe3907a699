#pragma once
// Shared helpers of the test suite: tensor comparison with explicit tolerances, scratch files and
// directories, reading and writing whole files, listing a directory.

#include "catch.hpp"

#include <torch/torch.h>

#include <unistd.h>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <set>
#include <sstream>
#include <string>

/// The marker a skipped test case prints; tests/CMakeLists.txt gives every discovered test
/// SKIP_REGULAR_EXPRESSION on it, so CTest reports the case as skipped with Catch2 2 and 3 alike.
#define OHEM_TEST_SKIP_MARKER "OHEM_TEST_SKIPPED"

/// Skips the current test case saying why (use it in the TEST_CASE body, not in a helper: it returns).
/// Catch2 >= 3.3 skips it (SKIP); with Catch2 2 the case prints the marker and returns, and CTest shows
/// it as skipped (a direct run of ohem_tests counts it as passed, with the marker and reason on stdout).
#if OHEM_CATCH2_MAJOR >= 3 && defined(SKIP)
#define OHEM_SKIP(why)                                           \
  do {                                                           \
    std::cout << OHEM_TEST_SKIP_MARKER ": " << why << std::endl; \
    SKIP(why);                                                   \
  } while (false)
#else
#define OHEM_SKIP(why)                                           \
  do {                                                           \
    std::cout << OHEM_TEST_SKIP_MARKER ": " << why << std::endl; \
    return;                                                      \
  } while (false)
#endif

/// Starts a CUDA test case (tag it "[.][cuda]"): where torch::cuda::is_available() is false, the test
/// is skipped (Catch2 >= 3.3) or fails saying why (Catch2 2 has no skip). CTest's "cuda" test never gets
/// there: ohem_tests exits with the skip code first (tests/main.cpp).
#if OHEM_CATCH2_MAJOR >= 3 && defined(SKIP)
#define OHEM_REQUIRE_CUDA()                                   \
  do {                                                        \
    if (!torch::cuda::is_available()) SKIP("no CUDA device"); \
  } while (false)
#else
#define OHEM_REQUIRE_CUDA()                                                                            \
  do {                                                                                                 \
    if (!torch::cuda::is_available()) FAIL("no CUDA device: run the [cuda] tests where there is one"); \
  } while (false)
#endif

namespace ohem_test {

/// Returns true if |a - b| <= atol + rtol * |b| elementwise and the shapes match; prints the worst
/// element otherwise (through Catch's INFO mechanism at the call site: use CHECK(close(...))).
inline bool close(const torch::Tensor& a, const torch::Tensor& b, double rtol = 0.0, double atol = 1e-6) {
  if (!a.defined() || !b.defined()) return a.defined() == b.defined();
  if (a.sizes() != b.sizes()) {
    UNSCOPED_INFO("shape " << a.sizes() << " vs " << b.sizes());
    return false;
  }
  if (a.numel() == 0) return true;
  auto da = a.detach().to(torch::kCPU, torch::kDouble), db = b.detach().to(torch::kCPU, torch::kDouble);
  auto err = (da - db).abs() - (atol + rtol * db.abs());
  const double worst = err.max().item<double>();
  if (worst > 0) {
    UNSCOPED_INFO("max |a-b| = " << (da - db).abs().max().item<double>() << " exceeds atol " << atol
                                 << " + rtol " << rtol << "·|b|");
  }
  return worst <= 0;
}

/// Returns true if both tensors have the same dtype, shape and bytes.
inline bool bit_identical(const torch::Tensor& a, const torch::Tensor& b) {
  return a.scalar_type() == b.scalar_type() && a.sizes() == b.sizes() && torch::equal(a.cpu(), b.cpu());
}

/// Returns a fresh path (nothing exists there) for a scratch file under the build tree's test tmp dir (or
/// the system's): <name>.<pid>.<n>. The tmp dir outlives the test processes and PIDs are reused (pid_max
/// is often 32768), so a name a previous run left is skipped, never reused: a trainer test would find
/// the old run's log.jsonl in "its" output directory.
inline std::string temp_path(const std::string& name) {
  const char* dir = std::getenv("OHEM_TEST_TMP");
  std::filesystem::path base = dir ? dir : std::filesystem::temp_directory_path();
  std::filesystem::create_directories(base);
  static int counter = 0;
  std::filesystem::path p;
  do {
    std::ostringstream os;
    os << name << "." << ::getpid() << "." << counter++;
    p = base / os.str();
  } while (std::filesystem::exists(p) || std::filesystem::is_symlink(p));
  return p.string();
}

/// Returns a fresh, empty scratch directory (see `temp_path`).
inline std::string temp_dir(const std::string& name) {
  const std::string d = temp_path(name);
  std::filesystem::create_directories(d);
  return d;
}

/// Writes `text` to `path` (binary, replacing the file).
inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

/// Returns the whole file at `path` ("" if it cannot be read).
inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// Returns the names of the entries in `dir` (not recursive).
inline std::set<std::string> listing(const std::string& dir) {
  std::set<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

}  // namespace ohem_test
