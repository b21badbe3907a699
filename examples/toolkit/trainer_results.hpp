#pragma once
/// @file
/// What a trainer reports: of a step (`StepStats`), of an epoch (`EpochStats`), of a test evaluation
/// (`EvalResult`: predictions and their correlations with the MOS, overall, per distortion type and per
/// KADID-10k type group), and the run's result files built from them, results.json and predictions.csv
/// (their formats are documented in docs/examples.md).

#include "command_line.hpp"
#include "datasets.hpp"

#include <ohem/csv.hpp>
#include <ohem/evaluation.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ohem_examples {

/// What one training step reports.
struct StepStats {
  double loss = 0.0;         ///< total loss (task + OHEM terms)
  double task_full = 0.0;    ///< task loss of the full model
  double task_twin = NAN;    ///< task loss of the twin (NaN without OHEM)
  double consistency = NAN;  ///< consistency term (NaN without OHEM)
  int64_t stage = 0, epoch = 0, step = 0;
};

/// What one epoch reports (`TrainerBase::history()`): the means of its steps, the mean hardness of the
/// training images it saw, and the test SRCC after it (NaN where it was not evaluated).
struct EpochStats {
  int64_t stage = 0, epoch = 0;  ///< stage number (1, 2) and epoch within it (from 0)
  double loss = 0.0;             ///< mean total loss
  double task_full = 0.0;        ///< mean task loss of the full model
  double task_twin = NAN;        ///< mean task loss of the twin(s) (NaN without OHEM)
  double consistency = NAN;      ///< mean consistency term (NaN without OHEM)
  double mean_hardness = NAN;    ///< mean over the images seen of their hardness in this epoch
  double test_srcc = NAN;        ///< SRCC on the test split after the epoch (--eval-every-epoch; final)
};

/// How the trainers and the study evaluate predictions: SRCC, KRCC and PLCC without logistic fits (as
/// the paper's official code does), per group only for groups of at least 3 images.
inline ohem::EvalOptions correlations_only() {
  return ohem::EvalOptions().fits(false).min_group_size(3);
}

/// Results of an evaluation on the test split.
struct EvalResult {
  ohem::Evaluation overall;
  std::map<std::string, ohem::Evaluation> by_type;
  std::map<std::string, ohem::Evaluation> by_type_group;  ///< --split kadid-*: "head", "mid", "tail"
  std::vector<int64_t> indices;                           ///< dataset indices of the test images
  std::vector<double> predictions;                        ///< full-model scores, aligned with `indices`
};

/// The epoch chosen on the validation set (--val-fraction).
struct ChosenEpoch {
  int64_t stage = 0, epoch = -1;  ///< the chosen epoch (-1: none yet)
  double val_srcc = NAN;          ///< its validation SRCC
};

/// Fills the correlations of `r` (its `indices` and `predictions` set) with the MOS of `data`: overall,
/// per distortion type where the images have types, and per type group where `type_group` (distortion
/// type → group; --split kadid-*) is given.
inline void score_predictions(EvalResult& r, const Dataset& data,
                              const std::map<std::string, std::string>* type_group) {
  std::vector<double> mos;
  std::vector<std::string> types;
  bool typed = false;
  for (int64_t i : r.indices) {
    const Sample& s = data.samples[static_cast<size_t>(i)];
    mos.push_back(s.mos);
    types.push_back(s.type);
    typed = typed || !s.type.empty();
  }
  r.overall = ohem::evaluate(r.predictions, mos, correlations_only());
  if (typed) r.by_type = ohem::evaluate_groups(r.predictions, mos, types, correlations_only());
  if (type_group != nullptr && !type_group->empty()) {
    std::vector<std::string> groups;
    for (const auto& t : types) groups.push_back(type_group->at(t));
    r.by_type_group = ohem::evaluate_groups(r.predictions, mos, groups, correlations_only());
  }
}

/// Returns one JSON object per key of `m`: its SRCC, KRCC, PLCC and count.
inline nlohmann::ordered_json correlation_table(const std::map<std::string, ohem::Evaluation>& m) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const auto& [k, c] : m) j[k] = {{"srcc", c.srcc}, {"krcc", c.krcc}, {"plcc", c.plcc}, {"count", c.n}};
  return j;
}

