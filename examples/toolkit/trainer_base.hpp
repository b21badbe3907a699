#pragma once
/// @file
/// The machinery both example trainers share: data (readers, split, image cache, seeded augmentation),
/// the two-stage schedule with the recipe's optimiser, evaluation, logging, hardness export, and
/// checkpoints with exact, checked resume. Each trainer (train_pairwise, train_mos) derives from
/// `TrainerBase` and supplies its model and its training step, where the few OHEM lines live. The
/// parts live in their own headers: options and command line (command_line.hpp), schedule
/// (schedule.hpp), checkpoint files (checkpoint.hpp), the output directory's lock (output_dir.hpp).
///
/// Distributed data-parallel training (docs/distributed.md): when the launcher's variables are set
/// (torchrun, scripts/launch.sh; WORLD_SIZE > 1) the trainer joins the process group, broadcasts the
/// model from rank 0, averages gradients over ranks during backward, keeps the masks identical, deals
/// each rank a disjoint share of every epoch, gathers hardness and test predictions to rank 0, and only
/// rank 0 prints and writes files. --batch1/--batch2 are per-rank batches. Without the variables it is
/// the single-process trainer it always was.

#include "backbones.hpp"
#include "checkpoint.hpp"
#include "command_line.hpp"
#include "datasets.hpp"
#include "device.hpp"
#include "evaluate.hpp"
#include "files.hpp"
#include "image.hpp"
#include "io.hpp"
#include "kadid_protocol.hpp"
#include "output_dir.hpp"
#include "schedule.hpp"
#include "transforms.hpp"

#include <ohem/csv.hpp>
#include <ohem/distributed.hpp>
#include <ohem/hardness.hpp>
#include <ohem/platform.hpp>
#include <ohem/self_competitor.hpp>

#include <torch/torch.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace ohem_examples {

