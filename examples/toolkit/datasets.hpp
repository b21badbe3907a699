#pragma once
/// @file
/// IQA dataset readers for the published metadata files, seeded train/test splits (by image or by
/// reference content) and pair sampling for pairwise training.
///
/// Formats (see docs/datasets.md):
/// - KonIQ-10k: `koniq10k_scores_and_distributions.csv` (image_name, ..., MOS, SD, MOS_zscore).
/// - KADID-10k: `dmos.csv` (dist_img, ref_img, dmos, var); grouped by reference, typed by distortion.
/// - LIVE Challenge and SPAQ: CSV exports of the published .mat/.xlsx files with a header naming the
///   image column and the MOS column (and optionally a standard-deviation column).
/// - Generic: `path,mos[,std][,group][,type]`, with that header (any column order) or without a header
///   (positional).
/// A malformed row, a missing image or a non-finite score is an error naming the file and line, unless
/// `ReadOptions::skip_bad_rows` is set, which skips the row with a warning on stderr.

#include "csv.hpp"
#include "transforms.hpp"

#include <torch/torch.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace ohem_examples {

/// One image of a dataset.
struct Sample {
  std::string path;  ///< image file (resolved against the image directory)
  std::string name;  ///< the image as the metadata file names it (before resolving)
  double mos = 0.0;  ///< quality score, higher is better (KADID's DMOS is also "higher is better")
  double std =
      std::numeric_limits<double>::quiet_NaN();  ///< standard deviation of the ratings, NaN if unknown
  std::string group;   ///< reference content (split unit); the image itself when there is no reference
  std::string type;    ///< distortion type, empty if unknown
  int64_t line = 0;    ///< line of the metadata file it came from
  std::string source;  ///< the metadata file it came from
};

/// A list of samples read from one metadata file.
struct Dataset {
  std::string name;    ///< format name, e.g. "koniq10k"
  std::string source;  ///< the metadata file
  std::vector<Sample> samples;
  int64_t skipped = 0;  ///< rows skipped by `skip_bad_rows`

  int64_t size() const { return static_cast<int64_t>(samples.size()); }
  /// Returns the image paths, in order.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& s : samples) out.push_back(s.path);
    return out;
  }
  /// Returns the MOS values, in order.
  std::vector<double> mos() const {
    std::vector<double> out;
    for (const auto& s : samples) out.push_back(s.mos);
    return out;
  }
  /// True if every sample has a standard deviation.
  bool has_std() const {
    return std::all_of(samples.begin(), samples.end(), [](const Sample& s) { return !std::isnan(s.std); });
  }
  /// Returns the subset at `indices` (same name and source).
  Dataset subset(const std::vector<int64_t>& indices) const {
    Dataset d{name, source, {}, 0};
    for (int64_t i : indices) {
      TORCH_CHECK(i >= 0 && i < size(), "Dataset::subset: index ", i, " out of range [0, ", size(), ")");
      d.samples.push_back(samples[static_cast<size_t>(i)]);
    }
    return d;
  }
};

/// Options of the readers.
struct ReadOptions {
  /// Check that every image file exists while reading (decoding errors surface when an image is loaded).
  TORCH_ARG(bool, check_images) = true;
  /// Skip a malformed row or a missing image with a warning on stderr instead of throwing.
  TORCH_ARG(bool, skip_bad_rows) = false;
};

// ---------------------------------------------------------------------------------------------------------------
// CSV: examples/toolkit/csv.hpp (CsvFile, read_csv, split_csv_line, trim)

namespace detail {

/// Parses field `c` of record `r` as a plain decimal number (`parse_decimal`: no hexadecimal, inf or
/// nan); throws naming the file, line and column, `what` and the text otherwise.
inline double number_field(const CsvFile& csv, size_t r, int64_t c, const char* what) {
  const std::string& text = csv.rows.at(r).second.at(static_cast<size_t>(c));
  double v = 0.0;
  if (parse_decimal(text, v)) return v;
  const std::string t = trim(text);
  char* end = nullptr;
  const double loose = t.empty() ? 0.0 : std::strtod(t.c_str(), &end);
  const bool infinite = !t.empty() && end == t.c_str() + t.size() && !std::isfinite(loose);
  TORCH_CHECK(
      false, csv.where(r, static_cast<size_t>(c)), ": ", what,
      infinite ? " is not finite: \"" : " is not a number (plain decimals only, such as 3.5 or 1e-3): \"",
      text, "\"");
  return v;
}

inline bool looks_numeric(const std::string& text) {
  const std::string t = trim(text);
  if (t.empty()) return false;
  try {
    size_t used = 0;
    std::stod(t, &used);
    return used == t.size();
  } catch (const std::exception&) {
    return false;
  }
}

inline std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty() || std::filesystem::path(name).is_absolute()) return name;
  return (std::filesystem::path(dir) / name).string();
}

