// study: the evidence for OHEM on built-in data. Builds the synthetic-distortion set from a folder of
// photographs (scripts/fetch-photos.sh), trains BaseCNN pairwise without and with OHEM on N seeds (same
// data, crops and initialisation per seed), measures the mechanism (which training images the twin finds
// hard, with a random-mask and a 4-twin control), runs gMAD between the two models on held-out content
// adjudicated by the SSIM labels, and writes results.json (schema "ohem-study/1", docs/study.md), then the
// report (report.html + report.md). scripts/study.sh runs it with one command. `--design v2` runs issue
// 26's design, registered in docs/study.md ("Study v2: registered design"; study_v2.hpp, run_v2 below).
//
// Usage: study [--photos DIR] [--out DIR] [--seeds N] [--quick] [options, see --help]
#include "study.hpp"
#include "study_v2.hpp"

#include <toolkit/experiment.hpp>
#include <toolkit/pairwise_trainer.hpp>

#include "report/report.hpp"

#include <toolkit/command_line.hpp>
#include <toolkit/errors.hpp>

#include <ohem/paired.hpp>

#include <CLI/CLI.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <ctime>
#include <exception>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace ohem_examples;
using namespace ohem_study;
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
void add_study_options(CLI::App& app, StudyOptions& o) {
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
void apply_quick(const CLI::App& app, StudyOptions& o) {
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
const std::vector<double> kFtLrGrid = {3e-5, 1e-4, 3e-4};

// --design v2's defaults where the command line did not set them (after --quick's, which keep the grid so
// that the test suite's run chooses a rate as the registered run does).
void apply_design(const CLI::App& app, StudyOptions& o) {
  if (o.design != "v2") return;
  if (app.count("--ft-lr") == 0 && app.count("--ft-lr-grid") == 0) o.ft_lr_grid = kFtLrGrid;
  if (!o.quick && app.count("--seeds") == 0) o.seeds = 2 * v2::kRotation;
}

// The configuration as results.json records it: every option.
nlohmann::ordered_json config_json(const StudyOptions& o) {
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

// One method of training: the two compared, and the mechanism's controls.
struct Variant {
  std::string name, label;
  bool ohem = false;
  int64_t twins = 1;
  ohem::MaskCriterion criterion = ohem::MaskCriterion::GlobalMagnitude;
  double random_fraction = 0.0;
  bool control = false;  // runs on the first --control-seeds seeds only
};

std::vector<Variant> variants(const StudyOptions& o) {
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

bool runs_on(const StudyOptions& o, const Variant& v, int64_t seed) {
  return !v.control || seed < o.control_seeds;
}

// The split of one seed: content-disjoint, long-tailed training mix; CSVs under OUT/splits.
struct SeedData {
  std::vector<int64_t> train, test;
  std::string train_csv, test_csv;
};

SeedData seed_data(const Dataset& all, const StudyOptions& o, int64_t seed) {
  SeedData d;
  const Split by_content = split_by_group(all, o.train_fraction, static_cast<uint64_t>(seed));
  d.train = demo::long_tailed(all, by_content.train, o.shares, static_cast<uint64_t>(seed));
  d.test = by_content.test;
  const std::string dir = (fs::path(o.out) / "splits").string();
  d.train_csv = demo::write_split_csv(all, d.train, dir, fmt::format("train_{}.csv", seed));
  d.test_csv = demo::write_split_csv(all, d.test, dir, fmt::format("test_{}.csv", seed));
  return d;
}

TrainOptions train_options(const StudyOptions& o, const SeedData& d, const Variant& v, int64_t seed) {
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
int64_t run_cost(const StudyOptions& o, const Variant& v, int64_t train_images) {
  const int64_t steps = (o.epochs1 + o.epochs2) * std::max<int64_t>(1, train_images / o.batch);
  return steps * (v.ohem ? 1 + v.twins : 1);
}

// Scores of the full model on the images `indices` of `data` (eval mode, native size).
std::vector<double> predict_samples(train_pairwise::Trainer& t, const Dataset& data,
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
std::vector<double> predict(train_pairwise::Trainer& t, const std::vector<int64_t>& indices) {
  return predict_samples(t, t.data(), indices);
}

// Trains `method` on one seed with the trainer options `opts` (its CSVs: d's), advancing `progress` by
// the run's steps. `after` (if any) sees the trained trainer before it goes; the final checkpoint is
// removed unless `keep_checkpoint` (then the caller removes it).
Run train_with(const TrainOptions& opts, const SeedData& d, const std::string& method, int64_t seed,
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

// Trains one variant on one seed, advancing `progress` by the run's steps.
Run train_run(const StudyOptions& o, const SeedData& d, const Variant& v, int64_t seed, Progress& progress,
              int64_t& done_units) {
  return train_with(train_options(o, d, v, seed), d, v.name, seed, progress, done_units);
}

nlohmann::ordered_json metrics_json(const EvalResult& r) {
  nlohmann::ordered_json m;
  m["overall"] = {{"srcc", number(r.overall.srcc)}, {"plcc", number(r.overall.plcc)}, {"n", r.overall.count}};
  for (const auto& t : demo::distortion_names()) {
    auto it = r.by_type.find(t);
    if (it == r.by_type.end()) continue;
    m[t] = {{"srcc", number(it->second.srcc)}, {"plcc", number(it->second.plcc)}, {"n", it->second.count}};
  }
  return m;
}

nlohmann::ordered_json run_json(const Run& r) {
  nlohmann::ordered_json curve = nlohmann::ordered_json::array();
  const bool ohem = r.method != "baseline";
  for (size_t e = 0; e < r.curve.size(); ++e) {
    const EpochStats& s = r.curve[e];
    curve.push_back({{"epoch", static_cast<int64_t>(e) + 1},
                     {"stage", s.stage},
                     {"task_loss", number(s.task_full)},
                     {"twin_task_loss", number(s.task_twin)},
                     {"consistency", number(s.consistency)},
                     {"mean_hardness", number(ohem ? s.mean_hardness : NAN)},
                     {"test_srcc", number(s.test_srcc)}});
  }
  return {{"seed", r.seed},
          {"method", r.method},
          {"seconds", r.seconds},
          {"steps", r.steps},
          {"metrics", metrics_json(r.test)},
          {"curve", curve}};
}

// The metric `metric` of group `group` ("overall" or a type) of a run (NaN if absent).
double metric_of(const Run& r, const std::string& group, const std::string& metric) {
  const Correlations* c = &r.test.overall;
  if (group != "overall") {
    auto it = r.test.by_type.find(group);
    if (it == r.test.by_type.end()) return NAN;
    c = &it->second;
  }
  return metric == "srcc" ? c->srcc : c->plcc;
}

nlohmann::ordered_json comparison_json(const StudyOptions& o, const std::vector<Run>& base,
                                       const std::vector<Run>& ohem_runs) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  std::vector<std::string> groups = {"overall"};
  for (const auto& t : demo::distortion_names()) groups.push_back(t);
  for (const auto& g : groups) {
    for (const char* metric : {"srcc", "plcc"}) {
      std::vector<double> b, h;
      for (size_t s = 0; s < base.size(); ++s) {
        b.push_back(metric_of(base[s], g, metric));
        h.push_back(metric_of(ohem_runs[s], g, metric));
      }
      const PairedDifference d = paired_difference(b, h, o.bootstrap, o.ci_level);
      out.push_back({{"group", g},
                     {"metric", metric},
                     {"baseline_mean", number(d.baseline_mean)},
                     {"baseline_std", number(d.baseline_std)},
                     {"ohem_mean", number(d.ohem_mean)},
                     {"ohem_std", number(d.ohem_std)},
                     {"diff_mean", number(d.diff_mean)},
                     {"ci_low", number(d.ci_low)},
                     {"ci_high", number(d.ci_high)},
                     {"ci_level", d.ci_level},
                     {"wins", d.wins},
                     {"seeds", d.seeds}});
    }
  }
  return out;
}

nlohmann::ordered_json mechanism_json(const StudyOptions& o, const Dataset& all,
                                      const std::vector<Variant>& vs, const std::vector<Run>& runs) {
  nlohmann::ordered_json variants_out = nlohmann::ordered_json::array();
  const std::vector<std::string>& types = demo::distortion_names();
  for (const auto& v : vs) {
    if (!v.ohem) continue;
    std::vector<int64_t> seeds;
    std::vector<double> per_seed;
    std::map<std::string, std::vector<double>> train_share, hardest_share, mean_h;
    for (const auto& r : runs) {
      if (r.method != v.name) continue;
      const Mechanism m = mechanism(all, r, types, o.top_fraction);
      seeds.push_back(r.seed);
      per_seed.push_back(m.hardness_error_srcc);
      for (const auto& t : m.by_type) {
        train_share[t.type].push_back(t.train_share);
        hardest_share[t.type].push_back(t.hardest_share);
        mean_h[t.type].push_back(t.mean_hardness);
      }
    }
    nlohmann::ordered_json by_type = nlohmann::ordered_json::array();
    for (const auto& t : types) {
      const double ts = mean(train_share[t]), hs = mean(hardest_share[t]);
      by_type.push_back({{"type", t},
                         {"train_share", number(ts)},
                         {"hardest_share", number(hs)},
                         {"enrichment", number(ts > 0 ? hs / ts : NAN)},
                         {"mean_hardness", number(mean(mean_h[t]))}});
    }
    nlohmann::ordered_json ps = nlohmann::ordered_json::array();
    for (double x : per_seed) ps.push_back(number(x));
    variants_out.push_back({{"name", v.name == "ohem" ? "magnitude" : v.name},  // the method's own twin
                            {"label", v.label},
                            {"twins", v.twins},
                            {"criterion", ohem::to_string(v.criterion)},
                            {"random_fraction", v.random_fraction},
                            {"seeds", seeds},
                            {"by_type", by_type},
                            {"hardness_error_srcc", {{"mean", number(mean(per_seed))}, {"per_seed", ps}}}});
  }
  return {{"top_fraction", o.top_fraction}, {"variants", variants_out}};
}

// The type-and-level reference: a predictor that knows each test image's distortion type and level (1..5)
// and nothing about its content; it scores an image with the mean training label of its (type, level)
// (of its level over all types where the training mix has none of that type and level, else of all
// training images). It shows how far recognising the distortion alone goes; the SSIM labels also depend
// on the content (a flat patch keeps a high SSIM under blur). Mean over the seeds' test sets.
nlohmann::ordered_json reference_json(const Dataset& all, const std::vector<SeedData>& seeds) {
  std::map<std::string, std::vector<double>> srcc, plcc;  // group → one value per seed
  for (const auto& d : seeds) {
    std::map<std::pair<std::string, int>, std::vector<double>> by_type_level;
    std::map<int, std::vector<double>> by_level;
    std::vector<double> every;
    for (int64_t i : d.train) {
      const Sample& s = all.samples[static_cast<size_t>(i)];
      const int level = demo::distortion_level(s.path);
      by_type_level[{s.type, level}].push_back(s.mos);
      by_level[level].push_back(s.mos);
      every.push_back(s.mos);
    }
    std::vector<double> pred, mos;
    std::vector<std::string> types;
    for (int64_t i : d.test) {
      const Sample& s = all.samples[static_cast<size_t>(i)];
      const int level = demo::distortion_level(s.path);
      const auto tl = by_type_level.find({s.type, level});
      const auto l = by_level.find(level);
      pred.push_back(tl != by_type_level.end() ? mean(tl->second)
                     : l != by_level.end()     ? mean(l->second)
                                               : mean(every));
      mos.push_back(s.mos);
      types.push_back(s.type);
    }
    const Correlations o = correlations(pred, mos);
    srcc["overall"].push_back(o.srcc);
    plcc["overall"].push_back(o.plcc);
    for (const auto& [t, c] : correlations_by(pred, mos, types)) {
      srcc[t].push_back(c.srcc);
      plcc[t].push_back(c.plcc);
    }
  }
  nlohmann::ordered_json m;
  std::vector<std::string> groups = {"overall"};
  for (const auto& t : demo::distortion_names()) groups.push_back(t);
  for (const auto& g : groups)
    if (srcc.count(g)) m[g] = {{"srcc", number(mean(srcc[g]))}, {"plcc", number(mean(plcc[g]))}};
  return {{"name", "type_level"},
          {"label", "knows each image's distortion type and level, not its content"},
          {"seeds", static_cast<int64_t>(seeds.size())},
          {"metrics", m}};
}

// gMAD between the baseline and the OHEM model of one seed, both directions; copies each pair's images
// (native size) to OUT/gmad/.
nlohmann::ordered_json gmad_json(const StudyOptions& o, const Dataset& all, const Run& base, const Run& oh) {
  TORCH_CHECK(base.test.indices == oh.test.indices, "study: the two models were tested on different images");
  const fs::path dir = fs::path(o.out) / "gmad";
  fs::create_directories(dir);
  nlohmann::ordered_json pairs = nlohmann::ordered_json::array(), summary = nlohmann::ordered_json::array();
  int64_t k = 0;
  const std::vector<std::pair<const Run*, const Run*>> roles = {{&base, &oh},
                                                                {&oh, &base}};  // defender first
  for (const auto& [def, att] : roles) {
    const std::vector<GmadCase> cases =
        adjudicated_gmad(all, def->test.indices, def->test.predictions, att->test.predictions, def->method,
                         att->method, o.gmad_levels, o.gmad_margin);
    int64_t won = 0;
    for (const auto& c : cases) {
      nlohmann::ordered_json images = nlohmann::ordered_json::array();
      for (int i = 0; i < 2; ++i) {
        const Sample& s = all.samples[static_cast<size_t>(c.image[i])];
        const std::string file = fmt::format("p{}_{}.png", k, i == 0 ? "a" : "b");
        fs::copy_file(s.path, dir / file, fs::copy_options::overwrite_existing);
        images.push_back(
            {{"path", "gmad/" + file},
             {"name", fs::path(s.path).stem().string()},
             {"type", s.type},
             {"label", s.mos},
             {"scores", {{c.defender, c.defender_score[i]}, {c.attacker, c.attacker_score[i]}}}});
      }
      pairs.push_back({{"attacker", c.attacker},
                       {"defender", c.defender},
                       {"level", c.level},
                       {"defender_level_score", c.defender_level_score},
                       {"images", images},
                       {"attacker_prefers", c.attacker_prefers},
                       {"label_prefers", c.label_prefers},
                       {"attack_succeeded", c.attack_succeeded}});
      won += c.attack_succeeded ? 1 : 0;
      ++k;
    }
    summary.push_back({{"attacker", att->method},
                       {"defender", def->method},
                       {"succeeded", won},
                       {"pairs", static_cast<int64_t>(cases.size())}});
  }
  return {{"seed", base.seed},
          {"levels", o.gmad_levels},
          {"margin", o.gmad_margin},
          {"pairs", pairs},
          {"summary", summary}};
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::string compiler() {
#if defined(__clang__)
  return fmt::format("Clang {}.{}.{}", __clang_major__, __clang_minor__, __clang_patchlevel__);
#elif defined(__GNUC__)
  return fmt::format("GCC {}.{}.{}", __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__);
#else
  return "unknown";
#endif
}

// results.json's "environment": the LibTorch and compiler versions, the threads.
nlohmann::ordered_json environment_json() {
  return {{"libtorch", TORCH_VERSION},
          {"compiler", compiler()},
          {"threads", torch::get_num_threads()},
          {"hardware_threads", std::thread::hardware_concurrency()}};
}

// Takes --out: one study per directory, replaced only with --overwrite (then its files are removed).
OutputLock prepare_out(const StudyOptions& o) {
  OutputLock lock(o.out);
  const std::vector<std::string> ours = {"results.json", "report.html", "report.md",
                                         "gmad",         "runs",        "splits"};
  std::vector<std::string> held;
  for (const auto& f : ours)
    if (fs::exists(fs::path(o.out) / f)) held.push_back(f);
  if (!held.empty()) {
    std::string list;
    for (const auto& f : held) list += (list.empty() ? "" : ", ") + f;
    TORCH_CHECK(o.overwrite, "output directory \"", o.out, "\" already holds a study (", list,
                "); pass --overwrite to replace it, or another --out");
    for (const auto& f : held) fs::remove_all(fs::path(o.out) / f);
  }
  return lock;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

void print_summary(const nlohmann::ordered_json& j) {
  std::cout << fmt::format("\n{:<14} {:>6} {:>15} {:>15} {:>8} {:>19} {:>5}\n", "SRCC", "", "baseline",
                           "OHEM", "diff", "CI", "wins");
  for (const auto& c : j["comparison"]) {
    if (c["metric"] != "srcc") continue;
    auto f = [](const nlohmann::json& x) { return x.is_null() ? NAN : x.get<double>(); };
    std::cout << fmt::format(
        "{:<21} {:>7.3f}±{:<6.3f} {:>7.3f}±{:<6.3f} {:>+8.3f} [{:+.3f}, {:+.3f}] {:>2}/{}\n",
        c["group"].get<std::string>(), f(c["baseline_mean"]), f(c["baseline_std"]), f(c["ohem_mean"]),
        f(c["ohem_std"]), f(c["diff_mean"]), f(c["ci_low"]), f(c["ci_high"]), c["wins"].get<int64_t>(),
        c["seeds"].get<int64_t>());
  }
  if (j.contains("reference")) {
    const auto& r = j["reference"]["metrics"]["overall"]["srcc"];
    std::cout << fmt::format("{:<21} {}  (reference: {})\n", "type+level only",
                             r.is_null() ? "-" : fmt::format("{:7.3f}", r.get<double>()),
                             j["reference"]["label"].get<std::string>());
  }
  std::cout << "\nenrichment among the hardest training images (hardest share / training share):\n";
  for (const auto& v : j["mechanism"]["variants"]) {
    std::string line = fmt::format("  {:<10}", v["name"].get<std::string>());
    for (const auto& t : v["by_type"])
      line +=
          fmt::format(" {}={}", t["type"].get<std::string>(),
                      t["enrichment"].is_null() ? "-" : fmt::format("{:.2f}", t["enrichment"].get<double>()));
    const auto& h = v["hardness_error_srcc"]["mean"];
    line +=
        fmt::format("  SRCC(hardness, error)={}", h.is_null() ? "-" : fmt::format("{:.3f}", h.get<double>()));
    std::cout << line << "\n";
  }
  std::cout << "gMAD (attacks that the SSIM label confirms):\n";
  for (const auto& s : j["gmad"]["summary"])
    std::cout << fmt::format("  {} attacking {}: {} of {}\n", s["attacker"].get<std::string>(),
                             s["defender"].get<std::string>(), s["succeeded"].get<int64_t>(),
                             s["pairs"].get<int64_t>());
}

// The photographs (--photos, --max-photos) and the synthetic dataset built from them in --data; sets the
// torch threads and prints the opening lines. `name` is the program's name in them.
Dataset study_dataset(const StudyOptions& o, const std::string& name, std::vector<std::string>& photos) {
  torch::set_num_threads(static_cast<int>(o.threads));
  photos = demo::list_photos(o.photos);
  if (o.max_photos > 0 && static_cast<int64_t>(photos.size()) > o.max_photos)
    photos.resize(static_cast<size_t>(o.max_photos));
  std::cout << fmt::format("{}{}: {} photographs from {}, {} seed(s), threads: {} (of {} hardware)\n", name,
                           o.quick ? " (quick)" : "", photos.size(), o.photos, o.seeds,
                           torch::get_num_threads(), std::thread::hardware_concurrency())
            << "building the dataset in " << o.data << " " << std::flush;
  const std::string csv =
      demo::build_synthetic(photos, o.data, demo::SyntheticOptions{o.patch, o.grid, 0}, o.progress);
  if (!o.progress) std::cout << "\n";
  return read_generic_csv(csv);
}

int run_v2(StudyOptions o);

int run(StudyOptions o) {
  if (o.design == "v2") return run_v2(std::move(o));
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
  const std::string results = (fs::path(o.out) / "results.json").string();
  atomic_write_text(results, j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n");
  print_summary(j);
  std::cout << fmt::format("\nwrote {} ({:.0f} s in all: dataset {:.0f} s, training {:.0f} s)\n", results,
                           seconds_since(t0), dataset_seconds, training_seconds);
  ohem_study::write_report(j, o.out);
  std::cout << "report: " << (fs::path(o.out) / "report.html").string() << "\n";
  return 0;
}

// ---- Study v2 (issue 26; docs/study.md "Study v2: registered design") ----

// The three arms, fine-tuned from the same W on the same data, crops and order (the same trainer seed).
struct Arm {
  std::string name, label;
  bool ohem = false;
  ohem::MaskCriterion criterion = ohem::MaskCriterion::GlobalMagnitude;
};

const std::vector<Arm>& arms() {
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
std::vector<double> ft_lrs(const StudyOptions& o) {
  return o.ft_lr_grid.empty() ? std::vector<double>{o.ft_lr} : o.ft_lr_grid;
}

// W: the baseline from scratch (v1's schedule: --epochs1, --epochs2, --lr) on the pool photographs.
TrainOptions start_options(const StudyOptions& o, const SeedData& d, int64_t seed) {
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
TrainOptions arm_options(const StudyOptions& o, const SeedData& d, const Arm& a, int64_t seed,
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
EvalResult evaluate_on(const Dataset& all, const std::vector<int64_t>& indices,
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
  r.overall = correlations(pred, mos);
  r.by_type = correlations_by(pred, mos, types);
  return r;
}

// A paired endpoint over seeds: the per-seed differences, their mean, the paired t-interval and the exact
// sign-flip p-value (ohem/paired.hpp). Seeds whose difference is not finite are listed as null and left
// out; fewer than 2 left give null statistics.
nlohmann::ordered_json endpoint_json(const std::string& name, const std::string& definition,
                                     const std::vector<double>& per_seed, double level) {
  std::vector<double> d;
  nlohmann::ordered_json ps = nlohmann::ordered_json::array();
  for (double x : per_seed) {
    ps.push_back(number(x));
    if (std::isfinite(x)) d.push_back(x);
  }
  nlohmann::ordered_json e = {
      {"name", name},
      {"definition", definition},
      {"per_seed", ps},
      {"n", d.size()},
      {"mean", number(mean(d))},
      {"sd", nullptr},
      {"confidence", level},
      {"ci_low", nullptr},
      {"ci_high", nullptr},
      {"t_p_value", nullptr},
      {"sign_flip_p_value", nullptr},
      {"positive", static_cast<int64_t>(std::count_if(d.begin(), d.end(), [](double x) { return x > 0; }))}};
  if (d.size() < 2) {
    e["note"] = "the interval and the tests need at least 2 seeds with a finite difference";
    return e;
  }
  const ohem::PairedTTest t = ohem::paired_t_test(d, ohem::PairedTTestOptions().confidence(level));
  const ohem::SignFlipTest f = ohem::sign_flip_test(d);
  e["sd"] = number(t.sd);
  e["ci_low"] = number(t.lower);
  e["ci_high"] = number(t.upper);
  e["t_p_value"] = number(t.p_value);
  e["sign_flip_p_value"] = number(f.p_value);
  return e;
}

// SRCC of `group` ("overall" or a type) in `r` (NaN if absent).
double srcc_of(const EvalResult& r, const std::string& group) {
  if (group == "overall") return r.overall.srcc;
  const auto it = r.by_type.find(group);
  return it == r.by_type.end() ? NAN : it->second.srcc;
}

// The registered endpoints (issue 26 §3): primary Δ overall SRCC (ohem − baseline); secondary Δ on the
// seed's tail types minus Δ on its head types (each the mean over the tier's two types), and ohem − random.
nlohmann::ordered_json endpoints_json(const StudyOptions& o, const std::vector<SeedV2>& seeds) {
  std::vector<double> primary, tail_head, specificity;
  for (size_t s = 0; s < seeds.size(); ++s) {
    const auto& runs = seeds[s].runs;
    const EvalResult &a = runs.at("baseline").test, &b = runs.at("ohem").test, &c = runs.at("random").test;
    primary.push_back(srcc_of(b, "overall") - srcc_of(a, "overall"));
    specificity.push_back(srcc_of(b, "overall") - srcc_of(c, "overall"));
    auto delta = [&](v2::Tier tier) {
      std::vector<double> v;
      for (const auto& t : v2::types_of(static_cast<int64_t>(s), tier))
        v.push_back(srcc_of(b, t) - srcc_of(a, t));
      return mean(v);
    };
    tail_head.push_back(delta(v2::Tier::Tail) - delta(v2::Tier::Head));
  }
  nlohmann::ordered_json first =
      endpoint_json("delta_overall_srcc", "overall test SRCC, ohem − baseline", primary, o.ci_level);
  // The smallest true Δ the paired t-test (two-sided 5 %) detects with 80 % power at the observed spread.
  first["minimum_detectable_effect"] =
      first["sd"].is_null()
          ? nlohmann::ordered_json()
          : number(ohem::minimum_detectable_effect(first["n"].get<int64_t>(), first["sd"].get<double>()));
  // Per type: Δ SRCC (ohem − baseline), its paired t-test, and Holm's adjustment over the six types.
  nlohmann::ordered_json per_type = nlohmann::ordered_json::array();
  std::vector<double> p;
  for (const auto& t : demo::distortion_names()) {
    std::vector<double> d;
    for (const auto& seed : seeds)
      d.push_back(srcc_of(seed.runs.at("ohem").test, t) - srcc_of(seed.runs.at("baseline").test, t));
    per_type.push_back(
        endpoint_json("delta_srcc_" + t, "test SRCC on " + t + ", ohem − baseline", d, o.ci_level));
    if (per_type.back()["t_p_value"].is_number()) p.push_back(per_type.back()["t_p_value"].get<double>());
  }
  const std::vector<double> holm = p.size() == per_type.size() ? ohem::holm_adjust(p) : std::vector<double>{};
  for (size_t k = 0; k < per_type.size(); ++k)
    per_type[k]["holm_p_value"] = k < holm.size() ? number(holm[k]) : nlohmann::ordered_json();
  return {{"primary", first},
          {"per_type", per_type},
          {"secondary",
           {endpoint_json("delta_tail_minus_head",
                          "Δ SRCC (ohem − baseline) on the seed's tail types minus on its head types",
                          tail_head, o.ci_level),
            endpoint_json("ohem_minus_random", "overall test SRCC, ohem − random (specificity)", specificity,
                          o.ci_level)}}};
}

// The mechanism per seed (issue 26 §3), for the magnitude twin (`ohem`) and the random control (`random`):
// the within-type rank correlation of an image's hardness with its own error (0: none), and the
// enrichment of the seed's tail-type images among the --top-fraction hardest training images (hardest
// share / training share − 1; 0: none), each summarised over seeds like an endpoint.
nlohmann::ordered_json mechanism_v2_json(const StudyOptions& o, const Dataset& all,
                                         const std::vector<SeedV2>& seeds) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const char* arm : {"ohem", "random"}) {
    std::vector<double> within, enrichment;
    for (size_t s = 0; s < seeds.size(); ++s) {
      const Run& r = seeds[s].runs.at(arm);
      const std::vector<std::string> tail = v2::types_of(static_cast<int64_t>(s), v2::Tier::Tail);
      double train = 0, hardest = 0;
      for (const auto& t : mechanism(all, r, demo::distortion_names(), o.top_fraction).by_type)
        if (std::find(tail.begin(), tail.end(), t.type) != tail.end()) {
          train += t.train_share;
          hardest += t.hardest_share;
        }
      enrichment.push_back(train > 0 ? hardest / train - 1.0 : NAN);
      within.push_back(within_type_hardness_error_srcc(all, r));
    }
    out.push_back({{"arm", arm},
                   {"within_type_hardness_error_srcc",
                    endpoint_json("within_type_hardness_error_srcc",
                                  "Spearman of hardness and own error within each type, mean over types",
                                  within, o.ci_level)},
                   {"tail_enrichment_minus_1",
                    endpoint_json("tail_enrichment_minus_1",
                                  "tail-type share of the hardest training images / their training share − 1",
                                  enrichment, o.ci_level)}});
  }
  return {{"top_fraction", o.top_fraction}, {"arms", out}};
}

// One seed's design in results.json: its tiers, photographs and image counts.
nlohmann::ordered_json seed_json(const SeedV2& d, const Dataset& all, int64_t seed) {
  nlohmann::ordered_json tiers = nlohmann::ordered_json::object();
  for (v2::Tier t : {v2::Tier::Head, v2::Tier::Mid, v2::Tier::Tail})
    tiers[v2::tier_name(t)] = v2::types_of(seed, t);
  nlohmann::ordered_json by_type = nlohmann::ordered_json::object();
  for (const auto& t : demo::distortion_names()) by_type[t] = 0;
  for (int64_t i : d.split.train_images)
    by_type[all.samples[static_cast<size_t>(i)].type] =
        by_type[all.samples[static_cast<size_t>(i)].type].get<int64_t>() + 1;
  return {{"seed", seed},
          {"tiers", tiers},
          {"photos",
           {{"pool", d.split.pool}, {"train", d.split.train}, {"val", d.split.val}, {"test", d.split.test}}},
          {"images",
           {{"pool", d.split.pool_images.size()},
            {"train", d.split.train_images.size()},
            {"val", d.split.val_images.size()},
            {"test", d.split.test_images.size()}}},
          {"train_images_by_type", by_type}};
}

int run_v2(StudyOptions o) {
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
  const std::string results = (fs::path(o.out) / "results.json").string();
  atomic_write_text(results, j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n");
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
  std::cout << fmt::format("wrote {} ({:.0f} s in all: dataset {:.0f} s, training {:.0f} s)\n", results,
                           seconds_since(t0), dataset_seconds, training_seconds);
  ohem_study::write_report(j, o.out);
  std::cout << "report: " << (fs::path(o.out) / "report.html").string() << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  ohem_examples::tune_heap_at_start(argc, argv);  // printed before the threads line (docs/benchmarks.md)
  CLI::App app{"The OHEM study: baseline vs OHEM on N seeds, the mechanism, gMAD; writes results.json.",
               "study"};
  StudyOptions o;
  add_study_options(app, o);
  CLI11_PARSE(app, argc, argv);
  apply_quick(app, o);
  apply_design(app, o);
  return ohem_examples::run_reporting_errors([&] { return run(o); });
}
