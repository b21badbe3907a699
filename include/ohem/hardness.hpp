#pragma once
/// @file
/// Per-sample hardness by dataset index: which images the pruned twin disagrees on, i.e. which ones the
/// model "forgets" (Wang et al., IEEE TMM 2023). Accumulates `OhemLossResult::hardness` over an epoch,
/// reports the hardest samples and exports them as CSV.

#include <ohem/atomic_file.hpp>
#include <ohem/csv.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

OHEM_BEGIN_NAMESPACE

/// How a sample's hardness values are combined over updates.
enum class HardnessAverage {
  /// The arithmetic mean of every value since the last `reset()` (one epoch).
  Mean,
  /// An exponential moving average h ← m·h + (1 − m)·x (the first value is taken as is); survives
  /// `reset()`-free training across epochs.
  EMA,
};

/// Options of a `HardnessTracker`.
///
/// Example: `HardnessTrackerOptions().average(HardnessAverage::EMA).momentum(0.9)`
struct HardnessTrackerOptions {
  /// Mean over an epoch, or EMA.
  TORCH_ARG(HardnessAverage, average) = HardnessAverage::Mean;
  /// The EMA momentum m in [0, 1): the weight of the old value.
  TORCH_ARG(double, momentum) = 0.9;
};

/// One sample's tracked hardness.
struct HardnessEntry {
  /// The dataset index.
  int64_t index = 0;
  /// The mean or EMA of its hardness.
  double hardness = 0.0;
  /// How many values were recorded for it since the last reset.
  int64_t count = 0;
};

/// Tracks per-sample hardness (`OhemLossResult::hardness`) by dataset index.
///
/// Indices are non-negative and may exceed the initial size (the tracker grows). Values are copied to the
/// CPU (one synchronisation per update). A sample never updated has no entry. Not thread-safe.
///
/// Example: `ohem::HardnessTracker tracker(dataset_size); tracker.update(batch_indices, result.hardness);`
class HardnessTracker {
 public:
  /// Makes an empty tracker for indices in [0, size) (more are accepted); throws if the momentum is
  /// outside [0, 1) or the size is negative.
  explicit HardnessTracker(int64_t size = 0, HardnessTrackerOptions options = {}) : options_(options) {
    TORCH_CHECK(size >= 0, "ohem::HardnessTracker: size must be >= 0, got ", size);
    TORCH_CHECK(std::isfinite(options_.momentum()) && options_.momentum() >= 0.0 && options_.momentum() < 1.0,
                "ohem::HardnessTrackerOptions::momentum must be in [0, 1), got ", options_.momentum());
    values_.assign(static_cast<size_t>(size), 0.0);
    counts_.assign(static_cast<size_t>(size), 0);
  }

  /// Records one hardness value per index. `indices` is an integer tensor and `hardness` a floating tensor
  /// with as many elements (any shape, e.g. [B]); an index repeated within a batch is recorded once per
  /// occurrence. Throws on a count mismatch, a negative index or a non-finite hardness (naming it).
  void update(const torch::Tensor& indices, const torch::Tensor& hardness) {
    TORCH_CHECK(indices.defined() && hardness.defined(), "ohem::HardnessTracker::update: undefined tensor");
    TORCH_CHECK(
        !indices.is_floating_point() && !indices.is_complex() && indices.scalar_type() != torch::kBool,
        "ohem::HardnessTracker::update: indices must be an integer tensor, got ", indices.scalar_type());
    TORCH_CHECK(indices.numel() == hardness.numel(), "ohem::HardnessTracker::update: indices has ",
                indices.numel(), " elements but hardness has ", hardness.numel());
    const torch::Tensor idx = indices.detach().reshape({-1}).to(torch::kCPU, torch::kLong).contiguous();
    const torch::Tensor h = hardness.detach().reshape({-1}).to(torch::kCPU, torch::kDouble).contiguous();
    const int64_t* ip = idx.data_ptr<int64_t>();
    const double* hp = h.data_ptr<double>();
    for (int64_t i = 0; i < idx.numel(); ++i) {
      TORCH_CHECK(ip[i] >= 0, "ohem::HardnessTracker::update: index must be >= 0, got ", ip[i]);
      TORCH_CHECK(std::isfinite(hp[i]), "ohem::HardnessTracker::update: hardness of index ", ip[i],
                  " is not finite: ", hp[i]);
    }
    for (int64_t i = 0; i < idx.numel(); ++i) record(ip[i], hp[i]);
  }

