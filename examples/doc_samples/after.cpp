// docs/integration.md: a plain LibTorch BIQA training loop, before and after adopting ohem.
#include "sample_data.hpp"

#include <torch/torch.h>
#include <ohem/self_competitor.hpp>

#include <cstdio>
#include <string>

int main(int argc, char* argv[]) {
  const int steps = argc > 1 ? std::stoi(argv[1]) : 3;
  torch::manual_seed(0);
  QualityNet net;  // held by value, as in LibTorch's examples
  torch::optim::Adam optimizer(net.parameters(), torch::optim::AdamOptions(1e-4).weight_decay(5e-4));
  torch::nn::L1Loss criterion;
  ohem::SelfCompetitor ohem_net(net, criterion);  // refers to net: pruned twin (recipe defaults) + OHEM loss
  net.train();
  for (int step = 0; step < steps; ++step) {
    auto [images, mos] = synthetic_batch(8);
    auto r = ohem_net(images, mos);  // full and twin forward: task loss on both + consistency
    auto loss = r.total;             // what to minimise
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    std::printf("step %d  loss %.4f\n", step, r.task.item<double>());  // the full model's task loss
  }
}
