#pragma once
/// @file
/// Study v2's run, `study --design v2` (issue 26; docs/study.md "Study v2: registered design"): on each
/// seed W from scratch, then the three arms fine-tuned from it; results.json (schema "ohem-study/2") and
/// the report.

#include "options.hpp"
#include "report/report.hpp"
#include "results_json.hpp"
#include "run_setup.hpp"
#include "study.hpp"
#include "study_v2.hpp"
#include "training.hpp"
#include "v2_results.hpp"
#include "v2_training.hpp"

#include <toolkit/experiment.hpp>
#include <toolkit/files.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace ohem_study::program {

using namespace ohem_examples;
namespace fs = std::filesystem;

// Study v2 (issue 26; docs/study.md "Study v2: registered design"): W, then the three arms from it at
// each rate of the grid on every seed, the registered endpoints, results.json and the report.
inline int run_v2(StudyOptions o) {
  TORCH_CHECK(o.crop <= o.patch, "study: --crop (", o.crop, ") must not exceed --patch (", o.patch, ")");
  TORCH_CHECK(o.seeds % v2::kRotation == 0, "study --design v2: --seeds must be a multiple of ",
              v2::kRotation, " (the tiers rotate over ", v2::kRotation,
              " seeds, so that every type is a tail type equally often), got ", o.seeds);
  const auto t0 = std::chrono::steady_clock::now();
  if (o.data.empty()) o.data = (fs::path(o.out) / "data").string();
  const OutputLock lock = prepare_out(o);
  std::vector<std::string> photos;
  const Dataset all = study_dataset(o, "ohem study v2", photos);
  const double dataset_seconds = seconds_since(t0);

  const std::string dir = (fs::path(o.out) / "splits").string();
  std::vector<SeedV2> seeds(static_cast<size_t>(o.seeds));
  int64_t total_units = 0;
  auto steps = [&](int64_t epochs, size_t images) {
    return epochs * std::max<int64_t>(1, static_cast<int64_t>(images) / o.batch);
  };
  for (int64_t s = 0; s < o.seeds; ++s) {
    SeedV2& d = seeds[static_cast<size_t>(s)];
    d.split = v2::split(all, o.train_fraction, o.pool_fraction, o.val_fraction, s);
    const std::string test_csv =
        demo::write_split_csv(all, d.split.test_images, dir, fmt::format("test_{}.csv", s));
    d.start = {d.split.pool_images, d.split.test_images,
               demo::write_split_csv(all, d.split.pool_images, dir, fmt::format("pool_{}.csv", s)), test_csv};
    d.arms = {d.split.train_images, d.split.test_images,
              demo::write_split_csv(all, d.split.train_images, dir, fmt::format("train_{}.csv", s)),
              test_csv};
    d.val_csv = demo::write_split_csv(all, d.split.val_images, dir, fmt::format("val_{}.csv", s));
    total_units += steps(o.epochs1 + o.epochs2, d.split.pool_images.size());
    for (const Arm& a : arms())
      total_units += steps(o.ft_epochs, d.split.train_images.size()) * (a.ohem ? 2 : 1) *
                     static_cast<int64_t>(ft_lrs(o).size());
  }
  std::cout << fmt::format(
      "dataset: {} images; seed 0: W on {} photographs ({} images), the arms on {} ({} images, tiered), "
      "validation {} ({}), test {} ({}, balanced)\n",
      all.size(), seeds[0].split.pool.size(), seeds[0].split.pool_images.size(), seeds[0].split.train.size(),
      seeds[0].split.train_images.size(), seeds[0].split.val.size(), seeds[0].split.val_images.size(),
      seeds[0].split.test.size(), seeds[0].split.test_images.size());

  const auto t1 = std::chrono::steady_clock::now();
  Progress progress("study v2", total_units, o.progress);
  int64_t done_units = 0;
  for (int64_t s = 0; s < o.seeds; ++s) {
    SeedV2& d = seeds[static_cast<size_t>(s)];
    std::string w;
    d.w = train_with(start_options(o, d.start, s), d.start, "start", s, progress, done_units, true,
                     [&](train_pairwise::Trainer& t) { w = t.checkpoint_path(); });
    for (const Arm& a : arms()) {
      // Each rate of the grid; the best validation SRCC wins (a NaN never; ties keep the earlier rate).
      d.tried[a.name] = nlohmann::ordered_json::array();
      for (double lr : ft_lrs(o)) {
        EvalResult val;
        Run r = train_with(arm_options(o, d.arms, a, s, w, lr), d.arms, a.name, s, progress, done_units,
                           false, [&](train_pairwise::Trainer& t) {
                             val = evaluate_on(all, d.split.val_images,
                                               predict_samples(t, all, d.split.val_images));
                           });
        d.tried[a.name].push_back({{"lr", lr}, {"val_srcc", number(val.overall.srcc)}});
        const bool first = d.runs.count(a.name) == 0;
        if (first || (std::isfinite(val.overall.srcc) && !(val.overall.srcc <= d.val[a.name].overall.srcc))) {
          d.runs[a.name] = std::move(r);
          d.val[a.name] = val;
          d.lr[a.name] = lr;
        }
      }
      if (!o.progress || !isatty(2))
        std::cout << fmt::format("seed {} {:<10} {:5d} steps {:7.1f}s  test SRCC {:.3f}  val SRCC {:.3f}\n",
                                 s, a.name, d.runs[a.name].steps, d.runs[a.name].seconds,
                                 d.runs[a.name].test.overall.srcc, d.val[a.name].overall.srcc)
                  << std::flush;
    }
    std::error_code ec;
    fs::remove(w, ec);  // W served its seed's arms; the study keeps results, not weights
  }
  progress.finish();
  const double training_seconds = seconds_since(t1);

  nlohmann::ordered_json j;
  j["schema"] = "ohem-study/2";
  j["design"] = "v2";
  // Without the registration commit (--registration), nothing this run prints is a finding (docs/study.md).
  j["in_progress"] = o.registration.empty();
  if (!o.registration.empty()) j["registration"] = {{"commit", o.registration}};
  j["created"] = utc_now();
  j["quick"] = o.quick;
  j["environment"] = environment_json();
  j["seconds"] = nlohmann::ordered_json::object();
  nlohmann::ordered_json config = config_json(o);
  config["design"] = o.design;
  config["pool_fraction"] = o.pool_fraction;
  config["val_fraction"] = o.val_fraction;
  config["ft_epochs"] = o.ft_epochs;
  config["ft_lr"] = o.ft_lr_grid.empty() ? nlohmann::ordered_json(o.ft_lr) : nullptr;  // null: the grid
  config["ft_lr_grid"] = ft_lrs(o);
  config["ft_lr_step"] = o.ft_lr_step;
  config["ft_gamma"] = 0.2;
  config["mask_layers"] = "conv+linear";
  j["config"] = config;
  nlohmann::ordered_json per_seed = nlohmann::ordered_json::array();
  for (int64_t s = 0; s < o.seeds; ++s) per_seed.push_back(seed_json(seeds[static_cast<size_t>(s)], all, s));
  j["dataset"] = {{"photos", static_cast<int64_t>(photos.size())},
                  {"patch", o.patch},
                  {"levels", 5},
                  {"images", all.size()},
                  {"types", demo::distortion_names()},
                  {"tier_levels",
                   {{"head", v2::tier_levels(v2::Tier::Head)},
                    {"mid", v2::tier_levels(v2::Tier::Mid)},
                    {"tail", v2::tier_levels(v2::Tier::Tail)}}},
                  {"rotation", v2::kRotation},
                  {"seeds", per_seed}};
  nlohmann::ordered_json starts = nlohmann::ordered_json::array(), runs_out = nlohmann::ordered_json::array();
  for (const auto& d : seeds) {
    starts.push_back(run_json(d.w));
    for (const Arm& a : arms()) {
      nlohmann::ordered_json r = run_json(d.runs.at(a.name));
      r["label"] = a.label;
      r["lr"] = d.lr.at(a.name);
      r["lr_tried"] = d.tried.at(a.name);
      r["val_metrics"] = metrics_json(d.val.at(a.name));
      runs_out.push_back(r);
    }
  }
  j["start"] = starts;
  j["runs"] = runs_out;
  j["endpoints"] = endpoints_json(o, seeds);
  j["mechanism"] = mechanism_v2_json(o, all, seeds);
  j["seconds"] = {{"dataset", dataset_seconds}, {"training", training_seconds}, {"total", seconds_since(t0)}};
  const std::string results = write_results_json(j, o.out);
  const auto& p = j["endpoints"]["primary"];
  auto num = [](const nlohmann::ordered_json& x) {
    return x.is_null() ? std::string("-") : fmt::format("{:+.4f}", x.get<double>());
  };
  const std::string status = o.registration.empty() ? "not the registered run: no --registration"
                                                    : "registered design, commit " + o.registration;
  std::cout << fmt::format(
      "\nprimary ({}): Δ overall SRCC (ohem − baseline) = {}, "
      "{:.0f} % t-interval [{}, {}], sign-flip p = {}, n = {} seeds\n",
      status, num(p["mean"]), 100 * o.ci_level, num(p["ci_low"]), num(p["ci_high"]),
      p["sign_flip_p_value"].is_null() ? std::string("-")
                                       : fmt::format("{:.4f}", p["sign_flip_p_value"].get<double>()),
      p["n"].get<int64_t>());
  finish_run(j, o.out, results, t0, dataset_seconds, training_seconds);
  return 0;
}

}  // namespace ohem_study::program