  /// Forgets every recorded value (call at the start of an epoch for per-epoch means).
  void reset() {
    std::fill(values_.begin(), values_.end(), 0.0);
    std::fill(counts_.begin(), counts_.end(), 0);
  }

  /// Returns the number of indices the tracker can hold without growing (the largest index seen + 1, or
  /// the initial size).
  int64_t size() const { return static_cast<int64_t>(values_.size()); }
  /// Returns how many values index `i` received since the last reset (0 if out of range).
  int64_t count(int64_t i) const { return i >= 0 && i < size() ? counts_[static_cast<size_t>(i)] : 0; }
  /// Returns the hardness of index `i`, NaN if it has no value.
  double hardness(int64_t i) const {
    return count(i) > 0 ? values_[static_cast<size_t>(i)] : std::numeric_limits<double>::quiet_NaN();
  }
  /// Returns every index's hardness as a double tensor of shape [size()], NaN where there is no value.
  torch::Tensor values() const {
    torch::Tensor out = torch::empty({size()}, torch::kDouble);
    double* p = out.data_ptr<double>();
    for (int64_t i = 0; i < size(); ++i) p[i] = hardness(i);
    return out;
  }

  /// Returns every sample with a value, hardest first (ties by ascending index).
  std::vector<HardnessEntry> ranking() const {
    std::vector<HardnessEntry> out;
    for (int64_t i = 0; i < size(); ++i) {
      if (counts_[static_cast<size_t>(i)] > 0)
        out.push_back({i, values_[static_cast<size_t>(i)], counts_[static_cast<size_t>(i)]});
    }
    std::stable_sort(out.begin(), out.end(),
                     [](const HardnessEntry& a, const HardnessEntry& b) { return a.hardness > b.hardness; });
    return out;
  }

  /// Returns the `k` hardest samples, hardest first (fewer if fewer have values); throws if k < 0.
  std::vector<HardnessEntry> top_k(int64_t k) const {
    TORCH_CHECK(k >= 0, "ohem::HardnessTracker::top_k: k must be >= 0, got ", k);
    std::vector<HardnessEntry> out = ranking();
    if (static_cast<int64_t>(out.size()) > k) out.resize(static_cast<size_t>(k));
    return out;
  }

  /// Writes `index,name,hardness,mos` rows for every sample with a value, hardest first, to `path`
  /// atomically (a temporary file in the same directory, then a rename). `names[i]` and `mos[i]` describe
  /// dataset index i; either may be shorter or empty (the field is then left empty, as is a NaN MOS).
  /// Names are quoted as CSV requires. Throws naming the path if it cannot be written.
  ///
  /// Example: `tracker.save_csv("hardness.csv", dataset.names(), dataset.mos());`
  void save_csv(const std::string& path, const std::vector<std::string>& names = {},
                const std::vector<double>& mos = {}) const {
    // The whole file first: a full disk is then an error that says how much space it needed.
    std::string bytes = "index,name,hardness,mos\n";
    for (const auto& e : ranking()) {
      const auto i = static_cast<size_t>(e.index);
      bytes += fmt::format("{},{},{},{}\n", e.index, i < names.size() ? csv_field(names[i]) : std::string(),
                           e.hardness,
                           i < mos.size() && !std::isnan(mos[i]) ? fmt::format("{}", mos[i]) : std::string());
    }
    write_atomically(
        path,
        [&](const std::string& tmp) {
          write_bytes_checked(tmp, bytes, path, "ohem::HardnessTracker::save_csv");
        },
        "ohem::HardnessTracker::save_csv");
  }

  /// Returns the options.
  const HardnessTrackerOptions& options() const { return options_; }

 private:
  void record(int64_t i, double x) {
    if (i >= size()) {
      values_.resize(static_cast<size_t>(i) + 1, 0.0);
      counts_.resize(static_cast<size_t>(i) + 1, 0);
    }
    double& v = values_[static_cast<size_t>(i)];
    int64_t& n = counts_[static_cast<size_t>(i)];
    if (n == 0) {
      v = x;
    } else if (options_.average() == HardnessAverage::Mean) {
      v += (x - v) / static_cast<double>(n + 1);
    } else {
      v = options_.momentum() * v + (1.0 - options_.momentum()) * x;
    }
    ++n;
  }

  HardnessTrackerOptions options_;
  std::vector<double> values_;
  std::vector<int64_t> counts_;
};

OHEM_END_NAMESPACE