/// Reads rows with `parse(record index, line, fields) -> Sample` (which throws on a bad row), checks
/// images, and applies the skip option; errors are prefixed with "file:line". An image that appears
/// again with another MOS is an error (`repeated_keys`; skipped with a warning under `skip_bad_rows`).
template <typename Parse>
Dataset read_rows(const CsvFile& csv, const char* name, const ReadOptions& options, Parse parse) {
  Dataset d{name, csv.path, {}, 0};
  auto skip = [&](const std::string& why) {
    if (!options.skip_bad_rows()) TORCH_CHECK(false, why);
    ++d.skipped;
    std::cerr << "warning: skipping row: " << why << "\n";
  };
  for (size_t r = 0; r < csv.rows.size(); ++r) {
    const int64_t line = csv.rows[r].first;
    try {
      Sample s = parse(r, line, csv.rows[r].second);
      s.line = line;
      s.source = csv.path;
      if (options.check_images()) {
        std::error_code ec;
        TORCH_CHECK(std::filesystem::is_regular_file(s.path, ec), csv.where(line), ": image file \"", s.path,
                    "\" does not exist");
      }
      d.samples.push_back(std::move(s));
    } catch (const c10::Error& e) {
      skip(e.what_without_backtrace());
    }
  }
  std::vector<std::string> paths;
  for (const auto& s : d.samples) paths.push_back(s.path);
  std::vector<bool> drop(d.samples.size(), false);
  for (const RepeatedKey& k : repeated_keys(paths)) {
    const Sample &again = d.samples[k.row], &first = d.samples[k.first];
    if (again.mos == first.mos) continue;
    skip(
        fmt::format("{}: image \"{}\" appears again with MOS {} (first on line {} with MOS {}); an image "
                    "has one score",
                    csv.where(again.line), again.path, again.mos, first.line, first.mos));
    drop[k.row] = true;
  }
  for (size_t i = drop.size(); i-- > 0;)
    if (drop[i]) d.samples.erase(d.samples.begin() + static_cast<std::ptrdiff_t>(i));
  TORCH_CHECK(!d.samples.empty(), "metadata file \"", csv.path, "\" has no usable rows (", d.skipped,
              " skipped)");
  return d;
}

inline void check_fields(const CsvFile& csv, int64_t line, const std::vector<std::string>& fields,
                         size_t need) {
  TORCH_CHECK(fields.size() >= need, csv.where(line), ": expected at least ", need, " fields, got ",
              fields.size());
  if (!csv.header.empty()) {
    TORCH_CHECK(fields.size() == csv.header.size(), csv.where(line), ": expected ", csv.header.size(),
                " fields (as the header), got ", fields.size());
  }
}

