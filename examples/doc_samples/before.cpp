// docs/integration.md: a plain LibTorch BIQA training loop, before and after adopting ohem.
#include "sample_data.hpp"

#include <torch/torch.h>

#include <cstdio>
#include <string>

int main(int argc, char* argv[]) {
  const int steps = argc > 1 ? std::stoi(argv[1]) : 3;
  torch::manual_seed(0);
  QualityNet net;  // held by value, as in LibTorch's examples
  torch::optim::Adam optimizer(net.parameters(), torch::optim::AdamOptions(1e-4).weight_decay(5e-4));
  torch::nn::L1Loss criterion;
  net.train();
  for (int step = 0; step < steps; ++step) {
    auto [images, mos] = synthetic_batch(8);
    auto loss = criterion(net.forward(images), mos);
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    std::printf("step %d  loss %.4f\n", step, loss.item<double>());
  }
}
