#pragma once
/// @file
/// What a trainer's checkpoint holds: `TrainerState`, one table of its entries (`visit_trainer_state`,
/// like the option table of command_line.hpp) that writing (`write_trainer_state`), reading
/// (`read_trainer_state`) and the resume check (`check_resume`) all visit, so that a new entry is one
/// line of the table and a member of `TrainerState`. The file around the entries (checksum, layout
/// version, atomic write) is checkpoint.hpp's; the trainer fills the state and restores from it
/// (trainer_base.hpp).

#include "checkpoint.hpp"
#include "command_line.hpp"

#include <torch/torch.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <fstream>
#include <functional>
#include <iterator>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

namespace ohem_examples {

/// What a checkpoint entry is to a resumed run.
enum class EntryNeed {
  Run,       ///< defines the run: read first and compared with the resuming run (`check_resume`)
  Always,    ///< every trainer checkpoint holds it: a resume refuses a checkpoint without it
  WithOhem,  ///< runs with --ohem on hold it: a resume of such a run refuses a checkpoint without it
  Optional,  ///< absent from some runs or from older checkpoints: a resume does without it
  Written,   ///< for other readers (`load_trained_model`): written, not read on resume
};

/// One row of the checkpoint table.
struct EntryInfo {
  const char* key;                     ///< the entry's name in the payload archive
  const char* what;                    ///< what it holds
  EntryNeed need = EntryNeed::Always;  ///< what a resume does without it
};

/// A nested archive of a checkpoint (a module's or an optimiser's state): `save` writes it (unset: the
/// entry is not written); a read fills `archive` and `found`.
struct NestedEntry {
  std::function<void(torch::serialize::OutputArchive&)> save;
  torch::serialize::InputArchive archive;
  bool found = false;
};

/// The run's configuration (`run_config` as JSON text): a resume must give the same (`check_resume`).
struct ConfigEntry {
  std::string json;
};

/// The number of processes of the run (checkpoints without the entry come from one process).
struct WorldSizeEntry {
  int64_t ranks = 1;
};

/// Everything a checkpoint of the trainers holds, one member per entry of `visit_trainer_state`.
struct TrainerState {
  torch::serialize::InputArchive payload;  ///< a read's payload (the nested archives live in it)
  ConfigEntry config;
  std::string trainer;
  NestedEntry model, optimizer;
  int64_t stage_index = 0, epoch = 0, step_in_epoch = 0, global_step = 0;
  torch::Tensor torch_rng;
  std::vector<torch::Tensor> masks;  ///< per twin, `mask_bytes`; empty without OHEM
  torch::Tensor hardness;
  std::optional<std::string> warnings;
  NestedEntry best_model;
  std::optional<std::string> selection;
  int64_t log_bytes = 0;
  WorldSizeEntry world_size;
  torch::Tensor torch_rng_ranks;  ///< undefined unless distributed
};

/// Calls `f(const EntryInfo&, member&)` for every entry of `s`, in the order a checkpoint is written: the
/// one table of the checkpoint. `State` is `TrainerState` or `const TrainerState`.
template <typename State, typename F>
void visit_trainer_state(State& s, F&& f) {
  static_assert(std::is_same_v<std::remove_const_t<State>, TrainerState>, "visits TrainerState");
  using N = EntryNeed;
  f(EntryInfo{"config", "the run's configuration (run_config): a resume must give the same", N::Run},
    s.config);
  f(EntryInfo{"trainer", "the trainer's name (load_trained_model tells the model by it)", N::Written},
    s.trainer);
  f(EntryInfo{"model", "the model's parameters and buffers (Module::save)"}, s.model);
  f(EntryInfo{"optimizer", "the current stage's Adam (Optimizer::save)"}, s.optimizer);
  f(EntryInfo{"stage_index", "the schedule's position: the stage (from 0)"}, s.stage_index);
  f(EntryInfo{"epoch", "the schedule's position: the epoch within the stage"}, s.epoch);
  f(EntryInfo{"step_in_epoch", "the schedule's position: the step within the epoch"}, s.step_in_epoch);
  f(EntryInfo{"global_step", "the schedule's position: steps done"}, s.global_step);
  f(EntryInfo{"torch_rng", "the CPU generator's state (rank 0's)"}, s.torch_rng);
  f(EntryInfo{"masks", "the twins' masks (mask_bytes); twin k > 0 as \"masks_k\"", N::WithOhem}, s.masks);
  f(EntryInfo{"hardness", "the current epoch's per-image hardness (NaN: not seen)"}, s.hardness);
  f(EntryInfo{"warnings", "results.json's warnings, a JSON list of strings", N::Optional}, s.warnings);
  f(EntryInfo{"best_model", "--val-fraction: the chosen epoch's weights", N::Optional}, s.best_model);
  f(EntryInfo{"selection", "--val-fraction: the chosen epoch, JSON (best_epoch -1: none)", N::Optional},
    s.selection);
  f(EntryInfo{"log_bytes", "the length of log.jsonl at the checkpoint"}, s.log_bytes);
  f(EntryInfo{"world_size", "the number of processes of the run (absent: 1)", N::Run}, s.world_size);
  f(EntryInfo{"torch_rng_ranks", "distributed: every rank's CPU generator state", N::Optional},
    s.torch_rng_ranks);
}

/// Returns the state of LibTorch's default CPU generator (read under its lock).
inline torch::Tensor cpu_rng_state() {
  at::Generator gen = at::globalContext().defaultGenerator(torch::kCPU);
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

/// Sets the state of LibTorch's default CPU generator (under its lock).
inline void set_cpu_rng_state(const torch::Tensor& state) {
  at::Generator gen = at::globalContext().defaultGenerator(torch::kCPU);
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

/// After an Adam optimiser was restored from a checkpoint (read onto the CPU): its state onto `device`.
inline void move_adam_state(torch::optim::Adam& optimizer, const torch::Device& device) {
  for (auto& kv : optimizer.state()) {
    auto& s = static_cast<torch::optim::AdamParamState&>(*kv.second);
    s.exp_avg(s.exp_avg().to(device));
    s.exp_avg_sq(s.exp_avg_sq().to(device));
    if (s.max_exp_avg_sq().defined()) s.max_exp_avg_sq(s.max_exp_avg_sq().to(device));
  }
}

/// Copies the parameters and buffers of `from` into `to` (the same architecture; any devices).
inline void copy_weights(torch::nn::Module& from, torch::nn::Module& to) {
  torch::NoGradGuard no_grad;
  const auto fp = from.named_parameters(), tp = to.named_parameters();
  for (const auto& p : fp) tp[p.key()].copy_(p.value());
  const auto fb = from.named_buffers(), tb = to.named_buffers();
  for (const auto& b : fb) tb[b.key()].copy_(b.value());
}

/// --val-fraction, resumed into another --out: copies the chosen epoch's checkpoint `source` (best.pt
/// beside the resumed one) to `target` when its "selection" is `selection` (JSON text, as `dump` writes
/// it); another choice (a run killed between writing best.pt and checkpoint.pt) is left for the next
/// improvement to write.
inline void copy_same_choice(const std::string& source, const std::string& target,
                             const std::string& selection) {
  torch::serialize::InputArchive other;
  c10::IValue sel;
  load_checked(other, source);
  if (!other.try_read("selection", sel) || !sel.isString() ||
      nlohmann::json::parse(sel.toStringRef()).dump() != selection)
    return;
  std::ifstream in(source, std::ios::binary);
  atomic_write_text(target, std::string(std::istreambuf_iterator<char>(in), {}));
}

// Writing: one overload per kind of entry; an unset optional entry is not written.
inline void write_state_entry(torch::serialize::OutputArchive& root, const EntryInfo& e,
                              const ConfigEntry& v) {
  root.write(e.key, c10::IValue(v.json));
}
inline void write_state_entry(torch::serialize::OutputArchive& root, const EntryInfo& e,
                              const std::string& v) {
  root.write(e.key, c10::IValue(v));
}
inline void write_state_entry(torch::serialize::OutputArchive& root, const EntryInfo& e,
                              const NestedEntry& v) {
  if (!v.save) return;
  torch::serialize::OutputArchive nested;
  v.save(nested);
  root.write(e.key, nested);
}
inline void write_state_entry(torch::serialize::OutputArchive& root, const EntryInfo& e, int64_t v) {
  root.write(e.key, c10::IValue(v));
}
inline void write_state_entry(torch::serialize::OutputArchive& root, const EntryInfo& e,
                              const WorldSizeEntry& v) {
  root.write(e.key, c10::IValue(v.ranks));
}
inline void write_state_entry(torch::serialize::OutputArchive& root, const EntryInfo& e,
                              const torch::Tensor& v) {
  if (v.defined()) root.write(e.key, v);
}
inline void write_state_entry(torch::serialize::OutputArchive& root, const EntryInfo& e,
                              const std::vector<torch::Tensor>& v) {
  for (size_t k = 0; k < v.size(); ++k)
    root.write(k == 0 ? std::string(e.key) : fmt::format("{}_{}", e.key, k), v[k]);
}
inline void write_state_entry(torch::serialize::OutputArchive& root, const EntryInfo& e,
                              const std::optional<std::string>& v) {
  if (v) root.write(e.key, c10::IValue(*v));
}

/// Writes `s` as a checkpoint file at `path` (`save_checked`: atomic, checksummed), every entry of the
/// table in its order. Throws naming `path` if it cannot be written (a full disk: the previous file stays).
inline void write_trainer_state(const TrainerState& s, const std::string& path) {
  torch::serialize::OutputArchive root;
  visit_trainer_state(s, [&](const EntryInfo& e, const auto& v) { write_state_entry(root, e, v); });
  save_checked(root, path);
}

// Reading: one overload per kind of entry. `needed`: the entry must be there (see EntryNeed).
inline void read_state_entry(torch::serialize::InputArchive& p, const EntryInfo& e, ConfigEntry& v, bool,
                             const std::string& path) {
  c10::IValue x;
  TORCH_CHECK(p.try_read(e.key, x) && x.isString(), "checkpoint \"", path, "\" holds no configuration");
  v.json = x.toStringRef();
}
inline void read_state_entry(torch::serialize::InputArchive&, const EntryInfo&, std::string&, bool,
                             const std::string&) {}  // the trainer's name: for load_trained_model only
inline void read_state_entry(torch::serialize::InputArchive& p, const EntryInfo& e, NestedEntry& v,
                             bool needed, const std::string& path) {
  if (needed) {
    read_entry(p, e.key, v.archive, path);
    v.found = true;
  } else {
    v.found = p.try_read(e.key, v.archive);
  }
}
inline void read_state_entry(torch::serialize::InputArchive& p, const EntryInfo& e, int64_t& v, bool,
                             const std::string& path) {
  v = read_int_entry(p, e.key, path);
}
inline void read_state_entry(torch::serialize::InputArchive& p, const EntryInfo& e, WorldSizeEntry& v, bool,
                             const std::string&) {
  c10::IValue x;
  v.ranks = p.try_read(e.key, x) && x.isInt() ? x.toInt() : 1;
}
inline void read_state_entry(torch::serialize::InputArchive& p, const EntryInfo& e, torch::Tensor& v,
                             bool needed, const std::string& path) {
  if (needed) {
    read_entry(p, e.key, v, path);
  } else if (!p.try_read(e.key, v)) {
    v = torch::Tensor();
  }
}
inline void read_state_entry(torch::serialize::InputArchive& p, const EntryInfo& e,
                             std::vector<torch::Tensor>& v, bool needed, const std::string& path) {
  v.clear();
  torch::Tensor t;
  if (needed) {
    read_entry(p, e.key, t, path);
  } else if (!p.try_read(e.key, t)) {
    return;
  }
  v.push_back(t);
  for (size_t k = 1;; ++k) {  // later ones where the twins' masks differ (random parts)
    torch::Tensor more;
    if (!p.try_read(fmt::format("{}_{}", e.key, k), more)) return;
    v.push_back(more);
  }
}
inline void read_state_entry(torch::serialize::InputArchive& p, const EntryInfo& e,
                             std::optional<std::string>& v, bool, const std::string& path) {
  c10::IValue x;
  v.reset();
  if (!p.try_read(e.key, x)) return;
  TORCH_CHECK(x.isString(), "checkpoint \"", path, "\": the entry \"", e.key, "\" is a ", x.tagKind(),
              ", expected a string");
  v = x.toStringRef();
}

/// The resume check's context and result: the options and world size of the run that resumes, and the
/// epochs of the checkpoint's stages (for `Schedule::restore`).
struct ResumeCheck {
  const TrainOptions& options;
  int64_t world_size;
  const std::string& path;
  std::vector<int64_t> saved_epochs;
};

// The resume check: one overload per entry that defines the run; the others are restored, not checked.
template <typename T>
void check_state_entry(ResumeCheck&, const EntryInfo&, const T&) {}
inline void check_state_entry(ResumeCheck& c, const EntryInfo&, const ConfigEntry& v) {
  nlohmann::json saved;
  try {
    saved = nlohmann::json::parse(v.json);
  } catch (const nlohmann::json::exception& e) {
    TORCH_CHECK(false, "checkpoint \"", c.path, "\": bad configuration: ", e.what());
  }
  const std::vector<std::string> diff = resume_differences(saved, c.options);
  if (!diff.empty()) {
    std::string lines;
    for (const auto& d : diff) lines += "\n  " + d;
    TORCH_CHECK(false, "cannot resume \"", c.path, "\" with different options (a resumed run must be ",
                "the run it continues; see docs/examples.md):", lines);
  }
  c.saved_epochs.clear();
  for (const char* k : {"--epochs1", "--epochs2"})
    if (saved.at(k).get<int64_t>() > 0) c.saved_epochs.push_back(saved.at(k).get<int64_t>());
}
// The world size is part of the run: the per-rank batch, each rank's share of an epoch and the position
// within it depend on it.
inline void check_state_entry(ResumeCheck& c, const EntryInfo&, const WorldSizeEntry& v) {
  const int64_t saved = v.ranks;
  TORCH_CHECK(saved == c.world_size, "cannot resume \"", c.path,
              "\" with another number of processes: the checkpoint was written by a run of world size ",
              saved, ", this run has world size ", c.world_size, " (WORLD_SIZE); launch it with ", saved,
              " process", saved == 1 ? "" : "es");
}

/// Checks that the run of options `o` and `world_size` processes may resume the checkpoint `s` read from
/// `path`: the same configuration (`resume_differences`) and world size. Returns the epochs of the
/// checkpoint's stages (`Schedule::restore`); throws with one line per differing option otherwise.
inline std::vector<int64_t> check_resume(const TrainerState& s, const TrainOptions& o, int64_t world_size,
                                         const std::string& path) {
  ResumeCheck c{o, world_size, path, {}};
  visit_trainer_state(s, [&](const EntryInfo& e, const auto& v) {
    if (e.need == EntryNeed::Run) check_state_entry(c, e, v);
  });
  return c.saved_epochs;
}

/// Reads the checkpoint file `path` to resume the run of options `o` with `world_size` processes:
/// verifies its checksum, reads the entries that define the run and checks them (`check_resume`; sets
/// `saved_epochs`), then reads the others (`o.ohem`: the masks are needed). Throws naming the file and
/// the entry if it is not a trainer checkpoint, belongs to another run, lacks an entry the run needs, or
/// holds one of the wrong kind — all before any data is read.
inline TrainerState read_trainer_state(const std::string& path, const TrainOptions& o, int64_t world_size,
                                       std::vector<int64_t>& saved_epochs) {
  TrainerState s;
  load_checked(s.payload, path);
  auto read = [&](bool run) {
    visit_trainer_state(s, [&](const EntryInfo& e, auto& v) {
      if ((e.need == EntryNeed::Run) != run) return;
      const bool needed = e.need == EntryNeed::Always || (e.need == EntryNeed::WithOhem && o.ohem);
      read_state_entry(s.payload, e, v, needed, path);
    });
  };
  read(/*run=*/true);
  saved_epochs = check_resume(s, o, world_size, path);
  read(/*run=*/false);
  return s;
}

}  // namespace ohem_examples
