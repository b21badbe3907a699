#pragma once
/// @file
/// One training run of the study, v1's and v2's alike: its data (one seed's split, as CSVs), the trainer
/// driven to the end with the progress bar, and what the study keeps of it (a Run: metrics, curves,
/// hardness, the model's scores on its training images).

#include "study.hpp"

#include <toolkit/experiment.hpp>
#include <toolkit/pairwise_trainer.hpp>

#include <fmt/format.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <system_error>
#include <vector>

namespace ohem_study::program {

using namespace ohem_examples;
namespace fs = std::filesystem;

// The split of one seed: content-disjoint, long-tailed training mix; CSVs under OUT/splits.
struct SeedData {
  std::vector<int64_t> train, test;
  std::string train_csv, test_csv;
};

// Scores of the full model on the images `indices` of `data` (eval mode, native size).
inline std::vector<double> predict_samples(train_pairwise::Trainer& t, const Dataset& data,
                                           const std::vector<int64_t>& indices) {
  torch::NoGradGuard no_grad;
  t.net()->eval();
  std::vector<double> out;
  std::vector<torch::Tensor> batch;
  auto flush = [&] {
    if (batch.empty()) return;
    const torch::Tensor p =
        t.predict(torch::stack(batch).to(t.device())).to(torch::kCPU, torch::kDouble).contiguous();
    out.insert(out.end(), p.data_ptr<double>(), p.data_ptr<double>() + p.numel());
    batch.clear();
  };
  for (int64_t i : indices) {
    batch.push_back(normalize_imagenet(to_float_chw(load_image(data.samples[static_cast<size_t>(i)].path))));
    if (batch.size() >= 64) flush();
  }
  flush();
  return out;
}

// Scores of the full model on the trainer's dataset images `indices`.
inline std::vector<double> predict(train_pairwise::Trainer& t, const std::vector<int64_t>& indices) {
  return predict_samples(t, t.data(), indices);
}

// Trains `method` on one seed with the trainer options `opts` (its CSVs: d's), advancing `progress` by
// the run's steps. `after` (if any) sees the trained trainer before it goes; the final checkpoint is
// removed unless `keep_checkpoint` (then the caller removes it).
inline Run train_with(const TrainOptions& opts, const SeedData& d, const std::string& method, int64_t seed,
                      Progress& progress, int64_t& done_units, bool keep_checkpoint = false,
                      const std::function<void(train_pairwise::Trainer&)>& after = {}) {
  const auto t0 = std::chrono::steady_clock::now();
  train_pairwise::Trainer trainer(opts);
  const int64_t per_step = opts.ohem ? 1 + opts.twins : 1;
  const std::string status = fmt::format("seed {} {}", seed, method);
  while (!trainer.done()) {
    trainer.step();
    progress.update(done_units + trainer.global_step() * per_step, status);
  }
  done_units += trainer.global_step() * per_step;
  Run r;
  r.seed = seed;
  r.method = method;
  r.test = trainer.train();  // training is done: the final evaluation and results.json of the run
  r.steps = trainer.global_step();
  r.curve = trainer.history();
  // The trainer's indices: its training CSV's rows first (= d.train), then the test CSV's (= d.test).
  const auto n_train = static_cast<int64_t>(d.train.size());
  for (auto& i : r.test.indices) i = d.test[static_cast<size_t>(i - n_train)];
  std::vector<int64_t> local(d.train.size());
  for (int64_t k = 0; k < n_train; ++k) {
    local[static_cast<size_t>(k)] = k;
    r.hardness.push_back(trainer.run_hardness().hardness(k));
  }
  r.train = d.train;
  if (opts.ohem) r.train_predictions = predict(trainer, local);
  if (after) after(trainer);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::error_code ec;
  if (!keep_checkpoint) fs::remove(trainer.checkpoint_path(), ec);  // the study keeps results, not weights
  return r;
}

}  // namespace ohem_study::program