/// results.json's "tests": per --test set, its correlations and per-type table.
inline nlohmann::ordered_json test_results_json(const std::map<std::string, EvalResult>& sets) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const auto& [name, t] : sets)
    j[name] = {{"srcc", t.overall.srcc},
               {"krcc", t.overall.krcc},
               {"plcc", t.overall.plcc},
               {"count", t.overall.n},
               {"by_type", correlation_table(t.by_type)}};
  return j;
}

/// results.json's "selection" (--val-fraction): the chosen epoch, `checkpoint` (best.pt; empty: none) and
/// the chosen epoch's test results, `chosen` on the test split and `sets` on the --test sets.
inline nlohmann::ordered_json selection_json(const TrainOptions& o, size_t val_images,
                                             const ChosenEpoch& best, const std::string& checkpoint,
                                             const EvalResult& chosen,
                                             const std::map<std::string, EvalResult>& sets) {
  return {{"val_fraction", o.val_fraction},
          {"val_images", val_images},
          {"best_stage", best.stage},
          {"best_epoch", best.epoch},
          {"best_val_srcc", best.val_srcc},
          {"checkpoint", checkpoint.empty() ? nlohmann::json() : nlohmann::json(checkpoint)},
          {"test",
           {{"srcc", chosen.overall.srcc},
            {"krcc", chosen.overall.krcc},
            {"plcc", chosen.overall.plcc},
            {"count", chosen.overall.n},
            {"by_type", correlation_table(chosen.by_type)}}},
          {"tests", test_results_json(sets)}};
}

/// What results.json says of the run besides its evaluations.
struct RunFacts {
  std::string dataset;                             ///< the dataset's name
  int64_t steps = 0;                               ///< optimiser steps done
  double elapsed_s = 0;                            ///< seconds this process trained
  int threads = 1;                                 ///< LibTorch's threads
  std::map<std::string, std::string> type_groups;  ///< --split kadid-*: distortion type → group
  std::vector<std::string> warnings;               ///< what the run warned of
  int world_size = 0;                              ///< processes of a distributed run (0: one process)
};

/// Returns results.json: the run's facts and options, the final test results `r`, those of the --test
/// `sets`, and `selection` (`selection_json`, or null without --val-fraction).
inline nlohmann::ordered_json results_json(const RunFacts& run, const TrainOptions& o, const EvalResult& r,
                                           const std::map<std::string, EvalResult>& sets,
                                           nlohmann::ordered_json selection) {
  nlohmann::ordered_json j{{"dataset", run.dataset},
                           {"csv", o.csv},
                           {"ohem", o.ohem},
                           {"ratio", o.ratio},
                           {"seed", o.seed},
                           {"split_seed", o.split_seed},
                           {"steps", run.steps},
                           {"elapsed_s", run.elapsed_s},
                           {"threads", run.threads},
                           {"srcc", r.overall.srcc},
                           {"krcc", r.overall.krcc},
                           {"plcc", r.overall.plcc},
                           {"test_images", r.overall.n},
                           {"by_type", correlation_table(r.by_type)},
                           {"by_type_group", correlation_table(r.by_type_group)},
                           {"type_groups", run.type_groups},
                           {"tests", test_results_json(sets)},
                           {"selection", std::move(selection)},
                           {"warnings", run.warnings},
                           {"config", run_config(o)}};
  if (run.world_size > 0) j["world_size"] = run.world_size;
  return j;
}

/// Returns predictions.csv: per test image of `r`, its name (or path), MOS, prediction and, where the
/// images have distortion types, its type.
inline std::string predictions_csv(const EvalResult& r, const Dataset& data) {
  const bool typed = !r.by_type.empty();
  std::string csv = typed ? "name,mos,prediction,group\n" : "name,mos,prediction\n";
  for (size_t k = 0; k < r.indices.size() && k < r.predictions.size(); ++k) {
    const Sample& s = data.samples[static_cast<size_t>(r.indices[k])];
    csv +=
        fmt::format("{},{},{}", ohem::csv_field(s.name.empty() ? s.path : s.name), s.mos, r.predictions[k]);
    csv += typed ? "," + ohem::csv_field(s.type) + "\n" : std::string("\n");
  }
  return csv;
}

}  // namespace ohem_examples
