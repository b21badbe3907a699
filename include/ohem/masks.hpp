#pragma once
/// @file
/// Masks: one boolean tensor per prunable weight, the criteria that compute them, statistics and
/// save/load keyed by parameter name.

#include <ohem/atomic_file.hpp>
#include <ohem/detail/mask_criteria.hpp>
#include <ohem/detail/select.hpp>
#include <ohem/enum_names.hpp>
#include <ohem/slots.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/core.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <istream>
#include <limits>
#include <optional>
#include <ostream>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

OHEM_BEGIN_NAMESPACE

/// How masks are computed from the weights.
enum class MaskCriterion {
  /// The paper's recipe: one magnitude threshold over all masked weights together.
  GlobalMagnitude,
  /// The same rule applied to each layer on its own.
  LayerMagnitude,
  /// Each layer loses min(ceil(ratio·n), n−1) weights chosen uniformly at random (seeded).
  Random,
  /// Each layer loses its min(ceil(ratio·C), C−1) output channels of smallest L1 norm.
  StructuredL1,
};

/// The names of each MaskCriterion (`to_string`, `enum_key`, `enum_from_key`).
template <>
struct EnumNames<MaskCriterion> {
  static constexpr EnumName<MaskCriterion> values[] = {
      {MaskCriterion::GlobalMagnitude, "GlobalMagnitude", "magnitude"},
      {MaskCriterion::LayerMagnitude, "LayerMagnitude", "layer-magnitude"},
      {MaskCriterion::Random, "Random", "random"},
      {MaskCriterion::StructuredL1, "StructuredL1", "structured-l1"},
  };
};

/// Returns the criterion's name as written in this header, e.g. "GlobalMagnitude".
inline const char* to_string(MaskCriterion c) {
  return enum_name(c);
}

/// Options of a mask computation. Defaults reproduce the paper's public recipe.
///
/// Example: `MaskOptions().ratio(0.7).criterion(MaskCriterion::LayerMagnitude)`
struct MaskOptions {
  /// Fraction of weights to prune, in [0, 1). Recipe: 0.65 (0.7 also used in the paper).
  TORCH_ARG(double, ratio) = 0.65;
  /// Which rule selects the pruned weights. Recipe: global magnitude.
  TORCH_ARG(MaskCriterion, criterion) = MaskCriterion::GlobalMagnitude;
  /// Extra random pruning r in [0, 1) after a magnitude criterion: each surviving weight is pruned with
  /// probability ceil(r·N) / (N − ceil(ratio·N)) (the recipe's formula; N counted globally for
  /// GlobalMagnitude, per layer for LayerMagnitude). Recipe default: 0 (off).
  TORCH_ARG(double, random_fraction) = 0.0;
  /// Seed of the random criteria. The draws are made on the CPU, so masks do not depend on the device.
  TORCH_ARG(std::uint64_t, seed) = 0;
};

/// Statistics of one layer's mask.
struct MaskStats {
  std::string name;
  std::vector<int64_t> shape;
  int64_t numel = 0;
  int64_t kept = 0;
  /// The magnitude threshold that computed this mask (weights with |w| ≥ threshold were kept, before any
  /// extra random pruning): the one global threshold for GlobalMagnitude, the layer's own for
  /// LayerMagnitude; NaN for the other criteria.
  double threshold = std::numeric_limits<double>::quiet_NaN();
  /// Fraction of weights pruned (mask false).
  double sparsity() const { return numel == 0 ? 0.0 : 1.0 - static_cast<double>(kept) / numel; }
};

