#pragma once
/// @file
/// What both designs of the study do first: take the output directory, read the photographs and build
/// the synthetic dataset from them; the seconds each phase took; and what both do last: write
/// results.json and the report.

#include "options.hpp"
#include "report/report.hpp"

#include <toolkit/experiment.hpp>
#include <toolkit/files.hpp>
#include <toolkit/output_dir.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

namespace ohem_study::program {

using namespace ohem_examples;
namespace fs = std::filesystem;

// Takes --out: one study per directory, replaced only with --overwrite (then its files are removed).
inline OutputLock prepare_out(const StudyOptions& o) {
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

inline double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// The photographs (--photos, --max-photos) and the synthetic dataset built from them in --data; sets the
// torch threads and prints the opening lines. `name` is the program's name in them.
inline Dataset study_dataset(const StudyOptions& o, const std::string& name,
                             std::vector<std::string>& photos) {
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

/// Writes `j` as results.json into `out` (atomically) and returns its path.
inline std::string write_results_json(const nlohmann::ordered_json& j, const std::string& out) {
  const std::string results = (fs::path(out) / "results.json").string();
  atomic_write_text(results, j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n");
  return results;
}

/// The end of a run: says where results.json is and how long the run took, then writes the report from
/// `j` into `out` and says where it is.
inline void finish_run(const nlohmann::ordered_json& j, const std::string& out, const std::string& results,
                       std::chrono::steady_clock::time_point t0, double dataset_seconds,
                       double training_seconds) {
  std::cout << fmt::format("wrote {} ({:.0f} s in all: dataset {:.0f} s, training {:.0f} s)\n", results,
                           seconds_since(t0), dataset_seconds, training_seconds);
  ohem_study::write_report(j, out);
  std::cout << "report: " << (fs::path(out) / "report.html").string() << "\n";
}

}  // namespace ohem_study::program
