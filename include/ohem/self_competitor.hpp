#pragma once
/// @file
/// The one-call self-competitor: runs the full model and its pruned twin(s) on a batch and returns the
/// OHEM loss, either with both graphs alive (Joint, the recipe) or one branch at a time with the same
/// gradients (Sequential).

#include <ohem/loss.hpp>
#include <ohem/twin.hpp>

#include <ATen/Context.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace ohem {

/// How `SelfCompetitor` runs the two branches.
enum class SelfCompetitorMode {
  /// The recipe: the full and the twin forward keep their graphs until `backward()`. Activation memory of
  /// 1 + K branches.
  Joint,
  /// The same gradients, BatchNorm running statistics and dropout masks as Joint, with about one branch's
  /// activation memory: the twins' predictions are computed first without a graph; `backward()` then
  /// back-propagates the full branch with the twins' predictions held constant, and re-runs each twin
  /// (same RNG state, same statistics) and back-propagates it with the full prediction held constant.
  /// Costs one extra twin forward per twin.
  Sequential,
};

/// Returns the mode's name, e.g. "Joint".
inline const char* to_string(SelfCompetitorMode m) {
  switch (m) {
    case SelfCompetitorMode::Joint:
      return "Joint";
    case SelfCompetitorMode::Sequential:
      return "Sequential";
  }
  return "?";
}

/// Options of a `SelfCompetitor`. Defaults reproduce the paper's public recipe.
///
/// Example:
/// `SelfCompetitorOptions().mode(SelfCompetitorMode::Sequential).twin(TwinOptions().masks(MaskOptions().ratio(0.7)))`
struct SelfCompetitorOptions {
  /// Joint (the recipe) or Sequential (the same gradients, about one branch's activation memory).
  TORCH_ARG(SelfCompetitorMode, mode) = SelfCompetitorMode::Joint;
  /// The twin(s): which weights are masked, how, BatchNorm policy. Recipe: every convolution, global
  /// magnitude 0.65, shared BatchNorm.
  TORCH_ARG(TwinOptions, twin) = {};
  /// The OHEM loss: α, λ, consistency, stop-gradient, reduction. Recipe: 1, 1, MSE, none, mean.
  TORCH_ARG(OhemLossOptions, loss) = {};
  /// Number K of twins (an ensemble of self-competitors, CVPR 2021 follow-up); twin k draws its masks with
  /// seed `twin.masks.seed + k`, so random criteria (Random, or `random_fraction` > 0) give K different
  /// masks. The twin task losses, consistencies and hardness are averaged over the twins. Recipe: 1.
  TORCH_ARG(int64_t, twins) = 1;
};

namespace detail {

/// The state of the default generators of some devices, to replay random draws (dropout).
class RngState {
 public:
  /// Captures the default generator of the CPU and of every other device listed.
  static RngState capture(const std::vector<torch::Device>& devices) {
    RngState s;
    for (const auto& d : devices) {
      at::Generator gen = at::globalContext().defaultGenerator(d);
      std::lock_guard<std::mutex> lock(gen.mutex());
      s.states_.emplace_back(gen, gen.get_state());
    }
    return s;
  }
  /// Puts every captured generator back into its captured state.
  void restore() const {
    for (const auto& entry : states_) {
      at::Generator gen = entry.first;
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(entry.second);
    }
  }

 private:
  std::vector<std::pair<at::Generator, torch::Tensor>> states_;
};

inline std::vector<torch::Tensor> snapshot(const std::vector<torch::Tensor>& live) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> out;
  out.reserve(live.size());
  for (const auto& t : live) out.push_back(t.clone());
  return out;
}

inline void restore(const std::vector<torch::Tensor>& live, const std::vector<torch::Tensor>& saved) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < live.size(); ++i) live[i].copy_(saved[i]);
}

template <typename Model>
std::vector<torch::Tensor> module_tensors(Model& model, bool buffers) {
  std::vector<torch::Tensor> out;
  if constexpr (is_script_module<Model>::value) {
    if (buffers) {
      for (const auto& b : model.buffers(true)) out.push_back(b);
    } else {
      for (const auto& p : model.parameters(true)) out.push_back(p);
    }
  } else {
    out = buffers ? model->buffers(true) : model->parameters(true);
  }
  return out;
}

