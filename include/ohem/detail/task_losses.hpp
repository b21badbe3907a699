#pragma once
/// @file
/// Internal: argument checks and reductions shared by the BIQA task losses.

#include <ohem/version.hpp>

#include <torch/torch.h>

OHEM_BEGIN_NAMESPACE

namespace detail {

/// The type of `torch::nn::MSELossOptions::reduction` (public as `ohem::reduction_t`, task_losses.hpp).
using ReductionVariant = torch::nn::MSELossOptions::reduction_t;

/// Reduces per-sample values (any shape) as asked.
inline torch::Tensor reduce(const torch::Tensor& values, const ReductionVariant& r) {
  switch (torch::enumtype::reduction_get_enum(r)) {
    case at::Reduction::Mean:
      return values.mean();
    case at::Reduction::Sum:
      return values.sum();
    default:
      return values;
  }
}

/// True if `r` is `torch::kNone` (LibTorch 1.x and 2.x alike).
inline bool is_none(const ReductionVariant& r) {
  return torch::enumtype::reduction_get_enum(r) == at::Reduction::None;
}

/// Flattens a per-sample score ([B] or [B, 1]) to [B]; throws naming the argument otherwise.
inline torch::Tensor scores(const torch::Tensor& t, const char* fn, const char* what) {
  TORCH_CHECK(t.defined(), "ohem::", fn, ": ", what, " is undefined");
  TORCH_CHECK(t.dim() == 1 || (t.dim() == 2 && t.size(1) == 1) || t.dim() == 0, "ohem::", fn, ": ", what,
              " must be one score per sample, shape [B] or [B, 1], got ", t.sizes());
  TORCH_CHECK(t.is_floating_point(), "ohem::", fn, ": ", what, " must be floating point, got ",
              t.scalar_type());
  return t.reshape({-1});
}

/// Throws naming both arguments unless they hold as many values.
inline void same_size(const torch::Tensor& a, const torch::Tensor& b, const char* fn, const char* an,
                      const char* bn) {
  TORCH_CHECK(a.numel() == b.numel(), "ohem::", fn, ": ", an, " and ", bn,
              " must hold one value per sample each, got ", a.numel(), " and ", b.numel(), " values");
}

}  // namespace detail
OHEM_END_NAMESPACE
