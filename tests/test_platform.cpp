// The platform guard (ohem/platform.hpp): c10's junk fill marks unwritten memory, the probe passes once the
// guard has run (the test main runs it), and conv2d's input gradient agrees with an independent computation.
#include "support.hpp"

#include <ohem/detail/platform.hpp>
#include <ohem/platform.hpp>

#include <torch/torch.h>

TEST_CASE("platform: the convolution input gradient reads only memory it wrote (oneDNN off where not)",
          "[platform]") {
  bool* junk = ohem::detail::junk_fill_flag();
  if (junk == nullptr) OHEM_SKIP("this LibTorch exports no c10 junk-fill flag; the probe cannot run");
  // The probe's instrument works: with junk fill on, a new CPU tensor is not finite until written.
  const bool before = *junk;
  *junk = true;
  const torch::Tensor fresh = torch::empty({64}, torch::kFloat);
  *junk = before;
  CHECK_FALSE(torch::isfinite(fresh).any().item<bool>());
  // The test main ran guard_convolution_backward() (as every example trainer does): the gradients are now
  // exact on this LibTorch, with oneDNN on (Debian 12) or turned off (Debian 13's 2.6).
  const ohem::ConvolutionProbe p = ohem::probe_convolution_backward();
  CHECK(p.probed);
  CHECK_FALSE(p.defective);
  CHECK(p.detail.empty());
  CHECK(*junk == before);  // restored
  CHECK(ohem::guard_convolution_backward().empty());
  // And against an independent computation: conv2d's input gradient is the transposed convolution of the
  // output gradient.
  torch::manual_seed(7);
  const torch::Tensor x = torch::randn({4, 8, 4, 4}).requires_grad_();
  const torch::Tensor w = torch::randn({8, 8, 3, 3});
  const torch::Tensor y = torch::conv2d(x, w, {}, 1, 1);
  const torch::Tensor g = torch::randn_like(y);
  y.backward(g);
  CHECK(ohem_test::close(x.grad(), torch::conv_transpose2d(g, w, {}, 1, 1), 1e-4, 1e-5));
}