template <typename Model, typename X>
auto forward_one(Model& model, const X& x) {
  if constexpr (is_script_module<Model>::value) {
    return model.forward(std::vector<torch::jit::IValue>{torch::jit::IValue(x)}).toTensor();
  } else {
    return model->forward(x);
  }
}

template <typename T>
struct is_tensor_pair : std::false_type {};
template <>
struct is_tensor_pair<std::pair<torch::Tensor, torch::Tensor>> : std::true_type {};
template <typename T>
struct is_tensor_tuple : std::false_type {};
template <typename... Ts>
struct is_tensor_tuple<std::tuple<Ts...>> : std::bool_constant<(std::is_same_v<Ts, torch::Tensor> && ...)> {};

/// Runs the model on an input: a tensor, or each member of a pair/tuple of tensors in order.
template <typename Model, typename Input>
auto forward_input(Model& model, const Input& input) {
  if constexpr (std::is_same_v<Input, torch::Tensor>) {
    return forward_one(model, input);
  } else if constexpr (is_tensor_pair<Input>::value) {
    torch::Tensor a = forward_one(model, input.first);
    torch::Tensor b = forward_one(model, input.second);
    return std::make_pair(std::move(a), std::move(b));
  } else {
    // A braced list evaluates its elements left to right: the members run in order.
    return std::apply(
        [&](const auto&... x) {
          return std::tuple<std::decay_t<decltype(forward_one(model, x))>...>{forward_one(model, x)...};
        },
        input);
  }
}

/// What a `SelfCompetitor` and its deferred backward passes share.
template <typename Model, typename TaskLoss>
struct CompetitorState {
  CompetitorState(Model m, TaskLoss task, const SelfCompetitorOptions& o)
      : model(std::move(m)), loss(std::move(task), o.loss()), options(o) {}
  Model model;
  std::vector<PrunedTwin<Model>> twins;
  OhemLoss<TaskLoss> loss;
  SelfCompetitorOptions options;
  int64_t calls = 0;
};

}  // namespace detail

/// The one-call self-competitor (Wang et al., IEEE TMM 2023): holds the user's model, its pruned twin(s)
/// and the OHEM loss, runs every branch on a batch and returns the `OhemLossResult`.
///
/// `Model` is what `PrunedTwin` accepts (a torch::nn holder, `std::shared_ptr<NetImpl>` or a
/// `torch::jit::Module`); the model is shared, not copied, and the user's optimizer keeps working on its
/// parameters. `sc(input, targets...)` runs `model->forward` on the input — a tensor, or each member of a
/// pair/tuple of tensors in order (the recipe's image pair: the prediction is then the pair of scores) —
/// for the full model and then for each twin; `run(forward, targets...)` takes any callable that runs the
/// model. Always finish with `result.backward()`: in Sequential mode the backward pass is deferred to it
/// (call it before the next forward through the model and before the optimizer step; it throws otherwise).
/// Copies share the same state (like a torch::nn module holder).
///
/// Example: `ohem::SelfCompetitor sc(net, ohem::PairwiseFidelityLoss{}); sc(std::make_pair(x1, x2),
/// g).backward();`
template <typename Model, typename TaskLoss>
class SelfCompetitor {
 public:
  /// Builds the twin(s) from the model's current weights and wraps the task loss. Throws if `twins` < 1 or
  /// the twin or loss options are invalid.
  SelfCompetitor(Model model, TaskLoss task, SelfCompetitorOptions options = {}) {
    TORCH_CHECK(options.twins() >= 1, "ohem::SelfCompetitorOptions::twins must be >= 1, got ",
                options.twins());
    state_ = std::make_shared<detail::CompetitorState<Model, TaskLoss>>(std::move(model), std::move(task),
                                                                        options);
    state_->twins.reserve(static_cast<size_t>(options.twins()));
    for (int64_t k = 0; k < options.twins(); ++k) {
      TwinOptions t = options.twin();
      t.masks().seed(t.masks().seed() + static_cast<std::uint64_t>(k));
      state_->twins.emplace_back(state_->model, std::move(t));
    }
  }

