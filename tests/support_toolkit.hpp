#pragma once
// Shared helpers of the toolkit's, the trainers' and the fault tests (test_toolkit.cpp, test_trainers.cpp,
// test_faults.cpp): small deterministic images on disk, a torch::nn module tree mirrored as a TorchScript
// module, and the data and options of a tiny trainer run.

#include "support.hpp"

#include <toolkit/command_line.hpp>
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

/// Writes 16 small PNG images (20 × 20, 4 reference contents, two distortion types) and a generic CSV
/// (path,mos,std,group,type) for a tiny trainer run into `dir`; returns the CSV's path. Reseeds torch.
inline std::string trainer_csv(const std::string& dir) {
  namespace fs = std::filesystem;
  fs::create_directories(fs::path(dir) / "images");
  std::string rows = "path,mos,std,group,type\n";
  for (int i = 0; i < 16; ++i) {
    torch::manual_seed(100 + i);
    const torch::Tensor img = (torch::rand({20, 20, 3}) * 255).to(torch::kUInt8);
    const std::string name = "images/t" + std::to_string(i) + ".png";
    ohem_examples::save_image((fs::path(dir) / name).string(), img);
    rows += name + "," + std::to_string(1.0 + (i * 5) % 16 * 0.25) + ",0.5,ref" + std::to_string(i % 4) +
            "," + (i % 2 ? "noise" : "blur") + "\n";
  }
  const std::string csv = (fs::path(dir) / "all.csv").string();
  write_file(csv, rows);
  return csv;
}

/// Returns the options of a tiny trainer run on `csv` (`trainer_csv`) writing into `out`: width-8
/// ResNet-18, 16-pixel crops, no first stage, two epochs of batch 4, OHEM on (the default), no console
/// output. The split trains on 3 of the 4 contents: 12 images, 3 steps per epoch.
inline ohem_examples::TrainOptions tiny_options(const std::string& csv, const std::string& out) {
  ohem_examples::TrainOptions o;
  o.csv = csv;
  o.width = 8;
  o.resize = 0;
  o.crop = 16;
  o.test_resize = 0;
  o.epochs1 = 0;
  o.epochs2 = 2;
  o.batch1 = o.batch2 = 4;
  o.lr = 1e-3;
  o.progress = false;
  o.quiet = true;
  o.train_fraction = 0.75;
  o.out = out;
  return o;
}

}  // namespace ohem_test
