// The README's first code example, compiled and run by the test suite (tests check it matches README.md).
// clang-format off
// DOC-BEGIN
#include <ohem/ohem.hpp>

int main() {
  auto net = torch::nn::Sequential(torch::nn::Conv2d(3, 8, 3), torch::nn::ReLU(),
                                   torch::nn::Conv2d(8, 8, 3), torch::nn::Flatten(),
                                   torch::nn::Linear(8 * 4 * 4, 1));
  torch::optim::Adam optimizer(net->parameters(), 1e-4);   // unchanged: the twin adds no parameters

  // The pruned twin shares every weight with `net`; masks: global magnitude, ratio 0.65 (the paper's recipe).
  ohem::PrunedTwin<torch::nn::Sequential> twin(net);
  std::cout << twin.masks().summary();

  auto x = torch::randn({16, 3, 8, 8}), mos = torch::rand({16, 1});
  auto full = net->forward(x);
  auto pruned = twin.forward(x);                            // same forward, weights w ⊙ m
  auto loss = torch::mse_loss(full, mos) + torch::mse_loss(pruned, mos)
            + torch::mse_loss(full, pruned);                // consistency focuses on "forgettable" samples
  optimizer.zero_grad();
  loss.backward();                                          // gradients reach the shared weights
  optimizer.step();
}
// DOC-END
