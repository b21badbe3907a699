#pragma once
/// @file
/// The drop-in OHEM loss: the user's own task loss on the full model's and the pruned twin's predictions
/// plus a consistency term between them, with the parts and the per-sample hardness (Wang et al., IEEE TMM
/// 2023).

#include <ohem/detail/prediction.hpp>
#include <ohem/enum_names.hpp>
#include <ohem/task_losses.hpp>

#include <fmt/core.h>
#include <torch/torch.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

OHEM_BEGIN_NAMESPACE

/// The distance between the full model's and the twin's predictions.
///
/// MSE and L1 compare the outputs themselves: right for scores (quality, regression). For a classifier
/// use KL or SoftmaxMSE: they compare the class probabilities softmax(output) over dimension 1, and take
/// logits and log-probabilities (log_softmax outputs) alike, since softmax(log_softmax(x)) = softmax(x).
/// MSE on log-probabilities instead weighs the log of near-zero probabilities as much as the decision.
enum class Consistency {
  /// Squared error (the recipe: MSE between the two branches' scores).
  MSE,
  /// Absolute error.
  L1,
  /// Kullback-Leibler divergence KL(softmax(full) ‖ softmax(twin)) = Σ_c p_full,c · (log p_full,c − log
  /// p_twin,c) over the classes (dimension 1), per sample (averaged over any dimensions after 1). For
  /// classifiers; the full model is the reference distribution.
  KL,
  /// Squared error of the class probabilities softmax(full) and softmax(twin) over dimension 1, averaged
  /// like MSE. For classifiers; bounded (each difference is within [−1, 1]).
  SoftmaxMSE,
};

/// The names of each Consistency (`to_string`, `enum_key`, `enum_from_key`).
template <>
struct EnumNames<Consistency> {
  static constexpr EnumName<Consistency> values[] = {
      {Consistency::MSE, "MSE", "mse"},
      {Consistency::L1, "L1", "l1"},
      {Consistency::KL, "KL", "kl"},
      {Consistency::SoftmaxMSE, "SoftmaxMSE", "softmax-mse"},
  };
};

/// Returns the consistency's name, e.g. "MSE".
inline const char* to_string(Consistency c) {
  return enum_name(c);
}

/// Options of `OhemLoss`. Defaults reproduce the paper's public recipe: total = task(full) + task(twin) +
/// MSE(full, twin), no stop-gradient.
///
/// Example: `OhemLossOptions().lambda(0.5).consistency(Consistency::L1).detach_full(true)`
struct OhemLossOptions {
  /// Weight α of the twin's task loss. Recipe: 1.
  TORCH_ARG(double, alpha) = 1.0;
  /// Weight λ of the consistency term. Recipe: 1.
  TORCH_ARG(double, lambda) = 1.0;
  /// The distance of the consistency term. Recipe: MSE.
  TORCH_ARG(Consistency, consistency) = Consistency::MSE;
  /// Stop the consistency term's gradient on the full side, so only the twin is pulled towards the full
  /// model (distillation-style). Recipe: false (both sides get the gradient).
  TORCH_ARG(bool, detach_full) = false;
  /// How the consistency term is reduced over a prediction's elements: `torch::kMean` (recipe, as torch's
  /// mse_loss), `torch::kSum`, or `torch::kNone` (one value per sample, [B]: the total then has the shape
  /// the task loss's result broadcasts to). The task loss reduces as it was configured.
  TORCH_ARG(reduction_t, reduction) = torch::kMean;
  /// Check every call that the predictions and the loss parts are finite, and throw naming the branch and
  /// the part that is not (instead of returning an infinite or NaN total, or a finite one from infinite
  /// predictions). Costs one device synchronisation per call. Not part of the recipe; default true.
  TORCH_ARG(bool, check_finite) = true;
};

