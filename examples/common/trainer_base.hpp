#pragma once
/// @file
/// What both example trainers share: options and their command line, data (readers, split, image
/// cache, seeded augmentation), the two-stage schedule with the recipe's optimiser, evaluation,
/// logging, hardness export and atomic checkpoints with exact resume. Each trainer (train_pairwise,
/// train_mos) derives from `TrainerBase` and supplies its model and its training step, where the few
/// OHEM lines live.

#include "backbones.hpp"
#include "datasets.hpp"
#include "evaluate.hpp"
#include "image.hpp"
#include "io.hpp"
#include "transforms.hpp"

#include <ohem/hardness.hpp>
#include <ohem/self_competitor.hpp>

#include <torch/torch.h>

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace ohem_examples {

/// Options of the example trainers (command-line flags in brackets; `--help` lists them).
/// Defaults are the paper's public recipe where it has one.
struct TrainOptions {
  // Data
  std::string format = "generic";  ///< [--format] koniq10k | kadid10k | live_challenge | spaq | generic
  std::string csv;                 ///< [--csv] metadata file
  std::string images;              ///< [--images] image directory (generic: defaults to the CSV's directory)
  std::string test_csv;            ///< [--test-csv] a separate test set (then all of --csv trains)
  std::string test_format;         ///< [--test-format] its format (default: --format)
  std::string test_images;         ///< [--test-images] its image directory
  std::string split = "auto";      ///< [--split] image | group | auto (group when images share a reference)
  double train_fraction = 0.8;     ///< [--train-fraction] share of images (or groups) used for training
  uint64_t split_seed = 0;         ///< [--split-seed] seed of the split (the paper: 10 random splits)
  bool skip_bad_rows = false;      ///< [--skip-bad-rows] skip malformed rows / missing images with a warning
  bool cache = false;              ///< [--cache] keep decoded, resized images in memory
  std::string label = "binary";    ///< [--label] pairwise labels: binary (official code) | thurstone (UNIQUE)
  // Model
  std::string arch = "resnet18";  ///< [--arch] resnet18 | resnet50
  int64_t width = 64;             ///< [--width] backbone base width (64 = torchvision)
  std::string pretrained;         ///< [--pretrained] TorchScript file with torchvision weights
  // Transforms
  int64_t resize = 512;       ///< [--resize] training short side
  int64_t crop = 384;         ///< [--crop] training crop
  int64_t test_resize = 768;  ///< [--test-resize] test short side
  int64_t test_crop = 0;      ///< [--test-crop] test centre crop (0: whole image)
  bool flip = true;           ///< [--flip on|off]
  // OHEM
  bool ohem = true;                                                 ///< [--ohem on|off]
  double ratio = 0.65;                                              ///< [--ratio] pruning ratio
  ohem::BatchNormPolicy batchnorm = ohem::BatchNormPolicy::Shared;  ///< [--batchnorm shared|frozen|separate]
  ohem::SelfCompetitorMode mode = ohem::SelfCompetitorMode::Joint;  ///< [--mode joint|sequential]
  double alpha = 1.0;   ///< [--alpha] weight of the twin's task loss
  double lambda = 1.0;  ///< [--lambda] weight of the consistency
  // Schedule (recipe: stage 1 head only 3 epochs batch 128, stage 2 all 12 epochs batch 32)
  int64_t epochs1 = 3, epochs2 = 12;  ///< [--epochs1] [--epochs2]
  int64_t batch1 = 128, batch2 = 32;  ///< [--batch1] [--batch2]
  double lr = 1e-4;                   ///< [--lr] Adam learning rate
  double weight_decay = 5e-4;         ///< [--weight-decay]
  int64_t lr_step = 3;                ///< [--lr-step] StepLR step in epochs
  double gamma = 0.2;                 ///< [--gamma] StepLR factor
  int64_t max_steps = 0;              ///< [--max-steps] stop after this many steps in all (0: no limit)
  // Runtime
  int threads = 1;    ///< [--threads] torch intra-op threads
  uint64_t seed = 0;  ///< [--seed] initialisation, pairs and augmentation
  std::string out =
      "runs/train";    ///< [--out] output directory (log.jsonl, results.json, hardest.csv, checkpoint.pt)
  std::string resume;  ///< [--resume] checkpoint to resume from
  int64_t checkpoint_every =
      0;                    ///< [--checkpoint-every] also checkpoint every N steps (0: at epoch ends only)
  int64_t eval_batch = 16;  ///< [--eval-batch]
  bool eval_every_epoch = true;  ///< [--eval-every-epoch on|off]
  int64_t hardest = 100;         ///< [--hardest] rows of hardest.csv
  bool progress = true;          ///< [--progress on|off]
  bool quiet = false;            ///< [--quiet] no console output except errors
};

namespace detail {

inline bool parse_on_off(const std::string& flag, const std::string& v) {
  if (v == "on" || v == "true" || v == "1") return true;
  if (v == "off" || v == "false" || v == "0") return false;
  TORCH_CHECK(false, "option ", flag, " expects on or off, got \"", v, "\"");
}

template <typename T>
T parse_num(const std::string& flag, const std::string& v) {
  size_t used = 0;
  T out{};
  try {
    if constexpr (std::is_floating_point_v<T>) {
      out = static_cast<T>(std::stod(v, &used));
    } else if constexpr (std::is_unsigned_v<T>) {
      TORCH_CHECK(v.empty() || v[0] != '-', "option ", flag, " expects a non-negative integer, got \"", v,
                  "\"");
      out = static_cast<T>(std::stoull(v, &used));
    } else {
      out = static_cast<T>(std::stoll(v, &used));
    }
  } catch (const std::logic_error&) {
    used = 0;
  }
  TORCH_CHECK(!v.empty() && used == v.size(), "option ", flag, " expects a number, got \"", v, "\"");
  return out;
}

}  // namespace detail

/// Returns the usage text of the shared options.
inline std::string train_usage(const std::string& program) {
  return fmt::format(R"(usage: {} --csv FILE [options]
data:     --format koniq10k|kadid10k|live_challenge|spaq|generic (generic)  --csv FILE  --images DIR
          --test-csv FILE  --test-format F  --test-images DIR  (a separate test set; else a split of --csv)
          --split image|group|auto (auto)  --train-fraction F (0.8)  --split-seed N (0)
          --skip-bad-rows  --cache  --label binary|thurstone (binary)
model:    --arch resnet18|resnet50 (resnet18)  --width N (64)  --pretrained SCRIPT.pt
images:   --resize N (512)  --crop N (384)  --test-resize N (768)  --test-crop N (0)  --flip on|off (on)
OHEM:     --ohem on|off (on)  --ratio R (0.65)  --batchnorm shared|frozen|separate (shared)
          --mode joint|sequential (joint)  --alpha A (1)  --lambda L (1)
schedule: --epochs1 N (3)  --epochs2 N (12)  --batch1 N (128)  --batch2 N (32)  --lr X (1e-4)
          --weight-decay X (5e-4)  --lr-step N (3)  --gamma X (0.2)  --max-steps N (0: none)
runtime:  --threads N (1)  --seed N (0)  --out DIR (runs/train)  --resume CHECKPOINT
          --checkpoint-every N (0: epoch ends)  --eval-batch N (16)  --eval-every-epoch on|off (on)
          --hardest N (100)  --progress on|off (on)  --quiet
)",
                     program);
}

