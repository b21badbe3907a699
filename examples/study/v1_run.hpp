#pragma once
/// @file
/// Study v1's run, `study` (docs/study.md): baseline and OHEM on N seeds with the mechanism's controls,
/// then the analyses, results.json (schema "ohem-study/1") and the report.

#include "options.hpp"
#include "report/report.hpp"
#include "results_json.hpp"
#include "run_setup.hpp"
#include "study.hpp"
#include "training.hpp"
#include "v1_results.hpp"
#include "v1_training.hpp"

#include <toolkit/experiment.hpp>
#include <toolkit/files.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace ohem_study::program {

using namespace ohem_examples;
namespace fs = std::filesystem;

// Study v1 (docs/study.md): every method on every seed it runs on, the analyses, results.json and the
// report.
inline int run_v1(StudyOptions o) {
  TORCH_CHECK(o.registration.empty(),
              "study: --registration applies to --design v2 (study v1 was not registered)");
  TORCH_CHECK(o.crop <= o.patch, "study: --crop (", o.crop, ") must not exceed --patch (", o.patch, ")");
  TORCH_CHECK(o.gmad_seed >= 0 && o.gmad_seed < o.seeds, "study: --gmad-seed must be one of the seeds (0..",
              o.seeds - 1, "), got ", o.gmad_seed);
  const auto t0 = std::chrono::steady_clock::now();
  if (o.data.empty()) o.data = (fs::path(o.out) / "data").string();
  const OutputLock lock = prepare_out(o);
  std::vector<std::string> photos;
  const Dataset all = study_dataset(o, "ohem study", photos);
  const double dataset_seconds = seconds_since(t0);

  const std::vector<Variant> vs = variants(o);
  std::vector<SeedData> seeds;
  int64_t total_units = 0;
  for (int64_t s = 0; s < o.seeds; ++s) {
    seeds.push_back(seed_data(all, o, s));
    for (const auto& v : vs)
      if (runs_on(o, v, s)) total_units += run_cost(o, v, static_cast<int64_t>(seeds.back().train.size()));
  }
  std::cout << fmt::format(
      "dataset: {} images ({} photographs x {} patches x {} types x 5 levels); "
      "training on {} images (seed 0, long-tailed), testing on {}\n",
      all.size(), photos.size(), o.grid * o.grid, demo::distortion_names().size(), seeds[0].train.size(),
      seeds[0].test.size());

  // Training: every variant on every seed it runs on.
  const auto t1 = std::chrono::steady_clock::now();
  Progress progress("study", total_units, o.progress);
  int64_t done_units = 0;
  std::vector<Run> runs, base, oh;
  for (int64_t s = 0; s < o.seeds; ++s) {
    for (const auto& v : vs) {
      if (!runs_on(o, v, s)) continue;
      runs.push_back(train_run(o, seeds[static_cast<size_t>(s)], v, s, progress, done_units));
      const Run& r = runs.back();
      if (v.name == "baseline") base.push_back(r);
      if (v.name == "ohem") oh.push_back(r);
      if (!o.progress || !isatty(2))
        std::cout << fmt::format("seed {} {:<10} {:5d} steps {:7.1f}s  test SRCC {:.3f} PLCC {:.3f}\n", s,
                                 v.name, r.steps, r.seconds, r.test.overall.srcc, r.test.overall.plcc)
                  << std::flush;
    }
  }
  progress.finish();
  const double training_seconds = seconds_since(t1);

  // Analyses and results.json.
  const auto t2 = std::chrono::steady_clock::now();
  nlohmann::ordered_json j;
  j["schema"] = "ohem-study/1";
  j["created"] = utc_now();
  j["quick"] = o.quick;
  j["environment"] = environment_json();
  j["seconds"] = nlohmann::ordered_json::object();
  j["config"] = config_json(o);
  {
    std::set<std::string> train_photos, test_photos;
    nlohmann::ordered_json tr = nlohmann::ordered_json::object(), te = nlohmann::ordered_json::object();
    std::map<std::string, int64_t> ntr, nte;
    for (int64_t i : seeds[0].train) {
      ++ntr[all.samples[static_cast<size_t>(i)].type];
      train_photos.insert(all.samples[static_cast<size_t>(i)].group);
    }
    for (int64_t i : seeds[0].test) {
      ++nte[all.samples[static_cast<size_t>(i)].type];
      test_photos.insert(all.samples[static_cast<size_t>(i)].group);
    }
    for (const auto& t : demo::distortion_names()) {
      tr[t] = ntr[t];
      te[t] = nte[t];
    }
    j["dataset"] = {{"photos", static_cast<int64_t>(photos.size())},
                    {"train_photos", static_cast<int64_t>(train_photos.size())},
                    {"test_photos", static_cast<int64_t>(test_photos.size())},
                    {"patch", o.patch},
                    {"levels", 5},
                    {"images", all.size()},
                    {"types", demo::distortion_names()},
                    {"train_images", tr},
                    {"test_images", te}};
  }
  nlohmann::ordered_json runs_out = nlohmann::ordered_json::array();
  for (const auto& r : runs)
    if (r.method == "baseline" || r.method == "ohem") runs_out.push_back(run_json(r));
  j["runs"] = runs_out;
  j["comparison"] = comparison_json(o, base, oh);
  j["reference"] = reference_json(all, seeds);
  j["mechanism"] = mechanism_json(o, all, vs, runs);
  j["gmad"] = gmad_json(o, all, base[static_cast<size_t>(o.gmad_seed)], oh[static_cast<size_t>(o.gmad_seed)]);
  j["seconds"] = {{"dataset", dataset_seconds},
                  {"training", training_seconds},
                  {"analysis", seconds_since(t2)},
                  {"total", seconds_since(t0)}};
  const std::string results = write_results_json(j, o.out);
  print_summary(j);
  std::cout << "\n";
  finish_run(j, o.out, results, t0, dataset_seconds, training_seconds);
  return 0;
}

}  // namespace ohem_study::program
