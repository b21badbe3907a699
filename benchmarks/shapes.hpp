#pragma once
// The convolution weight shapes of torchvision's ResNet-18 (11.2 M weights) and ResNet-50 (23.5 M).
#include <cstdint>
#include <vector>

namespace ohem_bench {

inline std::vector<std::vector<int64_t>> resnet_conv_shapes(int depth) {
  std::vector<std::vector<int64_t>> shapes = {{64, 3, 7, 7}};
  const bool bottleneck = depth == 50;
  const std::vector<int> blocks = depth == 18 ? std::vector<int>{2, 2, 2, 2} : std::vector<int>{3, 4, 6, 3};
  int64_t in = 64;
  for (int stage = 0; stage < 4; ++stage) {
    const int64_t width = 64 << stage;
    const int64_t out = bottleneck ? width * 4 : width;
    for (int b = 0; b < blocks[stage]; ++b) {
      if (bottleneck) {
        shapes.push_back({width, in, 1, 1});
        shapes.push_back({width, width, 3, 3});
        shapes.push_back({out, width, 1, 1});
      } else {
        shapes.push_back({width, in, 3, 3});
        shapes.push_back({width, width, 3, 3});
      }
      if (b == 0 && (stage > 0 || in != out)) shapes.push_back({out, in, 1, 1});
      in = out;
    }
  }
  return shapes;
}

}  // namespace ohem_bench
