// docs/integration.md ("OHEM beyond quality scores: a classifier"): LibTorch's MNIST-style classifier,
// held by value, trained with SGD and NLL on synthetic data, with the KL consistency. Every block between
// DOC-BEGIN and DOC-END appears verbatim there.
#include <ohem/self_competitor.hpp>

#include <torch/torch.h>

#include <cstdio>
#include <string>
#include <utility>

// LibTorch's MNIST example network, scaled to 12x12 inputs and 3 classes.
struct Net : torch::nn::Module {
  Net() {
    conv1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 6, 3)));
    conv2 = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(6, 12, 3)));
    fc = register_module("fc", torch::nn::Linear(12 * 3 * 3, 3));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = torch::relu(torch::max_pool2d(conv1->forward(x), 2));  // 12 -> 10 -> 5
    x = torch::relu(conv2->forward(x));                        // 5 -> 3
    return torch::log_softmax(fc->forward(x.flatten(1)), /*dim=*/1);
  }
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::Linear fc{nullptr};
};

// Images whose class is the brighter third of the picture (left, middle, right), with noise.
std::pair<torch::Tensor, torch::Tensor> batch(int64_t n) {
  torch::Tensor labels = torch::randint(0, 3, {n}, torch::kLong);
  torch::Tensor images = torch::randn({n, 1, 12, 12}) * 0.5;
  for (int64_t i = 0; i < n; ++i) images[i].narrow(2, 4 * labels[i].item<int64_t>(), 4).add_(1.0);
  return {images, labels};
}

// DOC-BEGIN
// The model's forward returns log_softmax(logits, 1), as in LibTorch's MNIST example.
void train(Net& model, int steps) {
  ohem::SelfCompetitor ohem_net(
      model, torch::nn::NLLLoss(),
      ohem::SelfCompetitorOptions().loss(ohem::OhemLossOptions().consistency(ohem::Consistency::KL)));
  torch::optim::SGD optimizer(model.parameters(), 0.05);
  for (int step = 0; step < steps; ++step) {
    auto [images, labels] = batch(32);
    auto r = ohem_net(images, labels);
    optimizer.zero_grad();
    r.total.backward();
    optimizer.step();
    std::printf("step %d  NLL %.4f\n", step, r.task.item<double>());  // the full model's task loss
  }
}
// DOC-END

int main(int argc, char* argv[]) {
  const int steps = argc > 1 ? std::stoi(argv[1]) : 20;
  torch::manual_seed(0);
  Net model;
  auto [images, labels] = batch(256);
  auto nll = [&] {
    torch::NoGradGuard no_grad;
    return torch::nll_loss(model.forward(images), labels).item<double>();
  };
  const double before = nll();
  train(model, steps);
  const double after = nll();
  std::printf("held-out NLL of the full model: %.4f before, %.4f after %d steps\n", before, after, steps);
  return after < before ? 0 : 1;
}
