#pragma once
// Exact tensor-memory accounting for benchmarks: a CPU allocator that wraps LibTorch's default one and
// counts the bytes of live tensor storage, and the peak since the last reset. Install it once, before
// any tensor is created (install_counting_allocator() in main or a static initialiser).
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <unordered_map>

namespace ohem_bench {

class CountingAllocator final : public c10::Allocator {
 public:
  explicit CountingAllocator(c10::Allocator* base) : base_(base) {
    TORCH_CHECK(base->raw_deleter() != nullptr, "CountingAllocator: the CPU allocator has no raw deleter");
    base_deleter_ = base->raw_deleter();
  }

  // The DataPtr's context is its data pointer (LibTorch's raw_allocate requires that), so the size of
  // each live block is kept in a map.
  c10::DataPtr allocate(size_t n) const override {
    c10::DataPtr inner = base_->allocate(n);
    TORCH_CHECK(inner.get() == inner.get_context(),
                "CountingAllocator: the CPU allocator's context is not its data");
    void* data = inner.release_context();
    {
      std::lock_guard<std::mutex> lock(mutex());
      sizes()[data] = n;
    }
    const int64_t now = live_.fetch_add(static_cast<int64_t>(n)) + static_cast<int64_t>(n);
    int64_t peak = peak_.load();
    while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
    }
    return {data, data, &CountingAllocator::release, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &CountingAllocator::release; }

  /// Bytes of live tensor storage.
  static int64_t live() { return live_.load(); }
  /// Peak of live() since the last reset_peak().
  static int64_t peak() { return peak_.load(); }
  /// Sets the peak to the current live bytes.
  static void reset_peak() { peak_.store(live_.load()); }

 private:
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  static std::unordered_map<void*, size_t>& sizes() {
    static std::unordered_map<void*, size_t> s;
    return s;
  }
  static void release(void* p) {
    if (p == nullptr) return;
    size_t n = 0;
    {
      std::lock_guard<std::mutex> lock(mutex());
      auto it = sizes().find(p);
      if (it != sizes().end()) {
        n = it->second;
        sizes().erase(it);
      }
    }
    live_.fetch_sub(static_cast<int64_t>(n));
    base_deleter_(p);
  }
  c10::Allocator* base_;
  static inline c10::DeleterFnPtr base_deleter_ = nullptr;
  static inline std::atomic<int64_t> live_{0};
  static inline std::atomic<int64_t> peak_{0};
};

/// Installs the counting allocator as LibTorch's CPU allocator (idempotent).
inline void install_counting_allocator() {
  static CountingAllocator counting(c10::GetCPUAllocator());
  if (c10::GetCPUAllocator() != &counting) c10::SetCPUAllocator(&counting, /*priority=*/100);
}

}  // namespace ohem_bench
