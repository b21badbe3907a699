#pragma once
/// @file
/// Internals of ohem/distributed.hpp: c10d includes, the rendezvous store's construction, and the
/// bucketed gradient reducer that all-reduces leaf gradients while backward runs (hooks after each leaf's
/// gradient accumulation).

#include <ohem/version.hpp>

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>
// LibTorch's Linux builds (Debian's libtorch included) ship c10d with Gloo; its header is guarded by the
// build's own macro, which consumers of the installed headers do not get. Defined for this one include
// only, so the rest of a user's translation unit sees the macro as the user's build set it.
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#define OHEM_DETAIL_DEFINED_USE_C10D_GLOO
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#ifdef OHEM_DETAIL_DEFINED_USE_C10D_GLOO
#undef USE_C10D_GLOO
#undef OHEM_DETAIL_DEFINED_USE_C10D_GLOO
#endif
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/Types.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>
#if defined(USE_C10D_NCCL)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#include <torch/torch.h>
#include <torch/version.h>

#include <signal.h>  // sigaction (POSIX)
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

OHEM_BEGIN_NAMESPACE

/// What the last gradient synchronisation of a `DistributedDataParallel` did (`last_stats()`; public,
/// declared here because the reducer fills it).
struct DistributedSyncStats {
  /// Seconds `sync_gradients()` spent (launching what was left, waiting, averaging, copying back).
  double sync_seconds = 0;
  /// Bytes of gradient buckets launched while backward was still running.
  int64_t bytes_during_backward = 0;
  /// Bytes of gradient buckets all-reduced in total.
  int64_t bytes_total = 0;
  /// Whether the step had to all-reduce every bucket again (first step, or the graph changed: a
  /// parameter got its gradient a different number of times than in the previous step).
  bool rebuilt = false;
};

/// The c10d type that runs collectives (`DistributedContext::backend()`): `c10d::ProcessGroup` in
/// LibTorch 1.x, `c10d::Backend` from 2.0 on (the concrete Gloo/NCCL classes derive from it in each
/// version).
#if TORCH_VERSION_MAJOR >= 2
using DistributedBackendImpl = c10d::Backend;
#else
using DistributedBackendImpl = c10d::ProcessGroup;
#endif

namespace detail {

/// Whether a store options type has `useLibUV` (c10d::TCPStoreOptions from LibTorch 2.3 on).
template <typename T, typename = void>
struct has_use_libuv : std::false_type {};
template <typename T>
struct has_use_libuv<T, std::void_t<decltype(std::declval<T&>().useLibUV)>> : std::true_type {};

/// Turns the libuv store off in `o`; returns false where it was already off or does not exist (1.x).
template <typename StoreOptions>
bool disable_libuv(StoreOptions& o) {
  if constexpr (has_use_libuv<StoreOptions>::value) {
    if (!o.useLibUV) return false;
    o.useLibUV = false;
    return true;
  } else {
    (void)o;
    return false;
  }
}

/// Makes a c10d::TCPStore with `options`. From LibTorch 2.4 the default is the libuv store, which a
/// LibTorch built without libuv (Debian 13's 2.6) refuses before opening any socket: then the classic
/// store, as torchrun does with USE_LIBUV=0. Other errors propagate.
inline c10::intrusive_ptr<c10d::TCPStore> make_tcp_store(const std::string& host,
                                                         c10d::TCPStoreOptions options) {
  try {
    return c10::make_intrusive<c10d::TCPStore>(host, options);
  } catch (const std::exception& e) {
    if (std::string(e.what()).find("libuv") == std::string::npos || !disable_libuv(options)) throw;
    return c10::make_intrusive<c10d::TCPStore>(host, options);
  }
}

/// Makes writes to a socket whose peer has gone fail with EPIPE (which Gloo and the store turn into an
/// error) instead of killing the process with SIGPIPE: sets SIGPIPE to "ignore" where it has the default
/// action (Python does the same at start-up, which is why torch.distributed never meets it). A handler the
/// program installed itself is left alone. Returns true if it changed the disposition.
inline bool ignore_sigpipe() {
#if defined(SIGPIPE)
  struct sigaction current {};
  if (::sigaction(SIGPIPE, nullptr, &current) != 0 || (current.sa_flags & SA_SIGINFO) != 0 ||
      current.sa_handler != SIG_DFL)
    return false;
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  return ::sigaction(SIGPIPE, &ignore, nullptr) == 0;
#else
  return false;
#endif
}

using CommBackend = DistributedBackendImpl;

/// What a collective needs to wait with a clear error: the backend, the timeout, who we are.
struct CommHandle {
  c10::intrusive_ptr<CommBackend> backend;
  std::chrono::milliseconds timeout{0};
  int rank = 0;
  int world_size = 1;

