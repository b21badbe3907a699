// A user project that found ohem with find_package(ohem): builds a twin and checks it shares weights.
#include <ohem/ohem.hpp>
#include <ohem/platform.hpp>  // also in the umbrella; named here as docs/platforms.md names it

#include <iostream>
#include <string>

int main() {
  // The platform guard, as docs/platforms.md shows it (an installed header; the package links dlsym).
  if (const std::string w = ohem::guard_convolution_backward(); !w.empty()) std::cerr << w << '\n';
  auto net = torch::nn::Sequential(torch::nn::Conv2d(3, 4, 3), torch::nn::ReLU(), torch::nn::Conv2d(4, 2, 3));
  ohem::PrunedTwin<torch::nn::Sequential> twin(net);
  auto y = twin.forward(torch::randn({1, 3, 8, 8}));
  y.sum().backward();
  const bool ok = y.sizes() == torch::IntArrayRef({1, 2, 4, 4}) && net->parameters()[0].grad().defined();
  std::cout << "ohem " << ohem::version_string() << " consumer: " << (ok ? "ok" : "FAILED") << "\n";
  return ok ? 0 : 1;
}
