// Compiled samples of docs/loss.md: every block between DOC-BEGIN and DOC-END appears verbatim there.
#include "sample_data.hpp"

#include <ohem/hardness.hpp>
#include <ohem/ohem_loss.hpp>
#include <ohem/self_competitor.hpp>
#include <ohem/task_losses.hpp>
#include <ohem/twin.hpp>

#include <torch/torch.h>

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

// DOC-BEGIN
// The recipe, spelled out: two images per pair, both branches, no glue between twin and loss.
void recipe_step(Net& net, ohem::PrunedTwin<Net>& twin, ohem::OhemLoss<ohem::PairwiseFidelityLoss>& loss,
                 torch::optim::Optimizer& optimizer, const torch::Tensor& x1, const torch::Tensor& x2,
                 const torch::Tensor& g) {
  // One statement per forward, in the recipe's order (BatchNorm statistics depend on it): the arguments
  // of one call, as in std::make_pair(net->forward(x1), net->forward(x2)), run in no guaranteed order.
  auto mu1 = net->forward(x1);
  auto mu2 = net->forward(x2);
  auto pruned1 = twin.forward(x1);
  auto pruned2 = twin.forward(x2);
  // fidelity(full) + fidelity(pruned) + MSE(μ1) + MSE(μ2)
  auto result = loss(std::make_pair(mu1, mu2), std::make_pair(pruned1, pruned2), g);
  optimizer.zero_grad();
  result.total.backward();
  optimizer.step();
}
// DOC-END

// DOC-BEGIN
// The same in one call, in the memory-frugal Sequential mode, and the hardest images of the epoch.
void train_epoch(Net& net, torch::optim::Optimizer& optimizer, int64_t batches) {
  ohem::SelfCompetitor sc(net, ohem::PairwiseFidelityLoss{},
                          ohem::SelfCompetitorOptions().mode(ohem::SelfCompetitorMode::Sequential));
  ohem::HardnessTracker tracker;
  for (int64_t b = 0; b < batches; ++b) {
    auto [x1, mos1] = synthetic_batch(8);
    auto [x2, mos2] = synthetic_batch(8);
    auto g = (mos1 > mos2).to(torch::kFloat);     // the official code's binary label
    auto result = sc(std::make_pair(x1, x2), g);  // full and twin, image 1 then image 2
    optimizer.zero_grad();
    result.total.backward();  // Sequential: the forwards are replayed here, one at a time
    optimizer.step();
    auto first = torch::arange(16 * b, 16 * b + 8);        // the dataset indices of the batch's images
    tracker.update(first, result.member_hardness[0]);      // image 1 of each pair
    tracker.update(first + 8, result.member_hardness[1]);  // image 2 of each pair
  }
  tracker.save_csv("hardness.csv");  // index,name,hardness,mos — hardest first
  for (const auto& e : tracker.top_k(3))
    std::printf("image %lld: %.4f\n", static_cast<long long>(e.index), e.hardness);
}
// DOC-END

void labels_and_losses() {
  auto mu1 = torch::randn({8}), mu2 = torch::randn({8});
  auto mos1 = torch::rand({8}) * 100, mos2 = torch::rand({8}) * 100;
  auto std1 = torch::rand({8}) * 10, std2 = torch::rand({8}) * 10;
  // DOC-BEGIN
  auto g = ohem::thurstone_probability(mos1, std1, mos2, std2);  // UNIQUE's label Φ(Δmos / σ)
  auto p = ohem::pair_probability(mu1, mu2);                     // σ² = 1, as the recipe
  auto fidelity = ohem::fidelity_loss(p, g);                     // = PairwiseFidelityLoss{}(mu1, mu2, g)
  auto plcc = ohem::plcc_loss(mu1, mos1);                        // (1 − ρ) / 2
  auto rank = ohem::margin_ranking_loss(mu1, mu2, (mos1 > mos2).to(torch::kFloat), /*margin=*/0.1);
  // DOC-END
  std::printf("fidelity %.4f plcc %.4f rank %.4f\n", fidelity.item<double>(), plcc.item<double>(),
              rank.item<double>());
}