  /// Waits for `work`; rethrows a failure or a timeout as a c10::Error naming the operation and the rank.
  void wait(const c10::intrusive_ptr<c10d::Work>& work, const std::string& what) const {
    try {
      // The backend's own timeout bounds the operation; this one bounds the wait if the backend hangs.
      work->wait(timeout + std::chrono::milliseconds(2000));
    } catch (const std::exception& e) {
      TORCH_CHECK(false, "ohem::distributed: ", what, " failed on rank ", rank, " of ", world_size,
                  ": a peer process exited or did not take part within the timeout of ", timeout.count(),
                  " ms (DistributedOptions::timeout). Cause: ", e.what());
    }
  }
  void all_reduce(std::vector<torch::Tensor>& t, c10d::ReduceOp op, const std::string& what) const {
    c10d::AllreduceOptions o;
    o.reduceOp = op;
    o.timeout = timeout;
    wait(backend->allreduce(t, o), what);
  }
  void broadcast(std::vector<torch::Tensor>& t, int root, const std::string& what) const {
    c10d::BroadcastOptions o;
    o.rootRank = root;
    o.rootTensor = 0;
    o.timeout = timeout;
    wait(backend->broadcast(t, o), what);
  }
};

/// Copies `tensors` into one flat tensor per (dtype, device) group, runs `op` on each flat tensor and
/// copies the result back (one collective per group instead of one per tensor).
inline void flat_collective(const std::vector<torch::Tensor>& tensors,
                            const std::function<void(torch::Tensor&)>& op) {
  torch::NoGradGuard no_grad;
  std::vector<bool> done(tensors.size(), false);
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (done[i] || !tensors[i].defined()) continue;
    std::vector<size_t> group;
    for (size_t j = i; j < tensors.size(); ++j) {
      if (!done[j] && tensors[j].defined() && tensors[j].scalar_type() == tensors[i].scalar_type() &&
          tensors[j].device() == tensors[i].device()) {
        group.push_back(j);
        done[j] = true;
      }
    }
    std::vector<torch::Tensor> parts;
    parts.reserve(group.size());
    for (size_t j : group) parts.push_back(tensors[j].detach().reshape({-1}));
    torch::Tensor flat = torch::cat(parts);
    op(flat);
    int64_t offset = 0;
    for (size_t j : group) {
      const int64_t n = tensors[j].numel();
      tensors[j].detach().copy_(flat.narrow(0, offset, n).view_as(tensors[j]));
      offset += n;
    }
  }
}

/// Converts megabytes (MiB, as PyTorch's bucket_cap_mb) to bytes.
inline int64_t megabytes(double mb) {
  return static_cast<int64_t>(mb * 1024.0 * 1024.0);
}

/// Assigns `params` (distinct leaves in registration order) to gradient buckets; returns the buckets in
/// launch order, each a list of indices into `params`. Backward produces gradients roughly in reverse
/// registration order, so the buckets are filled from the last parameter backwards, each up to `cap`
/// bytes (a parameter larger than `cap` gets a bucket of its own), and never mix dtypes or devices.
/// The parameters registered first, whose gradients are final only when backward ends, form the last
/// bucket on their own, of at most `last_cap` bytes (the longest such prefix; at least one parameter),
/// so that little waits for the end of backward. `last_cap` 0: no such bucket.
inline std::vector<std::vector<size_t>> plan_buckets(const std::vector<torch::Tensor>& params, int64_t cap,
                                                     int64_t last_cap) {
  auto bytes = [&](size_t i) { return params[i].numel() * static_cast<int64_t>(params[i].element_size()); };
  auto same_kind = [&](size_t i, size_t j) {
    return params[i].scalar_type() == params[j].scalar_type() && params[i].device() == params[j].device();
  };
  size_t tail = 0;  // params[0, tail) form the last bucket
  if (last_cap > 0 && !params.empty()) {
    int64_t sum = bytes(0);
    tail = 1;
    while (tail < params.size() && same_kind(tail, 0) && sum + bytes(tail) <= last_cap) sum += bytes(tail++);
  }
  std::vector<std::vector<size_t>> buckets;
  int64_t filled = 0;
  for (size_t i = params.size(); i-- > tail;) {
    if (buckets.empty() || !same_kind(buckets.back().front(), i) || filled + bytes(i) > cap) {
      buckets.emplace_back();
      filled = 0;
    }
    buckets.back().push_back(i);
    filled += bytes(i);
  }
  if (tail > 0) {
    buckets.emplace_back();
    for (size_t i = tail; i-- > 0;) buckets.back().push_back(i);
  }
  return buckets;
}

