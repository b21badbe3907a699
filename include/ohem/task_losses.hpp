#pragma once
/// @file
/// BIQA task losses: the pairwise fidelity loss with the Thurstone (erf) probability of the paper's recipe,
/// L1/MSE on MOS, the PLCC loss and a margin ranking loss on pairs. Each is a plain function and a functor
/// that `ohem::OhemLoss` (or any training loop) can call as `loss(prediction, targets...)`.

#include <ohem/detail/task_losses.hpp>

#include <torch/torch.h>

#include <limits>
#include <utility>

OHEM_BEGIN_NAMESPACE

/// How a loss reduces its per-sample values: LibTorch's own `torch::kNone`, `torch::kMean` or `torch::kSum`
/// (the type of `torch::nn::MSELossOptions::reduction`: `c10::variant` in LibTorch 1.x, `std::variant`
/// in 2.x).
using reduction_t = detail::ReductionVariant;

/// Computes the model's probability that image 1 is better than image 2 (UNIQUE; Wang et al. 2023):
/// p = 0.5·(1 + erf((μ1 − μ2) / sqrt(2·(σ1² + σ2² + 1e-8)))), with the variance term detached (no
/// gradient flows into σ², exactly as the recipe).
///
/// `mu1`, `mu2` are scores of shape [B] or [B, 1]; `var1`, `var2` variances broadcastable to [B]. Returns
/// [B]: NaN where μ1 − μ2 is infinite (erf would saturate to a finite loss with a zero gradient). Throws
/// if the scores are not one per sample or their counts differ.
///
/// Example: `auto p = ohem::pair_probability(mu1, mu2, torch::ones_like(mu1), torch::ones_like(mu2));`
inline torch::Tensor pair_probability(const torch::Tensor& mu1, const torch::Tensor& mu2,
                                      const torch::Tensor& var1, const torch::Tensor& var2) {
  const torch::Tensor a = detail::scores(mu1, "pair_probability", "mu1");
  const torch::Tensor b = detail::scores(mu2, "pair_probability", "mu2");
  detail::same_size(a, b, "pair_probability", "mu1", "mu2");
  TORCH_CHECK(var1.defined() && var2.defined(), "ohem::pair_probability: var1 and var2 must be defined");
  const torch::Tensor v = (var1.reshape({-1}) + var2.reshape({-1}) + 1e-8).detach();
  const torch::Tensor d = a - b;
  const torch::Tensor p = 0.5 * (1.0 + torch::erf(d / torch::sqrt(2.0 * v)));
  // erf saturates: an infinite score would give p = 0 or 1, a finite loss and a zero gradient. NaN instead,
  // so that a diverged model shows in the loss (finite scores pass through unchanged, gradient included).
  return torch::where(torch::isinf(d), torch::full_like(p, std::numeric_limits<double>::quiet_NaN()), p);
}

/// Computes the pair probability with one fixed variance for every score (the recipe: σ² = 1), i.e.
/// p = 0.5·(1 + erf((μ1 − μ2) / sqrt(2·(2·variance + 1e-8)))).
///
/// Example: `auto p = ohem::pair_probability(mu1, mu2);  // σ1² = σ2² = 1`
inline torch::Tensor pair_probability(const torch::Tensor& mu1, const torch::Tensor& mu2,
                                      double variance = 1.0) {
  TORCH_CHECK(variance >= 0.0, "ohem::pair_probability: variance must be >= 0, got ", variance);
  const torch::Tensor v = torch::full({1}, variance, mu1.options().requires_grad(false));
  return pair_probability(mu1, mu2, v, v);
}

/// Computes the Thurstone label of an image pair from subjective scores: the probability that image 1
/// is rated better, g = Φ((mos1 − mos2) / sqrt(std1² + std2²)) = 0.5·(1 + erf((mos1 − mos2) /
/// sqrt(2·(std1² + std2² + 1e-8)))) (UNIQUE; the 1e-8 keeps pairs with zero std finite: equal MOS
/// gives 0.5). The result carries no gradient.
///
/// All arguments hold one value per pair ([B] or [B, 1]). Returns [B] in [0, 1].
///
/// Example: `auto g = ohem::thurstone_probability(mos1, std1, mos2, std2);`
inline torch::Tensor thurstone_probability(const torch::Tensor& mos1, const torch::Tensor& std1,
                                           const torch::Tensor& mos2, const torch::Tensor& std2) {
  torch::NoGradGuard no_grad;
  const torch::Tensor s1 = detail::scores(std1, "thurstone_probability", "std1");
  const torch::Tensor s2 = detail::scores(std2, "thurstone_probability", "std2");
  return pair_probability(mos1, mos2, s1 * s1, s2 * s2).detach();
}

