#pragma once
/// @file
/// The pruned twin ("self-competitor"): the user's own module run with every masked weight replaced by
/// w ⊙ m, sharing every weight with the full model.

#include <ohem/detail/masked_mul.hpp>
#include <ohem/masks.hpp>
#include <ohem/slots.hpp>

#include <torch/csrc/autograd/functions/utils.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

namespace ohem {

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

/// Returns the policy's name, e.g. "Shared".
inline const char* to_string(BatchNormPolicy p) {
  switch (p) {
    case BatchNormPolicy::Shared:
      return "Shared";
    case BatchNormPolicy::Frozen:
      return "Frozen";
    case BatchNormPolicy::Separate:
      return "Separate";
  }
  return "?";
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
};

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

/// Finds the running statistics of every BatchNorm layer of a torch::nn module tree.
inline std::vector<StatSlot> find_stats(torch::nn::Module& root) {
  std::vector<StatSlot> out;
  for_each_module(root, [&](const std::string& prefix, const std::shared_ptr<torch::nn::Module>& m) {
    if (auto b1 = std::dynamic_pointer_cast<torch::nn::BatchNorm1dImpl>(m)) add_stats(out, prefix, b1);
    if (auto b2 = std::dynamic_pointer_cast<torch::nn::BatchNorm2dImpl>(m)) add_stats(out, prefix, b2);
    if (auto b3 = std::dynamic_pointer_cast<torch::nn::BatchNorm3dImpl>(m)) add_stats(out, prefix, b3);
  });
  return out;
}

/// Finds the running statistics of every BatchNorm submodule of a TorchScript module.
inline std::vector<StatSlot> find_stats(const torch::jit::Module& root) {
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
      out[0] = torch::GradMode::is_enabled() && grads[0].requires_grad()
                   ? grads[0] * factor_.mask.to(grads[0].device(), grads[0].scalar_type())
                   : factor_.apply(grads[0].contiguous());
    }
    return out;
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
};

template <typename T, typename = void>
struct is_module_holder : std::false_type {};
template <typename T>
struct is_module_holder<T, std::void_t<typename T::ContainedType>>
    : std::is_base_of<torch::nn::ModuleHolder<typename T::ContainedType>, T> {};

template <typename T>
struct is_module_ptr : std::false_type {};
template <typename T>
struct is_module_ptr<std::shared_ptr<T>> : std::is_base_of<torch::nn::Module, T> {};

template <typename T>
struct is_script_module : std::is_same<T, torch::jit::Module> {};

}  // namespace detail

/// An RAII scope in which every masked layer of a twin's module uses w ⊙ m.
///
/// On entry each masked layer's weight handle is pointed at w ⊙ m (computed once for the scope; its
/// gradient flows to the registered leaf w) and, per the BatchNorm policy, the running statistics are
/// swapped; on exit — normal or by exception — every original handle is restored, so the registered
/// parameters and buffers are the same tensors, bit for bit, as before. A second scope on the same module
/// while one is open (nested, or from another thread or twin) throws.
///
/// Example: `{ auto scope = twin.scope(); auto y = net->forward(x); }`
class MaskedScope {
 public:
  /// Opens a scope over a twin's shared state; throws if the module is already inside a scope.
  explicit MaskedScope(std::shared_ptr<detail::TwinCore> core) : core_(std::move(core)) {
    {
      std::lock_guard<std::mutex> lock(detail::active_mutex());
      TORCH_CHECK(detail::active_roots().insert(core_->root).second, "ohem::MaskedScope: module ",
                  core_->root_name,
                  " is already inside a masked scope; nested or concurrent masked scopes on one module are "
                  "refused (finish the first twin forward before starting another)");
    }
    try {
      enter();
    } catch (...) {
      exit();
      throw;
    }
  }
  MaskedScope(const MaskedScope&) = delete;
  MaskedScope& operator=(const MaskedScope&) = delete;
  /// Restores every original weight and statistics handle.
  ~MaskedScope() { exit(); }

