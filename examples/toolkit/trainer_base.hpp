#pragma once
/// @file
/// The training loop both example trainers share: the two-stage schedule with the recipe's optimiser, the
/// OHEM wiring, seeded augmentation, evaluation, logging, hardness export, and checkpoints with exact,
/// checked resume. Each trainer (train_pairwise, train_mos) derives from `TrainerBase` and supplies its
/// model and its training step, where the few OHEM lines live. The parts live in their own headers: the
/// data, its split and the image cache (trainer_data.hpp); what a checkpoint holds, as one table, and the
/// resume check (trainer_state.hpp); the self-competitor's options and mask reports (trainer_ohem.hpp);
/// step, epoch and test reports and the result files (trainer_results.hpp); starting a run: ranks,
/// --resume auto, the output directory (trainer_run.hpp); options and command line (command_line.hpp),
/// schedule (schedule.hpp), checkpoint files (checkpoint.hpp). This header declares the class and holds the
/// loop; the definitions of its other members follow, one header per concept, included at its end: the
/// model's set-up (trainer_setup.hpp), checkpoints and resume (trainer_checkpointing.hpp), evaluation and
/// the result files (trainer_evaluation.hpp), data-parallel wiring (trainer_parallel.hpp).
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
#include "files.hpp"
#include "io.hpp"
#include "output_dir.hpp"
#include "schedule.hpp"
#include "trainer_data.hpp"
#include "trainer_ohem.hpp"
#include "trainer_results.hpp"
#include "trainer_run.hpp"
#include "trainer_state.hpp"
#include "transforms.hpp"

#include <ohem/distributed.hpp>
#include <ohem/hardness.hpp>
#include <ohem/platform.hpp>
#include <ohem/self_competitor.hpp>

