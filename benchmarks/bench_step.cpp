// Case 3 of docs/benchmarks.md: one pairwise training step of BaseCNN (ResNet-18 → pool → L2-normalise →
// Linear), 4 pairs of 128x128 images, fidelity loss, Adam (lr 1e-4, weight decay 5e-4): the plain step vs
// the OHEM step (ohem::SelfCompetitor) in Joint mode (the recipe) and Sequential mode. Counters: peak
// tensor memory of a step above what was live before it (exact, from a counting CPU allocator), after
// one warm-up step that allocates what persists (gradients, Adam state, the twin's mask multipliers).
#include <toolkit/pairwise_trainer.hpp>
#include "memory.hpp"

#include <ohem/self_competitor.hpp>
#include <ohem/task_losses.hpp>

#include <benchmark/benchmark.h>

#include <cstdlib>

namespace {

const bool kCounting = (ohem_bench::install_counting_allocator(), true);
// OHEM_BENCH_DEVICE=cuda runs the steps on the GPU (scripts/gpu-check.sh); each timed step then ends with
// a device synchronisation, and the memory counters (CPU tensors only) say nothing about the GPU's.
const torch::Device kDevice(std::getenv("OHEM_BENCH_DEVICE") ? std::getenv("OHEM_BENCH_DEVICE") : "cpu");

struct Batch {
  torch::Tensor x1 = torch::randn({4, 3, 128, 128}).to(kDevice);
  torch::Tensor x2 = torch::randn({4, 3, 128, 128}).to(kDevice);
  torch::Tensor g = (torch::rand({4}) > 0.5).to(kDevice, torch::kFloat);
};

train_pairwise::BaseCNN make_model() {
  torch::manual_seed(0);
  train_pairwise::BaseCNN net("resnet18", 64);
  net->to(kDevice);
  net->train();
  return net;
}

// Runs one warm-up step (gradients, the Adam state and the twin's persistent state — mask multipliers and
// masked-weight buffers — are allocated once), then times `step` and reports its peak tensor memory above
// what was live before each step (peak_MB), the persistent memory live between steps (persistent_MB:
// model, gradients, Adam state, twin state, the batch) and the absolute peak (total_peak_MB).
template <typename Step>
void measure(benchmark::State& state, Step&& run_step) {
  auto step = [&] {
    run_step();
    if (kDevice.is_cuda()) torch::cuda::synchronize();
  };
  step();
  int64_t peak = 0, total = 0, persistent = 0;
  for (auto _ : state) {
    ohem_bench::CountingAllocator::reset_peak();
    const int64_t before = ohem_bench::CountingAllocator::live();
    step();
    peak = std::max(peak, ohem_bench::CountingAllocator::peak() - before);
    total = std::max(total, ohem_bench::CountingAllocator::peak());
    persistent = std::max(persistent, before);
  }
  const double mb = 1024.0 * 1024.0;
  state.counters["peak_MB"] = static_cast<double>(peak) / mb;
  state.counters["persistent_MB"] = static_cast<double>(persistent) / mb;
  state.counters["total_peak_MB"] = static_cast<double>(total) / mb;
}

void BM_PlainStep(benchmark::State& state) {
  auto net = make_model();
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(1e-4).weight_decay(5e-4));
  ohem::PairwiseFidelityLoss fidelity;
  Batch b;
  auto step = [&] {
    // One forward per statement: the recipe's order (x1, then x2) for BatchNorm statistics.
    const auto mu1 = net->forward(b.x1);
    const auto mu2 = net->forward(b.x2);
    auto loss = fidelity(mu1, mu2, b.g);
    opt.zero_grad();
    loss.backward();
    opt.step();
  };
  measure(state, step);
}

// The optimizer step alone (Adam on every parameter, gradients from one backward): the part of every step
// that OHEM does not double.
void BM_AdamStep(benchmark::State& state) {
  auto net = make_model();
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(1e-4).weight_decay(5e-4));
  ohem::PairwiseFidelityLoss fidelity;
  Batch b;
  const auto mu1 = net->forward(b.x1);
  const auto mu2 = net->forward(b.x2);
  fidelity(mu1, mu2, b.g).backward();
  measure(state, [&] { opt.step(); });
}

void ohem_step(benchmark::State& state, ohem::SelfCompetitorMode mode, bool reuse_buffers = true) {
  auto net = make_model();
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(1e-4).weight_decay(5e-4));
  ohem::SelfCompetitor<train_pairwise::BaseCNN, ohem::PairwiseFidelityLoss> sc(
      net, ohem::PairwiseFidelityLoss{},
      ohem::SelfCompetitorOptions().mode(mode).twin(ohem::TwinOptions().reuse_buffers(reuse_buffers)));
  Batch b;
  auto step = [&] {
    opt.zero_grad();
    auto result = sc(std::make_pair(b.x1, b.x2), b.g);
    result.backward();
    opt.step();
    sc.step();
  };
  measure(state, step);
}

void BM_OhemStepJoint(benchmark::State& state) {
  ohem_step(state, ohem::SelfCompetitorMode::Joint);
}
void BM_OhemStepSequential(benchmark::State& state) {
  ohem_step(state, ohem::SelfCompetitorMode::Sequential);
}
// The same without the twin's masked-weight buffers (TwinOptions::reuse_buffers(false)): w ⊙ m is then
// allocated in every step and counts in its peak.
void BM_OhemStepJointNoReuse(benchmark::State& state) {
  ohem_step(state, ohem::SelfCompetitorMode::Joint, false);
}
void BM_OhemStepSequentialNoReuse(benchmark::State& state) {
  ohem_step(state, ohem::SelfCompetitorMode::Sequential, false);
}

}  // namespace

BENCHMARK(BM_PlainStep)->Unit(benchmark::kMillisecond)->MinTime(3.0);
BENCHMARK(BM_AdamStep)->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(BM_OhemStepJoint)->Unit(benchmark::kMillisecond)->MinTime(3.0);
BENCHMARK(BM_OhemStepSequential)->Unit(benchmark::kMillisecond)->MinTime(3.0);
BENCHMARK(BM_OhemStepJointNoReuse)->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(BM_OhemStepSequentialNoReuse)->Unit(benchmark::kMillisecond)->MinTime(1.0);
