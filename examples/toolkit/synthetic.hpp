#pragma once
/// @file
/// The demo's and the study's synthetic-distortion dataset, in the spirit of KADID-10k, built from real
/// photographs: each photograph gives grid×grid square patches (its reference content); each patch is
/// distorted by six types at five levels; the quality label is the SSIM of the distorted patch against its
/// pristine patch (Wang et al. 2004: luminance, 11×11 Gaussian window σ = 1.5, K1 = 0.01, K2 = 0.03, on [0,
/// 255]).

#include <toolkit/csv.hpp>
#include <toolkit/datasets.hpp>
#include <toolkit/files.hpp>
#include <toolkit/image.hpp>
#include <toolkit/io.hpp>
#include <toolkit/transforms.hpp>

#include <torch/torch.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace demo {

using namespace ohem_examples;

/// The photographs used from scikit-image's data directory (Debian python3-skimage), each public domain
/// or CC0 (see docs/datasets.md for each one's source and licence).
inline const std::vector<std::string>& photo_names() {
  static const std::vector<std::string> names = {
      "astronaut.png",        "camera.png", "coffee.png", "chelsea.png", "coins.png", "rocket.jpg",
      "retina.jpg",           "brick.png",  "grass.png",  "gravel.png",  "cell.png",  "ihc.png",
      "hubble_deep_field.jpg"};
  return names;
}

/// The distortion types, in the order of the table.
inline const std::vector<std::string>& distortion_names() {
  static const std::vector<std::string> names = {"white_noise", "gaussian_blur", "jpeg",
                                                 "contrast",    "pixelate",      "impulse_noise"};
  return names;
}

/// Blurs a float [3, H, W] image with a Gaussian of standard deviation `sigma` (reflect padding).
inline torch::Tensor gaussian_blur(const torch::Tensor& img, double sigma) {
  const int64_t r = static_cast<int64_t>(std::ceil(3 * sigma));
  auto x = torch::arange(-r, r + 1, torch::kFloat);
  auto k = torch::exp(-x * x / (2 * sigma * sigma));
  k = k / k.sum();
  namespace F = torch::nn::functional;
  auto padded = F::pad(img.unsqueeze(0), F::PadFuncOptions({r, r, r, r}).mode(torch::kReflect));
  auto kh = k.view({1, 1, 1, -1}).repeat({3, 1, 1, 1});
  auto kv = k.view({1, 1, -1, 1}).repeat({3, 1, 1, 1});
  const std::vector<int64_t> one{1, 1}, zero{0, 0};
  auto y = torch::conv2d(padded, kh, torch::Tensor(), one, zero, one, 3);
  return torch::conv2d(y, kv, torch::Tensor(), one, zero, one, 3).squeeze(0);
}

/// Applies distortion `type` (a name of `distortion_names()`) at `level` 1..5 to a float [3, H, W]
/// image in [0, 1]; `rng` drives the noise types.
inline torch::Tensor distort(const torch::Tensor& img, const std::string& type, int level,
                             std::mt19937_64& rng) {
  TORCH_CHECK(level >= 1 && level <= 5, "distort: level must be 1..5, got ", level);
  const auto i = static_cast<size_t>(level - 1);
  torch::Generator gen = at::detail::createCPUGenerator(rng());
  if (type == "white_noise") {
    const std::array<double, 5> s{0.02, 0.04, 0.07, 0.11, 0.16};
    return (img + torch::randn(img.sizes(), gen, torch::kFloat) * s[i]).clamp(0, 1);
  }
  if (type == "gaussian_blur") {
    const std::array<double, 5> s{0.6, 1.0, 1.6, 2.4, 3.5};
    return gaussian_blur(img, s[i]);
  }
  if (type == "jpeg") {
    const std::array<int, 5> q{50, 30, 18, 10, 5};
    return to_float_chw(jpeg_roundtrip(to_uint8_hwc(img), q[i]));
  }
  if (type == "contrast") {
    const std::array<double, 5> c{0.8, 0.62, 0.46, 0.32, 0.2};
    const auto mean = img.mean({1, 2}, true);
    return mean + (img - mean) * c[i];
  }
  if (type == "pixelate") {
    const std::array<int64_t, 5> f{2, 3, 4, 6, 8};
    const int64_t h = img.size(1), w = img.size(2);
    namespace F = torch::nn::functional;
    auto small =
        F::adaptive_avg_pool2d(img.unsqueeze(0), F::AdaptiveAvgPool2dFuncOptions({h / f[i], w / f[i]}));
    return F::interpolate(small,
                          F::InterpolateFuncOptions().size(std::vector<int64_t>{h, w}).mode(torch::kNearest))
        .squeeze(0);
  }
  if (type == "impulse_noise") {
    const std::array<double, 5> p{0.01, 0.03, 0.06, 0.1, 0.16};
    auto u = torch::rand({1, img.size(1), img.size(2)}, gen, torch::kFloat);
    auto salt = torch::rand({1, img.size(1), img.size(2)}, gen, torch::kFloat) < 0.5;
    auto hit = (u < p[i]).expand_as(img);
    return torch::where(hit, salt.expand_as(img).to(torch::kFloat), img);
  }
  TORCH_CHECK(false, "distort: unknown distortion \"", type, "\"");
}

