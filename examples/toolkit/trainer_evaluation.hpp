#pragma once
/// @file
/// TrainerBase's evaluation (the definitions of its members, declared in trainer_base.hpp): the test split,
/// a --test set or the validation images through the test store, sharded over ranks; the choice of the
/// best epoch on validation; results.json and predictions.csv; the parameter checksum the tests compare.

#include "trainer_base.hpp"  // (which includes this header after the class)

#include <ohem/distributed.hpp>

#include <torch/torch.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace ohem_examples {

template <typename Derived, typename Net, typename TaskLoss>
uint64_t TrainerBase<Derived, Net, TaskLoss>::parameter_checksum() {
  std::string bytes;
  auto add = [&](const torch::Tensor& t) {
    const torch::Tensor c = t.detach().to(torch::kCPU).contiguous();
    bytes.append(static_cast<const char*>(c.data_ptr()), static_cast<size_t>(c.nbytes()));
  };
  for (const auto& p : net_->parameters()) add(p);
  for (const auto& b : net_->buffers()) add(b);
  return fnv1a64(bytes.data(), bytes.size());
}

template <typename Derived, typename Net, typename TaskLoss>
EvalResult TrainerBase<Derived, Net, TaskLoss>::evaluate(const std::vector<int64_t>& indices) {
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
  // --split kadid-*: the test split's type groups too.
  score_predictions(r, data_, &indices == &split_.test ? &type_group_ : nullptr);
  return r;
}

template <typename Derived, typename Net, typename TaskLoss>
std::map<std::string, EvalResult> TrainerBase<Derived, Net, TaskLoss>::evaluate_test_sets() {
  std::map<std::string, EvalResult> out;
  for (const TestSet& t : test_sets_) out[t.name] = evaluate(t.indices);
  return out;
}

template <typename Derived, typename Net, typename TaskLoss>
bool TrainerBase<Derived, Net, TaskLoss>::validate_epoch(nlohmann::ordered_json& j, std::string& line) {
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

template <typename Derived, typename Net, typename TaskLoss>
void TrainerBase<Derived, Net, TaskLoss>::write_results(
    const EvalResult& r, const std::map<std::string, EvalResult>& sets, const EvalResult* chosen,
    const std::map<std::string, EvalResult>& chosen_sets) {
  say(fmt::format("final test ({} images): SRCC {:.4f} KRCC {:.4f} PLCC {:.4f}", r.overall.n, r.overall.srcc,
                  r.overall.krcc, r.overall.plcc));
  for (const auto& [name, t] : sets)
    say(fmt::format("final {} ({} images): SRCC {:.4f} KRCC {:.4f} PLCC {:.4f}", name, t.overall.n,
                    t.overall.srcc, t.overall.krcc, t.overall.plcc));
  for (const auto& [k, c] : r.by_type_group)
    say(fmt::format("  {} types ({} images): SRCC {:.4f} KRCC {:.4f} PLCC {:.4f}", k, c.n, c.srcc, c.krcc,
                    c.plcc));
  nlohmann::ordered_json selection = nullptr;
  if (chosen != nullptr) {
    say(fmt::format(
        "chosen on validation: stage {} epoch {} (val SRCC {:.4f}); its test ({} images): SRCC {:.4f} "
        "KRCC {:.4f} PLCC {:.4f}",
        best_.stage, best_.epoch + 1, best_.val_srcc, chosen->overall.n, chosen->overall.srcc,
        chosen->overall.krcc, chosen->overall.plcc));
    const std::string best = std::filesystem::is_regular_file(best_path()) ? best_path() : std::string();
    selection = selection_json(o_, val_.size(), best_, best, *chosen, chosen_sets);
  }
  RunFacts run{data_.name,
               global_step(),
               elapsed(),
               torch::get_num_threads(),
               type_group_,
               warnings_,
               dist_.distributed() ? dist_.world_size() : 0};
  const nlohmann::ordered_json j = results_json(run, o_, r, sets, std::move(selection));
  // The test predictions (what ohem-eval reads; ohem-score gives the same numbers from the checkpoint),
  // written together with results.json: both or neither.
  const std::filesystem::path out(o_.out);
  atomic_write_texts({{(out / "results.json").string(),
                       j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n"},
                      {(out / "predictions.csv").string(), predictions_csv(r, data_)}});
  log_.write(nlohmann::ordered_json{
      {"event", "final"}, {"srcc", r.overall.srcc}, {"krcc", r.overall.krcc}, {"plcc", r.overall.plcc}});
}

}  // namespace ohem_examples
