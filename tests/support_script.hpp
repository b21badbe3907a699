#pragma once
// Shared TorchScript test network of the twin's and the self-competitor's tests (test_twin.cpp,
// test_self_competitor.cpp): modules built in C++ with the class names torchvision's export uses, so no
// Python is needed.

#include <torch/script.h>
#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace ohem_test {

/// What differs between the TorchScript test networks (`script_net`).
struct ScriptNetOptions {
  /// A second 4 → 4 convolution (`conv2`) and ReLU after `bn1`.
  TORCH_ARG(bool, conv2) = false;
  /// `torch.dropout(y, 0.3, self.training)` before the pooling.
  TORCH_ARG(bool, dropout) = false;
  /// `bn1` counts its training forwards in a `num_batches_tracked` buffer, as torch.nn.BatchNorm2d does.
  TORCH_ARG(bool, num_batches_tracked) = false;
  /// Draws the Linear head's random weight before the convolutions' (the draw order decides which
  /// weights a seed gives).
  TORCH_ARG(bool, head_drawn_first) = false;
};

/// Returns a leaf TorchScript module of class `type` with a `training` attribute (true).
inline torch::jit::Module script_leaf(const std::string& type) {
  torch::jit::Module m(type);
  m.register_attribute("training", c10::BoolType::get(), true);
  return m;
}

/// Returns a TorchScript 3 × 3 convolution `in` → `out` channels (stride 1, padding 1, float64), weights
/// drawn from randn · 0.3, bias zero.
inline torch::jit::Module script_conv(int64_t in, int64_t out) {
  auto m = script_leaf("Conv2d");
  m.register_parameter("weight", (torch::randn({out, in, 3, 3}, torch::kDouble) * 0.3).requires_grad_(),
                       false);
  m.register_parameter("bias", torch::zeros({out}, torch::kDouble).requires_grad_(), false);
  m.define(R"(
def forward(self, x):
    return torch.conv2d(x, self.weight, self.bias, [1, 1], [1, 1], [1, 1], 1)
)");
  return m;
}

/// Returns a TorchScript BatchNorm2d over `c` channels (float64, momentum 0.1, eps 1e-5), with a
/// `num_batches_tracked` buffer that training forwards count where `num_batches_tracked` is true.
inline torch::jit::Module script_bn(int64_t c, bool num_batches_tracked) {
  auto m = script_leaf("BatchNorm2d");
  m.register_parameter("weight", torch::ones({c}, torch::kDouble).requires_grad_(), false);
  m.register_parameter("bias", torch::zeros({c}, torch::kDouble).requires_grad_(), false);
  m.register_buffer("running_mean", torch::zeros({c}, torch::kDouble));
  m.register_buffer("running_var", torch::ones({c}, torch::kDouble));
  std::string count;
  if (num_batches_tracked) {
    m.register_buffer("num_batches_tracked", torch::zeros({}, torch::kLong));
    count = "    if self.training:\n        self.num_batches_tracked.add_(1)\n";
  }
  m.define("\ndef forward(self, x):\n" + count +
           "    return torch.batch_norm(x, self.weight, self.bias, self.running_mean, self.running_var, "
           "self.training, 0.1, 1e-5, False)\n");
  return m;
}

/// Returns a TorchScript Linear `in` → 1 (float64), weight drawn from randn · 0.5, bias zero.
inline torch::jit::Module script_linear(int64_t in) {
  auto m = script_leaf("Linear");
  m.register_parameter("weight", (torch::randn({1, in}, torch::kDouble) * 0.5).requires_grad_(), false);
  m.register_parameter("bias", torch::zeros({1}, torch::kDouble).requires_grad_(), false);
  m.define(R"(
def forward(self, x):
    return torch.matmul(x, self.weight.t()) + self.bias
)");
  return m;
}

/// Returns the TorchScript test network "ScriptNet" (float64, input [N, 3, H, W], output [N, 1]):
/// conv1 (3 → 4), bn1, ReLU, [conv2 (4 → 4), ReLU], [dropout 0.3], global mean, fc (Linear 4 → 1).
/// Example: `auto net = script_net(ScriptNetOptions().conv2(true));`
inline torch::jit::Module script_net(const ScriptNetOptions& options = {}) {
  torch::jit::Module fc;
  if (options.head_drawn_first()) fc = script_linear(4);
  auto conv1 = script_conv(3, 4);
  auto bn1 = script_bn(4, options.num_batches_tracked());
  auto net = script_leaf("ScriptNet");
  net.register_module("conv1", conv1);
  net.register_module("bn1", bn1);
  std::string body = "    y = torch.relu(self.bn1.forward(self.conv1.forward(x)))\n";
  if (options.conv2()) {
    net.register_module("conv2", script_conv(4, 4));
    body += "    y = torch.relu(self.conv2.forward(y))\n";
  }
  if (options.dropout()) body += "    y = torch.dropout(y, 0.3, self.training)\n";
  if (!options.head_drawn_first()) fc = script_linear(4);
  net.register_module("fc", fc);
  net.define("\ndef forward(self, x):\n" + body + "    return self.fc.forward(torch.mean(y, [2, 3]))\n");
  return net;
}

}  // namespace ohem_test