/// An ordered set of boolean masks keyed by qualified parameter name.
class MaskSet {
 public:
  /// Appends a mask and the magnitude threshold that computed it (NaN if none, see
  /// `MaskStats::threshold`); `mask` must be a bool tensor and `name` new. Throws otherwise.
  void add(std::string name, torch::Tensor mask,
           double threshold = std::numeric_limits<double>::quiet_NaN()) {
    TORCH_CHECK(mask.defined() && mask.scalar_type() == torch::kBool, "ohem::MaskSet::add(\"", name,
                "\"): masks must be bool tensors, got ",
                mask.defined() ? std::string(c10::toString(mask.scalar_type())) : "undefined");
    TORCH_CHECK(index_.count(name) == 0, "ohem::MaskSet::add: duplicate mask name \"", name, "\"");
    index_.emplace(name, names_.size());
    names_.push_back(std::move(name));
    masks_.push_back(std::move(mask));
    thresholds_.push_back(threshold);
  }
  /// Returns the number of masks.
  size_t size() const { return masks_.size(); }
  /// Returns true if there is no mask.
  bool empty() const { return masks_.empty(); }
  /// Returns the i-th mask's parameter name.
  const std::string& name(size_t i) const { return names_.at(i); }
  /// Returns the i-th mask.
  const torch::Tensor& mask(size_t i) const { return masks_.at(i); }
  /// Returns the magnitude threshold of the i-th mask (NaN if none, see `MaskStats::threshold`).
  double threshold(size_t i) const { return thresholds_.at(i); }
  /// Returns the one threshold of every layer when the set was computed by GlobalMagnitude (the recipe's
  /// t = sorted(|w|)[min(ceil(ratio·N), N−1)]), nothing otherwise.
  std::optional<double> global_threshold() const { return global_threshold_; }
  /// Records the set's global magnitude threshold (`compute_masks` does for GlobalMagnitude).
  void set_global_threshold(std::optional<double> threshold) { global_threshold_ = threshold; }
  /// Returns true if a mask of this name exists.
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  /// Returns the mask of a parameter; throws naming the parameter if there is none.
  const torch::Tensor& at(const std::string& name) const {
    auto it = index_.find(name);
    TORCH_CHECK(it != index_.end(), "ohem::MaskSet: no mask for parameter \"", name, "\"");
    return masks_[it->second];
  }

  /// Returns per-layer statistics (one device synchronisation per layer).
  std::vector<MaskStats> stats() const {
    std::vector<MaskStats> out;
    out.reserve(size());
    for (size_t i = 0; i < size(); ++i) {
      out.push_back(MaskStats{names_[i], masks_[i].sizes().vec(), masks_[i].numel(),
                              masks_[i].sum().item<int64_t>(), thresholds_[i]});
    }
    return out;
  }
  /// Returns the number of masked weights in all layers.
  int64_t numel() const {
    int64_t n = 0;
    for (const auto& m : masks_) n += m.numel();
    return n;
  }
  /// Returns the number of weights kept (mask true) in all layers.
  int64_t kept() const {
    int64_t n = 0;
    for (const auto& m : masks_) n += m.sum().item<int64_t>();
    return n;
  }
  /// Returns the global fraction of weights pruned.
  double sparsity() const {
    const int64_t n = numel();
    return n == 0 ? 0.0 : 1.0 - static_cast<double>(kept()) / n;
  }

  /// Returns a readable table: one row per layer (name, shape, weights, kept, sparsity, threshold) and a
  /// total (with the global threshold, if any).
  template <typename = void>
  std::string summary() const {
    auto st = stats();
    size_t width = 5;
    for (const auto& s : st) width = std::max(width, s.name.size());
    std::string out = fmt::format("{:<{}}  {:>18}  {:>10}  {:>10}  {:>8}  {:>12}\n", "layer", width, "shape",
                                  "weights", "kept", "sparsity", "threshold");
    auto threshold = [](double t) { return std::isnan(t) ? std::string("-") : fmt::format("{:.6g}", t); };
    int64_t n = 0, kept = 0;
    for (const auto& s : st) {
      std::string shape;
      for (size_t d = 0; d < s.shape.size(); ++d) shape += (d ? "x" : "") + std::to_string(s.shape[d]);
      out += fmt::format("{:<{}}  {:>18}  {:>10}  {:>10}  {:>7.2f}%  {:>12}\n", s.name, width, shape, s.numel,
                         s.kept, 100.0 * s.sparsity(), threshold(s.threshold));
      n += s.numel;
      kept += s.kept;
    }
    const double total = n == 0 ? 0.0 : 100.0 * (1.0 - static_cast<double>(kept) / n);
    out +=
        fmt::format("{:<{}}  {:>18}  {:>10}  {:>10}  {:>7.2f}%  {:>12}\n", "total", width, "", n, kept, total,
                    threshold(global_threshold_.value_or(std::numeric_limits<double>::quiet_NaN())));
    return out;
  }