/// Computes the fidelity loss of predicted pair probabilities `p` against labels `g` (UNIQUE, the recipe):
/// per pair 1 − sqrt(p·g + 1e-8) − sqrt((1 − p)·(1 − g) + 1e-8), then reduced (recipe: mean).
///
/// `g` may be binary (the official code: g = [mos1 > mos2]) or a probability (Thurstone). Both hold one
/// value per pair; they are flattened, so [B] and [B, 1] mix safely. Throws if the counts differ.
///
/// Example: `auto loss = ohem::fidelity_loss(ohem::pair_probability(mu1, mu2), g);`
inline torch::Tensor fidelity_loss(const torch::Tensor& p, const torch::Tensor& g,
                                   const reduction_t& reduction = torch::kMean) {
  const torch::Tensor pp = detail::scores(p, "fidelity_loss", "p");
  TORCH_CHECK(g.defined(), "ohem::fidelity_loss: g is undefined");
  const torch::Tensor gg = g.reshape({-1}).to(pp.scalar_type());
  detail::same_size(pp, gg, "fidelity_loss", "p", "g");
  const torch::Tensor per_pair =
      1.0 - torch::sqrt(pp * gg + 1e-8) - torch::sqrt((1.0 - pp) * (1.0 - gg) + 1e-8);
  return detail::reduce(per_pair, reduction);
}

/// Options of `PairwiseFidelityLoss`. Defaults are the recipe.
///
/// Example: `PairwiseFidelityLossOptions().variance(1.0).reduction(torch::kSum)`
struct PairwiseFidelityLossOptions {
  /// The fixed variance σ² of every score. Recipe: 1.
  TORCH_ARG(double, variance) = 1.0;
  /// How per-pair losses are reduced. Recipe: mean.
  TORCH_ARG(reduction_t, reduction) = torch::kMean;
};

/// The recipe's task loss as a functor: the fidelity loss of the Thurstone probability of a predicted
/// pair, fidelity(pair_probability(μ1, μ2, σ²), g).
///
/// Call it with a pair of score tensors (the shape `ohem::OhemLoss` passes through) or with the two scores.
///
/// Example: `ohem::OhemLoss loss(ohem::PairwiseFidelityLoss{}); auto r = loss(full_pair, twin_pair, g);`
class PairwiseFidelityLoss {
 public:
  /// Makes the loss; `options.variance()` must be >= 0.
  explicit PairwiseFidelityLoss(PairwiseFidelityLossOptions options = {}) : options_(options) {
    TORCH_CHECK(options_.variance() >= 0.0, "ohem::PairwiseFidelityLossOptions::variance must be >= 0, got ",
                options_.variance());
  }
  /// Returns the loss of the predicted pair (μ1, μ2) against labels `g` (binary or probabilities).
  torch::Tensor operator()(const std::pair<torch::Tensor, torch::Tensor>& mu, const torch::Tensor& g) const {
    return (*this)(mu.first, mu.second, g);
  }
  /// Returns the loss of the scores μ1, μ2 against labels `g`.
  torch::Tensor operator()(const torch::Tensor& mu1, const torch::Tensor& mu2, const torch::Tensor& g) const {
    return fidelity_loss(pair_probability(mu1, mu2, options_.variance()), g, options_.reduction());
  }
  /// Returns the options.
  const PairwiseFidelityLossOptions& options() const { return options_; }

 private:
  PairwiseFidelityLossOptions options_;
};

/// Computes the L1 loss |pred − mos| on MOS, reduced. Both are flattened to [B] first, so a [B, 1]
/// prediction never broadcasts against a [B] MOS vector into a [B, B] matrix. Throws if the counts differ.
///
/// Example: `auto loss = ohem::mos_l1_loss(net->forward(x), mos);`
inline torch::Tensor mos_l1_loss(const torch::Tensor& pred, const torch::Tensor& mos,
                                 const reduction_t& reduction = torch::kMean) {
  const torch::Tensor a = detail::scores(pred, "mos_l1_loss", "pred");
  const torch::Tensor b = detail::scores(mos, "mos_l1_loss", "mos").to(a.scalar_type());
  detail::same_size(a, b, "mos_l1_loss", "pred", "mos");
  return detail::reduce((a - b).abs(), reduction);
}