void options_and_custom_losses(Net& net) {
  // DOC-BEGIN
  // Any callable task loss: here a weighted mix of L1 on MOS and PLCC.
  auto task = [](const torch::Tensor& pred, const torch::Tensor& mos) {
    return ohem::mos_l1_loss(pred, mos) + 0.5 * ohem::plcc_loss(pred, mos);
  };
  ohem::SelfCompetitor sc(net, task,
                          ohem::SelfCompetitorOptions()
                              .num_twins(4)  // an ensemble of 4 twins with different random masks
                              .twin(ohem::TwinOptions().masks(
                                  ohem::MaskOptions().criterion(ohem::MaskCriterion::Random).ratio(0.5)))
                              .loss(ohem::OhemLossOptions().lambda(0.5).consistency(ohem::Consistency::L1)));
  // DOC-END
  auto [x, mos] = synthetic_batch(8);
  auto result = sc(x, mos);
  result.total.backward();
  std::printf("ensemble of %zu twins: task %.4f, consistency %.4f\n", sc.num_twins(),
              result.task.item<double>(), result.consistency.item<double>());
}

// Returns a model with net's weights and BatchNorm statistics.
Net copy_of(Net& net) {
  Net copy;
  torch::NoGradGuard no_grad;
  for (const auto& p : net->named_parameters()) copy->named_parameters()[p.key()].copy_(p.value());
  for (const auto& b : net->named_buffers()) copy->named_buffers()[b.key()].copy_(b.value());
  return copy;
}

// Runs the recipe's four forwards by hand, in the given order of the two images: the full model, then the
// same with every masked weight multiplied by its mask.
void forwards_by_hand(Net& model, const ohem::PrunedTwin<Net>& twin, const torch::Tensor& first,
                      const torch::Tensor& second) {
  torch::NoGradGuard no_grad;
  model->train();
  model->forward(first);
  model->forward(second);
  for (const auto& slot : twin.slots()) model->named_parameters()[slot.name].mul_(twin.masks().at(slot.name));
  model->forward(first);
  model->forward(second);
}

// True if every BatchNorm statistic of a and b agrees to 1e-6.
bool same_statistics(Net& a, Net& b) {
  bool same = true;
  for (const auto& s : a->named_buffers()) {
    const torch::Tensor other = b->named_buffers()[s.key()];
    same = same && torch::allclose(s.value().to(torch::kDouble), other.to(torch::kDouble), 0, 1e-6);
  }
  return same;
}

int main() {
  torch::manual_seed(0);
  Net net;
  net->train();
  torch::optim::Adam optimizer(net->parameters(), torch::optim::AdamOptions(1e-4).weight_decay(5e-4));
  ohem::PrunedTwin<Net> twin(net);
  ohem::OhemLoss loss(ohem::PairwiseFidelityLoss{});
  auto [x1, mos1] = synthetic_batch(8);
  auto [x2, mos2] = synthetic_batch(8);
  x2 = x2 * 3.0 + 1.0;  // images whose statistics differ, so that the order of the forwards shows
  Net recipe = copy_of(net), reversed = copy_of(net);
  recipe_step(net, twin, loss, optimizer, x1, x2, (mos1 > mos2).to(torch::kFloat));
  // The documented loop leaves BatchNorm's statistics as the recipe's order (x1, then x2) does.
  forwards_by_hand(recipe, twin, x1, x2);
  forwards_by_hand(reversed, twin, x2, x1);
  if (!same_statistics(net, recipe) || same_statistics(net, reversed)) {
    std::fprintf(stderr, "recipe_step: BatchNorm statistics differ from the recipe's order of forwards\n");
    return 1;
  }
  train_epoch(net, optimizer, 2);
  labels_and_losses();
  options_and_custom_losses(net);
}