/// All-reduces (and averages) the gradients of a fixed list of leaf tensors in buckets.
///
/// A hook after each leaf's gradient accumulation counts how often the leaf received a gradient since
/// the last `sync()`. From the previous step it knows how many times to expect (1 in Joint mode, one per
/// replayed forward in Sequential mode); when every leaf of a bucket reached its count, the bucket's
/// gradients are copied into a flat buffer and its all-reduce is launched, in bucket order (the same on
/// every rank), while backward goes on. `sync()` launches what is left, checks with one small all-reduce
/// that every rank saw the same counts and no gradient arrived after its bucket was launched (otherwise
/// every bucket is all-reduced again from the final gradients: averaging is linear, so this is exact),
/// and copies each bucket into `.grad()` as soon as its own all-reduce completed. Gradients are divided by
/// the world size while they are copied into their bucket (during backward, as PyTorch's DDP does), so
/// that nothing but the wait and the copy back is left for `sync()`.
class GradientReducer {
 public:
  /// `cap` and `last_cap`: bucket sizes in bytes (`plan_buckets`).
  GradientReducer(CommHandle comm, const std::vector<torch::Tensor>& params, int64_t cap, int64_t last_cap,
                  bool overlap)
      : state_(std::make_shared<State>()) {
    State& s = *state_;
    s.comm = std::move(comm);
    s.overlap = overlap;
    std::vector<torch::Tensor> distinct;
    for (const auto& p : params) {
      TORCH_CHECK(p.defined(), "ohem::DistributedDataParallel: an undefined parameter was given");
      // Frozen parameters (requires_grad false) are kept: they may be unfrozen later (stage 2 of the
      // recipe); their hook is installed once they require grad.
      TORCH_CHECK(p.is_leaf(), "ohem::DistributedDataParallel: parameters must be leaf tensors");
      TORCH_CHECK(p.is_floating_point() || p.is_complex(),
                  "ohem::DistributedDataParallel: parameters must be floating point, got ", p.scalar_type());
      bool dup = false;
      for (const auto& q : distinct) dup = dup || q.is_same(p);
      if (!dup) distinct.push_back(p);  // LibTorch's parameters() does not de-duplicate shared tensors
    }
    for (const auto& members : plan_buckets(distinct, cap, last_cap)) {
      Bucket b(distinct[members.front()].scalar_type(), distinct[members.front()].device());
      for (size_t i : members) {
        Param q;
        q.tensor = distinct[i];
        q.bucket = s.buckets.size();
        q.offset = b.numel;
        b.numel += q.tensor.numel();
        b.bytes += q.tensor.numel() * static_cast<int64_t>(q.tensor.element_size());
        b.params.push_back(s.params.size());
        s.params.push_back(std::move(q));
      }
      s.buckets.push_back(std::move(b));
    }
    for (auto& b : s.buckets)
      b.flat = torch::zeros({b.numel}, torch::TensorOptions().dtype(b.dtype).device(b.device));
    reset_window(s);
    install_hooks(state_);
  }
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;
  ~GradientReducer() {
    for (auto& q : state_->params) {
      if (q.accumulator) q.accumulator->del_post_hook(q.hook_key);
    }
  }

