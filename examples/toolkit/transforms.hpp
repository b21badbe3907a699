#pragma once
/// @file
/// Image transforms as tensor ops on float [3, H, W] images in [0, 1]: resize (short side or exact),
/// random and centre crop, horizontal flip, ImageNet normalisation, and the train/test pipelines of the
/// recipe (short side 512, random crop 384, flip; test resized to 768).

#include <torch/torch.h>

#include <cstdint>
#include <random>

namespace ohem_examples {

/// Converts a uint8 [H, W, 3] image to float [3, H, W] in [0, 1].
inline torch::Tensor to_float_chw(const torch::Tensor& hwc) {
  TORCH_CHECK(hwc.dim() == 3 && hwc.size(2) == 3, "to_float_chw: expected [H, W, 3], got ", hwc.sizes());
  return hwc.permute({2, 0, 1}).to(torch::kFloat).div(255.0).contiguous();
}

/// Converts a float [3, H, W] image in [0, 1] to uint8 [H, W, 3] (clamped, rounded).
inline torch::Tensor to_uint8_hwc(const torch::Tensor& chw) {
  TORCH_CHECK(chw.dim() == 3 && chw.size(0) == 3, "to_uint8_hwc: expected [3, H, W], got ", chw.sizes());
  return chw.mul(255.0).round().clamp(0, 255).to(torch::kUInt8).permute({1, 2, 0}).contiguous();
}

/// Resizes a float [C, H, W] image to [C, height, width] (bilinear; antialiased when shrinking, like
/// torchvision's Resize on tensors with antialias=True).
inline torch::Tensor resize(const torch::Tensor& img, int64_t height, int64_t width) {
  TORCH_CHECK(img.dim() == 3, "resize: expected [C, H, W], got ", img.sizes());
  TORCH_CHECK(height > 0 && width > 0, "resize: size must be positive, got ", height, "x", width);
  if (img.size(1) == height && img.size(2) == width) return img;
  const bool shrink = height < img.size(1) || width < img.size(2);
  namespace F = torch::nn::functional;
  return F::interpolate(img.unsqueeze(0), F::InterpolateFuncOptions()
                                              .size(std::vector<int64_t>{height, width})
                                              .mode(torch::kBilinear)
                                              .align_corners(false)
                                              .antialias(shrink))
      .squeeze(0);
}

/// Resizes so that the shorter side is `size`, keeping the aspect ratio (the longer side is rounded
/// down, as torchvision does).
inline torch::Tensor resize_short_side(const torch::Tensor& img, int64_t size) {
  TORCH_CHECK(img.dim() == 3, "resize_short_side: expected [C, H, W], got ", img.sizes());
  TORCH_CHECK(size > 0, "resize_short_side: size must be positive, got ", size);
  const int64_t h = img.size(1), w = img.size(2);
  if (h <= w) return resize(img, size, static_cast<int64_t>(static_cast<double>(w) * size / h));
  return resize(img, static_cast<int64_t>(static_cast<double>(h) * size / w), size);
}

/// Returns a uniform integer in [0, n) from a 64-bit generator, identically on every standard library
/// (std::uniform_int_distribution is implementation-defined, which would break seeded reproducibility).
inline uint64_t uniform_index(std::mt19937_64& rng, uint64_t n) {
  TORCH_INTERNAL_ASSERT(n > 0);
  const uint64_t limit = ~uint64_t{0} - (~uint64_t{0} % n);
  uint64_t x = rng();
  while (x >= limit) x = rng();
  return x % n;
}

/// Crops a [C, size, size] window at a random position; throws if the image is smaller than `size`.
inline torch::Tensor random_crop(const torch::Tensor& img, int64_t size, std::mt19937_64& rng) {
  TORCH_CHECK(img.dim() == 3 && img.size(1) >= size && img.size(2) >= size, "random_crop: image ",
              img.sizes(), " is smaller than the crop ", size, "x", size, " (resize first)");
  const auto top = static_cast<int64_t>(uniform_index(rng, static_cast<uint64_t>(img.size(1) - size + 1)));
  const auto left = static_cast<int64_t>(uniform_index(rng, static_cast<uint64_t>(img.size(2) - size + 1)));
  return img.slice(1, top, top + size).slice(2, left, left + size);
}

/// Crops the central [C, size, size] window; throws if the image is smaller than `size`.
inline torch::Tensor center_crop(const torch::Tensor& img, int64_t size) {
  TORCH_CHECK(img.dim() == 3 && img.size(1) >= size && img.size(2) >= size, "center_crop: image ",
              img.sizes(), " is smaller than the crop ", size, "x", size);
  const int64_t top = (img.size(1) - size) / 2, left = (img.size(2) - size) / 2;
  return img.slice(1, top, top + size).slice(2, left, left + size);
}

/// Mirrors an image left-right.
inline torch::Tensor hflip(const torch::Tensor& img) {
  return img.flip({-1});
}

/// Normalises a [3, H, W] (or [B, 3, H, W]) image with ImageNet's mean and standard deviation.
inline torch::Tensor normalize_imagenet(const torch::Tensor& img) {
  TORCH_CHECK((img.dim() == 3 && img.size(0) == 3) || (img.dim() == 4 && img.size(1) == 3),
              "normalize_imagenet: expected [3, H, W] or [B, 3, H, W], got ", img.sizes());
  auto opts = img.options();
  std::vector<int64_t> shape =
      img.dim() == 3 ? std::vector<int64_t>{3, 1, 1} : std::vector<int64_t>{1, 3, 1, 1};
  const auto mean = torch::tensor({0.485, 0.456, 0.406}, opts).view(shape);
  const auto std = torch::tensor({0.229, 0.224, 0.225}, opts).view(shape);
  return (img - mean) / std;
}

/// The training pipeline: resize the short side, random crop, random horizontal flip, ImageNet
/// normalisation. Recipe: resize 512, crop 384, flip on.
struct TrainTransform {
  int64_t resize = 512;  ///< short side before cropping (0: no resize)
  int64_t crop = 384;    ///< square crop size (0: no crop)
  bool flip = true;      ///< random horizontal flip with probability 1/2
  /// Applies the pipeline to a float [3, H, W] image with the given generator.
  torch::Tensor operator()(const torch::Tensor& img, std::mt19937_64& rng) const {
    torch::Tensor x = resize > 0 ? resize_short_side(img, resize) : img;
    if (crop > 0) x = random_crop(x, crop, rng);
    if (flip && (rng() >> 63) != 0) x = hflip(x);
    return normalize_imagenet(x.contiguous());
  }
};

/// The trainers' test pipeline (and `ohem-score`'s) for an image decoded as float [3, H, W] in [0, 1]:
/// short side resized to `resize` (recipe: 768; 0: as is), centre crop of side `crop` (0: the whole
/// image), ImageNet normalisation.
struct TestTransform {
  int64_t resize = 768;  ///< short side (the run's --test-resize; 0: no resize)
  int64_t crop = 0;      ///< centre crop (the run's --test-crop; 0: whole image)

  /// The resized image (what the trainers' image store keeps).
  torch::Tensor resized(const torch::Tensor& chw) const {
    return resize > 0 ? resize_short_side(chw, resize) : chw;
  }
  /// The network's input from a resized image.
  torch::Tensor finish(const torch::Tensor& resized_chw) const {
    return normalize_imagenet(crop > 0 ? center_crop(resized_chw, crop) : resized_chw);
  }
  /// The network's input from a decoded image.
  torch::Tensor operator()(const torch::Tensor& chw) const { return finish(resized(chw)); }
};

}  // namespace ohem_examples
