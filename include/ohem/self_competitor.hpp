#pragma once
/// @file
/// The one-call self-competitor: runs the full model and its pruned twin(s) on a batch and returns the
/// OHEM loss, either with both graphs alive (Joint, the recipe) or one forward at a time with the same
/// gradients (Sequential).

#include <ohem/detail/model.hpp>
#include <ohem/detail/sequential.hpp>
#include <ohem/detail/single_thread.hpp>
#include <ohem/enum_names.hpp>
#include <ohem/ohem_loss.hpp>
#include <ohem/twin.hpp>

#include <torch/torch.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

OHEM_BEGIN_NAMESPACE

/// How `SelfCompetitor` runs the two branches.
enum class SelfCompetitorMode {
  /// The recipe: the full and the twin forward keep their graphs until the backward pass. Activation memory
  /// of 1 + K branches.
  Joint,
  /// The same gradients, BatchNorm running statistics and dropout masks as Joint, with one input member's
  /// activations of one branch alive at a time: every forward (each member of a pair/tuple input, per
  /// branch) runs first without a graph, and the total's graph ends in one node for all of them. When a
  /// backward pass (`total.backward()`, a scaled total, `torch::autograd::backward`) reaches that node, it
  /// re-runs the forwards one at a time with a graph, from the RNG state and statistics each saw, and
  /// back-propagates each with its prediction's gradient. Costs one extra forward (without a graph) per
  /// forward.
  Sequential,
};

/// The names of each SelfCompetitorMode (`to_string`, `enum_key`, `enum_from_key`).
template <>
struct EnumNames<SelfCompetitorMode> {
  static constexpr EnumName<SelfCompetitorMode> values[] = {
      {SelfCompetitorMode::Joint, "Joint", "joint"},
      {SelfCompetitorMode::Sequential, "Sequential", "sequential"},
  };
};

/// Returns the mode's name, e.g. "Joint".
inline const char* to_string(SelfCompetitorMode m) {
  return enum_name(m);
}

/// Options of a `SelfCompetitor`. Defaults reproduce the paper's public recipe.
///
/// Example:
/// `SelfCompetitorOptions().mode(SelfCompetitorMode::Sequential).num_twins(2)`
struct SelfCompetitorOptions {
  /// Joint (the recipe) or Sequential (the same gradients, one forward's activation memory at a time).
  TORCH_ARG(SelfCompetitorMode, mode) = SelfCompetitorMode::Joint;
  /// The twin(s): which weights are masked, how, BatchNorm policy. Recipe: every convolution, global
  /// magnitude 0.65, shared BatchNorm.
  TORCH_ARG(TwinOptions, twin) = {};
  /// The OHEM loss: α, λ, consistency, stop-gradient, reduction. Recipe: 1, 1, MSE, none, mean.
  TORCH_ARG(OhemLossOptions, loss) = {};
  /// Number K of twins (an ensemble of self-competitors, CVPR 2021 follow-up); twin k draws its masks with
  /// seed `twin.masks.seed + k`, so random criteria (Random, or `random_fraction` > 0) give K different
  /// masks. The twin task losses, consistencies and hardness are averaged over the twins. Recipe: 1.
  TORCH_ARG(int64_t, num_twins) = 1;

 public:
  /// Sets which layer kinds the twin(s) mask: the short form of
  /// `twin(TwinOptions().slots(SlotOptions().kinds(kinds)))` that keeps every other twin option. Recipe:
  /// `LayerKind::Recipe` (convolutions); a model without convolutions (e.g. only Linear layers) needs
  /// `LayerKind::All` or `LayerKind::Linear`.
  ///
  /// Example: `ohem::SelfCompetitor sc(model, loss,
  /// ohem::SelfCompetitorOptions().layers(ohem::LayerKind::All));`
  SelfCompetitorOptions& layers(LayerKind kinds) {
    twin_.layers(kinds);
    return *this;
  }
  /// Returns the layer kinds the twin(s) mask (`twin().layers()`).
  LayerKind layers() const noexcept { return twin_.layers(); }
};

