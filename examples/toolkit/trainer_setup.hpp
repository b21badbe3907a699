#pragma once
/// @file
/// TrainerBase's set-up of the model (the definitions of its members, declared in trainer_base.hpp): the
/// model made (seeded) with --pretrained and --init-from weights on --device, the log opened (cut back to
/// the checkpoint's length on resume), the masks of a new stage reported (and the warning for masks of
/// untrained weights), a spare model for the chosen epoch's weights.

#include "trainer_base.hpp"  // (which includes this header after the class)

#include <ohem/self_competitor.hpp>

#include <torch/torch.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <system_error>

namespace ohem_examples {

template <typename Derived, typename Net, typename TaskLoss>
void TrainerBase<Derived, Net, TaskLoss>::make_model() {
  net_ = self().make_net();
  // The weights as initialised (seeded: the same on resume), to tell masks of untrained weights.
  {
    torch::NoGradGuard no_grad;
    for (const auto& p : net_->named_parameters()) initial_[p.key()] = p.value().detach().clone();
  }
  if (!o_.pretrained.empty()) {
    const int64_t n = load_script_weights(backbone(), o_.pretrained);
    say(fmt::format("loaded {} backbone tensors from {}", n, o_.pretrained));
  }
  if (!o_.init_from.empty()) {
    const int64_t n = load_model_weights(*net_, o_.init_from);
    say(fmt::format("initialised {} tensors from {}", n, o_.init_from));
  }
  if (!device_.is_cpu()) {  // --device: the model, its initial weights (for the warning) and all after it
    net_->to(device_);
    for (auto& [name, t] : initial_) t = t.to(device_);
  }
}

template <typename Derived, typename Net, typename TaskLoss>
void TrainerBase<Derived, Net, TaskLoss>::open_log() {
  const std::string log_path = (std::filesystem::path(o_.out) / "log.jsonl").string();
  if (resume_ && dist_.is_main()) {
    // The log reads as one run: what was written after the checkpoint is cut off.
    const int64_t log_bytes = resume_->log_bytes;
    std::error_code ec;
    const auto size = std::filesystem::file_size(log_path, ec);
    if (resume_in_place_ && !ec && static_cast<int64_t>(size) > log_bytes)
      std::filesystem::resize_file(log_path, static_cast<uintmax_t>(log_bytes));
  }
  if (dist_.is_main()) log_ = JsonLog(log_path, /*append=*/resume_in_place_);  // rank 0 alone writes
}

template <typename Derived, typename Net, typename TaskLoss>
void TrainerBase<Derived, Net, TaskLoss>::report_masks(const Stage& st) {
  const ohem::MaskSet& m = competitor_->twin().masks();
  const std::string batch = dist_.distributed()
                                ? fmt::format("{} per rank ({} global over {} ranks)", st.batch,
                                              st.batch * dist_.world_size(), dist_.world_size())
                                : std::to_string(st.batch);
  int64_t parameters = 0;
  for (const auto& p : net_->parameters()) parameters += p.numel();
  say(masks_line(m, st.number, st.epochs, batch, parameters));
  log_.write(masks_event(m, st.number, parameters));
  warn_if_untrained_masks(st.number);
}

template <typename Derived, typename Net, typename TaskLoss>
void TrainerBase<Derived, Net, TaskLoss>::warn_if_untrained_masks(int64_t stage) {
  if (!competitor_ || o_.mask_criterion == ohem::MaskCriterion::Random) return;
  const auto& slots = competitor_->twin().slots();
  const int64_t untrained = untrained_mask_layers(slots, initial_);
  if (untrained == 0) return;
  const std::string message = untrained_masks_warning(untrained, slots.size(), stage);
  warnings_.push_back(message);
  if (dist_.is_main() && !o_.quiet) std::cout << "warning: " << message << std::endl;
  log_.write(nlohmann::ordered_json{{"event", "warning"}, {"stage", stage}, {"message", message}});
}

template <typename Derived, typename Net, typename TaskLoss>
Net TrainerBase<Derived, Net, TaskLoss>::spare_net() {
  const torch::Tensor state = cpu_rng_state();
  Net n = self().make_net();
  set_cpu_rng_state(state);
  n->eval();
  return n;
}

template <typename Derived, typename Net, typename TaskLoss>
torch::nn::Module& TrainerBase<Derived, Net, TaskLoss>::backbone() {
  auto children = net_->named_children();
  TORCH_CHECK(children.contains("backbone"), "the model has no child module named \"backbone\"");
  return *children["backbone"];
}

}  // namespace ohem_examples
