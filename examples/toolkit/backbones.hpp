#pragma once
/// @file
/// ResNet-18 and ResNet-50 backbones in C++ with torchvision's layout and parameter names
/// ("conv1.weight", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight", ...; no "fc"), loading
/// of weights from a TorchScript file exported from Python (names matched one to one), and CNNIQA, a
/// shallow network for IQA on little data (`--arch cnniqa`).
///
/// Pretrained weights cannot be downloaded here; the default is torchvision's random initialisation.
/// To use ImageNet weights, export them once in Python (docs/examples.md):
///
///     import torch, torchvision
///     m = torchvision.models.resnet18(weights="IMAGENET1K_V1")
///     torch.jit.script(m).save("resnet18.pt")
///
/// and pass `--pretrained resnet18.pt` to a trainer (`load_script_weights`).

#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace ohem_examples {

namespace detail {
inline torch::nn::Conv2dOptions conv_opts(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad) {
  return torch::nn::Conv2dOptions(in, out, k).stride(stride).padding(pad).bias(false);
}
}  // namespace detail

/// torchvision's BasicBlock (ResNet-18/34): conv3x3-bn-relu-conv3x3-bn + shortcut.
struct BasicBlockImpl : torch::nn::Module {
  static constexpr int64_t expansion = 1;
  BasicBlockImpl(int64_t in, int64_t planes, int64_t stride) {
    conv1 = register_module("conv1", torch::nn::Conv2d(detail::conv_opts(in, planes, 3, stride, 1)));
    bn1 = register_module("bn1", torch::nn::BatchNorm2d(planes));
    conv2 = register_module("conv2", torch::nn::Conv2d(detail::conv_opts(planes, planes, 3, 1, 1)));
    bn2 = register_module("bn2", torch::nn::BatchNorm2d(planes));
    if (stride != 1 || in != planes) {
      downsample = register_module(
          "downsample", torch::nn::Sequential(torch::nn::Conv2d(detail::conv_opts(in, planes, 1, stride, 0)),
                                              torch::nn::BatchNorm2d(planes)));
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = torch::relu(bn1(conv1(x)));
    y = bn2(conv2(y));
    return torch::relu(y + (downsample ? downsample->forward(x) : x));
  }
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  torch::nn::Sequential downsample{nullptr};
};
TORCH_MODULE(BasicBlock);

/// torchvision's Bottleneck (ResNet-50/101/152, stride on the 3x3 conv as in torchvision ≥ 0.5).
struct BottleneckImpl : torch::nn::Module {
  static constexpr int64_t expansion = 4;
  BottleneckImpl(int64_t in, int64_t planes, int64_t stride) {
    conv1 = register_module("conv1", torch::nn::Conv2d(detail::conv_opts(in, planes, 1, 1, 0)));
    bn1 = register_module("bn1", torch::nn::BatchNorm2d(planes));
    conv2 = register_module("conv2", torch::nn::Conv2d(detail::conv_opts(planes, planes, 3, stride, 1)));
    bn2 = register_module("bn2", torch::nn::BatchNorm2d(planes));
    conv3 = register_module("conv3", torch::nn::Conv2d(detail::conv_opts(planes, planes * 4, 1, 1, 0)));
    bn3 = register_module("bn3", torch::nn::BatchNorm2d(planes * 4));
    if (stride != 1 || in != planes * 4) {
      downsample = register_module(
          "downsample",
          torch::nn::Sequential(torch::nn::Conv2d(detail::conv_opts(in, planes * 4, 1, stride, 0)),
                                torch::nn::BatchNorm2d(planes * 4)));
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = torch::relu(bn1(conv1(x)));
    y = torch::relu(bn2(conv2(y)));
    y = bn3(conv3(y));
    return torch::relu(y + (downsample ? downsample->forward(x) : x));
  }
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Sequential downsample{nullptr};
};
TORCH_MODULE(Bottleneck);

/// Options of a ResNet backbone.
///
/// Example: `ResNetOptions("resnet18").width(32)`
struct ResNetOptions {
  /// Takes the architecture name: "resnet18" or "resnet50".
  /* implicit */ ResNetOptions(std::string arch = "resnet18") : arch_(std::move(arch)) {}
  /// resnet18 or resnet50.
  TORCH_ARG(std::string, arch);
  /// Channels of the stem and of layer1 (torchvision: 64). Smaller widths give fast demo models; only 64
  /// matches torchvision's pretrained weights.
  TORCH_ARG(int64_t, width) = 64;
};

/// A ResNet feature extractor with torchvision's module names: conv1, bn1, (relu, maxpool), layer1..layer4;
/// `forward` returns the globally average-pooled features [B, feature_dim()], `forward_map` the last
/// feature map [B, C, h, w]. Initialised as torchvision (Kaiming normal fan_out for convolutions,
/// BatchNorm weight 1 and bias 0).
struct ResNetImpl : torch::nn::Module {
  explicit ResNetImpl(ResNetOptions options = {}) : options_(std::move(options)) {
    const std::string& a = options_.arch();
    TORCH_CHECK(a == "resnet18" || a == "resnet50", "ResNet: unknown architecture \"", a,
                "\" (expected resnet18 or resnet50)");
    TORCH_CHECK(options_.width() >= 4 && options_.width() % 4 == 0,
                "ResNet: width must be a positive multiple of 4, got ", options_.width());
    const bool bottleneck = a == "resnet50";
    const std::vector<int64_t> blocks =
        bottleneck ? std::vector<int64_t>{3, 4, 6, 3} : std::vector<int64_t>{2, 2, 2, 2};
    const int64_t w = options_.width();
    conv1 = register_module("conv1", torch::nn::Conv2d(detail::conv_opts(3, w, 7, 2, 3)));
    bn1 = register_module("bn1", torch::nn::BatchNorm2d(w));
    int64_t in = w;
    for (int64_t l = 0; l < 4; ++l) {
      torch::nn::Sequential layer;
      const int64_t planes = w << l;
      for (int64_t b = 0; b < blocks[static_cast<size_t>(l)]; ++b) {
        const int64_t stride = (b == 0 && l > 0) ? 2 : 1;
        if (bottleneck) {
          layer->push_back(Bottleneck(in, planes, stride));
          in = planes * 4;
        } else {
          layer->push_back(BasicBlock(in, planes, stride));
          in = planes;
        }
      }
      layers.push_back(register_module("layer" + std::to_string(l + 1), layer));
    }
    features_ = in;
    for (auto& m : modules(/*include_self=*/false)) {
      if (auto* c = m->as<torch::nn::Conv2d>()) {
        torch::nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
      } else if (auto* bn = m->as<torch::nn::BatchNorm2d>()) {
        torch::nn::init::ones_(bn->weight);
        torch::nn::init::zeros_(bn->bias);
      }
    }
  }
  /// Returns the last feature map [B, feature_dim(), H/32, W/32].
  torch::Tensor forward_map(const torch::Tensor& x) {
    TORCH_CHECK(x.dim() == 4 && x.size(1) == 3, "ResNet: expected input [B, 3, H, W], got ", x.sizes());
    auto y = torch::relu(bn1(conv1(x)));
    y = torch::max_pool2d(y, 3, 2, 1);
    for (auto& l : layers) y = l->forward(y);
    return y;
  }
  /// Returns the average-pooled features [B, feature_dim()].
  torch::Tensor forward(const torch::Tensor& x) { return forward_map(x).mean({2, 3}); }
  /// Returns the number of output channels (512 for resnet18, 2048 for resnet50 at width 64).
  int64_t feature_dim() const { return features_; }
  /// Returns the options.
  const ResNetOptions& options() const { return options_; }

