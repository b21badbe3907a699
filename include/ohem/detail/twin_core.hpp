#pragma once
/// @file
/// Internal: the state a pruned twin and its masked scopes share (`TwinCore`): the prunable weights, their
/// masks and how each multiplies its weight (`MaskFactor`, with its backward `MaskedWeightBackward`), the
/// BatchNorm statistics the policies swap, and the registry of modules inside a scope.

#include <ohem/detail/masked_mul.hpp>
#include <ohem/masks.hpp>
#include <ohem/slots.hpp>
#include <ohem/tensor_handle.hpp>
#include <ohem/twin_options.hpp>

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/jit.h>
#include <torch/torch.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

OHEM_BEGIN_NAMESPACE
namespace detail {

/// A running-statistics buffer of a normalisation layer and the twin's own copy of it (Separate policy).
struct StatSlot {
  std::string name;
  TensorHandle handle;
  torch::Tensor own;
};

inline std::mutex& active_mutex() {
  static std::mutex m;
  return m;
}
inline std::unordered_set<const void*>& active_roots() {
  static std::unordered_set<const void*> s;
  return s;
}
// How many FullForwardGuards are open per module (the full model's forwards a user marked as such).
inline std::unordered_map<const void*, int64_t>& full_forward_roots() {
  static std::unordered_map<const void*, int64_t> m;
  return m;
}

template <typename Impl>
void add_stats(std::vector<StatSlot>& out, const std::string& prefix, const std::shared_ptr<Impl>& bn) {
  const char* names[] = {"running_mean", "running_var", "num_batches_tracked"};
  torch::Tensor Impl::*fields[] = {&Impl::running_mean, &Impl::running_var, &Impl::num_batches_tracked};
  for (int i = 0; i < 3; ++i) {
    if (!((*bn).*fields[i]).defined()) continue;
    out.push_back(StatSlot{
        prefix.empty() ? names[i] : prefix + "." + names[i], TensorHandle::member<Impl>(bn, fields[i]), {}});
  }
}

/// Finds the running statistics of every BatchNorm layer of a torch::nn module tree. (The `find_stats`
/// overloads are templates so that a translation unit that never builds a twin compiles neither.)
template <typename = void>
std::vector<StatSlot> find_stats(torch::nn::Module& root) {
  std::vector<StatSlot> out;
  for_each_module(root, [&](const std::string& prefix, const std::shared_ptr<torch::nn::Module>& m) {
    if (auto b1 = std::dynamic_pointer_cast<torch::nn::BatchNorm1dImpl>(m)) add_stats(out, prefix, b1);
    if (auto b2 = std::dynamic_pointer_cast<torch::nn::BatchNorm2dImpl>(m)) add_stats(out, prefix, b2);
    if (auto b3 = std::dynamic_pointer_cast<torch::nn::BatchNorm3dImpl>(m)) add_stats(out, prefix, b3);
  });
  return out;
}

/// Finds the running statistics of every BatchNorm submodule of a TorchScript module.
template <typename = void>
std::vector<StatSlot> find_stats(const torch::jit::Module& root) {
  std::vector<StatSlot> out;
  for (const auto& sub : root.named_modules()) {
    const auto& type = sub.value.type();
    if (!type->name() || type->name()->name().rfind("BatchNorm", 0) != 0) continue;
    for (const char* n : {"running_mean", "running_var", "num_batches_tracked"}) {
      if (!sub.value.hasattr(n)) continue;
      c10::IValue v = sub.value.attr(n);
      if (!v.isTensor() || !v.toTensor().defined()) continue;
      out.push_back(
          StatSlot{sub.name.empty() ? n : sub.name + "." + n, TensorHandle::attribute(sub.value, n), {}});
    }
  }
  return out;
}

/// How a twin multiplies a weight (and its gradient) by a mask: on the CPU for contiguous float32/float64
/// weights, ohem's one-pass kernel on the bool mask (`masked_mul`); elsewhere LibTorch's `x * multiplier`
/// with the mask kept as 0/1 in the weight's dtype (about 6x faster than `x * bool_mask` there).
struct MaskFactor {
  torch::Tensor mask;        // bool, on the weight's device
  torch::Tensor multiplier;  // the mask in the weight's dtype; undefined where the kernel is used