/// Returns the SSIM of two float [3, H, W] images in [0, 1] on their luminance (BT.601) in [0, 255],
/// with an 11×11 Gaussian window (σ = 1.5), valid positions only, K1 = 0.01, K2 = 0.03.
inline double ssim(const torch::Tensor& a, const torch::Tensor& b) {
  auto lum = [](const torch::Tensor& x) {
    return (x[0] * 0.299 + x[1] * 0.587 + x[2] * 0.114)
        .mul(255.0)
        .to(torch::kDouble)
        .unsqueeze(0)
        .unsqueeze(0);
  };
  const auto x = lum(a), y = lum(b);
  auto g = torch::arange(-5, 6, torch::kDouble);
  g = torch::exp(-g * g / (2 * 1.5 * 1.5));
  g = g / g.sum();
  const auto w = (g.view({-1, 1}) * g.view({1, -1})).view({1, 1, 11, 11});
  auto f = [&](const torch::Tensor& t) { return torch::conv2d(t, w); };
  const double c1 = std::pow(0.01 * 255, 2), c2 = std::pow(0.03 * 255, 2);
  const auto mx = f(x), my = f(y);
  const auto sxx = f(x * x) - mx * mx, syy = f(y * y) - my * my, sxy = f(x * y) - mx * my;
  const auto map = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2));
  return map.mean().item<double>();
}

/// Returns the photographs of `dir`: the `file` column of `dir/photos.csv` when it exists (one row per
/// photograph, scripts/fetch-photos.sh writes it), else every *.png, *.jpg and *.jpeg in `dir`, sorted by
/// name. Throws naming the directory or the CSV's line when a listed file is missing, and when there is
/// no photograph at all.
inline std::vector<std::string> list_photos(const std::string& dir) {
  namespace fs = std::filesystem;
  TORCH_CHECK(fs::is_directory(dir), "photographs: \"", dir, "\" is not a directory");
  std::vector<std::string> out;
  const fs::path csv_path = fs::path(dir) / "photos.csv";
  if (fs::exists(csv_path)) {
    const CsvFile csv = read_csv(csv_path.string(), /*has_header=*/true);
    const auto file = static_cast<size_t>(csv.require_column({"file"}, "file"));
    for (const auto& [line, fields] : csv.rows) {
      TORCH_CHECK(file < fields.size(), csv.where(line), ": no file field");
      const std::string path = (fs::path(dir) / fields[file]).string();
      TORCH_CHECK(fs::is_regular_file(path), csv.where(line), ": photograph \"", path, "\" does not exist");
      out.push_back(path);
    }
  } else {
    for (const auto& e : fs::directory_iterator(dir)) {
      std::string ext = e.path().extension().string();
      for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (e.is_regular_file() && (ext == ".png" || ext == ".jpg" || ext == ".jpeg"))
        out.push_back(e.path().string());
    }
    std::sort(out.begin(), out.end());
  }
  TORCH_CHECK(!out.empty(), "photographs: no photograph in \"", dir, "\" (photos.csv or *.png/*.jpg)");
  return out;
}

/// Returns the demo's photographs (`photo_names()`) in scikit-image's data directory `dir`.
inline std::vector<std::string> skimage_photos(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& name : photo_names()) out.push_back((std::filesystem::path(dir) / name).string());
  return out;
}

/// Options of the synthetic dataset.
struct SyntheticOptions {
  int64_t patch = 96;  ///< patch side
  int64_t grid = 2;    ///< each photo is downscaled to a short side of grid·patch and cut in grid×grid
  uint64_t seed = 0;   ///< noise seed
};

