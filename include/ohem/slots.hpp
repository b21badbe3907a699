#pragma once
/// @file
/// Slots: the prunable weights of a module, found by walking it.
///
/// Built-in layers (Conv1d/2d/3d, ConvTranspose1d/2d/3d, Linear) are known; a user's own layer opts in
/// with one call to `ohem::register_prunable`; TorchScript modules are walked through their submodules'
/// attributes.

#include <ohem/detail/slots.hpp>
#include <ohem/slot_types.hpp>
#include <ohem/tensor_handle.hpp>

#include <torch/jit.h>
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

OHEM_BEGIN_NAMESPACE

/// Registers a user layer type as prunable: `field` is the member tensor its forward reads, which must
/// also be registered as a parameter (`register_parameter`). This is ohem's one customization point for
/// new layer types; call it once, before building a twin (a later registration of the same `type` wins).
///
/// Example: `ohem::register_prunable<MaskedDenseImpl>("MaskedDense", &MaskedDenseImpl::kernel);`
template <typename Impl>
void register_prunable(std::string type, torch::Tensor Impl::*field, LayerKind kind = LayerKind::Custom,
                       int64_t output_dim = 0) {
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
/// listed once. Throws `c10::Error` if nothing prunable is found, naming what was looked for, the layers of
/// other kinds the module has, and the option that masks them.
///
/// Example: `auto slots = ohem::find_slots(*net, ohem::SlotOptions().exclude({"^fc\\."}));`
template <typename = void>
std::vector<Slot> find_slots(torch::nn::Module& module, const SlotOptions& options = {}) {
  detail::NameFilter filter(options);
  std::vector<Slot> slots;
  std::unordered_set<const void*> seen;
  std::vector<detail::LayerRule> rules;
  {
    std::lock_guard<std::mutex> lock(detail::registry_mutex());
    rules = detail::layer_rules();
  }
  std::vector<std::string> skipped;  // the type of each layer left out by its kind
  auto visit = [&](const std::string& prefix, const std::shared_ptr<torch::nn::Module>& m) {
    for (const auto& rule : rules) {
      TensorHandle h = rule.match(m);
      if (!h.get) continue;
      if (!contains(options.kinds(), rule.kind)) {
        skipped.push_back(rule.type);
        return;
      }
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
  detail::check_found(slots, "module " + module.name(), options, skipped);
  return slots;
}

/// Collects the prunable weights of a TorchScript module (e.g. a torchvision model exported from Python)
/// through its submodules' attributes: a submodule whose class is named Conv1d/2d/3d,
/// ConvTranspose1d/2d/3d or Linear and that has a parameter "weight".
///
/// Example: `auto slots = ohem::find_slots(scripted, ohem::SlotOptions());`
template <typename = void>
std::vector<Slot> find_slots(const torch::jit::Module& module, const SlotOptions& options = {}) {
  detail::NameFilter filter(options);
  std::vector<Slot> slots;
  std::unordered_set<const void*> seen;
  std::vector<std::string> skipped;  // the type of each layer left out by its kind
  for (const auto& sub : module.named_modules()) {
    const auto& type = sub.value.type();
    if (!type->name()) continue;
    LayerKind kind = LayerKind::None;
    int64_t output_dim = 0;
    if (!detail::script_rule(type->name()->name(), &kind, &output_dim)) continue;
    if (!contains(options.kinds(), kind)) {
      skipped.push_back(type->name()->name());
      continue;
    }
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
  detail::check_found(slots, "TorchScript module " + module.type()->repr_str(), options, skipped);
  return slots;
}

OHEM_END_NAMESPACE