/// The one-call self-competitor (Wang et al., IEEE TMM 2023): holds the user's model, its pruned twin(s)
/// and the OHEM loss, runs every branch on a batch and returns the `OhemLossResult`.
///
/// `Model` is what `PrunedTwin` accepts: your module held by value (`Net net;`: the SelfCompetitor refers
/// to it, and `net` must outlive it), a torch::nn holder, `std::shared_ptr<NetImpl>` or a
/// `torch::jit::Module`; the model is shared, not copied, and the user's optimizer keeps working on its
/// parameters. `TaskLoss` is any callable `task(prediction, targets...)`: a torch::nn loss module, a
/// lambda, an ohem BIQA loss, or a function (pointer) taking exactly those arguments. `sc(input, targets...)`
/// runs `model->forward` on the input — a tensor, or each member of a pair/tuple of tensors in order (the
/// recipe's image pair: the prediction is then the pair of scores) — for the full model and then for each
/// twin; `run(forward, targets...)` takes any callable that runs the model. The result's `total` carries a
/// graph in both modes: back-propagate it as any LibTorch loss
/// (`r.total.backward()`, `(r.total / accumulation_steps).backward()`, `r.backward()`). In Sequential
/// mode that backward re-runs the forwards, so it must come before the next forward through the
/// SelfCompetitor and before the optimizer step (both throw otherwise). Copies share the same state (like
/// a torch::nn module holder), and serve one thread at a time: a call while another thread is inside one
/// throws (the model's weights are masked while a twin runs). Log `r.task`, the full model's task loss: the
/// number the same loop without OHEM computes (`total` adds the twin's task loss and the consistency).
///
/// Example: `Net net; ohem::SelfCompetitor sc(net, torch::nn::NLLLoss()); auto r = sc(x, y);
/// r.total.backward(); std::cout << r.task.item<float>();`
template <typename Model, typename TaskLoss>
class SelfCompetitor {
  static_assert(
      detail::is_model_v<Model>,
      "ohem::SelfCompetitor<Model, TaskLoss>: Model must be your module type (deriving from "
      "torch::nn::Module, held by value: the SelfCompetitor refers to it), a torch::nn module holder, "
      "std::shared_ptr<NetImpl> with NetImpl deriving from torch::nn::Module, or torch::jit::Module.");
  using Storage = detail::ModelStorage<Model>;

 public:
  /// Builds the twin(s) from the model's current weights and wraps the task loss. Throws if `num_twins` < 1
  /// or the twin or loss options are invalid.
  SelfCompetitor(typename Storage::Arg model, TaskLoss task, SelfCompetitorOptions options = {}) {
    build(Storage::store(model), std::move(task), std::move(options), nullptr);
  }

  /// Builds the twin(s) with given masks (e.g. restored from a checkpoint; every twin gets a copy)
  /// instead of computing them, and wraps the task loss. Throws as the other constructor does, or if the
  /// masks do not match the model's prunable weights.
  ///
  /// Example: `ohem::SelfCompetitor sc(net, ohem::PairwiseFidelityLoss{}, ohem::MaskSet::load("m.pt"));`
  SelfCompetitor(typename Storage::Arg model, TaskLoss task, const MaskSet& masks,
                 SelfCompetitorOptions options = {}) {
    build(Storage::store(model), std::move(task), std::move(options), &masks);
  }

  /// Refuses a temporary module held by value: the SelfCompetitor refers to the module, so it must outlive
  /// the SelfCompetitor.
  template <typename M = Model, typename... Rest, std::enable_if_t<detail::is_module_value_v<M>, int> = 0>
  SelfCompetitor(M&&, TaskLoss, Rest&&...) {
    static_assert(!sizeof(M),
                  "ohem::SelfCompetitor: it refers to a module held by value and cannot own a temporary; "
                  "declare the module first (Net net; ohem::SelfCompetitor sc(net, loss);) or hold it in a "
                  "std::shared_ptr");
  }

