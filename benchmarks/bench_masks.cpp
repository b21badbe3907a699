// Case 1 of docs/benchmarks.md: the global-magnitude mask threshold on the convolution weights of
// ResNet-18 (11.2 M) and ResNet-50 (23.5 M): ohem's linear-time radix selection vs the recipe's method
// (sort the concatenated |w|) vs torch::kthvalue, with one read pass over the weights as the floor; and
// the whole mask (compute_masks: the selection, then one fused pass writing the bool masks) against the
// selection followed by LibTorch's |w| copy and comparison (the method before the fused pass).
#include "shapes.hpp"

#include <ohem/masks.hpp>

#include <benchmark/benchmark.h>

#include <cmath>

namespace {

struct Weights {
  std::vector<torch::Tensor> tensors;
  std::vector<std::string> names;
  int64_t n = 0;
};

const Weights& weights(int depth) {
  static std::map<int, Weights> cache;
  auto& w = cache[depth];
  if (w.tensors.empty()) {
    torch::manual_seed(depth);
    for (const auto& s : ohem_bench::resnet_conv_shapes(depth)) {
      // Kaiming-normal-like scale per layer, as at initialisation.
      const double fan_in = static_cast<double>(s[1] * s[2] * s[3]);
      w.tensors.push_back(torch::randn(s) * std::sqrt(2.0 / fan_in));
      w.names.push_back("conv" + std::to_string(w.names.size()));
      w.n += w.tensors.back().numel();
    }
  }
  return w;
}

int64_t recipe_k(const Weights& w) {
  return ohem::detail::recipe_index(ohem::MaskOptions().ratio(), w.n);  // the recipe's ratio
}

void finish(benchmark::State& state, const Weights& w) {
  state.counters["weights"] = static_cast<double>(w.n);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * w.n * 4);
}

void BM_RadixSelect(benchmark::State& state) {
  const auto& w = weights(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    benchmark::DoNotOptimize(ohem::detail::kth_smallest_abs(w.tensors, w.names, recipe_k(w)));
  }
  finish(state, w);
}

void BM_SortConcatenated(benchmark::State& state) {  // the recipe's method
  const auto& w = weights(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    std::vector<torch::Tensor> flat;
    for (const auto& t : w.tensors) flat.push_back(t.abs().flatten());
    auto sorted = std::get<0>(torch::cat(flat).sort());
    benchmark::DoNotOptimize(sorted[recipe_k(w)].item<float>());
  }
  finish(state, w);
}

void BM_Kthvalue(benchmark::State& state) {
  const auto& w = weights(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    std::vector<torch::Tensor> flat;
    for (const auto& t : w.tensors) flat.push_back(t.abs().flatten());
    benchmark::DoNotOptimize(std::get<0>(torch::cat(flat).kthvalue(recipe_k(w) + 1)).item<float>());
  }
  finish(state, w);
}

void BM_OneReadPass(benchmark::State& state) {  // the floor: read every weight once
  const auto& w = weights(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    float acc = 0;
    for (const auto& t : w.tensors) {
      const float* p = t.data_ptr<float>();
      const int64_t n = t.numel();
      float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
      int64_t i = 0;
      for (; i + 4 <= n; i += 4) {
        a0 += p[i];
        a1 += p[i + 1];
        a2 += p[i + 2];
        a3 += p[i + 3];
      }
      for (; i < n; ++i) a0 += p[i];
      acc += a0 + a1 + a2 + a3;
    }
    benchmark::DoNotOptimize(acc);
  }
  finish(state, w);
}

void BM_ComputeMasks(benchmark::State& state) {  // selection + building the bool masks
  const auto& w = weights(static_cast<int>(state.range(0)));
  std::vector<ohem::Slot> slots;
  for (size_t i = 0; i < w.tensors.size(); ++i) {
    ohem::Slot s;
    s.name = w.names[i];
    s.parameter = w.tensors[i];
    slots.push_back(s);
  }
  for (auto _ : state) benchmark::DoNotOptimize(ohem::compute_masks(slots));
  finish(state, w);
}

// Before the fused pass: the selection, then |w| copied and compared (LibTorch's abs and ge), as
// compute_masks built the masks until issue 28.
void BM_MasksViaAbsCopy(benchmark::State& state) {
  const auto& w = weights(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    const double t = ohem::detail::kth_smallest_abs(w.tensors, w.names, recipe_k(w));
    std::vector<torch::Tensor> masks;
    for (const auto& x : w.tensors) masks.push_back(x.abs().ge(t));
    benchmark::DoNotOptimize(masks);
  }
  finish(state, w);
}

}  // namespace

BENCHMARK(BM_OneReadPass)->Arg(18)->Arg(50)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RadixSelect)->Arg(18)->Arg(50)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ComputeMasks)->Arg(18)->Arg(50)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MasksViaAbsCopy)->Arg(18)->Arg(50)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SortConcatenated)->Arg(18)->Arg(50)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_Kthvalue)->Arg(18)->Arg(50)->Unit(benchmark::kMillisecond)->Iterations(3);