inline int64_t require_column(const CsvFile& csv, std::initializer_list<const char*> names,
                              const char* what) {
  return csv.require_column(std::vector<std::string>(names.begin(), names.end()), what);
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------------------------
// Readers

/// Reads KonIQ-10k's `koniq10k_scores_and_distributions.csv` (header with image_name, MOS and SD; MOS on
/// the 1..5 scale; `use_zscore` takes MOS_zscore (0..100) instead, with SD scaled by 25 to match).
/// Images are `image_dir/<image_name>` (the published 1024x768/ or 512x384/ folder). Each image is its
/// own group.
///
/// Example: `auto ds = read_koniq10k("koniq10k_scores_and_distributions.csv", "koniq/1024x768");`
inline Dataset read_koniq10k(const std::string& csv_path, const std::string& image_dir,
                             const ReadOptions& options = {}, bool use_zscore = false) {
  const CsvFile csv = read_csv(csv_path, true);
  const int64_t ci = detail::require_column(csv, {"image_name"}, "image_name");
  const int64_t cm =
      detail::require_column(csv, {use_zscore ? "mos_zscore" : "mos"}, use_zscore ? "MOS_zscore" : "MOS");
  const int64_t cs = csv.column({"sd"});
  return detail::read_rows(csv, "koniq10k", options,
                           [&](size_t r, int64_t line, const std::vector<std::string>& f) {
                             detail::check_fields(csv, line, f, 2);
                             Sample s;
                             TORCH_CHECK(!f[ci].empty(), csv.where(line), ": empty image_name");
                             s.name = f[ci];
                             s.path = detail::join_path(image_dir, s.name);
                             s.mos = detail::number_field(csv, r, cm, "MOS");
                             if (cs >= 0)
                               s.std = detail::number_field(csv, r, cs, "SD") * (use_zscore ? 25.0 : 1.0);
                             s.group = f[ci];
                             return s;
                           });
}

/// Returns KADID-10k's name of distortion type `id` ("01".."25"), or `id` itself if unknown.
inline std::string kadid_distortion_name(const std::string& id) {
  static const char* names[] = {"gaussian_blur",
                                "lens_blur",
                                "motion_blur",
                                "color_diffusion",
                                "color_shift",
                                "color_quantization",
                                "color_saturation_1",
                                "color_saturation_2",
                                "jpeg2000",
                                "jpeg",
                                "white_noise",
                                "white_noise_color",
                                "impulse_noise",
                                "multiplicative_noise",
                                "denoise",
                                "brighten",
                                "darken",
                                "mean_shift",
                                "jitter",
                                "non_eccentricity_patch",
                                "pixelate",
                                "quantization",
                                "color_block",
                                "high_sharpen",
                                "contrast_change"};
  if (!detail::looks_numeric(id)) return id;
  const int k = std::stoi(id);
  return k >= 1 && k <= 25 ? names[k - 1] : id;
}

/// Reads KADID-10k's `dmos.csv` (dist_img, ref_img, dmos, var). DMOS (1..5, higher is better) becomes the
/// MOS, sqrt(var) the standard deviation, ref_img the group (split by content) and the distortion id in
/// `Ixx_TT_LL.png` the type (named as in the KADID-10k paper). Images are `image_dir/<dist_img>`.
///
/// Example: `auto ds = read_kadid10k("kadid10k/dmos.csv", "kadid10k/images");`
inline Dataset read_kadid10k(const std::string& csv_path, const std::string& image_dir,
                             const ReadOptions& options = {}) {
  const CsvFile csv = read_csv(csv_path, true);
  const int64_t cd = detail::require_column(csv, {"dist_img"}, "dist_img");
  const int64_t cr = detail::require_column(csv, {"ref_img"}, "ref_img");
  const int64_t cm = detail::require_column(csv, {"dmos"}, "dmos");
  const int64_t cv = csv.column({"var"});
  return detail::read_rows(
      csv, "kadid10k", options, [&](size_t r, int64_t line, const std::vector<std::string>& f) {
        detail::check_fields(csv, line, f, 3);
        Sample s;
        TORCH_CHECK(!f[cd].empty() && !f[cr].empty(), csv.where(line), ": empty dist_img or ref_img");
        s.name = f[cd];
        s.path = detail::join_path(image_dir, s.name);
        s.mos = detail::number_field(csv, r, cm, "dmos");
        if (cv >= 0) {
          const double var = detail::number_field(csv, r, cv, "var");
          TORCH_CHECK(var >= 0, csv.where(line), ": var must be >= 0, got ", var);
          s.std = std::sqrt(var);
        }
        s.group = f[cr];
        const std::string stem = std::filesystem::path(f[cd]).stem().string();
        const auto a = stem.find('_'), b = stem.rfind('_');
        TORCH_CHECK(a != std::string::npos && b != a, csv.where(line), ": dist_img \"", f[cd],
                    "\" is not named Ixx_TT_LL (reference, type, level)");
        s.type = kadid_distortion_name(stem.substr(a + 1, b - a - 1));
        return s;
      });
}

/// Reads a CSV export with a header that names the image column (image, image_name, name, filename,
/// path) and the MOS column (mos, dmos, score), and optionally a standard deviation (std, sd, mos_std).
/// Used for LIVE Challenge (export of AllImages_release.mat/AllMOS_release.mat/AllStdDev_release.mat;
/// images in Images/) and SPAQ (export of "MOS and Image attribute scores.xlsx", columns "Image name",
/// "MOS"; images in TestImage/). Each image is its own group.
///
/// Example: `auto ds = read_named_csv("livec.csv", "ChallengeDB_release/Images", "live_challenge");`
inline Dataset read_named_csv(const std::string& csv_path, const std::string& image_dir, const char* name,
                              const ReadOptions& options = {}) {
  const CsvFile csv = read_csv(csv_path, true);
  const int64_t ci =
      detail::require_column(csv, {"image", "image_name", "image name", "name", "filename", "path"}, "image");
  const int64_t cm = detail::require_column(csv, {"mos", "dmos", "score"}, "MOS");
  const int64_t cs = csv.column({"std", "sd", "mos_std", "stddev", "std_dev"});
  return detail::read_rows(csv, name, options,
                           [&](size_t r, int64_t line, const std::vector<std::string>& f) {
                             detail::check_fields(csv, line, f, 2);
                             Sample s;
                             TORCH_CHECK(!f[ci].empty(), csv.where(line), ": empty image name");
                             s.name = f[ci];
                             s.path = detail::join_path(image_dir, s.name);
                             s.mos = detail::number_field(csv, r, cm, "MOS");
                             if (cs >= 0 && !f[cs].empty()) s.std = detail::number_field(csv, r, cs, "std");
                             s.group = f[ci];
                             return s;
                           });
}

/// Reads LIVE Challenge from a CSV export (see `read_named_csv`).
inline Dataset read_live_challenge(const std::string& csv_path, const std::string& image_dir,
                                   const ReadOptions& options = {}) {
  return read_named_csv(csv_path, image_dir, "live_challenge", options);
}

/// Reads SPAQ from a CSV export (see `read_named_csv`).
inline Dataset read_spaq(const std::string& csv_path, const std::string& image_dir,
                         const ReadOptions& options = {}) {
  return read_named_csv(csv_path, image_dir, "spaq", options);
}

/// Reads a generic CSV: `path,mos[,std][,group][,type]`. With a header (first field not a number in the
/// MOS position) columns are found by name, in any order (path|image, mos, std, group|ref, type); without
/// one they are positional. Paths are relative to `root` (default: the CSV's directory). Without a group,
/// each image is its own group. An empty std or group field means unknown.
///
/// Example: `auto ds = read_generic_csv("my_iqa.csv");`
inline Dataset read_generic_csv(const std::string& csv_path, const std::string& root = {},
                                const ReadOptions& options = {}) {
  CsvFile csv = read_csv(csv_path, false);
  const std::string dir = root.empty() ? std::filesystem::path(csv_path).parent_path().string() : root;
  int64_t cp = 0, cm = 1, cs = 2, cg = 3, ct = 4;
  const auto& first = csv.rows.front().second;
  if (first.size() >= 2 && !detail::looks_numeric(first[1])) {
    csv.header = first;
    csv.header_positions = csv.positions.front();
    csv.rows.erase(csv.rows.begin());
    csv.positions.erase(csv.positions.begin());
    csv.end_positions.erase(csv.end_positions.begin());
    cp = detail::require_column(csv, {"path", "image", "image_name", "name"}, "path");
    cm = detail::require_column(csv, {"mos", "score", "dmos"}, "mos");
    cs = csv.column({"std", "sd", "mos_std"});
    cg = csv.column({"group", "ref", "reference", "content"});
    ct = csv.column({"type", "distortion"});
    TORCH_CHECK(!csv.rows.empty(), "metadata file \"", csv_path, "\" has a header but no rows");
  }
  return detail::read_rows(
      csv, "generic", options, [&](size_t r, int64_t line, const std::vector<std::string>& f) {
        if (csv.header.empty()) {
          TORCH_CHECK(f.size() >= 2 && f.size() <= 5, csv.where(line),
                      ": expected 2 to 5 fields (path,mos[,std][,group][,type]), got ", f.size());
        } else {
          detail::check_fields(csv, line, f, 2);
        }
        auto has = [&](int64_t c) { return c >= 0 && c < static_cast<int64_t>(f.size()) && !f[c].empty(); };
        Sample s;
        TORCH_CHECK(has(cp), csv.where(line), ": empty path");
        s.name = f[cp];
        s.path = detail::join_path(dir, s.name);
        s.mos = detail::number_field(csv, r, cm, "mos");
        if (has(cs)) {
          s.std = detail::number_field(csv, r, cs, "std");
          TORCH_CHECK(s.std >= 0, csv.where(line), ": std must be >= 0, got ", s.std);
        }
        s.group = has(cg) ? f[cg] : f[cp];
        if (has(ct)) s.type = f[ct];
        return s;
      });
}

/// Reads a dataset by format name: koniq10k, kadid10k, live_challenge, spaq or generic.
inline Dataset read_dataset(const std::string& format, const std::string& csv_path,
                            const std::string& image_dir, const ReadOptions& options = {}) {
  if (format == "koniq10k") return read_koniq10k(csv_path, image_dir, options);
  if (format == "kadid10k") return read_kadid10k(csv_path, image_dir, options);
  if (format == "live_challenge") return read_live_challenge(csv_path, image_dir, options);
  if (format == "spaq") return read_spaq(csv_path, image_dir, options);
  if (format == "generic") return read_generic_csv(csv_path, image_dir, options);
  TORCH_CHECK(false, "unknown dataset format \"", format,
              "\" (expected koniq10k, kadid10k, live_challenge, spaq or generic)");
}

// ---------------------------------------------------------------------------------------------------------------
// Splits

/// Shuffles in place with a Fisher-Yates shuffle on `uniform_index`: the same order on every platform.
template <typename T>
void seeded_shuffle(std::vector<T>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[uniform_index(rng, i)]);
}

