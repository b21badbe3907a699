#pragma once
/// @file
/// The trainers' OHEM settings and what they report of the twin: the self-competitor's options from the
/// command line (`competitor_options`), the layers the twin masks (`twin_slot_options`), the line and
/// log event that describe a stage's masks, and the warning for masks of weights that were never trained
/// (`untrained_mask_layers`). The OHEM lines of the loop itself are in trainer_base.hpp and the trainers.

#include "command_line.hpp"

#include <ohem/self_competitor.hpp>

#include <torch/torch.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace ohem_examples {

/// Returns `text` as an ECMAScript regular expression that matches it literally (a parameter name for
/// `ohem::SlotOptions::exclude`).
inline std::string regex_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

/// The twin's layers: the recipe's convolutions, or (--mask-layers conv+linear) every convolution and
/// Linear layer of `net` except the `head` parameters (those stage 1 trains); --mask-exclude leaves more
/// dense. Throws naming --mask-layers if it is neither.
inline ohem::SlotOptions twin_slot_options(const TrainOptions& o, torch::nn::Module& net,
                                           const std::vector<torch::Tensor>& head) {
  ohem::SlotOptions s = ohem::SlotOptions().exclude(o.mask_exclude);
  if (o.mask_layers == "conv") return s;
  TORCH_CHECK(o.mask_layers == "conv+linear", "--mask-layers must be conv or conv+linear, got ",
              o.mask_layers);
  std::set<const void*> head_tensors;
  for (const auto& p : head) head_tensors.insert(p.unsafeGetTensorImpl());
  std::vector<std::string> exclude = o.mask_exclude;
  for (const auto& p : net.named_parameters()) {
    if (head_tensors.count(p.value().unsafeGetTensorImpl()) != 0)
      exclude.push_back("^" + regex_escape(p.key()) + "$");
  }
  return s.kinds(ohem::LayerKind::All).exclude(exclude);
}

/// Returns the self-competitor's options of the run: --ratio, --mask-criterion, --mask-random-fraction and
/// --seed for the masks (random parts only; twin k draws from seed + k), --mode, --twins, --batchnorm,
/// --alpha, --lambda, and the twin's layers `slots` (`twin_slot_options`).
inline ohem::SelfCompetitorOptions competitor_options(const TrainOptions& o, const ohem::SlotOptions& slots) {
  const ohem::MaskOptions masks = ohem::MaskOptions()
                                      .ratio(o.ratio)
                                      .criterion(o.mask_criterion)
                                      .random_fraction(o.mask_random_fraction)
                                      .seed(o.seed);
  return ohem::SelfCompetitorOptions()
      .mode(o.mode)
      .num_twins(o.twins)
      .twin(ohem::TwinOptions().masks(masks).batchnorm(o.batchnorm).slots(slots))
      .loss(ohem::OhemLossOptions().alpha(o.alpha).lambda(o.lambda));
}

/// Returns the console line that starts a stage with OHEM: its epochs, `batch` (as said), and how much of
/// the model's `parameters` the masks `m` cover and prune.
inline std::string masks_line(const ohem::MaskSet& m, int64_t stage, int64_t epochs, const std::string& batch,
                              int64_t parameters) {
  const double all = static_cast<double>(std::max<int64_t>(1, parameters));
  return fmt::format(
      "stage {}: {} epochs, batch {}; twin masks {} of {} weights ({:.1f}% pruned) in {} layer{}: "
      "{:.2f}% of all {} parameters masked, {:.2f}% pruned",
      stage, epochs, batch, m.kept(), m.numel(), 100.0 * m.sparsity(), m.size(), m.size() == 1 ? "" : "s",
      100.0 * static_cast<double>(m.numel()) / all, parameters,
      100.0 * static_cast<double>(m.numel() - m.kept()) / all);
}

/// Returns log.jsonl's "masks" event of a stage: the masks' kept and total weights, layers, and the
/// model's parameters.
inline nlohmann::ordered_json masks_event(const ohem::MaskSet& m, int64_t stage, int64_t parameters) {
  return {{"event", "masks"},   {"stage", stage},     {"kept", m.kept()},
          {"total", m.numel()}, {"layers", m.size()}, {"parameters", parameters}};
}

/// Returns how many of the twin's layers `slots` still hold their `initial` weights (by parameter name):
/// magnitude masks of such weights are random masks (a from-scratch backbone frozen in stage 1).
template <typename Slots>
int64_t untrained_mask_layers(const Slots& slots, const std::map<std::string, torch::Tensor>& initial) {
  int64_t untrained = 0;
  for (const auto& slot : slots) {
    const auto it = initial.find(slot.name);
    if (it != initial.end() && torch::equal(slot.parameter.detach(), it->second)) ++untrained;
  }
  return untrained;
}

/// Returns the warning for `untrained` of `layers` masked layers still at their initial weights in `stage`.
inline std::string untrained_masks_warning(int64_t untrained, size_t layers, int64_t stage) {
  return fmt::format(
      "magnitude masks of untrained weights are random masks: {} of the {} layers the twin masks in "
      "stage {} still hold their initial weights (start from trained weights with --init-from or "
      "--pretrained)",
      untrained, layers, stage);
}

}  // namespace ohem_examples
