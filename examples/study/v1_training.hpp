#pragma once
/// @file
/// Study v1's trainings: the methods (baseline, OHEM and the mechanism's controls), one seed's
/// long-tailed split, each run's trainer options and cost.

#include "options.hpp"
#include "training.hpp"

#include <toolkit/experiment.hpp>
#include <toolkit/pairwise_trainer.hpp>

#include <ohem/ohem.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace ohem_study::program {

using namespace ohem_examples;
namespace fs = std::filesystem;

// One method of training: the two compared, and the mechanism's controls.
struct Variant {
  std::string name, label;
  bool ohem = false;
  int64_t twins = 1;
  ohem::MaskCriterion criterion = ohem::MaskCriterion::GlobalMagnitude;
  double random_fraction = 0.0;
  bool control = false;  // runs on the first --control-seeds seeds only
};

inline std::vector<Variant> variants(const StudyOptions& o) {
  std::vector<Variant> v = {{"baseline", "without OHEM"},
                            {"ohem", "magnitude-pruned twin (the method)", true}};
  if (o.controls && o.control_seeds > 0) {
    v.push_back({"random", "random mask, same ratio", true, 1, ohem::MaskCriterion::Random, 0.0, true});
    v.push_back({fmt::format("ensemble{}", o.ensemble_twins),
                 fmt::format("{} magnitude twins (+{:.0f}% random pruning each)", o.ensemble_twins,
                             100 * o.ensemble_random_fraction),
                 true, o.ensemble_twins, ohem::MaskCriterion::GlobalMagnitude, o.ensemble_random_fraction,
                 true});
  }
  return v;
}

inline bool runs_on(const StudyOptions& o, const Variant& v, int64_t seed) {
  return !v.control || seed < o.control_seeds;
}

inline SeedData seed_data(const Dataset& all, const StudyOptions& o, int64_t seed) {
  SeedData d;
  const Split by_content = split_by_group(all, o.train_fraction, static_cast<uint64_t>(seed));
  d.train = demo::long_tailed(all, by_content.train, o.shares, static_cast<uint64_t>(seed));
  d.test = by_content.test;
  const std::string dir = (fs::path(o.out) / "splits").string();
  d.train_csv = demo::write_split_csv(all, d.train, dir, fmt::format("train_{}.csv", seed));
  d.test_csv = demo::write_split_csv(all, d.test, dir, fmt::format("test_{}.csv", seed));
  return d;
}

inline TrainOptions train_options(const StudyOptions& o, const SeedData& d, const Variant& v, int64_t seed) {
  TrainOptions t =
      demo::train_options(o, d.train_csv, d.test_csv, seed,
                          (fs::path(o.out) / "runs" / fmt::format("seed{}_{}", seed, v.name)).string());
  t.ohem = v.ohem;
  t.twins = v.twins;
  t.mask_criterion = v.criterion;
  t.mask_random_fraction = v.random_fraction;
  t.eval_every_epoch = o.curve_eval;
  t.hardest = 0;
  return t;
}

// Cost of one run in step units (a twin costs about one more forward and backward), for the ETA.
inline int64_t run_cost(const StudyOptions& o, const Variant& v, int64_t train_images) {
  const int64_t steps = (o.epochs1 + o.epochs2) * std::max<int64_t>(1, train_images / o.batch);
  return steps * (v.ohem ? 1 + v.twins : 1);
}

// Trains one variant on one seed, advancing `progress` by the run's steps.
inline Run train_run(const StudyOptions& o, const SeedData& d, const Variant& v, int64_t seed,
                     Progress& progress, int64_t& done_units) {
  return train_with(train_options(o, d, v, seed), d, v.name, seed, progress, done_units);
}

}  // namespace ohem_study::program