/// A train/test partition of dataset indices (each sorted ascending).
struct Split {
  std::vector<int64_t> train, test;
};

/// Splits by image: a seeded random `train_fraction` of the images (rounded, at least one on each side)
/// for training. Throws if the fraction is outside (0, 1) or there are fewer than 2 images.
inline Split split_by_image(const Dataset& d, double train_fraction, uint64_t seed) {
  TORCH_CHECK(train_fraction > 0 && train_fraction < 1,
              "split_by_image: train_fraction must be in (0, 1), got ", train_fraction);
  TORCH_CHECK(d.size() >= 2, "split_by_image: need at least 2 images, got ", d.size());
  std::vector<int64_t> idx(static_cast<size_t>(d.size()));
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int64_t>(i);
  std::mt19937_64 rng(seed);
  seeded_shuffle(idx, rng);
  auto n = static_cast<int64_t>(std::llround(train_fraction * static_cast<double>(d.size())));
  n = std::clamp<int64_t>(n, 1, d.size() - 1);
  Split s;
  s.train.assign(idx.begin(), idx.begin() + n);
  s.test.assign(idx.begin() + n, idx.end());
  std::sort(s.train.begin(), s.train.end());
  std::sort(s.test.begin(), s.test.end());
  return s;
}

/// Splits by reference content: the groups (sorted by name, then shuffled with the seed) are divided so
/// that a `train_fraction` of the groups (at least one on each side) goes to training, with all their
/// images; no content appears on both sides. Throws if there are fewer than 2 groups.
inline Split split_by_group(const Dataset& d, double train_fraction, uint64_t seed) {
  TORCH_CHECK(train_fraction > 0 && train_fraction < 1,
              "split_by_group: train_fraction must be in (0, 1), got ", train_fraction);
  std::set<std::string> names;
  for (const auto& s : d.samples) names.insert(s.group);
  TORCH_CHECK(names.size() >= 2, "split_by_group: need at least 2 groups (reference contents), got ",
              names.size());
  std::vector<std::string> groups(names.begin(), names.end());
  std::mt19937_64 rng(seed);
  seeded_shuffle(groups, rng);
  auto n = static_cast<int64_t>(std::llround(train_fraction * static_cast<double>(groups.size())));
  n = std::clamp<int64_t>(n, 1, static_cast<int64_t>(groups.size()) - 1);
  const std::set<std::string> train_groups(groups.begin(), groups.begin() + n);
  Split s;
  for (int64_t i = 0; i < d.size(); ++i) {
    (train_groups.count(d.samples[static_cast<size_t>(i)].group) ? s.train : s.test).push_back(i);
  }
  return s;
}

