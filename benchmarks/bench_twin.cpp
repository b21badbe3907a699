// Case 2 of docs/benchmarks.md: the twin's scope overhead. A forward of ResNet-18 (128x128, training mode,
// autograd on) through the pruned twin vs the plain forward of the same module, alternating in one loop,
// at batch 8 (the setting) and 32; the scope alone (entering: w ⊙ m for every masked layer; leaving:
// handles restored) without a forward; and the floor of any scope that materialises w ⊙ m: copying every
// masked weight into buffers allocated once. The scope and the copy start with cold caches, as in training,
// where a forward and a backward run between two scopes.
#include <toolkit/backbones.hpp>

#include <ohem/twin.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

namespace {

struct Fixture {
  ohem_examples::ResNet net{ohem_examples::ResNetOptions("resnet18")};
  ohem::PrunedTwin<ohem_examples::ResNet> twin{net};
  Fixture() { net->train(); }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

// Evicts the weights, masks and buffers from the caches (untimed): writes and reads 256 MB.
void flush_caches(benchmark::State& state) {
  static std::vector<char> scratch(256u << 20);
  state.PauseTiming();
  std::memset(scratch.data(), static_cast<int>(state.iterations() & 0x7f), scratch.size());
  int64_t sum = 0;
  for (size_t i = 0; i < scratch.size(); i += 64) sum += scratch[i];
  benchmark::DoNotOptimize(sum);
  state.ResumeTiming();
}

torch::Tensor input(const benchmark::State& state) {
  return torch::randn({state.range(0), 3, 128, 128});
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// A plain forward and a twin forward in each iteration, timed separately: both see the same machine
// state, and the medians (plain_ms, twin_ms, overhead = median per-iteration twin / plain − 1) are robust
// to a shared VM's drift. The iteration time is the pair's.
void BM_PlainVsTwinForward(benchmark::State& state) {
  using clock = std::chrono::steady_clock;
  auto& f = fixture();
  const torch::Tensor x = input(state);
  std::vector<double> plain, twin, ratio;
  for (auto _ : state) {
    const auto t0 = clock::now();
    benchmark::DoNotOptimize(f.net->forward(x));
    const auto t1 = clock::now();
    benchmark::DoNotOptimize(f.twin.forward(x));
    const auto t2 = clock::now();
    plain.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    twin.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
    ratio.push_back(twin.back() / plain.back());
    state.SetIterationTime(std::chrono::duration<double>(t2 - t0).count());
  }
  state.counters["plain_ms"] = median(plain);
  state.counters["twin_ms"] = median(twin);
  state.counters["overhead"] = median(ratio) - 1.0;
}

void BM_ScopeEnterExit(benchmark::State& state) {
  auto& f = fixture();
  for (auto _ : state) {
    flush_caches(state);
    auto scope = f.twin.scope();
    benchmark::ClobberMemory();
  }
  state.counters["masked_weights"] = static_cast<double>(f.twin.masks().numel());
}

// The bandwidth floor of materialising w ⊙ m: one copy of every masked weight into warm buffers.
void BM_CopyMaskedWeights(benchmark::State& state) {
  auto& f = fixture();
  std::vector<torch::Tensor> weights, buffers;
  for (const auto& slot : f.twin.slots()) {
    weights.push_back(slot.parameter.detach());
    buffers.push_back(torch::empty_like(weights.back()));
  }
  for (auto _ : state) {
    flush_caches(state);
    for (size_t i = 0; i < weights.size(); ++i) buffers[i].copy_(weights[i]);
    benchmark::ClobberMemory();
  }
}

}  // namespace

BENCHMARK(BM_PlainVsTwinForward)
    ->Arg(8)
    ->Arg(32)
    ->Unit(benchmark::kMillisecond)
    ->UseManualTime()
    ->MinTime(6.0);
BENCHMARK(BM_ScopeEnterExit)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CopyMaskedWeights)->Unit(benchmark::kMillisecond);