  /// Runs the full model and every twin on `input` (a tensor, or a pair/tuple of tensors each run through
  /// the model) and returns the OHEM loss against `targets`.
  template <typename Input, typename... Targets>
  OhemLossResult operator()(const Input& input, const Targets&... targets) {
    static_assert(
        std::is_same_v<Input, torch::Tensor> || detail::is_tensor_pair<Input>::value ||
            detail::is_tensor_tuple<Input>::value,
        "ohem::SelfCompetitor: the input must be a torch::Tensor, a std::pair or a std::tuple of tensors; "
        "for a model with other forward arguments use run([&] { return net->forward(a, b); }, targets...)");
    auto state = state_;
    return run([state, input]() { return detail::forward_input(state->model, input); }, targets...);
  }

  /// Runs `forward()` once for the full model and once inside each twin's masked scope, and returns the
  /// OHEM loss of its predictions against `targets`. `forward` takes no argument and returns a prediction
  /// (a tensor, a pair or a tuple of tensors); in Sequential mode it is kept (copied) until `backward()`
  /// and called again there, so it must not capture references that die before that.
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
    ++s.calls;
    if (s.options.mode() == SelfCompetitorMode::Joint || !torch::GradMode::is_enabled()) {
      P full = forward();
      std::vector<P> twins;
      twins.reserve(s.twins.size());
      for (auto& twin : s.twins) {
        auto scope = twin.scope();
        twins.push_back(forward());
      }
      return s.loss(full, twins, targets...);
    }
    return sequential(std::move(forward), targets...);
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

  /// Returns the k-th twin.
  PrunedTwin<Model>& twin(size_t k = 0) {
    TORCH_CHECK(k < state_->twins.size(), "ohem::SelfCompetitor::twin: index ", k,
                " out of range, there are ", state_->twins.size(), " twins");
    return state_->twins[k];
  }
  /// Returns the number of twins K.
  size_t num_twins() const { return state_->twins.size(); }
  /// Returns the wrapped model (the same object the user holds).
  Model& module() { return state_->model; }
  /// Returns the OHEM loss.
  OhemLoss<TaskLoss>& loss() { return state_->loss; }
  /// Returns the options.
  const SelfCompetitorOptions& options() const { return state_->options; }

 private:
  using State = detail::CompetitorState<Model, TaskLoss>;

  static std::vector<torch::Device> rng_devices(State& s) {
    std::vector<torch::Device> devices{torch::Device(torch::kCPU)};
    for (const auto& t : detail::module_tensors(s.model, false)) {
      const torch::Device d = t.device();
      if (!d.is_cuda()) continue;
      bool seen = false;
      for (const auto& e : devices) seen = seen || e == d;
      if (!seen) devices.push_back(d);
    }
    return devices;
  }

  static std::vector<torch::Tensor> live_buffers(State& s) {
    std::vector<torch::Tensor> live = detail::module_tensors(s.model, true);
    for (auto& twin : s.twins) {
      for (const auto& b : twin.named_twin_buffers()) live.push_back(b.second);
    }
    return live;
  }

  static int64_t parameter_versions(State& s) {
    int64_t v = 0;
    for (const auto& p : detail::module_tensors(s.model, false)) v += p._version();
    return v;
  }

