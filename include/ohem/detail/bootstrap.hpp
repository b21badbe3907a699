#pragma once
/// @file
/// Internals of the bootstrap intervals (ohem/evaluation.hpp): seeded resampling with one independent
/// random stream per resample, run on a fixed number of threads, so that results never depend on the
/// thread count or on how work is split.

#include <ohem/version.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

OHEM_BEGIN_NAMESPACE
namespace detail {

/// splitmix64: a tiny, portable generator, so seeded results are the same with every standard library.
inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// Draws resample `b`'s n indices in [0, n) with replacement from its own stream (seed, b).
inline void resample_indices(uint64_t seed, int64_t b, int64_t n, std::vector<int64_t>& idx) {
  idx.resize(n);
  uint64_t state = seed ^ (0xD1B54A32D192ED03ull * static_cast<uint64_t>(b + 1));
  for (int64_t i = 0; i < n; ++i) {
    const double u = static_cast<double>(splitmix64(state) >> 11) * 0x1.0p-53;
    idx[i] = std::min(static_cast<int64_t>(u * static_cast<double>(n)), n - 1);
  }
}

/// Linear-interpolation quantile of sorted values (numpy's default).
inline double sorted_quantile(const std::vector<double>& v, double q) {
  const double pos = q * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

/// Returns the number of workers `parallel_resamples` runs for B resamples on `threads` threads.
inline int64_t resample_workers(int64_t B, int64_t threads) {
  return std::max<int64_t>(1, std::min(threads, B));
}

/// Runs `work(b, worker)` for b in [0, B) on `resample_workers(B, threads)` threads (workers take the next
/// b from a shared counter; `work` must write only what belongs to b, and may reuse scratch buffers of its
/// `worker` in [0, workers), which no other thread uses at the same time). Calls `progress(done, B)` from the
/// calling thread about every 100 ms and once at the end, if set. The first exception thrown by `work` or
/// `progress` stops the workers and is rethrown here, after they have finished.
inline void parallel_resamples(int64_t B, int64_t threads, const std::function<void(int64_t, int64_t)>& work,
                               const std::function<void(int64_t, int64_t)>& progress) {
  std::atomic<int64_t> next{0}, done{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex m;
  std::condition_variable cv;
  auto worker = [&](int64_t w) {
    for (int64_t b; !failed.load() && (b = next.fetch_add(1)) < B;) {
      try {
        work(b, w);
      } catch (...) {
        std::lock_guard<std::mutex> lock(m);
        if (!error) error = std::current_exception();
        failed = true;
      }
      if (done.fetch_add(1) + 1 == B) {
        std::lock_guard<std::mutex> lock(m);
        cv.notify_all();
      }
    }
    std::lock_guard<std::mutex> lock(m);
    cv.notify_all();
  };
  const int64_t T = resample_workers(B, threads);
  if (T == 1) {
    auto last = std::chrono::steady_clock::now();
    for (int64_t b = 0; b < B; ++b) {
      work(b, 0);
      const auto now = std::chrono::steady_clock::now();
      if (progress && (now - last > std::chrono::milliseconds(100) || b + 1 == B)) {
        progress(b + 1, B);
        last = now;
      }
    }
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) pool.emplace_back(worker, t);
  {
    std::unique_lock<std::mutex> lock(m);
    while (done.load() < B && !failed.load()) {
      cv.wait_for(lock, std::chrono::milliseconds(100));
      if (!progress) continue;
      lock.unlock();
      try {
        progress(done.load(), B);
      } catch (...) {  // stop the workers, then rethrow below
        std::lock_guard<std::mutex> guard(m);
        if (!error) error = std::current_exception();
        failed = true;
      }
      lock.lock();
    }
  }
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
  if (progress) progress(B, B);
}

}  // namespace detail
OHEM_END_NAMESPACE
