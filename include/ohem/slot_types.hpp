#pragma once
/// @file
/// The types that describe slots (the prunable weights of a module): `LayerKind`, `SlotOptions` and
/// `Slot`. `ohem/slots.hpp` finds them.

#include <ohem/tensor_handle.hpp>
#include <ohem/version.hpp>

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

OHEM_BEGIN_NAMESPACE

/// Kinds of prunable layers, combinable with `|`.
enum class LayerKind : std::uint32_t {
  None = 0,
  Conv = 1u << 0,           ///< Conv1d, Conv2d, Conv3d
  ConvTranspose = 1u << 1,  ///< ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
  Linear = 1u << 2,         ///< Linear
  Custom = 1u << 3,         ///< layers registered with `register_prunable`
  /// The paper's recipe: every convolution (the regression head and BatchNorm stay dense), plus the
  /// user's registered layers (registering a layer is the request to prune it).
  Recipe = Conv | ConvTranspose | Custom,
  All = Conv | ConvTranspose | Linear | Custom,
};

/// Returns the union of two sets of layer kinds.
constexpr LayerKind operator|(LayerKind a, LayerKind b) noexcept {
  return static_cast<LayerKind>(static_cast<std::uint32_t>(a) | static_cast<std::uint32_t>(b));
}
/// Returns the intersection of two sets of layer kinds.
constexpr LayerKind operator&(LayerKind a, LayerKind b) noexcept {
  return static_cast<LayerKind>(static_cast<std::uint32_t>(a) & static_cast<std::uint32_t>(b));
}
/// Returns true if the set `kinds` contains every kind of `kind`.
constexpr bool contains(LayerKind kinds, LayerKind kind) noexcept {
  return (kinds & kind) == kind;
}

/// Returns a readable name of a set of kinds, e.g. "Conv|ConvTranspose|Custom".
inline std::string to_string(LayerKind kinds) {
  std::string out;
  const std::pair<LayerKind, const char*> names[] = {{LayerKind::Conv, "Conv"},
                                                     {LayerKind::ConvTranspose, "ConvTranspose"},
                                                     {LayerKind::Linear, "Linear"},
                                                     {LayerKind::Custom, "Custom"}};
  for (const auto& [k, n] : names) {
    if (contains(kinds, k)) out += (out.empty() ? "" : "|") + std::string(n);
  }
  return out.empty() ? "None" : out;
}

/// Options choosing which weights of a module are prunable.
///
/// Example: `SlotOptions().kinds(LayerKind::All).exclude({"^fc\\."})`
struct SlotOptions {
  /// Which layer kinds to collect. Default: the paper's recipe (all convolutions, no Linear head).
  TORCH_ARG(LayerKind, kinds) = LayerKind::Recipe;
  /// ECMAScript regular expressions searched in the qualified parameter name ("layer1.0.conv1.weight");
  /// when non-empty, a weight is kept only if one of them matches.
  TORCH_ARG(std::vector<std::string>, include) = {};
  /// Regular expressions as for `include`; a weight matching any of them is left out.
  TORCH_ARG(std::vector<std::string>, exclude) = {};
};

/// One prunable weight of a module.
struct Slot {
  /// Qualified parameter name as in `module->named_parameters()`, e.g. "layer1.0.conv1.weight".
  std::string name;
  /// The layer's type, e.g. "Conv2d", or the name given to `register_prunable`.
  std::string type;
  /// The layer's kind.
  LayerKind kind = LayerKind::None;
  /// The registered leaf parameter; the optimizer holds this tensor.
  torch::Tensor parameter;
  /// The dimension that indexes output channels (0 for Conv/Linear, 1 for ConvTranspose).
  int64_t output_dim = 0;
  /// Reads/replaces the tensor the layer's forward uses (normally the same tensor as `parameter`).
  TensorHandle handle;
};

OHEM_END_NAMESPACE
