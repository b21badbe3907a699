#pragma once
/// @file
/// The evaluation mode of `ohem-eval` (`evaluate_file`): the metrics with bootstrap intervals, overall and
/// per group, on --threads threads with a progress bar; the table printed to stdout and the JSON report
/// (nlohmann/json), written atomically after the outputs were checked before any work. See
/// docs/metrics.md.

#include "eval_data.hpp"
#include "options.hpp"

#include <toolkit/files.hpp>
#include <toolkit/io.hpp>

#include <ohem/metrics.hpp>

#include <fmt/format.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ohem_eval {

namespace detail {

inline std::string cell(double v, const std::optional<ohem::Interval>& iv) {
  if (!iv) return fmt::format("{:.4f}", v);
  return fmt::format("{:.4f} [{:.4f}, {:.4f}]", v, iv->lower, iv->upper);
}

using Member = ohem::Interval ohem::BootstrapIntervals::*;

inline std::vector<std::string> cells(const ohem::Evaluation& e) {
  const auto& iv = e.intervals;
  auto at = [&](Member m) -> std::optional<ohem::Interval> {
    if (!iv) return std::nullopt;
    return (*iv).*m;
  };
  using B = ohem::BootstrapIntervals;
  return {cell(e.srcc, at(&B::srcc)),       cell(e.krcc, at(&B::krcc)),
          cell(e.plcc, at(&B::plcc)),       cell(e.fit4.plcc, at(&B::plcc4)),
          cell(e.fit4.rmse, at(&B::rmse4)), cell(e.fit5.plcc, at(&B::plcc5)),
          cell(e.fit5.rmse, at(&B::rmse5))};
}

/// A finite number, or null.
inline nlohmann::json number(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

inline nlohmann::json metric(double v, const std::optional<ohem::BootstrapIntervals>& iv, Member m) {
  nlohmann::json j{{"value", number(v)}};
  if (iv) {
    j["lower"] = number(((*iv).*m).lower);
    j["upper"] = number(((*iv).*m).upper);
  }
  return j;
}

inline nlohmann::json fit(const ohem::LogisticFit& f, const std::optional<ohem::BootstrapIntervals>& iv,
                          Member plcc, Member rmse) {
  nlohmann::json params = nlohmann::json::array();
  for (double p : f.params) params.push_back(number(p));
  return {{"status", ohem::to_string(f.status)},
          {"message", f.message},
          {"params", params},
          {"start", f.start},
          {"iterations", f.iterations},
          {"plcc", metric(f.plcc, iv, plcc)},
          {"rmse", metric(f.rmse, iv, rmse)}};
}

inline nlohmann::json evaluation(const ohem::Evaluation& e) {
  using B = ohem::BootstrapIntervals;
  const auto& iv = e.intervals;
  return {{"n", e.n},
          {"srcc", metric(e.srcc, iv, &B::srcc)},
          {"krcc", metric(e.krcc, iv, &B::krcc)},
          {"plcc", metric(e.plcc, iv, &B::plcc)},
          {"logistic4", fit(e.fit4, iv, &B::plcc4, &B::rmse4)},
          {"logistic5", fit(e.fit5, iv, &B::plcc5, &B::rmse5)}};
}

/// Serialises JSON; invalid UTF-8 from the input (names, groups, the path) becomes U+FFFD.
inline std::string dump(const nlohmann::json& j) {
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace detail

/// The evaluation mode: returns the table printed to stdout and writes the JSON report.
inline std::string evaluate_file(const Args& args, std::string& err) {
  const std::string json_path =
      args.no_json ? "" : (args.json.empty() ? stem(args.input) + ".metrics.json" : args.json);
  const bool join = !args.mos.empty();
  ohem_examples::check_input_file(args.input, "input CSV");
  if (join) ohem_examples::check_input_file(args.mos, "--mos CSV");
  ohem_examples::check_output_paths(
      {{"--json", json_path}},
      join ? std::vector<std::string>{args.input, args.mos} : std::vector<std::string>{args.input});
  const EvalData data = join ? read_joined_eval(args) : read_merged_eval(args);
  for (const auto& w : data.warnings) err += w + "\n";
  const int64_t n = static_cast<int64_t>(data.pred.size());
  const auto& mos = data.mos;
  const auto& pred = data.pred;
  const int64_t B = args.bootstrap >= 0 ? args.bootstrap : default_bootstrap(n);
  const int64_t threads = args.threads;
  const bool bar = show_progress(args);
  if (B > 0) {
    err += fmt::format("ohem-eval: {} images; bootstrap: {} resamples{} on {} thread(s)\n", n, B,
                       args.bootstrap < 0 ? " (default for this many images; --bootstrap N to choose)" : "",
                       threads);
  }
  auto options =
      ohem::EvalOptions().bootstrap(B).confidence(args.confidence).seed(args.seed).threads(threads);
  auto run = [&](const std::string& label, const std::vector<double>& p, const std::vector<double>& m) {
    ohem_examples::Progress progress("bootstrap " + label, B, bar && B > 0);
    auto o = options;
    o.progress([&](int64_t done, int64_t) { progress.update(done); });
    auto e = ohem::evaluate(p, m, o);
    progress.finish();
    return e;
  };
  const ohem::Evaluation overall = run("overall", pred, mos);
  std::vector<std::pair<std::string, ohem::Evaluation>> groups;
  if (!data.groups.empty()) {
    std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> split;
    for (size_t r = 0; r < data.groups.size(); ++r) {
      auto& g = split[data.groups[r]];
      g.first.push_back(pred[r]);
      g.second.push_back(mos[r]);
    }
    for (const auto& [name, g] : split) {
      TORCH_CHECK(g.first.size() >= 2, data.source, ": group \"", name, "\" has ", g.first.size(),
                  " image; every group needs at least 2");
      groups.emplace_back(name, run("group " + name, g.first, g.second));
    }
  }

  const char* names[] = {"SRCC", "KRCC", "PLCC", "PLCC(4p)", "RMSE(4p)", "PLCC(5p)", "RMSE(5p)"};
  size_t gw = 7;
  for (const auto& r : groups) gw = std::max(gw, r.first.size());
  const size_t cw = B > 0 ? 24 : 8;
  std::string out = fmt::format("{}: {} images", data.source, n);
  if (B > 0) {
    out += fmt::format(", {:g}% bootstrap intervals ({} resamples, seed {})", 100 * args.confidence, B,
                       args.seed);
  }
  for (const auto& line : data.notes) out += "\n" + line;
  auto header = [&](const std::string& first) {
    std::string h = fmt::format("{:<{}}  {:>7}", first, gw, "n");
    for (const char* c : names) h += fmt::format("  {:>{}}", c, cw);
    return h + "\n";
  };
  auto row = [&](const std::string& name, const ohem::Evaluation& e) {
    std::string r = fmt::format("{:<{}}  {:>7}", name, gw, e.n);
    for (const auto& c : detail::cells(e)) r += fmt::format("  {:>{}}", c, cw);
    return r + "\n";
  };
  out += "\n" + header("") + row("overall", overall);
  if (!groups.empty()) {
    // A separate section: a group named "overall" cannot be taken for the overall row.
    out += fmt::format("\nper group (column \"{}\"):\n", data.label.at("group")) + header("group");
    for (const auto& [name, e] : groups) out += row(name, e);
  }
  std::string notes;
  auto note = [&](const std::string& where, const ohem::Evaluation& e) {
    for (const auto* f : {&e.fit4, &e.fit5}) {
      if (f->status != ohem::FitStatus::Converged) {
        notes += fmt::format("note: {}: {} fit {}: {}\n", where, ohem::to_string(f->model),
                             ohem::to_string(f->status), f->message);
      }
    }
  };
  note("overall", overall);
  for (const auto& [name, e] : groups) note("group \"" + name + "\"", e);
  out += notes;

  if (!json_path.empty()) {
    nlohmann::json j;
    j["file"] = args.input;
    if (join) {
      j["mos_file"] = args.mos;
      j["join"] = data.join;
    }
    j["images"] = n;
    j["columns"] = data.label;
    j["bootstrap"] = {{"samples", B}, {"confidence", args.confidence}, {"seed", args.seed}};
    j["overall"] = detail::evaluation(overall);
    j["groups"] = nlohmann::json::object();
    for (const auto& [name, e] : groups) j["groups"][name] = detail::evaluation(e);
    ohem_examples::atomic_write_text(json_path, detail::dump(j));
    out += fmt::format("wrote {}\n", json_path);
  }
  return out;
}

}  // namespace ohem_eval