/// Parses command-line arguments into options (starting from `defaults`). Throws naming the flag on an
/// unknown flag, a missing value or a bad value; `--help` sets `*help`.
inline TrainOptions parse_train_args(const std::vector<std::string>& args, TrainOptions o = {},
                                     bool* help = nullptr) {
  using detail::parse_num;
  using detail::parse_on_off;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& k = args[i];
    if (k == "--help" || k == "-h") {
      if (help) *help = true;
      continue;
    }
    if (k == "--skip-bad-rows") {
      o.skip_bad_rows = true;
      continue;
    }
    if (k == "--cache") {
      o.cache = true;
      continue;
    }
    if (k == "--quiet") {
      o.quiet = true;
      continue;
    }
    TORCH_CHECK(k.rfind("--", 0) == 0, "unexpected argument \"", k, "\" (options start with --; see --help)");
    TORCH_CHECK(i + 1 < args.size(), "option ", k, " needs a value");
    const std::string v = args[++i];
    if (k == "--format")
      o.format = v;
    else if (k == "--csv")
      o.csv = v;
    else if (k == "--images")
      o.images = v;
    else if (k == "--test-csv")
      o.test_csv = v;
    else if (k == "--test-format")
      o.test_format = v;
    else if (k == "--test-images")
      o.test_images = v;
    else if (k == "--split") {
      TORCH_CHECK(v == "image" || v == "group" || v == "auto",
                  "option --split expects image, group or auto, got \"", v, "\"");
      o.split = v;
    } else if (k == "--train-fraction")
      o.train_fraction = parse_num<double>(k, v);
    else if (k == "--split-seed")
      o.split_seed = parse_num<uint64_t>(k, v);
    else if (k == "--label") {
      TORCH_CHECK(v == "binary" || v == "thurstone", "option --label expects binary or thurstone, got \"", v,
                  "\"");
      o.label = v;
    } else if (k == "--arch")
      o.arch = v;
    else if (k == "--width")
      o.width = parse_num<int64_t>(k, v);
    else if (k == "--pretrained")
      o.pretrained = v;
    else if (k == "--resize")
      o.resize = parse_num<int64_t>(k, v);
    else if (k == "--crop")
      o.crop = parse_num<int64_t>(k, v);
    else if (k == "--test-resize")
      o.test_resize = parse_num<int64_t>(k, v);
    else if (k == "--test-crop")
      o.test_crop = parse_num<int64_t>(k, v);
    else if (k == "--flip")
      o.flip = parse_on_off(k, v);
    else if (k == "--ohem")
      o.ohem = parse_on_off(k, v);
    else if (k == "--ratio")
      o.ratio = parse_num<double>(k, v);
    else if (k == "--batchnorm") {
      if (v == "shared")
        o.batchnorm = ohem::BatchNormPolicy::Shared;
      else if (v == "frozen")
        o.batchnorm = ohem::BatchNormPolicy::Frozen;
      else if (v == "separate")
        o.batchnorm = ohem::BatchNormPolicy::Separate;
      else
        TORCH_CHECK(false, "option --batchnorm expects shared, frozen or separate, got \"", v, "\"");
    } else if (k == "--mode") {
      if (v == "joint")
        o.mode = ohem::SelfCompetitorMode::Joint;
      else if (v == "sequential")
        o.mode = ohem::SelfCompetitorMode::Sequential;
      else
        TORCH_CHECK(false, "option --mode expects joint or sequential, got \"", v, "\"");
    } else if (k == "--alpha")
      o.alpha = parse_num<double>(k, v);
    else if (k == "--lambda")
      o.lambda = parse_num<double>(k, v);
    else if (k == "--epochs1")
      o.epochs1 = parse_num<int64_t>(k, v);
    else if (k == "--epochs2")
      o.epochs2 = parse_num<int64_t>(k, v);
    else if (k == "--batch1")
      o.batch1 = parse_num<int64_t>(k, v);
    else if (k == "--batch2")
      o.batch2 = parse_num<int64_t>(k, v);
    else if (k == "--lr")
      o.lr = parse_num<double>(k, v);
    else if (k == "--weight-decay")
      o.weight_decay = parse_num<double>(k, v);
    else if (k == "--lr-step")
      o.lr_step = parse_num<int64_t>(k, v);
    else if (k == "--gamma")
      o.gamma = parse_num<double>(k, v);
    else if (k == "--max-steps")
      o.max_steps = parse_num<int64_t>(k, v);
    else if (k == "--threads")
      o.threads = parse_num<int>(k, v);
    else if (k == "--seed")
      o.seed = parse_num<uint64_t>(k, v);
    else if (k == "--out")
      o.out = v;
    else if (k == "--resume")
      o.resume = v;
    else if (k == "--checkpoint-every")
      o.checkpoint_every = parse_num<int64_t>(k, v);
    else if (k == "--eval-batch")
      o.eval_batch = parse_num<int64_t>(k, v);
    else if (k == "--eval-every-epoch")
      o.eval_every_epoch = parse_on_off(k, v);
    else if (k == "--hardest")
      o.hardest = parse_num<int64_t>(k, v);
    else if (k == "--progress")
      o.progress = parse_on_off(k, v);
    else
      TORCH_CHECK(false, "unknown option ", k, " (see --help)");
  }
  return o;
}