  /// Stops (`false`) or resumes counting and launching from the hooks (gradient accumulation).
  void set_enabled(bool on) {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->enabled = on;
  }
  bool enabled() const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    return state_->enabled;
  }

  /// Finishes the step: every leaf's `.grad()` becomes the average over ranks. Collective.
  void sync() {
    State& s = *state_;
    std::lock_guard<std::mutex> lock(s.mutex);
    const auto start = std::chrono::steady_clock::now();
    s.stats = DistributedSyncStats{};
    s.stats.bytes_during_backward = s.bytes_launched;
    // 1. Launch the buckets that were expected to be launched and are not yet (in bucket order).
    for (size_t b = 0; b < s.buckets.size(); ++b) {
      if (s.buckets[b].active && !s.buckets[b].launched) launch(s, b);
    }
    // 2. Agree on what happened: per leaf the counts (max and min over ranks) and whether it has a
    // gradient anywhere; whether any gradient arrived after its bucket was launched.
    const int64_t n = static_cast<int64_t>(s.params.size());
    torch::Tensor info = torch::zeros({3 * n + 1}, torch::kLong);
    auto* ip = info.data_ptr<int64_t>();
    for (int64_t i = 0; i < n; ++i) {
      const Param& q = s.params[static_cast<size_t>(i)];
      ip[i] = q.count;
      ip[n + i] = -q.count;
      ip[2 * n + i] = q.tensor.grad().defined() ? 1 : 0;
    }
    bool late = s.late;
    for (const auto& q : s.params) {
      // Unfrozen since the last sync: its gradient came without a hook, possibly after its bucket left.
      late = late || (!q.accumulator && q.tensor.requires_grad() && q.tensor.grad().defined());
    }
    ip[3 * n] = late ? 1 : 0;
    std::vector<torch::Tensor> v{
        info.to(s.buckets.empty() ? torch::Device(torch::kCPU) : s.buckets[0].device)};
    s.comm.all_reduce(v, c10d::ReduceOp::MAX,
                      "the gradient-count agreement (DistributedDataParallel::sync_gradients)");
    info = v[0].cpu();
    ip = info.data_ptr<int64_t>();
    bool redo = ip[3 * n] != 0;
    std::vector<bool> used(s.params.size());
    for (int64_t i = 0; i < n; ++i) {
      const size_t k = static_cast<size_t>(i);
      used[k] = ip[2 * n + i] != 0;
      redo = redo || ip[i] != s.params[k].expected || -ip[n + i] != s.params[k].expected;
    }
    // 3. Redo: wait for what was launched, then all-reduce every needed bucket again from the final
    // gradients. Otherwise launch what no rank expected but some rank has (first step, newly unfrozen
    // parameters). Every rank takes the same decisions (from the agreed counts), in bucket order.
    for (size_t b = 0; b < s.buckets.size(); ++b) {
      bool needed = false;
      for (size_t k : s.buckets[b].params) needed = needed || used[k];
      s.buckets[b].needed = needed;
    }
    if (redo) wait_all(s);
    for (size_t b = 0; b < s.buckets.size(); ++b) {
      if (s.buckets[b].needed && (redo || !s.buckets[b].launched)) launch(s, b);
    }
    // 4. Copy each bucket's average back as soon as its all-reduce completed, while later ones go on.
    for (size_t bi = 0; bi < s.buckets.size(); ++bi) {
      wait_one(s, bi);
      Bucket& b = s.buckets[bi];
      if (!b.needed) continue;
      torch::NoGradGuard no_grad;
      for (size_t k : b.params) {
        if (!used[k]) continue;
        Param& q = s.params[k];
        torch::Tensor view = b.flat.narrow(0, q.offset, q.tensor.numel()).view(q.tensor.sizes());
        torch::Tensor& g = q.tensor.mutable_grad();
        if (g.defined()) {
          g.copy_(view);
        } else {
          g = view.clone();
        }
      }
    }
    // 5. Next step expects what every rank saw in this one.
    for (int64_t i = 0; i < n; ++i) s.params[static_cast<size_t>(i)].expected = ip[i];
    s.stats.rebuilt = redo;
    s.stats.bytes_total = s.bytes_launched;
    reset_window(s);
    install_hooks(state_);
    s.stats.sync_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }

  const DistributedSyncStats& stats() const { return state_->stats; }
  size_t num_buckets() const { return state_->buckets.size(); }
  std::vector<int64_t> bucket_bytes() const {
    std::vector<int64_t> out;
    for (const auto& b : state_->buckets) out.push_back(b.bytes);
    return out;
  }
  size_t num_params() const { return state_->params.size(); }

 private:
  struct Param {
    torch::Tensor tensor;
    size_t bucket = 0;
    int64_t offset = 0;
    int64_t count = 0;     // gradients received since the last sync
    int64_t expected = 0;  // gradients every rank received in the previous step
    std::shared_ptr<torch::autograd::Node> accumulator;
    uintptr_t hook_key = 0;
  };
  struct Bucket {
    Bucket(c10::ScalarType t, torch::Device d) : dtype(t), device(d) {}
    std::vector<size_t> params;
    c10::ScalarType dtype;
    torch::Device device;
    int64_t numel = 0;
    int64_t bytes = 0;
    torch::Tensor flat;
    int64_t pending = 0;    // leaves still to reach their expected count
    bool active = false;    // some leaf expects a gradient: launched during backward
    bool launched = false;  // launched in this step
    bool needed = false;
    c10::intrusive_ptr<c10d::Work> work;
  };
  struct State {
    mutable std::mutex mutex;
    CommHandle comm;
    bool overlap = true;
    bool enabled = true;
    bool late = false;
    int64_t bytes_launched = 0;
    size_t next = 0;  // the first bucket in order not yet launched from the hooks
    std::vector<Param> params;
    std::vector<Bucket> buckets;
    DistributedSyncStats stats;
  };

  /// Puts the counting hook after the gradient accumulation of every leaf that requires grad and has none.
  static void install_hooks(const std::shared_ptr<State>& state) {
    std::weak_ptr<State> weak = state;
    for (size_t i = 0; i < state->params.size(); ++i) {
      Param& q = state->params[i];
      if (q.accumulator || !q.tensor.requires_grad()) continue;
      // Held for the reducer's lifetime: the leaf keeps only a weak reference, and a new accumulator
      // (without our hook) would be made once the graph that holds this one is freed.
      q.accumulator = torch::autograd::impl::grad_accumulator(q.tensor);
      TORCH_CHECK(q.accumulator, "ohem::DistributedDataParallel: no gradient accumulator for a parameter");
      q.hook_key = q.accumulator->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
          [weak, i](const torch::autograd::variable_list& outputs, const torch::autograd::variable_list&) {
            if (auto st = weak.lock()) on_accumulated(*st, i);
            return outputs;
          }));
    }
  }

  static void reset_window(State& s) {
    s.late = false;
    s.next = 0;
    s.bytes_launched = 0;
    for (auto& q : s.params) q.count = 0;
    for (auto& b : s.buckets) {
      b.pending = 0;
      for (size_t k : b.params) b.pending += s.params[k].expected > 0 ? 1 : 0;
      b.active = b.pending > 0;
      b.launched = false;
      b.needed = false;
      b.work.reset();
    }
  }

  static void on_accumulated(State& s, size_t i) {
    std::lock_guard<std::mutex> lock(s.mutex);
    if (!s.enabled) return;
    Param& q = s.params[i];
    ++q.count;
    Bucket& b = s.buckets[q.bucket];
    if (b.launched) {
      s.late = true;  // this gradient arrived after its bucket's all-reduce started: sync() redoes it
      return;
    }
    if (q.count != q.expected) return;
    if (--b.pending > 0 || !s.overlap) return;
    // Launch in bucket order only, so that every rank issues the same sequence of collectives.
    while (s.next < s.buckets.size()) {
      Bucket& c = s.buckets[s.next];
      if (c.active && c.pending > 0) break;
      if (c.active && !c.launched) launch(s, s.next);
      ++s.next;
    }
  }

  static void launch(State& s, size_t bi) {
    Bucket& b = s.buckets[bi];
    {
      torch::NoGradGuard no_grad;
      const torch::Tensor scale =
          torch::scalar_tensor(1.0 / static_cast<double>(s.comm.world_size), torch::kDouble);
      for (size_t k : b.params) {
        const Param& q = s.params[k];
        torch::Tensor view = b.flat.narrow(0, q.offset, q.tensor.numel());
        const torch::Tensor& g = q.tensor.grad();
        if (g.defined()) {
          TORCH_CHECK(!g.is_sparse(), "ohem::DistributedDataParallel: sparse gradients are not supported");
          // Divided while copied (one pass), as PyTorch's DDP: the sum over ranks is then the average.
          at::mul_out(view, g.reshape({-1}), scale);
        } else {
          view.zero_();
        }
      }
    }
    std::vector<torch::Tensor> t{b.flat};
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp::SUM;
    o.timeout = s.comm.timeout;
    b.work = s.comm.backend->allreduce(t, o);
    b.launched = true;
    s.bytes_launched += b.bytes;
  }

  static void wait_one(State& s, size_t b) {
    if (!s.buckets[b].work) return;
    auto w = std::move(s.buckets[b].work);
    s.buckets[b].work.reset();
    s.comm.wait(w, "the all-reduce of gradient bucket " + std::to_string(b));
  }
  static void wait_all(State& s) {
    for (size_t b = 0; b < s.buckets.size(); ++b) wait_one(s, b);
  }

  std::shared_ptr<State> state_;
};

}  // namespace detail
OHEM_END_NAMESPACE
