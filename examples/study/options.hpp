#pragma once
/// @file
/// The study program's options (`study --help` lists them with their defaults): the command line, what
/// --quick and --design v2 set where it is silent, and the options as results.json records them.

#include "study_v2.hpp"

#include <toolkit/experiment.hpp>

#include <CLI/CLI.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace ohem_study::program {

using namespace ohem_examples;
namespace fs = std::filesystem;

struct StudyOptions : demo::ExperimentOptions {
  // Defaults tuned on 2 cores (docs/study.md): 5 seeds of baseline and OHEM plus the controls on 2 seeds
  // in under 30 minutes with 40 photographs. CNNIQA (50 kernels) on 32-pixel crops, tested on the whole
  // 64-pixel patches: the ResNets trained from scratch here did not learn the smooth distortions.
  StudyOptions() {
    seeds = 5;
    patch = 64;
    grid = 2;
    crop = 32;
    arch = "cnniqa";
    width = 50;
    epochs1 = 1;
    epochs2 = 11;
    batch = 16;
    lr = 1e-3;
  }
  std::string photos = "build/demo-cache/photos", out = "runs/study", data;
  int64_t control_seeds = 2, max_photos = 0;
  int64_t ensemble_twins = 4;
  double ensemble_random_fraction = 0.1, top_fraction = 0.1, gmad_margin = 0.0, ci_level = 0.95;
  int64_t bootstrap = 10000, gmad_levels = 5, gmad_seed = 0;
  bool curve_eval = true, controls = true, quick = false, overwrite = false, progress = true;
  // --design v2 (issue 26; docs/study.md "Study v2: the registered design"): W from scratch on a pool of
  // photographs, then three arms fine-tuned from W with Adam and the paper's StepLR(3, 0.2), each at the rate
  // of kFtLrGrid its validation SRCC chooses.
  std::string design = "v1";
  std::string registration;  ///< v2: the commit that registered the design (docs/study.md); "" = none
  double pool_fraction = 0.35, val_fraction = 0.2, ft_lr = 1e-4;
  int64_t ft_epochs = 4, ft_lr_step = 3;
  std::vector<double>
      ft_lr_grid;  // empty: --ft-lr alone (apply_design sets kFtLrGrid where neither is given)
};

// The command line (CLI11); --help lists every option with its default.
inline void add_study_options(CLI::App& app, StudyOptions& o) {
  app.add_option("--photos", o.photos, "folder of photographs (photos.csv, else every *.png/*.jpg)")
      ->capture_default_str();
  app.add_option("--out", o.out, "output directory (results.json, gmad/, runs/, the report)")
      ->capture_default_str();
  app.add_option("--data", o.data, "where the synthetic dataset is built and cached (default: OUT/data)");
  demo::add_experiment_options(app, o);
  app.add_option("--control-seeds", o.control_seeds,
                 "seeds (the first ones) on which the random-mask and ensemble controls run")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1000}));
  app.add_option("--controls", o.controls, "run the mechanism's controls")
      ->type_name("on|off")
      ->default_str("on");
  app.add_option("--max-photos", o.max_photos, "use only the first N photographs (0: all)")
      ->capture_default_str();
  app.add_option("--ensemble-twins", o.ensemble_twins, "twins K of the ensemble control")
      ->capture_default_str()
      ->check(CLI::Range(2, 64));
  app.add_option("--ensemble-random-fraction", o.ensemble_random_fraction,
                 "extra random pruning per ensemble twin (what makes the K magnitude twins differ)")
      ->capture_default_str();
  app.add_option("--top-fraction", o.top_fraction, "share of the hardest training images analysed")
      ->capture_default_str()
      ->check(CLI::Range(1e-6, 1.0));
  app.add_option("--bootstrap", o.bootstrap, "bootstrap resamples of the seeds")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{100}, int64_t{10000000}));
  app.add_option("--ci-level", o.ci_level, "confidence level of the intervals")
      ->capture_default_str()
      ->check(CLI::Range(0.5, 0.999));
  app.add_option("--gmad-levels", o.gmad_levels, "gMAD quality levels")->capture_default_str();
  app.add_option("--gmad-seed", o.gmad_seed, "the seed whose two models meet in gMAD")->capture_default_str();
  app.add_option("--gmad-margin", o.gmad_margin, "label difference an attack must exceed")
      ->capture_default_str();
  app.add_option("--curve-eval", o.curve_eval, "test SRCC after every epoch (the curves)")
      ->type_name("on|off")
      ->default_str("on");
  app.add_option("--progress", o.progress, "progress bar with ETA")->type_name("on|off")->default_str("on");
  app.add_flag("--quick", o.quick,
               "1 seed, tiny models and data (the test suite's end-to-end run); explicit options win");
  app.add_flag("--overwrite", o.overwrite, "replace the study already in --out");
  app.add_option("--design", o.design,
                 "v1: the study as documented; v2: issue 26's design (registered in docs/study.md), "
                 "results.json schema ohem-study/2")
      ->capture_default_str()
      ->check(CLI::IsMember({"v1", "v2"}));
  app.add_option("--pool-fraction", o.pool_fraction,
                 "v2: share of the non-test photographs that train the shared start W")
      ->capture_default_str();
  app.add_option("--val-fraction", o.val_fraction,
                 "v2: share of the remaining training photographs kept for validation (tuning)")
      ->capture_default_str();
  app.add_option("--ft-epochs", o.ft_epochs, "v2: fine-tuning epochs of each arm from W")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1000}));
  auto* lr = app.add_option("--ft-lr", o.ft_lr,
                            "v2: one Adam learning rate for every arm instead of the grid (no choice)")
                 ->check(CLI::PositiveNumber);
  app.add_option("--ft-lr-grid", o.ft_lr_grid,
                 "v2: learning rates each arm tries on each seed, comma-separated; the best validation SRCC "
                 "chooses (the same grid, so the same budget, for every arm) [default: 3e-5,1e-4,3e-4: the "
                 "paper's 1e-4 and half a decade either side]")
      ->delimiter(',')
      ->check(CLI::PositiveNumber)
      ->excludes(lr);
  app.add_option("--ft-lr-step", o.ft_lr_step, "v2: the arms' StepLR step in epochs (factor 0.2)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1000}));
  app.add_option("--registration", o.registration,
                 "v2: the commit that registered the design (docs/study.md), 7 to 40 hex digits: recorded in "
                 "results.json and named by the report; without it the run is marked in_progress")
      ->check(CLI::Validator(
          [](std::string& v) {
            const bool hex =
                std::all_of(v.begin(), v.end(), [](unsigned char c) { return std::isxdigit(c); });
            return hex && v.size() >= 7 && v.size() <= 40
                       ? std::string()
                       : "must be a commit's hash (7 to 40 hex digits), got \"" + v + "\"";
          },
          "COMMIT"));
}