/// Checks option values; throws naming the first bad one.
inline void validate(const TrainOptions& o) {
  TORCH_CHECK(!o.csv.empty(), "no metadata file given (--csv)");
  TORCH_CHECK(o.train_fraction > 0 && o.train_fraction < 1, "--train-fraction must be in (0, 1), got ",
              o.train_fraction);
  TORCH_CHECK(o.ratio >= 0 && o.ratio < 1, "--ratio must be in [0, 1), got ", o.ratio);
  TORCH_CHECK(o.epochs1 >= 0 && o.epochs2 >= 0 && o.epochs1 + o.epochs2 > 0,
              "--epochs1 and --epochs2 must be >= 0 and not both 0, got ", o.epochs1, " and ", o.epochs2);
  TORCH_CHECK(o.batch1 >= 2 && o.batch2 >= 2, "--batch1 and --batch2 must be >= 2 (BatchNorm), got ",
              o.batch1, " and ", o.batch2);
  TORCH_CHECK(o.lr > 0 && std::isfinite(o.lr), "--lr must be positive, got ", o.lr);
  TORCH_CHECK(o.weight_decay >= 0, "--weight-decay must be >= 0, got ", o.weight_decay);
  TORCH_CHECK(o.lr_step > 0, "--lr-step must be positive, got ", o.lr_step);
  TORCH_CHECK(o.gamma > 0, "--gamma must be positive, got ", o.gamma);
  TORCH_CHECK(o.threads > 0, "--threads must be positive, got ", o.threads);
  TORCH_CHECK(o.resize >= 0 && o.crop >= 0 && o.test_resize >= 0 && o.test_crop >= 0,
              "image sizes must be >= 0");
  TORCH_CHECK(o.crop == 0 || o.resize == 0 || o.crop <= o.resize, "--crop (", o.crop,
              ") must not exceed --resize (", o.resize, ")");
  TORCH_CHECK(o.eval_batch > 0 && o.max_steps >= 0 && o.checkpoint_every >= 0 && o.hardest >= 0,
              "--eval-batch must be positive; --max-steps, --checkpoint-every and --hardest >= 0");
}

