#pragma once
/// \file
/// Files embedded in a self-contained page: `read_bytes`, `base64`, `mime_type`, `data_uri` (a data: URI
/// of an image file) and `png_size` (a PNG's size from its header). Part of html.hpp.
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

namespace ohem_examples::html {

/// Returns `bytes` in base64 (RFC 4648, with padding).
inline std::string base64(const std::string& bytes) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t k = 0;
  for (; k + 2 < bytes.size(); k += 3) {
    const uint32_t v =
        (uint32_t(uint8_t(bytes[k])) << 16) | (uint32_t(uint8_t(bytes[k + 1])) << 8) | uint8_t(bytes[k + 2]);
    out += {table[v >> 18], table[(v >> 12) & 63], table[(v >> 6) & 63], table[v & 63]};
  }
  if (k < bytes.size()) {
    uint32_t v = uint32_t(uint8_t(bytes[k])) << 16;
    if (k + 1 < bytes.size()) v |= uint32_t(uint8_t(bytes[k + 1])) << 8;
    out += table[v >> 18];
    out += table[(v >> 12) & 63];
    out += k + 1 < bytes.size() ? table[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

/// Returns the bytes of `file`; throws std::runtime_error naming it (and `what`) if it cannot be read.
inline std::string read_bytes(const std::filesystem::path& file, const std::string& what = "file") {
  std::ifstream in(file, std::ios::binary);
  if (!in.good()) throw std::runtime_error("cannot read " + what + " " + file.string());
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// The MIME type of an image file from its extension (application/octet-stream when unknown).
inline std::string mime_type(const std::filesystem::path& file) {
  std::string ext = file.extension().string();
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const std::map<std::string, std::string> mime{
      {".png", "image/png"},  {".jpg", "image/jpeg"},  {".jpeg", "image/jpeg"},
      {".bmp", "image/bmp"},  {".gif", "image/gif"},   {".webp", "image/webp"},
      {".tif", "image/tiff"}, {".tiff", "image/tiff"}, {".svg", "image/svg+xml"}};
  const auto m = mime.find(ext);
  return m == mime.end() ? "application/octet-stream" : m->second;
}

/// Returns a data: URI with the file's bytes in base64; throws std::runtime_error naming the file if
/// it cannot be read. Example: `<img src="` + data_uri("gmad/p0_a.png") + `">`.
inline std::string data_uri(const std::filesystem::path& file, const std::string& what = "image") {
  return "data:" + mime_type(file) + ";base64," + base64(read_bytes(file, what));
}

/// Width and height of a PNG from its header, or nothing if `bytes` do not start like a PNG.
inline std::optional<std::pair<int, int>> png_size(const std::string& bytes) {
  static const std::string magic("\x89PNG\r\n\x1a\n", 8);
  if (bytes.size() < 24 || bytes.compare(0, 8, magic) != 0 || bytes.compare(12, 4, "IHDR") != 0) return {};
  auto be32 = [&](size_t o) {
    return (uint32_t(uint8_t(bytes[o])) << 24) | (uint32_t(uint8_t(bytes[o + 1])) << 16) |
           (uint32_t(uint8_t(bytes[o + 2])) << 8) | uint8_t(bytes[o + 3]);
  };
  const uint32_t w = be32(16), h = be32(20);
  if (w == 0 || h == 0 || w > 1u << 20 || h > 1u << 20) return {};
  return std::make_pair(static_cast<int>(w), static_cast<int>(h));
}

}  // namespace ohem_examples::html