/// Loads images of a dataset as float [3, H, W] resized to a short side, optionally caching the
/// resized uint8 image. Errors name the image file and its metadata line.
class ImageStore {
 public:
  ImageStore(const Dataset* data, int64_t short_side, bool cache, int64_t max_pixels = kDefaultMaxPixels)
      : data_(data), side_(short_side), cache_(cache), max_pixels_(max_pixels) {}
  /// Returns image `i` as float [3, H, W] in [0, 1], short side resized to the store's size.
  torch::Tensor get(int64_t i) {
    if (cache_) {
      auto it = images_.find(i);
      if (it != images_.end()) return to_float_chw(it->second);
    }
    const Sample& s = data_->samples.at(static_cast<size_t>(i));
    torch::Tensor img;
    try {
      img = to_float_chw(load_image(s.path, max_pixels_));
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
  int64_t max_pixels_;
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

/// Results of an evaluation on the test split.
struct EvalResult {
  Correlations overall;
  std::map<std::string, Correlations> by_type;
  std::map<std::string, Correlations> by_type_group;  ///< --split kadid-*: "head", "mid", "tail"
  std::vector<int64_t> indices;                       ///< dataset indices of the test images
  std::vector<double> predictions;                    ///< full-model scores, aligned with `indices`
};

/// An extra test set (`--test`): its name and its images' dataset indices.
struct TestSet {
  std::string name;
  std::vector<int64_t> indices;
};

/// Returns `text` as an ECMAScript regular expression that matches it literally (a parameter name for
/// `ohem::SlotOptions::exclude`).
inline std::string regex_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

/// The options that may differ between the ranks of one distributed run: each process's own (threads,
/// console output, image cache, evaluation batch) and those rank 0 alone uses (--out, --overwrite).
inline bool per_process_option(const std::string& name) {
  static const std::set<std::string> names{"--threads",    "--progress", "--quiet",    "--cache",
                                           "--eval-batch", "--out",      "--overwrite"};
  return names.count(name) > 0;
}

/// Compares the configuration (`run_config`) of rank `rank` with rank 0's: one line per option of the
/// table that differs (`--lr: rank 0 0.001, rank 1 0.5`), except the `per_process_option`s.
inline std::vector<std::string> rank_differences(const nlohmann::json& main, const nlohmann::json& other,
                                                 int rank) {
  std::vector<std::string> out;
  const TrainOptions table;
  visit_train_options(table, [&](const OptionInfo& info, const auto&) {
    if (per_process_option(info.name)) return;
    const nlohmann::json a = main.contains(info.name) ? main.at(info.name) : nlohmann::json();
    const nlohmann::json b = other.contains(info.name) ? other.at(info.name) : nlohmann::json();
    if (a != b) out.push_back(fmt::format("{}: rank 0 {}, rank {} {}", info.name, a.dump(), rank, b.dump()));
  });
  return out;
}

/// The shared trainer machinery (CRTP). `Derived` provides:
/// - `Net make_net()` — the model (a module holder whose child "backbone" takes `--pretrained`);
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

  /// Checks the options and the output directory (locks it; a fresh run refuses a directory holding a
  /// run unless `overwrite`), reads the checkpoint to resume and checks its configuration against the
  /// options, then reads the data and splits it; call `init()` (from the derived constructor) to build
  /// the model. Everything that can be refused is refused before the data is read.
  ///
  /// Under a launcher (WORLD_SIZE > 1) it first joins the process group; only rank 0 locks and checks
  /// the output directory (a failure there fails every rank).
  explicit TrainerBase(TrainOptions options) : o_(std::move(options)) {
    validate(o_);
    TORCH_CHECK(o_.max_pixels > 0, "--max-pixels must be positive, got ", o_.max_pixels);
    // The device first (before anything in --out is touched): the process group carries CUDA tensors
    // (NCCL) when the model is on a CUDA device, each rank on its cuda:LOCAL_RANK.
    const ohem::DistributedEnv env = ohem::DistributedEnv::from_env();
    device_ = select_device(o_.device, cuda_device_count(), {env.world_size, env.local_rank});
    dist_ = ohem::DistributedContext(env, ohem::DistributedOptions().device(device_));
    check_ranks_agree();
    resolve_auto_resume();
    prepare_output();
    torch::set_num_threads(o_.threads);
    // LibTorch builds whose convolution gradients read unwritten memory get oneDNN turned off (stderr
    // says so, also under --quiet: it changes speed).
    if (const std::string warning = ohem::guard_convolution_backward(); !warning.empty() && dist_.is_main())
      std::cerr << warning << std::endl;
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
    if (split == "kadid-longtail" || split == "kadid-balanced") {
      // The paper's KADID-10k protocol (kadid_protocol.hpp): the test set is reported by type group too.
      TORCH_CHECK(data_.name == "kadid10k" && o_.test_csv.empty(), "--split ", split,
                  " is the KADID-10k protocol: it needs --format kadid10k and no --test-csv (got --format ",
                  o_.format, o_.test_csv.empty() ? "" : " and a --test-csv", ")");
      KadidSplit k =
          split_kadid10k(data_, o_.split_seed, KadidProtocolOptions().long_tailed(split == "kadid-longtail"));
      split_ = std::move(k.split);
      type_group_ = std::move(k.type_group);
      split_kind_ = split;
    } else if (o_.test_csv.empty()) {
      split_kind_ = split;
      split_ = split == "group" ? split_by_group(data_, o_.train_fraction, o_.split_seed)
                                : split_by_image(data_, o_.train_fraction, o_.split_seed);
    }
    if (o_.val_fraction > 0) carve_validation();
    run_images_ = data_.size();  // the run's own images; the --test sets follow (not part of the run)
    for (const TestSetSpec& t : parse_test_sets(o_.tests)) {  // --test: appended after the run's images
      const Dataset extra = read_dataset(t.format, t.csv, t.images, read);
      TestSet set{t.name, {}};
      for (const auto& sample : extra.samples) {
        set.indices.push_back(data_.size());
        data_.samples.push_back(sample);
      }
      test_sets_.push_back(std::move(set));
    }
    train_store_.emplace(&data_, o_.resize, o_.cache, o_.max_pixels);
    test_store_.emplace(&data_, o_.test_resize, o_.cache, o_.max_pixels);
    tracker_ = ohem::HardnessTracker(data_.size());
    run_tracker_ = ohem::HardnessTracker(data_.size());
    schedule_ = Schedule(o_);
    start_ = std::chrono::steady_clock::now();
  }
  virtual ~TrainerBase() = default;

  /// Builds the model (seeded), the twin and the first stage's optimiser, or restores the checkpoint.
  void init() {
    torch::manual_seed(o_.seed);
    net_ = self().make_net();
    // The weights as initialised (seeded: the same on resume), to tell masks of untrained weights.
    {
      torch::NoGradGuard no_grad;
      for (const auto& p : net_->named_parameters()) initial_[p.key()] = p.value().detach().clone();
    }
    if (!o_.pretrained.empty()) {
      const int64_t n = load_script_weights(backbone(), o_.pretrained);
      say(fmt::format("loaded {} backbone tensors from {}", n, o_.pretrained));
    }
    if (!o_.init_from.empty()) {
      const int64_t n = load_model_weights(*net_, o_.init_from);
      say(fmt::format("initialised {} tensors from {}", n, o_.init_from));
    }
    if (!device_.is_cpu()) {  // --device: the model, its initial weights (for the warning) and all after it
      net_->to(device_);
      for (auto& [name, t] : initial_) t = t.to(device_);
    }
    const std::string log_path = (std::filesystem::path(o_.out) / "log.jsonl").string();
    if (resume_ && dist_.is_main()) {
      // The log reads as one run: what was written after the checkpoint is cut off.
      const int64_t log_bytes = read_int_entry(*resume_, "log_bytes", o_.resume);
      std::error_code ec;
      const auto size = std::filesystem::file_size(log_path, ec);
      if (resume_in_place_ && !ec && static_cast<int64_t>(size) > log_bytes)
        std::filesystem::resize_file(log_path, static_cast<uintmax_t>(log_bytes));
    }
    if (dist_.is_main()) log_ = JsonLog(log_path, /*append=*/resume_in_place_);  // rank 0 alone writes
    // OHEM: the self-competitor (the pruned twin and the OHEM loss around the task loss). Its masks are
    // computed here, from the initial weights (the first stage's masks), or, on resume, restored from
    // the checkpoint: computed once either way.
    if (o_.ohem) {
      const ohem::MaskOptions masks = ohem::MaskOptions()
                                          .ratio(o_.ratio)
                                          .criterion(o_.mask_criterion)
                                          .random_fraction(o_.mask_random_fraction)
                                          .seed(o_.seed);  // random parts only (twin k: seed + k)
      const auto options =
          ohem::SelfCompetitorOptions()
              .mode(o_.mode)
              .num_twins(o_.twins)
              .twin(ohem::TwinOptions().masks(masks).batchnorm(o_.batchnorm).slots(slot_options()))
              .loss(ohem::OhemLossOptions().alpha(o_.alpha).lambda(o_.lambda));
      if (resume_) {
        const std::string source = "checkpoint \"" + o_.resume + "\"";
        torch::Tensor bytes;
        read_entry(*resume_, "masks", bytes, o_.resume);
        competitor_.emplace(net_, self().task_loss(), masks_from_bytes(bytes, source), options);
        for (size_t t = 1; t < competitor_->num_twins(); ++t) {  // twins differ where masks have random parts
          torch::Tensor own;
          if (resume_->try_read(fmt::format("masks_{}", t), own))
            competitor_->twin(t).set_masks(masks_from_bytes(own, source));
        }
      } else {
        competitor_.emplace(net_, self().task_loss(), options);
      }
    }
    if (resume_) {
      restore();
    } else {
      nlohmann::ordered_json start{{"event", "start"}, {"config", run_config(o_)}};
      if (dist_.distributed()) {  // --batch1/--batch2 (in the config) are per rank
        start["world_size"] = dist_.world_size();
        start["global_batch1"] = o_.batch1 * dist_.world_size();
        start["global_batch2"] = o_.batch2 * dist_.world_size();
      }
      log_.write(start);
      begin_stage(/*fresh=*/true, /*refresh_masks=*/false);
    }
    if (dist_.distributed()) {
      // Data parallel: rank 0's weights and buffers everywhere (the twin's own BatchNorm statistics
      // included), gradients averaged during backward, rank 0's masks everywhere.
      if (competitor_) {
        ddp_ = std::make_unique<ohem::DistributedDataParallel>(dist_, *competitor_);
        ohem::sync_masks(dist_, *competitor_);
      } else {
        ddp_ = std::make_unique<ohem::DistributedDataParallel>(dist_, net_);
      }
      say(fmt::format("distributed: {} processes ({}{}), this is rank {}; batch per rank {}, global {}",
                      dist_.world_size(), dist_.backend_name(),
                      device_.is_cuda() ? ", each rank on cuda:LOCAL_RANK" : "", dist_.rank(),
                      schedule_.finished() ? 0 : schedule_.stage().batch,
                      schedule_.finished() ? 0 : schedule_.stage().batch * dist_.world_size()));
    }
    say(fmt::format("{}: {} images ({} train / {} test, split by {}), threads: {}, OHEM: {}{}", data_.name,
                    data_.size(), split_.train.size(), split_.test.size(), split_kind_,
                    torch::get_num_threads(), o_.ohem ? "on" : "off",
                    o_.ohem ? fmt::format(" (ratio {}, BatchNorm {}, {})", o_.ratio,
                                          ohem::to_string(o_.batchnorm), ohem::to_string(o_.mode))
                            : std::string()));
  }

  /// True when every stage is done or the step limit is reached.
  bool done() const { return schedule_.finished() || (o_.max_steps > 0 && global_step() >= o_.max_steps); }

  /// Runs one optimiser step of the current stage, then advances epoch and stage (evaluating and
  /// checkpointing at epoch ends). Throws if training is done.
  StepStats step() {
    TORCH_CHECK(!done(), "the trainer is done");
    const Stage st = schedule_.stage();
    const int64_t steps = steps_per_epoch(st);
    const SchedulePosition at = schedule_.position();
    // This rank's share of the epoch (all of it for one process): positions r, r + N, ... of the epoch's
    // order, which every rank computes identically from --seed.
    const std::vector<int64_t>& mine = epoch_share();
    const int64_t share = static_cast<int64_t>(mine.size()), counted = sampler().counted();
    std::vector<int64_t> items;
    padding_.assign(static_cast<size_t>(st.batch), false);
    for (int64_t k = 0; k < st.batch; ++k) {
      const int64_t j = (at.step_in_epoch * st.batch + k) % std::max<int64_t>(1, share);
      items.push_back(share > 0 ? mine[static_cast<size_t>(j)] : at.step_in_epoch * st.batch + k);
      padding_[static_cast<size_t>(k)] = j >= counted;  // a repeat that evens out the shares
    }
    // Augmentation draws from (seed, position) — and the rank, so that ranks do not share draws.
    std::mt19937_64 rng(schedule_.step_seed(o_.seed) ^
                        (0x9E3779B97F4A7C15ULL * static_cast<uint64_t>(dist_.rank())));
    net_->train();
    StepStats s = self().train_step(items, rng);
    TORCH_CHECK(std::isfinite(s.loss), "the training loss is not finite (", s.loss, ") at stage ", st.number,
                ", epoch ", at.epoch, ", step ", at.step_in_epoch);
    // Data parallel: wait for the gradient all-reduce (launched during backward) and broadcast the
    // BatchNorm statistics from rank 0; the reported losses become the means over ranks.
    if (ddp_) {
      ddp_->sync_gradients();
      const torch::Tensor mean =
          dist_.all_reduce(torch::tensor({s.loss, s.task_full, s.task_twin, s.consistency}, torch::kDouble)) /
          dist_.world_size();
      s.loss = mean[0].item<double>();
      s.task_full = mean[1].item<double>();
      s.task_twin = mean[2].item<double>();
      s.consistency = mean[3].item<double>();
    }
    optimizer_->step();
    // OHEM: count the step (recomputes the masks only when TwinOptions::refresh_every > 0); rank 0's
    // masks on every rank after a refresh.
    if (competitor_ && competitor_->step()) ohem::sync_masks(dist_, *competitor_);
    s.stage = st.number;
    s.epoch = at.epoch;
    s.step = at.step_in_epoch;
    schedule_.advance_step();
    running_.push_back(s);
    if (progress_) {
      progress_->update(
          schedule_.position().step_in_epoch,
          fmt::format(
              "loss {:.4f} task {:.4f}{}", s.loss, s.task_full,
              o_.ohem ? fmt::format(" twin {:.4f} cons {:.5f}", s.task_twin, s.consistency) : std::string()));
    }
    log_.write(nlohmann::ordered_json{{"event", "step"},
                                      {"stage", st.number},
                                      {"epoch", at.epoch},
                                      {"step", s.step},
                                      {"global_step", global_step()},
                                      {"lr", schedule_.lr()},
                                      {"loss", s.loss},
                                      {"task_full", s.task_full},
                                      {"task_twin", s.task_twin},
                                      {"consistency", s.consistency},
                                      {"elapsed_s", elapsed()}});
    const bool epoch_end = schedule_.position().step_in_epoch >= steps;
    if (epoch_end) end_epoch();
    if (!epoch_end && o_.checkpoint_every > 0 && global_step() % o_.checkpoint_every == 0)
      save_checkpoint(checkpoint_path());
    test_kill_hook();
    return s;
  }

  /// Trains until done, evaluates and writes results.json and hardest.csv; returns the final evaluation.
  /// Under a launcher every rank trains and evaluates; rank 0 writes. With the environment variable
  /// OHEM_TRAINER_CHECKSUM set, every rank prints a checksum of its final parameters and buffers to
  /// stderr (tests compare the ranks'); see `parameter_checksum`.
  EvalResult train() {
    while (!done()) step();
    if (progress_) progress_->finish();
    EvalResult r = evaluate();
    if (!history_.empty() && schedule_.finished()) history_.back().test_srcc = r.overall.srcc;
    const std::map<std::string, EvalResult> sets = evaluate_test_sets();
    std::optional<EvalResult> chosen;
    std::map<std::string, EvalResult> chosen_sets;
    if (best_net_) {  // --val-fraction: the test results of the chosen epoch too
      Net last = spare_net();
      copy_weights(*net_, *last);
      copy_weights(*best_net_, *net_);
      chosen = evaluate();
      chosen_sets = evaluate_test_sets();
      copy_weights(*last, *net_);
    }
    dist_.run_on_main([&] { write_results(r, sets, chosen ? &*chosen : nullptr, chosen_sets); });
    if (std::getenv("OHEM_TRAINER_CHECKSUM") != nullptr) {
      std::cerr << fmt::format("parameter checksum of rank {} of {}: {:016x}\n", dist_.rank(),
                               dist_.world_size(), parameter_checksum());
    }
    return r;
  }

  /// Returns the FNV-1a hash of the bytes of every parameter and buffer of the model, in order: equal
  /// on every rank of a data-parallel run (they hold bitwise identical models).
  uint64_t parameter_checksum() {
    std::string bytes;
    auto add = [&](const torch::Tensor& t) {
      const torch::Tensor c = t.detach().to(torch::kCPU).contiguous();
      bytes.append(static_cast<const char*>(c.data_ptr()), static_cast<size_t>(c.nbytes()));
    };
    for (const auto& p : net_->parameters()) add(p);
    for (const auto& b : net_->buffers()) add(b);
    return fnv1a64(bytes.data(), bytes.size());
  }

  /// Evaluates the full model on the test split (eval mode, no gradient). Distributed: each rank
  /// predicts a contiguous share of the test split, the predictions are gathered in split order, and
  /// rank 0 computes the correlations (the other ranks return the predictions with zero correlations).
  EvalResult evaluate() { return evaluate(split_.test); }

  /// Evaluates the full model on the dataset images `indices` (the test split, or a `--test` set's), as
  /// `evaluate()` does.
  EvalResult evaluate(const std::vector<int64_t>& indices) {
    torch::NoGradGuard no_grad;
    net_->eval();
    EvalResult r;
    r.indices = indices;
    const auto [first, last] = dist_.shard(static_cast<int64_t>(indices.size()));
    std::vector<torch::Tensor> batch;
    auto flush = [&] {
      if (batch.empty()) return;
      torch::Tensor p = self()
                            .predict(torch::stack(batch).to(device_))
                            .reshape({-1})
                            .to(torch::kCPU, torch::kDouble)
                            .contiguous();
      for (int64_t k = 0; k < p.size(0); ++k) r.predictions.push_back(p[k].item<double>());
      batch.clear();
    };
    for (int64_t at = first; at < last; ++at) {
      const int64_t i = indices[static_cast<size_t>(at)];
      const torch::Tensor x = test_transform().finish(test_store_->get(i));
      if (!batch.empty() &&
          (batch.front().sizes() != x.sizes() || static_cast<int64_t>(batch.size()) >= o_.eval_batch))
        flush();
      batch.push_back(x);
    }
    flush();
    net_->train();
    if (dist_.distributed()) {
      const torch::Tensor all = dist_.all_gather_cat(torch::tensor(r.predictions, torch::kDouble));
      r.predictions.assign(all.data_ptr<double>(), all.data_ptr<double>() + all.numel());
      if (!dist_.is_main()) return r;
    }
    std::vector<double> mos;
    std::vector<std::string> types;
    bool typed = false;
    for (int64_t i : indices) {
      const Sample& s = data_.samples[static_cast<size_t>(i)];
      mos.push_back(s.mos);
      types.push_back(s.type);
      typed = typed || !s.type.empty();
    }
    r.overall = correlations(r.predictions, mos);
    if (typed) r.by_type = correlations_by(r.predictions, mos, types);
    if (!type_group_.empty() && &indices == &split_.test) {  // --split kadid-*: the test split's type groups
      std::vector<std::string> groups;
      for (const auto& t : types) groups.push_back(type_group_.at(t));
      r.by_type_group = correlations_by(r.predictions, mos, groups);
    }
    return r;
  }

  /// Evaluates every `--test` set (name → result; empty without them).
  std::map<std::string, EvalResult> evaluate_test_sets() {
    std::map<std::string, EvalResult> out;
    for (const TestSet& t : test_sets_) out[t.name] = evaluate(t.indices);
    return out;
  }

  /// Writes a checkpoint atomically, with a checksum: the run's configuration, model, optimiser, schedule
  /// position, the twin's masks (in `ohem::MaskSet`'s file format), RNG state, hardness and the log's
  /// length. Distributed: a collective (every rank's RNG state is gathered); rank 0 writes the file.
  void save_checkpoint(const std::string& path) {
    torch::Tensor rng_states;
    if (dist_.distributed()) {
      at::Generator gen = at::globalContext().defaultGenerator(torch::kCPU);
      torch::Tensor mine;
      {
        std::lock_guard<std::mutex> lock(gen.mutex());
        mine = gen.get_state();
      }
      rng_states = dist_.all_gather_cat(mine.reshape({1, -1}));
    }
    dist_.run_on_main([&] { write_checkpoint(path, rng_states); });
  }

 private:
  // The checkpoint file (rank 0): the payload of `save_checkpoint`.
  void write_checkpoint(const std::string& path, const torch::Tensor& rng_states) {
    torch::serialize::OutputArchive root;
    root.write("config", c10::IValue(run_config(o_).dump()));
    root.write("trainer", c10::IValue(std::string(Derived::kName)));
    torch::serialize::OutputArchive model;
    net_->save(model);
    root.write("model", model);
    torch::serialize::OutputArchive opt;
    optimizer_->save(opt);
    root.write("optimizer", opt);
    const SchedulePosition& p = schedule_.position();
    root.write("stage_index", c10::IValue(static_cast<int64_t>(p.stage_index)));
    root.write("epoch", c10::IValue(p.epoch));
    root.write("step_in_epoch", c10::IValue(p.step_in_epoch));
    root.write("global_step", c10::IValue(p.global_step));
    {
      at::Generator gen = at::globalContext().defaultGenerator(torch::kCPU);
      std::lock_guard<std::mutex> lock(gen.mutex());
      root.write("torch_rng", gen.get_state());
    }
    if (competitor_) {
      root.write("masks", mask_bytes(competitor_->twin().masks()));
      for (size_t t = 1; t < competitor_->num_twins(); ++t)  // twins differ where masks have random parts
        root.write(fmt::format("masks_{}", t), mask_bytes(competitor_->twin(t).masks()));
    }
    root.write("hardness", tracker_.values());
    root.write("warnings", c10::IValue(nlohmann::json(warnings_).dump()));
    if (best_net_) {  // --val-fraction: the chosen epoch's weights, so that a resume needs nothing else
      torch::serialize::OutputArchive best;
      best_net_->save(best);
      root.write("best_model", best);
    }
    root.write("selection", c10::IValue(nlohmann::json{{"best_stage", best_.stage},
                                                       {"best_epoch", best_.epoch},
                                                       {"best_val_srcc", best_.val_srcc}}
                                            .dump()));
    root.write("log_bytes", c10::IValue(log_.bytes()));
    root.write("world_size", c10::IValue(static_cast<int64_t>(dist_.world_size())));
    if (rng_states.defined()) root.write("torch_rng_ranks", rng_states);
    save_checked(root, path);
  }

 public:
  /// Returns the model.
  Net& net() { return net_; }
  /// Returns the self-competitor (null without OHEM).
  Competitor* competitor() { return competitor_ ? &*competitor_ : nullptr; }
  /// Returns the optimiser of the current stage.
  torch::optim::Adam& optimizer() { return *optimizer_; }
  /// Returns where the model trains (--device).
  const torch::Device& device() const { return device_; }
  /// Returns the test transform of this run (--test-resize, --test-crop), as `ohem-score` applies it.
  TestTransform test_transform() const { return TestTransform{o_.test_resize, o_.test_crop}; }
  /// Returns the dataset, the split and the options.
  const Dataset& data() const { return data_; }
  const Split& split() const { return split_; }
  const TrainOptions& options() const { return o_; }
  /// Returns the hardness tracker of the current epoch (per-sample twin disagreement with OHEM,
  /// per-sample loss without; reset at every epoch end).
  ohem::HardnessTracker& tracker() { return tracker_; }
  /// Returns each sample's hardness averaged over the epochs this process trained (the mean of its
  /// per-epoch means; not restored on resume).
  const ohem::HardnessTracker& run_hardness() const { return run_tracker_; }
  /// Returns one entry per epoch this process trained (not restored on resume).
  const std::vector<EpochStats>& history() const { return history_; }
  /// Returns the schedule and its position.
  const Schedule& schedule() const { return schedule_; }
  /// Returns the number of steps done.
  int64_t global_step() const { return schedule_.position().global_step; }
  /// Returns the default checkpoint path (<out>/checkpoint.pt).
  std::string checkpoint_path() const { return (std::filesystem::path(o_.out) / "checkpoint.pt").string(); }
  /// Returns the path of the chosen epoch's checkpoint (<out>/best.pt; with --val-fraction).
  std::string best_path() const { return (std::filesystem::path(o_.out) / "best.pt").string(); }
  /// Returns the process group (a single process without launcher variables).
  const ohem::DistributedContext& distributed() const { return dist_; }

 protected:
  Derived& self() { return static_cast<Derived&>(*this); }

  /// Returns the current stage.
  const Stage& stage() const { return schedule_.stage(); }
  /// Returns the epoch within the stage.
  int64_t epoch() const { return schedule_.position().epoch; }

  /// Loads, augments (seeded by `rng`) and stacks training images into [B, 3, crop, crop].
  torch::Tensor load_train(const std::vector<int64_t>& indices, std::mt19937_64& rng) {
    TrainTransform tf{0, o_.crop, o_.flip};
    std::vector<torch::Tensor> xs;
    for (int64_t i : indices) xs.push_back(tf(train_store_->get(i), rng));
    return torch::stack(xs).to(device_);
  }

  /// Returns the backbone (for pretrained weights): the net's child module named "backbone".
  torch::nn::Module& backbone() {
    auto children = net_->named_children();
    TORCH_CHECK(children.contains("backbone"), "the model has no child module named \"backbone\"");
    return *children["backbone"];
  }

  /// True when the twin draws its own crops (--twin-crops independent): the step then loads a second,
  /// independently augmented batch of the same images for it.
  bool independent_twin_crops() const { return competitor_ && o_.twin_crops == "independent"; }

  /// The OHEM loss of one step: the full model on `full` and every twin on `twin` (a tensor or a pair of
  /// tensors; the same batch unless --twin-crops independent), against `targets`.
  template <typename Input, typename... Targets>
  ohem::OhemLossResult ohem_loss(const Input& full, const Input& twin, const Targets&... targets) {
    if (!independent_twin_crops()) return (*competitor_)(full, targets...);
    return competitor_->run(
        [this, full, twin] {
          // Which input: the twins share the net, and one of them is in its masked scope, or none is.
          bool in_twin = false;
          for (size_t k = 0; k < competitor_->num_twins(); ++k)
            in_twin = in_twin || competitor_->twin(k).in_scope();
          const Input& x = in_twin ? twin : full;
          if constexpr (std::is_same_v<Input, torch::Tensor>) {
            return net_->forward(x);
          } else {
            torch::Tensor a = net_->forward(x.first);  // first then second, as for the same crops
            torch::Tensor b = net_->forward(x.second);
            return std::make_pair(std::move(a), std::move(b));
          }
        },
        targets...);
  }

  /// Prints a line unless quiet (rank 0 only).
  void say(const std::string& s) const {
    if (!o_.quiet && dist_.is_main()) std::cout << s << std::endl;
  }

  /// Records per-sample hardness of the step's items (`indices[k]` belongs to the k-th item given to
  /// `train_step`). Distributed: a collective that gathers every rank's values into rank 0's tracker,
  /// without the repeats that even out the ranks' shares.
  void record_hardness(const torch::Tensor& indices, const torch::Tensor& hardness) {
    if (!dist_.distributed()) {
      tracker_.update(indices, hardness);
      return;
    }
    torch::Tensor marked = indices.to(torch::kLong).clone();
    for (size_t k = 0; k < padding_.size() && static_cast<int64_t>(k) < marked.numel(); ++k)
      if (padding_[k]) marked[static_cast<int64_t>(k)] = -1;
    ohem::gather_hardness(dist_, tracker_, marked, hardness);
  }

  TrainOptions o_;
  ohem::DistributedContext dist_;  // the process group (one process without launcher variables)
  Dataset data_;
  Split split_;
  std::string split_kind_;
  Net net_{nullptr};
  std::optional<Competitor> competitor_;
  ohem::HardnessTracker tracker_;
  ohem::HardnessTracker run_tracker_;  // per-epoch means folded in at every epoch end
  std::vector<EpochStats> history_;
  std::unique_ptr<ohem::DistributedDataParallel> ddp_;  // distributed runs only

 private:
  // Distributed: every rank's configuration (the option table, as a checkpoint stores it) against rank
  // 0's, before anything else is done; every rank stops at once, with the same list of differences, if one
  // differs (otherwise: diverging weights, mixed data, a stall until the collective timeout, or a late
  // error about tensor shapes). The options of `per_process_option` may differ.
  void check_ranks_agree() {
    if (!dist_.distributed()) return;
    const std::string mine = run_config(o_).dump();
    std::vector<int32_t> codes;
    for (unsigned char c : mine) codes.push_back(c);
    const torch::Tensor bytes = torch::tensor(codes, torch::kInt);
    const torch::Tensor lengths = dist_.all_gather_cat(torch::tensor({bytes.size(0)}, torch::kLong));
    const torch::Tensor all = dist_.all_gather_cat(bytes);
    std::vector<nlohmann::json> configs;
    int64_t at = 0;
    for (int r = 0; r < dist_.world_size(); ++r) {
      const int64_t n = lengths[r].item<int64_t>();
      const torch::Tensor b = all.narrow(0, at, n).to(torch::kUInt8).contiguous();
      at += n;
      configs.push_back(
          nlohmann::json::parse(std::string(static_cast<const char*>(b.data_ptr()), static_cast<size_t>(n))));
    }
    std::string lines;
    for (int r = 1; r < dist_.world_size(); ++r)
      for (const auto& d : rank_differences(configs[0], configs[static_cast<size_t>(r)], r))
        lines += "\n  " + d;
    TORCH_CHECK(lines.empty(), "the ranks were started with different options (every rank must run rank 0's ",
                "configuration; rank ", dist_.rank(), " of ", dist_.world_size(), " stops):", lines);
  }

  // Test-only fault injection (tests/distributed/run_elastic.sh), off unless the environment variable
  // OHEM_TEST_KILL="<rank>:<global step>:<marker file>" is set: that rank kills itself with SIGKILL
  // after that step when the marker file does not exist yet, creating it first, so a launcher's
  // restart of the same command line runs through.
  void test_kill_hook() const {
    const char* spec = std::getenv("OHEM_TEST_KILL");
    if (spec == nullptr) return;
    int rank = -1;
    long long step = -1;
    int marker_at = 0;
    TORCH_CHECK(
        std::sscanf(spec, "%d:%lld:%n", &rank, &step, &marker_at) == 2 && marker_at > 0 && spec[marker_at],
        "OHEM_TEST_KILL: expected <rank>:<step>:<marker file>, got \"", spec, "\"");
    const std::string marker(spec + marker_at);
    if (rank != dist_.rank() || step != global_step() || std::filesystem::exists(marker)) return;
    std::ofstream(marker) << "killed rank " << rank << " after step " << step << "\n";
    std::cerr << fmt::format("OHEM_TEST_KILL: rank {} kills itself after step {}\n", rank, step)
              << std::flush;
    std::raise(SIGKILL);
  }

  // --resume auto: resume from --out's checkpoint when there is one, else start afresh (replacing what a
  // run killed before its first checkpoint left in --out), so that a launcher's restart needs no person.
  // Distributed: every rank must see what rank 0 sees.
  void resolve_auto_resume() {
    if (o_.resume != "auto") return;
    const std::string ckpt = checkpoint_path();
    std::error_code ec;
    const bool found = std::filesystem::is_regular_file(ckpt, ec);
    const torch::Tensor seen =
        dist_.all_gather_cat(torch::tensor({static_cast<int64_t>(found)}, torch::kLong));
    TORCH_CHECK(seen.min().item<int64_t>() == seen.max().item<int64_t>(),
                "--resume auto: the ranks disagree on ", "whether \"", ckpt, "\" exists (rank ", dist_.rank(),
                (found ? " sees it" : " does not see it"), "); every rank must see rank 0's --out");
    o_.resume = found ? ckpt : std::string();
    auto_fresh_ = !found;
    say(found ? fmt::format("--resume auto: resuming from {}", ckpt)
              : fmt::format("--resume auto: no checkpoint in {}; starting a fresh run", o_.out));
  }

  // Locks --out; refuses a directory that holds another run (unless --overwrite); removes temporaries a
  // killed run of ours left; reads and checks the checkpoint to resume. Before any data is read.
  // Distributed: rank 0 alone locks and cleans --out (a failure there fails every rank); every rank
  // reads and checks the checkpoint.
  void prepare_output() {
    namespace fs = std::filesystem;
    if (!o_.resume.empty()) {
      TORCH_CHECK(fs::is_regular_file(o_.resume), "checkpoint \"", o_.resume, "\" does not exist");
    }
    std::error_code ec;
    const fs::path from = fs::path(o_.resume).parent_path();
    resume_in_place_ = !o_.resume.empty() && fs::equivalent(from.empty() ? "." : from, o_.out, ec);
    dist_.run_on_main([&] {
      lock_ = OutputLock(o_.out);
      const std::vector<std::string> held = existing_run_files(o_.out);
      if (!resume_in_place_ && !held.empty()) {
        std::string list;
        for (const auto& f : held) list += (list.empty() ? "" : ", ") + f;
        TORCH_CHECK(o_.overwrite || auto_fresh_, "output directory \"", o_.out, "\" already holds a run (",
                    list, "); pass --resume ", (fs::path(o_.out) / "checkpoint.pt").string(),
                    " to continue it, --overwrite to replace it, or another --out");
        for (const auto& f : held) fs::remove(fs::path(o_.out) / f);
      }
      remove_stale_run_temporaries(o_.out);
    });
    if (o_.resume.empty()) return;
    resume_ = std::make_unique<torch::serialize::InputArchive>();
    load_checked(*resume_, o_.resume);
    c10::IValue v;
    TORCH_CHECK(resume_->try_read("config", v) && v.isString(), "checkpoint \"", o_.resume,
                "\" holds no configuration");
    nlohmann::json saved;
    try {
      saved = nlohmann::json::parse(v.toStringRef());
    } catch (const nlohmann::json::exception& e) {
      TORCH_CHECK(false, "checkpoint \"", o_.resume, "\": bad configuration: ", e.what());
    }
    const std::vector<std::string> diff = resume_differences(saved, o_);
    if (!diff.empty()) {
      std::string lines;
      for (const auto& d : diff) lines += "\n  " + d;
      TORCH_CHECK(false, "cannot resume \"", o_.resume, "\" with different options (a resumed run must be ",
                  "the run it continues; see docs/examples.md):", lines);
    }
    // The world size is part of the run: the per-rank batch, each rank's share of an epoch and the
    // position within it depend on it (checkpoints without the field come from one process).
    c10::IValue w;
    const int64_t saved_world = resume_->try_read("world_size", w) && w.isInt() ? w.toInt() : 1;
    TORCH_CHECK(saved_world == dist_.world_size(), "cannot resume \"", o_.resume,
                "\" with another number of processes: the checkpoint was written by a run of world size ",
                saved_world, ", this run has world size ", dist_.world_size(),
                " (WORLD_SIZE); launch it with ", saved_world, " process", saved_world == 1 ? "" : "es");
    saved_epochs_.clear();
    for (const char* k : {"--epochs1", "--epochs2"})
      if (saved.at(k).get<int64_t>() > 0) saved_epochs_.push_back(saved.at(k).get<int64_t>());
  }

  // Restores the checkpoint read by prepare_output(): the next step computes exactly what it would have
  // computed without the interruption.
  void restore() {
    const std::string& path = o_.resume;
    restore_selection(path);
    torch::serialize::InputArchive model;
    read_entry(*resume_, "model", model, path);
    load_matching(*net_, model, "checkpoint \"" + path + "\"");
    net_->to(device_);  // the checkpoint is read onto the CPU (load_checked)
    SchedulePosition p;
    const int64_t stage_index = read_int_entry(*resume_, "stage_index", path);
    TORCH_CHECK(stage_index >= 0, "checkpoint \"", path, "\": negative stage_index ", stage_index);
    p.stage_index = static_cast<size_t>(stage_index);
    p.epoch = read_int_entry(*resume_, "epoch", path);
    p.step_in_epoch = read_int_entry(*resume_, "step_in_epoch", path);
    p.global_step = read_int_entry(*resume_, "global_step", path);
    try {
      schedule_.restore(p, saved_epochs_);
    } catch (const c10::Error& e) {
      TORCH_CHECK(false, "checkpoint \"", path, "\": ", e.what_without_backtrace());
    }
    begin_stage(/*fresh=*/false, /*refresh_masks=*/false);
    torch::serialize::InputArchive opt;
    read_entry(*resume_, "optimizer", opt, path);
    try {
      if (optimizer_) {
        optimizer_->load(opt);
        if (!device_.is_cpu()) move_optimizer_state();
      }
    } catch (const c10::Error& e) {
      TORCH_CHECK(false, "checkpoint \"", path,
                  "\": cannot restore the optimiser: ", e.what_without_backtrace());
    }
    set_lr();
    torch::Tensor rng;
    read_entry(*resume_, "torch_rng", rng, path);
    torch::Tensor ranks_rng;
    if (dist_.distributed() && resume_->try_read("torch_rng_ranks", ranks_rng) &&
        ranks_rng.size(0) == dist_.world_size())
      rng = ranks_rng[dist_.rank()].contiguous();  // each rank's own state
    {
      at::Generator gen = at::globalContext().defaultGenerator(torch::kCPU);
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(rng);
    }
    torch::Tensor hv;
    read_entry(*resume_, "hardness", hv, path);
    // Hardness of the run's own images (the --test sets after them may differ on resume: never trained).
    TORCH_CHECK(hv.dim() == 1 && hv.size(0) >= run_images_, "checkpoint \"", path, "\" holds hardness for ",
                hv.numel(), " images, the run's data (--csv, --test-csv) has ", run_images_);
    tracker_.reset();
    for (int64_t i = 0; i < run_images_; ++i) {
      const double h = hv[i].item<double>();
      if (!std::isnan(h)) tracker_.update(torch::tensor({i}), torch::tensor({h}));
    }
    c10::IValue warnings;  // (checkpoints before --init-from have none)
    if (resume_->try_read("warnings", warnings)) {
      TORCH_CHECK(warnings.isString(), "checkpoint \"", path, "\": the entry \"warnings\" is a ",
                  warnings.tagKind(), ", expected a string");
      try {
        warnings_ = nlohmann::json::parse(warnings.toStringRef()).get<std::vector<std::string>>();
      } catch (const nlohmann::json::exception& e) {
        TORCH_CHECK(false, "checkpoint \"", path,
                    "\": the entry \"warnings\" is not a JSON list of strings: ", e.what());
      }
    }
    resume_.reset();
    log_.write(
        nlohmann::ordered_json{{"event", "resume"}, {"checkpoint", path}, {"global_step", p.global_step}});
    say(fmt::format("resumed from {} at stage {}, epoch {}, step {}", path,
                    schedule_.finished() ? 0 : schedule_.stage().number, epoch(), p.step_in_epoch));
  }

  // After an optimiser is restored from a checkpoint (read onto the CPU): its state onto --device.
  void move_optimizer_state() {
    for (auto& kv : optimizer_->state()) {
      auto& s = static_cast<torch::optim::AdamParamState&>(*kv.second);
      s.exp_avg(s.exp_avg().to(device_));
      s.exp_avg_sq(s.exp_avg_sq().to(device_));
      if (s.max_exp_avg_sq().defined()) s.max_exp_avg_sq(s.max_exp_avg_sq().to(device_));
    }
  }

  // --val-fraction on resume: the best epoch so far (the checkpoint's "selection") and its weights (its
  // "best_model": the checkpoint holds all it needs). Resumed into another --out, best.pt is copied there
  // (when it is the same choice). Called first in restore(); `spare_net` leaves the RNG as it was.
  void restore_selection(const std::string& path) {
    c10::IValue v;
    if (val_.empty() || !resume_->try_read("selection", v)) return;
    TORCH_CHECK(v.isString(), "checkpoint \"", path, "\": the entry \"selection\" is a ", v.tagKind(),
                ", expected a string");
    std::string saved;
    try {
      const nlohmann::json j = nlohmann::json::parse(v.toStringRef());
      best_.stage = j.at("best_stage").get<int64_t>();
      best_.epoch = j.at("best_epoch").get<int64_t>();
      best_.val_srcc = j.at("best_val_srcc").is_null() ? NAN : j.at("best_val_srcc").get<double>();
      saved = j.dump();
    } catch (const nlohmann::json::exception& e) {
      TORCH_CHECK(false, "checkpoint \"", path, "\": bad entry \"selection\": ", e.what());
    }
    if (best_.epoch < 0) return;
    torch::serialize::InputArchive model;
    read_entry(*resume_, "best_model", model, path);
    best_net_ = spare_net();
    load_matching(*best_net_, model, "checkpoint \"" + path + "\" (best_model)");
    const std::filesystem::path source = std::filesystem::path(path).parent_path() / "best.pt";
    if (!resume_in_place_ && std::filesystem::is_regular_file(source)) {
      dist_.run_on_main([&] {
        torch::serialize::InputArchive other;
        c10::IValue sel;
        load_checked(other, source.string());
        if (!other.try_read("selection", sel) || !sel.isString() ||
            nlohmann::json::parse(sel.toStringRef()).dump() != saved)
          return;  // another choice (a run killed between writing best.pt and checkpoint.pt): the next one
                   // writes it
        std::ifstream in(source, std::ios::binary);
        atomic_write_text(best_path(), std::string(std::istreambuf_iterator<char>(in), {}));
      });
    }
  }

  // A second model of the run's architecture (for the chosen epoch's weights), made without drawing from
  // the global RNG (its state is saved and put back).
  Net spare_net() {
    at::Generator gen = at::globalContext().defaultGenerator(torch::kCPU);
    torch::Tensor state;
    {
      std::lock_guard<std::mutex> lock(gen.mutex());
      state = gen.get_state();
    }
    Net n = self().make_net();
    {
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(state);
    }
    n->eval();
    return n;
  }

  // Copies the parameters and buffers of `from` into `to` (the same architecture; any devices).
  static void copy_weights(torch::nn::Module& from, torch::nn::Module& to) {
    torch::NoGradGuard no_grad;
    const auto fp = from.named_parameters(), tp = to.named_parameters();
    for (const auto& p : fp) tp[p.key()].copy_(p.value());
    const auto fb = from.named_buffers(), tb = to.named_buffers();
    for (const auto& b : fb) tb[b.key()].copy_(b.value());
  }

  // Steps per epoch: this rank's share of the epoch's items (all of them for one process) / the batch.
  int64_t steps_per_epoch(const Stage& st) { return std::max<int64_t>(1, sampler().per_rank() / st.batch); }

  // The sampler of this rank's share: positions rank, rank + N, ... of the epoch's order (no shuffling
  // of its own: the trainers' epoch orders are already reshuffled per epoch from --seed on every rank).
  const ohem::DistributedSampler& sampler() {
    const int64_t n = self().items_per_epoch();
    if (!sampler_ || sampler_->size() != n)
      sampler_.emplace(n, dist_, ohem::DistributedSamplerOptions().shuffle(false));
    return *sampler_;
  }
  const std::vector<int64_t>& epoch_share() {
    const ohem::DistributedSampler& s = sampler();
    if (share_n_ != s.size()) {
      share_ = s.indices(0);
      share_n_ = s.size();
    }
    return share_;
  }

  void set_lr() {
    if (!optimizer_) return;
    for (auto& g : optimizer_->param_groups())
      static_cast<torch::optim::AdamOptions&>(g.options()).lr(schedule_.lr());
  }

  std::string progress_label() const {
    const Stage& st = schedule_.stage();
    return fmt::format("stage {} epoch {}/{}", st.number, epoch() + 1, st.epochs);
  }

  // Starts the current stage: which parameters train, a fresh Adam, and (a new stage) new masks.
  void begin_stage(bool fresh, bool refresh_masks) {
    if (schedule_.finished()) return;
    const Stage& st = schedule_.stage();
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
    if (refresh_masks && competitor_) {
      competitor_->refresh();
      ohem::sync_masks(dist_, *competitor_);  // distributed: rank 0's masks on every rank
    }
    progress_.emplace(progress_label(), steps_per_epoch(st), o_.progress && !o_.quiet && dist_.is_main());
    if (fresh && competitor_) {
      const ohem::MaskSet& m = competitor_->twin().masks();
      const std::string batch = dist_.distributed()
                                    ? fmt::format("{} per rank ({} global over {} ranks)", st.batch,
                                                  st.batch * dist_.world_size(), dist_.world_size())
                                    : std::to_string(st.batch);
      int64_t parameters = 0;
      for (const auto& p : net_->parameters()) parameters += p.numel();
      const double all = static_cast<double>(std::max<int64_t>(1, parameters));
      say(fmt::format(
          "stage {}: {} epochs, batch {}; twin masks {} of {} weights ({:.1f}% pruned) in {} layer{}: "
          "{:.2f}% of all {} parameters masked, {:.2f}% pruned",
          st.number, st.epochs, batch, m.kept(), m.numel(), 100.0 * m.sparsity(), m.size(),
          m.size() == 1 ? "" : "s", 100.0 * static_cast<double>(m.numel()) / all, parameters,
          100.0 * static_cast<double>(m.numel() - m.kept()) / all));
      log_.write(nlohmann::ordered_json{{"event", "masks"},
                                        {"stage", st.number},
                                        {"kept", m.kept()},
                                        {"total", m.numel()},
                                        {"layers", m.size()},
                                        {"parameters", parameters}});
      warn_if_untrained_masks(st.number);
    }
  }

  /// The twin's layers: the recipe's convolutions, or (--mask-layers conv+linear) every convolution and
  /// Linear layer except the head (the parameters stage 1 trains); --mask-exclude leaves more dense.
  ohem::SlotOptions slot_options() {
    ohem::SlotOptions s = ohem::SlotOptions().exclude(o_.mask_exclude);
    if (o_.mask_layers == "conv") return s;
    TORCH_CHECK(o_.mask_layers == "conv+linear", "--mask-layers must be conv or conv+linear, got ",
                o_.mask_layers);
    std::set<const void*> head;
    for (const auto& p : self().head_parameters()) head.insert(p.unsafeGetTensorImpl());
    std::vector<std::string> exclude = o_.mask_exclude;
    for (const auto& p : net_->named_parameters()) {
      if (head.count(p.value().unsafeGetTensorImpl()) != 0)
        exclude.push_back("^" + regex_escape(p.key()) + "$");
    }
    return s.kinds(ohem::LayerKind::All).exclude(exclude);
  }

  /// After masks were computed: magnitude masks of weights that still hold their initial values are
  /// random masks (a from-scratch backbone frozen in stage 1). Says so on stdout, in log.jsonl and in
  /// results.json ("warnings").
  void warn_if_untrained_masks(int64_t stage) {
    if (!competitor_ || o_.mask_criterion == ohem::MaskCriterion::Random) return;
    int64_t untrained = 0;
    const auto& slots = competitor_->twin().slots();
    for (const auto& slot : slots) {
      const auto it = initial_.find(slot.name);
      if (it != initial_.end() && torch::equal(slot.parameter.detach(), it->second)) ++untrained;
    }
    if (untrained == 0) return;
    const std::string message = fmt::format(
        "magnitude masks of untrained weights are random masks: {} of the {} layers the twin masks in "
        "stage {} still hold their initial weights (start from trained weights with --init-from or "
        "--pretrained)",
        untrained, slots.size(), stage);
    warnings_.push_back(message);
    if (dist_.is_main() && !o_.quiet) std::cout << "warning: " << message << std::endl;
    log_.write(nlohmann::ordered_json{{"event", "warning"}, {"stage", stage}, {"message", message}});
  }

  void end_epoch() {
    const Stage st = schedule_.stage();
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
    nlohmann::ordered_json j{
        {"event", "epoch"},      {"stage", st.number},  {"epoch", epoch()},    {"global_step", global_step()},
        {"loss", loss / n},      {"task_full", tf / n}, {"task_twin", tt / n}, {"consistency", c / n},
        {"elapsed_s", elapsed()}};
    std::string line =
        fmt::format("stage {} epoch {}/{}: loss {:.4f}", st.number, epoch() + 1, st.epochs, loss / n);
    EpochStats es;
    es.stage = st.number;
    es.epoch = epoch();
    es.loss = loss / n;
    es.task_full = tf / n;
    es.task_twin = o_.ohem ? tt / n : NAN;
    es.consistency = o_.ohem ? c / n : NAN;
    {
      const torch::Tensor h = tracker_.values();
      const torch::Tensor seen = ~torch::isnan(h);
      if (seen.any().item<bool>()) {
        es.mean_hardness = h.masked_select(seen).mean().item<double>();
        const torch::Tensor idx = torch::nonzero(seen).reshape({-1});
        run_tracker_.update(idx, h.index_select(0, idx));
      }
    }
    if (o_.eval_every_epoch && !schedule_.last_epoch()) {
      EvalResult r = evaluate();
      es.test_srcc = r.overall.srcc;
      j["srcc"] = r.overall.srcc;
      j["krcc"] = r.overall.krcc;
      j["plcc"] = r.overall.plcc;
      line += fmt::format("  test SRCC {:.4f} KRCC {:.4f} PLCC {:.4f}", r.overall.srcc, r.overall.krcc,
                          r.overall.plcc);
    }
    if (o_.eval_every_epoch && !schedule_.last_epoch() && !test_sets_.empty()) {
      nlohmann::ordered_json sets = nlohmann::ordered_json::object();
      for (const auto& [name, r] : evaluate_test_sets()) {
        sets[name] = {{"srcc", r.overall.srcc}, {"krcc", r.overall.krcc}, {"plcc", r.overall.plcc}};
        line += fmt::format("  {} SRCC {:.4f}", name, r.overall.srcc);
      }
      j["tests"] = sets;
    }
    const bool improved = !val_.empty() && validate_epoch(j, line);
    history_.push_back(es);
    log_.write(j);
    say(line);
    if (o_.hardest > 0) {
      dist_.run_on_main([&] {
        tracker_.save_csv((std::filesystem::path(o_.out) / "hardest.csv").string(), data_.names(),
                          data_.mos());
      });
    }
    tracker_.reset();
    if (schedule_.end_epoch()) {
      begin_stage(/*fresh=*/true, /*refresh_masks=*/true);
    } else {
      set_lr();
      progress_.emplace(progress_label(), steps_per_epoch(st), o_.progress && !o_.quiet && dist_.is_main());
    }
    // best.pt first: a run killed between the two writes resumes from the previous checkpoint.pt and
    // recomputes this epoch exactly, writing the same best.pt again.
    if (improved) save_checkpoint(best_path());
    save_checkpoint(checkpoint_path());
  }

  // --val-fraction: moves a seeded share of the training images to the validation set, by content where
  // training images share a reference (the run's own split unit), else by image.
  void carve_validation() {
    TORCH_CHECK(split_.train.size() >= 4, "--val-fraction needs at least 4 training images, got ",
                split_.train.size());
    const Dataset train = data_.subset(split_.train);
    std::set<std::string> groups;
    for (const auto& s : train.samples) groups.insert(s.group);
    const bool by_group = groups.size() < train.samples.size();
    const uint64_t seed = o_.split_seed ^ 0x76616C69646174ULL;  // "validat": not the test split's draws
    const Split v = by_group ? split_by_group(train, 1.0 - o_.val_fraction, seed)
                             : split_by_image(train, 1.0 - o_.val_fraction, seed);
    std::vector<int64_t> keep;
    for (int64_t i : v.train) keep.push_back(split_.train[static_cast<size_t>(i)]);
    for (int64_t i : v.test) val_.push_back(split_.train[static_cast<size_t>(i)]);
    std::sort(keep.begin(), keep.end());
    std::sort(val_.begin(), val_.end());
    TORCH_CHECK(val_.size() >= 3, "--val-fraction ", o_.val_fraction, " leaves ", val_.size(),
                " validation image(s); the validation SRCC needs at least 3 (raise --val-fraction)");
    split_.train = std::move(keep);
    split_kind_ += by_group ? ", validation by content" : ", validation by image";
  }

  // Evaluates the validation set after an epoch (every epoch, the last included), adds it to the epoch's
  // log line, and keeps the weights if its SRCC is the best so far (the first epoch's always; ties keep
  // the earlier). Returns true if this epoch is the new best. Distributed: rank 0 decides, every rank
  // follows.
  bool validate_epoch(nlohmann::ordered_json& j, std::string& line) {
    const EvalResult r = evaluate(val_);
    j["val"] = {{"srcc", r.overall.srcc}, {"krcc", r.overall.krcc}, {"plcc", r.overall.plcc}};
    line += fmt::format("  val SRCC {:.4f}", r.overall.srcc);
    // NaN (a constant prediction) never wins; any number beats a NaN best.
    bool improved = dist_.is_main() && !std::isnan(r.overall.srcc) &&
                    (best_.epoch < 0 || std::isnan(best_.val_srcc) || r.overall.srcc > best_.val_srcc);
    if (dist_.distributed()) {
      const torch::Tensor all = dist_.all_gather_cat(torch::tensor({static_cast<int64_t>(improved)}));
      improved = all[0].item<int64_t>() != 0;
    }
    if (!improved) return false;
    best_.stage = schedule_.stage().number;
    best_.epoch = epoch();
    best_.val_srcc = r.overall.srcc;
    if (!best_net_) best_net_ = spare_net();
    copy_weights(*net_, *best_net_);
    line += " (best so far)";
    return true;
  }

  double elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

  // results.json's "selection" (--val-fraction): the chosen epoch and its test results; null without.
  template <typename Table>
  nlohmann::ordered_json selection_results(const EvalResult* chosen,
                                           const std::map<std::string, EvalResult>& sets,
                                           const Table& table) {
    if (chosen == nullptr) return nullptr;
    say(fmt::format(
        "chosen on validation: stage {} epoch {} (val SRCC {:.4f}); its test ({} images): SRCC {:.4f} "
        "KRCC {:.4f} PLCC {:.4f}",
        best_.stage, best_.epoch + 1, best_.val_srcc, chosen->overall.count, chosen->overall.srcc,
        chosen->overall.krcc, chosen->overall.plcc));
    return {{"val_fraction", o_.val_fraction},
            {"val_images", val_.size()},
            {"best_stage", best_.stage},
            {"best_epoch", best_.epoch},
            {"best_val_srcc", best_.val_srcc},
            {"checkpoint",
             std::filesystem::is_regular_file(best_path()) ? nlohmann::json(best_path()) : nlohmann::json()},
            {"test",
             {{"srcc", chosen->overall.srcc},
              {"krcc", chosen->overall.krcc},
              {"plcc", chosen->overall.plcc},
              {"count", chosen->overall.count},
              {"by_type", table(chosen->by_type)}}},
            {"tests", test_results(sets, table)}};
  }

  // results.json's "tests": per --test set, its correlations and per-type table.
  template <typename Table>
  static nlohmann::ordered_json test_results(const std::map<std::string, EvalResult>& sets,
                                             const Table& table) {
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    for (const auto& [name, t] : sets)
      j[name] = {{"srcc", t.overall.srcc},
                 {"krcc", t.overall.krcc},
                 {"plcc", t.overall.plcc},
                 {"count", t.overall.count},
                 {"by_type", table(t.by_type)}};
    return j;
  }

  void write_results(const EvalResult& r, const std::map<std::string, EvalResult>& sets,
                     const EvalResult* chosen, const std::map<std::string, EvalResult>& chosen_sets) {
    say(fmt::format("final test ({} images): SRCC {:.4f} KRCC {:.4f} PLCC {:.4f}", r.overall.count,
                    r.overall.srcc, r.overall.krcc, r.overall.plcc));
    for (const auto& [name, t] : sets)
      say(fmt::format("final {} ({} images): SRCC {:.4f} KRCC {:.4f} PLCC {:.4f}", name, t.overall.count,
                      t.overall.srcc, t.overall.krcc, t.overall.plcc));
    auto table = [](const std::map<std::string, Correlations>& m) {
      nlohmann::ordered_json j = nlohmann::ordered_json::object();
      for (const auto& [k, c] : m)
        j[k] = {{"srcc", c.srcc}, {"krcc", c.krcc}, {"plcc", c.plcc}, {"count", c.count}};
      return j;
    };
    const nlohmann::ordered_json types = table(r.by_type);
    for (const auto& [k, c] : r.by_type_group)
      say(fmt::format("  {} types ({} images): SRCC {:.4f} KRCC {:.4f} PLCC {:.4f}", k, c.count, c.srcc,
                      c.krcc, c.plcc));
    nlohmann::ordered_json j{{"dataset", data_.name},
                             {"csv", o_.csv},
                             {"ohem", o_.ohem},
                             {"ratio", o_.ratio},
                             {"seed", o_.seed},
                             {"split_seed", o_.split_seed},
                             {"steps", global_step()},
                             {"elapsed_s", elapsed()},
                             {"threads", torch::get_num_threads()},
                             {"srcc", r.overall.srcc},
                             {"krcc", r.overall.krcc},
                             {"plcc", r.overall.plcc},
                             {"test_images", r.overall.count},
                             {"by_type", types},
                             {"by_type_group", table(r.by_type_group)},
                             {"type_groups", type_group_},
                             {"tests", test_results(sets, table)},
                             {"selection", selection_results(chosen, chosen_sets, table)},
                             {"warnings", warnings_},
                             {"config", run_config(o_)}};
    if (dist_.distributed()) j["world_size"] = dist_.world_size();
    // The test predictions (what ohem-eval reads; ohem-score gives the same numbers from the checkpoint),
    // written together with results.json: both or neither.
    const bool typed = !r.by_type.empty();
    std::string csv = typed ? "name,mos,prediction,group\n" : "name,mos,prediction\n";
    for (size_t k = 0; k < r.indices.size() && k < r.predictions.size(); ++k) {
      const Sample& s = data_.samples[static_cast<size_t>(r.indices[k])];
      csv +=
          fmt::format("{},{},{}", ohem::csv_field(s.name.empty() ? s.path : s.name), s.mos, r.predictions[k]);
      csv += typed ? "," + ohem::csv_field(s.type) + "\n" : std::string("\n");
    }
    const std::filesystem::path out(o_.out);
    atomic_write_texts({{(out / "results.json").string(),
                         j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n"},
                        {(out / "predictions.csv").string(), csv}});
    log_.write(nlohmann::ordered_json{
        {"event", "final"}, {"srcc", r.overall.srcc}, {"krcc", r.overall.krcc}, {"plcc", r.overall.plcc}});
  }

  OutputLock lock_;  // taken before anything is written; released after the log below is closed
  std::unique_ptr<torch::serialize::InputArchive> resume_;
  bool resume_in_place_ = false;  // resuming into the checkpoint's own directory
  bool auto_fresh_ = false;       // --resume auto found no checkpoint: a fresh run that may replace --out's
  std::vector<int64_t> saved_epochs_;
  std::optional<ImageStore> train_store_, test_store_;
  Schedule schedule_;
  std::optional<torch::optim::Adam> optimizer_;
  std::optional<ohem::DistributedSampler> sampler_;
  std::vector<int64_t> share_;  // this rank's positions of the epoch (sampler_)
  int64_t share_n_ = -1;        // the epoch size share_ was made for
  std::vector<bool> padding_;   // per item of the current step: a repeat that evens out the shares
  std::optional<Progress> progress_;
  std::vector<StepStats> running_;
  JsonLog log_;
  std::chrono::steady_clock::time_point start_;
  std::map<std::string, torch::Tensor> initial_;   // the parameters as make_net() initialised them
  std::vector<std::string> warnings_;              // for results.json (kept in the checkpoint)
  std::map<std::string, std::string> type_group_;  // --split kadid-*: distortion type → head, mid, tail
  std::vector<TestSet> test_sets_;                 // --test: name and dataset indices of each extra set
  std::vector<int64_t> val_;                       // --val-fraction: the validation images (dataset indices)
  int64_t run_images_ = 0;                         // images of --csv and --test-csv (the --test sets follow)
  torch::Device device_{torch::kCPU};              // --device
  struct {
    int64_t stage = 0, epoch = -1;  // the chosen epoch (-1: none yet)
    double val_srcc = NAN;
  } best_;
  Net best_net_{nullptr};  // --val-fraction: the chosen epoch's weights (on the CPU)
};

}  // namespace ohem_examples