/// Computes the squared error (pred − mos)² on MOS, reduced; flattened as `mos_l1_loss`.
///
/// Example: `auto loss = ohem::mos_mse_loss(net->forward(x), mos);`
inline torch::Tensor mos_mse_loss(const torch::Tensor& pred, const torch::Tensor& mos,
                                  const reduction_t& reduction = torch::kMean) {
  const torch::Tensor a = detail::scores(pred, "mos_mse_loss", "pred");
  const torch::Tensor b = detail::scores(mos, "mos_mse_loss", "mos").to(a.scalar_type());
  detail::same_size(a, b, "mos_mse_loss", "pred", "mos");
  return detail::reduce((a - b).square(), reduction);
}

/// Computes the PLCC loss (1 − ρ) / 2, with ρ the Pearson correlation of the predictions and the MOS over
/// the batch: ρ = Σ a·b / (sqrt(Σ a²)·sqrt(Σ b²) + 1e-8), a = pred − mean(pred), b = mos − mean(mos).
/// The ε = 1e-8 keeps a constant batch finite (ρ = 0, loss 0.5).
///
/// Batch size 1: the correlation is undefined, so the loss is 0 with a zero gradient (it stays connected
/// to `pred`'s graph, so `backward()` works). Combine it with an MOS loss if batches can be that small.
/// Returns a scalar; throws if the counts differ or `eps` is negative.
///
/// Example: `auto loss = ohem::plcc_loss(net->forward(x), mos);`
inline torch::Tensor plcc_loss(const torch::Tensor& pred, const torch::Tensor& mos, double eps = 1e-8) {
  TORCH_CHECK(eps >= 0.0, "ohem::plcc_loss: eps must be >= 0, got ", eps);
  const torch::Tensor a = detail::scores(pred, "plcc_loss", "pred");
  const torch::Tensor b = detail::scores(mos, "plcc_loss", "mos").to(a.scalar_type());
  detail::same_size(a, b, "plcc_loss", "pred", "mos");
  if (a.numel() < 2) return a.sum() * 0.0;
  const torch::Tensor ac = a - a.mean();
  const torch::Tensor bc = b - b.mean();
  const torch::Tensor rho = (ac * bc).sum() / (ac.square().sum().sqrt() * bc.square().sum().sqrt() + eps);
  return (1.0 - rho) / 2.0;
}

/// Computes the margin ranking loss of a predicted pair: per pair max(0, margin − (2g − 1)·(μ1 − μ2)),
/// reduced. With a binary label g = [mos1 > mos2] this is torch's margin ranking loss with y = 2g − 1;
/// a probability label weighs the hinge by its confidence (g = 0.5 gives a constant, no gradient).
///
/// Example: `auto loss = ohem::margin_ranking_loss(mu1, mu2, g, 0.1);`
inline torch::Tensor margin_ranking_loss(const torch::Tensor& mu1, const torch::Tensor& mu2,
                                         const torch::Tensor& g, double margin = 0.0,
                                         const reduction_t& reduction = torch::kMean) {
  const torch::Tensor a = detail::scores(mu1, "margin_ranking_loss", "mu1");
  const torch::Tensor b = detail::scores(mu2, "margin_ranking_loss", "mu2");
  detail::same_size(a, b, "margin_ranking_loss", "mu1", "mu2");
  TORCH_CHECK(g.defined(), "ohem::margin_ranking_loss: g is undefined");
  const torch::Tensor s = 2.0 * g.reshape({-1}).to(a.scalar_type()) - 1.0;
  detail::same_size(a, s, "margin_ranking_loss", "mu1", "g");
  return detail::reduce(torch::clamp_min(margin - s * (a - b), 0.0), reduction);
}

/// Options of `MosL1Loss` and `MosMSELoss`.
///
/// Example: `MosL1LossOptions().reduction(torch::kSum)`
struct MosLossOptions {
  /// How per-sample losses are reduced. Default: mean.
  TORCH_ARG(reduction_t, reduction) = torch::kMean;
};
/// Options of `MosL1Loss`.
using MosL1LossOptions = MosLossOptions;
/// Options of `MosMSELoss`.
using MosMSELossOptions = MosLossOptions;

