#pragma once
/// @file
/// Part of ohem/distributed.hpp (include that one): `DistributedDataParallel`, gradients averaged
/// over the ranks while backward runs.

#include <ohem/detail/distributed_reducer.hpp>
#include <ohem/detail/model.hpp>
#include <ohem/distributed_context.hpp>
#include <ohem/self_competitor.hpp>
#include <ohem/twin.hpp>
#include <ohem/version.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

OHEM_BEGIN_NAMESPACE

/// Options of a `DistributedDataParallel`.
///
/// Example: `DistributedDataParallelOptions().bucket_cap_mb(25).broadcast_buffers(false)`
struct DistributedDataParallelOptions {
  /// Size of a gradient bucket: one all-reduce per bucket, launched as soon as its gradients are final.
  /// PyTorch DDP's default, 25 MB.
  TORCH_ARG(double, bucket_cap_mb) = 25.0;
  /// Size of the bucket launched last, which holds the parameters registered first (nearest the input):
  /// their gradients are final only when backward ends, so its all-reduce can never overlap backward and
  /// is kept small (at most `bucket_cap_mb`; 0: no such bucket, every bucket up to `bucket_cap_mb`).
  /// Without it, ResNet-18's 25 MB buckets hold 19.4 + 25.3 MB (10^6 bytes) and 57 % of the bytes wait
  /// for the end of backward; with it, 0.9 MB do. (PyTorch's DDP keeps the other end small: its first
  /// bucket, 1 MB.)
  TORCH_ARG(double, last_bucket_cap_mb) = 1.0;
  /// Broadcast the buffers (BatchNorm running statistics) from rank 0 in every `sync_gradients()`, as
  /// DDP's `broadcast_buffers`: every rank then holds rank 0's statistics. Off: each rank keeps its own
  /// (they drift apart; evaluate or save on rank 0).
  TORCH_ARG(bool, broadcast_buffers) = true;
  /// Launch each bucket's all-reduce from the backward hooks as soon as it is ready (overlapping the rest
  /// of backward). Off: every all-reduce starts in `sync_gradients()` (for measuring the overlap).
  TORCH_ARG(bool, overlap) = true;
};

/// Data-parallel gradients for the user's model, its pruned twin(s) included: at construction the
/// parameters and buffers are broadcast from rank 0; during every backward, hooks after each leaf's
/// gradient accumulation launch bucketed all-reduces as soon as a bucket's gradients are final;
/// `sync_gradients()` finishes them and leaves in every `.grad()` the average over ranks.
///
/// Only the registered leaves are reduced: the twin's masked weights w ⊙ m are intermediates whose
/// gradient reaches w through the autograd graph, so a twin needs nothing of its own. Works in Joint and
/// Sequential mode, with K twins, with leaves that get no gradient in a step (a frozen backbone:
/// `requires_grad(false)`, or simply unused) and with gradient accumulation (`no_sync()` on every
/// micro-batch but the last). The number of times each leaf receives a gradient per step is learnt from
/// the previous step; a step where it changes is still exact (its buckets are all-reduced again in
/// `sync_gradients()`), only not overlapped.
///
/// Call `sync_gradients()` after the step's (last) backward and before `optimizer.step()`, on every rank.
///
/// Example:
/// `ohem::DistributedDataParallel ddp(dist, net); sc(x, g).backward(); ddp.sync_gradients(); opt.step();`
class DistributedDataParallel {
 public:
  /// Wraps a list of parameters and buffers: broadcasts both from rank 0 and installs the hooks. Throws if
  /// the ranks' parameter lists differ in count, shapes or dtypes.
  DistributedDataParallel(DistributedContext dist, std::vector<torch::Tensor> parameters,
                          std::vector<torch::Tensor> buffers, DistributedDataParallelOptions options = {})
      : dist_(std::move(dist)),
        options_(options),
        parameters_(std::move(parameters)),
        buffers_(std::move(buffers)) {
    TORCH_CHECK(options.bucket_cap_mb() > 0,
                "ohem::DistributedDataParallelOptions::bucket_cap_mb must be > 0, got ",
                options.bucket_cap_mb());
    TORCH_CHECK(options.last_bucket_cap_mb() >= 0,
                "ohem::DistributedDataParallelOptions::last_bucket_cap_mb must be >= 0, got ",
                options.last_bucket_cap_mb());
    if (!dist_.distributed()) return;
    check_same_model();
    dist_.broadcast(parameters_, 0);
    dist_.broadcast(buffers_, 0);
    reducer_ = std::make_unique<detail::GradientReducer>(
        dist_.comm(), parameters_, detail::megabytes(options.bucket_cap_mb()),
        detail::megabytes(std::min(options.last_bucket_cap_mb(), options.bucket_cap_mb())),
        options.overlap());
  }

  /// Wraps a model: your module held by value, a torch::nn holder or `std::shared_ptr<Impl>`, a
  /// `torch::jit::Module`, or an `ohem::SelfCompetitor` (its model and the twins' own BatchNorm
  /// statistics, Separate policy).
  template <typename Model>
  DistributedDataParallel(DistributedContext dist, Model& model, DistributedDataParallelOptions options = {})
      : DistributedDataParallel(std::move(dist), collect(model, false), collect(model, true), options) {}