/// What `OhemLoss` and `SelfCompetitor` return for one batch.
///
/// `total` is what to minimise, with its graph in every mode; everything else is detached, for logging and
/// evaluation. Log `task`, the full model's task loss: the number the same training loop computes
/// without OHEM, and the one to stop on (`total` adds the twin's task loss and the consistency). `hardness`
/// is the per-sample disagreement |full − twin| averaged over the non-batch dimensions (and over the members
/// of a pair or tuple prediction, and over the twins of an ensemble), shape [B]; `member_hardness` holds it
/// per prediction member (for a pair: one tensor per image of the pair, to credit each image's own index).
///
/// Example: `auto r = loss(full, twin, mos); r.total.backward(); log(r.task.item<double>());`
struct OhemLossResult {
  /// task(full) + α·task(twin) + λ·consistency(full, twin), with its graph in every mode (in
  /// `SelfCompetitorMode::Sequential` its backward re-runs the forwards): call `total.backward()`, scale
  /// it, or pass it to `torch::autograd::backward` as any LibTorch loss. Minimise it; do not log it as
  /// "the loss" (see `task`).
  torch::Tensor total;
  /// task(full), detached: the full model's task loss, what the same loop without OHEM computes. The
  /// number to log, to compare with a run without OHEM, and to stop on.
  torch::Tensor task;
  /// The recipe's task sum task(full) + task(twin), detached: the two task losses with weight 1 each (no
  /// α, no consistency term); for an ensemble, task(twin) is the mean over the twins. With the recipe's
  /// α = 1 it is `total` minus λ·consistency.
  torch::Tensor task_sum;
  /// task(full), detached: the same tensor as `task` (its name before ohem 0.2).
  torch::Tensor task_full;
  /// task(twin) (averaged over the twins of an ensemble), detached.
  torch::Tensor task_twin;
  /// consistency(full, twin) before the λ weight (averaged over the twins of an ensemble), detached.
  torch::Tensor consistency;
  /// Per-sample disagreement, detached, shape [B].
  torch::Tensor hardness;
  /// Per-sample disagreement of each prediction member, detached, each [B].
  std::vector<torch::Tensor> member_hardness;
  /// The full model's prediction, detached: its members in order (one tensor for a tensor prediction, two
  /// for a pair, ...).
  std::vector<torch::Tensor> full_prediction;
  /// Each twin's prediction, detached: `twin_predictions[k]` holds twin k's members, as `full_prediction`.
  std::vector<std::vector<torch::Tensor>> twin_predictions;

  /// Same as `total.backward(gradient)`, with a clear error when the total has no graph. `gradient` is
  /// needed only for a non-scalar total (`torch::kNone` reduction).
  void backward(const torch::Tensor& gradient = {}) const {
    TORCH_CHECK(total.defined() && total.requires_grad(),
                "ohem::OhemLossResult::backward: the total loss has no graph (computed under NoGradGuard, or "
                "from predictions that do not require grad)");
    total.backward(gradient);
  }
};

/// The drop-in OHEM loss around a user's task loss (Wang et al., IEEE TMM 2023):
/// total = task(full) + α·task(twin) + λ·consistency(full, twin).
///
/// `TaskLoss` is any callable `task(prediction, targets...) -> torch::Tensor`: a lambda, a function
/// object, an ohem BIQA loss (`PairwiseFidelityLoss`, `MosL1Loss`, ...) or a torch::nn loss module such as
/// `torch::nn::MSELoss`. A prediction is a tensor, a `std::pair` or a `std::tuple` of tensors, passed to
/// the task loss unchanged; the consistency is summed over the members, each reduced over its elements
/// (the recipe's pairwise case: fidelity on both branches + MSE(μ1_full, μ1_twin) + MSE(μ2_full, μ2_twin)).
/// Every member has the batch in dimension 0, the same shape in both branches and the same batch size.
/// An ensemble of twins (a `std::vector` of twin predictions) averages the twin task losses, the
/// consistency and the hardness over the twins; one twin is exactly the single-twin loss.
///
/// Example: `ohem::OhemLoss loss(ohem::PairwiseFidelityLoss{}); auto r = loss(full_pair, twin_pair, g);`
template <typename TaskLoss>
class OhemLoss {
 public:
  /// Wraps the task loss; throws if α or λ is negative or not finite.
  explicit OhemLoss(TaskLoss task, OhemLossOptions options = {}) : task_(std::move(task)), options_(options) {
    TORCH_CHECK(std::isfinite(options_.alpha()) && options_.alpha() >= 0.0,
                "ohem::OhemLossOptions::alpha must be finite and >= 0, got ", options_.alpha());
    TORCH_CHECK(std::isfinite(options_.lambda()) && options_.lambda() >= 0.0,
                "ohem::OhemLossOptions::lambda must be finite and >= 0, got ", options_.lambda());
  }