  /// Returns x ⊙ m in a new tensor, or in `out` if it is defined (x's shape, dtype, device, contiguous).
  torch::Tensor apply(const torch::Tensor& x, torch::Tensor out = {}) const {
    if (masked_mul_supported(x, mask))
      return out.defined() ? masked_mul_into(out, x, mask) : masked_mul(x, mask);
    if (multiplier.defined() && multiplier.scalar_type() == x.scalar_type() &&
        multiplier.device() == x.device()) {
      return out.defined() ? torch::mul_out(out, x, multiplier) : x * multiplier;
    }
    return out.defined() ? torch::mul_out(out, x, mask.to(x.device(), x.scalar_type())) : masked_mul(x, mask);
  }
};

/// The backward of a masked weight w ⊙ m: the gradient times m, to w.
///
/// It is LibTorch's multiplication backward with one difference: its sequence number is the largest
/// (AccumulateGrad's), so the autograd engine runs it as soon as the layer's weight gradient is ready. With
/// the usual number (the order of creation) every masked weight's node would run last, since the scope
/// creates them all before the forward, and every masked layer's weight gradient (one weight-sized tensor
/// per layer, 43 MB for ResNet-18) would stay alive until the end of the backward pass.
struct MaskedWeightBackward : torch::autograd::Node {
  explicit MaskedWeightBackward(MaskFactor factor)
      : torch::autograd::Node(std::numeric_limits<uint64_t>::max()), factor_(std::move(factor)) {}
  torch::autograd::variable_list apply(torch::autograd::variable_list&& grads) override {
    torch::autograd::variable_list out(1);
    if (grads[0].defined() && should_compute_output(0)) {
      // A gradient that needs a graph (double backward) goes through LibTorch's differentiable ops.
      if (torch::GradMode::is_enabled() && grads[0].requires_grad()) {
        out[0] = grads[0] * factor_.mask.to(grads[0].device(), grads[0].scalar_type());
      } else if (writable_in_place(grads[0], factor_.mask)) {
        // No one else can see this gradient: mask it in its own storage (no weight-sized allocation).
        out[0] = masked_mul_into(grads[0], grads[0], factor_.mask);
      } else {
        out[0] = factor_.apply(grads[0].contiguous());
      }
    }
    return out;
  }

  /// True if `grad` may be overwritten by its masked product: the one-pass kernel handles it, and the
  /// gradient is visible to no one but this node: this node holds the only reference to its tensor and
  /// that tensor the only reference to its storage (no view, no hook's copy, no tensor the caller passed
  /// to backward and kept), the storage was allocated by LibTorch (resizable: not memory wrapped with
  /// from_blob) and the gradient needs no graph.
  static bool writable_in_place(const torch::Tensor& grad, const torch::Tensor& mask) {
    return masked_mul_supported(grad, mask) && !grad.requires_grad() && grad.use_count() == 1 &&
           !grad.is_view() && grad.has_storage() && grad.storage().use_count() == 1 &&
           grad.storage().resizable() && !grad.is_inference();
  }
  std::string name() const override { return "ohem::MaskedWeightBackward"; }

