#pragma once
/// @file
/// Thin layers: masked layers that a mask leaves (almost) empty — a layer keeping a tiny fraction of its
/// weights, or an output unit (an output channel of a convolution, a row of a Linear layer) keeping
/// almost none. The twin of such a layer can differ sharply from the full model, and the consistency term
/// can then dominate (or blow up) training; `PrunedTwin` reports such layers when it computes masks.

#include <ohem/enum_names.hpp>
#include <ohem/masks.hpp>
#include <ohem/slot_types.hpp>

#include <fmt/core.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

OHEM_BEGIN_NAMESPACE

/// What a twin does when its newly computed masks leave a layer thin.
enum class ThinLayerAction {
  /// Warn through LibTorch's warning handler (`TORCH_WARN`), naming each layer and its kept counts.
  Warn,
  /// Throw a `c10::Error` naming each layer; the twin keeps its previous masks (none at construction).
  Refuse,
  /// Say nothing (`PrunedTwin::thin_layers()` still lists them).
  Ignore,
};

/// The names of each ThinLayerAction (`to_string`, `enum_key`, `enum_from_key`).
template <>
struct EnumNames<ThinLayerAction> {
  static constexpr EnumName<ThinLayerAction> values[] = {
      {ThinLayerAction::Warn, "Warn", "warn"},
      {ThinLayerAction::Refuse, "Refuse", "refuse"},
      {ThinLayerAction::Ignore, "Ignore", "ignore"},
  };
};

/// Returns the action's name, e.g. "Warn".
inline const char* to_string(ThinLayerAction a) {
  return enum_name(a);
}

/// When a masked layer counts as thin, and what a twin does about it. Not part of the paper's recipe (a
/// diagnostic only: it never changes a mask).
///
/// Example: `ThinLayerOptions().min_fraction(0.2).action(ThinLayerAction::Refuse)`
struct ThinLayerOptions {
  /// An output unit keeping fewer than min(`min_unit_weights`, its size) weights makes its layer thin.
  /// Default 2: a unit left with at most one weight (or none).
  TORCH_ARG(int64_t, min_unit_weights) = 2;
  /// A layer keeping less than this fraction of its weights is thin. Default 0.01.
  TORCH_ARG(double, min_fraction) = 0.01;
  /// What the twin does: warn (default), refuse, or ignore.
  TORCH_ARG(ThinLayerAction, action) = ThinLayerAction::Warn;
};

/// One masked layer that a mask leaves thin, with its counts.
struct ThinLayer {
  /// The weight's qualified name, e.g. "fc.weight".
  std::string name;
  /// Weights in the layer, and how many the mask keeps.
  int64_t numel = 0;
  int64_t kept = 0;
  /// Output units (channels or rows), their size (weights per unit), how many keep fewer than
  /// min(`min_unit_weights`, size), and the fewest weights any unit keeps.
  int64_t units = 0;
  int64_t unit_size = 0;
  int64_t thin_units = 0;
  int64_t fewest = 0;

  /// Returns one line, e.g. "fc.weight keeps 1 of 4 weights (25.0 %); 1 of 1 output units keep fewer
  /// than 2 (the fewest keeps 1)".
  template <typename = void>
  std::string describe(int64_t min_unit_weights) const {
    std::string out = fmt::format("{} keeps {} of {} weights ({:.1f} %)", name, kept, numel,
                                  numel == 0 ? 0.0 : 100.0 * static_cast<double>(kept) / numel);
    if (thin_units > 0) {
      out += fmt::format("; {} of {} output units keep fewer than {} (the fewest keeps {})", thin_units,
                         units, std::min(min_unit_weights, unit_size), fewest);
    }
    return out;
  }
};

/// Returns the masked layers that `masks` leave thin per `options`, in slot order (one pass over each
/// mask). Throws if a slot has no mask or its mask's shape differs from the weight's.
///
/// Example: `for (const auto& t : ohem::find_thin_layers(twin.slots(), twin.masks())) std::cout << t.name;`
inline std::vector<ThinLayer> find_thin_layers(const std::vector<Slot>& slots, const MaskSet& masks,
                                               const ThinLayerOptions& options = {}) {
  TORCH_CHECK(options.min_unit_weights() >= 0, "ohem::ThinLayerOptions::min_unit_weights must be >= 0, got ",
              options.min_unit_weights());
  TORCH_CHECK(options.min_fraction() >= 0.0 && options.min_fraction() <= 1.0,
              "ohem::ThinLayerOptions::min_fraction must be in [0, 1], got ", options.min_fraction());
  torch::NoGradGuard no_grad;
  std::vector<ThinLayer> out;
  for (const auto& s : slots) {
    const torch::Tensor& m = masks.at(s.name);
    TORCH_CHECK(m.sizes() == s.parameter.sizes(), "ohem::find_thin_layers: the mask of layer \"", s.name,
                "\" has shape ", m.sizes(), ", but the weight has shape ", s.parameter.sizes());
    ThinLayer t;
    t.name = s.name;
    t.numel = m.numel();
    if (t.numel == 0) continue;
    t.units = m.size(s.output_dim);
    t.unit_size = t.numel / t.units;
    const torch::Tensor per_unit = m.transpose(0, s.output_dim).reshape({t.units, -1}).sum(1).cpu();
    const int64_t floor = std::min(options.min_unit_weights(), t.unit_size);
    t.kept = per_unit.sum().item<int64_t>();
    t.fewest = per_unit.min().item<int64_t>();
    t.thin_units = per_unit.lt(floor).sum().item<int64_t>();
    const bool sparse_layer =
        static_cast<double>(t.kept) < options.min_fraction() * static_cast<double>(t.numel);
    if (t.thin_units > 0 || sparse_layer) out.push_back(std::move(t));
  }
  return out;
}

/// Acts on a list of thin layers as `options.action()` says: warns (`TORCH_WARN`), throws, or does
/// nothing; `who` names the caller in the message. `PrunedTwin` calls it whenever it computes masks.
///
/// Example: `ohem::report_thin_layers(ohem::find_thin_layers(slots, masks), {}, "my trainer");`
template <typename = void>
void report_thin_layers(const std::vector<ThinLayer>& thin, const ThinLayerOptions& options,
                        const char* who) {
  if (thin.empty() || options.action() == ThinLayerAction::Ignore) return;
  std::string lines;
  for (const auto& t : thin) lines += "\n  " + t.describe(options.min_unit_weights());
  const std::string advice =
      "\nThe twin keeps little of such a layer and can differ sharply from the full model; if the OHEM loss "
      "grows, lower MaskOptions::ratio, mask other layer kinds (SelfCompetitorOptions::layers) or leave the "
      "layer out (SlotOptions::exclude). TwinOptions::thin_layers sets these thresholds (a layer keeping "
      "under " +
      fmt::format("{:g}", 100.0 * options.min_fraction()) + " % of its weights, a unit keeping under " +
      std::to_string(options.min_unit_weights()) + ").";
  TORCH_CHECK(options.action() != ThinLayerAction::Refuse, who, ": the masks leave ", thin.size(),
              " layer(s) thin (ThinLayerAction::Refuse):", lines, advice);
  TORCH_WARN(who, ": the masks leave ", thin.size(), " layer(s) thin:", lines, advice);
}

OHEM_END_NAMESPACE