  /// Returns the OHEM loss of the full model's and the twin's predictions against `targets`.
  template <typename P, typename... Targets>
  OhemLossResult operator()(const P& full, const P& twin, const Targets&... targets) {
    return (*this)(full, std::vector<P>{twin}, targets...);
  }

  /// Returns the OHEM loss of an ensemble of twins: the twin task losses and consistencies averaged over
  /// the twins. Throws if `twins` is empty.
  template <typename P, typename... Targets>
  OhemLossResult operator()(const P& full, const std::vector<P>& twins, const Targets&... targets) {
    check_types<P, Targets...>();
    TORCH_CHECK(!twins.empty(), "ohem::OhemLoss: the list of twin predictions is empty");
    for (const auto& twin : twins) {
      detail::prediction_traits<P>::for_each2(
          full, twin,
          [](std::size_t i, const torch::Tensor& f, const torch::Tensor& t) { check_member(i, f, t); });
    }
    const P full_c = options_.detach_full() ? detail::detach_prediction(full) : full;
    torch::Tensor tf = task(full, targets...);
    torch::Tensor tt, c;
    std::vector<torch::Tensor> members;
    for (const auto& twin : twins) {
      accumulate(tt, task(twin, targets...));
      accumulate(c, consistency(full_c, twin));
      accumulate_members(members, member_hardness(full, twin));
    }
    if (options_.check_finite()) check_finite(full, twins, tf, tt, c);
    OhemLossResult r = finish(tf, tt, c, std::move(members), twins.size());
    r.full_prediction = detail::detached_members(full);
    for (const auto& twin : twins) r.twin_predictions.push_back(detail::detached_members(twin));
    return r;
  }

  /// Returns the task loss of one prediction (the user's task loss, checked to return a tensor).
  template <typename P, typename... Targets>
  torch::Tensor task(const P& prediction, const Targets&... targets) {
    check_types<P, Targets...>();
    if constexpr (std::is_invocable_v<TaskLoss&, const P&, const Targets&...>) {
      torch::Tensor t = task_(prediction, targets...);
      TORCH_CHECK(t.defined(), "ohem::OhemLoss: the task loss returned an undefined tensor");
      return t;
    } else {
      return {};  // (check_types has failed to compile: no second error here)
    }
  }

  /// Returns the consistency term between two predictions (before the λ weight, no stop-gradient): the
  /// distance of each member reduced as `options().reduction()`, summed over the members. Throws naming the
  /// member if the shapes differ.
  template <typename P>
  torch::Tensor consistency(const P& full, const P& twin) const {
    static_assert(detail::is_prediction_v<P>,
                  "ohem::OhemLoss: a prediction must be a torch::Tensor, a std::pair of "
                  "tensors or a std::tuple of tensors");
    torch::Tensor out;
    detail::prediction_traits<P>::for_each2(
        full, twin, [&](std::size_t i, const torch::Tensor& f, const torch::Tensor& t) {
          check_member(i, f, t);
          const torch::Tensor r = member_consistency(i, f, t);
          out = out.defined() ? out + r : r;
        });
    return out;
  }

  /// Returns the per-sample disagreement of each member, detached, each [B]: |full − twin| averaged over
  /// the non-batch dimensions (for KL and SoftmaxMSE, of the class probabilities).
  template <typename P>
  std::vector<torch::Tensor> member_hardness(const P& full, const P& twin) const {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> out;
    detail::prediction_traits<P>::for_each2(
        full, twin, [&](std::size_t i, const torch::Tensor& f, const torch::Tensor& t) {
          check_member(i, f, t);
          const bool probabilities = on_probabilities();
          if (probabilities) check_classes(i, f);
          const torch::Tensor d = probabilities ? (f.detach().softmax(1) - t.detach().softmax(1)).abs()
                                                : (f.detach() - t.detach()).abs();
          out.push_back(d.reshape({d.size(0), -1}).mean(1));
        });
    return out;
  }

