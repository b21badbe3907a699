#pragma once
/// @file
/// The drop-in OHEM loss: the user's own task loss on the full model's and the pruned twin's predictions
/// plus a consistency term between them, with the parts and the per-sample hardness (Wang et al., IEEE TMM
/// 2023).

#include <ohem/losses.hpp>

#include <torch/torch.h>

#include <cmath>
#include <cstddef>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace ohem {

/// The distance between the full model's and the twin's predictions.
enum class Consistency {
  /// Squared error (the recipe: MSE between the two branches' scores).
  MSE,
  /// Absolute error.
  L1,
};

/// Returns the consistency's name, e.g. "MSE".
inline const char* to_string(Consistency c) {
  switch (c) {
    case Consistency::MSE:
      return "MSE";
    case Consistency::L1:
      return "L1";
  }
  return "?";
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
  /// How the consistency term is reduced over a prediction's elements: Mean (recipe, as torch's
  /// mse_loss), Sum, or None (one value per sample, [B]: the total then has the shape the task loss's
  /// result broadcasts to). The task loss reduces as it was configured.
  TORCH_ARG(Reduction, reduction) = Reduction::Mean;
};

/// What `OhemLoss` and `SelfCompetitor` return for one batch.
///
/// `total` is what to minimise; the parts are detached, for logging. `hardness` is the per-sample
/// disagreement |full − twin| averaged over the non-batch dimensions (and over the members of a pair or
/// tuple prediction, and over the twins of an ensemble), detached, shape [B]; `member_hardness` holds it
/// per prediction member (for a pair: one tensor per image of the pair, to credit each image's own index).
///
/// Example: `auto r = loss(full, twin, mos); r.backward(); tracker.update(idx, r.hardness);`
struct OhemLossResult {
  /// task(full) + α·task(twin) + λ·consistency(full, twin). Carries the graph, except in
  /// `SelfCompetitorMode::Sequential` (call `backward()` instead).
  torch::Tensor total;
  /// task(full), detached.
  torch::Tensor task_full;
  /// task(twin) (averaged over the twins of an ensemble), detached.
  torch::Tensor task_twin;
  /// consistency(full, twin) before the λ weight (averaged over the twins of an ensemble), detached.
  torch::Tensor consistency;
  /// Per-sample disagreement, detached, shape [B].
  torch::Tensor hardness;
  /// Per-sample disagreement of each prediction member, detached, each [B].
  std::vector<torch::Tensor> member_hardness;
  /// The deferred backward pass of `SelfCompetitorMode::Sequential`; empty means `total.backward()`.
  std::function<void(const torch::Tensor&)> deferred_backward;

  /// Accumulates the gradient of `total` into the parameters (as `total.backward(gradient)`). Use this
  /// rather than `total.backward()`: it is the same call in every mode, and the only one that works in
  /// Sequential mode. `gradient` is needed only for a non-scalar total (Reduction::None). Throws if the
  /// total has no graph.
  void backward(const torch::Tensor& gradient = {}) const {
    if (deferred_backward) {
      deferred_backward(gradient);
      return;
    }
    TORCH_CHECK(total.defined() && total.requires_grad(),
                "ohem::OhemLossResult::backward: the total loss has no graph (computed under NoGradGuard, or "
                "from predictions that do not require grad)");
    total.backward(gradient);
  }
};