  torch::nn::Conv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  std::vector<torch::nn::Sequential> layers;

 private:
  ResNetOptions options_;
  int64_t features_ = 0;
};
TORCH_MODULE(ResNet);

/// Options of the CNNIQA backbone.
///
/// Example: `CNNIQAOptions().kernels(50)`
struct CNNIQAOptions {
  /// Convolution kernels (Kang et al.: 50).
  TORCH_ARG(int64_t, kernels) = 50;
  /// Side of the convolution kernels (7).
  TORCH_ARG(int64_t, kernel_size) = 7;
  /// Width of the two fully connected layers (800).
  TORCH_ARG(int64_t, hidden) = 800;
  /// Side of the local normalisation window (7).
  TORCH_ARG(int64_t, window) = 7;
  /// Added to the local standard deviation before dividing (on the ImageNet-normalised scale).
  TORCH_ARG(double, epsilon) = 0.05;
};

/// CNNIQA (Kang, Ye, Li, Doermann, CVPR 2014), a shallow network that learns distortions rather than
/// content from little data: local normalisation of the grey image → one convolution → global max and
/// min pooling → two fully connected layers with ReLU; `forward` returns the features [B, hidden].
///
/// Deviation from the paper: the convolution sees two channels, the locally normalised image and the
/// local standard deviation it divided by, so that contrast changes (which local normalisation removes)
/// stay visible. The input is an RGB batch [B, 3, H, W] (as the trainers feed it, ImageNet-normalised),
/// at least `kernel_size` pixels on a side. Initialised with LibTorch's defaults.
struct CNNIQAImpl : torch::nn::Module {
  explicit CNNIQAImpl(CNNIQAOptions options = {}) : options_(options) {
    TORCH_CHECK(options_.kernels() >= 1 && options_.hidden() >= 1 && options_.kernel_size() >= 1,
                "CNNIQA: kernels, hidden and kernel_size must be positive, got ", options_.kernels(), ", ",
                options_.hidden(), ", ", options_.kernel_size());
    TORCH_CHECK(options_.window() >= 1 && options_.window() % 2 == 1,
                "CNNIQA: window must be a positive odd number, got ", options_.window());
    TORCH_CHECK(options_.epsilon() > 0.0, "CNNIQA: epsilon must be positive, got ", options_.epsilon());
    conv = register_module(
        "conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(2, options_.kernels(), options_.kernel_size())));
    fc1 = register_module("fc1", torch::nn::Linear(2 * options_.kernels(), options_.hidden()));
    fc2 = register_module("fc2", torch::nn::Linear(options_.hidden(), options_.hidden()));
  }
  /// Returns the network's input [B, 2, H, W]: the grey image (mean of the channels) minus its local
  /// mean, divided by its local standard deviation plus epsilon; and that local standard deviation.
  torch::Tensor normalize_local(const torch::Tensor& x) const {
    TORCH_CHECK(x.dim() == 4 && x.size(1) == 3, "CNNIQA: expected input [B, 3, H, W], got ", x.sizes());
    TORCH_CHECK(x.size(2) >= options_.kernel_size() && x.size(3) >= options_.kernel_size(), "CNNIQA: input ",
                x.sizes(), " is smaller than the ", options_.kernel_size(), "x", options_.kernel_size(),
                " kernel");
    namespace F = torch::nn::functional;
    const int64_t w = options_.window();
    const auto pool = F::AvgPool2dFuncOptions(w).stride(1).padding(w / 2).count_include_pad(false);
    const torch::Tensor grey = x.mean(1, /*keepdim=*/true);
    const torch::Tensor mean = F::avg_pool2d(grey, pool);
    const torch::Tensor sd = (F::avg_pool2d(grey * grey, pool) - mean * mean).clamp_min(0.0).sqrt();
    return torch::cat({(grey - mean) / (sd + options_.epsilon()), sd}, 1);
  }
  /// Returns the features [B, hidden()].
  torch::Tensor forward(const torch::Tensor& x) {
    // max/min with indices: their backward scatters into the argmax, much cheaper than amax/amin's.
    const torch::Tensor y = conv(normalize_local(x)).flatten(2);
    const torch::Tensor pooled = torch::cat({std::get<0>(y.max(2)), std::get<0>(y.min(2))}, 1);
    return torch::relu(fc2(torch::relu(fc1(pooled))));
  }
  /// Returns the number of features (hidden).
  int64_t feature_dim() const { return options_.hidden(); }
  /// Returns the options.
  const CNNIQAOptions& options() const { return options_; }

  torch::nn::Conv2d conv{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};

 private:
  CNNIQAOptions options_;
};
TORCH_MODULE(CNNIQA);

/// The names `register_backbone` takes: the trainers' and the demo's `--arch` choices.
inline std::vector<std::string> backbone_names() {
  return {"resnet18", "resnet50", "cnniqa"};
}

/// Builds the trainers' backbone for `--arch` (resnet18, resnet50: a ResNet of base width `width`;
/// cnniqa: CNNIQA with `width` kernels), registers it in `owner` as "backbone", sets the one of `resnet`
/// and `cnniqa` it built, and returns its number of features.
inline int64_t register_backbone(torch::nn::Module& owner, const std::string& arch, int64_t width,
                                 ResNet& resnet, CNNIQA& cnniqa) {
  const auto names = backbone_names();
  TORCH_CHECK(std::find(names.begin(), names.end(), arch) != names.end(),
              "register_backbone: unknown arch \"", arch, "\" (expected one of ", c10::Join(", ", names),
              ")");
  if (arch == "cnniqa") {
    cnniqa = owner.register_module("backbone", CNNIQA(CNNIQAOptions().kernels(width)));
    return cnniqa->feature_dim();
  }
  resnet = owner.register_module("backbone", ResNet(ResNetOptions(arch).width(width)));
  return resnet->feature_dim();
}

/// Copies parameters and buffers from a TorchScript module (e.g. a scripted torchvision ResNet) into a
/// C++ module by qualified name. Names in the file that the module lacks are ignored only if they match
/// `ignore_prefix` (default "fc.", torchvision's classifier); every tensor of the module must be in the
/// file with the same shape. Throws naming the first missing or mismatched tensor. Returns how many
/// tensors were copied.
///
/// Example: `ohem_examples::load_script_weights(*backbone, "resnet18.pt");`
inline int64_t load_script_weights(torch::nn::Module& module, const std::string& path,
                                   const std::string& ignore_prefix = "fc.") {
  torch::jit::Module script;
  try {
    script = torch::jit::load(path);
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, "cannot load TorchScript file \"", path, "\": ", e.what_without_backtrace());
  }
  std::map<std::string, torch::Tensor> source;
  for (const auto& p : script.named_parameters(true)) source[p.name] = p.value;
  for (const auto& b : script.named_buffers(true)) source[b.name] = b.value;
  torch::NoGradGuard no_grad;
  int64_t copied = 0;
  std::set<std::string> used;
  auto copy = [&](const std::string& name, torch::Tensor& dst) {
    auto it = source.find(name);
    TORCH_CHECK(it != source.end(), "load_script_weights: \"", path, "\" has no tensor \"", name, "\"");
    TORCH_CHECK(it->second.sizes() == dst.sizes(), "load_script_weights: \"", name, "\" has shape ",
                it->second.sizes(), " in \"", path, "\" but ", dst.sizes(), " in the model");
    dst.copy_(it->second);
    used.insert(name);
    ++copied;
  };
  for (auto& p : module.named_parameters(true)) copy(p.key(), p.value());
  for (auto& b : module.named_buffers(true)) copy(b.key(), b.value());
  for (const auto& [name, t] : source) {
    TORCH_CHECK(used.count(name) || (!ignore_prefix.empty() && name.rfind(ignore_prefix, 0) == 0),
                "load_script_weights: \"", path, "\" has tensor \"", name, "\" that the model lacks");
  }
  return copied;
}

}  // namespace ohem_examples
