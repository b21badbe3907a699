#pragma once
/// @file
/// Evaluation of a trained model's predictions against MOS: SRCC, KRCC and PLCC (raw, no logistic fit,
/// as the paper's official code) overall and per distortion type, using ohem/metrics.hpp.

#if __has_include(<ohem/metrics.hpp>)
#include <ohem/metrics.hpp>
#define OHEM_EXAMPLES_HAVE_METRICS 1
#endif

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

namespace ohem_examples {

#ifndef OHEM_EXAMPLES_HAVE_METRICS
namespace interim {
inline std::vector<double> ranks(const std::vector<double>& x) {
  std::vector<size_t> o(x.size());
  for (size_t i = 0; i < o.size(); ++i) o[i] = i;
  std::sort(o.begin(), o.end(), [&](size_t a, size_t b) { return x[a] < x[b]; });
  std::vector<double> r(x.size());
  for (size_t i = 0; i < o.size();) {
    size_t j = i;
    while (j + 1 < o.size() && x[o[j + 1]] == x[o[i]]) ++j;
    for (size_t k = i; k <= j; ++k) r[o[k]] = 0.5 * static_cast<double>(i + j) + 1.0;
    i = j + 1;
  }
  return r;
}
inline double plcc(const std::vector<double>& a, const std::vector<double>& b) {
  double ma = 0, mb = 0;
  for (size_t i = 0; i < a.size(); ++i) ma += a[i], mb += b[i];
  ma /= a.size();
  mb /= b.size();
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < a.size(); ++i) sab += (a[i] - ma) * (b[i] - mb), saa += (a[i] - ma) * (a[i] - ma), sbb += (b[i] - mb) * (b[i] - mb);
  return sab / std::sqrt(saa * sbb);
}
inline double srcc(const std::vector<double>& a, const std::vector<double>& b) { return plcc(ranks(a), ranks(b)); }
inline double krcc(const std::vector<double>& a, const std::vector<double>& b) {
  double c = 0, d = 0, ta = 0, tb = 0;
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t j = i + 1; j < a.size(); ++j) {
      const double x = (a[i] - a[j]) * (b[i] - b[j]);
      if (x > 0) c += 1; else if (x < 0) d += 1; else if (a[i] == a[j] && b[i] != b[j]) ta += 1; else if (b[i] == b[j] && a[i] != a[j]) tb += 1;
    }
  return (c - d) / std::sqrt((c + d + ta) * (c + d + tb));
}
}  // namespace interim
#endif

/// Correlations of predictions with MOS over a set of images.
struct Correlations {
  double srcc = 0.0, krcc = 0.0, plcc = 0.0;
  int64_t count = 0;
};

/// Computes SRCC, KRCC and PLCC of `pred` against `mos` (same length, at least 2 values).
inline Correlations correlations(const std::vector<double>& pred, const std::vector<double>& mos) {
  TORCH_CHECK(pred.size() == mos.size(), "correlations: ", pred.size(), " predictions for ", mos.size(), " MOS values");
  TORCH_CHECK(pred.size() >= 2, "correlations: need at least 2 images, got ", pred.size());
  Correlations c;
#ifdef OHEM_EXAMPLES_HAVE_METRICS
  c.srcc = ohem::srcc(pred, mos);
  c.krcc = ohem::krcc(pred, mos);
  c.plcc = ohem::plcc(pred, mos);
#else
  c.srcc = interim::srcc(pred, mos);
  c.krcc = interim::krcc(pred, mos);
  c.plcc = interim::plcc(pred, mos);
#endif
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
