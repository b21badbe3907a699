#pragma once
/// @file
/// TrainerBase's data-parallel wiring (the definitions of its members, declared in trainer_base.hpp;
/// docs/distributed.md): the model or the self-competitor wrapped for data parallelism, the gradient
/// all-reduce and the mean losses after a step, each rank's share of an epoch, and the hardness gathered
/// to rank 0 without the repeats that even out the shares.

#include "trainer_base.hpp"  // (which includes this header after the class)

#include <ohem/distributed.hpp>
#include <ohem/hardness.hpp>

#include <torch/torch.h>

#include <fmt/format.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace ohem_examples {

template <typename Derived, typename Net, typename TaskLoss>
void TrainerBase<Derived, Net, TaskLoss>::start_data_parallel() {
  // Data parallel: rank 0's weights and buffers everywhere (the twin's own BatchNorm statistics
  // included), gradients averaged during backward, rank 0's masks everywhere.
  if (competitor_) {
    ddp_ = std::make_unique<ohem::DistributedDataParallel>(dist_, *competitor_);
    ohem::sync_masks(dist_, *competitor_);
  } else {
    ddp_ = std::make_unique<ohem::DistributedDataParallel>(dist_, net_);
  }
  say(fmt::format("distributed: {} processes ({}{}), this is rank {}; batch per rank {}, global {}",
                  dist_.world_size(), dist_.backend_name(),
                  device_.is_cuda() ? ", each rank on cuda:LOCAL_RANK" : "", dist_.rank(),
                  schedule_.finished() ? 0 : schedule_.stage().batch,
                  schedule_.finished() ? 0 : schedule_.stage().batch * dist_.world_size()));
}

template <typename Derived, typename Net, typename TaskLoss>
void TrainerBase<Derived, Net, TaskLoss>::sync_step(StepStats& s) {
  ddp_->sync_gradients();
  const torch::Tensor mean =
      dist_.all_reduce(torch::tensor({s.loss, s.task_full, s.task_twin, s.consistency}, torch::kDouble)) /
      dist_.world_size();
  s.loss = mean[0].item<double>();
  s.task_full = mean[1].item<double>();
  s.task_twin = mean[2].item<double>();
  s.consistency = mean[3].item<double>();
}

template <typename Derived, typename Net, typename TaskLoss>
void TrainerBase<Derived, Net, TaskLoss>::record_hardness(const torch::Tensor& indices,
                                                          const torch::Tensor& hardness) {
  if (!dist_.distributed()) {
    tracker_.update(indices, hardness);
    return;
  }
  torch::Tensor marked = indices.to(torch::kLong).clone();
  for (size_t k = 0; k < padding_.size() && static_cast<int64_t>(k) < marked.numel(); ++k)
    if (padding_[k]) marked[static_cast<int64_t>(k)] = -1;
  ohem::gather_hardness(dist_, tracker_, marked, hardness);
}

template <typename Derived, typename Net, typename TaskLoss>
const ohem::DistributedSampler& TrainerBase<Derived, Net, TaskLoss>::sampler() {
  const int64_t n = self().items_per_epoch();
  if (!sampler_ || sampler_->size() != n)
    sampler_.emplace(n, dist_, ohem::DistributedSamplerOptions().shuffle(false));
  return *sampler_;
}

template <typename Derived, typename Net, typename TaskLoss>
const std::vector<int64_t>& TrainerBase<Derived, Net, TaskLoss>::epoch_share() {
  const ohem::DistributedSampler& s = sampler();
  if (share_n_ != s.size()) {
    share_ = s.indices(0);
    share_n_ = s.size();
  }
  return share_;
}

}  // namespace ohem_examples
