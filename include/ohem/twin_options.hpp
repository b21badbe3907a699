#pragma once
/// @file
/// Options of a pruned twin: which weights are masked, how the masks are computed, what the twin does with
/// BatchNorm running statistics, when masks are recomputed.

#include <ohem/enum_names.hpp>
#include <ohem/masks.hpp>
#include <ohem/slots.hpp>
#include <ohem/thin_layers.hpp>

#include <torch/torch.h>

#include <cstdint>

OHEM_BEGIN_NAMESPACE

/// What the twin's forward does with BatchNorm running statistics.
enum class BatchNormPolicy {
  /// The recipe: BatchNorm layers are shared; the twin's pass in training mode updates the same running
  /// statistics as the full model's pass.
  Shared,
  /// The twin's pass leaves the running statistics unchanged (it normalises with batch statistics in
  /// training mode and with the full model's running statistics in eval mode).
  Frozen,
  /// The twin keeps its own running statistics (copied from the model when the twin is built), updates
  /// them in training mode and uses them in eval mode.
  Separate,
};

/// The names of each BatchNormPolicy (`to_string`, `enum_key`, `enum_from_key`).
template <>
struct EnumNames<BatchNormPolicy> {
  static constexpr EnumName<BatchNormPolicy> values[] = {
      {BatchNormPolicy::Shared, "Shared", "shared"},
      {BatchNormPolicy::Frozen, "Frozen", "frozen"},
      {BatchNormPolicy::Separate, "Separate", "separate"},
  };
};

/// Returns the policy's name, e.g. "Shared".
inline const char* to_string(BatchNormPolicy p) {
  return enum_name(p);
}

/// Options of a pruned twin. Defaults reproduce the paper's public recipe.
///
/// Example: `TwinOptions().masks(MaskOptions().ratio(0.7)).batchnorm(BatchNormPolicy::Frozen)`
struct TwinOptions {
  /// Which weights are masked. Recipe: every convolution, not the Linear head.
  TORCH_ARG(SlotOptions, slots) = {};
  /// How masks are computed. Recipe: global magnitude, ratio 0.65.
  TORCH_ARG(MaskOptions, masks) = {};
  /// BatchNorm running statistics in the twin's pass. Recipe: Shared.
  TORCH_ARG(BatchNormPolicy, batchnorm) = BatchNormPolicy::Shared;
  /// Recompute the masks every N calls of `step()`; 0 (the recipe) computes them once, when the twin is
  /// built, and again only on `refresh()` (at the start of each training stage).
  TORCH_ARG(int64_t, refresh_every) = 0;
  /// Keep the buffers of the masked weights w ⊙ m between scopes and write the next scope's product into
  /// them when nothing else references them any more (the previous graph was freed). This saves
  /// allocating, and on the CPU page-faulting, one weight-sized tensor per masked layer per scope, at the
  /// cost of holding them between scopes (4 bytes per float32 masked weight). Not part of the recipe;
  /// results are identical either way.
  TORCH_ARG(bool, reuse_buffers) = true;
  /// When computed masks leave a layer thin (almost empty), and whether the twin warns (default), refuses
  /// or ignores it (see `ThinLayerOptions`). A diagnostic: it never changes a mask.
  TORCH_ARG(ThinLayerOptions, thin_layers) = {};

 public:
  /// Sets which layer kinds are masked: the short form of `slots(SlotOptions().kinds(kinds))` that keeps
  /// the include/exclude patterns. Recipe: `LayerKind::Recipe` (convolutions); a model without
  /// convolutions (e.g. only Linear layers) needs `LayerKind::All` or `LayerKind::Linear`.
  ///
  /// Example: `TwinOptions().layers(ohem::LayerKind::All)`
  TwinOptions& layers(LayerKind kinds) {
    slots_.kinds(kinds);
    return *this;
  }
  /// Returns the masked layer kinds (`slots().kinds()`).
  LayerKind layers() const noexcept { return slots_.kinds(); }
};

OHEM_END_NAMESPACE