 private:
  void enter() {
    auto& c = *core_;
    saved_weights_.reserve(c.slots.size());
    for (size_t i = 0; i < c.slots.size(); ++i) {
      const Slot& s = c.slots[i];
      torch::Tensor current = s.handle.get();
      TORCH_CHECK(current.is_same(s.parameter), "ohem::MaskedScope: the weight of layer \"", s.name,
                  "\" is not its registered parameter (another masked scope or code replaced it)");
      torch::Tensor masked = c.masked(i, current);
      saved_weights_.push_back(current);
      s.handle.set(masked);
    }
    if (c.options.batchnorm() == BatchNormPolicy::Shared) return;
    saved_stats_.reserve(c.stats.size());
    for (auto& st : c.stats) {
      torch::Tensor current = st.handle.get();
      torch::Tensor replacement;
      if (c.options.batchnorm() == BatchNormPolicy::Frozen) {
        replacement = current.clone();
      } else {
        if (st.own.device() != current.device()) st.own = st.own.to(current.device());
        replacement = st.own;
      }
      saved_stats_.push_back(current);
      st.handle.set(replacement);
    }
  }

  void exit() noexcept {
    if (!core_) return;
    auto& c = *core_;
    try {
      for (size_t i = 0; i < saved_weights_.size(); ++i) c.slots[i].handle.set(saved_weights_[i]);
      for (size_t i = 0; i < saved_stats_.size(); ++i) c.stats[i].handle.set(saved_stats_[i]);
    } catch (...) {
      // Setting a member or a TorchScript attribute does not throw for tensors; nothing to recover.
    }
    saved_weights_.clear();
    saved_stats_.clear();
    std::lock_guard<std::mutex> lock(detail::active_mutex());
    detail::active_roots().erase(c.root);
    core_.reset();
  }

  std::shared_ptr<detail::TwinCore> core_;
  std::vector<torch::Tensor> saved_weights_;
  std::vector<torch::Tensor> saved_stats_;
};

/// A pruned twin ("self-competitor", Wang et al., IEEE TMM 2023) of a user's module.
///
/// Wraps the module without copying it: a `torch::nn` module holder (e.g. `torch::nn::Sequential` or
/// your `TORCH_MODULE(Net)`), a `std::shared_ptr<NetImpl>`, or a `torch::jit::Module`. `forward(args...)`
/// takes the module's own forward arguments and runs it inside a `MaskedScope`, so the twin shares every
/// weight with the full model and only the masks differ. Gradients flow to the module's own registered
/// parameters: its `parameters()` and any optimizer built on them are untouched. Masks are computed from
/// the current weights when the twin is built (the recipe: once per training stage; call `refresh()` at
/// a stage start) or every `refresh_every` calls of `step()`.
///
/// Example:
/// `ohem::PrunedTwin<Net> twin(net); auto full = net->forward(x); auto pruned = twin.forward(x);`
template <typename Model>
class PrunedTwin {
  static_assert(
      detail::is_module_holder<Model>::value || detail::is_module_ptr<Model>::value ||
          detail::is_script_module<Model>::value,
      "ohem::PrunedTwin<Model>: Model must be a torch::nn module holder (torch::nn::Sequential, or "
      "your TORCH_MODULE(Net) holder), std::shared_ptr<NetImpl> with NetImpl deriving from "
      "torch::nn::Module, or torch::jit::Module. Pass the holder or pointer, not the Impl by value.");

