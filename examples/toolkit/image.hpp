#pragma once
/// @file
/// Image decoding and encoding with stb (Debian libstb-dev): JPEG, PNG, BMP (and the other formats stb
/// reads) into uint8 HWC RGB tensors, and PNG/JPEG/BMP writing for the demo and the tests.
///
/// stb's implementation is compiled into each translation unit that includes this header, with every
/// function `static` (STB_IMAGE_STATIC / STB_IMAGE_WRITE_STATIC), so no link step and no "exactly one
/// .cpp" rule is needed. If your own code also includes <stb/stb_image.h> with its implementation in the
/// same translation unit, include this header first.

#include <torch/torch.h>

#ifndef STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#endif
#include <stb/stb_image.h>
#ifndef STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#endif
#include <stb/stb_image_write.h>

#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

namespace ohem_examples {

/// The default limit on the pixels (width × height) of an image the examples decode: 64 megapixels.
/// A decoded image takes 3 bytes a pixel, and 12 more as the float tensor the trainers make of it, so
/// the limit bounds one image at about 1 GB of memory; it admits every image of the supported datasets
/// (the largest, SPAQ's photographs, have about 12 megapixels) and 8K frames (33 megapixels), and
/// refuses a "decompression bomb" (a small file whose header announces e.g. 20000 × 20000 pixels) before
/// any memory is taken. The trainers' `--max-pixels` raises it.
inline constexpr int64_t kDefaultMaxPixels = 64'000'000;

namespace detail {
/// Checks the size an image's header announces against `max_pixels` (before decoding); `what` names
/// the image in the message. A header stb cannot read is left to the decoder to report.
inline void check_pixels(int ok, int w, int h, int64_t max_pixels, const std::string& what) {
  TORCH_CHECK(max_pixels > 0, "the pixel limit must be positive, got ", max_pixels);
  if (ok == 0) return;
  const int64_t pixels = static_cast<int64_t>(w) * static_cast<int64_t>(h);
  TORCH_CHECK(pixels <= max_pixels, "image ", what, " is ", w, " x ", h, " = ", pixels,
              " pixels, more than the limit of ", max_pixels,
              " pixels (refused before decoding; --max-pixels raises the limit)");
}
}  // namespace detail

/// Decodes an image file (JPEG, PNG, BMP, ...) into a uint8 tensor [H, W, 3] (grey and RGBA are
/// converted to RGB, 16-bit samples to 8 bits).
///
/// Throws naming the file if it is missing, unreadable or corrupt (stb's reason is included), or if its
/// header announces more than `max_pixels` pixels (checked before anything is decoded; see
/// `kDefaultMaxPixels`).
///
/// Example: `torch::Tensor rgb = ohem_examples::load_image("1024x768/826373.jpg");`
inline torch::Tensor load_image(const std::string& path, int64_t max_pixels = kDefaultMaxPixels) {
  std::error_code ec;
  TORCH_CHECK(std::filesystem::is_regular_file(path, ec), "image file \"", path, "\" does not exist");
  int w = 0, h = 0, c = 0;
  const int known = stbi_info(path.c_str(), &w, &h, &c);  // before w and h are read
  detail::check_pixels(known, w, h, max_pixels, "\"" + path + "\"");
  unsigned char* data = stbi_load(path.c_str(), &w, &h, &c, 3);
  TORCH_CHECK(data != nullptr, "cannot decode image \"", path,
              "\": ", stbi_failure_reason() ? stbi_failure_reason() : "unknown error");
  torch::Tensor out = torch::from_blob(data, {h, w, 3}, torch::kUInt8).clone();
  stbi_image_free(data);
  return out;
}

/// Decodes an image held in memory (same contract as `load_image`; `what` names it in errors).
inline torch::Tensor decode_image(const std::vector<unsigned char>& bytes, const std::string& what = "buffer",
                                  int64_t max_pixels = kDefaultMaxPixels) {
  TORCH_CHECK(bytes.size() <= static_cast<size_t>(std::numeric_limits<int>::max()), "image ", what, " has ",
              bytes.size(), " bytes, more than the decoder takes");
  int w = 0, h = 0, c = 0;
  const int n = static_cast<int>(bytes.size());
  const int known = stbi_info_from_memory(bytes.data(), n, &w, &h, &c);  // before w and h are read
  detail::check_pixels(known, w, h, max_pixels, what);
  unsigned char* data = stbi_load_from_memory(bytes.data(), n, &w, &h, &c, 3);
  TORCH_CHECK(data != nullptr, "cannot decode image ", what, ": ",
              stbi_failure_reason() ? stbi_failure_reason() : "unknown error");
  torch::Tensor out = torch::from_blob(data, {h, w, 3}, torch::kUInt8).clone();
  stbi_image_free(data);
  return out;
}

namespace detail {
inline torch::Tensor check_hwc(const torch::Tensor& img, const char* fn) {
  TORCH_CHECK(img.defined() && img.dim() == 3 && img.size(2) == 3 && img.scalar_type() == torch::kUInt8, fn,
              ": expected a uint8 tensor [H, W, 3], got ", img.defined() ? img.sizes() : c10::IntArrayRef{},
              " ", img.defined() ? c10::toString(img.scalar_type()) : "undefined");
  return img.contiguous().cpu();
}
inline void append_bytes(void* context, void* data, int size) {
  auto* out = static_cast<std::vector<unsigned char>*>(context);
  out->insert(out->end(), static_cast<unsigned char*>(data), static_cast<unsigned char*>(data) + size);
}
}  // namespace detail

/// Writes a uint8 [H, W, 3] tensor as PNG, JPEG (by extension .jpg/.jpeg, quality 1..100) or BMP.
/// Throws naming the file if it cannot be written or the extension is unknown.
///
/// Example: `ohem_examples::save_image("out.png", rgb);`
inline void save_image(const std::string& path, const torch::Tensor& image, int jpeg_quality = 90) {
  const torch::Tensor img = detail::check_hwc(image, "save_image");
  const int h = static_cast<int>(img.size(0)), w = static_cast<int>(img.size(1));
  std::string ext = std::filesystem::path(path).extension().string();
  for (auto& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  int ok = 0;
  if (ext == ".png") {
    ok = stbi_write_png(path.c_str(), w, h, 3, img.data_ptr<uint8_t>(), w * 3);
  } else if (ext == ".jpg" || ext == ".jpeg") {
    TORCH_CHECK(jpeg_quality >= 1 && jpeg_quality <= 100,
                "save_image: JPEG quality must be in [1, 100], got ", jpeg_quality);
    ok = stbi_write_jpg(path.c_str(), w, h, 3, img.data_ptr<uint8_t>(), jpeg_quality);
  } else if (ext == ".bmp") {
    ok = stbi_write_bmp(path.c_str(), w, h, 3, img.data_ptr<uint8_t>());
  } else {
    TORCH_CHECK(false, "save_image: unknown extension \"", ext, "\" of \"", path,
                "\" (use .png, .jpg or .bmp)");
  }
  TORCH_CHECK(ok != 0, "save_image: cannot write \"", path, "\"");
}

/// Compresses a uint8 [H, W, 3] image as baseline JPEG at `quality` (1..100) in memory and decodes it
/// again: the JPEG distortion of the demo.
inline torch::Tensor jpeg_roundtrip(const torch::Tensor& image, int quality) {
  const torch::Tensor img = detail::check_hwc(image, "jpeg_roundtrip");
  TORCH_CHECK(quality >= 1 && quality <= 100, "jpeg_roundtrip: quality must be in [1, 100], got ", quality);
  std::vector<unsigned char> bytes;
  const int ok = stbi_write_jpg_to_func(&detail::append_bytes, &bytes, static_cast<int>(img.size(1)),
                                        static_cast<int>(img.size(0)), 3, img.data_ptr<uint8_t>(), quality);
  TORCH_CHECK(ok != 0, "jpeg_roundtrip: encoding failed");
  return decode_image(bytes, "(JPEG round trip)");
}

}  // namespace ohem_examples