// ---------------------------------------------------------------------------------------------------------------
// Pairs

/// How a pair's label is made from the two subjective scores.
enum class PairLabel {
  /// The official code: g = 1 if mos1 > mos2, 0 if mos1 < mos2, and 0.5 for a tie.
  Binary,
  /// UNIQUE: g = Φ((mos1 − mos2) / sqrt(std1² + std2²)); needs every sample's std.
  Thurstone,
};

/// One training pair: dataset indices and the label g = P(image a is better).
struct Pair {
  int64_t a = 0, b = 0;
  double label = 0.5;
};

/// Returns the label of a pair of samples; throws for Thurstone labels without a std.
inline double pair_label(const Sample& a, const Sample& b, PairLabel kind) {
  if (kind == PairLabel::Binary) return a.mos > b.mos ? 1.0 : (a.mos < b.mos ? 0.0 : 0.5);
  TORCH_CHECK(!std::isnan(a.std) && !std::isnan(b.std),
              "Thurstone pair labels need the std of every image; \"", a.path, "\" or \"", b.path,
              "\" has none (use binary labels)");
  return 0.5 * (1.0 + std::erf((a.mos - b.mos) / std::sqrt(2.0 * (a.std * a.std + b.std * b.std + 1e-8))));
}

/// Samples the training pairs of an epoch among a set of dataset indices: each index is the first image
/// of exactly one pair per epoch (in a seeded random order), its partner is drawn uniformly among the
/// other indices (optionally among those of the same `type` only). The pairs of (seed, epoch) are always
/// the same, so a resumed run sees the same data.
class PairSampler {
 public:
  /// Throws if fewer than 2 indices are given, or Thurstone labels are asked for without stds.
  PairSampler(const Dataset& d, std::vector<int64_t> indices, PairLabel label, uint64_t seed)
      : data_(&d), indices_(std::move(indices)), label_(label), seed_(seed) {
    TORCH_CHECK(indices_.size() >= 2, "PairSampler: need at least 2 training images, got ", indices_.size());
    std::vector<int64_t> sorted = indices_;
    std::sort(sorted.begin(), sorted.end());
    TORCH_CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end(),
                "PairSampler: the training indices must be distinct");
    for (int64_t i : indices_) {
      TORCH_CHECK(i >= 0 && i < d.size(), "PairSampler: index ", i, " out of range [0, ", d.size(), ")");
      if (label_ == PairLabel::Thurstone) {
        const auto& s = d.samples[static_cast<size_t>(i)];
        TORCH_CHECK(!std::isnan(s.std), s.source, ":", s.line, ": Thurstone pair labels need a std for \"",
                    s.path, "\" (use --label binary, or add a std column)");
      }
    }
  }
  /// Returns the pairs of `epoch` (as many as there are indices).
  std::vector<Pair> epoch(int64_t epoch) const {
    std::mt19937_64 rng(seed_ ^ (0x9E3779B97F4A7C15ULL * static_cast<uint64_t>(epoch + 1)));
    std::vector<int64_t> order = indices_;
    seeded_shuffle(order, rng);
    std::vector<Pair> out;
    out.reserve(order.size());
    const uint64_t n = indices_.size();
    for (int64_t a : order) {
      int64_t b = a;
      while (b == a) b = indices_[uniform_index(rng, n)];
      out.push_back(Pair{a, b,
                         pair_label(data_->samples[static_cast<size_t>(a)],
                                    data_->samples[static_cast<size_t>(b)], label_)});
    }
    return out;
  }
  /// Returns the number of pairs per epoch.
  int64_t size() const { return static_cast<int64_t>(indices_.size()); }

 private:
  const Dataset* data_;
  std::vector<int64_t> indices_;
  PairLabel label_;
  uint64_t seed_;
};

}  // namespace ohem_examples