// --quick: small values for every option the command line did not set.
inline void apply_quick(const CLI::App& app, StudyOptions& o) {
  if (!o.quick) return;
  auto unset = [&](const char* name) { return app.count(name) == 0; };
  if (unset("--seeds")) o.seeds = 1;
  if (unset("--control-seeds")) o.control_seeds = 1;
  // v2 trains 1 + 3 arms x 3 rates per seed on 3 seeds: 9 photographs keep its quick run near 30 s on 1
  // thread.
  if (unset("--max-photos")) o.max_photos = o.design == "v2" ? 9 : 12;
  if (unset("--patch")) o.patch = 32;
  if (unset("--crop")) o.crop = 28;
  if (unset("--width")) o.width = 4;
  if (unset("--epochs1")) o.epochs1 = 1;
  if (unset("--epochs2")) o.epochs2 = 1;
  if (unset("--bootstrap")) o.bootstrap = 1000;
  if (o.design == "v2" && unset("--seeds")) o.seeds = v2::kRotation;  // one rotation of the tiers
  if (unset("--ft-epochs")) o.ft_epochs = 1;
}

// Study v2's registered learning-rate grid (docs/study.md): the paper's fine-tuning rate 1e-4 and half a
// decade either side; every arm tries each rate on each seed and its validation SRCC chooses.
inline const std::vector<double> kFtLrGrid = {3e-5, 1e-4, 3e-4};

// --design v2's defaults where the command line did not set them (after --quick's, which keep the grid so
// that the test suite's run chooses a rate as the registered run does).
inline void apply_design(const CLI::App& app, StudyOptions& o) {
  if (o.design != "v2") return;
  if (app.count("--ft-lr") == 0 && app.count("--ft-lr-grid") == 0) o.ft_lr_grid = kFtLrGrid;
  if (!o.quick && app.count("--seeds") == 0) o.seeds = 2 * v2::kRotation;
}

// The configuration as results.json records it: every option.
inline nlohmann::ordered_json config_json(const StudyOptions& o) {
  return {{"photos", o.photos},
          {"data", o.data},
          {"seeds", o.seeds},
          {"control_seeds", o.controls ? std::min(o.control_seeds, o.seeds) : 0},
          {"max_photos", o.max_photos},
          {"threads", o.threads},
          {"patch", o.patch},
          {"grid", o.grid},
          {"crop", o.crop},
          {"arch", o.arch},
          {"width", o.width},
          {"epochs1", o.epochs1},
          {"epochs2", o.epochs2},
          {"batch", o.batch},
          {"lr", o.lr},
          {"ratio", o.ratio},
          {"train_fraction", o.train_fraction},
          {"shares", o.shares},
          {"ensemble_twins", o.ensemble_twins},
          {"ensemble_random_fraction", o.ensemble_random_fraction},
          {"top_fraction", o.top_fraction},
          {"bootstrap", o.bootstrap},
          {"ci_level", o.ci_level},
          {"gmad_levels", o.gmad_levels},
          {"gmad_seed", o.gmad_seed},
          {"gmad_margin", o.gmad_margin},
          {"curve_eval", o.curve_eval},
          {"quick", o.quick}};
}

}  // namespace ohem_study::program