  /// Runs the full model and every twin on `input` (a tensor, or a pair/tuple of tensors each run through
  /// the model) and returns the OHEM loss against `targets`.
  template <typename Input, typename... Targets>
  OhemLossResult operator()(const Input& input, const Targets&... targets) {
    static_assert(
        detail::is_model_input_v<Input>,
        "ohem::SelfCompetitor: the input must be a torch::Tensor, a std::pair or a std::tuple of tensors; "
        "for a model with other forward arguments use run([&] { return net->forward(a, b); }, targets...)");
    using P = std::decay_t<decltype(detail::forward_input(state_->model, input))>;
    static_assert(detail::is_prediction_v<P>,
                  "ohem::SelfCompetitor: the model's forward must return a torch::Tensor");
    auto state = state_;
    auto pass = state_->gate.enter("ohem::SelfCompetitor");
    if (sequential_now()) {
      // One unit per member of the input, so that the backward keeps one member's activations at a time.
      check_no_pending();
      ++state_->calls;
      return sequential<P>(input_units(input), targets...);
    }
    return run([state, input]() { return detail::forward_input(state->model, input); }, targets...);
  }

  /// Runs `forward()` once for the full model and once inside each twin's masked scope, and returns the
  /// OHEM loss of its predictions against `targets`. `forward` takes no argument and returns a prediction
  /// (a tensor, a pair or a tuple of tensors); in Sequential mode it runs without a graph here, is kept
  /// until the backward pass and runs again there once per branch with a graph, so it must not capture
  /// references that die before that. Throws if a Sequential-mode result still awaits its backward.
  template <typename Forward, typename... Targets>
  OhemLossResult run(Forward forward, const Targets&... targets) {
    static_assert(
        std::is_invocable_v<Forward&>,
        "ohem::SelfCompetitor::run: forward must be callable without arguments and return a prediction");
    using P = std::decay_t<std::invoke_result_t<Forward&>>;
    static_assert(detail::is_prediction_v<P>,
                  "ohem::SelfCompetitor: the model's forward must return a torch::Tensor, a std::pair or a "
                  "std::tuple of tensors");
    auto& s = *state_;
    auto pass = s.gate.enter("ohem::SelfCompetitor");
    check_no_pending();
    ++s.calls;
    if (!sequential_now()) {
      P full = forward();
      std::vector<P> twins;
      twins.reserve(s.twins.size());
      for (auto& twin : s.twins) {
        auto scope = twin.scope();
        twins.push_back(forward());
      }
      return s.loss(full, twins, targets...);
    }
    // One unit: the whole forward.
    auto shared = std::make_shared<Forward>(std::move(forward));
    std::vector<detail::SequentialUnit> units{[shared]() {
      std::vector<torch::Tensor> out;
      detail::prediction_traits<P>::for_each((*shared)(),
                                             [&](std::size_t, const torch::Tensor& t) { out.push_back(t); });
      return out;
    }};
    return sequential<P>(std::move(units), targets...);
  }

  /// Recomputes every twin's masks from the current weights (call at the start of a training stage).
  void refresh() {
    for (auto& t : state_->twins) t.refresh();
  }
  /// Counts one optimizer step on every twin (see `TwinOptions::refresh_every`); true if masks were
  /// recomputed.
  bool step() {
    bool any = false;
    for (auto& t : state_->twins) any = t.step() || any;
    return any;
  }