 private:
  MaskFactor factor_;  // shared with the twin, not saved per call
};

/// Returns w ⊙ m whose gradient flows to w through `MaskedWeightBackward`. If `buffer` is given (defined,
/// of w's shape, dtype and device, contiguous, and referenced by no other tensor), the product is written
/// into its storage.
inline torch::Tensor masked_weight(const torch::Tensor& weight, const MaskFactor& factor,
                                   const torch::Tensor& buffer = {}) {
  torch::Tensor masked;
  {
    torch::NoGradGuard no_grad;
    masked = factor.apply(weight, buffer);
    // With a buffer: a tensor of its own (for the autograd history) on the buffer's storage.
    if (buffer.defined()) masked = masked.detach();
  }
  if (torch::GradMode::is_enabled() && weight.requires_grad()) {
    auto node = std::make_shared<MaskedWeightBackward>(factor);
    node->add_next_edge(torch::autograd::impl::gradient_edge(weight));
    torch::autograd::set_history(masked, node);
  }
  return masked;
}

/// The state a twin and its scopes share: slots, masks, statistics and whether a scope is open.
struct TwinCore {
  const void* root = nullptr;
  std::string root_name;
  TwinOptions options;
  std::vector<Slot> slots;
  MaskSet masks;
  std::vector<torch::Tensor> slot_masks;  // masks aligned with slots, on each weight's device
  // How each slot's mask multiplies its weight (see MaskFactor).
  std::vector<MaskFactor> factors;
  // The storage of the last masked weights per slot (TwinOptions::reuse_buffers).
  std::vector<torch::Tensor> buffers;
  std::vector<StatSlot> stats;
  int64_t steps = 0;
  int64_t mask_computations = 0;  // masks computed from the weights (PrunedTwin::mask_computations)

  void set_masks(MaskSet m) {
    m.check_matches(slots);
    std::vector<torch::Tensor> aligned;
    aligned.reserve(slots.size());
    for (const auto& s : slots) aligned.push_back(m.at(s.name).to(s.parameter.device()));
    masks = std::move(m);
    slot_masks = std::move(aligned);
    factors.assign(slots.size(), MaskFactor{});
    buffers.assign(slots.size(), torch::Tensor());
  }

  /// Returns w ⊙ m for slot i, in the slot's buffer when it can be reused (TwinOptions::reuse_buffers).
  torch::Tensor masked(size_t i, const torch::Tensor& weight) {
    const MaskFactor& f = factor(i, weight);
    if (!options.reuse_buffers()) return masked_weight(weight, f);
    torch::Tensor& buf = buffers[i];
    // Free: no tensor but this one holds the storage (the previous scope's graph and handles are gone).
    const bool free = buf.defined() && buf.storage().use_count() == 1 && buf.sizes() == weight.sizes() &&
                      buf.scalar_type() == weight.scalar_type() && buf.device() == weight.device() &&
                      buf.is_contiguous();
    if (free) return masked_weight(weight, f, buf);
    torch::Tensor out = masked_weight(weight, f);
    // Keep the newest product's storage when the old one is busy (e.g. two scopes before one backward).
    buf = out.detach();
    return out;
  }

  /// The handles a scope replaced, to restore on exit.
  struct Saved {
    std::vector<torch::Tensor> weights;
    std::vector<torch::Tensor> stats;
  };

  /// True while the module is inside a masked scope.
  bool in_scope() const {
    std::lock_guard<std::mutex> lock(active_mutex());
    return active_roots().count(root) != 0;
  }

  /// Marks the module as inside a scope, points every masked layer's weight handle at w ⊙ m and, per the
  /// BatchNorm policy, swaps the running statistics. Throws if the module is already inside a scope (and
  /// then changes nothing).
  void enter_scope(Saved& saved) {
    {
      std::lock_guard<std::mutex> lock(active_mutex());
      auto full = full_forward_roots().find(root);
      TORCH_CHECK(full == full_forward_roots().end(), "ohem::MaskedScope: module ", root_name,
                  " is running a full-model forward under a FullForwardGuard (", full->second,
                  " open); a masked scope now would give that forward masked weights, so it is refused "
                  "(finish the full forward first)");
      TORCH_CHECK(active_roots().insert(root).second, "ohem::MaskedScope: module ", root_name,
                  " is already inside a masked scope; nested or concurrent masked scopes on one module are "
                  "refused (finish the first twin forward before starting another)");
    }
    try {
      swap_in(saved);
    } catch (...) {
      exit_scope(saved);
      throw;
    }
  }

