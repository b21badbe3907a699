#pragma once
/// @file
/// Internal: `SelfCompetitorMode::Sequential`. Every forward (a unit: one member of a pair/tuple input, or
/// the whole `run()` forward) of every branch runs first without a graph, recording the RNG state and the
/// buffers it saw (`record`). The predictions become outputs of one autograd node (`SequentialReplay`), so
/// the total loss built on them carries a graph. When the engine reaches that node it holds the gradient
/// of whatever was back-propagated with respect to every prediction member; it re-runs the units one at a
/// time with a graph, from the recorded state, and back-propagates each with its members' gradients
/// (a nested, reentrant backward, which LibTorch's engine runs on the same thread).
///
/// The functions are templates (`template <typename = void>`, called as plain functions) and the node a
/// class template whose argument is unused (SelfCompetitor passes its model type), so that a translation
/// unit that includes self_competitor.hpp without using it compiles none of this code.

#include <ohem/version.hpp>

#include <ATen/Context.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

OHEM_BEGIN_NAMESPACE
namespace detail {

/// The state of the default generators of some devices, to replay random draws (dropout).
class RngState {
 public:
  /// Captures the default generator of every device listed.
  template <typename = void>
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

/// Returns copies of the tensors' values.
template <typename = void>
std::vector<torch::Tensor> snapshot(const std::vector<torch::Tensor>& live) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> out;
  out.reserve(live.size());
  for (const auto& t : live) out.push_back(t.clone());
  return out;
}

/// Copies saved values back into the live tensors.
template <typename = void>
void restore(const std::vector<torch::Tensor>& live, const std::vector<torch::Tensor>& saved) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < live.size(); ++i) live[i].copy_(saved[i]);
}

/// Returns the sum of the tensors' version counters (each in-place change adds one).
template <typename = void>
int64_t version_sum(const std::vector<torch::Tensor>& tensors) {
  int64_t v = 0;
  for (const auto& t : tensors) v += static_cast<int64_t>(t._version());
  return v;
}

/// A sample of the tensors' values: up to 17 evenly spaced elements of each, copied to the CPU. An optimizer
/// that updates the weights through `.data()` (LibTorch 1.13's SGD) leaves the version counters alone; it
/// still changes every element with a non-zero gradient, so the sample sees it. (An update that changes
/// none of the sampled elements of any tensor would go unnoticed.)
template <typename = void>
torch::Tensor value_sample(const std::vector<torch::Tensor>& tensors) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> parts;
  parts.reserve(tensors.size());
  for (const auto& t : tensors) {
    if (!t.defined() || t.numel() == 0) continue;
    const torch::Tensor flat = t.detach().reshape({-1});
    const int64_t step = std::max<int64_t>(1, flat.numel() / 16);
    parts.push_back(flat.slice(0, 0, flat.numel(), step).to(torch::kCPU, torch::kDouble));
  }
  return parts.empty() ? torch::zeros({0}, torch::kDouble) : torch::cat(parts);
}

/// True if two samples of `value_sample` are equal, NaN equal to NaN.
template <typename = void>
bool same_sample(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.sizes() != b.sizes()) return false;
  return (a.eq(b) | (a.isnan() & b.isnan())).all().item<bool>();
}

/// One unit of a Sequential-mode forward: runs the model on (part of) the input and returns the prediction
/// members it produces, in order.
using SequentialUnit = std::function<std::vector<torch::Tensor>()>;

/// Runs `body` for branch b: the full model (b = 0) or inside twin b − 1's masked scope.
using BranchRunner = std::function<void(size_t branch, const std::function<void()>& body)>;

/// What one unit of one branch saw in the recording pass.
struct UnitRecord {
  RngState rng;
  std::vector<torch::Tensor> buffers;  // the live buffers' values before the unit ran
  size_t members = 0;                  // how many prediction members it produced
};

/// Everything a Sequential-mode backward needs, recorded by the forward.
struct Pending {
  std::vector<SequentialUnit> units;
  BranchRunner in_branch;
  /// Throws if the model moved on since the recording (a forward, an optimizer step).
  std::function<void()> check_fresh;
  std::vector<torch::Device> devices;           // whose generators the units draw from
  std::vector<torch::Tensor> live;              // the buffers the units update (BatchNorm statistics)
  std::vector<std::vector<UnitRecord>> record;  // [branch][unit]
  std::vector<torch::Tensor> final_buffers;     // the buffers after the recording pass, as Joint leaves them
  int64_t live_version = 0;                     // the live buffers' version sum as the forward left them
  std::vector<std::vector<torch::Tensor>> predictions;  // [branch][member], without a graph
};

/// Runs every unit of every branch without a graph, in Joint mode's order, and records what each saw.
template <typename = void>
void record(Pending& p, size_t branches) {
  torch::NoGradGuard no_grad;
  p.record.assign(branches, {});
  p.predictions.assign(branches, {});
  for (size_t b = 0; b < branches; ++b) {
    p.in_branch(b, [&] {
      for (auto& unit : p.units) {
        UnitRecord rec{RngState::capture(p.devices), snapshot(p.live), 0};
        std::vector<torch::Tensor> out = unit();
        rec.members = out.size();
        for (auto& t : out) {
          TORCH_CHECK(t.defined(),
                      "ohem::SelfCompetitor: the forward returned an undefined prediction member");
          p.predictions[b].push_back(t.detach());
        }
        p.record[b].push_back(std::move(rec));
      }
    });
  }
  p.final_buffers = snapshot(p.live);
  p.live_version = version_sum(p.live);
}