namespace detail {

inline void check_count(const std::vector<torch::Tensor>& members, std::size_t expected) {
  TORCH_CHECK(members.size() == expected, "ohem: a prediction of ", expected, " members was assembled from ",
              members.size(), " tensors");
}

template <typename P>
struct prediction_traits : std::false_type {};
template <>
struct prediction_traits<torch::Tensor> : std::true_type {
  static constexpr std::size_t size = 1;
  template <typename Fn>
  static void for_each(const torch::Tensor& p, Fn&& fn) {
    fn(std::size_t{0}, p);
  }
  template <typename Fn>
  static void for_each2(const torch::Tensor& a, const torch::Tensor& b, Fn&& fn) {
    fn(std::size_t{0}, a, b);
  }
  template <typename Fn>
  static torch::Tensor map(const torch::Tensor& p, Fn&& fn) {
    return fn(p);
  }
  static torch::Tensor from_members(const std::vector<torch::Tensor>& m) {
    check_count(m, size);
    return m[0];
  }
};
template <>
struct prediction_traits<std::pair<torch::Tensor, torch::Tensor>> : std::true_type {
  using P = std::pair<torch::Tensor, torch::Tensor>;
  static constexpr std::size_t size = 2;
  template <typename Fn>
  static void for_each(const P& p, Fn&& fn) {
    fn(std::size_t{0}, p.first);
    fn(std::size_t{1}, p.second);
  }
  template <typename Fn>
  static void for_each2(const P& a, const P& b, Fn&& fn) {
    fn(std::size_t{0}, a.first, b.first);
    fn(std::size_t{1}, a.second, b.second);
  }
  template <typename Fn>
  static P map(const P& p, Fn&& fn) {
    return P(fn(p.first), fn(p.second));
  }
  static P from_members(const std::vector<torch::Tensor>& m) {
    check_count(m, size);
    return P(m[0], m[1]);
  }
};
template <typename... Ts>
struct prediction_traits<std::tuple<Ts...>>
    : std::bool_constant<sizeof...(Ts) >= 1 && (std::is_same_v<Ts, torch::Tensor> && ...)> {
  using P = std::tuple<Ts...>;
  static constexpr std::size_t size = sizeof...(Ts);
  template <typename Fn>
  static void for_each(const P& p, Fn&& fn) {
    each(p, fn, std::index_sequence_for<Ts...>{});
  }
  template <typename Fn>
  static void for_each2(const P& a, const P& b, Fn&& fn) {
    each2(a, b, fn, std::index_sequence_for<Ts...>{});
  }
  template <typename Fn>
  static P map(const P& p, Fn&& fn) {
    return map_impl(p, fn, std::index_sequence_for<Ts...>{});
  }
  static P from_members(const std::vector<torch::Tensor>& m) {
    check_count(m, size);
    return from_impl(m, std::index_sequence_for<Ts...>{});
  }

 private:
  template <typename Fn, std::size_t... I>
  static void each(const P& p, Fn& fn, std::index_sequence<I...>) {
    (fn(I, std::get<I>(p)), ...);
  }
  template <typename Fn, std::size_t... I>
  static void each2(const P& a, const P& b, Fn& fn, std::index_sequence<I...>) {
    (fn(I, std::get<I>(a), std::get<I>(b)), ...);
  }
  template <typename Fn, std::size_t... I>
  static P map_impl(const P& p, Fn& fn, std::index_sequence<I...>) {
    return P(fn(std::get<I>(p))...);
  }
  template <std::size_t... I>
  static P from_impl(const std::vector<torch::Tensor>& m, std::index_sequence<I...>) {
    return P(m[I]...);
  }
};

/// True for the prediction types OhemLoss accepts: a tensor, a pair of tensors, a tuple of tensors.
template <typename P>
inline constexpr bool is_prediction_v = prediction_traits<std::decay_t<P>>::value;

/// Returns the prediction with every member detached.
template <typename P>
P detach_prediction(const P& p) {
  return prediction_traits<P>::map(p, [](const torch::Tensor& t) { return t.detach(); });
}

}  // namespace detail

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
    return finish(tf, tt, c, std::move(members), twins.size());
  }

  /// Returns the task loss of one prediction (the user's task loss, checked to return a tensor).
  template <typename P, typename... Targets>
  torch::Tensor task(const P& prediction, const Targets&... targets) {
    check_types<P, Targets...>();
    torch::Tensor t = task_(prediction, targets...);
    TORCH_CHECK(t.defined(), "ohem::OhemLoss: the task loss returned an undefined tensor");
    return t;
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
          const torch::Tensor d =
              options_.consistency() == Consistency::MSE ? (f - t).square() : (f - t).abs();
          torch::Tensor r;
          switch (options_.reduction()) {
            case Reduction::Mean:
              r = d.mean();
              break;
            case Reduction::Sum:
              r = d.sum();
              break;
            case Reduction::None:
              r = d.reshape({d.size(0), -1}).mean(1);
              break;
          }
          out = out.defined() ? out + r : r;
        });
    return out;
  }

  /// Returns the per-sample disagreement |full − twin| of each member, averaged over the non-batch
  /// dimensions, detached, each [B].
  template <typename P>
  std::vector<torch::Tensor> member_hardness(const P& full, const P& twin) const {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> out;
    detail::prediction_traits<P>::for_each2(
        full, twin, [&](std::size_t i, const torch::Tensor& f, const torch::Tensor& t) {
          check_member(i, f, t);
          const torch::Tensor d = (f.detach() - t.detach()).abs();
          out.push_back(d.reshape({d.size(0), -1}).mean(1));
        });
    return out;
  }

  /// Combines summed parts of `k` twins into a result: total = tf + α·(tt/k) + λ·(c/k). Used by
  /// `SelfCompetitor`; `tt`, `c` and `members` are sums over the twins.
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
    r.task_full = tf.detach();
    r.task_twin = tt.detach();
    r.consistency = c.detach();
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

  /// Returns the wrapped task loss.
  TaskLoss& task_loss() { return task_; }
  /// Returns the options.
  const OhemLossOptions& options() const { return options_; }

 private:
  template <typename P, typename... Targets>
  static constexpr void check_types() {
    static_assert(detail::is_prediction_v<P>,
                  "ohem::OhemLoss: a prediction must be a torch::Tensor, a std::pair of "
                  "tensors or a std::tuple of tensors");
    static_assert(
        std::is_invocable_v<TaskLoss&, const P&, const Targets&...>,
        "ohem::OhemLoss<TaskLoss>: the task loss must be callable as task(prediction, targets...) with "
        "the prediction type (Tensor, pair or tuple of tensors) and the targets passed to the OHEM loss");
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
  }

  TaskLoss task_;
  OhemLossOptions options_;
};

}  // namespace ohem
