#pragma once
/// @file
/// Internal: `SingleThreadGate`, which lets one thread at a time use an object (reentrantly on that
/// thread) and refuses any other thread with an error instead of letting two interleave.

#include <ohem/version.hpp>

#include <c10/util/Exception.h>

#include <cstdint>
#include <mutex>
#include <thread>

OHEM_BEGIN_NAMESPACE
namespace detail {

/// Lets one thread at a time in; the thread inside may enter again (nested calls), another thread gets a
/// `c10::Error` naming the object. Each `enter` returns a pass that leaves on destruction.
class SingleThreadGate {
 public:
  /// Leaves the gate when destroyed (once, also after a move).
  class Pass {
   public:
    Pass(Pass&& other) noexcept : gate_(other.gate_) { other.gate_ = nullptr; }
    Pass(const Pass&) = delete;
    Pass& operator=(const Pass&) = delete;
    Pass& operator=(Pass&&) = delete;
    ~Pass() {
      if (gate_) gate_->leave();
    }

   private:
    friend class SingleThreadGate;
    explicit Pass(SingleThreadGate* gate) : gate_(gate) {}
    SingleThreadGate* gate_;
  };

  /// Enters the gate; throws naming `who` if another thread is inside.
  Pass enter(const char* who) {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::thread::id me = std::this_thread::get_id();
    TORCH_CHECK(depth_ == 0 || owner_ == me, who,
                ": used from two threads at once (another thread is inside a call). Its model's weights are "
                "masked while a twin runs, so concurrent calls would compute wrong results: give each thread "
                "its own model and SelfCompetitor, or serialise the calls");
    owner_ = me;
    ++depth_;
    return Pass(this);
  }

 private:
  void leave() noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    if (--depth_ == 0) owner_ = std::thread::id();
  }

  std::mutex mutex_;
  std::thread::id owner_;
  int64_t depth_ = 0;
};

}  // namespace detail
OHEM_END_NAMESPACE
