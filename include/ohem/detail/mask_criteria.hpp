#pragma once
/// @file
/// Internal: the pieces of the mask criteria (the recipe's threshold index, ratio checks, the magnitude
/// comparison, the recipe's extra random pruning).

#include <ohem/version.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

OHEM_BEGIN_NAMESPACE
namespace detail {

/// The recipe's rule for the magnitude criteria: the threshold is the element at this index of the
/// ascending sort of the n magnitudes, min(ceil(ratio * n), n - 1) (the selection itself is
/// detail/select.hpp's).
inline int64_t recipe_index(double ratio, int64_t n) {
  const auto c = static_cast<int64_t>(std::ceil(ratio * static_cast<double>(n)));
  return std::min(c, n - 1);
}

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

/// Writes |w| >= t for n float32 weights into `out` (0/1 bytes) in one pass, comparing bit patterns:
/// for finite non-negative t and non-NaN w, |w| >= t exactly when the bits of w with the sign cleared,
/// read as an unsigned integer, are >= the bits of t. NaN weights (bits above +Inf's) are not kept, as
/// `abs(w) >= t` would not keep them.
inline void keep_at_least_float(const float* w, std::uint32_t t_bits, bool* out, int64_t n) {
  const auto* p = reinterpret_cast<const std::uint32_t*>(w);
  int64_t i = 0;
#if defined(__SSE2__)
  // 16 weights per iteration: four 4-lane 32-bit comparisons packed to 16 bytes of all-ones/all-zeros,
  // then ANDed with 1. |w| bit patterns are below 2^31, so signed comparisons order them correctly; t - 1
  // is -1 for t = +0, below every |w|.
  const __m128i abs_mask = _mm_set1_epi32(0x7FFFFFFF), below = _mm_set1_epi32(static_cast<int>(t_bits) - 1),
                inf = _mm_set1_epi32(0x7F800000), one = _mm_set1_epi8(1);
  for (; i + 16 <= n; i += 16) {
    __m128i keep[4];
    for (int k = 0; k < 4; ++k) {
      const __m128i b =
          _mm_and_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i + 4 * k)), abs_mask);
      keep[k] = _mm_andnot_si128(_mm_cmpgt_epi32(b, inf), _mm_cmpgt_epi32(b, below));
    }
    const __m128i bytes =
        _mm_packs_epi16(_mm_packs_epi32(keep[0], keep[1]), _mm_packs_epi32(keep[2], keep[3]));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm_and_si128(bytes, one));
  }
#endif
  for (; i < n; ++i) {
    const std::uint32_t b = p[i] & 0x7FFFFFFFu;
    out[i] = b >= t_bits && b <= 0x7F800000u;
  }
}

/// The float64 counterpart of `keep_at_least_float`.
inline void keep_at_least_double(const double* w, std::uint64_t t_bits, bool* out, int64_t n) {
  const auto* p = reinterpret_cast<const std::uint64_t*>(w);
  for (int64_t i = 0; i < n; ++i) {
    const std::uint64_t b = p[i] & 0x7FFFFFFFFFFFFFFFull;
    out[i] = b >= t_bits && b <= 0x7FF0000000000000ull;
  }
}

/// Returns |w| >= threshold, compared exactly: in float when the threshold is a float value, else in
/// double (a scalar compared with a float tensor would be rounded to float first). For contiguous float32
/// and float64 weights on the CPU the bool mask is written in one pass over the weights (no |w| copy);
/// elsewhere LibTorch's abs and ge compute the same.
inline torch::Tensor keep_at_least(const torch::Tensor& w, double threshold) {
  const bool float_exact = static_cast<double>(static_cast<float>(threshold)) == threshold;
  const bool fused_type =
      (w.scalar_type() == torch::kFloat && float_exact) || w.scalar_type() == torch::kDouble;
  if (w.device().is_cpu() && w.is_contiguous() && fused_type && std::isfinite(threshold) &&
      threshold >= 0.0) {
    torch::Tensor out = torch::empty(w.sizes(), torch::dtype(torch::kBool));
    // +0 for a threshold of -0: the comparison is on magnitudes.
    const double t = threshold == 0.0 ? 0.0 : threshold;
    if (w.scalar_type() == torch::kFloat) {
      const float tf = static_cast<float>(t);
      std::uint32_t bits;
      std::memcpy(&bits, &tf, sizeof(bits));
      keep_at_least_float(w.data_ptr<float>(), bits, out.data_ptr<bool>(), w.numel());
    } else {
      std::uint64_t bits;
      std::memcpy(&bits, &t, sizeof(bits));
      keep_at_least_double(w.data_ptr<double>(), bits, out.data_ptr<bool>(), w.numel());
    }
    return out;
  }
  torch::Tensor a = w.detach().abs();
  if (a.scalar_type() != torch::kDouble) a = a.to(float_exact ? torch::kFloat : torch::kDouble);
  return a.ge(threshold);
}

}  // namespace detail
OHEM_END_NAMESPACE
