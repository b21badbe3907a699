#pragma once
// Shared helpers of the toolkit's and the trainers' tests (test_toolkit.cpp, test_trainers.cpp): small
// deterministic images on disk, and a torch::nn module tree mirrored as a TorchScript module.

#include "support.hpp"

#include <toolkit/image.hpp>

#include <torch/script.h>
#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace ohem_test {

/// A deterministic small RGB image [h, w, 3] (uint8) whose pixels encode (seed, y, x).
inline torch::Tensor pattern(int64_t h, int64_t w, int64_t seed) {
  auto y = torch::arange(h).view({h, 1, 1}), x = torch::arange(w).view({1, w, 1}),
       c = torch::arange(3).view({1, 1, 3});
  return ((y * 7 + x * 13 + c * 50 + seed * 31) % 256).to(torch::kUInt8).expand({h, w, 3}).contiguous();
}

/// Writes n tiny PNG images (size × size + 4) into dir/images and returns their relative names.
inline std::vector<std::string> write_images(const std::string& dir, int n, int64_t size = 16) {
  namespace fs = std::filesystem;
  fs::create_directories(fs::path(dir) / "images");
  std::vector<std::string> names;
  for (int i = 0; i < n; ++i) {
    names.push_back("img" + std::to_string(i) + ".png");
    ohem_examples::save_image((fs::path(dir) / "images" / names.back()).string(), pattern(size, size + 4, i));
  }
  return names;
}

/// Mirrors a torch::nn module tree as a TorchScript module (what torch.jit.script of the same model
/// exports, as far as names and tensors go).
inline torch::jit::Module to_script(torch::nn::Module& m, const std::string& type) {
  torch::jit::Module out(c10::QualifiedName("__torch__." + type));
  for (auto& p : m.named_parameters(false))
    out.register_parameter(p.key(), p.value().detach().clone(), false);
  for (auto& b : m.named_buffers(false)) out.register_buffer(b.key(), b.value().clone());
  for (auto& c : m.named_children())
    out.register_module(c.key(), to_script(*c.value(), type + "_" + c.key()));
  return out;
}

}  // namespace ohem_test
