#pragma once
/// @file
/// Distributed data-parallel OHEM training on LibTorch's c10d: a process group from the variables torchrun
/// (or scripts/launch.sh) sets, gradients averaged over ranks while backward runs, masks and BatchNorm
/// statistics kept identical, a sharding sampler, and gathers for hardness and evaluation.
///
/// Optional: no other ohem header includes this one. It needs LibTorch's c10d headers with Gloo's
/// (Debian: libgloo-dev); NCCL is used when the build defines USE_C10D_NCCL (a CUDA LibTorch).

#include <ohem/distributed_context.hpp>
#include <ohem/distributed_data_parallel.hpp>
#include <ohem/hardness.hpp>
#include <ohem/masks.hpp>
#include <ohem/self_competitor.hpp>
#include <ohem/twin.hpp>
#include <ohem/version.hpp>

#include <ATen/CPUGeneratorImpl.h>
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

/// How `sync_masks` makes the ranks' masks agree.
enum class MaskSync {
  /// Rank 0's masks replace every rank's (always identical afterwards).
  Broadcast,
  /// Compare a checksum of every mask over the ranks and throw, naming the first layer that differs.
  Check,
};

/// Makes a twin's masks identical on every rank after a refresh: rank 0's are broadcast (`Broadcast`), or
/// a per-layer checksum (kept count and a position hash) is compared (`Check`, throws on a mismatch naming
/// the layer and the kept counts). Collective; nothing for one process.
///
/// Example: `sc.refresh(); ohem::sync_masks(dist, sc.twin());`
template <typename Model>
void sync_masks(const DistributedContext& dist, PrunedTwin<Model>& twin, MaskSync mode = MaskSync::Broadcast,
                const std::string& label = "twin") {
  if (!dist.distributed()) return;
  const MaskSet& masks = twin.masks();
  const int64_t n = static_cast<int64_t>(masks.size());
  if (mode == MaskSync::Broadcast) {
    std::vector<torch::Tensor> bytes;
    for (int64_t i = 0; i < n; ++i)
      bytes.push_back(masks.mask(static_cast<size_t>(i)).to(torch::kCPU, torch::kByte));
    dist.broadcast(bytes, 0);
    MaskSet out;
    for (int64_t i = 0; i < n; ++i) {
      const torch::Tensor& m = masks.mask(static_cast<size_t>(i));
      out.add(masks.name(static_cast<size_t>(i)), bytes[static_cast<size_t>(i)].to(m.device(), torch::kBool));
    }
    twin.set_masks(std::move(out));
    return;
  }
  torch::Tensor sums = torch::zeros({2 * n + 1}, torch::kLong);
  sums[2 * n] = n;
  for (int64_t i = 0; i < n; ++i) {
    torch::Tensor m = masks.mask(static_cast<size_t>(i)).reshape({-1}).to(torch::kCPU);
    torch::Tensor pos = torch::arange(m.numel(), torch::kLong);
    // A position hash: (i·2654435761) mod (2^31 − 1) summed over kept positions (no int64 overflow below
    // 3·10^9 weights per layer).
    torch::Tensor h = (pos * INT64_C(2654435761)).remainder(INT64_C(2147483647));
    sums[i] = m.sum().item<int64_t>();
    sums[n + i] = h.masked_select(m).sum().item<int64_t>();
  }
  torch::Tensor both = torch::cat({sums, -sums});
  torch::Tensor r = dist.all_reduce(both, c10d::ReduceOp::MAX);
  const int64_t total = 2 * n + 1;
  TORCH_CHECK(r[2 * n].item<int64_t>() == -r[total + 2 * n].item<int64_t>(), "ohem::sync_masks: the ", label,
              " has ", n, " masked layers on rank ", dist.rank(), " but another count on some rank");
  for (int64_t i = 0; i < n; ++i) {
    const bool same = r[i].item<int64_t>() == -r[total + i].item<int64_t>() &&
                      r[n + i].item<int64_t>() == -r[total + n + i].item<int64_t>();
    TORCH_CHECK(same, "ohem::sync_masks: the ", label, "'s mask of layer \"",
                masks.name(static_cast<size_t>(i)), "\" differs between ranks (kept weights: between ",
                -r[total + i].item<int64_t>(), " and ", r[i].item<int64_t>(), " over the ranks, ",
                sums[i].item<int64_t>(), " on rank ", dist.rank(),
                "); refresh the masks from identical weights, or use MaskSync::Broadcast");
  }
}

/// Makes every twin's masks of a `SelfCompetitor` identical on every rank (see the twin overload).
///
/// Example: `sc.refresh(); ohem::sync_masks(dist, sc);`
template <typename Model, typename TaskLoss>
void sync_masks(const DistributedContext& dist, SelfCompetitor<Model, TaskLoss>& sc,
                MaskSync mode = MaskSync::Broadcast) {
  for (size_t k = 0; k < sc.num_twins(); ++k) sync_masks(dist, sc.twin(k), mode, "twin " + std::to_string(k));
}

