#pragma once
/// @file
/// The OHEM paper's KADID-10k protocol (its official code's `kadid10k_splits/data_kadid10k.m`, as
/// DESIGN.md §4 records it): per split, the 81 reference contents are divided 65 / 16; the 25
/// distortion types are drawn into three groups of 8, 8 and 9 types; the long-tailed training set keeps,
/// of every training content, all 5 levels of each "head" type, 3 levels of each "mid" type and 1 level
/// of each "tail" type (which levels: drawn per content and type); the balanced variant keeps every
/// level; the test set is every image of the 16 test contents, reported in head / mid / tail groups by
/// the same type groups. Step by step, and what each count is, in docs/datasets.md.

#include "datasets.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace ohem_examples {

/// Options of `split_kadid10k`: the protocol's numbers (for smaller synthetic data in tests).
struct KadidProtocolOptions {
  /// Reference contents for training (the rest test): 65 of KADID-10k's 81.
  TORCH_ARG(int64_t, train_contents) = 65;
  /// Distortion types in the head and mid groups (the rest are the tail): 8 and 8 of 25.
  TORCH_ARG(int64_t, head_types) = 8;
  TORCH_ARG(int64_t, mid_types) = 8;
  /// Levels a training content keeps of each mid and each tail type: 3 and 1 (of 5; head: all).
  TORCH_ARG(int64_t, mid_levels) = 3;
  TORCH_ARG(int64_t, tail_levels) = 1;
  /// True: the long-tailed training set; false: the balanced variant (every level of every type).
  TORCH_ARG(bool, long_tailed) = true;
};

/// One split of the protocol: dataset indices (sorted) and the type groups.
struct KadidSplit {
  Split split;                              ///< train: the (long-tailed) training set; test: all test images
  std::vector<std::string> train_contents;  ///< the training reference contents (sorted)
  std::vector<std::string> test_contents;   ///< the test reference contents (sorted)
  std::map<std::string, std::string> type_group;  ///< distortion type → "head", "mid" or "tail"
  /// The test images of each group ("head", "mid", "tail"), sorted.
  std::map<std::string, std::vector<int64_t>> test_groups;
};

namespace detail {

/// The level of a KADID image from its name `Ixx_TT_LL.png` (the number after the last '_'); throws
/// naming the sample otherwise.
inline int64_t kadid_level(const Sample& s) {
  const std::string stem = std::filesystem::path(s.name.empty() ? s.path : s.name).stem().string();
  const auto at = stem.rfind('_');
  TORCH_CHECK(at != std::string::npos && at + 1 < stem.size(), s.source, ":", s.line, ": \"", stem,
              "\" is not named Ixx_TT_LL (reference, type, level)");
  try {
    return std::stoll(stem.substr(at + 1));
  } catch (const std::exception&) {
    TORCH_CHECK(false, s.source, ":", s.line, ": the level of \"", stem, "\" is not a number");
  }
  return 0;
}

}  // namespace detail

/// Returns split `seed` of the KADID-10k protocol for a dataset read by `read_kadid10k` (group: the
/// reference content; type: the distortion; level: from the file name). The draws, all from one
/// `std::mt19937_64(seed)` in this order: the contents (sorted by name) shuffled, the first
/// `train_contents` train; the types (sorted by name) shuffled, the first `head_types` are the head, the
/// next `mid_types` the mid, the rest the tail; then for each training content and each mid or tail type
/// (both in sorted order), the levels it keeps: a shuffle of that content's levels of the type (sorted),
/// the first `mid_levels` or `tail_levels`. Throws if the data has too few contents, types or levels.
///
/// Example: `KadidSplit s = split_kadid10k(read_kadid10k("dmos.csv", "images"), 3);`
inline KadidSplit split_kadid10k(const Dataset& d, uint64_t seed, const KadidProtocolOptions& o = {}) {
  std::set<std::string> content_set, type_set;
  for (const auto& s : d.samples) {
    content_set.insert(s.group);
    type_set.insert(s.type);
  }
  TORCH_CHECK(o.train_contents() >= 1 && static_cast<int64_t>(content_set.size()) > o.train_contents(),
              "the KADID-10k protocol trains on ", o.train_contents(),
              " reference contents and tests on the rest; \"", d.source, "\" has ", content_set.size());
  TORCH_CHECK(o.head_types() >= 0 && o.mid_types() >= 0 &&
                  static_cast<int64_t>(type_set.size()) > o.head_types() + o.mid_types(),
              "the KADID-10k protocol puts ", o.head_types(), " + ", o.mid_types(),
              " distortion types in its head and mid groups and the rest in the tail; \"", d.source,
              "\" has ", type_set.size(), " types");
  std::mt19937_64 rng(seed);
  std::vector<std::string> contents(content_set.begin(), content_set.end());
  seeded_shuffle(contents, rng);
  std::vector<std::string> types(type_set.begin(), type_set.end());
  seeded_shuffle(types, rng);

  KadidSplit out;
  out.train_contents.assign(contents.begin(), contents.begin() + o.train_contents());
  out.test_contents.assign(contents.begin() + o.train_contents(), contents.end());
  std::sort(out.train_contents.begin(), out.train_contents.end());
  std::sort(out.test_contents.begin(), out.test_contents.end());
  for (size_t i = 0; i < types.size(); ++i) {
    const auto k = static_cast<int64_t>(i);
    out.type_group[types[i]] = k < o.head_types()                   ? "head"
                               : k < o.head_types() + o.mid_types() ? "mid"
                                                                    : "tail";
  }
  const std::set<std::string> train(out.train_contents.begin(), out.train_contents.end());

  // The levels of each (training content, type), and the images of each level.
  std::map<std::pair<std::string, std::string>, std::map<int64_t, std::vector<int64_t>>> cells;
  for (int64_t i = 0; i < d.size(); ++i) {
    const Sample& s = d.samples[static_cast<size_t>(i)];
    if (train.count(s.group) != 0) {
      cells[{s.group, s.type}][detail::kadid_level(s)].push_back(i);
    } else {
      out.split.test.push_back(i);
      out.test_groups[out.type_group.at(s.type)].push_back(i);
    }
  }
  for (auto& [cell, levels] : cells) {  // sorted by (content, type): the order of the draws
    const std::string& group = out.type_group.at(cell.second);
    int64_t keep = static_cast<int64_t>(levels.size());
    if (o.long_tailed() && group != "head") keep = group == "mid" ? o.mid_levels() : o.tail_levels();
    TORCH_CHECK(keep >= 1 && keep <= static_cast<int64_t>(levels.size()), "the KADID-10k protocol keeps ",
                keep, " level(s) of each ", group, " type; content \"", cell.first, "\" has ", levels.size(),
                " level(s) of type \"", cell.second, "\"");
    std::vector<int64_t> order;
    for (const auto& kv : levels) order.push_back(kv.first);
    if (o.long_tailed() && group != "head") seeded_shuffle(order, rng);
    for (int64_t k = 0; k < keep; ++k)
      for (int64_t i : levels.at(order[static_cast<size_t>(k)])) out.split.train.push_back(i);
  }
  std::sort(out.split.train.begin(), out.split.train.end());
  return out;
}

}  // namespace ohem_examples