  /// Writes the masks and their thresholds to `out` in the mask format (a LibTorch archive keyed by
  /// name), e.g. to embed them in a checkpoint. Throws if the stream fails.
  ///
  /// Example: `std::ostringstream bytes; masks.save(bytes);`
  template <typename = void>
  void save(std::ostream& out) const {
    torch::serialize::OutputArchive archive;
    archive.write("ohem_mask_format", c10::IValue(kFormat));
    c10::List<std::string> names;
    for (const auto& n : names_) names.push_back(n);
    archive.write("names", c10::IValue(names));
    for (size_t i = 0; i < size(); ++i) archive.write("mask" + std::to_string(i), masks_[i].to(torch::kCPU));
    archive.write("thresholds", torch::tensor(thresholds_, torch::kDouble));
    if (global_threshold_) archive.write("global_threshold", c10::IValue(*global_threshold_));
    archive.save_to(out);
    out.flush();
    TORCH_CHECK(out.good(), "ohem::MaskSet::save: writing the masks to the stream failed");
  }

  /// Writes the masks to `path` atomically (a temporary file renamed over `path`) in the format of
  /// `save(std::ostream&)`. Throws naming the path if it cannot be written.
  ///
  /// Example: `masks.save("masks.pt");`
  template <typename = void>
  void save(const std::string& path) const {
    write_atomically(
        path,
        [&](const std::string& tmp) {
          std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
          TORCH_CHECK(out.good(), "ohem::MaskSet::save: cannot open \"", tmp, "\" for writing");
          save(out);
        },
        "ohem::MaskSet::save");
  }

  /// Reads masks written by `save(std::ostream&)` from `in` (on the CPU; the twin moves them to the
  /// weights' device). `source` names the stream in messages (e.g. "checkpoint \"ckpt.pt\""). Throws
  /// naming `source` if the bytes are not a mask payload of this format or are damaged (a mask that is
  /// not bool, names that are not strings, a missing mask, thresholds of the wrong size or dtype).
  ///
  /// Example: `std::istringstream in(bytes); auto masks = ohem::MaskSet::load(in, "my buffer");`
  template <typename = void>
  static MaskSet load(std::istream& in, const std::string& source = "stream") {
    torch::serialize::InputArchive archive;
    try {
      archive.load_from(in);
    } catch (const c10::Error& e) {
      TORCH_CHECK(false, "ohem::MaskSet::load: cannot read masks from ", source,
                  " (not a mask payload, or damaged): ", e.what_without_backtrace());
    }
    return read(archive, source);
  }

  /// Reads masks written by `save` from the file `path` (on the CPU). Throws naming the file if it is
  /// missing or not a valid mask file.
  ///
  /// Example: `auto masks = ohem::MaskSet::load("masks.pt");`
  template <typename = void>
  static MaskSet load(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    TORCH_CHECK(in.good(), "ohem::MaskSet::load: cannot read mask file \"", path, "\": cannot open it");
    return load(in, "mask file \"" + path + "\"");
  }