/// Builds the dataset from the photographs `photos` (paths) into `out_dir` (images/ and all.csv in the
/// generic format: path,mos,group,type with mos = SSIM and group = the photograph's name, so that a
/// split by group is content-disjoint). Each photograph is resized to a short side of grid·patch,
/// centre-cropped to a square and cut into grid×grid patches (its reference contents). Skips the work if
/// `out_dir/all.csv` exists for the same photographs and options. Throws naming a missing or corrupt
/// photograph. Returns the CSV path.
inline std::string build_synthetic(const std::vector<std::string>& photos, const std::string& out_dir,
                                   const SyntheticOptions& o = {}, bool verbose = true) {
  TORCH_CHECK(o.patch >= 16 && o.grid >= 1, "synthetic: patch must be >= 16 and grid >= 1, got ", o.patch,
              " and ", o.grid);
  const std::string csv = (std::filesystem::path(out_dir) / "all.csv").string();
  const std::string stamp_path = (std::filesystem::path(out_dir) / "stamp.txt").string();
  std::string stamp = fmt::format("synthetic v2 patch {} grid {} seed {}\n", o.patch, o.grid, o.seed);
  for (const auto& p : photos) stamp += std::filesystem::path(p).filename().string() + "\n";
  if (std::filesystem::exists(csv) && std::filesystem::exists(stamp_path)) {
    std::ifstream in(stamp_path);
    std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (got == stamp) return csv;
  }
  std::filesystem::remove_all(std::filesystem::path(out_dir) / "images");
  std::filesystem::create_directories(std::filesystem::path(out_dir) / "images");
  std::mt19937_64 rng(o.seed);
  std::string rows = "path,mos,group,type\n";
  int64_t count = 0;
  const int64_t side = o.grid * o.patch;
  for (const auto& path : photos) {
    torch::Tensor photo = to_float_chw(load_image(path));
    photo = center_crop(resize_short_side(photo, side), side);
    const std::string stem = std::filesystem::path(path).stem().string();
    for (int64_t py = 0; py < o.grid; ++py) {
      for (int64_t px = 0; px < o.grid; ++px) {
        const torch::Tensor ref = photo.slice(1, py * o.patch, (py + 1) * o.patch)
                                      .slice(2, px * o.patch, (px + 1) * o.patch)
                                      .contiguous();
        for (const auto& type : distortion_names()) {
          for (int level = 1; level <= 5; ++level) {
            // Quantise first so that the label is computed on exactly the pixels the trainer reads.
            const torch::Tensor d = to_uint8_hwc(distort(ref, type, level, rng));
            const double q = ssim(to_float_chw(d), ref);
            const std::string file = fmt::format("images/{}_{}{}_{}_{}.png", stem, py, px, type, level);
            save_image((std::filesystem::path(out_dir) / file).string(), d);
            rows += fmt::format("{},{:.6f},{},{}\n", file, q, stem, type);
            ++count;
          }
        }
      }
    }
    if (verbose) std::cout << "." << std::flush;
  }
  if (verbose) std::cout << " " << count << " images\n";
  atomic_write_text(csv, rows, AtomicWriteOptions().create_directories(true));
  atomic_write_text(stamp_path, stamp, AtomicWriteOptions().create_directories(true));
  return csv;
}

/// Returns the distortion level (1..5) of an image of `build_synthetic`, read from its file name
/// (`<photo>_<yx>_<type>_<level>.png`); throws naming the path when it does not have that form.
inline int distortion_level(const std::string& path) {
  const std::string stem = std::filesystem::path(path).stem().string();
  const auto cut = stem.rfind('_');
  const std::string digits = cut == std::string::npos ? std::string() : stem.substr(cut + 1);
  TORCH_CHECK(digits.size() == 1 && digits[0] >= '1' && digits[0] <= '5', "synthetic: \"", path,
              "\" is not an image of the synthetic dataset (expected a name ending in _<level 1..5>)");
  return digits[0] - '0';
}

/// Returns the long-tailed training mix: of each distortion type's images in `train`, a seeded share
/// `shares[t]` (t = the type's position in `distortion_names()`; at least 2 images) is kept.
inline std::vector<int64_t> long_tailed(const Dataset& all, const std::vector<int64_t>& train,
                                        const std::vector<double>& shares, uint64_t seed) {
  TORCH_CHECK(shares.size() == distortion_names().size(), "long_tailed: expected ", distortion_names().size(),
              " shares (one per distortion type), got ", shares.size());
  std::map<std::string, std::vector<int64_t>> per_type;
  for (int64_t i : train) per_type[all.samples[static_cast<size_t>(i)].type].push_back(i);
  std::vector<int64_t> out;
  std::mt19937_64 rng(1000 + seed);
  for (size_t t = 0; t < distortion_names().size(); ++t) {
    auto it = per_type.find(distortion_names()[t]);
    if (it == per_type.end()) continue;
    std::vector<int64_t>& idx = it->second;
    seeded_shuffle(idx, rng);
    const auto keep =
        std::max<size_t>(2, static_cast<size_t>(std::llround(shares[t] * static_cast<double>(idx.size()))));
    out.insert(out.end(), idx.begin(), idx.begin() + static_cast<int64_t>(std::min(keep, idx.size())));
  }
  return out;
}

/// Writes the samples at `indices` of `all` as a generic CSV `dir/name` (paths relative to `dir`);
/// returns its path.
inline std::string write_split_csv(const Dataset& all, const std::vector<int64_t>& indices,
                                   const std::string& dir, const std::string& name) {
  std::string rows = "path,mos,group,type\n";
  for (int64_t i : indices) {
    const Sample& s = all.samples[static_cast<size_t>(i)];
    rows += fmt::format("{},{:.6f},{},{}\n", std::filesystem::relative(s.path, dir).string(), s.mos, s.group,
                        s.type);
  }
  const std::string path = (std::filesystem::path(dir) / name).string();
  atomic_write_text(path, rows, AtomicWriteOptions().create_directories(true));
  return path;
}

}  // namespace demo
