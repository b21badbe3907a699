#pragma once
/// @file
/// MOS regression: a ResNet backbone with a HyperIQA/DBCNN-style multi-scale head (the average-pooled
/// features of layer2, layer3 and layer4 concatenated, as HyperIQA's local distortion-aware branch, then
/// Linear → ReLU → Linear to one score) trained with the L1 loss on MOS, with the same OHEM flags as the
/// pairwise trainer. The OHEM lines are marked `// OHEM:` (here and in toolkit/trainer_base.hpp).

#include <toolkit/models.hpp>
#include <toolkit/trainer_base.hpp>

#include <ohem/task_losses.hpp>

#include <torch/torch.h>

#include <random>
#include <string>
#include <vector>

namespace train_mos {

using namespace ohem_examples;

// The model (MosNet) is in toolkit/models.hpp, shared with ohem-score.

/// The MOS trainer: each epoch visits every training image once in a seeded order; a step takes `batch`
/// images. Defaults differ from the pairwise trainer in the schedule only (no frozen stage, see
/// `default_options`).
class Trainer : public TrainerBase<Trainer, MosNet, ohem::MosL1Loss> {
 public:
  /// The trainer's name in its checkpoints (`load_trained_model`).
  static constexpr const char* kName = kMosTrainer;

  /// Reads the data, builds the model (or resumes); throws on bad options or data.
  explicit Trainer(TrainOptions options) : TrainerBase(std::move(options)) { init(); }

  /// The trainer's defaults: one stage of 12 epochs on everything, batch 32 (recipe optimiser).
  static TrainOptions default_options() {
    TrainOptions o;
    o.epochs1 = 0;
    o.epochs2 = 12;
    return o;
  }

  MosNet make_net() { return MosNet(o_.arch, o_.width); }
  ohem::MosL1Loss task_loss() { return ohem::MosL1Loss{}; }
  std::vector<torch::Tensor> head_parameters() {
    auto p = net_->fc1->parameters();
    for (auto& t : net_->fc2->parameters()) p.push_back(t);
    return p;
  }
  int64_t items_per_epoch() { return static_cast<int64_t>(split_.train.size()); }
  torch::Tensor predict(const torch::Tensor& x) { return net_->forward(x); }

  /// One step on the images at positions `items` of the current epoch's order.
  StepStats train_step(const std::vector<int64_t>& items, std::mt19937_64& rng) {
    const int64_t key = stage().number * 100000 + epoch();
    if (order_epoch_ != key) {
      order_ = split_.train;
      std::mt19937_64 shuffle_rng(o_.seed ^ (0x9E3779B97F4A7C15ULL * static_cast<uint64_t>(key + 1)));
      seeded_shuffle(order_, shuffle_rng);
      order_epoch_ = key;
    }
    std::vector<int64_t> idx;
    std::vector<double> mos;
    for (int64_t k : items) {
      idx.push_back(order_[static_cast<size_t>(k) % order_.size()]);
      mos.push_back(data_.samples[static_cast<size_t>(idx.back())].mos);
    }
    const torch::Tensor x = load_train(idx, rng);
    const torch::Tensor target = torch::tensor(mos, torch::kFloat).to(device());
    const torch::Tensor indices = torch::tensor(idx);

    StepStats s;
    optimizer().zero_grad();
    if (competitor_) {
      // OHEM: full model and pruned twin on the batch; L1 on both + MSE consistency; hardness |full − twin|.
      // (--twin-crops independent: the twin sees the same images with their own crops and flips.)
      const torch::Tensor twin_x = independent_twin_crops() ? load_train(idx, rng) : x;
      ohem::OhemLossResult r = ohem_loss(x, twin_x, target);
      r.backward();
      record_hardness(indices, r.hardness);
      s.loss = r.total.item<double>();
      s.task_full = r.task_full.item<double>();
      s.task_twin = r.task_twin.item<double>();
      s.consistency = r.consistency.item<double>();
    } else {
      const torch::Tensor pred = net_->forward(x);
      const torch::Tensor loss = ohem::MosL1Loss{}(pred, target);
      loss.backward();
      record_hardness(indices, (pred.detach() - target).abs());  // without a twin: per-image error
      s.loss = s.task_full = loss.item<double>();
    }
    return s;
  }

 private:
  std::vector<int64_t> order_;
  int64_t order_epoch_ = -1;
};

/// Parses the command line (CLI11: --help, errors naming the option), trains and evaluates; returns
/// the process exit code.
inline int main(int argc, char** argv) {
  CLI::App app{"MOS regression (L1) with a multi-scale head. Defaults here: --epochs1 0 --epochs2 12.",
               "train_mos"};
  TrainOptions o = Trainer::default_options();
  add_train_options(app, o);
  CLI11_PARSE(app, argc, argv);
  Trainer t(o);
  t.train();
  return 0;
}

}  // namespace train_mos
