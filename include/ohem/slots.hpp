#pragma once
/// @file
/// Slots: the prunable weights of a module, found by walking it.
///
/// Built-in layers (Conv1d/2d/3d, ConvTranspose1d/2d/3d, Linear) are known; a user's own layer opts in
/// with one call to `ohem::register_prunable`; TorchScript modules are walked through their submodules'
/// attributes.

#include <ohem/tensor_handle.hpp>

#include <fmt/format.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <regex>
#include <string>
#include <type_traits>
#include <unordered_set>
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

/// Registers a user layer type as prunable: `field` is the member tensor its forward reads, which must
/// also be registered as a parameter (`register_parameter`). This is ohem's one customization point for
/// new layer types; call it once, before building a twin (a later registration of the same `type` wins).
///
/// Example: `ohem::register_prunable<MaskedDenseImpl>("MaskedDense", &MaskedDenseImpl::kernel);`
template <typename Impl>
void register_prunable(std::string type, torch::Tensor Impl::*field, LayerKind kind = LayerKind::Custom,
                       int64_t output_dim = 0);

namespace detail {

/// One known layer type: tries to recognise a module and to return its weight handle.
struct LayerRule {
  std::string type;
  LayerKind kind;
  int64_t output_dim;
  /// Returns the handle of the module's prunable weight, or an empty handle if not this type.
  std::function<TensorHandle(const std::shared_ptr<torch::nn::Module>&)> match;
};

inline std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}

template <typename Impl>
LayerRule make_rule(std::string type, torch::Tensor Impl::*field, LayerKind kind, int64_t output_dim) {
  static_assert(std::is_base_of<torch::nn::Module, Impl>::value,
                "ohem::register_prunable<Impl>: Impl must derive from torch::nn::Module "
                "(pass the Impl class, e.g. MyLayerImpl, not the TORCH_MODULE holder MyLayer)");
  LayerRule r{std::move(type), kind, output_dim, nullptr};
  r.match = [field](const std::shared_ptr<torch::nn::Module>& m) -> TensorHandle {
    if (auto impl = std::dynamic_pointer_cast<Impl>(m)) return TensorHandle::member<Impl>(impl, field);
    return {};
  };
  return r;
}

/// The layer registry: user registrations first (newest first), then the built-in layers.
inline std::vector<LayerRule>& layer_rules() {
  static std::vector<LayerRule> rules = [] {
    using namespace torch::nn;
    return std::vector<LayerRule>{
        make_rule<Conv1dImpl>("Conv1d", &Conv1dImpl::weight, LayerKind::Conv, 0),
        make_rule<Conv2dImpl>("Conv2d", &Conv2dImpl::weight, LayerKind::Conv, 0),
        make_rule<Conv3dImpl>("Conv3d", &Conv3dImpl::weight, LayerKind::Conv, 0),
        make_rule<ConvTranspose1dImpl>("ConvTranspose1d", &ConvTranspose1dImpl::weight,
                                       LayerKind::ConvTranspose, 1),
        make_rule<ConvTranspose2dImpl>("ConvTranspose2d", &ConvTranspose2dImpl::weight,
                                       LayerKind::ConvTranspose, 1),
        make_rule<ConvTranspose3dImpl>("ConvTranspose3d", &ConvTranspose3dImpl::weight,
                                       LayerKind::ConvTranspose, 1),
        make_rule<LinearImpl>("Linear", &LinearImpl::weight, LayerKind::Linear, 0),
    };
  }();
  return rules;
}

/// Built-in TorchScript layer types, by the unqualified class name (torchvision's export uses these).
inline bool script_rule(const std::string& type, LayerKind* kind, int64_t* output_dim) {
  static const std::pair<const char*, LayerKind> known[] = {{"Conv1d", LayerKind::Conv},
                                                            {"Conv2d", LayerKind::Conv},
                                                            {"Conv3d", LayerKind::Conv},
                                                            {"ConvTranspose1d", LayerKind::ConvTranspose},
                                                            {"ConvTranspose2d", LayerKind::ConvTranspose},
                                                            {"ConvTranspose3d", LayerKind::ConvTranspose},
                                                            {"Linear", LayerKind::Linear}};
  for (const auto& [name, k] : known) {
    if (type == name) {
      *kind = k;
      *output_dim = k == LayerKind::ConvTranspose ? 1 : 0;
      return true;
    }
  }
  return false;
}

inline std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

/// Applies the include/exclude patterns of `options` to a qualified name.
class NameFilter {
 public:
  explicit NameFilter(const SlotOptions& options) {
    for (const auto& p : options.include()) include_.push_back(compile(p, "include"));
    for (const auto& p : options.exclude()) exclude_.push_back(compile(p, "exclude"));
  }
  bool accepts(const std::string& name) const {
    if (!include_.empty()) {
      bool any = false;
      for (const auto& re : include_) any = any || std::regex_search(name, re);
      if (!any) return false;
    }
    for (const auto& re : exclude_) {
      if (std::regex_search(name, re)) return false;
    }
    return true;
  }