  /// Returns the wrapped task loss.
  TaskLoss& task_loss() { return task_; }
  /// Returns the options.
  const OhemLossOptions& options() const { return options_; }

 private:
  /// Combines summed parts of `k` twins into a result: total = tf + α·(tt/k) + λ·(c/k), without the
  /// predictions; `tt`, `c` and `members` are sums over the twins.
  OhemLossResult finish(const torch::Tensor& tf, torch::Tensor tt, torch::Tensor c,
                        std::vector<torch::Tensor> members, std::size_t k) const {
    if (k > 1) {
      const double inv = 1.0 / static_cast<double>(k);
      tt = tt * inv;
      c = c * inv;
      for (auto& m : members) m = m * inv;
    }
    OhemLossResult r;
    r.total = tf + options_.alpha() * tt + options_.lambda() * c;
    r.task = tf.detach();
    r.task_full = r.task;
    r.task_twin = tt.detach();
    r.consistency = c.detach();
    r.task_sum = r.task_full + r.task_twin;
    r.member_hardness = std::move(members);
    {
      torch::NoGradGuard no_grad;
      const int64_t b = r.member_hardness.front().size(0);
      for (size_t i = 1; i < r.member_hardness.size(); ++i) {
        TORCH_CHECK(r.member_hardness[i].size(0) == b, "ohem::OhemLoss: prediction member ", i,
                    " has batch size ", r.member_hardness[i].size(0), ", member 0 has ", b,
                    "; every member must have the same batch size");
      }
      r.hardness =
          r.member_hardness.size() == 1 ? r.member_hardness.front() : torch::stack(r.member_hardness).mean(0);
    }
    return r;
  }

  bool on_probabilities() const {
    return options_.consistency() == Consistency::KL || options_.consistency() == Consistency::SoftmaxMSE;
  }

  static void check_classes(std::size_t i, const torch::Tensor& f) {
    TORCH_CHECK(f.dim() >= 2, "ohem::OhemLoss: Consistency::",
                "KL and SoftmaxMSE compare class probabilities "
                "over dimension 1, but prediction member ",
                i, " has shape ", f.sizes(),
                " (expected [batch, classes, ...]); for scores use Consistency::MSE or L1");
  }

  /// The consistency of member i, reduced as `options().reduction()` (None: one value per sample).
  torch::Tensor member_consistency(std::size_t i, const torch::Tensor& f, const torch::Tensor& t) const {
    const bool none = detail::is_none(options_.reduction());
    if (options_.consistency() == Consistency::KL) {
      check_classes(i, f);
      const torch::Tensor log_f = f.log_softmax(1);
      // Per sample: the sum over classes, averaged over any positions after dimension 1.
      const torch::Tensor kl = (log_f.exp() * (log_f - t.log_softmax(1))).sum(1);
      const torch::Tensor per_sample = kl.reshape({kl.size(0), -1}).mean(1);
      return none ? per_sample : detail::reduce(per_sample, options_.reduction());
    }
    torch::Tensor d;
    switch (options_.consistency()) {
      case Consistency::MSE:
        d = (f - t).square();
        break;
      case Consistency::L1:
        d = (f - t).abs();
        break;
      default:  // SoftmaxMSE
        check_classes(i, f);
        d = (f.softmax(1) - t.softmax(1)).square();
        break;
    }
    // None: one value per sample, the mean over the sample's elements.
    return none ? d.reshape({d.size(0), -1}).mean(1) : detail::reduce(d, options_.reduction());
  }