  template <typename Forward, typename... Targets>
  OhemLossResult sequential(Forward forward, const Targets&... targets) {
    using P = std::decay_t<std::invoke_result_t<Forward&>>;
    State& s = *state_;
    const size_t k_twins = s.twins.size();
    const double inv = k_twins > 1 ? 1.0 / static_cast<double>(k_twins) : 1.0;
    const auto devices = rng_devices(s);
    const std::vector<torch::Tensor> live = live_buffers(s);

    // Full branch with its graph: RNG and BatchNorm statistics advance exactly as in Joint mode.
    P full = forward();
    // Each twin without a graph, from the RNG state and statistics it sees in Joint mode; keep both so
    // that backward() can replay it exactly.
    std::vector<P> twins;
    std::vector<detail::RngState> rng;
    std::vector<std::vector<torch::Tensor>> stats;
    {
      torch::NoGradGuard no_grad;
      for (auto& twin : s.twins) {
        rng.push_back(detail::RngState::capture(devices));
        stats.push_back(detail::snapshot(live));
        auto scope = twin.scope();
        twins.push_back(forward());
      }
    }
    std::vector<torch::Tensor> final_stats = detail::snapshot(live);

    const P full_const = detail::detach_prediction(full);
    const P& full_side = s.loss.options().detach_full() ? full_const : full;
    torch::Tensor tf = s.loss.task(full, targets...);
    torch::Tensor tt, c;
    std::vector<torch::Tensor> members;
    for (const auto& t : twins) {
      torch::Tensor ti = s.loss.task(t, targets...);
      torch::Tensor ci = s.loss.consistency(full_side, t);
      tt = tt.defined() ? tt + ti : ti;
      c = c.defined() ? c + ci : ci;
      std::vector<torch::Tensor> m = s.loss.member_hardness(full, t);
      if (members.empty()) {
        members = std::move(m);
      } else {
        for (size_t i = 0; i < members.size(); ++i) members[i] = members[i] + m[i];
      }
    }
    // The full branch's share of the gradient: d/dw of tf + λ·mean_k C(full, twin_k) with the twins constant.
    torch::Tensor full_part = tf + s.loss.options().lambda() * (k_twins > 1 ? c * inv : c);

    OhemLossResult r;
    {
      torch::NoGradGuard no_grad;
      r = s.loss.finish(tf.detach(), tt.detach(), c.detach(), std::move(members), k_twins);
    }

    struct Pending {
      std::shared_ptr<State> state;
      Forward forward;
      std::tuple<Targets...> targets;
      P full_const;
      torch::Tensor full_part;
      std::vector<torch::Device> devices;
      std::vector<torch::Tensor> live;
      std::vector<detail::RngState> rng;
      std::vector<std::vector<torch::Tensor>> stats;
      std::vector<torch::Tensor> final_stats;
      int64_t call = 0;
      int64_t versions = 0;
      double inv = 1.0;
      bool done = false;
    };
    auto pending = std::make_shared<Pending>(
        Pending{state_, std::move(forward), std::tuple<Targets...>(targets...), full_const, full_part,
                devices, live, std::move(rng), std::move(stats), std::move(final_stats), s.calls,
                parameter_versions(s), inv, false});
    r.deferred_backward = [pending](const torch::Tensor& gradient) { replay(*pending, gradient); };
    return r;
  }

  template <typename PendingT>
  static void replay(PendingT& p, const torch::Tensor& gradient) {
    State& s = *p.state;
    TORCH_CHECK(!p.done, "ohem::OhemLossResult::backward: already called for this Sequential-mode result");
    TORCH_CHECK(s.calls == p.call,
                "ohem::OhemLossResult::backward: in Sequential mode call backward() before the "
                "next forward through the SelfCompetitor (this result is from call ",
                p.call, ", the latest is ", s.calls, ")");
    TORCH_CHECK(
        parameter_versions(s) == p.versions,
        "ohem::OhemLossResult::backward: the model's parameters changed in place since the forward (an "
        "optimizer step?); in Sequential mode call backward() before optimizer.step()");
    p.done = true;
    if (p.full_part.requires_grad()) p.full_part.backward(gradient);
    p.full_part = torch::Tensor();

    const detail::RngState resume = detail::RngState::capture(p.devices);
    try {
      for (size_t k = 0; k < s.twins.size(); ++k) {
        detail::restore(p.live, p.stats[k]);
        p.rng[k].restore();
        torch::Tensor part;
        {
          using P = decltype(p.full_const);
          P twin_pred = [&] {
            auto scope = s.twins[k].scope();
            return p.forward();
          }();
          torch::Tensor task =
              std::apply([&](const auto&... t) { return s.loss.task(twin_pred, t...); }, p.targets);
          torch::Tensor c = s.loss.consistency(p.full_const, twin_pred);
          // The twin's share: α/K·T(twin_k) + λ/K·C(full, twin_k) with the full prediction constant.
          part = s.loss.options().alpha() * task + s.loss.options().lambda() * c;
          if (p.inv != 1.0) part = part * p.inv;
        }
        if (part.requires_grad()) part.backward(gradient);
      }
    } catch (...) {
      detail::restore(p.live, p.final_stats);
      resume.restore();
      throw;
    }
    detail::restore(p.live, p.final_stats);
    resume.restore();
  }

  std::shared_ptr<State> state_;
};

}  // namespace ohem