  /// Checks that this set has exactly one bool mask per slot, of the slot's shape; throws naming the
  /// first mismatching layer otherwise.
  void check_matches(const std::vector<Slot>& slots) const {
    for (const auto& s : slots) {
      TORCH_CHECK(contains(s.name), "ohem: mask set has no mask for layer \"", s.name, "\"");
      const auto& m = at(s.name);
      TORCH_CHECK(m.scalar_type() == torch::kBool, "ohem: mask of layer \"", s.name, "\" has dtype ",
                  m.scalar_type(), ", expected Bool");
      TORCH_CHECK(m.sizes() == s.parameter.sizes(), "ohem: mask of layer \"", s.name, "\" has shape ",
                  m.sizes(), ", but the weight has shape ", s.parameter.sizes());
    }
    if (size() != slots.size()) {
      for (const auto& n : names_) {
        bool found = false;
        for (const auto& s : slots) found = found || s.name == n;
        TORCH_CHECK(found, "ohem: mask set has a mask for \"", n,
                    "\", which is not a prunable layer of the model");
      }
    }
  }

 private:
  static constexpr int64_t kFormat = 1;

  // Reads and validates the entries of a mask archive; `source` names it in messages.
  template <typename = void>
  static MaskSet read(torch::serialize::InputArchive& archive, const std::string& source) {
    const std::string who = "ohem::MaskSet::load: " + source;
    c10::IValue format, names;
    TORCH_CHECK(archive.try_read("ohem_mask_format", format) && format.isInt() && format.toInt() == kFormat,
                who, " does not hold ohem masks (mask format ", kFormat, ")");
    TORCH_CHECK(archive.try_read("names", names) && names.isList(), who, " has no list of names");
    MaskSet set;
    auto list = names.toList();
    for (size_t i = 0; i < list.size(); ++i) {
      const c10::IValue name = list.get(i);
      TORCH_CHECK(name.isString(), who, ": name ", i, " is not a string but ", name.tagKind());
      torch::Tensor m;
      TORCH_CHECK(archive.try_read("mask" + std::to_string(i), m), who, " lacks the mask of \"",
                  name.toStringRef(), "\"");
      TORCH_CHECK(m.scalar_type() == torch::kBool, who, ": the mask of \"", name.toStringRef(),
                  "\" has dtype ", m.scalar_type(), ", expected Bool");
      TORCH_CHECK(set.index_.count(name.toStringRef()) == 0, who, ": duplicate mask name \"",
                  name.toStringRef(), "\"");
      set.add(name.toStringRef(), m);
    }
    torch::Tensor thresholds;
    if (!archive.try_read("thresholds", thresholds)) return set;  // written before thresholds were stored
    TORCH_CHECK(thresholds.scalar_type() == torch::kDouble && thresholds.dim() == 1 &&
                    thresholds.numel() == static_cast<int64_t>(set.size()),
                who, ": expected ", set.size(), " double thresholds, got a ", thresholds.scalar_type(),
                " tensor of shape ", thresholds.sizes());
    thresholds = thresholds.contiguous();
    set.thresholds_.assign(thresholds.data_ptr<double>(), thresholds.data_ptr<double>() + thresholds.numel());
    c10::IValue global;
    if (archive.try_read("global_threshold", global)) {
      TORCH_CHECK(global.isDouble(), who, ": the global threshold is not a number but ", global.tagKind());
      set.global_threshold_ = global.toDouble();
    }
    return set;
  }

  std::vector<std::string> names_;
  std::vector<torch::Tensor> masks_;
  std::unordered_map<std::string, size_t> index_;
  std::vector<double> thresholds_;  // per mask, NaN where no magnitude threshold computed it
  std::optional<double> global_threshold_;
};

