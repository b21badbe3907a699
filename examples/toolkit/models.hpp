#pragma once
/// @file
/// The example trainers' models, and a trained one read back from a checkpoint:
/// - `BaseCNN` (train_pairwise, the paper's setting): backbone → average pool → L2-normalise →
///   Linear(features → 1), the score μ of the Thurstone model;
/// - `MosNet` (train_mos): multi-scale pooled backbone features → Linear → ReLU → Linear(→ 1);
/// - `TrainedModel` / `load_trained_model`: the full model of a trainer checkpoint with the test transform
///   the run used (its stored configuration), as `ohem-score` and the tests use it. Masks and twins are
///   training machinery: a trained model is the full model alone.

#include "backbones.hpp"
#include "checkpoint.hpp"
#include "image.hpp"
#include "transforms.hpp"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace ohem_examples {

/// BaseCNN: backbone → average pool → L2-normalise → Linear(features → 1) = the score μ (σ² fixed to 1).
/// With `--arch cnniqa` the backbone is CNNIQA (its own pooling and two fully connected layers).
struct BaseCNNImpl : torch::nn::Module {
  BaseCNNImpl(const std::string& arch, int64_t width) {
    const int64_t features = register_backbone(*this, arch, width, backbone, shallow);
    fc = register_module("fc", torch::nn::Linear(features, 1));
  }
  /// Returns the scores [B] of a batch [B, 3, H, W].
  torch::Tensor forward(const torch::Tensor& x) {
    auto f = backbone ? backbone->forward(x) : shallow->forward(x);
    f = torch::nn::functional::normalize(f, torch::nn::functional::NormalizeFuncOptions().p(2).dim(1));
    return fc->forward(f).reshape({-1});
  }
  ResNet backbone{nullptr};  ///< the backbone, unless --arch cnniqa
  CNNIQA shallow{nullptr};   ///< the backbone with --arch cnniqa
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(BaseCNN);

/// The MOS regressor: multi-scale pooled backbone features (the average-pooled features of layer2,
/// layer3 and layer4 concatenated, as HyperIQA's local distortion-aware branch) → Linear(→ hidden) → ReLU
/// → Linear(→ 1). With `--arch cnniqa` the features are CNNIQA's (one scale).
struct MosNetImpl : torch::nn::Module {
  MosNetImpl(const std::string& arch, int64_t width, int64_t hidden = 128) {
    const int64_t features = register_backbone(*this, arch, width, backbone, shallow);
    const int64_t expansion = arch == "resnet50" ? 4 : 1;
    const int64_t in = shallow ? features : width * expansion * (2 + 4 + 8);
    fc1 = register_module("fc1", torch::nn::Linear(in, hidden));
    fc2 = register_module("fc2", torch::nn::Linear(hidden, 1));
  }
  /// Returns the predicted MOS [B] of a batch [B, 3, H, W].
  torch::Tensor forward(const torch::Tensor& x) {
    TORCH_CHECK(x.dim() == 4 && x.size(1) == 3, "MosNet: expected input [B, 3, H, W], got ", x.sizes());
    if (shallow) return fc2(torch::relu(fc1(shallow->forward(x)))).reshape({-1});
    auto& b = *backbone;
    auto y = torch::max_pool2d(torch::relu(b.bn1(b.conv1(x))), 3, 2, 1);
    std::vector<torch::Tensor> pooled;
    for (size_t l = 0; l < b.layers.size(); ++l) {
      y = b.layers[l]->forward(y);
      if (l >= 1) pooled.push_back(y.mean({2, 3}));
    }
    return fc2(torch::relu(fc1(torch::cat(pooled, 1)))).reshape({-1});
  }
  ResNet backbone{nullptr};  ///< the backbone, unless --arch cnniqa
  CNNIQA shallow{nullptr};   ///< the backbone with --arch cnniqa
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(MosNet);

/// The names of the trainers whose checkpoints `load_trained_model` reads (the checkpoint's "trainer"
/// entry).
inline constexpr const char* kPairwiseTrainer = "train_pairwise";
inline constexpr const char* kMosTrainer = "train_mos";

/// A trained full model read from a trainer checkpoint.
struct TrainedModel {
  std::string trainer;    ///< kPairwiseTrainer or kMosTrainer
  nlohmann::json config;  ///< the run's options as the checkpoint stores them (`run_config`)
  std::shared_ptr<torch::nn::Module> module;                 ///< the net (BaseCNN or MosNet)
  std::function<torch::Tensor(const torch::Tensor&)> score;  ///< scores [B] of a batch [B, 3, H, W]
  TestTransform transform;                                   ///< the run's test transform
  int64_t eval_batch = 16;                                   ///< the run's --eval-batch
  int64_t max_pixels = 0;                                    ///< the run's --max-pixels
};

namespace detail {

/// Reads the option `name` of a stored configuration as `T`; throws naming the checkpoint if it is
/// missing or of another type.
template <typename T>
T config_value(const nlohmann::json& config, const char* name, const std::string& path) {
  TORCH_CHECK(config.contains(name), "checkpoint \"", path, "\": its configuration lacks ", name);
  try {
    return config.at(name).get<T>();
  } catch (const nlohmann::json::exception& e) {
    TORCH_CHECK(false, "checkpoint \"", path, "\": the configuration's ", name, " is ",
                config.at(name).dump(), ": ", e.what());
  }
  return T{};
}

}  // namespace detail

/// Reads the full model of a checkpoint of either example trainer, in eval mode on the CPU: the net the
/// run's configuration describes (--arch, --width), its weights (shapes checked first), the run's test
/// transform and evaluation batch. The trainer is the checkpoint's "trainer" entry; checkpoints written
/// before it existed are recognised by their model's head (fc: train_pairwise; fc1, fc2: train_mos).
/// Throws naming the file and what is wrong.
///
/// Example: `TrainedModel m = load_trained_model("runs/a/checkpoint.pt"); auto s = m.score(x);`
inline TrainedModel load_trained_model(const std::string& path) {
  torch::serialize::InputArchive payload;
  load_checked(payload, path);
  c10::IValue v;
  read_entry(payload, "config", v, path);
  TORCH_CHECK(v.isString(), "checkpoint \"", path, "\": the entry \"config\" is a ", v.tagKind(),
              ", expected a string");
  TrainedModel m;
  try {
    m.config = nlohmann::json::parse(v.toStringRef());
  } catch (const nlohmann::json::exception& e) {
    TORCH_CHECK(false, "checkpoint \"", path, "\": bad configuration: ", e.what());
  }
  torch::serialize::InputArchive weights;
  read_entry(payload, "model", weights, path);
  c10::IValue trainer;
  if (payload.try_read("trainer", trainer)) {
    TORCH_CHECK(trainer.isString(), "checkpoint \"", path, "\": the entry \"trainer\" is a ",
                trainer.tagKind(), ", expected a string");
    m.trainer = trainer.toStringRef();
  } else {
    torch::serialize::InputArchive head;
    m.trainer = weights.try_read("fc", head) ? kPairwiseTrainer : kMosTrainer;
  }
  const auto arch = detail::config_value<std::string>(m.config, "--arch", path);
  const auto width = detail::config_value<int64_t>(m.config, "--width", path);
  if (m.trainer == kPairwiseTrainer) {
    BaseCNN net(arch, width);
    m.module = net.ptr();
    m.score = [net](const torch::Tensor& x) mutable { return net->forward(x); };
  } else {
    TORCH_CHECK(m.trainer == kMosTrainer, "checkpoint \"", path, "\" was written by \"", m.trainer,
                "\"; this program reads checkpoints of ", kPairwiseTrainer, " and ", kMosTrainer);
    MosNet net(arch, width);
    m.module = net.ptr();
    m.score = [net](const torch::Tensor& x) mutable { return net->forward(x); };
  }
  load_matching(*m.module, weights, "checkpoint \"" + path + "\" (" + m.trainer + ")");
  m.module->eval();
  m.transform.resize = detail::config_value<int64_t>(m.config, "--test-resize", path);
  m.transform.crop = detail::config_value<int64_t>(m.config, "--test-crop", path);
  m.eval_batch = detail::config_value<int64_t>(m.config, "--eval-batch", path);
  m.max_pixels = m.config.contains("--max-pixels")
                     ? detail::config_value<int64_t>(m.config, "--max-pixels", path)
                     : kDefaultMaxPixels;
  return m;
}

}  // namespace ohem_examples