/// Loads images of a dataset as float [3, H, W] resized to a short side, optionally caching the
/// resized uint8 image. Errors name the image file and its metadata line.
class ImageStore {
 public:
  ImageStore(const Dataset* data, int64_t short_side, bool cache)
      : data_(data), side_(short_side), cache_(cache) {}
  /// Returns image `i` as float [3, H, W] in [0, 1], short side resized to the store's size.
  torch::Tensor get(int64_t i) {
    if (cache_) {
      auto it = images_.find(i);
      if (it != images_.end()) return to_float_chw(it->second);
    }
    const Sample& s = data_->samples.at(static_cast<size_t>(i));
    torch::Tensor img;
    try {
      img = to_float_chw(load_image(s.path));
    } catch (const c10::Error& e) {
      TORCH_CHECK(false, s.source, ":", s.line, ": ", e.what_without_backtrace());
    }
    if (side_ > 0) img = resize_short_side(img, side_);
    if (cache_) images_[i] = to_uint8_hwc(img);
    return img;
  }

 private:
  const Dataset* data_;
  int64_t side_;
  bool cache_;
  std::map<int64_t, torch::Tensor> images_;
};

/// What one training step reports.
struct StepStats {
  double loss = 0.0;         ///< total loss (task + OHEM terms)
  double task_full = 0.0;    ///< task loss of the full model
  double task_twin = NAN;    ///< task loss of the twin (NaN without OHEM)
  double consistency = NAN;  ///< consistency term (NaN without OHEM)
  int64_t stage = 0, epoch = 0, step = 0;
};

/// Results of an evaluation on the test split.
struct EvalResult {
  Correlations overall;
  std::map<std::string, Correlations> by_type;
  std::vector<int64_t> indices;     ///< dataset indices of the test images
  std::vector<double> predictions;  ///< full-model scores, aligned with `indices`
};

/// A stage of the schedule.
struct Stage {
  int64_t number = 1;  ///< 1: backbone frozen (head only); 2: everything
  int64_t epochs = 0;
  int64_t batch = 0;
};

/// The shared trainer machinery (CRTP). `Derived` provides:
/// - `Net make_net()` — the model (a module holder with a `ResNet backbone` member);
/// - `TaskLoss task_loss()` — the task loss the OHEM loss wraps;
/// - `std::vector<torch::Tensor> head_parameters()` — what stage 1 trains;
/// - `int64_t items_per_epoch()` — training items (pairs or images) per epoch;
/// - `StepStats train_step(const std::vector<int64_t>& items, std::mt19937_64& rng)` — one step on the
///   epoch's items at those positions (zero_grad, forward, loss, backward; the OHEM lines);
/// - `torch::Tensor predict(const torch::Tensor& x)` — scores [B] of the full model.
template <typename Derived, typename Net, typename TaskLoss>
class TrainerBase {
 public:
  using Competitor = ohem::SelfCompetitor<Net, TaskLoss>;

  /// Reads the data and splits it; call `init()` (from the derived constructor) to build the model.
  explicit TrainerBase(TrainOptions options) : o_(std::move(options)) {
    validate(o_);
    torch::set_num_threads(o_.threads);
    const ReadOptions read = ReadOptions().skip_bad_rows(o_.skip_bad_rows);
    data_ = read_dataset(o_.format, o_.csv, o_.images, read);
    if (!o_.test_csv.empty()) {
      // A separate test set: every image of --csv trains; the test images are appended after them.
      const Dataset test = read_dataset(o_.test_format.empty() ? o_.format : o_.test_format, o_.test_csv,
                                        o_.test_images, read);
      for (int64_t i = 0; i < data_.size(); ++i) split_.train.push_back(i);
      for (const auto& s : test.samples) {
        split_.test.push_back(data_.size());
        data_.samples.push_back(s);
      }
      TORCH_CHECK(split_.train.size() >= 2 && split_.test.size() >= 2,
                  "need at least 2 training and 2 test images, got ", split_.train.size(), " and ",
                  split_.test.size());
      split_kind_ = "file";
    }
    std::string split = o_.split;
    if (split == "auto") {
      std::map<std::string, int> per_group;
      for (const auto& s : data_.samples) ++per_group[s.group];
      split = per_group.size() < data_.samples.size() ? "group" : "image";
    }
    if (o_.test_csv.empty()) {
      split_kind_ = split;
      split_ = split == "group" ? split_by_group(data_, o_.train_fraction, o_.split_seed)
                                : split_by_image(data_, o_.train_fraction, o_.split_seed);
    }
    train_store_.emplace(&data_, o_.resize, o_.cache);
    test_store_.emplace(&data_, o_.test_resize, o_.cache);
    tracker_ = ohem::HardnessTracker(data_.size());
    if (o_.epochs1 > 0) stages_.push_back(Stage{1, o_.epochs1, o_.batch1});
    if (o_.epochs2 > 0) stages_.push_back(Stage{2, o_.epochs2, o_.batch2});
    start_ = std::chrono::steady_clock::now();
  }
  virtual ~TrainerBase() = default;

