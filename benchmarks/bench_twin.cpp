// Case 2 of docs/benchmarks.md: the twin's scope overhead. A forward of ResNet-18 (batch 8, 128x128,
// training mode, autograd on) through the pruned twin vs the plain forward of the same module, and the
// scope alone (entering: w ⊙ m for every masked layer; leaving: handles restored) without a forward.
#include "common/backbones.hpp"

#include <ohem/twin.hpp>

#include <benchmark/benchmark.h>

namespace {

struct Fixture {
  ohem_examples::ResNet net{ohem_examples::ResNetOptions("resnet18")};
  ohem::PrunedTwin<ohem_examples::ResNet> twin{net};
  torch::Tensor x = torch::randn({8, 3, 128, 128});
  Fixture() { net->train(); }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

void BM_PlainForward(benchmark::State& state) {
  auto& f = fixture();
  for (auto _ : state) benchmark::DoNotOptimize(f.net->forward(f.x));
}

void BM_TwinForward(benchmark::State& state) {
  auto& f = fixture();
  for (auto _ : state) benchmark::DoNotOptimize(f.twin.forward(f.x));
}

void BM_ScopeEnterExit(benchmark::State& state) {
  auto& f = fixture();
  for (auto _ : state) {
    auto scope = f.twin.scope();
    benchmark::ClobberMemory();
  }
  state.counters["masked_weights"] = static_cast<double>(f.twin.masks().numel());
}

}  // namespace

BENCHMARK(BM_PlainForward)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_TwinForward)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_ScopeEnterExit)->Unit(benchmark::kMillisecond);

#include "bench_main.hpp"
