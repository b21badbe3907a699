#pragma once
/// @file
/// TrainerBase's checkpoints (the definitions of its members, declared in trainer_base.hpp): the output
/// directory and `--resume auto` at start-up, writing a checkpoint (the entries of trainer_state.hpp's
/// table) and restoring one exactly, with the chosen epoch of --val-fraction.

#include "trainer_base.hpp"  // (which includes this header after the class)

#include <ohem/distributed.hpp>

#include <torch/torch.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

namespace ohem_examples {

template <typename Derived, typename Net, typename TaskLoss>
void TrainerBase<Derived, Net, TaskLoss>::save_checkpoint(const std::string& path) {
  torch::Tensor rng_states;
  if (dist_.distributed()) rng_states = dist_.all_gather_cat(cpu_rng_state().reshape({1, -1}));
  dist_.run_on_main([&] { write_checkpoint(path, rng_states); });
}

template <typename Derived, typename Net, typename TaskLoss>
void TrainerBase<Derived, Net, TaskLoss>::write_checkpoint(const std::string& path,
                                                           const torch::Tensor& rng_states) {
  TrainerState s;
  s.config.json = run_config(o_).dump();
  s.trainer = Derived::kName;
  s.model.save = [&](torch::serialize::OutputArchive& a) { net_->save(a); };
  s.optimizer.save = [&](torch::serialize::OutputArchive& a) { optimizer_->save(a); };
  const SchedulePosition& p = schedule_.position();
  s.stage_index = static_cast<int64_t>(p.stage_index);
  s.epoch = p.epoch;
  s.step_in_epoch = p.step_in_epoch;
  s.global_step = p.global_step;
  s.torch_rng = cpu_rng_state();
  if (competitor_) {
    for (size_t t = 0; t < competitor_->num_twins(); ++t)
      s.masks.push_back(mask_bytes(competitor_->twin(t).masks()));
  }
  s.hardness = tracker_.values();
  s.warnings = nlohmann::json(warnings_).dump();
  if (best_net_)  // --val-fraction: the chosen epoch's weights, so that a resume needs nothing else
    s.best_model.save = [&](torch::serialize::OutputArchive& a) { best_net_->save(a); };
  s.selection =
      nlohmann::json{
          {"best_stage", best_.stage}, {"best_epoch", best_.epoch}, {"best_val_srcc", best_.val_srcc}}
          .dump();
  s.log_bytes = log_.bytes();
  s.world_size.ranks = dist_.world_size();
  s.torch_rng_ranks = rng_states;
  write_trainer_state(s, path);
}

template <typename Derived, typename Net, typename TaskLoss>
void TrainerBase<Derived, Net, TaskLoss>::resolve_auto_resume() {
  if (o_.resume != "auto") return;
  const std::string ckpt = checkpoint_path();
  const bool found = auto_resume_finds(dist_, ckpt);
  o_.resume = found ? ckpt : std::string();
  auto_fresh_ = !found;
  say(found ? fmt::format("--resume auto: resuming from {}", ckpt)
            : fmt::format("--resume auto: no checkpoint in {}; starting a fresh run", o_.out));
}

template <typename Derived, typename Net, typename TaskLoss>
void TrainerBase<Derived, Net, TaskLoss>::prepare_output() {
  namespace fs = std::filesystem;
  if (!o_.resume.empty()) {
    TORCH_CHECK(fs::is_regular_file(o_.resume), "checkpoint \"", o_.resume, "\" does not exist");
  }
  std::error_code ec;
  const fs::path from = fs::path(o_.resume).parent_path();
  resume_in_place_ = !o_.resume.empty() && fs::equivalent(from.empty() ? "." : from, o_.out, ec);
  dist_.run_on_main([&] { lock_ = claim_output_dir(o_.out, resume_in_place_, o_.overwrite || auto_fresh_); });
  if (o_.resume.empty()) return;
  resume_ = read_trainer_state(o_.resume, o_, dist_.world_size(), saved_epochs_);
}

template <typename Derived, typename Net, typename TaskLoss>
void TrainerBase<Derived, Net, TaskLoss>::restore() {
  const std::string& path = o_.resume;
  TrainerState& saved = *resume_;
  restore_selection(path);
  load_matching(*net_, saved.model.archive, "checkpoint \"" + path + "\"");
  net_->to(device_);  // the checkpoint is read onto the CPU (load_checked)
  SchedulePosition p;
  TORCH_CHECK(saved.stage_index >= 0, "checkpoint \"", path, "\": negative stage_index ", saved.stage_index);
  p.stage_index = static_cast<size_t>(saved.stage_index);
  p.epoch = saved.epoch;
  p.step_in_epoch = saved.step_in_epoch;
  p.global_step = saved.global_step;
  try {
    schedule_.restore(p, saved_epochs_);
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, "checkpoint \"", path, "\": ", e.what_without_backtrace());
  }
  begin_stage(/*fresh=*/false, /*refresh_masks=*/false);
  try {
    if (optimizer_) {
      optimizer_->load(saved.optimizer.archive);
      if (!device_.is_cpu()) move_adam_state(*optimizer_, device_);
    }
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, "checkpoint \"", path,
                "\": cannot restore the optimiser: ", e.what_without_backtrace());
  }
  set_lr();
  const torch::Tensor& ranks_rng = saved.torch_rng_ranks;
  set_cpu_rng_state(dist_.distributed() && ranks_rng.defined() && ranks_rng.size(0) == dist_.world_size()
                        ? ranks_rng[dist_.rank()].contiguous()  // each rank's own state
                        : saved.torch_rng);
  const torch::Tensor& hv = saved.hardness;
  // Hardness of the run's own images (the --test sets after them may differ on resume: never trained).
  TORCH_CHECK(hv.dim() == 1 && hv.size(0) >= run_images_, "checkpoint \"", path, "\" holds hardness for ",
              hv.numel(), " images, the run's data (--csv, --test-csv) has ", run_images_);
  tracker_.reset();
  for (int64_t i = 0; i < run_images_; ++i) {
    const double h = hv[i].item<double>();
    if (!std::isnan(h)) tracker_.update(torch::tensor({i}), torch::tensor({h}));
  }
  if (saved.warnings) {  // (checkpoints before --init-from have none)
    try {
      warnings_ = nlohmann::json::parse(*saved.warnings).get<std::vector<std::string>>();
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

template <typename Derived, typename Net, typename TaskLoss>
void TrainerBase<Derived, Net, TaskLoss>::restore_selection(const std::string& path) {
  if (val_.empty() || !resume_->selection) return;
  std::string saved;
  try {
    const nlohmann::json j = nlohmann::json::parse(*resume_->selection);
    best_.stage = j.at("best_stage").get<int64_t>();
    best_.epoch = j.at("best_epoch").get<int64_t>();
    best_.val_srcc = j.at("best_val_srcc").is_null() ? NAN : j.at("best_val_srcc").get<double>();
    saved = j.dump();
  } catch (const nlohmann::json::exception& e) {
    TORCH_CHECK(false, "checkpoint \"", path, "\": bad entry \"selection\": ", e.what());
  }
  if (best_.epoch < 0) return;
  TORCH_CHECK(resume_->best_model.found, "checkpoint \"", path,
              "\" lacks the entry \"best_model\" (written by another program, or damaged)");  // as read_entry
  best_net_ = spare_net();
  load_matching(*best_net_, resume_->best_model.archive, "checkpoint \"" + path + "\" (best_model)");
  const std::filesystem::path source = std::filesystem::path(path).parent_path() / "best.pt";
  if (!resume_in_place_ && std::filesystem::is_regular_file(source))
    dist_.run_on_main([&] { copy_same_choice(source.string(), best_path(), saved); });
}

}  // namespace ohem_examples