 public:
  /// Builds the twin: finds the prunable weights, computes the masks from the current weights and
  /// prepares the BatchNorm policy. Throws if nothing prunable is found or the options are invalid.
  explicit PrunedTwin(Model model, TwinOptions options = {}) : model_(std::move(model)) {
    TORCH_CHECK(options.refresh_every() >= 0, "ohem::TwinOptions::refresh_every must be >= 0, got ",
                options.refresh_every());
    core_ = std::make_shared<detail::TwinCore>();
    core_->options = std::move(options);
    if constexpr (detail::is_script_module<Model>::value) {
      core_->root = model_._ivalue().get();
      core_->root_name = model_.type()->repr_str();
      core_->slots = find_slots(model_, core_->options.slots());
      core_->stats = detail::find_stats(model_);
    } else {
      TORCH_CHECK(static_cast<bool>(model_),
                  "ohem::PrunedTwin: the module is empty (a null holder or pointer)");
      torch::nn::Module& root = *model_;
      core_->root = &root;
      core_->root_name = root.name();
      core_->slots = find_slots(root, core_->options.slots());
      core_->stats = detail::find_stats(root);
    }
    if (core_->options.batchnorm() == BatchNormPolicy::Separate) {
      torch::NoGradGuard no_grad;
      for (auto& st : core_->stats) st.own = st.handle.get().detach().clone();
    }
    refresh();
  }

  /// Runs the module's forward with the masked weights; takes exactly the module's forward arguments.
  /// For a TorchScript module the arguments are packed into IValues and the IValue result is returned.
  template <typename... Args>
  decltype(auto) forward(Args&&... args) {
    MaskedScope scope(core_);
    if constexpr (detail::is_script_module<Model>::value) {
      return model_.forward(std::vector<torch::jit::IValue>{torch::jit::IValue(std::forward<Args>(args))...});
    } else {
      return model_->forward(std::forward<Args>(args)...);
    }
  }
  /// Same as `forward`.
  template <typename... Args>
  decltype(auto) operator()(Args&&... args) {
    return forward(std::forward<Args>(args)...);
  }

  /// Opens a masked scope for code that calls the module itself (e.g. a member other than forward).
  MaskedScope scope() { return MaskedScope(core_); }

  /// Recomputes the masks from the current weights (call at the start of a training stage).
  void refresh() {
    {
      std::lock_guard<std::mutex> lock(detail::active_mutex());
      TORCH_CHECK(detail::active_roots().count(core_->root) == 0,
                  "ohem::PrunedTwin::refresh: cannot recompute masks inside a masked scope");
    }
    core_->set_masks(compute_masks(core_->slots, core_->options.masks()));
  }

  /// Counts one optimizer step; recomputes the masks when `refresh_every` > 0 steps have passed since the
  /// last recomputation. Returns true if it recomputed them.
  bool step() {
    ++core_->steps;
    if (core_->options.refresh_every() > 0 && core_->steps % core_->options.refresh_every() == 0) {
      refresh();
      return true;
    }
    return false;
  }

  /// Replaces the masks (e.g. loaded from a file); throws naming the first layer that does not match.
  void set_masks(MaskSet masks) { core_->set_masks(std::move(masks)); }
  /// Writes the current masks to a file atomically.
  void save_masks(const std::string& path) const { core_->masks.save(path); }
  /// Loads masks written by `save_masks`; validates names, shapes and dtype against this model.
  void load_masks(const std::string& path) { set_masks(MaskSet::load(path)); }

  /// Returns the current masks.
  const MaskSet& masks() const { return core_->masks; }
  /// Returns the masked weights of the module.
  const std::vector<Slot>& slots() const { return core_->slots; }
  /// Returns the twin's own running statistics (Separate policy), by qualified buffer name.
  std::vector<std::pair<std::string, torch::Tensor>> named_twin_buffers() const {
    std::vector<std::pair<std::string, torch::Tensor>> out;
    for (const auto& st : core_->stats) {
      if (st.own.defined()) out.emplace_back(st.name, st.own);
    }
    return out;
  }
  /// Returns the wrapped module (the same object the user holds, not a copy).
  Model& module() { return model_; }
  /// Returns the options.
  const TwinOptions& options() const { return core_->options; }
  /// Returns how many times `step()` was called.
  int64_t steps() const { return core_->steps; }

 private:
  Model model_;
  std::shared_ptr<detail::TwinCore> core_;
};

}  // namespace ohem
