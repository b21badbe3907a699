#pragma once
/// @file
/// The pruned twin ("self-competitor"): the user's own module run with every masked weight replaced by
/// w ⊙ m, sharing every weight with the full model.

#include <ohem/detail/model.hpp>
#include <ohem/detail/twin_core.hpp>
#include <ohem/masks.hpp>
#include <ohem/slots.hpp>
#include <ohem/thin_layers.hpp>
#include <ohem/twin_options.hpp>

#include <torch/jit.h>
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

OHEM_BEGIN_NAMESPACE

template <typename Model>
class PrunedTwin;

/// An RAII scope in which every masked layer of a twin's module uses w ⊙ m.
///
/// On entry each masked layer's weight handle is pointed at w ⊙ m (computed once for the scope; its
/// gradient flows to the registered leaf w) and, per the BatchNorm policy, the running statistics are
/// swapped; on exit — normal or by exception — every original handle is restored, so the registered
/// parameters and buffers are the same tensors, bit for bit, as before. A second scope on the same module
/// while one is open (nested, or from another thread or twin) throws. Made by `PrunedTwin::scope()`.
///
/// Example: `{ auto scope = twin.scope(); auto y = net->forward(x); }`
class MaskedScope {
 public:
  MaskedScope(const MaskedScope&) = delete;
  MaskedScope& operator=(const MaskedScope&) = delete;
  /// Restores every original weight and statistics handle.
  ~MaskedScope() { core_->exit_scope(saved_); }

 private:
  template <typename Model>
  friend class PrunedTwin;
  // Opens a scope over a twin's shared state; throws if the module is already inside a scope.
  explicit MaskedScope(std::shared_ptr<detail::TwinCore> core) : core_(std::move(core)) {
    core_->enter_scope(saved_);
  }

  std::shared_ptr<detail::TwinCore> core_;
  detail::TwinCore::Saved saved_;
};

/// An RAII guard a user may hold around the *full* model's forward when other threads can run the twin of
/// the same module: while it is open a masked scope on that module is refused, and it is refused while a
/// masked scope is open (a twin swaps the module's own weight handles, so without it a concurrent full
/// forward would read masked weights). Several guards may be open at once (full forwards do not conflict).
/// `SelfCompetitor` needs none: it runs its forwards itself and refuses concurrent calls. Made by
/// `PrunedTwin::full_forward()`.
///
/// Example: `{ auto guard = twin.full_forward(); auto y = net->forward(x); }`
class FullForwardGuard {
 public:
  FullForwardGuard(const FullForwardGuard&) = delete;
  FullForwardGuard& operator=(const FullForwardGuard&) = delete;
  /// Ends the full forward: masked scopes on the module are allowed again.
  ~FullForwardGuard() { core_->exit_full_forward(); }

 private:
  template <typename Model>
  friend class PrunedTwin;
  explicit FullForwardGuard(std::shared_ptr<detail::TwinCore> core) : core_(std::move(core)) {
    core_->enter_full_forward();
  }

  std::shared_ptr<detail::TwinCore> core_;
};

/// A pruned twin ("self-competitor", Wang et al., IEEE TMM 2023) of a user's module.
///
/// Wraps the module without copying it: your module held by value (`struct Net : torch::nn::Module`,
/// `Net net;`, as LibTorch's examples write it: the twin refers to `net`, which must outlive the twin), a
/// `torch::nn` module holder (e.g. `torch::nn::Sequential` or your `TORCH_MODULE(Net)`), a
/// `std::shared_ptr<NetImpl>`, or a `torch::jit::Module`. `forward(args...)`
/// takes the module's own forward arguments and runs it inside a `MaskedScope`, so the twin shares every
/// weight with the full model and only the masks differ. Gradients flow to the module's own registered
/// parameters: its `parameters()` and any optimizer built on them are untouched. Masks are computed from
/// the current weights when the twin is built (the recipe: once per training stage; call `refresh()` at
/// a stage start) or every `refresh_every` calls of `step()`.
///
/// Example:
/// `ohem::PrunedTwin twin(net); auto full = net.forward(x); auto pruned = twin.forward(x);`
template <typename Model>
class PrunedTwin {
  static_assert(
      detail::is_model_v<Model>,
      "ohem::PrunedTwin<Model>: Model must be your module type (deriving from torch::nn::Module, held "
      "by value: the twin refers to it), a torch::nn module holder (torch::nn::Sequential, or your "
      "TORCH_MODULE(Net) holder), std::shared_ptr<NetImpl> with NetImpl deriving from torch::nn::Module, "
      "or torch::jit::Module.");
  using Storage = detail::ModelStorage<Model>;