  /// Builds the model (seeded), the twin and the first stage's optimiser, or restores a checkpoint.
  void init() {
    torch::manual_seed(o_.seed);
    net_ = self().make_net();
    if (!o_.pretrained.empty()) {
      const int64_t n = load_script_weights(*backbone(), o_.pretrained);
      say(fmt::format("loaded {} backbone tensors from {}", n, o_.pretrained));
    }
    if (!o_.out.empty()) {
      std::filesystem::create_directories(o_.out);
      log_ = JsonLog((std::filesystem::path(o_.out) / "log.jsonl").string(), !o_.resume.empty());
    }
    // OHEM: the self-competitor (the pruned twin and the OHEM loss around the task loss).
    if (o_.ohem) {
      competitor_.emplace(
          net_, self().task_loss(),
          ohem::SelfCompetitorOptions()
              .mode(o_.mode)
              .twin(ohem::TwinOptions().masks(ohem::MaskOptions().ratio(o_.ratio)).batchnorm(o_.batchnorm))
              .loss(ohem::OhemLossOptions().alpha(o_.alpha).lambda(o_.lambda)));
    }
    if (!o_.resume.empty()) {
      load_checkpoint(o_.resume);
    } else {
      begin_stage();
    }
    say(fmt::format("{}: {} images ({} train / {} test, split by {}), threads: {}, OHEM: {}{}", data_.name,
                    data_.size(), split_.train.size(), split_.test.size(), split_kind_,
                    torch::get_num_threads(), o_.ohem ? "on" : "off",
                    o_.ohem ? fmt::format(" (ratio {}, BatchNorm {}, {})", o_.ratio,
                                          ohem::to_string(o_.batchnorm), ohem::to_string(o_.mode))
                            : std::string()));
  }

  /// True when every stage is done or the step limit is reached.
  bool done() const {
    return stage_index_ >= stages_.size() || (o_.max_steps > 0 && global_step_ >= o_.max_steps);
  }

  /// Runs one optimiser step of the current stage, then advances epoch and stage (evaluating and
  /// checkpointing at epoch ends). Throws if training is done.
  StepStats step() {
    TORCH_CHECK(!done(), "the trainer is done");
    const Stage& st = stages_[stage_index_];
    const int64_t steps = steps_per_epoch(st);
    std::vector<int64_t> items;
    for (int64_t k = 0; k < st.batch; ++k) items.push_back(step_in_epoch_ * st.batch + k);
    std::mt19937_64 rng(mix_seed(o_.seed, static_cast<uint64_t>(st.number), static_cast<uint64_t>(epoch_),
                                 static_cast<uint64_t>(step_in_epoch_)));
    net_->train();
    StepStats s = self().train_step(items, rng);
    TORCH_CHECK(std::isfinite(s.loss), "the training loss is not finite (", s.loss, ") at stage ", st.number,
                ", epoch ", epoch_, ", step ", step_in_epoch_);
    optimizer_->step();
    // OHEM: count the step (recomputes the masks only when TwinOptions::refresh_every > 0).
    if (competitor_) competitor_->step();
    s.stage = st.number;
    s.epoch = epoch_;
    s.step = step_in_epoch_;
    ++step_in_epoch_;
    ++global_step_;
    running_.push_back(s);
    if (progress_) {
      progress_->update(step_in_epoch_, fmt::format("loss {:.4f} task {:.4f}{}", s.loss, s.task_full,
                                                    o_.ohem ? fmt::format(" twin {:.4f} cons {:.5f}",
                                                                          s.task_twin, s.consistency)
                                                            : std::string()));
    }
    log_.write(Json()
                   .add("event", "step")
                   .add("stage", st.number)
                   .add("epoch", epoch_)
                   .add("step", s.step)
                   .add("global_step", global_step_)
                   .add("lr", current_lr())
                   .add("loss", s.loss)
                   .add("task_full", s.task_full)
                   .add("task_twin", s.task_twin)
                   .add("consistency", s.consistency));
    const bool epoch_end = step_in_epoch_ >= steps;
    if (epoch_end) end_epoch();
    if (!epoch_end && o_.checkpoint_every > 0 && global_step_ % o_.checkpoint_every == 0)
      save_checkpoint(checkpoint_path());
    return s;
  }

  /// Trains until done, evaluates and writes results.json and hardest.csv; returns the final evaluation.
  EvalResult train() {
    while (!done()) step();
    if (progress_) progress_->finish();
    EvalResult r = evaluate();
    write_results(r);
    return r;
  }