  /// Returns the k-th twin: its masks (`twin().masks()`, `twin().save_masks(path)`), slots and thin layers.
  ///
  /// Example: `sc.twin().save_masks("masks.pt"); std::cout << sc.twin().masks().summary();`
  PrunedTwin<Model>& twin(size_t k = 0) {
    TORCH_CHECK(k < state_->twins.size(), "ohem::SelfCompetitor::twin: index ", k,
                " out of range, there are ", state_->twins.size(), " twins");
    return state_->twins[k];
  }
  /// Returns the number of twins K.
  size_t num_twins() const { return state_->twins.size(); }
  /// Returns the wrapped model (the same object the user holds).
  Model& module() { return Storage::get(state_->model); }
  /// Returns the OHEM loss.
  OhemLoss<TaskLoss>& loss() { return state_->loss; }
  /// Returns the options.
  const SelfCompetitorOptions& options() const { return state_->options; }

 private:
  // The constructors: the shared state and `num_twins` twins, with `masks` or computing their own.
  void build(typename Storage::Stored model, TaskLoss task, SelfCompetitorOptions options,
             const MaskSet* masks) {
    TORCH_CHECK(options.num_twins() >= 1, "ohem::SelfCompetitorOptions::num_twins must be >= 1, got ",
                options.num_twins());
    state_ = std::make_shared<State>(std::move(model), std::move(task), options);
    state_->twins.reserve(static_cast<size_t>(options.num_twins()));
    for (int64_t k = 0; k < options.num_twins(); ++k) {
      TwinOptions t = options.twin();
      t.masks().seed(t.masks().seed() + static_cast<std::uint64_t>(k));
      if (masks) {
        state_->twins.emplace_back(Storage::get(state_->model), *masks, std::move(t));
      } else {
        state_->twins.emplace_back(Storage::get(state_->model), std::move(t));
      }
    }
  }

  /// What a SelfCompetitor, its copies and a pending Sequential-mode backward share.
  struct State {
    State(typename Storage::Stored m, TaskLoss task, const SelfCompetitorOptions& o)
        : model(std::move(m)), loss(std::move(task), o.loss()), options(o) {}
    typename Storage::Stored model;
    std::vector<PrunedTwin<Model>> twins;
    OhemLoss<TaskLoss> loss;
    SelfCompetitorOptions options;
    int64_t calls = 0;
    detail::SingleThreadGate gate;  // one thread at a time: the forwards, the twins' scopes, the replay
    std::weak_ptr<detail::SequentialReplay<Model>> pending;  // the latest Sequential-mode result's backward
  };

  bool sequential_now() const {
    return state_->options.mode() == SelfCompetitorMode::Sequential && torch::GradMode::is_enabled();
  }

  void check_no_pending() const {
    const auto pending = state_->pending.lock();
    TORCH_CHECK(
        !(pending && pending->awaiting_backward()),
        "ohem::SelfCompetitor: a forward while the backward of the previous Sequential-mode result is "
        "pending; back-propagate its total (or drop the result) before the next forward");
  }

  /// The Sequential-mode units of an input: one per member of a pair/tuple (each member is its own forward,
  /// as in Joint mode), or the whole tensor.
  template <typename Input>
  std::vector<detail::SequentialUnit> input_units(const Input& input) const {
    std::vector<detail::SequentialUnit> units;
    auto add = [&](const torch::Tensor& x) {
      units.push_back(
          [state = state_, x]() { return std::vector<torch::Tensor>{detail::forward_one(state->model, x)}; });
    };
    if constexpr (std::is_same_v<Input, torch::Tensor>) {
      add(input);
    } else if constexpr (detail::is_tensor_pair<Input>::value) {
      add(input.first);
      add(input.second);
    } else {
      std::apply([&](const auto&... x) { (add(x), ...); }, input);
    }
    return units;
  }

  /// Runs a body for branch b: the full model (b = 0) or inside twin b − 1's masked scope.
  detail::BranchRunner branch_runner() const {
    return [state = state_](size_t b, const std::function<void()>& body) {
      auto pass = state->gate.enter("ohem::SelfCompetitor");
      if (b == 0) {
        body();
        return;
      }
      auto scope = state->twins[b - 1].scope();
      body();
    };
  }

