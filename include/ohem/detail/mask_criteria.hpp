#pragma once
/// @file
/// Internal: the pieces of the mask criteria (ratio checks, the magnitude comparison, the recipe's extra
/// random pruning).

#include <ohem/version.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

OHEM_BEGIN_NAMESPACE
namespace detail {

inline void check_fraction(double value, const char* what) {
  TORCH_CHECK(std::isfinite(value) && value >= 0.0 && value < 1.0, "ohem::MaskOptions::", what,
              " must be in [0, 1), got ", value);
}

/// Keeps each true entry of `keep` with probability 1 − p (draws on the CPU generator).
inline torch::Tensor random_extra(const torch::Tensor& keep, double p, torch::Generator& gen) {
  if (p <= 0.0) return keep;
  torch::Tensor u = torch::rand(keep.sizes(), gen, torch::dtype(torch::kDouble)).to(keep.device());
  return keep.logical_and(u.ge(p));
}

inline double extra_probability(double r, double ratio, int64_t n) {
  if (r <= 0.0) return 0.0;
  const double pruned = std::ceil(ratio * static_cast<double>(n));
  const double survivors = std::max(1.0, static_cast<double>(n) - pruned);
  return std::min(1.0, std::ceil(r * static_cast<double>(n)) / survivors);
}

/// Returns |w| >= threshold, compared exactly: in float when the threshold is a float value, else in
/// double (a scalar compared with a float tensor would be rounded to float first).
inline torch::Tensor keep_at_least(const torch::Tensor& w, double threshold) {
  torch::Tensor a = w.detach().abs();
  const bool float_exact = static_cast<double>(static_cast<float>(threshold)) == threshold;
  if (a.scalar_type() != torch::kDouble) a = a.to(float_exact ? torch::kFloat : torch::kDouble);
  return a.ge(threshold);
}

}  // namespace detail
OHEM_END_NAMESPACE
