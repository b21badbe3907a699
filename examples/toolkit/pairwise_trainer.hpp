#pragma once
/// @file
/// The paper's setting: BaseCNN (ResNet-18 → global average pool → L2-normalise → Linear(512 → 1)) trained
/// on image pairs with the fidelity loss of the Thurstone probability, in two stages (backbone frozen,
/// then everything), with the recipe's Adam and StepLR, `--ohem on|off`, `--ratio`, BatchNorm policy and
/// joint or sequential mode. The OHEM lines are marked `// OHEM:` (here and in toolkit/trainer_base.hpp).

#include <toolkit/models.hpp>
#include <toolkit/trainer_base.hpp>

#include <ohem/task_losses.hpp>

#include <torch/torch.h>

#include <random>
#include <string>
#include <vector>

namespace train_pairwise {

using namespace ohem_examples;

// The model (BaseCNN) is in toolkit/models.hpp, shared with ohem-score.

/// The pairwise trainer. Each epoch visits every training image once as the first image of a pair
/// (`PairSampler`); a step takes `batch` pairs.
class Trainer : public TrainerBase<Trainer, BaseCNN, ohem::PairwiseFidelityLoss> {
 public:
  /// The trainer's name in its checkpoints (`load_trained_model`).
  static constexpr const char* kName = kPairwiseTrainer;

  /// Reads the data, builds the model (or resumes); throws on bad options or data.
  explicit Trainer(TrainOptions options) : TrainerBase(std::move(options)) {
    const PairLabel label = o_.label == "thurstone" ? PairLabel::Thurstone : PairLabel::Binary;
    sampler_.emplace(data_, split_.train, label, o_.seed);
    init();
  }

  BaseCNN make_net() { return BaseCNN(o_.arch, o_.width); }
  ohem::PairwiseFidelityLoss task_loss() { return ohem::PairwiseFidelityLoss{}; }
  std::vector<torch::Tensor> head_parameters() { return net_->fc->parameters(); }
  int64_t items_per_epoch() { return sampler_->size(); }
  torch::Tensor predict(const torch::Tensor& x) { return net_->forward(x); }

  /// One step on the pairs at positions `items` of the current epoch.
  StepStats train_step(const std::vector<int64_t>& items, std::mt19937_64& rng) {
    if (pairs_epoch_ != epoch_key()) {
      pairs_ = sampler_->epoch(epoch_key());
      pairs_epoch_ = epoch_key();
    }
    std::vector<int64_t> ia, ib;
    std::vector<double> g;
    for (int64_t k : items) {
      const Pair& p = pairs_[static_cast<size_t>(k) % pairs_.size()];
      ia.push_back(p.a);
      ib.push_back(p.b);
      g.push_back(p.label);
    }
    const torch::Tensor x1 = load_train(ia, rng);
    const torch::Tensor x2 = load_train(ib, rng);
    const torch::Tensor label = torch::tensor(g, torch::kFloat).to(device());
    const torch::Tensor idx1 = torch::tensor(ia), idx2 = torch::tensor(ib);

    StepStats s;
    optimizer().zero_grad();
    if (competitor_) {
      // OHEM: run the full model and its pruned twin on both images; fidelity on both branches + MSE
      // consistency; one backward; per-image hardness = |full − twin|.
      // (--twin-crops independent: the twin sees the same pairs with their own crops and flips.)
      std::pair<torch::Tensor, torch::Tensor> twin_input(x1, x2);
      if (independent_twin_crops()) {
        twin_input.first = load_train(ia, rng);
        twin_input.second = load_train(ib, rng);
      }
      ohem::OhemLossResult r = ohem_loss(std::make_pair(x1, x2), twin_input, label);
      r.backward();
      record_hardness(idx1, r.member_hardness[0]);
      record_hardness(idx2, r.member_hardness[1]);
      s.loss = r.total.item<double>();
      s.task_full = r.task_full.item<double>();
      s.task_twin = r.task_twin.item<double>();
      s.consistency = r.consistency.item<double>();
    } else {
      const torch::Tensor mu1 = net_->forward(x1), mu2 = net_->forward(x2);
      const torch::Tensor loss = ohem::PairwiseFidelityLoss{}(mu1, mu2, label);
      loss.backward();
      {
        // Without a twin, the "hardest" samples are those with the highest per-pair loss.
        torch::NoGradGuard no_grad;
        const torch::Tensor per_pair =
            ohem::fidelity_loss(ohem::pair_probability(mu1, mu2), label, torch::kNone);
        record_hardness(idx1, per_pair);
        record_hardness(idx2, per_pair);
      }
      s.loss = s.task_full = loss.item<double>();
    }
    return s;
  }

 private:
  int64_t epoch_key() const { return stage().number * 100000 + epoch(); }

  std::optional<PairSampler> sampler_;
  std::vector<Pair> pairs_;
  int64_t pairs_epoch_ = -1;
};

/// Parses the command line (CLI11: --help, errors naming the option), trains and evaluates; returns
/// the process exit code.
inline int main(int argc, char** argv) {
  CLI::App app{"The paper's BaseCNN on image pairs (fidelity loss).", "train_pairwise"};
  TrainOptions o = TrainOptions();
  add_train_options(app, o);
  CLI11_PARSE(app, argc, argv);
  Trainer t(o);
  t.train();
  return 0;
}

}  // namespace train_pairwise
