// The pruned twin: outputs and gradients equal those of an explicitly masked copy (weights multiplied by
// the masks by hand), handles are restored, parameters untouched, BatchNorm policies, refresh schedule.
#include "support.hpp"
#include "support_script.hpp"

#include <ohem/twin.hpp>

#include <limits>
#include <set>
#include <thread>

using namespace torch::nn;
using ohem::BatchNormPolicy;
using ohem::LayerKind;
using ohem::MaskOptions;
using ohem::PrunedTwin;
using ohem::SlotOptions;
using ohem::TwinOptions;
using ohem_test::close;

namespace {

// A ResNet-style network: stem conv-BN-ReLU, a basic block, a block with a downsample branch,
// global average pool, L2 normalisation and a Linear head (BaseCNN's shape, in miniature).
struct BlockImpl : Cloneable<BlockImpl> {
  BlockImpl(int64_t in, int64_t out, int64_t stride) : in_(in), out_(out), stride_(stride) { reset(); }
  void reset() override {
    conv1 =
        register_module("conv1", Conv2d(Conv2dOptions(in_, out_, 3).stride(stride_).padding(1).bias(false)));
    bn1 = register_module("bn1", BatchNorm2d(out_));
    conv2 = register_module("conv2", Conv2d(Conv2dOptions(out_, out_, 3).padding(1).bias(false)));
    bn2 = register_module("bn2", BatchNorm2d(out_));
    if (stride_ != 1 || in_ != out_) {
      downsample = register_module(
          "downsample",
          Sequential(Conv2d(Conv2dOptions(in_, out_, 1).stride(stride_).bias(false)), BatchNorm2d(out_)));
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = torch::relu(bn1(conv1(x)));
    y = bn2(conv2(y));
    return torch::relu(y + (downsample ? downsample->forward(x) : x));
  }
  int64_t in_, out_, stride_;
  Conv2d conv1{nullptr}, conv2{nullptr};
  BatchNorm2d bn1{nullptr}, bn2{nullptr};
  Sequential downsample{nullptr};
};
TORCH_MODULE(Block);

struct ResNetishImpl : Cloneable<ResNetishImpl> {
  ResNetishImpl() { reset(); }
  void reset() override {
    conv1 = register_module("conv1", Conv2d(Conv2dOptions(3, 4, 3).padding(1).bias(false)));
    bn1 = register_module("bn1", BatchNorm2d(4));
    layer1 = register_module("layer1", Block(4, 4, 1));
    layer2 = register_module("layer2", Block(4, 8, 2));
    fc = register_module("fc", Linear(8, 1));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = torch::relu(bn1(conv1(x)));
    y = layer2(layer1(y));
    y = y.mean({2, 3});
    y = y / y.norm(2, 1, true).clamp_min(1e-12);
    return fc(y);
  }
  Conv2d conv1{nullptr};
  BatchNorm2d bn1{nullptr};
  Block layer1{nullptr}, layer2{nullptr};
  Linear fc{nullptr};
};
TORCH_MODULE(ResNetish);

// A user's own layer that keeps its weight in its own member (`kernel`), opting in with one call.
struct ScaledDenseImpl : Cloneable<ScaledDenseImpl> {
  ScaledDenseImpl(int64_t in, int64_t out) : in_(in), out_(out) { reset(); }
  void reset() override {
    kernel = register_parameter("kernel", torch::randn({out_, in_}) * 0.5);
    scale = register_parameter("scale", torch::rand({out_}) + 0.5);
  }
  torch::Tensor forward(const torch::Tensor& x) { return torch::matmul(x, kernel.t()) * scale; }
  int64_t in_, out_;
  torch::Tensor kernel, scale;
};
TORCH_MODULE(ScaledDense);

struct UserNetImpl : Cloneable<UserNetImpl> {
  UserNetImpl() { reset(); }
  void reset() override {
    dense1 = register_module("dense1", ScaledDense(6, 5));
    dense2 = register_module("dense2", ScaledDense(5, 2));
  }
  torch::Tensor forward(const torch::Tensor& x) { return dense2(torch::tanh(dense1(x))); }
  ScaledDense dense1{nullptr}, dense2{nullptr};
};
TORCH_MODULE(UserNet);

// A module whose forward takes several arguments.
struct TwoInputImpl : Cloneable<TwoInputImpl> {
  TwoInputImpl() { reset(); }
  void reset() override { conv = register_module("conv", Conv1d(2, 3, 2)); }
  torch::Tensor forward(const torch::Tensor& x, double scale, const torch::Tensor& bias) {
    return conv(x) * scale + bias;
  }
  Conv1d conv{nullptr};
};
TORCH_MODULE(TwoInput);

// Multiplies the masked weights of a deep copy by their masks, by hand.
template <typename Holder>
Holder masked_copy(const Holder& net, const ohem::MaskSet& masks) {
  Holder copy(std::dynamic_pointer_cast<typename Holder::ContainedType>(net->clone()));
  torch::NoGradGuard no_grad;
  for (auto& p : copy->named_parameters()) {
    if (masks.contains(p.key())) p.value().mul_(masks.at(p.key()));
  }
  return copy;
}

// The gradient the twin must give a masked weight w: d/dw f(w ⊙ m) = m ⊙ (df/dv at v = w ⊙ m).
void check_grads(torch::nn::Module& net, torch::nn::Module& copy, const ohem::MaskSet& masks, double atol) {
  auto got = net.named_parameters();
  auto ref = copy.named_parameters();
  for (const auto& p : got) {
    INFO("parameter " << p.key());
    REQUIRE(p.value().grad().defined());
    auto expected = ref[p.key()].grad();
    if (masks.contains(p.key())) expected = expected * masks.at(p.key());
    CHECK(close(p.value().grad(), expected, 0.0, atol));
  }
}

void check_buffers_equal(torch::nn::Module& a, torch::nn::Module& b, double atol) {
  auto ba = a.named_buffers();
  auto bb = b.named_buffers();
  REQUIRE(ba.size() == bb.size());
  for (const auto& x : ba) {
    INFO("buffer " << x.key());
    CHECK(close(x.value(), bb[x.key()], 0.0, atol));
  }
}

std::vector<torch::Tensor> snapshot(const std::vector<torch::Tensor>& ts) {
  std::vector<torch::Tensor> out;
  for (const auto& t : ts) out.push_back(t.detach().clone());
  return out;
}

// The TorchScript test network with a second convolution and a BatchNorm that counts its batches.
torch::jit::Module script_net() {
  return ohem_test::script_net(
      ohem_test::ScriptNetOptions().conv2(true).num_batches_tracked(true).head_drawn_first(true));
}

}  // namespace

TEST_CASE("twin of a conv/linear net equals an explicitly masked copy (float64)", "[twin]") {
  auto net = Sequential(Conv2d(Conv2dOptions(2, 6, 3).padding(1)), ReLU(), Conv2d(6, 4, 3), Flatten(),
                        Linear(4 * 4 * 4, 3), Tanh(), Linear(3, 1));
  net->to(torch::kDouble);
  PrunedTwin<Sequential> twin(
      net, TwinOptions().slots(SlotOptions().kinds(LayerKind::All)).masks(MaskOptions().ratio(0.7)));
  REQUIRE(twin.slots().size() == 4);
  auto copy = masked_copy(net, twin.masks());
  auto x = torch::randn({5, 2, 6, 6}, torch::kDouble);
  auto y = twin.forward(x);
  auto y_ref = copy->forward(x);
  CHECK(close(y, y_ref, 0.0, 1e-6));
  (y * y).sum().backward();
  (y_ref * y_ref).sum().backward();
  check_grads(*net, *copy, twin.masks(), 1e-6);
  // The twin really differs from the full model.
  CHECK_FALSE(close(net->forward(x), y, 0.0, 1e-6));
}

TEST_CASE("masked weights: early backward node, and a gradient penalty through the twin", "[twin]") {
  auto net = Sequential(Conv2d(Conv2dOptions(2, 6, 3).padding(1)), Tanh(), Conv2d(6, 4, 3), Flatten(),
                        Linear(4 * 4 * 4, 1));
  net->to(torch::kDouble);
  PrunedTwin<Sequential> twin(net, TwinOptions().masks(MaskOptions().ratio(0.6)));
  {
    auto scope = twin.scope();
    const auto& node = net[0]->as<Conv2d>()->weight.grad_fn();
    REQUIRE(node);
    CHECK(node->name() == "ohem::MaskedWeightBackward");
    // AccumulateGrad's priority: the engine runs it as soon as the layer's weight gradient exists.
    CHECK(node->sequence_nr() == std::numeric_limits<uint64_t>::max());
  }
  // Double backward: loss = Σy + Σ(∂Σy/∂x)², against the explicitly masked copy.
  auto copy = masked_copy(net, twin.masks());
  auto x = torch::randn({3, 2, 6, 6}, torch::kDouble).requires_grad_(true);
  auto penalised = [&](const torch::Tensor& y) {
    auto gx = torch::autograd::grad({y.sum()}, {x}, {}, /*retain_graph=*/true, /*create_graph=*/true)[0];
    return y.sum() + gx.square().sum();
  };
  penalised(twin.forward(x)).backward();
  penalised(copy->forward(x)).backward();
  check_grads(*net, *copy, twin.masks(), 1e-9);

  // A penalty on the first conv's weight gradient: second order through MaskedWeightBackward itself.
  for (auto& p : net->parameters()) p.mutable_grad() = torch::Tensor();
  for (auto& p : copy->parameters()) p.mutable_grad() = torch::Tensor();
  const torch::Tensor w = net[0]->as<Conv2d>()->weight, w_copy = copy[0]->as<Conv2d>()->weight;
  const torch::Tensor m = twin.masks().mask(0).to(torch::kDouble);
  auto gw = torch::autograd::grad({twin.forward(x).sum()}, {w}, {}, true, true)[0];
  auto gw_copy = torch::autograd::grad({copy->forward(x).sum()}, {w_copy}, {}, true, true)[0] * m;
  CHECK(close(gw, gw_copy, 0.0, 1e-9));
  gw.square().sum().backward();
  gw_copy.square().sum().backward();
  auto got = net->named_parameters();
  auto ref = copy->named_parameters();
  int compared = 0;
  for (const auto& p : got) {
    INFO("parameter " << p.key());
    const torch::Tensor g = p.value().grad(), r = ref[p.key()].grad();
    REQUIRE(g.defined() == r.defined());  // parameters the penalty does not reach have none in both
    if (!g.defined()) continue;
    CHECK(close(g, twin.masks().contains(p.key()) ? r * twin.masks().at(p.key()) : r, 0.0, 1e-9));
    ++compared;
  }
  CHECK(compared >= 3);
}

TEST_CASE("twin of a ResNet-style net with BatchNorm and downsample branches (shared BatchNorm)", "[twin]") {
  ResNetish net;
  net->to(torch::kDouble);
  PrunedTwin<ResNetish> twin(net);  // the recipe: convolutions only, ratio 0.65, shared BatchNorm
  std::set<std::string> names;
  for (const auto& s : twin.slots()) names.insert(s.name);
  CHECK(names == std::set<std::string>{"conv1.weight", "layer1.conv1.weight", "layer1.conv2.weight",
                                       "layer2.conv1.weight", "layer2.conv2.weight",
                                       "layer2.downsample.0.weight"});
  CHECK(twin.masks().sparsity() == Approx(0.65).margin(0.01));
  auto copy = masked_copy(net, twin.masks());
  net->train();
  copy->train();
  auto x = torch::randn({4, 3, 8, 8}, torch::kDouble);
  auto y = twin.forward(x);
  auto y_ref = copy->forward(x);
  CHECK(close(y, y_ref, 0.0, 1e-6));
  (y.pow(3)).sum().backward();
  (y_ref.pow(3)).sum().backward();
  check_grads(*net, *copy, twin.masks(), 1e-6);
  // Shared policy: the twin's pass updated the model's running statistics exactly as the copy's own.
  check_buffers_equal(*net, *copy, 1e-12);
  CHECK(net->bn1->num_batches_tracked.item<int64_t>() == 1);

  SECTION("eval mode and NoGradGuard") {
    net->eval();
    copy->eval();
    torch::NoGradGuard no_grad;
    auto z = twin.forward(x);
    CHECK_FALSE(z.requires_grad());
    CHECK(close(z, copy->forward(x), 0.0, 1e-6));
  }
}

TEST_CASE("a user-defined layer opts in through register_prunable", "[twin][slots]") {
  ohem::register_prunable<ScaledDenseImpl>("ScaledDense", &ScaledDenseImpl::kernel);
  UserNet net;
  net->to(torch::kDouble);
  PrunedTwin<UserNet> twin(net, TwinOptions().masks(MaskOptions().ratio(0.5)));
  REQUIRE(twin.slots().size() == 2);
  CHECK(twin.slots()[0].name == "dense1.kernel");
  CHECK(twin.slots()[0].type == "ScaledDense");
  CHECK(twin.slots()[0].kind == LayerKind::Custom);
  auto copy = masked_copy(net, twin.masks());
  auto x = torch::randn({3, 6}, torch::kDouble);
  auto y = twin.forward(x);
  auto y_ref = copy->forward(x);
  CHECK(close(y, y_ref, 0.0, 1e-6));
  y.exp().sum().backward();
  y_ref.exp().sum().backward();
  check_grads(*net, *copy, twin.masks(), 1e-6);
  CHECK(net->dense1->kernel.is_same(net->named_parameters()["dense1.kernel"]));
}

TEST_CASE("twin of a TorchScript module equals an explicitly masked copy", "[twin][script]") {
  auto net = script_net();
  net.train();
  PrunedTwin<torch::jit::Module> twin(net);
  REQUIRE(twin.slots().size() == 2);  // conv1, conv2; the Linear head is not masked by the recipe
  CHECK(twin.slots()[0].name == "conv1.weight");
  // A second module of the same structure with the masked values copied in (jit::Module::clone() is no
  // independent copy for autograd: its parameters are clone()s that backpropagate into the original).
  auto copy = script_net();
  {
    torch::NoGradGuard no_grad;
    std::map<std::string, torch::Tensor> source;
    for (const auto& p : net.named_parameters()) source[p.name] = p.value;
    for (const auto& b : net.named_buffers()) source[b.name] = b.value;
    for (const auto& p : copy.named_parameters()) {
      p.value.copy_(source.at(p.name));
      if (twin.masks().contains(p.name)) p.value.mul_(twin.masks().at(p.name));
    }
    for (const auto& b : copy.named_buffers()) b.value.copy_(source.at(b.name));
  }
  auto x = torch::randn({2, 3, 5, 5}, torch::kDouble);
  auto y = twin.forward(x).toTensor();
  auto y_ref = copy.forward({x}).toTensor();
  CHECK(close(y, y_ref, 0.0, 1e-6));
  y.pow(2).sum().backward();
  y_ref.pow(2).sum().backward();
  auto ref = copy.named_parameters();
  std::map<std::string, torch::Tensor> ref_grads;
  for (const auto& p : ref) ref_grads[p.name] = p.value.grad();
  for (const auto& p : net.named_parameters()) {
    INFO("parameter " << p.name);
    auto expected = ref_grads.at(p.name);
    if (twin.masks().contains(p.name)) expected = expected * twin.masks().at(p.name);
    CHECK(close(p.value.grad(), expected, 0.0, 1e-6));
  }
  // The weight attributes are the original parameters again.
  for (const auto& s : twin.slots()) CHECK(s.handle.get().is_same(s.parameter));
  // Shared BatchNorm: running statistics updated like the copy's.
  CHECK(close(net.attr("bn1").toModule().attr("running_mean").toTensor(),
              copy.attr("bn1").toModule().attr("running_mean").toTensor(), 0.0, 1e-12));
}

TEST_CASE("TorchScript BatchNorm policies", "[twin][script][batchnorm]") {
  auto net = script_net();
  net.train();
  auto bn = net.attr("bn1").toModule();
  PrunedTwin<torch::jit::Module> twin(net, TwinOptions().batchnorm(BatchNormPolicy::Frozen));
  auto before = bn.attr("running_mean").toTensor().clone();
  twin.forward(torch::randn({2, 3, 5, 5}, torch::kDouble));
  CHECK(ohem_test::bit_identical(bn.attr("running_mean").toTensor(), before));
  CHECK(bn.attr("num_batches_tracked").toTensor().item<int64_t>() == 0);
}

TEST_CASE("forward takes the module's own arguments", "[twin]") {
  TwoInput net;
  PrunedTwin<TwoInput> twin(net);
  auto copy = masked_copy(net, twin.masks());
  auto x = torch::randn({2, 2, 5});
  auto b = torch::randn({1});
  CHECK(close(twin.forward(x, 2.5, b), copy->forward(x, 2.5, b), 0.0, 1e-6));
  CHECK(close(twin(x, 0.5, b), copy->forward(x, 0.5, b), 0.0, 1e-6));

  // A std::shared_ptr<Impl> works as well as the holder.
  std::shared_ptr<TwoInputImpl> ptr = net.ptr();
  PrunedTwin<std::shared_ptr<TwoInputImpl>> twin2(ptr);
  CHECK(close(twin2.forward(x, 2.5, b), copy->forward(x, 2.5, b), 0.0, 1e-6));
}

TEST_CASE("handles are restored after a scope, also when the forward throws", "[twin][scope]") {
  ResNetish net;
  PrunedTwin<ResNetish> twin(net);
  std::vector<torch::Tensor> handles_before;
  for (const auto& s : twin.slots()) handles_before.push_back(s.handle.get());
  auto values = snapshot(handles_before);
  auto buffers = snapshot(net->buffers());

  auto check_restored = [&] {
    for (size_t i = 0; i < twin.slots().size(); ++i) {
      const auto& s = twin.slots()[i];
      CHECK(s.handle.get().is_same(handles_before[i]));
      CHECK(s.handle.get().is_same(s.parameter));
      CHECK(ohem_test::bit_identical(s.parameter, values[i]));
    }
    CHECK(net->conv1->weight.is_same(net->named_parameters()["conv1.weight"]));
  };
  {
    auto scope = twin.scope();
    CHECK_FALSE(net->conv1->weight.is_same(net->named_parameters()["conv1.weight"]));
    CHECK(
        close(net->conv1->weight, net->named_parameters()["conv1.weight"] * twin.masks().at("conv1.weight")));
  }
  check_restored();
  // A wrong input shape makes the convolution throw inside the scope.
  CHECK_THROWS_AS(twin.forward(torch::randn({2, 5, 8, 8})), c10::Error);
  check_restored();
  // The failed forward may have touched no statistics (it threw in the first convolution).
  for (size_t i = 0; i < buffers.size(); ++i) CHECK(ohem_test::bit_identical(net->buffers()[i], buffers[i]));
  // A new scope opens normally after the exception.
  CHECK_NOTHROW(twin.forward(torch::randn({2, 3, 8, 8})));
  check_restored();
}

TEST_CASE("parameters and optimizers are untouched", "[twin]") {
  ResNetish net;
  auto params_before = net->parameters();
  torch::optim::SGD before(net->parameters(), 0.1);
  PrunedTwin<ResNetish> twin(net);
  auto y = twin.forward(torch::randn({2, 3, 8, 8}));
  torch::optim::SGD after(net->parameters(), 0.1);
  auto params_after = net->parameters();
  REQUIRE(params_before.size() == params_after.size());
  std::set<const void*> seen;
  for (size_t i = 0; i < params_after.size(); ++i) {
    CHECK(params_after[i].is_same(params_before[i]));
    CHECK(params_after[i].is_leaf());
    CHECK(seen.insert(params_after[i].unsafeGetTensorImpl()).second);  // no parameter twice
  }
  const auto& g1 = before.param_groups()[0].params();
  const auto& g2 = after.param_groups()[0].params();
  REQUIRE(g1.size() == g2.size());
  for (size_t i = 0; i < g1.size(); ++i) CHECK(g1[i].is_same(g2[i]));
  // The gradient reaches the optimizer's own tensors, and a step changes the shared weights.
  y.sum().backward();
  CHECK(g1[0].grad().defined());
  auto w = net->conv1->weight.detach().clone();
  before.step();
  CHECK_FALSE(torch::equal(w, net->conv1->weight));
}

TEST_CASE("nested or concurrent masked scopes on one module are refused", "[twin][scope][errors]") {
  ResNetish net;
  PrunedTwin<ResNetish> twin(net);
  PrunedTwin<ResNetish> other(net, TwinOptions().masks(MaskOptions().ratio(0.3)));
  {
    auto scope = twin.scope();
    CHECK_THROWS_WITH(twin.scope(), Catch::Contains("already inside a masked scope"));
    CHECK_THROWS_WITH(other.forward(torch::randn({1, 3, 8, 8})), Catch::Contains("nested or concurrent"));
    CHECK_THROWS_WITH(twin.refresh(), Catch::Contains("cannot recompute masks inside a masked scope"));
    // From another thread too.
    std::string message;
    std::thread t([&] {
      try {
        auto s = other.scope();
      } catch (const c10::Error& e) {
        message = e.what_without_backtrace();
      }
    });
    t.join();
    CHECK_THAT(message, Catch::Contains("already inside a masked scope"));
  }
  // The refusals left everything intact: both twins work afterwards.
  CHECK_NOTHROW(twin.forward(torch::randn({1, 3, 8, 8})));
  CHECK_NOTHROW(other.forward(torch::randn({1, 3, 8, 8})));
}

TEST_CASE("a full-model forward under FullForwardGuard and a masked scope exclude each other",
          "[twin][scope][errors]") {
  ResNetish net;
  PrunedTwin<ResNetish> twin(net);
  const auto x = torch::randn({1, 3, 8, 8});
  torch::Tensor full_expected;
  {
    torch::NoGradGuard no_grad;
    full_expected = net->forward(x);
  }
  {
    // A full forward is running (on this thread); a twin forward from another thread is refused
    // instead of swapping masked weights under it.
    auto guard = twin.full_forward();
    auto second = twin.full_forward();  // full forwards do not conflict with each other
    std::string message;
    std::thread t([&] {
      try {
        twin.forward(x);
      } catch (const c10::Error& e) {
        message = e.what_without_backtrace();
      }
    });
    t.join();
    CHECK_THAT(message, Catch::Contains("running a full-model forward under a FullForwardGuard (2 open)"));
    torch::NoGradGuard no_grad;
    CHECK(torch::equal(net->forward(x), full_expected));  // the weights were never masked
  }
  {
    // A masked scope is open (as a twin forward on another thread would hold it): a guarded full forward
    // is refused instead of reading masked weights.
    auto scope = twin.scope();
    CHECK(twin.in_scope());
    CHECK_THROWS_WITH(twin.full_forward(), Catch::Contains("is inside a masked scope"));
  }
  // Both refusals left nothing behind.
  CHECK_FALSE(twin.in_scope());
  CHECK_NOTHROW(twin.forward(x));
  auto guard = twin.full_forward();
  torch::NoGradGuard no_grad;
  CHECK(torch::equal(net->forward(x), full_expected));
}

TEST_CASE("a weight reshaped after its masks were computed is refused naming the layer",
          "[twin][scope][errors]") {
  torch::manual_seed(3);
  auto net = torch::nn::Sequential(torch::nn::Conv2d(torch::nn::Conv2dOptions(2, 4, 3)),
                                   torch::nn::Conv2d(torch::nn::Conv2dOptions(4, 4, 3)));
  PrunedTwin<torch::nn::Sequential> twin(net);
  CHECK_NOTHROW(twin.forward(torch::randn({1, 2, 8, 8})));
  // Another shape for the second convolution's weight: an element-wise product would broadcast the old
  // [4, 4, 3, 3] mask against it, so the scope must refuse it and name the layer.
  auto conv = net[1]->as<torch::nn::Conv2d>();
  {
    torch::NoGradGuard no_grad;
    conv->weight.set_data(torch::randn({4, 1, 3, 3}));
  }
  CHECK_THROWS_WITH(
      twin.forward(torch::randn({1, 2, 8, 8})),
      Catch::Contains("layer \"1.weight\" has shape [4, 1, 3, 3] but its mask has shape [4, 4, 3, 3]"));
  // The refusal restored every handle: the module's own weights are its parameters again.
  CHECK(conv->weight.sizes() == torch::IntArrayRef({4, 1, 3, 3}));
  CHECK(net[0]->as<torch::nn::Conv2d>()->weight.is_same(net->parameters()[0]));
  // Recomputing the masks from the new weights makes the twin usable again.
  twin.refresh();
  CHECK(twin.masks().at("1.weight").sizes() == torch::IntArrayRef({4, 1, 3, 3}));
}

TEST_CASE("BatchNorm policies", "[twin][batchnorm]") {
  ResNetish net;
  net->to(torch::kDouble);
  net->train();
  auto x = torch::randn({4, 3, 8, 8}, torch::kDouble);

  SECTION("Frozen leaves the running statistics unchanged") {
    PrunedTwin<ResNetish> twin(net, TwinOptions().batchnorm(BatchNormPolicy::Frozen));
    auto copy = masked_copy(net, twin.masks());
    auto before = snapshot(net->buffers());
    auto y = twin.forward(x);
    for (size_t i = 0; i < before.size(); ++i) CHECK(ohem_test::bit_identical(net->buffers()[i], before[i]));
    // In training mode it still normalises with batch statistics, as the masked copy does.
    CHECK(close(y, copy->forward(x), 0.0, 1e-6));
    // The buffers are the module's own tensors again.
    CHECK(net->bn1->running_mean.is_same(net->named_buffers()["bn1.running_mean"]));
  }
  SECTION("Separate keeps the twin's own statistics and uses them in eval mode") {
    PrunedTwin<ResNetish> twin(net, TwinOptions().batchnorm(BatchNormPolicy::Separate));
    auto copy = masked_copy(net, twin.masks());
    auto before = snapshot(net->buffers());
    twin.forward(x);
    copy->forward(x);
    twin.forward(x * 2);
    copy->forward(x * 2);
    for (size_t i = 0; i < before.size(); ++i) CHECK(ohem_test::bit_identical(net->buffers()[i], before[i]));
    auto own = twin.named_twin_buffers();
    auto copy_buffers = copy->named_buffers();
    REQUIRE(own.size() == copy_buffers.size());
    for (const auto& [name, t] : own) {
      INFO(name);
      CHECK(close(t, copy_buffers[name], 0.0, 1e-12));
    }
    net->eval();
    copy->eval();
    CHECK(close(twin.forward(x), copy->forward(x), 0.0, 1e-6));
    // The full model in eval mode still uses its own, untouched statistics.
    auto plain = masked_copy(net, ohem::MaskSet());
    plain->eval();
    CHECK(close(net->forward(x), plain->forward(x), 0.0, 1e-12));
  }
}

TEST_CASE("mask refresh schedule", "[twin]") {
  auto net = Sequential(Conv2d(1, 4, 3), ReLU(), Conv2d(4, 2, 3));
  auto perturb = [&] {
    torch::NoGradGuard no_grad;
    for (auto& p : net->parameters()) p.copy_(torch::randn_like(p));
  };
  SECTION("once (the recipe): masks stay until refresh()") {
    PrunedTwin<Sequential> twin(net);
    auto m0 = twin.masks().mask(0).clone();
    perturb();
    for (int i = 0; i < 5; ++i) CHECK_FALSE(twin.step());
    CHECK(torch::equal(twin.masks().mask(0), m0));
    twin.refresh();
    CHECK_FALSE(torch::equal(twin.masks().mask(0), m0));
    // The new masks are those of the current weights.
    auto expected = ohem::compute_masks(ohem::find_slots(*net));
    CHECK(torch::equal(twin.masks().mask(0), expected.mask(0)));
  }
  SECTION("every N steps") {
    PrunedTwin<Sequential> twin(net, TwinOptions().refresh_every(2));
    auto m0 = twin.masks().mask(0).clone();
    perturb();
    CHECK_FALSE(twin.step());
    CHECK(torch::equal(twin.masks().mask(0), m0));
    CHECK(twin.step());
    CHECK_FALSE(torch::equal(twin.masks().mask(0), m0));
    CHECK(twin.steps() == 2);
  }
  CHECK_THROWS_WITH(PrunedTwin<Sequential>(net, TwinOptions().refresh_every(-1)),
                    Catch::Contains("refresh_every must be >= 0, got -1"));
}

TEST_CASE("float32 twin and mask save/load through the twin", "[twin][io]") {
  ResNetish net;
  PrunedTwin<ResNetish> twin(net, TwinOptions().masks(MaskOptions().ratio(0.5)));
  auto copy = masked_copy(net, twin.masks());
  auto x = torch::randn({2, 3, 8, 8});
  CHECK(close(twin.forward(x), copy->forward(x), 1e-5, 1e-5));

  const auto path = ohem_test::temp_path("twin_masks.pt");
  twin.save_masks(path);
  PrunedTwin<ResNetish> restored(net, TwinOptions().masks(MaskOptions().ratio(0.1)));
  restored.load_masks(path);
  for (size_t i = 0; i < twin.masks().size(); ++i)
    CHECK(torch::equal(restored.masks().mask(i), twin.masks().mask(i)));

  // Masks of another architecture are refused, naming the layer.
  auto other = Sequential(Conv2d(3, 4, 3));
  PrunedTwin<Sequential> other_twin(other);
  const auto other_path = ohem_test::temp_path("other_masks.pt");
  other_twin.save_masks(other_path);
  CHECK_THROWS_WITH(restored.load_masks(other_path), Catch::Contains("no mask for layer \"conv1.weight\""));

  // Built with given masks: none computed; each refresh computes them once.
  CHECK(twin.mask_computations() == 1);
  CHECK(restored.mask_computations() == 1);  // load_masks is not a computation
  PrunedTwin<ResNetish> given(net, ohem::MaskSet::load(path), TwinOptions().masks(MaskOptions().ratio(0.1)));
  CHECK(given.mask_computations() == 0);
  for (size_t i = 0; i < twin.masks().size(); ++i)
    CHECK(torch::equal(given.masks().mask(i), twin.masks().mask(i)));
  given.refresh();
  CHECK(given.mask_computations() == 1);
  CHECK(given.masks().sparsity() == Approx(0.1).margin(0.01));
  CHECK_THROWS_WITH(PrunedTwin<ResNetish>(net, ohem::MaskSet::load(other_path)),
                    Catch::Contains("no mask for layer \"conv1.weight\""));
}

TEST_CASE("the one-pass masked multiply equals x * mask, with +0 where pruned", "[twin][kernel]") {
  torch::manual_seed(4);
  for (auto dtype : {torch::kFloat, torch::kDouble}) {
    for (int64_t n : {1, 15, 16, 17, 33, 1000, 4099}) {
      INFO("dtype " << dtype << ", n " << n);
      auto x = torch::randn({n}, dtype);
      auto mask = torch::rand({n}) > 0.4;
      // Non-finite values: pruned ones vanish, kept ones pass through.
      x[0] = std::numeric_limits<double>::infinity();
      if (n > 2) x[n - 1] = std::numeric_limits<double>::quiet_NaN();
      REQUIRE(ohem::detail::masked_mul_supported(x, mask));
      auto got = ohem::detail::masked_mul(x, mask);
      auto expected = torch::where(mask, x, torch::zeros_like(x));
      const auto bits = dtype == torch::kFloat ? torch::kInt : torch::kLong;  // NaN-aware: compare the bits
      CHECK(torch::equal(got.view(bits), expected.view(bits)));
      // Into an output 4 bytes off 16-byte alignment (no streaming stores).
      auto unaligned = torch::empty({n + 1}, dtype).narrow(0, 1, n);
      ohem::detail::masked_mul_into(unaligned, x, mask);
      CHECK(torch::equal(unaligned.view(bits), expected.view(bits)));
      CHECK_FALSE(torch::signbit(got.masked_select(~mask)).any().item<bool>());
    }
  }
  // Unsupported inputs (non-contiguous, integer) take LibTorch's path with the same result.
  auto x = torch::randn({6, 5}).t();
  auto mask = (torch::rand({5, 6}) > 0.5);
  CHECK_FALSE(ohem::detail::masked_mul_supported(x, mask));
  CHECK(torch::equal(ohem::detail::masked_mul(x, mask), x * mask.to(torch::kFloat)));
}

TEST_CASE("masked-weight buffers are reused only when no graph holds them", "[twin][scope]") {
  torch::manual_seed(21);
  auto net = Sequential(Conv2d(Conv2dOptions(2, 3, 3).bias(false)), Flatten(), Linear(3 * 4 * 4, 1));
  net->to(torch::kDouble);
  auto conv = net[0]->as<Conv2d>();
  PrunedTwin<Sequential> twin(net, TwinOptions().masks(MaskOptions().ratio(0.5)));
  const torch::Tensor mask = twin.masks().mask(0).to(torch::kDouble);
  auto masked_ptr = [&] {
    auto scope = twin.scope();
    return conv->weight.data_ptr();
  };
  auto x = torch::randn({2, 2, 6, 6}, torch::kDouble).requires_grad_(true);

  // The input gradient of the first forward, computed by hand with the weights of that moment.
  const torch::Tensor w_then = conv->weight.detach().clone();
  auto y_then = torch::nn::functional::conv2d(x, w_then * mask);
  auto expected = torch::autograd::grad({net[2]->as<Linear>()->forward(y_then.flatten(1)).sum()}, {x})[0];

  auto y1 = twin.forward(x);  // its graph holds the scope's w ⊙ m
  {
    torch::NoGradGuard no_grad;
    conv->weight.mul_(3.0);  // an optimizer step between two twin forwards
  }
  const void* second = masked_ptr();  // the first graph still holds its buffer: a new one
  auto got = torch::autograd::grad({y1.sum()}, {x})[0];
  CHECK(close(got, expected, 0, 1e-12));  // the first graph's masked weights were not overwritten

  y1 = torch::Tensor();
  CHECK(masked_ptr() == second);  // nothing holds the buffer now: reused
  CHECK(masked_ptr() == second);

  PrunedTwin<Sequential> fresh(net, TwinOptions().masks(MaskOptions().ratio(0.5)).reuse_buffers(false));
  auto copy_out = torch::nn::functional::conv2d(x, conv->weight * fresh.masks().mask(0).to(torch::kDouble));
  CHECK(close(fresh.forward(x), net[2]->as<Linear>()->forward(copy_out.flatten(1)), 0, 1e-12));
}
