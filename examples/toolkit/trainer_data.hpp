#pragma once
/// @file
/// The trainers' data: the run's dataset (--csv, --test-csv), its train/test split (by image, by content,
/// the KADID-10k protocol or a separate test file), the validation share (--val-fraction), the extra test
/// sets (--test), and the image store that decodes, resizes and caches their images.

#include "command_line.hpp"
#include "datasets.hpp"
#include "image.hpp"
#include "kadid_protocol.hpp"
#include "transforms.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace ohem_examples {

/// Loads images of a dataset as float [3, H, W] resized to a short side, optionally caching the
/// resized uint8 image. Errors name the image file and its metadata line.
class ImageStore {
 public:
  ImageStore(const Dataset* data, int64_t short_side, bool cache, int64_t max_pixels = kDefaultMaxPixels)
      : data_(data), side_(short_side), cache_(cache), max_pixels_(max_pixels) {}
  /// Returns image `i` as float [3, H, W] in [0, 1], short side resized to the store's size.
  torch::Tensor get(int64_t i) {
    if (cache_) {
      auto it = images_.find(i);
      if (it != images_.end()) return to_float_chw(it->second);
    }
    const Sample& s = data_->samples.at(static_cast<size_t>(i));
    torch::Tensor img;
    try {
      img = to_float_chw(load_image(s.path, max_pixels_));
    } catch (const c10::Error& e) {
      TORCH_CHECK(false, s.source, ":", s.line, ": ", e.what_without_backtrace());
    }
    if (side_ > 0) img = resize_short_side(img, side_);
    if (cache_) images_[i] = to_uint8_hwc(img);
    return img;
  }

 private:
  const Dataset* data_;
  int64_t side_;
  bool cache_;
  int64_t max_pixels_;
  std::map<int64_t, torch::Tensor> images_;
};

/// An extra test set (`--test`): its name and its images' dataset indices.
struct TestSet {
  std::string name;
  std::vector<int64_t> indices;
};

/// A run's data as `read_trainer_data` reads it: one dataset holding the run's images (--csv, then
/// --test-csv) followed by the --test sets' images, and the split of the run's images.
struct TrainerData {
  Dataset data;                                   ///< every image; indices below are into `data.samples`
  Split split;                                    ///< training and test images of the run
  std::string split_kind;                         ///< how it was split ("image", "group", "file", …)
  std::map<std::string, std::string> type_group;  ///< --split kadid-*: distortion type → head, mid, tail
  std::vector<int64_t> val;                       ///< --val-fraction: the validation images
  std::vector<TestSet> test_sets;                 ///< --test: name and images of each extra set
  int64_t run_images = 0;                         ///< images of --csv and --test-csv (the --test sets follow)
};

/// --val-fraction: moves a seeded share of the training images of `d` to its validation set, by content
/// where training images share a reference (the run's own split unit), else by image. Throws if fewer
/// than 4 training images or fewer than 3 validation images result.
inline void carve_validation(TrainerData& d, const TrainOptions& o) {
  TORCH_CHECK(d.split.train.size() >= 4, "--val-fraction needs at least 4 training images, got ",
              d.split.train.size());
  const Dataset train = d.data.subset(d.split.train);
  std::set<std::string> groups;
  for (const auto& s : train.samples) groups.insert(s.group);
  const bool by_group = groups.size() < train.samples.size();
  const uint64_t seed = o.split_seed ^ 0x76616C69646174ULL;  // "validat": not the test split's draws
  const Split v = by_group ? split_by_group(train, 1.0 - o.val_fraction, seed)
                           : split_by_image(train, 1.0 - o.val_fraction, seed);
  std::vector<int64_t> keep;
  for (int64_t i : v.train) keep.push_back(d.split.train[static_cast<size_t>(i)]);
  for (int64_t i : v.test) d.val.push_back(d.split.train[static_cast<size_t>(i)]);
  std::sort(keep.begin(), keep.end());
  std::sort(d.val.begin(), d.val.end());
  TORCH_CHECK(d.val.size() >= 3, "--val-fraction ", o.val_fraction, " leaves ", d.val.size(),
              " validation image(s); the validation SRCC needs at least 3 (raise --val-fraction)");
  d.split.train = std::move(keep);
  d.split_kind += by_group ? ", validation by content" : ", validation by image";
}

/// Reads the run's data as the options say (--csv, --format, --test-csv, --split, --train-fraction,
/// --split-seed, --val-fraction, --test, --skip-bad-rows) and splits it. Throws naming the file and line
/// of bad data, or the options that do not fit together.
inline TrainerData read_trainer_data(const TrainOptions& o) {
  TrainerData d;
  const ReadOptions read = ReadOptions().skip_bad_rows(o.skip_bad_rows);
  d.data = read_dataset(o.format, o.csv, o.images, read);
  if (!o.test_csv.empty()) {
    // A separate test set: every image of --csv trains; the test images are appended after them.
    const Dataset test =
        read_dataset(o.test_format.empty() ? o.format : o.test_format, o.test_csv, o.test_images, read);
    for (int64_t i = 0; i < d.data.size(); ++i) d.split.train.push_back(i);
    for (const auto& s : test.samples) {
      d.split.test.push_back(d.data.size());
      d.data.samples.push_back(s);
    }
    TORCH_CHECK(d.split.train.size() >= 2 && d.split.test.size() >= 2,
                "need at least 2 training and 2 test images, got ", d.split.train.size(), " and ",
                d.split.test.size());
    d.split_kind = "file";
  }
  std::string split = o.split;
  if (split == "auto") {
    std::map<std::string, int> per_group;
    for (const auto& s : d.data.samples) ++per_group[s.group];
    split = per_group.size() < d.data.samples.size() ? "group" : "image";
  }
  if (split == "kadid-longtail" || split == "kadid-balanced") {
    // The paper's KADID-10k protocol (kadid_protocol.hpp): the test set is reported by type group too.
    TORCH_CHECK(d.data.name == "kadid10k" && o.test_csv.empty(), "--split ", split,
                " is the KADID-10k protocol: it needs --format kadid10k and no --test-csv (got --format ",
                o.format, o.test_csv.empty() ? "" : " and a --test-csv", ")");
    KadidSplit k =
        split_kadid10k(d.data, o.split_seed, KadidProtocolOptions().long_tailed(split == "kadid-longtail"));
    d.split = std::move(k.split);
    d.type_group = std::move(k.type_group);
    d.split_kind = split;
  } else if (o.test_csv.empty()) {
    d.split_kind = split;
    d.split = split == "group" ? split_by_group(d.data, o.train_fraction, o.split_seed)
                               : split_by_image(d.data, o.train_fraction, o.split_seed);
  }
  if (o.val_fraction > 0) carve_validation(d, o);
  d.run_images = d.data.size();  // the run's own images; the --test sets follow (not part of the run)
  for (const TestSetSpec& t : parse_test_sets(o.tests)) {  // --test: appended after the run's images
    const Dataset extra = read_dataset(t.format, t.csv, t.images, read);
    TestSet set{t.name, {}};
    for (const auto& sample : extra.samples) {
      set.indices.push_back(d.data.size());
      d.data.samples.push_back(sample);
    }
    d.test_sets.push_back(std::move(set));
  }
  return d;
}

}  // namespace ohem_examples