  /// Evaluates the full model on the test split (eval mode, no gradient).
  EvalResult evaluate() {
    torch::NoGradGuard no_grad;
    net_->eval();
    EvalResult r;
    r.indices = split_.test;
    std::vector<torch::Tensor> batch;
    auto flush = [&] {
      if (batch.empty()) return;
      torch::Tensor p = self().predict(torch::stack(batch)).reshape({-1}).to(torch::kDouble).contiguous();
      for (int64_t k = 0; k < p.size(0); ++k) r.predictions.push_back(p[k].item<double>());
      batch.clear();
    };
    for (int64_t i : split_.test) {
      torch::Tensor x = normalize_imagenet(o_.test_crop > 0 ? center_crop(test_store_->get(i), o_.test_crop)
                                                            : test_store_->get(i));
      if (!batch.empty() &&
          (batch.front().sizes() != x.sizes() || static_cast<int64_t>(batch.size()) >= o_.eval_batch))
        flush();
      batch.push_back(x);
    }
    flush();
    net_->train();
    std::vector<double> mos;
    std::vector<std::string> types;
    bool typed = false;
    for (int64_t i : split_.test) {
      const Sample& s = data_.samples[static_cast<size_t>(i)];
      mos.push_back(s.mos);
      types.push_back(s.type);
      typed = typed || !s.type.empty();
    }
    r.overall = correlations(r.predictions, mos);
    if (typed) r.by_type = correlations_by(r.predictions, mos, types);
    return r;
  }

  /// Writes a checkpoint atomically: model, optimiser, schedule position, masks, RNG state.
  void save_checkpoint(const std::string& path) {
    atomic_write(path, [&](const std::string& tmp) {
      torch::serialize::OutputArchive root;
      torch::serialize::OutputArchive model;
      net_->save(model);
      root.write("model", model);
      torch::serialize::OutputArchive opt;
      optimizer_->save(opt);
      root.write("optimizer", opt);
      root.write("stage_index", c10::IValue(static_cast<int64_t>(stage_index_)));
      root.write("epoch", c10::IValue(epoch_));
      root.write("step_in_epoch", c10::IValue(step_in_epoch_));
      root.write("global_step", c10::IValue(global_step_));
      root.write("ohem", c10::IValue(o_.ohem));
      {
        at::Generator gen = at::globalContext().defaultGenerator(torch::kCPU);
        std::lock_guard<std::mutex> lock(gen.mutex());
        root.write("torch_rng", gen.get_state());
      }
      if (competitor_) {
        const ohem::MaskSet& m = competitor_->twin().masks();
        for (size_t k = 0; k < m.size(); ++k) {
          root.write(fmt::format("mask_name_{}", k), c10::IValue(m.name(k)));
          root.write(fmt::format("mask_{}", k), m.mask(k));
        }
        root.write("mask_count", c10::IValue(static_cast<int64_t>(m.size())));
      }
      torch::Tensor hv = tracker_.values();
      root.write("hardness", hv);
      root.save_to(tmp);
    });
  }

  /// Restores a checkpoint written by `save_checkpoint` (same options): the next step computes exactly
  /// what it would have computed without the interruption. Throws naming the file if it does not match.
  void load_checkpoint(const std::string& path) {
    TORCH_CHECK(std::filesystem::is_regular_file(path), "checkpoint \"", path, "\" does not exist");
    torch::serialize::InputArchive root;
    try {
      root.load_from(path);
    } catch (const c10::Error& e) {
      TORCH_CHECK(false, "cannot read checkpoint \"", path, "\": ", e.what_without_backtrace());
    }
    c10::IValue v;
    root.read("ohem", v);
    TORCH_CHECK(v.toBool() == o_.ohem, "checkpoint \"", path, "\" was written with --ohem ",
                v.toBool() ? "on" : "off", "; resume it with the same setting");
    torch::serialize::InputArchive model;
    root.read("model", model);
    try {
      net_->load(model);
    } catch (const c10::Error& e) {
      TORCH_CHECK(false, "checkpoint \"", path,
                  "\" does not match the model (--arch/--width?): ", e.what_without_backtrace());
    }
    root.read("stage_index", v);
    stage_index_ = static_cast<size_t>(v.toInt());
    root.read("epoch", v);
    epoch_ = v.toInt();
    root.read("step_in_epoch", v);
    step_in_epoch_ = v.toInt();
    root.read("global_step", v);
    global_step_ = v.toInt();
    TORCH_CHECK(stage_index_ <= stages_.size(), "checkpoint \"", path, "\" is at stage index ", stage_index_,
                " but the options define ", stages_.size(), " stages");
    begin_stage(/*fresh=*/false);
    torch::serialize::InputArchive opt;
    root.read("optimizer", opt);
    if (optimizer_) optimizer_->load(opt);
    set_lr();
    torch::Tensor rng;
    root.read("torch_rng", rng);
    {
      at::Generator gen = at::globalContext().defaultGenerator(torch::kCPU);
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(rng);
    }
    if (competitor_) {
      root.read("mask_count", v);
      ohem::MaskSet m;
      for (int64_t k = 0; k < v.toInt(); ++k) {
        c10::IValue name;
        torch::Tensor mask;
        root.read(fmt::format("mask_name_{}", k), name);
        root.read(fmt::format("mask_{}", k), mask);
        m.add(name.toStringRef(), mask);
      }
      for (size_t t = 0; t < competitor_->num_twins(); ++t) competitor_->twin(t).set_masks(m);
    }
    torch::Tensor hv;
    root.read("hardness", hv);
    tracker_.reset();
    for (int64_t i = 0; i < hv.size(0); ++i) {
      const double h = hv[i].item<double>();
      if (!std::isnan(h)) tracker_.update(torch::tensor({i}), torch::tensor({h}));
    }
    say(fmt::format("resumed from {} at stage {}, epoch {}, step {}", path,
                    stage_index_ < stages_.size() ? stages_[stage_index_].number : 0, epoch_,
                    step_in_epoch_));
  }

