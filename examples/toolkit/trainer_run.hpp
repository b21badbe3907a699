#pragma once
/// @file
/// Starting a trainer's run, before any data is read: the ranks of a distributed run agree on the
/// options (`check_ranks_agree`), `--resume auto` finds the checkpoint (`auto_resume_finds`), the output
/// directory is locked and checked (`claim_output_dir`); and the test-only fault injection that kills a
/// rank after a step (`test_kill_hook`).

#include "command_line.hpp"
#include "output_dir.hpp"

#include <ohem/distributed.hpp>

#include <torch/torch.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <string>
#include <vector>

namespace ohem_examples {

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

/// Distributed: every rank's configuration `o` (the option table, as a checkpoint stores it) against rank
/// 0's, before anything else is done; every rank stops at once, with the same list of differences, if one
/// differs (otherwise: diverging weights, mixed data, a stall until the collective timeout, or a late
/// error about tensor shapes). The options of `per_process_option` may differ. A collective; nothing
/// without launcher variables.
inline void check_ranks_agree(const ohem::DistributedContext& dist, const TrainOptions& o) {
  if (!dist.distributed()) return;
  const std::string mine = run_config(o).dump();
  std::vector<int32_t> codes;
  for (unsigned char c : mine) codes.push_back(c);
  const torch::Tensor bytes = torch::tensor(codes, torch::kInt);
  const torch::Tensor lengths = dist.all_gather_cat(torch::tensor({bytes.size(0)}, torch::kLong));
  const torch::Tensor all = dist.all_gather_cat(bytes);
  std::vector<nlohmann::json> configs;
  int64_t at = 0;
  for (int r = 0; r < dist.world_size(); ++r) {
    const int64_t n = lengths[r].item<int64_t>();
    const torch::Tensor b = all.narrow(0, at, n).to(torch::kUInt8).contiguous();
    at += n;
    configs.push_back(
        nlohmann::json::parse(std::string(static_cast<const char*>(b.data_ptr()), static_cast<size_t>(n))));
  }
  std::string lines;
  for (int r = 1; r < dist.world_size(); ++r)
    for (const auto& d : rank_differences(configs[0], configs[static_cast<size_t>(r)], r))
      lines += "\n  " + d;
  TORCH_CHECK(lines.empty(), "the ranks were started with different options (every rank must run rank 0's ",
              "configuration; rank ", dist.rank(), " of ", dist.world_size(), " stops):", lines);
}

/// --resume auto: true when the checkpoint `ckpt` (--out's) exists. Distributed: a collective; every rank
/// must see what rank 0 sees (throws naming the checkpoint otherwise).
inline bool auto_resume_finds(const ohem::DistributedContext& dist, const std::string& ckpt) {
  std::error_code ec;
  const bool found = std::filesystem::is_regular_file(ckpt, ec);
  const torch::Tensor seen = dist.all_gather_cat(torch::tensor({static_cast<int64_t>(found)}, torch::kLong));
  TORCH_CHECK(seen.min().item<int64_t>() == seen.max().item<int64_t>(),
              "--resume auto: the ranks disagree on ", "whether \"", ckpt, "\" exists (rank ", dist.rank(),
              (found ? " sees it" : " does not see it"), "); every rank must see rank 0's --out");
  return found;
}

/// Locks the output directory `out` and returns the lock; refuses a directory that holds another run
/// unless `resume_in_place` (resuming its own checkpoint) or `may_replace` (--overwrite, or --resume auto
/// found no checkpoint), then removes that run's files; removes temporaries a killed run of ours left.
inline OutputLock claim_output_dir(const std::string& out, bool resume_in_place, bool may_replace) {
  namespace fs = std::filesystem;
  OutputLock lock(out);
  const std::vector<std::string> held = existing_run_files(out);
  if (!resume_in_place && !held.empty()) {
    std::string list;
    for (const auto& f : held) list += (list.empty() ? "" : ", ") + f;
    TORCH_CHECK(may_replace, "output directory \"", out, "\" already holds a run (", list,
                "); pass --resume ", (fs::path(out) / "checkpoint.pt").string(),
                " to continue it, --overwrite to replace it, or another --out");
    for (const auto& f : held) fs::remove(fs::path(out) / f);
  }
  remove_stale_run_temporaries(out);
  return lock;
}

/// Test-only fault injection (tests/distributed/run_elastic.sh), off unless the environment variable
/// OHEM_TEST_KILL="<rank>:<global step>:<marker file>" is set: that rank kills itself with SIGKILL after
/// that step when the marker file does not exist yet, creating it first, so a launcher's restart of the
/// same command line runs through. Call it after each step with this process's `rank` and `global_step`.
inline void test_kill_hook(int rank_now, int64_t global_step) {
  const char* spec = std::getenv("OHEM_TEST_KILL");
  if (spec == nullptr) return;
  int rank = -1;
  long long step = -1;
  int marker_at = 0;
  TORCH_CHECK(
      std::sscanf(spec, "%d:%lld:%n", &rank, &step, &marker_at) == 2 && marker_at > 0 && spec[marker_at],
      "OHEM_TEST_KILL: expected <rank>:<step>:<marker file>, got \"", spec, "\"");
  const std::string marker(spec + marker_at);
  if (rank != rank_now || step != global_step || std::filesystem::exists(marker)) return;
  std::ofstream(marker) << "killed rank " << rank << " after step " << step << "\n";
  std::cerr << fmt::format("OHEM_TEST_KILL: rank {} kills itself after step {}\n", rank, step) << std::flush;
  std::raise(SIGKILL);
}

}  // namespace ohem_examples
