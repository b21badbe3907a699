// demo: builds a synthetic-distortion IQA set from real photographs (public-domain/CC0 samples of
// scikit-image, see docs/datasets.md), trains the paper's BaseCNN pairwise with and without OHEM on a
// deliberately long-tailed mix of distortion types, and prints SRCC/PLCC on held-out content, overall
// and per distortion type, mean ± std over seeds. examples/demo/demo.sh fetches the photographs.
//
// Usage: demo --photos DIR [--work DIR] [--seeds N] [--threads T] [options, see --help]
#include <toolkit/experiment.hpp>

#include <toolkit/pairwise_trainer.hpp>

#include <toolkit/command_line.hpp>
#include <toolkit/errors.hpp>

#include <CLI/CLI.hpp>

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <exception>
#include <iostream>
#include <map>
#include <string>
#include <vector>

namespace {

using namespace ohem_examples;

struct DemoOptions : demo::ExperimentOptions {
  // --threads: default_threads() (toolkit/threads.hpp), set where the option is added
  std::string photos, work = "build/demo-cache/data";
  bool progress = false;
};

// The command line (CLI11); --help lists every option with its default.
void add_demo_options(CLI::App& app, DemoOptions& o) {
  app.add_option("--photos", o.photos,
                 "folder with the scikit-image sample photographs (demo.sh extracts them)")
      ->required()
      ->check(CLI::ExistingDirectory);
  app.add_option("--work", o.work, "where the dataset and runs go")->capture_default_str();
  demo::add_experiment_options(app, o);
  app.add_option("--progress", o.progress, "progress bars")->type_name("on|off")->default_str("off");
}

struct MeanStd {
  std::vector<double> v;
  std::string str() const {
    if (v.empty()) return "-";
    double m = 0, s = 0;
    for (double x : v) m += x;
    m /= static_cast<double>(v.size());
    for (double x : v) s += (x - m) * (x - m);
    s = v.size() > 1 ? std::sqrt(s / static_cast<double>(v.size() - 1)) : 0.0;
    return v.size() > 1 ? fmt::format("{:.3f}±{:.3f}", m, s) : fmt::format("{:.3f}", m);
  }
  double mean() const {
    double m = 0;
    for (double x : v) m += x;
    return v.empty() ? NAN : m / static_cast<double>(v.size());
  }
};

int run(const DemoOptions& o) {
  TORCH_CHECK(o.crop <= o.patch, "demo: --crop (", o.crop, ") must not exceed --patch (", o.patch, ")");
  const auto t0 = std::chrono::steady_clock::now();
  torch::set_num_threads(static_cast<int>(o.threads));
  std::cout << "ohem demo: synthetic distortions of " << demo::photo_names().size()
            << " public-domain/CC0 photographs, BaseCNN (ResNet-18 width " << o.width
            << ") on pairs, baseline vs OHEM\n"
            << "threads: " << torch::get_num_threads() << "\nbuilding the dataset in " << o.work << " ";
  const std::string csv = demo::build_synthetic(demo::skimage_photos(o.photos), o.work,
                                                demo::SyntheticOptions{o.patch, o.grid, 0});
  const Dataset all = read_generic_csv(csv);
  std::cout
      << "dataset: " << all.size() << " images (" << demo::distortion_names().size()
      << " distortion types x 5 levels x 4 patches per photograph), label = SSIM vs the pristine patch\n";

  // [method][type or "overall"] -> SRCC / PLCC over seeds
  std::map<std::string, MeanStd> srcc[2], plcc[2];
  std::map<std::string, int64_t> train_count, test_count;
  double seconds[2] = {0, 0};
  for (int64_t seed = 0; seed < o.seeds; ++seed) {
    const Split by_content = split_by_group(all, o.train_fraction, static_cast<uint64_t>(seed));
    // Long-tailed training mix: keep a seeded share of each type's training images.
    const std::vector<int64_t> train =
        demo::long_tailed(all, by_content.train, o.shares, static_cast<uint64_t>(seed));
    if (seed == 0) {
      for (int64_t i : train) ++train_count[all.samples[static_cast<size_t>(i)].type];
      for (int64_t i : by_content.test) ++test_count[all.samples[static_cast<size_t>(i)].type];
    }
    const std::string train_csv =
        demo::write_split_csv(all, train, o.work, fmt::format("train_{}.csv", seed));
    const std::string test_csv =
        demo::write_split_csv(all, by_content.test, o.work, fmt::format("test_{}.csv", seed));
    for (int method = 0; method < 2; ++method) {
      TrainOptions t = demo::train_options(
          o, train_csv, test_csv, seed,
          (std::filesystem::path(o.work) / fmt::format("runs/seed{}_{}", seed, method ? "ohem" : "baseline"))
              .string());
      t.ohem = method == 1;
      t.eval_every_epoch = false;
      t.progress = o.progress;
      const auto s0 = std::chrono::steady_clock::now();
      train_pairwise::Trainer trainer(t);
      const EvalResult r = trainer.train();
      const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count();
      seconds[method] += sec;
      srcc[method]["overall"].v.push_back(r.overall.srcc);
      plcc[method]["overall"].v.push_back(r.overall.plcc);
      for (const auto& [type, c] : r.by_type) {
        srcc[method][type].v.push_back(c.srcc);
        plcc[method][type].v.push_back(c.plcc);
      }
      std::cout << fmt::format("seed {} {:<8} {:4d} steps {:6.1f}s  test SRCC {:.3f} PLCC {:.3f}\n", seed,
                               method ? "OHEM" : "baseline", trainer.global_step(), sec, r.overall.srcc,
                               r.overall.plcc)
                << std::flush;
    }
  }

  std::string table =
      fmt::format("\nHeld-out content: SRCC / PLCC (mean ± std over {} seed{}), BaseCNN trained on pairs\n",
                  o.seeds, o.seeds > 1 ? "s" : "");
  table += fmt::format("{:<14} {:>6} {:>5}  {:>12} {:>12}  {:>12} {:>12}  {:>7}\n", "distortion", "train",
                       "test", "base SRCC", "base PLCC", "OHEM SRCC", "OHEM PLCC", "ΔSRCC");
  std::vector<std::string> rows = demo::distortion_names();
  rows.push_back("overall");
  for (const auto& type : rows) {
    const bool overall = type == "overall";
    int64_t tr = 0, te = 0;
    if (overall) {
      for (auto& [k, v] : train_count) tr += v;
      for (auto& [k, v] : test_count) te += v;
    } else {
      tr = train_count[type];
      te = test_count[type];
    }
    table += fmt::format("{:<14} {:>6} {:>5}  {:>12} {:>12}  {:>12} {:>12}  {:>+7.3f}\n", type, tr, te,
                         srcc[0][type].str(), plcc[0][type].str(), srcc[1][type].str(), plcc[1][type].str(),
                         srcc[1][type].mean() - srcc[0][type].mean());
  }
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  table += fmt::format(
      "training time: baseline {:.0f}s, OHEM {:.0f}s (all seeds); total {:.0f}s on {} thread(s)\n",
      seconds[0], seconds[1], total, torch::get_num_threads());
  std::cout << table;
  atomic_write_text((std::filesystem::path(o.work) / "results.txt").string(), table,
                    AtomicWriteOptions().create_directories(true));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  ohem_examples::tune_heap_at_start(argc, argv);  // printed before the threads line (docs/benchmarks.md)
  CLI::App app{"Trains BaseCNN with and without OHEM on synthetic distortions of real photographs.", "demo"};
  DemoOptions o;
  add_demo_options(app, o);
  CLI11_PARSE(app, argc, argv);
  return ohem_examples::run_reporting_errors([&] { return run(o); });
}