#include <torch/torch.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace ohem_examples {

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
    check_ranks_agree(dist_, o_);
    resolve_auto_resume();
    prepare_output();
    torch::set_num_threads(o_.threads);
    // LibTorch builds whose convolution gradients read unwritten memory get oneDNN turned off (stderr
    // says so, also under --quiet: it changes speed).
    if (const std::string warning = ohem::guard_convolution_backward(); !warning.empty() && dist_.is_main())
      std::cerr << warning << std::endl;
    TrainerData d = read_trainer_data(o_);
    data_ = std::move(d.data);
    split_ = std::move(d.split);
    split_kind_ = std::move(d.split_kind);
    type_group_ = std::move(d.type_group);
    val_ = std::move(d.val);
    test_sets_ = std::move(d.test_sets);
    run_images_ = d.run_images;
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
    make_model();
    open_log();
    // OHEM: the self-competitor (the pruned twin and the OHEM loss around the task loss). Its masks are
    // computed here, from the initial weights (the first stage's masks), or, on resume, restored from
    // the checkpoint: computed once either way.
    if (o_.ohem) {
      const auto options = competitor_options(o_, twin_slot_options(o_, *net_, self().head_parameters()));
      if (resume_) {
        const std::string source = "checkpoint \"" + o_.resume + "\"";
        const std::vector<torch::Tensor>& saved = resume_->masks;  // (read_trainer_state: one at least)
        competitor_.emplace(net_, self().task_loss(), masks_from_bytes(saved.at(0), source), options);
        // Twins differ where their masks have random parts: their own, stored after the first.
        for (size_t t = 1; t < competitor_->num_twins() && t < saved.size(); ++t)
          competitor_->twin(t).set_masks(masks_from_bytes(saved[t], source));
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
    if (dist_.distributed()) start_data_parallel();
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
    if (ddp_) sync_step(s);
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
    test_kill_hook(dist_.rank(), global_step());
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
  uint64_t parameter_checksum();

  /// Evaluates the full model on the test split (eval mode, no gradient). Distributed: each rank
  /// predicts a contiguous share of the test split, the predictions are gathered in split order, and
  /// rank 0 computes the correlations (the other ranks return the predictions with zero correlations).
  EvalResult evaluate() { return evaluate(split_.test); }

  /// Evaluates the full model on the dataset images `indices` (the test split, or a `--test` set's), as
  /// `evaluate()` does.
  EvalResult evaluate(const std::vector<int64_t>& indices);

  /// Evaluates every `--test` set (name → result; empty without them).
  std::map<std::string, EvalResult> evaluate_test_sets();

  /// Writes a checkpoint atomically, with a checksum: the run's configuration, model, optimiser, schedule
  /// position, the twin's masks (in `ohem::MaskSet`'s file format), RNG state, hardness and the log's
  /// length. Distributed: a collective (every rank's RNG state is gathered); rank 0 writes the file.
  void save_checkpoint(const std::string& path);

 private:
  // The checkpoint file (rank 0): the payload of `save_checkpoint`, the entries of trainer_state.hpp's table.
  void write_checkpoint(const std::string& path, const torch::Tensor& rng_states);

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
  torch::nn::Module& backbone();

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
  void record_hardness(const torch::Tensor& indices, const torch::Tensor& hardness);

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
  // Makes the model (seeded), keeps its initial weights, loads --pretrained and --init-from, and moves it
  // to --device.
  void make_model();

  // Opens log.jsonl (rank 0 alone writes it); on resume in place, cut back to the checkpoint's length.
  void open_log();

  // Data parallel (WORLD_SIZE > 1): wraps the model or the self-competitor and says how the run is spread.
  void start_data_parallel();

  // Data parallel, after backward: waits for the gradient all-reduce (launched during backward),
  // broadcasts the BatchNorm statistics from rank 0 and makes `s`'s losses the means over ranks.
  void sync_step(StepStats& s);

  // Says and logs the masks of a new stage, and warns when they are masks of untrained weights.
  void report_masks(const Stage& st);

  // --resume auto: resume from --out's checkpoint when there is one, else start afresh (replacing what a
  // run killed before its first checkpoint left in --out), so that a launcher's restart needs no person.
  void resolve_auto_resume();

  // Locks --out and checks it (`claim_output_dir`), then reads and checks the checkpoint to resume. Before
  // any data is read. Distributed: rank 0 alone locks and cleans --out (a failure there fails every
  // rank); every rank reads and checks the checkpoint.
  void prepare_output();

  // Restores the checkpoint read by prepare_output(): the next step computes exactly what it would have
  // computed without the interruption.
  void restore();

  // --val-fraction on resume: the best epoch so far (the checkpoint's "selection") and its weights (its
  // "best_model": the checkpoint holds all it needs). Resumed into another --out, best.pt is copied there
  // (when it is the same choice). Called first in restore(); `spare_net` leaves the RNG as it was.
  void restore_selection(const std::string& path);

  // A second model of the run's architecture (for the chosen epoch's weights), made without drawing from
  // the global RNG (its state is saved and put back).
  Net spare_net();

  // Steps per epoch: this rank's share of the epoch's items (all of them for one process) / the batch.
  int64_t steps_per_epoch(const Stage& st) { return std::max<int64_t>(1, sampler().per_rank() / st.batch); }

  // The sampler of this rank's share: positions rank, rank + N, ... of the epoch's order (no shuffling
  // of its own: the trainers' epoch orders are already reshuffled per epoch from --seed on every rank).
  const ohem::DistributedSampler& sampler();
  const std::vector<int64_t>& epoch_share();

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
    if (fresh && competitor_) report_masks(st);
  }

  /// After masks were computed: magnitude masks of weights that still hold their initial values are
  /// random masks (a from-scratch backbone frozen in stage 1). Says so on stdout, in log.jsonl and in
  /// results.json ("warnings").
  void warn_if_untrained_masks(int64_t stage);

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

  // Evaluates the validation set after an epoch (every epoch, the last included), adds it to the epoch's
  // log line, and keeps the weights if its SRCC is the best so far (the first epoch's always; ties keep
  // the earlier). Returns true if this epoch is the new best. Distributed: rank 0 decides, every rank
  // follows.
  bool validate_epoch(nlohmann::ordered_json& j, std::string& line);

  double elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

  // Writes results.json and predictions.csv (both or neither) and says the final results: `r` on the test
  // split, `sets` on the --test sets, and with --val-fraction the chosen epoch's, `chosen` and `chosen_sets`.
  void write_results(const EvalResult& r, const std::map<std::string, EvalResult>& sets,
                     const EvalResult* chosen, const std::map<std::string, EvalResult>& chosen_sets);

  OutputLock lock_;  // taken before anything is written; released after the log below is closed
  std::optional<TrainerState> resume_;  // the checkpoint to resume (until restored)
  bool resume_in_place_ = false;        // resuming into the checkpoint's own directory
  bool auto_fresh_ = false;  // --resume auto found no checkpoint: a fresh run that may replace --out's
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
  ChosenEpoch best_;                               // --val-fraction: the chosen epoch so far
  Net best_net_{nullptr};                          // --val-fraction: the chosen epoch's weights (on the CPU)
};

}  // namespace ohem_examples

// The definitions of TrainerBase's other members, by concept (each includes this header first).
#include "trainer_checkpointing.hpp"
#include "trainer_evaluation.hpp"
#include "trainer_parallel.hpp"
#include "trainer_setup.hpp"
