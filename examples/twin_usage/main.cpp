// The code samples of docs/twin.md, compiled and run by the test suite (a test checks each DOC block
// below appears verbatim in docs/twin.md).
// clang-format off
#include <ohem/ohem.hpp>
#include <torch/script.h>  // torch::jit::load

#include <iostream>

// DOC-BEGIN
struct NetImpl : torch::nn::Module {
  NetImpl() {
    conv1 = register_module("conv1", torch::nn::Conv2d(3, 8, 3));
    bn1 = register_module("bn1", torch::nn::BatchNorm2d(8));
    conv2 = register_module("conv2", torch::nn::Conv2d(8, 16, 3));
    fc = register_module("fc", torch::nn::Linear(16, 1));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = torch::relu(bn1(conv1(x)));
    y = torch::relu(conv2(y)).mean({2, 3});
    return fc(y);
  }
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(Net);

void train_step(Net& net, ohem::PrunedTwin<Net>& twin, torch::optim::Optimizer& optimizer,
                const torch::Tensor& x, const torch::Tensor& mos) {
  auto full = net->forward(x);
  auto pruned = twin.forward(x);  // the same forward, every masked weight replaced by w ⊙ m
  auto loss = torch::l1_loss(full, mos) + torch::l1_loss(pruned, mos) + torch::mse_loss(full, pruned);
  optimizer.zero_grad();
  loss.backward();                // gradients reach net's own parameters
  optimizer.step();
  twin.step();                    // counts steps; recomputes masks only if refresh_every > 0
}
// DOC-END

// DOC-BEGIN
ohem::TwinOptions custom_options() {
  return ohem::TwinOptions()
      .slots(ohem::SlotOptions().kinds(ohem::LayerKind::All).exclude({"^fc\\."}))
      .masks(ohem::MaskOptions().ratio(0.7).criterion(ohem::MaskCriterion::LayerMagnitude))
      .batchnorm(ohem::BatchNormPolicy::Frozen)
      .refresh_every(1000);
}
// DOC-END

// DOC-BEGIN
// A layer of your own that keeps its weight in its own member.
struct GatedDenseImpl : torch::nn::Module {
  GatedDenseImpl(int64_t in, int64_t out) {
    kernel = register_parameter("kernel", torch::randn({out, in}) * 0.1);
    gate = register_parameter("gate", torch::zeros({out}));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return torch::matmul(x, kernel.t()) * torch::sigmoid(gate);
  }
  torch::Tensor kernel, gate;
};
TORCH_MODULE(GatedDense);

void register_layers() {
  // Once, before building a twin: "kernel" is what GatedDense's forward reads.
  ohem::register_prunable<GatedDenseImpl>("GatedDense", &GatedDenseImpl::kernel);
}
// DOC-END

// DOC-BEGIN
void scripted_backbone(const std::string& path) {
  torch::jit::Module backbone = torch::jit::load(path);  // e.g. a torchvision ResNet exported from Python
  ohem::PrunedTwin<torch::jit::Module> twin(backbone);
  auto scores = twin.forward(torch::randn({2, 3, 224, 224})).toTensor();
}
// DOC-END

int main() {
  torch::manual_seed(0);
  // DOC-BEGIN
  Net net;
  torch::optim::Adam optimizer(net->parameters(), torch::optim::AdamOptions(1e-4).weight_decay(5e-4));
  ohem::PrunedTwin<Net> twin(net);        // recipe defaults: convolutions, global magnitude, ratio 0.65
  std::cout << twin.masks().summary();    // per-layer and global sparsity

  train_step(net, twin, optimizer, torch::randn({8, 3, 16, 16}), torch::rand({8, 1}));

  twin.refresh();                         // at the start of the next training stage
  twin.save_masks("twin_masks.pt");       // atomic; load_masks() validates names, shapes and dtype
  // DOC-END

  ohem::PrunedTwin<Net> custom(net, custom_options());
  std::cout << custom.masks().summary();

  register_layers();
  GatedDense dense(4, 2);
  ohem::PrunedTwin<GatedDense> dense_twin(dense, ohem::TwinOptions().masks(ohem::MaskOptions().ratio(0.5)));
  std::cout << dense_twin.masks().summary();

  // DOC-BEGIN
  {
    auto scope = twin.scope();            // from here, net itself runs as the pruned twin
    auto features = net->conv1->forward(torch::randn({1, 3, 16, 16}));
  }                                       // original weights restored, also on an exception
  // DOC-END
  const auto x = torch::randn({1, 3, 16, 16});
  // DOC-BEGIN
  {
    auto guard = twin.full_forward();  // ohem::FullForwardGuard
    auto y = net->forward(x);          // never sees masked weights
  }
  // DOC-END
  twin.load_masks("twin_masks.pt");
  std::remove("twin_masks.pt");
  (void)&scripted_backbone;
  return 0;
}