/// The autograd node whose outputs are the recorded predictions of every branch, and whose backward
/// replays the forwards with a graph (see the file comment). `Tag` is unused (see the file comment).
template <typename Tag = void>
class SequentialReplay : public torch::autograd::Node {
 public:
  explicit SequentialReplay(Pending pending) : pending_(std::move(pending)) {}

  /// Returns the recorded predictions, [branch][member]; the floating-point ones are outputs of this node.
  std::vector<std::vector<torch::Tensor>> attach() {
    std::vector<std::vector<torch::Tensor>> out = pending_.predictions;
    input_of_.assign(out.size(), {});
    for (size_t b = 0; b < out.size(); ++b) {
      for (auto& t : out[b]) {
        const bool differentiable = t.is_floating_point() || t.is_complex();
        input_of_[b].push_back(differentiable ? static_cast<int64_t>(num_inputs()) : -1);
        if (differentiable) torch::autograd::set_history(t, shared_from_this());
      }
    }
    pending_.predictions.clear();
    return out;
  }

  /// True until the backward has run or the graph was freed.
  bool awaiting_backward() const { return !ran_ && !released_; }

  torch::autograd::variable_list apply(torch::autograd::variable_list&& grads) override {
    TORCH_CHECK(!released_,
                "Trying to backward through the graph a second time (or directly access saved tensors after "
                "they have already been freed). Saved intermediate values of the graph are freed when you "
                "call .backward() or autograd.grad(). Specify retain_graph=True if you need to backward "
                "through the graph a second time (ohem::SelfCompetitor, Sequential mode)");
    Pending& p = pending_;
    p.check_fresh();
    TORCH_CHECK(version_sum(p.live) == p.live_version,
                "ohem::SelfCompetitor: the model's buffers (BatchNorm running statistics) changed since the "
                "Sequential-mode forward: a forward through the model ran before this loss was "
                "back-propagated; back-propagate it first");
    ran_ = true;
    // The engine runs a backward node with autograd off; the replayed forwards need their graph.
    torch::AutoGradMode grad_on(true);
    const RngState resume = RngState::capture(p.devices);
    try {
      for (size_t b = 0; b < p.record.size(); ++b) replay_branch(b, branch_grads(b, grads));
    } catch (...) {
      restore(p.live, p.final_buffers);
      resume.restore();
      throw;
    }
    restore(p.live, p.final_buffers);
    resume.restore();
    p.live_version = version_sum(p.live);  // (retain_graph: a second backward replays from here)
    return {};
  }

  void release_variables() override {
    released_ = true;
    pending_ = Pending{};
  }

  std::string name() const override { return "ohem::SequentialReplay"; }

 private:
  /// The incoming gradient of each prediction member of branch b (undefined where none flowed).
  std::vector<torch::Tensor> branch_grads(size_t b, const torch::autograd::variable_list& grads) const {
    std::vector<torch::Tensor> out;
    for (int64_t i : input_of_[b]) out.push_back(i >= 0 ? grads[static_cast<size_t>(i)] : torch::Tensor());
    return out;
  }

  static bool any_defined(const std::vector<torch::Tensor>& g, size_t first, size_t count) {
    for (size_t i = first; i < first + count; ++i) {
      if (g[i].defined()) return true;
    }
    return false;
  }

  void replay_branch(size_t b, const std::vector<torch::Tensor>& grads) {
    if (!any_defined(grads, 0, grads.size())) return;
    const std::vector<UnitRecord>& units = pending_.record[b];
    size_t last = 0;  // the last unit that back-propagates in this branch
    for (size_t u = 0, first = 0; u < units.size(); first += units[u].members, ++u) {
      if (any_defined(grads, first, units[u].members)) last = u;
    }
    pending_.in_branch(b, [&] {
      for (size_t u = 0, first = 0; u < units.size(); first += units[u].members, ++u) {
        if (!any_defined(grads, first, units[u].members)) continue;
        // Within a twin's scope the units share the masked weights w ⊙ m and their graph: keep it for the
        // next unit (each unit's own graph is freed with its outputs).
        replay_unit(b, u, grads, first, /*retain_graph=*/u != last);
      }
    });
  }

  void replay_unit(size_t b, size_t u, const std::vector<torch::Tensor>& grads, size_t first,
                   bool retain_graph) {
    const UnitRecord& rec = pending_.record[b][u];
    restore(pending_.live, rec.buffers);
    rec.rng.restore();
    std::vector<torch::Tensor> out = pending_.units[u]();
    TORCH_CHECK(out.size() == rec.members, "ohem::SelfCompetitor: in Sequential mode the forward returned ",
                out.size(), " prediction members on replay, ", rec.members, " the first time");
    std::vector<torch::Tensor> outputs, out_grads;
    for (size_t i = 0; i < rec.members; ++i) {
      const torch::Tensor& g = grads[first + i];
      if (!g.defined() || !out[i].requires_grad()) continue;
      outputs.push_back(out[i]);
      out_grads.push_back(g);
    }
    out.clear();
    if (!outputs.empty()) torch::autograd::backward(outputs, out_grads, retain_graph);
  }

  Pending pending_;
  std::vector<std::vector<int64_t>> input_of_;  // [branch][member] -> this node's input number, or -1
  bool ran_ = false;
  bool released_ = false;
};

}  // namespace detail
OHEM_END_NAMESPACE