  /// Finishes the gradient all-reduce of this step: launches the buckets not yet launched, waits, and
  /// writes the average over ranks into every parameter's `.grad()`; then broadcasts the buffers from
  /// rank 0 (`broadcast_buffers`). Call on every rank after the last backward of the step, before the
  /// optimizer step. Throws (never hangs) if a peer died or the timeout passed. Nothing for one process.
  void sync_gradients() {
    if (!reducer_) return;
    reducer_->sync();
    if (options_.broadcast_buffers()) broadcast_buffers();
  }

  /// Broadcasts the buffers from rank 0 now.
  void broadcast_buffers() { dist_.broadcast(buffers_, 0); }

  /// An RAII scope in which backward passes only accumulate local gradients (DDP's `no_sync()`): use it for
  /// every micro-batch of a gradient-accumulation step except the last.
  class NoSync {
   public:
    explicit NoSync(detail::GradientReducer* r) : r_(r), was_(r && r->enabled()) {
      if (r_) r_->set_enabled(false);
    }
    NoSync(NoSync&& o) noexcept : r_(o.r_), was_(o.was_) { o.r_ = nullptr; }
    NoSync(const NoSync&) = delete;
    NoSync& operator=(const NoSync&) = delete;
    NoSync& operator=(NoSync&&) = delete;
    ~NoSync() {
      if (r_) r_->set_enabled(was_);
    }

   private:
    detail::GradientReducer* r_;
    bool was_;
  };
  /// Returns a scope in which backward passes are not synchronised (gradient accumulation).
  ///
  /// Example: `{ auto guard = ddp.no_sync(); sc(x1, g1).backward(); } sc(x2, g2).backward();
  /// ddp.sync_gradients();`
  NoSync no_sync() { return NoSync(reducer_.get()); }

  /// Returns the timings of the last `sync_gradients()` (zeros for one process).
  DistributedSyncStats last_stats() const { return reducer_ ? reducer_->stats() : DistributedSyncStats{}; }
  /// Returns the number of gradient buckets (0 for one process).
  size_t num_buckets() const { return reducer_ ? reducer_->num_buckets() : 0; }
  /// Returns the size in bytes of each gradient bucket, in launch order (empty for one process).
  std::vector<int64_t> bucket_bytes() const {
    return reducer_ ? reducer_->bucket_bytes() : std::vector<int64_t>{};
  }
  /// Returns the process group.
  const DistributedContext& context() const { return dist_; }
  /// Returns the options.
  const DistributedDataParallelOptions& options() const { return options_; }

 private:
  template <typename T, typename = void>
  struct is_competitor : std::false_type {};
  template <typename T>
  struct is_competitor<
      T, std::void_t<decltype(std::declval<T&>().num_twins()), decltype(std::declval<T&>().module())>>
      : std::true_type {};

  template <typename Model>
  static std::vector<torch::Tensor> collect(Model& model, bool buffers) {
    if constexpr (is_competitor<Model>::value) {
      std::vector<torch::Tensor> out = collect(model.module(), buffers);
      if (buffers) {
        for (size_t k = 0; k < model.num_twins(); ++k) {
          for (const auto& b : model.twin(k).named_twin_buffers()) out.push_back(b.second);
        }
      }
      return out;
    } else {
      return detail::module_tensors(model, buffers);
    }
  }

  void check_same_model() const {
    // count, total elements, and a shape/dtype signature, compared as max == min over ranks.
    int64_t numel = 0, signature = 0;
    for (size_t i = 0; i < parameters_.size(); ++i) {
      const auto& p = parameters_[i];
      numel += p.numel();
      int64_t h = static_cast<int64_t>(p.scalar_type()) + 31 * p.dim();
      for (int64_t d = 0; d < p.dim(); ++d) h = (h * 1000003 + p.size(d)) % 2147483647;
      signature = (signature * 1000033 + h + static_cast<int64_t>(i)) % 2147483647;
    }
    torch::Tensor v = torch::tensor({static_cast<int64_t>(parameters_.size()), numel, signature,
                                     -static_cast<int64_t>(parameters_.size()), -numel, -signature});
    torch::Tensor m = dist_.all_reduce(v, c10d::ReduceOp::MAX);
    bool same = true;
    for (int i = 0; i < 3; ++i) same = same && m[i].item<int64_t>() == -m[i + 3].item<int64_t>();
    TORCH_CHECK(same, "ohem::DistributedDataParallel: the ranks' models differ (rank ", dist_.rank(), " has ",
                parameters_.size(), " parameter tensors with ", numel,
                " elements; some rank has another count, element count or shape/dtype list): build the same "
                "model on every rank");
  }

  DistributedContext dist_;
  DistributedDataParallelOptions options_;
  std::vector<torch::Tensor> parameters_;
  std::vector<torch::Tensor> buffers_;
  std::unique_ptr<detail::GradientReducer> reducer_;
};

OHEM_END_NAMESPACE