  /// Restores every handle `enter_scope` replaced and marks the module as outside any scope.
  void exit_scope(Saved& saved) noexcept {
    try {
      for (size_t i = 0; i < saved.weights.size(); ++i) slots[i].handle.set(saved.weights[i]);
      for (size_t i = 0; i < saved.stats.size(); ++i) stats[i].handle.set(saved.stats[i]);
    } catch (...) {
      // Setting a member or a TorchScript attribute does not throw for tensors; nothing to recover.
    }
    saved.weights.clear();
    saved.stats.clear();
    std::lock_guard<std::mutex> lock(active_mutex());
    active_roots().erase(root);
  }

  /// Marks a full-model forward as running (FullForwardGuard); throws if a masked scope is open.
  void enter_full_forward() {
    std::lock_guard<std::mutex> lock(active_mutex());
    TORCH_CHECK(active_roots().count(root) == 0, "ohem::FullForwardGuard: module ", root_name,
                " is inside a masked scope (a twin forward, perhaps on another thread): its weights are "
                "masked now, so a full-model forward would silently use them; refused");
    ++full_forward_roots()[root];
  }
  /// Ends what `enter_full_forward` marked.
  void exit_full_forward() noexcept {
    std::lock_guard<std::mutex> lock(active_mutex());
    auto it = full_forward_roots().find(root);
    if (it != full_forward_roots().end() && --it->second == 0) full_forward_roots().erase(it);
  }

  /// Returns how slot i's mask multiplies `weight`: the bool mask on the weight's device, and where the
  /// one-pass kernel does not apply, the mask as 0/1 in the weight's dtype.
  const MaskFactor& factor(size_t i, const torch::Tensor& weight) {
    MaskFactor& f = factors[i];
    torch::NoGradGuard no_grad;
    if (slot_masks[i].device() != weight.device()) slot_masks[i] = slot_masks[i].to(weight.device());
    if (!f.mask.defined() || !f.mask.is_same(slot_masks[i])) f = MaskFactor{slot_masks[i], {}};
    const bool need_multiplier = !masked_mul_supported(weight, f.mask);
    const bool have_multiplier = f.multiplier.defined() && f.multiplier.device() == weight.device() &&
                                 f.multiplier.scalar_type() == weight.scalar_type();
    if (need_multiplier && !have_multiplier) f.multiplier = f.mask.to(weight.scalar_type());
    if (!need_multiplier) f.multiplier = torch::Tensor();
    return f;
  }

 private:
  void swap_in(Saved& saved) {
    saved.weights.reserve(slots.size());
    for (size_t i = 0; i < slots.size(); ++i) {
      const Slot& s = slots[i];
      torch::Tensor current = s.handle.get();
      TORCH_CHECK(current.is_same(s.parameter), "ohem::MaskedScope: the weight of layer \"", s.name,
                  "\" is not its registered parameter (another masked scope or code replaced it)");
      // set_data() can give the parameter another shape after the masks were computed; multiplying
      // would then broadcast the old mask (or fail in LibTorch's words).
      TORCH_CHECK(current.sizes() == slot_masks[i].sizes(), "ohem::MaskedScope: the weight of layer \"",
                  s.name, "\" has shape ", current.sizes(), " but its mask has shape ", slot_masks[i].sizes(),
                  " (the weight was reshaped after the masks were computed; call refresh() or "
                  "set_masks() with masks of the new shape)");
      torch::Tensor product = masked(i, current);
      saved.weights.push_back(current);
      s.handle.set(product);
    }
    if (options.batchnorm() == BatchNormPolicy::Shared) return;
    saved.stats.reserve(stats.size());
    for (auto& st : stats) {
      torch::Tensor current = st.handle.get();
      torch::Tensor replacement;
      if (options.batchnorm() == BatchNormPolicy::Frozen) {
        replacement = current.clone();
      } else {
        if (st.own.device() != current.device()) st.own = st.own.to(current.device());
        replacement = st.own;
      }
      saved.stats.push_back(current);
      st.handle.set(replacement);
    }
  }
};

}  // namespace detail
OHEM_END_NAMESPACE
