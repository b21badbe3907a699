// Tests that need a CUDA device. They are hidden ("[.][cuda]"): `ohem_tests` alone does not run them,
// `ohem_tests "[cuda]"` does, and CTest runs them as its one test "cuda" (label cuda), reported as
// skipped where torch::cuda::is_available() is false (tests/main.cpp, tests/CMakeLists.txt).
// scripts/gpu-check.sh runs them on a machine with a GPU.
#include "support.hpp"

#include <ohem/self_competitor.hpp>
#include <ohem/task_losses.hpp>
#include <ohem/twin.hpp>

#include <ATen/autocast_mode.h>

#include <string>
#include <vector>

namespace {

namespace nn = torch::nn;
using ohem_test::bit_identical;
using ohem_test::close;

const torch::Device cuda_device(torch::kCUDA, 0);
// float32 convolutions may use TF32 on the GPU (cuDNN's default): float32 comparisons allow for it.
constexpr double f32_rtol = 1e-3, f32_atol = 1e-4;

// Conv-BN-ReLU, a strided conv with BN, dropout (p = 0 leaves it out), pooling and a linear head.
nn::Sequential small_net(double dropout) {
  nn::Sequential net(nn::Conv2d(nn::Conv2dOptions(3, 8, 3).padding(1).bias(false)), nn::BatchNorm2d(8),
                     nn::ReLU(), nn::Conv2d(nn::Conv2dOptions(8, 6, 3).stride(2)), nn::BatchNorm2d(6),
                     nn::ReLU());
  if (dropout > 0) net->push_back(nn::Dropout(dropout));
  net->push_back(nn::AdaptiveAvgPool2d(1));
  net->push_back(nn::Flatten());
  net->push_back(nn::Linear(6, 1));
  return net;
}

nn::Sequential clone_of(const nn::Sequential& net) {
  return nn::Sequential(std::dynamic_pointer_cast<nn::SequentialImpl>(net->clone()));
}

// The net with each masked weight multiplied by its mask by hand.
nn::Sequential multiplied_by_masks(const nn::Sequential& net, const ohem::MaskSet& masks) {
  auto copy = clone_of(net);
  torch::NoGradGuard no_grad;
  for (auto& p : copy->named_parameters()) {
    if (masks.contains(p.key())) p.value().mul_(masks.at(p.key()).to(p.value().dtype()));
  }
  return copy;
}

// Turns CUDA autocast on for its lifetime (the C++ API changed names in LibTorch 2.4).
struct CudaAutocast {
  CudaAutocast() { set(true); }
  ~CudaAutocast() {
    set(false);
    at::autocast::clear_cache();
  }
  CudaAutocast(const CudaAutocast&) = delete;
  CudaAutocast& operator=(const CudaAutocast&) = delete;
  static void set(bool on) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_enabled(at::kCUDA, on);
#else
    at::autocast::set_enabled(on);
#endif
  }
};

// One self-competitor step (forward, backward) from a fixed CPU and CUDA seed; what it leaves behind.
struct Step {
  torch::Tensor total, hardness;
  std::vector<torch::Tensor> grads, buffers;
  torch::Tensor next_cuda_random;  // the CUDA generator's next draws after the step
};

Step one_step(nn::Sequential net, ohem::SelfCompetitorOptions options, const torch::Tensor& x,
              const torch::Tensor& mos) {
  ohem::SelfCompetitor sc(net, ohem::MosMSELoss{}, options);
  torch::manual_seed(99);  // seeds the CUDA generators too
  ohem::OhemLossResult r = sc(x, mos);
  r.backward();
  Step s{r.total.detach().cpu(), r.hardness.cpu(), {}, {}, torch::rand({16}, x.options())};
  for (const auto& p : net->parameters()) {
    REQUIRE(p.grad().defined());
    CHECK(p.grad().device() == p.device());
    s.grads.push_back(p.grad().cpu());
  }
  for (const auto& b : net->buffers()) s.buffers.push_back(b.cpu());
  for (size_t k = 0; k < sc.num_twins(); ++k) {
    for (const auto& b : sc.twin(k).named_twin_buffers()) s.buffers.push_back(b.second.cpu());
  }
  return s;
}

void check_same_step(const Step& joint, const Step& seq, double rtol, double atol) {
  CHECK(close(seq.total, joint.total, rtol, atol));
  CHECK(close(seq.hardness, joint.hardness, rtol, atol));
  REQUIRE(seq.grads.size() == joint.grads.size());
  for (size_t i = 0; i < joint.grads.size(); ++i) {
    INFO("parameter " << i);
    CHECK(close(seq.grads[i], joint.grads[i], rtol, atol));
  }
  REQUIRE(seq.buffers.size() == joint.buffers.size());
  for (size_t i = 0; i < joint.buffers.size(); ++i) {
    INFO("buffer " << i);
    CHECK(close(seq.buffers[i], joint.buffers[i], rtol, atol));
  }
  CHECK(bit_identical(seq.next_cuda_random, joint.next_cuda_random));
}

}  // namespace

