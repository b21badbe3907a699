#pragma once
/// @file
/// Evaluation of a trained model's predictions against MOS: SRCC, KRCC and PLCC (raw, no logistic fit,
/// as the paper's official code) overall and per distortion type, using ohem/metrics.hpp.

#include <ohem/metrics.hpp>

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

namespace ohem_examples {

/// Correlations of predictions with MOS over a set of images.
struct Correlations {
  double srcc = 0.0, krcc = 0.0, plcc = 0.0;
  int64_t count = 0;
};

/// Computes SRCC, KRCC and PLCC of `pred` against `mos` (same length, at least 2 values).
inline Correlations correlations(const std::vector<double>& pred, const std::vector<double>& mos) {
  TORCH_CHECK(pred.size() == mos.size(), "correlations: ", pred.size(), " predictions for ", mos.size(),
              " MOS values");
  TORCH_CHECK(pred.size() >= 2, "correlations: need at least 2 images, got ", pred.size());
  Correlations c;
  c.srcc = ohem::srcc(pred, mos);
  c.krcc = ohem::krcc(pred, mos);
  c.plcc = ohem::plcc(pred, mos);
  c.count = static_cast<int64_t>(pred.size());
  return c;
}

/// Computes the correlations per value of `key` (e.g. the distortion type), skipping keys with fewer
/// than 3 images.
inline std::map<std::string, Correlations> correlations_by(const std::vector<double>& pred,
                                                           const std::vector<double>& mos,
                                                           const std::vector<std::string>& key) {
  std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> parts;
  for (size_t i = 0; i < pred.size(); ++i) {
    parts[key[i]].first.push_back(pred[i]);
    parts[key[i]].second.push_back(mos[i]);
  }
  std::map<std::string, Correlations> out;
  for (const auto& [k, v] : parts) {
    if (v.first.size() >= 3) out[k] = correlations(v.first, v.second);
  }
  return out;
}

}  // namespace ohem_examples
