#pragma once
/// @file
/// A run-time check of one LibTorch defect that makes training silently wrong, and its work-around
/// (docs/platforms.md).
///
/// Debian 13's LibTorch 2.6.0 (linked with Debian's oneDNN 3.7.2) computes the input gradient of some
/// small CPU convolutions (few channels, e.g. 3 or 8; oneDNN's gemm-based backward-data) from memory it
/// never wrote. The gradients then hold whatever that memory held: NaN at times, finite garbage at
/// others. LibTorch 1.13 (Debian 12) and the same convolutions with oneDNN turned off are exact.
///
/// `probe_convolution_backward()` shows the defect deterministically: with c10's junk fill on, every
/// new CPU allocation holds NaN bit patterns, so a gradient that reads unwritten memory comes out NaN.
/// `guard_convolution_backward()` runs the probe and, where it finds the defect, turns oneDNN off for
/// the process (`at::globalContext().setUserEnabledMkldnn(false)`: LibTorch's own convolution kernels,
/// slower but exact). The probe takes milliseconds. Not about OHEM: any LibTorch training loop on that
/// platform needs it.

#include <ohem/detail/platform.hpp>
#include <ohem/version.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

OHEM_BEGIN_NAMESPACE

/// What `probe_convolution_backward` found.
struct ConvolutionProbe {
  /// False where c10's junk-fill flag is not found (nothing was run).
  bool probed = false;
  /// True if an input gradient read memory the convolution never wrote.
  bool defective = false;
  /// The first defective case, e.g. "input [4, 8, 4, 4], 3x3 kernel, stride 1"; empty if none.
  std::string detail;
};

/// Runs four small CPU convolutions (3 and 8 channels, 3x3 and 7x7 kernels, strides 1 and 2) forward
/// and backward with c10's junk fill on, and reports whether an input gradient is not finite (it read
/// memory never written). Restores the junk-fill flag, also when LibTorch throws; leaves the global
/// random state and the caller's grad mode as they were. Returns `probed == false` where this LibTorch
/// exports no junk-fill flag (or the platform has no `dlsym`).
///
/// Example: `if (ohem::probe_convolution_backward().defective) std::cerr << "oneDNN is faulty\n";`
inline ConvolutionProbe probe_convolution_backward() {
  ConvolutionProbe r;
  bool* junk = detail::junk_fill_flag();
  if (junk == nullptr) return r;
  r.probed = true;
  const bool junk_before = *junk;
  // The cases cover the shapes seen failing on Debian 13 (3 and 8 channels, 3x3 and 7x7 kernels).
  struct Case {
    int64_t batch, channels, side, kernel, stride;
  };
  const std::vector<Case> cases = {{4, 8, 4, 3, 1}, {4, 3, 8, 3, 1}, {1, 8, 16, 7, 1}, {4, 3, 4, 3, 2}};
  torch::AutoGradMode grad_on(true);
  torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(12345);
  try {
    *junk = true;
    for (const Case& c : cases) {
      const torch::Tensor x =
          at::randn({c.batch, c.channels, c.side, c.side}, gen, torch::kFloat).requires_grad_();
      const torch::Tensor w = at::randn({c.channels, c.channels, c.kernel, c.kernel}, gen, torch::kFloat);
      const torch::Tensor y = torch::conv2d(x, w, {}, c.stride, c.kernel / 2);
      y.backward(at::randn(y.sizes(), gen, torch::kFloat));
      if (!torch::isfinite(x.grad()).all().item<bool>()) {
        r.defective = true;
        r.detail = "input [" + std::to_string(c.batch) + ", " + std::to_string(c.channels) + ", " +
                   std::to_string(c.side) + ", " + std::to_string(c.side) + "], " + std::to_string(c.kernel) +
                   "x" + std::to_string(c.kernel) + " kernel, stride " + std::to_string(c.stride);
        break;
      }
    }
  } catch (...) {
    *junk = junk_before;
    throw;
  }
  *junk = junk_before;
  return r;
}

/// Probes the convolution backward (`probe_convolution_backward`) and, where it is defective, turns
/// oneDNN off for this process and probes again. Call it once at the start of a program, before
/// training. Returns a warning to print (it changes speed: print it also when quiet), empty when there
/// was nothing to do; throws `c10::Error` if the defect survives the work-around (gradients would be
/// wrong).
///
/// Example: `if (auto w = ohem::guard_convolution_backward(); !w.empty()) std::cerr << w << '\n';`
inline std::string guard_convolution_backward() {
  const ConvolutionProbe p = probe_convolution_backward();
  if (!p.defective) return {};
  at::globalContext().setUserEnabledMkldnn(false);
  const ConvolutionProbe after = probe_convolution_backward();
  TORCH_CHECK(!after.defective, "ohem::guard_convolution_backward: LibTorch ", TORCH_VERSION,
              ": the CPU convolution's input gradient reads memory it never wrote (", p.detail,
              "), also with oneDNN turned off; gradients would be wrong");
  return std::string("warning: LibTorch ") + TORCH_VERSION +
         ": the CPU convolution's input gradient reads memory it never wrote (oneDNN; " + p.detail +
         "); oneDNN is turned off for this process: slower convolutions, exact gradients "
         "(docs/platforms.md)";
}

OHEM_END_NAMESPACE
