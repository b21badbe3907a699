#pragma once
/// @file
/// What the demo and the study share besides the data (synthetic.hpp): the options of one experiment
/// (data, model, schedule), their command line, and the trainer options one run of it gets.

#include "synthetic.hpp"

#include <toolkit/command_line.hpp>
#include <toolkit/threads.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace demo {

/// The options of an experiment on the synthetic data; each program sets its own defaults before
/// `add_experiment_options` (--help shows them).
struct ExperimentOptions {
  int64_t seeds = 2, threads = 2, patch = 64, grid = 2, crop = 56, width = 16, epochs1 = 1, epochs2 = 5,
          batch = 16;
  double lr = 1e-3, ratio = ohem::MaskOptions().ratio(), train_fraction = 0.7;
  std::string arch = "resnet18";                                   ///< resnet18 | resnet50 | cnniqa
  std::string device = "cpu";                                      ///< cpu | cuda | cuda:N
  std::vector<double> shares = {1.0, 0.5, 0.25, 0.15, 0.1, 0.05};  ///< per type, distortion_names() order
};

/// Adds the experiment's options to `app`, bound to `o` (its values are the defaults shown).
inline void add_experiment_options(CLI::App& app, ExperimentOptions& o) {
  app.add_option("--seeds", o.seeds, "seeds (content splits, training mixes, initialisations)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1000}));
  ohem_examples::add_threads_option(app, o.threads, "torch threads");
  app.add_option("--device", o.device, "where the models train: cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--patch", o.patch, "patch side in pixels")
      ->capture_default_str()
      ->check(CLI::Range(16, 4096));
  app.add_option("--grid", o.grid, "patches per photograph: grid x grid")
      ->capture_default_str()
      ->check(CLI::Range(1, 16));
  app.add_option("--crop", o.crop, "training crop")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--arch", o.arch, "backbone")
      ->capture_default_str()
      ->check(CLI::IsMember(ohem_examples::backbone_names()));
  app.add_option("--width", o.width, "ResNet base width (torchvision: 64); cnniqa: its kernels (paper: 50)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--epochs1", o.epochs1, "epochs of stage 1 (backbone frozen)")->capture_default_str();
  app.add_option("--epochs2", o.epochs2, "epochs of stage 2")->capture_default_str();
  app.add_option("--batch", o.batch, "pairs per step")->capture_default_str()->check(CLI::Range(2, 4096));
  app.add_option("--lr", o.lr, "Adam learning rate")->capture_default_str();
  app.add_option("--ratio", o.ratio, "pruning ratio of the twin")->capture_default_str();
  app.add_option("--train-fraction", o.train_fraction, "share of photographs used for training")
      ->capture_default_str();
  app.add_option("--shares", o.shares, "training share kept per distortion type, comma-separated")
      ->delimiter(',')
      ->expected(static_cast<int>(distortion_names().size()))
      ->check(CLI::Range(1e-9, 1.0))
      ->capture_default_str();
}

/// Returns the trainer options of one run: BaseCNN on the patches as they are (no resize), cached,
/// seeded by `seed`, quiet, replacing an earlier run in `out`; OHEM off (the caller turns it on).
inline ohem_examples::TrainOptions train_options(const ExperimentOptions& o, const std::string& train_csv,
                                                 const std::string& test_csv, int64_t seed,
                                                 const std::string& out) {
  ohem_examples::TrainOptions t;
  t.format = "generic";
  t.csv = train_csv;
  t.test_csv = test_csv;
  t.cache = true;
  t.arch = o.arch;
  t.width = o.width;
  t.resize = 0;
  t.crop = o.crop;
  t.test_resize = 0;
  t.ohem = false;
  t.ratio = o.ratio;
  t.epochs1 = o.epochs1;
  t.epochs2 = o.epochs2;
  t.batch1 = t.batch2 = o.batch;
  t.lr = o.lr;
  t.lr_step = std::max<int64_t>(1, (o.epochs2 * 2) / 3);
  t.threads = static_cast<int>(o.threads);
  t.device = o.device;
  t.seed = static_cast<uint64_t>(seed);
  t.progress = false;
  t.quiet = true;
  t.overwrite = true;  // the program's own run directories
  t.out = out;
  return t;
}

}  // namespace demo
