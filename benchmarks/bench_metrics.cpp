// Cases 4 and 5 of docs/benchmarks.md: SRCC + KRCC + 5-parameter-logistic-fitted PLCC on 10^3 .. 10^6
// samples (the same data recipe as benchmarks/python/bench_recipe.py times with scipy), and gMAD
// selection on 10^5 and 10^6 images; and ohem-eval's bootstrap per resample on 10^5 and 10^6.
#include <ohem/gmad.hpp>
#include <ohem/metrics.hpp>

#include <benchmark/benchmark.h>

#include <random>

namespace {

// mos ~ U(0, 100); prediction = tanh((mos − 50)/30) + N(0, 0.2): a monotone, non-linear, noisy relation.
std::pair<std::vector<double>, std::vector<double>> data(int64_t n) {
  std::mt19937_64 rng(static_cast<uint64_t>(n));
  std::uniform_real_distribution<double> u(0, 100);
  std::normal_distribution<double> noise(0, 0.2);
  std::vector<double> mos(n), pred(n);
  for (int64_t i = 0; i < n; ++i) {
    mos[i] = u(rng);
    pred[i] = std::tanh((mos[i] - 50) / 30) + noise(rng);
  }
  return {pred, mos};
}

void BM_Metrics(benchmark::State& state) {
  const auto [pred, mos] = data(state.range(0));
  for (auto _ : state) {
    benchmark::DoNotOptimize(ohem::srcc(pred, mos));
    benchmark::DoNotOptimize(ohem::krcc(pred, mos));
    benchmark::DoNotOptimize(ohem::fit_logistic(pred, mos).plcc);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

// ohem-eval's computation: the point metrics and B bootstrap resamples (each: ranks, Kendall's tau, the
// 4- and 5-parameter fits from the full sample's parameters) on one thread; time per resample is the
// total minus the point estimate, over B.
void BM_EvaluateBootstrap(benchmark::State& state) {
  const auto [pred, mos] = data(state.range(0));
  const int64_t B = state.range(1);
  for (auto _ : state) {
    benchmark::DoNotOptimize(ohem::evaluate(pred, mos, ohem::EvalOptions().bootstrap(B).seed(1).threads(1)));
  }
  state.counters["resamples"] = static_cast<double>(B);
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

void BM_Gmad(benchmark::State& state) {
  const auto [defender, attacker] = data(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(ohem::gmad(defender, attacker));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

}  // namespace

BENCHMARK(BM_Metrics)->Arg(1000)->Arg(10000)->Arg(100000)->Arg(1000000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EvaluateBootstrap)
    ->Args({100000, 0})
    ->Args({100000, 10})
    ->Args({1000000, 0})
    ->Args({1000000, 4})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Gmad)->Arg(100000)->Arg(1000000)->Unit(benchmark::kMillisecond);
