#pragma once
/// @file
/// The one-call self-competitor: runs the full model and its pruned twin(s) on a batch and returns the
/// OHEM loss, either with both graphs alive (Joint, the recipe) or one forward at a time with the same
/// gradients (Sequential).

#include <ohem/loss.hpp>
#include <ohem/twin.hpp>

#include <ATen/Context.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <cstddef>
#include <cstdint>
#include <functional>
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
  /// The same gradients, BatchNorm running statistics and dropout masks as Joint, with one input member's
  /// activations of one branch alive at a time: every forward (each member of a pair/tuple input, per
  /// branch) runs first without a graph; `backward()` takes the gradient of the total with respect to
  /// each prediction member, then re-runs the forwards one at a time with a graph, from the RNG state and
  /// statistics each saw, and back-propagates each. Costs one extra forward (without a graph) per forward.
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

/// One unit of a Sequential-mode forward: runs the model on (part of) the input and returns the prediction
/// members it produces, in order.
using SequentialUnit = std::function<std::vector<torch::Tensor>()>;

/// The Sequential-mode units of an input: one per member of a pair/tuple (each member is its own forward,
/// as in Joint mode), or the whole tensor.
template <typename State, typename Input>
std::vector<SequentialUnit> input_units(const std::shared_ptr<State>& state, const Input& input) {
  std::vector<SequentialUnit> units;
  auto add = [&](const torch::Tensor& x) {
    units.push_back([state, x]() { return std::vector<torch::Tensor>{forward_one(state->model, x)}; });
  };
  if constexpr (std::is_same_v<Input, torch::Tensor>) {
    add(input);
  } else if constexpr (is_tensor_pair<Input>::value) {
    add(input.first);
    add(input.second);
  } else {
    std::apply([&](const auto&... x) { (add(x), ...); }, input);
  }
  return units;
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
    using P = std::decay_t<decltype(detail::forward_input(state_->model, input))>;
    static_assert(detail::is_prediction_v<P>,
                  "ohem::SelfCompetitor: the model's forward must return a torch::Tensor");
    auto state = state_;
    if (sequential_now()) {
      // One unit per member of the input, so that backward() keeps one member's activations at a time.
      ++state_->calls;
      return sequential<P>(detail::input_units(state, input), targets...);
    }
    return run([state, input]() { return detail::forward_input(state->model, input); }, targets...);
  }

  /// Runs `forward()` once for the full model and once inside each twin's masked scope, and returns the
  /// OHEM loss of its predictions against `targets`. `forward` takes no argument and returns a prediction
  /// (a tensor, a pair or a tuple of tensors); in Sequential mode it runs without a graph here, is kept
  /// until `backward()` and runs again there once per branch with a graph, so it must not capture
  /// references that die before that.
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
    std::vector<Unit> units{[shared]() {
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

  /// Runs `body` for branch b: the full model (b = 0) or inside twin b − 1's masked scope.
  template <typename Body>
  static void in_branch(State& s, size_t b, Body&& body) {
    if (b == 0) {
      body();
      return;
    }
    auto scope = s.twins[b - 1].scope();
    body();
  }

  bool sequential_now() const {
    return state_->options.mode() == SelfCompetitorMode::Sequential && torch::GradMode::is_enabled();
  }

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

  using Unit = detail::SequentialUnit;

  /// Sequential mode. Every unit (each member of a pair/tuple input, or the whole `run()` forward) of every
  /// branch runs first without a graph, in Joint mode's order, recording the RNG state and the buffers
  /// (BatchNorm statistics) it sees; the loss and its gradient with respect to each prediction member
  /// come from those predictions. `backward()` then re-runs the units one at a time with a graph, from
  /// the recorded state, and back-propagates each with its members' gradients: at most one unit's
  /// activations are alive at a time.
  template <typename P, typename... Targets>
  OhemLossResult sequential(std::vector<Unit> units, const Targets&... targets) {
    State& s = *state_;
    const size_t branches = 1 + s.twins.size();
    const auto devices = rng_devices(s);
    const std::vector<torch::Tensor> live = live_buffers(s);

    std::vector<std::vector<detail::RngState>> rng(branches);
    std::vector<std::vector<std::vector<torch::Tensor>>> stats(branches);
    std::vector<std::vector<torch::Tensor>> leaves(branches);  // the members of each branch's prediction
    std::vector<std::vector<size_t>> unit_members(branches);   // how many members each unit produced
    {
      torch::NoGradGuard no_grad;
      for (size_t b = 0; b < branches; ++b) {
        in_branch(s, b, [&] {
          for (auto& unit : units) {
            rng[b].push_back(detail::RngState::capture(devices));
            stats[b].push_back(detail::snapshot(live));
            std::vector<torch::Tensor> out = unit();
            unit_members[b].push_back(out.size());
            for (auto& t : out) {
              TORCH_CHECK(t.defined(),
                          "ohem::SelfCompetitor: the forward returned an undefined prediction member");
              leaves[b].push_back(t.is_floating_point() || t.is_complex() ? t.detach().requires_grad_(true)
                                                                          : t);
            }
          }
        });
      }
    }
    std::vector<torch::Tensor> final_stats = detail::snapshot(live);

    // The loss of the no-graph predictions, with a graph back to them: Joint mode's formula exactly.
    P full = detail::prediction_traits<P>::from_members(leaves[0]);
    std::vector<P> twins;
    twins.reserve(branches - 1);
    for (size_t b = 1; b < branches; ++b)
      twins.push_back(detail::prediction_traits<P>::from_members(leaves[b]));
    OhemLossResult r = s.loss(full, twins, targets...);
    torch::Tensor graph = r.total;
    r.total = r.total.detach();

    struct Pending {
      std::shared_ptr<State> state;
      std::vector<Unit> units;
      std::vector<torch::Device> devices;
      std::vector<torch::Tensor> live;
      std::vector<std::vector<detail::RngState>> rng;
      std::vector<std::vector<std::vector<torch::Tensor>>> stats;
      std::vector<torch::Tensor> final_stats;
      std::vector<std::vector<torch::Tensor>> leaves;
      std::vector<std::vector<size_t>> unit_members;
      torch::Tensor graph;
      int64_t call = 0;
      int64_t versions = 0;
      bool done = false;
    };
    auto pending = std::make_shared<Pending>(Pending{
        state_, std::move(units), devices, live, std::move(rng), std::move(stats), std::move(final_stats),
        std::move(leaves), std::move(unit_members), std::move(graph), s.calls, parameter_versions(s), false});
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
    if (!p.graph.requires_grad()) return;  // nothing to back-propagate (e.g. a frozen model)

    // The gradient of the total loss with respect to every prediction member of every branch.
    std::vector<torch::Tensor> inputs;
    std::vector<std::pair<size_t, size_t>> where;  // (branch, member) of each input
    for (size_t b = 0; b < p.leaves.size(); ++b) {
      for (size_t i = 0; i < p.leaves[b].size(); ++i) {
        if (!p.leaves[b][i].requires_grad()) continue;
        inputs.push_back(p.leaves[b][i]);
        where.emplace_back(b, i);
      }
    }
    std::vector<torch::Tensor> grads = torch::autograd::grad(
        {p.graph}, inputs,
        gradient.defined() ? std::vector<torch::Tensor>{gradient} : std::vector<torch::Tensor>{},
        /*retain_graph=*/false, /*create_graph=*/false, /*allow_unused=*/true);
    std::vector<std::vector<torch::Tensor>> member_grads(p.leaves.size());
    for (size_t b = 0; b < p.leaves.size(); ++b) member_grads[b].resize(p.leaves[b].size());
    for (size_t j = 0; j < grads.size(); ++j) member_grads[where[j].first][where[j].second] = grads[j];
    p.graph = torch::Tensor();
    p.leaves.clear();

    const detail::RngState resume = detail::RngState::capture(p.devices);
    try {
      for (size_t b = 0; b < member_grads.size(); ++b) {
        bool branch_needed = false;
        for (const auto& g : member_grads[b]) branch_needed = branch_needed || g.defined();
        if (!branch_needed) continue;
        in_branch(s, b, [&] {
          size_t last = 0;  // the last unit that back-propagates in this branch
          {
            size_t first = 0;
            for (size_t u = 0; u < p.units.size(); ++u) {
              for (size_t i = first; i < first + p.unit_members[b][u]; ++i) {
                if (member_grads[b][i].defined()) last = u;
              }
              first += p.unit_members[b][u];
            }
          }
          size_t first = 0;  // the unit's first member in the branch's prediction
          for (size_t u = 0; u < p.units.size(); ++u) {
            const size_t count = p.unit_members[b][u];
            bool needed = false;
            for (size_t i = first; i < first + count; ++i) needed = needed || member_grads[b][i].defined();
            if (needed) {
              detail::restore(p.live, p.stats[b][u]);
              p.rng[b][u].restore();
              std::vector<torch::Tensor> out = p.units[u]();
              TORCH_CHECK(out.size() == count,
                          "ohem::SelfCompetitor: in Sequential mode the forward returned ", out.size(),
                          " prediction members on replay, ", count, " the first time");
              std::vector<torch::Tensor> outputs, out_grads;
              for (size_t i = 0; i < count; ++i) {
                const torch::Tensor& g = member_grads[b][first + i];
                if (!g.defined() || !out[i].requires_grad()) continue;
                outputs.push_back(out[i]);
                out_grads.push_back(g);
              }
              out.clear();
              // Within a twin's scope the units share the masked weights w ⊙ m and their graph: keep it for
              // the next unit (each unit's own graph is freed with its outputs).
              if (!outputs.empty()) torch::autograd::backward(outputs, out_grads, /*retain_graph=*/u != last);
            }
            first += count;
          }
        });
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