/// Computes one boolean mask per slot (true = keep), on each weight's device, from the current weights.
///
/// GlobalMagnitude follows the recipe exactly: over all N weights, t = sorted(|w|)[min(ceil(ratio·N), N−1)]
/// and every weight with |w| ≥ t is kept (ties at t are kept); t is found by an exact linear-time radix
/// selection, without concatenating or sorting the weights. Throws if the ratio is outside [0, 1) or a
/// weight is NaN/Inf (naming the layer).
///
/// Example: `MaskSet masks = ohem::compute_masks(ohem::find_slots(*net), ohem::MaskOptions().ratio(0.7));`
template <typename = void>
MaskSet compute_masks(const std::vector<Slot>& slots, const MaskOptions& options = {}) {
  detail::check_fraction(options.ratio(), "ratio");
  detail::check_fraction(options.random_fraction(), "random_fraction");
  TORCH_CHECK(!slots.empty(), "ohem::compute_masks: no slots given");
  torch::NoGradGuard no_grad;
  torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(options.seed());
  MaskSet set;
  std::vector<torch::Tensor> weights;
  std::vector<std::string> names;
  for (const auto& s : slots) {
    TORCH_CHECK(s.parameter.defined() && s.parameter.numel() > 0, "ohem::compute_masks: layer \"", s.name,
                "\" has an empty weight");
    TORCH_CHECK(s.parameter.is_floating_point(), "ohem::compute_masks: layer \"", s.name,
                "\" has a non-floating weight of dtype ", s.parameter.scalar_type());
    weights.push_back(s.parameter.detach());
    names.push_back(s.name);
  }
  switch (options.criterion()) {
    case MaskCriterion::GlobalMagnitude: {
      int64_t n = 0;
      for (const auto& w : weights) n += w.numel();
      const double t = detail::kth_smallest_abs(weights, names, detail::recipe_index(options.ratio(), n));
      const double p = detail::extra_probability(options.random_fraction(), options.ratio(), n);
      for (size_t i = 0; i < slots.size(); ++i) {
        set.add(names[i], detail::random_extra(detail::keep_at_least(weights[i], t), p, gen), t);
      }
      set.set_global_threshold(t);
      break;
    }
    case MaskCriterion::LayerMagnitude: {
      for (size_t i = 0; i < slots.size(); ++i) {
        const int64_t n = weights[i].numel();
        const double t =
            detail::kth_smallest_abs({weights[i]}, {names[i]}, detail::recipe_index(options.ratio(), n));
        const double p = detail::extra_probability(options.random_fraction(), options.ratio(), n);
        set.add(names[i], detail::random_extra(detail::keep_at_least(weights[i], t), p, gen), t);
      }
      break;
    }
    case MaskCriterion::Random: {
      for (size_t i = 0; i < slots.size(); ++i) {
        detail::check_finite(weights[i], names[i]);
        const int64_t n = weights[i].numel();
        const int64_t pruned = detail::recipe_index(options.ratio(), n);
        torch::Tensor keep = torch::ones({n}, torch::kBool);
        keep.index_fill_(0, torch::randperm(n, gen, torch::kLong).narrow(0, 0, pruned), false);
        set.add(names[i], keep.view(weights[i].sizes()).to(weights[i].device()));
      }
      break;
    }
    case MaskCriterion::StructuredL1: {
      for (size_t i = 0; i < slots.size(); ++i) {
        detail::check_finite(weights[i], names[i]);
        const int64_t d = slots[i].output_dim;
        const int64_t channels = weights[i].size(d);
        const int64_t pruned = detail::recipe_index(options.ratio(), channels);
        // L1 norm per output channel, in double on the CPU so the ordering is exact and reproducible.
        torch::Tensor l1 =
            weights[i].to(torch::kCPU, torch::kDouble).abs().transpose(0, d).reshape({channels, -1}).sum(1);
        torch::Tensor order = std::get<1>(l1.sort(/*stable=*/true, /*dim=*/0, /*descending=*/false));
        torch::Tensor keep_channel = torch::ones({channels}, torch::kBool);
        keep_channel.index_fill_(0, order.narrow(0, 0, pruned), false);
        std::vector<int64_t> view(weights[i].dim(), 1);
        view[d] = channels;
        set.add(names[i],
                keep_channel.view(view).expand(weights[i].sizes()).contiguous().to(weights[i].device()));
      }
      break;
    }
  }
  return set;
}

OHEM_END_NAMESPACE
