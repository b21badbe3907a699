#pragma once
/// @file
/// Process settings for CPU training: `tune_heap_for_training()` sets glibc's heap up so that the memory a
/// training step frees is reused by the next step instead of being returned to the kernel and faulted in
/// again, and `available_cores()` counts the cores this process may run on.
///
/// Why: a LibTorch training step frees and allocates the same large blocks (activations, gradients,
/// optimizer temporaries) every step. With glibc's defaults, blocks above the mmap threshold are mapped and
/// unmapped each time and the top of the heap is trimmed, so every step pays tens of thousands of minor
/// page faults (measured in docs/benchmarks.md: a pairwise ResNet-18 step about 2× slower, LibTorch's Adam
/// step alone about 10× slower). The settings are those of the environment variables
/// `MALLOC_TRIM_THRESHOLD_=4294967295 MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TOP_PAD_=268435456`; the cost
/// is that the process keeps up to its peak heap (plus 256 MiB of padding) instead of giving it back.

#include <ohem/detail/runtime.hpp>
#include <ohem/version.hpp>

#include <c10/util/Exception.h>
#include <torch/arg.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>

#if defined(__GLIBC__)
#include <malloc.h>
#endif
#if defined(__linux__)
#include <sched.h>
#endif

OHEM_BEGIN_NAMESPACE

/// Options of `tune_heap_for_training`. Defaults: never trim, blocks up to 32 MiB from the heap (not
/// mmap), 256 MiB of padding when the heap grows.
///
/// Example: `ohem::tune_heap_for_training(ohem::HeapOptions().top_pad(64 << 20));`
struct HeapOptions {
  /// Free memory at the top of the heap returned to the kernel above this many bytes; -1: never (glibc's
  /// `M_TRIM_THRESHOLD`, `MALLOC_TRIM_THRESHOLD_`; glibc's default 128 KiB, adjusted dynamically).
  TORCH_ARG(int64_t, trim_threshold) = -1;
  /// Blocks of at least this many bytes are mapped with mmap and unmapped when freed (glibc's
  /// `M_MMAP_THRESHOLD`, `MALLOC_MMAP_THRESHOLD_`; at most 32 MiB on 64-bit systems).
  TORCH_ARG(int64_t, mmap_threshold) = int64_t{32} << 20;
  /// Extra bytes requested whenever the heap grows (glibc's `M_TOP_PAD`, `MALLOC_TOP_PAD_`).
  TORCH_ARG(int64_t, top_pad) = int64_t{256} << 20;
};

/// What `tune_heap_for_training` did.
struct HeapTuning {
  /// True if the settings were applied (glibc, and no `MALLOC_*_` variable named them already).
  bool applied = false;
  /// One line for a program's start, e.g. "heap: glibc, trim off, mmap threshold 32 MiB, top pad 256 MiB".
  std::string description;
};

/// Sets glibc's heap up for training (see the file comment): no trimming, a 32 MiB mmap threshold and a
/// 256 MiB top pad by default. Call it once at the start of a program, before the first large
/// allocation. Where the environment already sets glibc's matching `MALLOC_*_` variable (the user's choice)
/// that setting is left as it is; where the C library is not glibc, nothing is changed and the description
/// says so. Throws if an option is outside what glibc accepts (naming it and the value).
///
/// Example: `std::cout << ohem::tune_heap_for_training().description << "\n";`
inline HeapTuning tune_heap_for_training(const HeapOptions& options = {}) {
  TORCH_CHECK(options.trim_threshold() >= -1 && options.trim_threshold() <= INT32_MAX,
              "ohem::tune_heap_for_training: trim_threshold must be -1 (never) or in [0, 2^31), got ",
              options.trim_threshold());
  TORCH_CHECK(options.mmap_threshold() >= 0 && options.mmap_threshold() <= (int64_t{32} << 20),
              "ohem::tune_heap_for_training: mmap_threshold must be in [0, 32 MiB], got ",
              options.mmap_threshold());
  TORCH_CHECK(options.top_pad() >= 0 && options.top_pad() <= INT32_MAX,
              "ohem::tune_heap_for_training: top_pad must be in [0, 2^31), got ", options.top_pad());
  HeapTuning out;
#if defined(__GLIBC__)
  std::string parts, kept;
  auto set = [&](int param, const char* variable, int64_t value, const std::string& what) {
    if (std::getenv(variable) != nullptr) {
      kept += std::string(kept.empty() ? "" : ", ") + variable + "=" + std::getenv(variable);
      return;
    }
    TORCH_CHECK(mallopt(param, static_cast<int>(value)) == 1, "ohem::tune_heap_for_training: glibc refused ",
                variable, " = ", value);
    parts += (parts.empty() ? "" : ", ") + what;
    out.applied = true;
  };
  set(M_TRIM_THRESHOLD, "MALLOC_TRIM_THRESHOLD_", options.trim_threshold(),
      options.trim_threshold() < 0 ? "trim off"
                                   : "trim threshold " + detail::heap_bytes(options.trim_threshold()));
  set(M_MMAP_THRESHOLD, "MALLOC_MMAP_THRESHOLD_", options.mmap_threshold(),
      "mmap threshold " + detail::heap_bytes(options.mmap_threshold()));
  set(M_TOP_PAD, "MALLOC_TOP_PAD_", options.top_pad(), "top pad " + detail::heap_bytes(options.top_pad()));
  out.description = "heap: glibc, " + (parts.empty() ? std::string("unchanged") : parts);
  if (!kept.empty()) out.description += " (from the environment: " + kept + ")";
#else
  (void)options;
  out.description = "heap: unchanged (not glibc; ohem::tune_heap_for_training does nothing here)";
#endif
  return out;
}

/// Returns the number of cores this process may run on (its CPU affinity mask where the system has one,
/// else std::thread::hardware_concurrency()), at least 1: the programs' default `--threads`.
///
/// Example: `torch::set_num_threads(ohem::available_cores());`
inline int available_cores() {
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
#endif
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

OHEM_END_NAMESPACE