 private:
  static std::regex compile(const std::string& pattern, const char* which) {
    try {
      return std::regex(pattern, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      TORCH_CHECK(false, "ohem::SlotOptions::", which, ": invalid regular expression \"", pattern,
                  "\": ", e.what());
    }
    return {};
  }
  std::vector<std::regex> include_, exclude_;
};

/// Calls `fn(qualified_name, module)` for the root (when it is owned by a shared_ptr) and every
/// descendant of `root`, depth first in registration order. Works for a root held by value too.
template <typename Fn>
void for_each_module(torch::nn::Module& root, Fn&& fn) {
  try {
    fn(std::string(), root.shared_from_this());
  } catch (const std::bad_weak_ptr&) {
    // A root held by value cannot be shared; only its children are visited.
  }
  std::function<void(const std::string&, torch::nn::Module&)> walk = [&](const std::string& prefix,
                                                                         torch::nn::Module& mod) {
    for (const auto& child : mod.named_children()) {
      std::string name = prefix.empty() ? child.key() : prefix + "." + child.key();
      fn(name, child.value());
      walk(name, *child.value());
    }
  };
  walk(std::string(), root);
}

inline void check_found(const std::vector<Slot>& slots, const std::string& what, const SlotOptions& options) {
  TORCH_CHECK(!slots.empty(), "ohem::find_slots: no prunable weight found in ", what,
              "; looked for layer kinds {", to_string(options.kinds()), "} (built-in: Conv1d/2d/3d, ",
              "ConvTranspose1d/2d/3d, Linear; register your own layer with ohem::register_prunable)",
              options.include().empty() ? "" : ", include patterns {" + join(options.include()) + "}",
              options.exclude().empty() ? "" : ", exclude patterns {" + join(options.exclude()) + "}");
}

}  // namespace detail

template <typename Impl>
void register_prunable(std::string type, torch::Tensor Impl::*field, LayerKind kind, int64_t output_dim) {
  TORCH_CHECK(!type.empty(), "ohem::register_prunable: the layer type name must not be empty");
  TORCH_CHECK(kind != LayerKind::None, "ohem::register_prunable(\"", type, "\"): kind must not be None");
  TORCH_CHECK(output_dim >= 0, "ohem::register_prunable(\"", type, "\"): output_dim must be >= 0, got ",
              output_dim);
  std::lock_guard<std::mutex> lock(detail::registry_mutex());
  auto& rules = detail::layer_rules();
  rules.insert(rules.begin(), detail::make_rule<Impl>(std::move(type), field, kind, output_dim));
}

/// Collects the prunable weights of a `torch::nn::Module` tree, in the order of `named_modules()`.
///
/// Walks nested Sequential / ModuleList / ModuleDict / user modules. A weight shared by several layers is
/// listed once. Throws `c10::Error` if nothing prunable is found, naming what was looked for.
///
/// Example: `auto slots = ohem::find_slots(*net, ohem::SlotOptions().exclude({"^fc\\."}));`
inline std::vector<Slot> find_slots(torch::nn::Module& module, const SlotOptions& options = {}) {
  detail::NameFilter filter(options);
  std::vector<Slot> slots;
  std::unordered_set<const void*> seen;
  std::vector<detail::LayerRule> rules;
  {
    std::lock_guard<std::mutex> lock(detail::registry_mutex());
    rules = detail::layer_rules();
  }
  auto visit = [&](const std::string& prefix, const std::shared_ptr<torch::nn::Module>& m) {
    for (const auto& rule : rules) {
      TensorHandle h = rule.match(m);
      if (!h.get) continue;
      if (!contains(options.kinds(), rule.kind)) return;
      torch::Tensor w = h.get();
      // The member must be one of the module's registered parameters: that is what the optimizer holds.
      std::string pname;
      for (const auto& p : m->named_parameters(/*recurse=*/false)) {
        if (p.value().is_same(w)) pname = p.key();
      }
      TORCH_CHECK(!pname.empty(), "ohem::find_slots: layer \"", prefix, "\" of type ", rule.type,
                  ": its prunable member tensor is not one of its registered parameters (call "
                  "register_parameter for it, or undefined weight)");
      std::string name = prefix.empty() ? pname : prefix + "." + pname;
      if (!filter.accepts(name)) return;
      if (!seen.insert(w.unsafeGetTensorImpl()).second) return;
      TORCH_CHECK(w.dim() > rule.output_dim, "ohem::find_slots: weight \"", name, "\" of type ", rule.type,
                  " has ", w.dim(), " dimensions, expected more than output_dim = ", rule.output_dim);
      slots.push_back(Slot{name, rule.type, rule.kind, w, rule.output_dim, std::move(h)});
      return;
    }
  };
  detail::for_each_module(module, visit);
  detail::check_found(slots, "module " + module.name(), options);
  return slots;
}

/// Collects the prunable weights of a TorchScript module (e.g. a torchvision model exported from Python)
/// through its submodules' attributes: a submodule whose class is named Conv1d/2d/3d,
/// ConvTranspose1d/2d/3d or Linear and that has a parameter "weight".
///
/// Example: `auto slots = ohem::find_slots(scripted, ohem::SlotOptions());`
inline std::vector<Slot> find_slots(const torch::jit::Module& module, const SlotOptions& options = {}) {
  detail::NameFilter filter(options);
  std::vector<Slot> slots;
  std::unordered_set<const void*> seen;
  for (const auto& sub : module.named_modules()) {
    const auto& type = sub.value.type();
    if (!type->name()) continue;
    LayerKind kind = LayerKind::None;
    int64_t output_dim = 0;
    if (!detail::script_rule(type->name()->name(), &kind, &output_dim)) continue;
    if (!contains(options.kinds(), kind)) continue;
    auto idx = type->findAttributeSlot("weight");
    if (!idx || !type->is_parameter(*idx)) continue;
    torch::Tensor w = sub.value.attr("weight").toTensor();
    if (!w.defined()) continue;
    std::string name = sub.name.empty() ? "weight" : sub.name + ".weight";
    if (!filter.accepts(name)) continue;
    if (!seen.insert(w.unsafeGetTensorImpl()).second) continue;
    slots.push_back(
        Slot{name, type->name()->name(), kind, w, output_dim, TensorHandle::attribute(sub.value, "weight")});
  }
  detail::check_found(slots, "TorchScript module " + module.type()->repr_str(), options);
  return slots;
}

OHEM_END_NAMESPACE