  /// The buffers a forward may update: the model's, and the twins' own statistics (Separate policy).
  std::vector<torch::Tensor> live_buffers() const {
    std::vector<torch::Tensor> live = detail::module_tensors(state_->model, true);
    for (auto& twin : state_->twins) {
      for (const auto& b : twin.named_twin_buffers()) live.push_back(b.second);
    }
    return live;
  }

  /// Returns a check that nothing moved the model on since this call: no later forward through the
  /// SelfCompetitor, no in-place change of a parameter (an optimizer step).
  /// (Version counters catch an in-place change through the parameters; a sample of the values catches
  /// one through `.data()`, as LibTorch 1.13's SGD makes.)
  std::function<void()> freshness_check() const {
    const int64_t call = state_->calls;
    const std::vector<torch::Tensor> params = detail::module_tensors(state_->model, false);
    const int64_t versions = detail::version_sum(params);
    torch::Tensor sample = detail::value_sample(params);
    return [state = state_, call, versions, sample]() {
      TORCH_CHECK(state->calls == call,
                  "ohem::SelfCompetitor: in Sequential mode back-propagate a result before the next forward "
                  "through the SelfCompetitor (this result is from call ",
                  call, ", the latest is ", state->calls, ")");
      const std::vector<torch::Tensor> now = detail::module_tensors(state->model, false);
      TORCH_CHECK(
          detail::version_sum(now) == versions && detail::same_sample(detail::value_sample(now), sample),
          "ohem::SelfCompetitor: the model's parameters changed since the forward (an optimizer "
          "step?); in Sequential mode back-propagate the loss before optimizer.step()");
    };
  }

  /// Sequential mode: records every unit of every branch without a graph, and returns the loss of those
  /// predictions; they are outputs of a `detail::SequentialReplay` node, which replays the units with a
  /// graph when a backward pass reaches it.
  template <typename P, typename... Targets>
  OhemLossResult sequential(std::vector<detail::SequentialUnit> units, const Targets&... targets) {
    State& s = *state_;
    detail::Pending pending;
    pending.units = std::move(units);
    pending.in_branch = branch_runner();
    pending.devices = detail::generator_devices(state_->model);
    pending.live = live_buffers();
    detail::record(pending, 1 + s.twins.size());
    pending.check_fresh = freshness_check();
    auto node = std::make_shared<detail::SequentialReplay<Model>>(std::move(pending));
    const std::vector<std::vector<torch::Tensor>> members = node->attach();
    s.pending = node;

    // The loss of the recorded predictions, with a graph back to the node: Joint mode's formula exactly.
    const P full = detail::prediction_traits<P>::from_members(members[0]);
    std::vector<P> twins;
    twins.reserve(s.twins.size());
    for (size_t b = 1; b < members.size(); ++b)
      twins.push_back(detail::prediction_traits<P>::from_members(members[b]));
    return s.loss(full, twins, targets...);
  }

  std::shared_ptr<State> state_;
};

// Deduction guides: `ohem::SelfCompetitor sc(net, loss)` for every kind of model (a module held by value
// is referred to, see `detail::ModelStorage`) and task loss (a function decays to its pointer).
template <typename M, typename T>
SelfCompetitor(M&&, T) -> SelfCompetitor<detail::remove_cvref_t<M>, T>;
template <typename M, typename T>
SelfCompetitor(M&&, T, SelfCompetitorOptions) -> SelfCompetitor<detail::remove_cvref_t<M>, T>;
template <typename M, typename T>
SelfCompetitor(M&&, T, const MaskSet&) -> SelfCompetitor<detail::remove_cvref_t<M>, T>;
template <typename M, typename T>
SelfCompetitor(M&&, T, const MaskSet&, SelfCompetitorOptions) -> SelfCompetitor<detail::remove_cvref_t<M>, T>;

OHEM_END_NAMESPACE
