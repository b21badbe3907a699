#pragma once
/// @file
/// Internal: the layer registry behind `ohem::register_prunable` and `ohem::find_slots` (built-in and
/// user layer rules, TorchScript layer names), the include/exclude name filter and the module walk.

#include <ohem/slot_types.hpp>
#include <ohem/tensor_handle.hpp>
#include <ohem/version.hpp>

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <regex>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

OHEM_BEGIN_NAMESPACE
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

/// The layer registry: user registrations first (newest first), then the built-in layers. (A template,
/// called as `layer_rules()`, so that a translation unit that never looks for slots compiles none of the
/// rules.)
template <typename = void>
std::vector<LayerRule>& layer_rules() {
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

/// Applies the include/exclude patterns of `options` to a qualified name. A class template so that a
/// translation unit that never filters names does not instantiate `std::regex`.
template <typename Regex = std::regex>
class BasicNameFilter {
 public:
  explicit BasicNameFilter(const SlotOptions& options) {
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
  static Regex compile(const std::string& pattern, const char* which) {
    try {
      return Regex(pattern, std::regex_constants::ECMAScript);
    } catch (const std::regex_error& e) {
      TORCH_CHECK(false, "ohem::SlotOptions::", which, ": invalid regular expression \"", pattern,
                  "\": ", e.what());
    }
    return {};
  }
  std::vector<Regex> include_, exclude_;
};
using NameFilter = BasicNameFilter<>;

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

/// Throws if no slot was found: names what was looked for, the layers left out by their kind (`skipped`,
/// one type name per layer) and the options that mask them.
inline void check_found(const std::vector<Slot>& slots, const std::string& what, const SlotOptions& options,
                        const std::vector<std::string>& skipped) {
  if (!slots.empty()) return;
  // "2 Linear layers, 1 ConvTranspose2d layer", in the order first met.
  std::vector<std::pair<std::string, int>> counts;
  for (const auto& type : skipped) {
    bool found = false;
    for (auto& c : counts) {
      if (c.first == type) {
        ++c.second;
        found = true;
      }
    }
    if (!found) counts.emplace_back(type, 1);
  }
  std::string others;
  for (const auto& [type, n] : counts)
    others += (others.empty() ? "" : ", ") + std::to_string(n) + " " + type + (n == 1 ? " layer" : " layers");
  TORCH_CHECK(false, "ohem::find_slots: no prunable weight found in ", what, "; looked for layer kinds {",
              to_string(options.kinds()), "}",
              options.kinds() == LayerKind::Recipe ? " (the recipe's default: convolutions only)" : "",
              options.include().empty() ? "" : ", include patterns {" + join(options.include()) + "}",
              options.exclude().empty() ? "" : ", exclude patterns {" + join(options.exclude()) + "}",
              others.empty() ? ""
                             : ". Left out by their kind: " + others +
                                   ". To mask them too, pass "
                                   "SelfCompetitorOptions().layers(ohem::LayerKind::All) to SelfCompetitor, "
                                   "TwinOptions().layers(ohem::LayerKind::All) to PrunedTwin, or "
                                   "SlotOptions().kinds(ohem::LayerKind::All) to find_slots",
              ". Built-in layers: Conv1d/2d/3d, ConvTranspose1d/2d/3d, Linear; register a layer type of your "
              "own with ohem::register_prunable");
}

}  // namespace detail

OHEM_END_NAMESPACE