  /// Returns the model.
  Net& net() { return net_; }
  /// Returns the self-competitor (null without OHEM).
  Competitor* competitor() { return competitor_ ? &*competitor_ : nullptr; }
  /// Returns the optimiser of the current stage.
  torch::optim::Adam& optimizer() { return *optimizer_; }
  /// Returns the dataset, the split and the options.
  const Dataset& data() const { return data_; }
  const Split& split() const { return split_; }
  const TrainOptions& options() const { return o_; }
  /// Returns the hardness tracker (per-sample twin disagreement with OHEM, per-sample loss without).
  ohem::HardnessTracker& tracker() { return tracker_; }
  /// Returns the number of steps done.
  int64_t global_step() const { return global_step_; }
  /// Returns the default checkpoint path (<out>/checkpoint.pt).
  std::string checkpoint_path() const { return (std::filesystem::path(o_.out) / "checkpoint.pt").string(); }

 protected:
  Derived& self() { return static_cast<Derived&>(*this); }

  /// Returns the current stage.
  const Stage& stage() const { return stages_.at(stage_index_); }
  /// Returns the epoch within the stage.
  int64_t epoch() const { return epoch_; }

  /// Loads, augments (seeded by `rng`) and stacks training images into [B, 3, crop, crop].
  torch::Tensor load_train(const std::vector<int64_t>& indices, std::mt19937_64& rng) {
    TrainTransform tf{0, o_.crop, o_.flip};
    std::vector<torch::Tensor> xs;
    for (int64_t i : indices) xs.push_back(tf(train_store_->get(i), rng));
    return torch::stack(xs);
  }

  /// Returns the backbone (for pretrained weights); the derived class's net must expose `backbone`.
  ResNet& backbone() { return net_->backbone; }

  /// Prints a line unless quiet.
  void say(const std::string& s) const {
    if (!o_.quiet) std::cout << s << std::endl;
  }

  TrainOptions o_;
  Dataset data_;
  Split split_;
  std::string split_kind_;
  Net net_{nullptr};
  std::optional<Competitor> competitor_;
  ohem::HardnessTracker tracker_;