TEST_CASE("the twin on CUDA: masks, masked weights and twin buffers on the weights' device", "[.][cuda]") {
  OHEM_REQUIRE_CUDA();
  torch::manual_seed(3);
  auto net = small_net(0);
  auto on_cpu = clone_of(net);
  net->to(cuda_device);
  ohem::PrunedTwin<nn::Sequential> twin(net, ohem::TwinOptions().batchnorm(ohem::BatchNormPolicy::Separate));
  ohem::PrunedTwin<nn::Sequential> cpu_twin(on_cpu);
  REQUIRE(twin.masks().size() > 0);
  for (size_t i = 0; i < twin.masks().size(); ++i) {
    INFO("mask " << twin.masks().name(i));
    CHECK(twin.masks().mask(i).device() == cuda_device);
    // Masks computed from the weights on the GPU are those computed from the same weights on the CPU.
    CHECK(bit_identical(twin.masks().mask(i), cpu_twin.masks().at(twin.masks().name(i))));
  }
  for (const auto& b : twin.named_twin_buffers()) {
    INFO("twin buffer " << b.first);
    CHECK(b.second.device() == cuda_device);
  }

  auto copy = multiplied_by_masks(net, twin.masks());
  auto x = torch::randn({4, 3, 10, 10}, cuda_device);
  auto y = twin.forward(x);
  auto y_ref = copy->forward(x);
  CHECK(y.device() == cuda_device);
  CHECK(close(y, y_ref, f32_rtol, f32_atol));
  y.square().sum().backward();
  y_ref.square().sum().backward();
  auto got = net->named_parameters();
  for (const auto& p : copy->named_parameters()) {
    INFO("parameter " << p.key());
    const torch::Tensor& g = got[p.key()].grad();
    REQUIRE(g.defined());
    CHECK(g.device() == cuda_device);
    auto expected = p.value().grad();  // d/dw f(w ⊙ m) = m ⊙ f'(w ⊙ m)
    if (twin.masks().contains(p.key())) expected = expected * twin.masks().at(p.key());
    CHECK(close(g, expected, f32_rtol, f32_atol));
  }
  for (const auto& b : twin.named_twin_buffers()) CHECK(b.second.device() == cuda_device);

  // Moving the model after the twin was built: the masks follow the weights.
  net->to(torch::kCPU);
  auto y_cpu = twin.forward(x.cpu());
  CHECK(y_cpu.device().is_cpu());
  CHECK(close(y_cpu, multiplied_by_masks(net, twin.masks())->forward(x.cpu()), f32_rtol, f32_atol));
}

TEST_CASE("Joint and Sequential modes agree on CUDA, dropout replayed from the CUDA generator", "[.][cuda]") {
  OHEM_REQUIRE_CUDA();
  torch::manual_seed(7);
  auto net = small_net(0.3);
  net->to(cuda_device, torch::kDouble);
  auto x = torch::randn({6, 3, 10, 10}, torch::dtype(torch::kDouble).device(cuda_device));
  auto mos = torch::rand({6}, x.options()) * 4 + 1;
  // Dropout draws from the CUDA generator: without a replay two forwards differ.
  CHECK_FALSE(bit_identical(net->forward(x), net->forward(x)));

  auto options = ohem::SelfCompetitorOptions().num_twins(2).twin(
      ohem::TwinOptions()
          .masks(ohem::MaskOptions().criterion(ohem::MaskCriterion::Random).ratio(0.5).seed(5))
          .batchnorm(ohem::BatchNormPolicy::Separate));
  auto joint = one_step(clone_of(net), options, x, mos);
  auto seq = one_step(clone_of(net), options.mode(ohem::SelfCompetitorMode::Sequential), x, mos);
  // cuDNN may pick other algorithms for the two modes' convolutions: equal up to float64 rounding.
  check_same_step(joint, seq, 0, 1e-9);
}

TEST_CASE("SelfCompetitor on CUDA in mixed precision: float16 weights' masks, autocast", "[.][cuda]") {
  OHEM_REQUIRE_CUDA();
  torch::manual_seed(13);
  auto net = small_net(0);
  net->to(cuda_device);

  SECTION("the masks of float16 weights are those of the same values in float32") {
    auto half = clone_of(net);
    half->to(torch::kHalf);
    auto widened = clone_of(half);
    widened->to(torch::kFloat);
    ohem::PrunedTwin<nn::Sequential> half_twin(half);
    ohem::PrunedTwin<nn::Sequential> float_twin(widened);
    REQUIRE(half_twin.masks().size() == float_twin.masks().size());
    for (size_t i = 0; i < half_twin.masks().size(); ++i) {
      INFO("mask " << half_twin.masks().name(i));
      CHECK(half_twin.masks().mask(i).device() == cuda_device);
      CHECK(bit_identical(half_twin.masks().mask(i), float_twin.masks().mask(i)));
    }
    auto x = torch::randn({4, 3, 10, 10}, torch::dtype(torch::kHalf).device(cuda_device));
    auto y = half_twin.forward(x);
    CHECK(y.scalar_type() == torch::kHalf);
    CHECK(close(y, multiplied_by_masks(half, half_twin.masks())->forward(x), 1e-2, 1e-2));
  }

  SECTION("autocast: float16 compute, float32 gradients, Sequential equals Joint") {
    auto x = torch::randn({6, 3, 10, 10}, cuda_device);
    auto mos = torch::rand({6}, cuda_device) * 4 + 1;
    auto reference = one_step(clone_of(net), ohem::SelfCompetitorOptions(), x, mos);  // float32
    Step joint, seq;
    {
      CudaAutocast autocast;
      CHECK(clone_of(net)->forward(x).scalar_type() == torch::kHalf);
      joint = one_step(clone_of(net), ohem::SelfCompetitorOptions(), x, mos);
      seq = one_step(clone_of(net), ohem::SelfCompetitorOptions().mode(ohem::SelfCompetitorMode::Sequential),
                     x, mos);
    }
    for (const auto& g : joint.grads) CHECK(g.scalar_type() == torch::kFloat);
    CHECK(torch::isfinite(joint.total).all().item<bool>());
    CHECK(close(joint.total.to(torch::kFloat), reference.total, 2e-2, 1e-3));
    check_same_step(joint, seq, 1e-2, 1e-3);
  }
}
