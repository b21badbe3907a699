#pragma once
/// @file
/// The parts of results.json that study v1 and v2 write alike: a run (its metrics and curves), the
/// creation time and the environment (LibTorch, compiler, threads).

#include "study.hpp"

#include <toolkit/experiment.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <string>
#include <thread>

namespace ohem_study::program {

using namespace ohem_examples;
namespace fs = std::filesystem;

inline nlohmann::ordered_json metrics_json(const EvalResult& r) {
  nlohmann::ordered_json m;
  m["overall"] = {{"srcc", number(r.overall.srcc)}, {"plcc", number(r.overall.plcc)}, {"n", r.overall.n}};
  for (const auto& t : demo::distortion_names()) {
    auto it = r.by_type.find(t);
    if (it == r.by_type.end()) continue;
    m[t] = {{"srcc", number(it->second.srcc)}, {"plcc", number(it->second.plcc)}, {"n", it->second.n}};
  }
  return m;
}

inline nlohmann::ordered_json run_json(const Run& r) {
  nlohmann::ordered_json curve = nlohmann::ordered_json::array();
  const bool ohem = r.method != "baseline";
  for (size_t e = 0; e < r.curve.size(); ++e) {
    const EpochStats& s = r.curve[e];
    curve.push_back({{"epoch", static_cast<int64_t>(e) + 1},
                     {"stage", s.stage},
                     {"task_loss", number(s.task_full)},
                     {"twin_task_loss", number(s.task_twin)},
                     {"consistency", number(s.consistency)},
                     {"mean_hardness", number(ohem ? s.mean_hardness : NAN)},
                     {"test_srcc", number(s.test_srcc)}});
  }
  return {{"seed", r.seed},
          {"method", r.method},
          {"seconds", r.seconds},
          {"steps", r.steps},
          {"metrics", metrics_json(r.test)},
          {"curve", curve}};
}

inline std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

inline std::string compiler() {
#if defined(__clang__)
  return fmt::format("Clang {}.{}.{}", __clang_major__, __clang_minor__, __clang_patchlevel__);
#elif defined(__GNUC__)
  return fmt::format("GCC {}.{}.{}", __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__);
#else
  return "unknown";
#endif
}

// results.json's "environment": the LibTorch and compiler versions, the threads.
inline nlohmann::ordered_json environment_json() {
  return {{"libtorch", TORCH_VERSION},
          {"compiler", compiler()},
          {"threads", torch::get_num_threads()},
          {"hardware_threads", std::thread::hardware_concurrency()}};
}

}  // namespace ohem_study::program