 private:
  static uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
    uint64_t h = a * 0x9E3779B97F4A7C15ULL;
    for (uint64_t x : {b, c, d}) {
      h ^= x + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2);
      h *= 0xBF58476D1CE4E5B9ULL;
    }
    return h;
  }

  int64_t steps_per_epoch(const Stage& st) {
    return std::max<int64_t>(1, self().items_per_epoch() / st.batch);
  }

  double current_lr() const {
    if (stage_index_ >= stages_.size()) return 0.0;
    return o_.lr * std::pow(o_.gamma, static_cast<double>(epoch_ / o_.lr_step));
  }

  void set_lr() {
    if (!optimizer_) return;
    for (auto& g : optimizer_->param_groups())
      static_cast<torch::optim::AdamOptions&>(g.options()).lr(current_lr());
  }

  // Starts the current stage: which parameters train, a fresh Adam, and (fresh start) new masks.
  void begin_stage(bool fresh = true) {
    if (stage_index_ >= stages_.size()) return;
    const Stage& st = stages_[stage_index_];
    std::vector<torch::Tensor> params;
    if (st.number == 1) {
      for (auto& p : net_->parameters()) p.set_requires_grad(false);
      params = self().head_parameters();
      for (auto& p : params) p.set_requires_grad(true);
    } else {
      for (auto& p : net_->parameters()) p.set_requires_grad(true);
      params = net_->parameters();
    }
    optimizer_.emplace(params, torch::optim::AdamOptions(o_.lr).weight_decay(o_.weight_decay));
    set_lr();
    // OHEM: the recipe computes the masks once per stage, from the current weights.
    if (fresh && competitor_) competitor_->refresh();
    if (fresh) {
      epoch_ = 0;
      step_in_epoch_ = 0;
    }
    progress_.emplace(fmt::format("stage {} epoch {}/{}", st.number, epoch_ + 1, st.epochs),
                      steps_per_epoch(st), o_.progress && !o_.quiet);
    if (fresh && competitor_) {
      const ohem::MaskSet& m = competitor_->twin().masks();
      say(fmt::format("stage {}: {} epochs, batch {}; twin masks {} of {} weights ({:.1f}% pruned)",
                      st.number, st.epochs, st.batch, m.kept(), m.numel(), 100.0 * m.sparsity()));
      log_.write(
          Json().add("event", "masks").add("stage", st.number).add("kept", m.kept()).add("total", m.numel()));
    }
  }

  void end_epoch() {
    const Stage st = stages_[stage_index_];
    if (progress_) progress_->finish();
    double loss = 0, tf = 0, tt = 0, c = 0;
    for (const auto& s : running_) {
      loss += s.loss;
      tf += s.task_full;
      tt += s.task_twin;
      c += s.consistency;
    }
    const double n = static_cast<double>(std::max<size_t>(1, running_.size()));
    running_.clear();
    Json j;
    j.add("event", "epoch")
        .add("stage", st.number)
        .add("epoch", epoch_)
        .add("global_step", global_step_)
        .add("loss", loss / n)
        .add("task_full", tf / n)
        .add("task_twin", tt / n)
        .add("consistency", c / n)
        .add("elapsed_s", elapsed());
    std::string line =
        fmt::format("stage {} epoch {}/{}: loss {:.4f}", st.number, epoch_ + 1, st.epochs, loss / n);
    const bool last = epoch_ + 1 >= st.epochs && stage_index_ + 1 >= stages_.size();
    if (o_.eval_every_epoch && !last) {
      EvalResult r = evaluate();
      j.add("srcc", r.overall.srcc).add("krcc", r.overall.krcc).add("plcc", r.overall.plcc);
      line += fmt::format("  test SRCC {:.4f} KRCC {:.4f} PLCC {:.4f}", r.overall.srcc, r.overall.krcc,
                          r.overall.plcc);
    }
    log_.write(j);
    say(line);
    if (!o_.out.empty() && o_.hardest > 0) {
      tracker_.save_csv((std::filesystem::path(o_.out) / "hardest.csv").string(), data_.names(), data_.mos());
    }
    tracker_.reset();
    ++epoch_;
    step_in_epoch_ = 0;
    if (epoch_ >= st.epochs) {
      ++stage_index_;
      begin_stage();
    } else {
      set_lr();
      progress_.emplace(fmt::format("stage {} epoch {}/{}", st.number, epoch_ + 1, st.epochs),
                        steps_per_epoch(st), o_.progress && !o_.quiet);
    }
    if (!o_.out.empty()) save_checkpoint(checkpoint_path());
  }

  double elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

  void write_results(const EvalResult& r) {
    say(fmt::format("final test ({} images): SRCC {:.4f} KRCC {:.4f} PLCC {:.4f}", r.overall.count,
                    r.overall.srcc, r.overall.krcc, r.overall.plcc));
    if (o_.out.empty()) return;
    Json types;
    for (const auto& [k, c] : r.by_type) {
      types.add(k, Json().add("srcc", c.srcc).add("krcc", c.krcc).add("plcc", c.plcc).add("count", c.count));
    }
    Json j;
    j.add("dataset", data_.name)
        .add("csv", o_.csv)
        .add("ohem", o_.ohem)
        .add("ratio", o_.ratio)
        .add("seed", static_cast<int64_t>(o_.seed))
        .add("split_seed", static_cast<int64_t>(o_.split_seed))
        .add("steps", global_step_)
        .add("elapsed_s", elapsed())
        .add("threads", torch::get_num_threads())
        .add("srcc", r.overall.srcc)
        .add("krcc", r.overall.krcc)
        .add("plcc", r.overall.plcc)
        .add("test_images", r.overall.count)
        .add("by_type", types);
    write_text_file((std::filesystem::path(o_.out) / "results.json").string(), j.str() + "\n");
    log_.write(Json()
                   .add("event", "final")
                   .add("srcc", r.overall.srcc)
                   .add("krcc", r.overall.krcc)
                   .add("plcc", r.overall.plcc));
  }

  std::optional<ImageStore> train_store_, test_store_;
  std::vector<Stage> stages_;
  size_t stage_index_ = 0;
  int64_t epoch_ = 0, step_in_epoch_ = 0, global_step_ = 0;
  std::optional<torch::optim::Adam> optimizer_;
  std::optional<Progress> progress_;
  std::vector<StepStats> running_;
  JsonLog log_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace ohem_examples
