#pragma once
/// @file
/// Study v2's trainings (issue 26; docs/study.md "Study v2: registered design"): the three arms, one
/// seed's runs, W's and each arm's trainer options, and the metrics on the validation images.

#include "options.hpp"
#include "study.hpp"
#include "study_v2.hpp"
#include "training.hpp"

#include <toolkit/experiment.hpp>
#include <toolkit/pairwise_trainer.hpp>

#include <ohem/ohem.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace ohem_study::program {

using namespace ohem_examples;
namespace fs = std::filesystem;

// The three arms, fine-tuned from the same W on the same data, crops and order (the same trainer seed).
struct Arm {
  std::string name, label;
  bool ohem = false;
  ohem::MaskCriterion criterion = ohem::MaskCriterion::GlobalMagnitude;
};

inline const std::vector<Arm>& arms() {
  static const std::vector<Arm> a = {
      {"baseline", "fine-tuning without OHEM"},
      {"ohem", "OHEM, magnitude masks from W over conv + Linear (not the head)", true},
      {"random", "OHEM, random masks of the same ratio and layers (the control)", true,
       ohem::MaskCriterion::Random}};
  return a;
}

// One seed's trainings and validation scores.
struct SeedV2 {
  v2::Split split;
  SeedData start, arms;  // W's data (the pool) and the arms' (the training photographs); both test alike
  std::string val_csv;
  Run w;                                                // the shared start W (its test metrics)
  std::map<std::string, Run> runs;                      // arm → run (of the learning rate validation chose)
  std::map<std::string, EvalResult> val;                // arm → validation metrics (overall and per type)
  std::map<std::string, double> lr;                     // arm → the learning rate validation chose
  std::map<std::string, nlohmann::ordered_json> tried;  // arm → [{lr, val_srcc}] for each rate tried
};

// The fine-tuning learning rates each arm tries: --ft-lr-grid, else --ft-lr alone.
inline std::vector<double> ft_lrs(const StudyOptions& o) {
  return o.ft_lr_grid.empty() ? std::vector<double>{o.ft_lr} : o.ft_lr_grid;
}

// W: the baseline from scratch (v1's schedule: --epochs1, --epochs2, --lr) on the pool photographs.
inline TrainOptions start_options(const StudyOptions& o, const SeedData& d, int64_t seed) {
  TrainOptions t =
      demo::train_options(o, d.train_csv, d.test_csv, seed,
                          (fs::path(o.out) / "runs" / fmt::format("seed{}_start", seed)).string());
  t.eval_every_epoch = o.curve_eval;
  t.hardest = 0;
  return t;
}

// One arm from W at rate `lr`, in runs/seed<S>_<arm>_lr<rate> (one directory per rate of the grid, each
// holding its own run's files): every weight from W's checkpoint, one stage (no frozen stage: the masks
// come from W at its start), Adam at `lr` with StepLR(--ft-lr-step, 0.2) as the paper fine-tunes; the twin
// masks convolutions and Linear layers except the head, at --ratio (the recipe's 0.65).
inline TrainOptions arm_options(const StudyOptions& o, const SeedData& d, const Arm& a, int64_t seed,
                                const std::string& w, double lr) {
  TrainOptions t = demo::train_options(
      o, d.train_csv, d.test_csv, seed,
      (fs::path(o.out) / "runs" / fmt::format("seed{}_{}_lr{:g}", seed, a.name, lr)).string());
  t.init_from = w;
  t.epochs1 = 0;
  t.epochs2 = o.ft_epochs;
  t.lr = lr;
  t.lr_step = o.ft_lr_step;
  t.gamma = 0.2;
  t.ohem = a.ohem;
  t.mask_criterion = a.criterion;
  t.mask_layers = "conv+linear";
  t.ratio = o.ratio;
  t.eval_every_epoch = o.curve_eval;
  t.hardest = 0;
  return t;
}

// The metrics of `pred` against the labels of `all` at `indices`, overall and per type.
inline EvalResult evaluate_on(const Dataset& all, const std::vector<int64_t>& indices,
                              const std::vector<double>& pred) {
  std::vector<double> mos;
  std::vector<std::string> types;
  for (int64_t i : indices) {
    mos.push_back(all.samples[static_cast<size_t>(i)].mos);
    types.push_back(all.samples[static_cast<size_t>(i)].type);
  }
  EvalResult r;
  r.indices = indices;
  r.predictions = pred;
  r.overall = ohem::evaluate(pred, mos, correlations_only());
  r.by_type = ohem::evaluate_groups(pred, mos, types, correlations_only());
  return r;
}

}  // namespace ohem_study::program