  /// Throws naming the branch and part when a prediction or a loss part is not finite (one device
  /// synchronisation when everything is finite).
  template <typename P>
  void check_finite(const P& full, const std::vector<P>& twins, const torch::Tensor& tf,
                    const torch::Tensor& tt, const torch::Tensor& c) const {
    torch::NoGradGuard no_grad;
    std::vector<std::pair<std::string, torch::Tensor>> parts;
    auto add_prediction = [&](const std::string& branch, const P& p) {
      detail::prediction_traits<P>::for_each(p, [&](std::size_t i, const torch::Tensor& m) {
        if (m.is_floating_point()) parts.emplace_back(branch + " prediction member " + std::to_string(i), m);
      });
    };
    add_prediction("the full model's", full);
    for (std::size_t k = 0; k < twins.size(); ++k)
      add_prediction("twin " + std::to_string(k) + "'s", twins[k]);
    parts.emplace_back("task(full)", tf);
    parts.emplace_back("task(twin)", tt);
    parts.emplace_back("consistency", c);
    std::vector<torch::Tensor> finite;
    finite.reserve(parts.size());
    for (const auto& part : parts)
      finite.push_back(torch::isfinite(part.second.detach()).all().to(torch::kCPU));
    const torch::Tensor ok = torch::stack(finite);
    if (ok.all().item<bool>()) return;
    std::string what;
    for (std::size_t j = 0; j < parts.size(); ++j) {
      if (ok[static_cast<int64_t>(j)].item<bool>()) continue;
      const torch::Tensor v = parts[j].second.detach();
      const int64_t bad = v.numel() - torch::isfinite(v).sum().item<int64_t>();
      what += fmt::format("{}{} ({} of {} values not finite)", what.empty() ? "" : ", ", parts[j].first, bad,
                          v.numel());
    }
    TORCH_CHECK(false, "ohem::OhemLoss: not finite: ", what,
                ". A twin whose masks leave a layer thin (PrunedTwin warns about those), a learning rate too "
                "high for the added twin and consistency terms, or a NaN/Inf input can cause this; "
                "OhemLossOptions().check_finite(false) turns this check off");
  }

  template <typename P, typename... Targets>
  static constexpr void check_types() {
    static_assert(detail::is_prediction_v<P>,
                  "ohem::OhemLoss: a prediction must be a torch::Tensor, a std::pair of "
                  "tensors or a std::tuple of tensors");
    static_assert(
        std::is_invocable_v<TaskLoss&, const P&, const Targets&...>,
        "ohem::OhemLoss<TaskLoss>: the task loss must be callable as task(prediction, targets...) with "
        "the prediction type (Tensor, pair or tuple of tensors) and the targets passed to the OHEM loss. A "
        "function with defaulted parameters (e.g. torch::nll_loss) loses its defaults as a pointer: pass "
        "a lambda, [](const torch::Tensor& p, const torch::Tensor& y) { return torch::nll_loss(p, y); }, "
        "or the loss module (torch::nn::NLLLoss())");
    if constexpr (std::is_invocable_v<TaskLoss&, const P&, const Targets&...>) {
      static_assert(
          std::is_convertible_v<std::invoke_result_t<TaskLoss&, const P&, const Targets&...>, torch::Tensor>,
          "ohem::OhemLoss<TaskLoss>: the task loss must return a torch::Tensor");
    }
  }

  static void accumulate(torch::Tensor& sum, const torch::Tensor& x) { sum = sum.defined() ? sum + x : x; }
  static void accumulate_members(std::vector<torch::Tensor>& sum, std::vector<torch::Tensor> x) {
    if (sum.empty()) {
      sum = std::move(x);
      return;
    }
    for (size_t i = 0; i < sum.size(); ++i) sum[i] = sum[i] + x[i];
  }

  static void check_member(std::size_t i, const torch::Tensor& f, const torch::Tensor& t) {
    TORCH_CHECK(f.defined() && t.defined(), "ohem::OhemLoss: prediction member ", i, " is undefined");
    TORCH_CHECK(f.sizes() == t.sizes(), "ohem::OhemLoss: prediction member ", i,
                " must have the same shape in the full and the twin branch, got ", f.sizes(), " and ",
                t.sizes());
    TORCH_CHECK(f.dim() >= 1, "ohem::OhemLoss: prediction member ", i,
                " must have the batch in dimension 0, got a 0-dimensional tensor");
    TORCH_CHECK(f.size(0) > 0, "ohem::OhemLoss: prediction member ", i, " is an empty batch (shape ",
                f.sizes(), "); skip empty batches before the loss");
  }

  TaskLoss task_;
  OhemLossOptions options_;
};

OHEM_END_NAMESPACE