 public:
  /// Builds the twin: finds the prunable weights, computes the masks from the current weights and
  /// prepares the BatchNorm policy. Throws if nothing prunable is found or the options are invalid, and
  /// reports layers the masks leave (almost) empty as `TwinOptions::thin_layers` says.
  explicit PrunedTwin(typename Storage::Arg model, TwinOptions options = {}) : model_(Storage::store(model)) {
    init(std::move(options));
    refresh();
  }

  /// Builds the twin with given masks (e.g. loaded from a checkpoint) instead of computing them; throws
  /// as `set_masks` does if they do not match the module's prunable weights.
  ///
  /// Example: `ohem::PrunedTwin twin(net, ohem::MaskSet::load("masks.pt"));`
  PrunedTwin(typename Storage::Arg model, MaskSet masks, TwinOptions options = {})
      : model_(Storage::store(model)) {
    init(std::move(options));
    set_masks(std::move(masks));
  }

  /// Refuses a temporary module held by value: the twin refers to the module, so it must outlive the twin.
  template <typename M = Model, std::enable_if_t<detail::is_module_value_v<M>, int> = 0>
  explicit PrunedTwin(M&&, TwinOptions = {}) {
    static_assert(!sizeof(M),
                  "ohem::PrunedTwin: the twin refers to a module held by value and cannot own a temporary; "
                  "declare the module first (Net net; ohem::PrunedTwin twin(net);) or hold it in a "
                  "std::shared_ptr");
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
  /// Marks a forward of the full (unmasked) model, for code where another thread may run this twin at
  /// the same time: see `FullForwardGuard`.
  FullForwardGuard full_forward() { return FullForwardGuard(core_); }
  /// Returns true while the module is inside a masked scope (of this twin or another on the same module).
  bool in_scope() const { return core_->in_scope(); }

  /// Recomputes the masks from the current weights (call at the start of a training stage).
  /// Reports layers the new masks leave (almost) empty as `TwinOptions::thin_layers` says (a warning by
  /// default; with `ThinLayerAction::Refuse` it throws and keeps the previous masks).
  void refresh() {
    TORCH_CHECK(!core_->in_scope(),
                "ohem::PrunedTwin::refresh: cannot recompute masks inside a masked scope");
    MaskSet masks = compute_masks(core_->slots, core_->options.masks());
    std::vector<ThinLayer> thin = find_thin_layers(core_->slots, masks, core_->options.thin_layers());
    report_thin_layers(thin, core_->options.thin_layers(), "ohem::PrunedTwin");
    thin_layers_ = std::move(thin);
    core_->set_masks(std::move(masks));
    ++core_->mask_computations;
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
  /// Returns the layers the last computed masks left (almost) empty (see `TwinOptions::thin_layers`); empty
  /// when none did, or when the masks were given rather than computed.
  const std::vector<ThinLayer>& thin_layers() const { return thin_layers_; }
  /// Returns the wrapped module (the same object the user holds, not a copy).
  Model& module() { return Storage::get(model_); }
  /// Returns the options.
  const TwinOptions& options() const { return core_->options; }
  /// Returns how many times `step()` was called.
  int64_t steps() const { return core_->steps; }
  /// Returns how many times this twin computed its masks from the weights (at construction, unless
  /// built with given masks, and at each `refresh()`, also from `step()`); masks set with `set_masks`
  /// or `load_masks` are not counted.
  int64_t mask_computations() const { return core_->mask_computations; }

 private:
  // Finds the slots and the BatchNorm statistics and prepares the BatchNorm policy (no masks yet).
  void init(TwinOptions options) {
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
  }

  typename Storage::Stored model_;
  std::shared_ptr<detail::TwinCore> core_;
  std::vector<ThinLayer> thin_layers_;
};

// Deduction guides: `ohem::PrunedTwin twin(net)` for every kind of model (a module held by value is
// referred to, see `detail::ModelStorage`; a temporary one is refused by the constructor).
template <typename M>
PrunedTwin(M&&) -> PrunedTwin<detail::remove_cvref_t<M>>;
template <typename M>
PrunedTwin(M&&, TwinOptions) -> PrunedTwin<detail::remove_cvref_t<M>>;
template <typename M>
PrunedTwin(M&&, MaskSet) -> PrunedTwin<detail::remove_cvref_t<M>>;
template <typename M>
PrunedTwin(M&&, MaskSet, TwinOptions) -> PrunedTwin<detail::remove_cvref_t<M>>;

OHEM_END_NAMESPACE