/// `mos_l1_loss` as a functor: `loss(pred, mos)`.
///
/// Example: `ohem::OhemLoss loss(ohem::MosL1Loss{}); auto r = loss(full, twin, mos);`
class MosL1Loss {
 public:
  /// Makes the loss.
  explicit MosL1Loss(MosL1LossOptions options = {}) : options_(std::move(options)) {}
  /// Returns `mos_l1_loss(pred, mos, options().reduction())`.
  torch::Tensor operator()(const torch::Tensor& pred, const torch::Tensor& mos) const {
    return mos_l1_loss(pred, mos, options_.reduction());
  }
  /// Returns the options.
  const MosL1LossOptions& options() const { return options_; }

 private:
  MosL1LossOptions options_;
};

/// `mos_mse_loss` as a functor: `loss(pred, mos)`.
///
/// Example: `ohem::OhemLoss loss(ohem::MosMSELoss{}); auto r = loss(full, twin, mos);`
class MosMSELoss {
 public:
  /// Makes the loss.
  explicit MosMSELoss(MosMSELossOptions options = {}) : options_(std::move(options)) {}
  /// Returns `mos_mse_loss(pred, mos, options().reduction())`.
  torch::Tensor operator()(const torch::Tensor& pred, const torch::Tensor& mos) const {
    return mos_mse_loss(pred, mos, options_.reduction());
  }
  /// Returns the options.
  const MosMSELossOptions& options() const { return options_; }

 private:
  MosMSELossOptions options_;
};

/// Options of `PlccLoss`.
///
/// Example: `PlccLossOptions().eps(1e-6)`
struct PlccLossOptions {
  /// The ε added to the denominator of ρ, so that a constant batch gives ρ = 0. Default: 1e-8.
  TORCH_ARG(double, eps) = 1e-8;
};

/// `plcc_loss` as a functor: `loss(pred, mos)`.
///
/// Example: `ohem::OhemLoss loss(ohem::PlccLoss{}); auto r = loss(full, twin, mos);`
class PlccLoss {
 public:
  /// Makes the loss; `options.eps()` must be >= 0.
  explicit PlccLoss(PlccLossOptions options = {}) : options_(options) {
    TORCH_CHECK(options_.eps() >= 0.0, "ohem::PlccLossOptions::eps must be >= 0, got ", options_.eps());
  }
  /// Returns `plcc_loss(pred, mos, options().eps())`.
  torch::Tensor operator()(const torch::Tensor& pred, const torch::Tensor& mos) const {
    return plcc_loss(pred, mos, options_.eps());
  }
  /// Returns the options.
  const PlccLossOptions& options() const { return options_; }

 private:
  PlccLossOptions options_;
};

/// Options of `MarginRankingPairLoss`.
///
/// Example: `MarginRankingPairLossOptions().margin(0.1).reduction(torch::kSum)`
struct MarginRankingPairLossOptions {
  /// The hinge margin. Default: 0.
  TORCH_ARG(double, margin) = 0.0;
  /// How per-pair losses are reduced. Default: mean.
  TORCH_ARG(reduction_t, reduction) = torch::kMean;
};

/// `margin_ranking_loss` on a predicted pair as a functor: `loss(std::pair{mu1, mu2}, g)`.
///
/// Example:
/// `ohem::OhemLoss loss(ohem::MarginRankingPairLoss(ohem::MarginRankingPairLossOptions().margin(0.1)));`
class MarginRankingPairLoss {
 public:
  /// Makes the loss.
  explicit MarginRankingPairLoss(MarginRankingPairLossOptions options = {}) : options_(std::move(options)) {}
  /// Returns `margin_ranking_loss(mu.first, mu.second, g, options().margin(), options().reduction())`.
  torch::Tensor operator()(const std::pair<torch::Tensor, torch::Tensor>& mu, const torch::Tensor& g) const {
    return margin_ranking_loss(mu.first, mu.second, g, options_.margin(), options_.reduction());
  }
  /// Returns the options.
  const MarginRankingPairLossOptions& options() const { return options_; }

 private:
  MarginRankingPairLossOptions options_;
};

OHEM_END_NAMESPACE