/// Gathers every rank's per-sample hardness and records it in rank 0's tracker, so that rank 0's table
/// covers the whole dataset. Entries whose index is negative are dropped (mark the padding of a
/// `DistributedSampler` shard with −1 so that each sample counts exactly once per epoch). Other ranks'
/// trackers are untouched. Collective.
///
/// Example: `ohem::gather_hardness(dist, tracker, batch_indices, result.hardness);`
inline void gather_hardness(const DistributedContext& dist, HardnessTracker& tracker,
                            const torch::Tensor& indices, const torch::Tensor& hardness) {
  TORCH_CHECK(indices.defined() && hardness.defined() && indices.numel() == hardness.numel(),
              "ohem::gather_hardness: indices and hardness must have as many elements, got ",
              indices.defined() ? indices.numel() : -1, " and ", hardness.defined() ? hardness.numel() : -1);
  torch::Tensor idx = dist.all_gather_cat(indices.detach().reshape({-1}).to(torch::kCPU, torch::kLong));
  torch::Tensor h = dist.all_gather_cat(hardness.detach().reshape({-1}).to(torch::kCPU, torch::kDouble));
  if (!dist.is_main()) return;
  torch::Tensor keep = idx.ge(0);
  tracker.update(idx.masked_select(keep), h.masked_select(keep));
}

/// Options of a `DistributedSampler`.
struct DistributedSamplerOptions {
  /// Reshuffle every epoch (from `seed + epoch`, identical on every rank); off: dataset order.
  TORCH_ARG(bool, shuffle) = true;
  /// The shared seed (the same on every rank).
  TORCH_ARG(uint64_t, seed) = 0;
  /// Drop the tail that does not divide evenly (every rank gets floor(n / world)); off: pad by repeating
  /// the epoch's first indices so that every rank gets ceil(n / world) (as torch's DistributedSampler).
  TORCH_ARG(bool, drop_last) = false;
};

/// Splits each epoch's indices [0, n) into disjoint per-rank shards of equal length, reshuffled per epoch
/// from one shared seed (torch.utils.data.DistributedSampler's scheme: permute, pad to a multiple of the
/// world size, rank r takes positions r, r + world, …). The global batch is world_size × the per-rank
/// batch. Padding entries (repeats) come last in a shard: positions >= `counted()`.
///
/// Example: `ohem::DistributedSampler sampler(n, dist.rank(), dist.world_size()); auto idx =
/// sampler.indices(epoch);`
class DistributedSampler {
 public:
  /// Throws if n < 0 or the rank is outside [0, world_size).
  DistributedSampler(int64_t n, int rank, int world_size, DistributedSamplerOptions options = {})
      : n_(n), rank_(rank), world_(world_size), options_(options) {
    TORCH_CHECK(n >= 0, "ohem::DistributedSampler: dataset size must be >= 0, got ", n);
    TORCH_CHECK(world_size >= 1 && rank >= 0 && rank < world_size, "ohem::DistributedSampler: rank ", rank,
                " outside [0, ", world_size, ")");
  }
  /// Same, for the context's rank and world size.
  DistributedSampler(int64_t n, const DistributedContext& dist, DistributedSamplerOptions options = {})
      : DistributedSampler(n, dist.rank(), dist.world_size(), options) {}

  /// Returns how many indices every rank gets per epoch.
  int64_t per_rank() const { return options_.drop_last() ? n_ / world_ : (n_ + world_ - 1) / world_; }
  /// Returns how many of this rank's indices per epoch are not padding (the first ones).
  int64_t counted() const {
    if (options_.drop_last()) return per_rank();
    return n_ > rank_ ? (n_ - rank_ + world_ - 1) / world_ : 0;
  }
  /// Returns this rank's indices for `epoch` (`per_rank()` of them).
  std::vector<int64_t> indices(int64_t epoch) const {
    std::vector<int64_t> order(static_cast<size_t>(n_));
    if (options_.shuffle()) {
      auto gen = at::make_generator<at::CPUGeneratorImpl>(options_.seed() + static_cast<uint64_t>(epoch));
      torch::Tensor perm = torch::randperm(n_, gen, torch::kLong);
      std::copy(perm.data_ptr<int64_t>(), perm.data_ptr<int64_t>() + n_, order.begin());
    } else {
      for (int64_t i = 0; i < n_; ++i) order[static_cast<size_t>(i)] = i;
    }
    const int64_t total = per_rank() * world_;
    std::vector<int64_t> out;
    out.reserve(static_cast<size_t>(per_rank()));
    for (int64_t p = rank_; p < total; p += world_)
      out.push_back(n_ == 0 ? 0 : order[static_cast<size_t>(p % n_)]);
    return out;
  }
  /// Returns the dataset size.
  int64_t size() const { return n_; }

 private:
  int64_t n_;
  int rank_, world_;
  DistributedSamplerOptions options_;
};

OHEM_END_NAMESPACE
