#pragma once
// A small BIQA-style model and synthetic data shared by the compiled documentation samples.

#include <torch/torch.h>

#include <utility>

/// A tiny quality model: conv-BN-ReLU ×2, global average pool, Linear(16 → 1) score head. Held by value
/// as LibTorch's own examples hold theirs (`QualityNet net;`), or through the holder `Net`.
struct QualityNet : torch::nn::Module {
  QualityNet()
      : conv1(register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 8, 3).padding(1)))),
        bn1(register_module("bn1", torch::nn::BatchNorm2d(8))),
        conv2(register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(8, 16, 3).stride(2)))),
        bn2(register_module("bn2", torch::nn::BatchNorm2d(16))),
        fc(register_module("fc", torch::nn::Linear(16, 1))) {}
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = torch::relu(bn1(conv1(x)));
    y = torch::relu(bn2(conv2(y))).mean({2, 3});
    return fc(y);
  }
  torch::nn::Conv2d conv1;
  torch::nn::BatchNorm2d bn1;
  torch::nn::Conv2d conv2;
  torch::nn::BatchNorm2d bn2;
  torch::nn::Linear fc;
};
using NetImpl = QualityNet;
TORCH_MODULE(Net);

/// Returns `batch` random images [B, 3, 16, 16] and a synthetic MOS [B, 1] that depends on them.
inline std::pair<torch::Tensor, torch::Tensor> synthetic_batch(int64_t batch) {
  torch::Tensor images = torch::randn({batch, 3, 16, 16});
  torch::Tensor mos = 1.0 + 4.0 * torch::sigmoid(images.mean({1, 2, 3}) * 8.0).unsqueeze(1);
  return {images, mos};
}
