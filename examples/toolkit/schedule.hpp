#pragma once
/// @file
/// The trainers' two-stage schedule (stage 1: backbone frozen, head only; stage 2: everything), the
/// position in it (stage, epoch, step) and what follows from the position: the StepLR learning rate and
/// the seed of a step's pairs and augmentation. A checkpoint stores the position; everything else is
/// recomputed from the options.

#include "command_line.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace ohem_examples {

/// A stage of the schedule.
struct Stage {
  int64_t number = 1;  ///< 1: backbone frozen (head only); 2: everything
  int64_t epochs = 0;
  int64_t batch = 0;
};

/// Where a run is in its schedule. `stage_index == stages().size()` when every stage is done.
struct SchedulePosition {
  size_t stage_index = 0;
  int64_t epoch = 0;          ///< epoch within the stage
  int64_t step_in_epoch = 0;  ///< steps done in the epoch
  int64_t global_step = 0;    ///< steps done in all
};

/// The stages of `--epochs1/--batch1`, `--epochs2/--batch2` (a stage of 0 epochs is skipped), the
/// StepLR rule of `--lr/--lr-step/--gamma` and the position.
class Schedule {
 public:
  Schedule() = default;
  explicit Schedule(const TrainOptions& o) : lr_(o.lr), gamma_(o.gamma), lr_step_(o.lr_step) {
    if (o.epochs1 > 0) stages_.push_back(Stage{1, o.epochs1, o.batch1});
    if (o.epochs2 > 0) stages_.push_back(Stage{2, o.epochs2, o.batch2});
  }

  /// Returns the stages.
  const std::vector<Stage>& stages() const { return stages_; }
  /// Returns the position.
  const SchedulePosition& position() const { return pos_; }
  /// True when every stage is done.
  bool finished() const { return pos_.stage_index >= stages_.size(); }
  /// Returns the current stage; throws when finished.
  const Stage& stage() const {
    TORCH_CHECK(!finished(), "the schedule is finished");
    return stages_[pos_.stage_index];
  }
  /// True in the last epoch of the last stage.
  bool last_epoch() const {
    return !finished() && pos_.epoch + 1 >= stage().epochs && pos_.stage_index + 1 >= stages_.size();
  }
  /// Returns the StepLR learning rate of the current epoch (0 when finished).
  double lr() const {
    if (finished()) return 0.0;
    return lr_ * std::pow(gamma_, static_cast<double>(pos_.epoch / lr_step_));
  }
  /// Returns the seed of the current step's random draws, from (seed, stage, epoch, step), so a resumed
  /// run draws what the uninterrupted one would have.
  uint64_t step_seed(uint64_t seed) const {
    uint64_t h = seed * 0x9E3779B97F4A7C15ULL;
    for (uint64_t x : {static_cast<uint64_t>(stage().number), static_cast<uint64_t>(pos_.epoch),
                       static_cast<uint64_t>(pos_.step_in_epoch)}) {
      h ^= x + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2);
      h *= 0xBF58476D1CE4E5B9ULL;
    }
    return h;
  }

  /// Counts one step.
  void advance_step() {
    ++pos_.step_in_epoch;
    ++pos_.global_step;
  }
  /// Ends the epoch; returns true if that started a new stage (or finished the last one).
  bool end_epoch() {
    const int64_t epochs = stage().epochs;
    pos_.step_in_epoch = 0;
    if (++pos_.epoch < epochs) return false;
    pos_.epoch = 0;
    ++pos_.stage_index;
    return true;
  }

  /// Moves to a position read from a checkpoint of a run with stages `saved_epochs` (epochs per stage,
  /// in order). If that run had finished and this schedule extends its last stage, the position becomes
  /// the end of the old last epoch, so training goes on in the same stage. Throws if the position does
  /// not fit this schedule.
  void restore(SchedulePosition p, const std::vector<int64_t>& saved_epochs) {
    if (p.stage_index >= saved_epochs.size() && !saved_epochs.empty() && saved_epochs.back() > 0 &&
        saved_epochs.size() == stages_.size() && stages_.back().epochs > saved_epochs.back()) {
      p.stage_index = stages_.size() - 1;
      p.epoch = saved_epochs.back();
      p.step_in_epoch = 0;
    }
    TORCH_CHECK(p.stage_index <= stages_.size(), "the checkpoint is at stage index ", p.stage_index,
                " but the options define ", stages_.size(), " stages");
    TORCH_CHECK(p.stage_index == stages_.size() || p.epoch < stages_[p.stage_index].epochs,
                "the checkpoint is at epoch ", p.epoch, " of a stage of ",
                p.stage_index < stages_.size() ? stages_[p.stage_index].epochs : 0, " epochs");
    pos_ = p;
  }

 private:
  std::vector<Stage> stages_;
  SchedulePosition pos_;
  double lr_ = 1e-4, gamma_ = 0.2;
  int64_t lr_step_ = 3;
};

}  // namespace ohem_examples
