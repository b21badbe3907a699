#pragma once
/// @file
/// Internal: exact k-th smallest |w| over several tensors in linear time (radix select on the bits).
///
/// For a non-negative IEEE-754 number the order of the values equals the order of the bit patterns read
/// as unsigned integers (denormals and zero included; the sign bit is cleared, so -0 counts as +0).
/// A selection therefore walks the bit pattern 16 bits at a time from the top: each pass histograms one
/// 16-bit digit of the elements whose higher digits equal the prefix found so far, and the cumulative
/// counts name the next digit of the k-th value. float needs 2 passes, double 4; nothing is sorted and
/// no concatenated copy of the weights is made.

#include <torch/torch.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace ohem {
namespace detail {

/// How the selection runs: raw loops over CPU memory, or tensor ops that work on any device.
enum class SelectBackend { Auto, CpuLoops, TensorOps };

/// Finds the digit holding the k-th element (0-based) in a histogram; k is made relative to that digit.
inline int64_t find_digit(const std::vector<int64_t>& hist, int64_t* k) {
  for (size_t d = 0; d < hist.size(); ++d) {
    if (*k < hist[d]) return static_cast<int64_t>(d);
    *k -= hist[d];
  }
  TORCH_INTERNAL_ASSERT(false, "radix select: k beyond the element count");
  return -1;
}

template <typename Bits>
struct AbsBits {
  static constexpr Bits sign = Bits(1) << (sizeof(Bits) * 8 - 1);
  static constexpr Bits inf = sizeof(Bits) == 4 ? Bits(0x7F800000u) : Bits(0x7FF0000000000000ull);
};

/// Throws if a weight is NaN or infinite, naming the tensor.
inline void check_finite(const torch::Tensor& w, const std::string& name) {
  TORCH_CHECK(torch::isfinite(w).all().item<bool>(), "ohem: weight \"", name,
              "\" contains NaN or Inf; masks need finite weights (check the learning rate / the loss)");
}

template <typename Scalar, typename Bits>
double select_cpu(const std::vector<torch::Tensor>& ws, const std::vector<std::string>& names, int64_t k) {
  static_assert(sizeof(Scalar) == sizeof(Bits), "bit width");
  constexpr int kDigits = sizeof(Bits) * 8 / 16;
  std::vector<int64_t> hist(1 << 16);
  Bits prefix = 0;
  for (int pass = 0; pass < kDigits; ++pass) {
    const int shift = (kDigits - 1 - pass) * 16;
    std::fill(hist.begin(), hist.end(), 0);
    for (size_t t = 0; t < ws.size(); ++t) {
      const torch::Tensor& w = ws[t];
      const Scalar* data = w.data_ptr<Scalar>();
      const int64_t n = w.numel();
      Bits bad = 0;
      if (pass == 0) {
        for (int64_t i = 0; i < n; ++i) {
          Bits b;
          std::memcpy(&b, data + i, sizeof(Bits));
          b &= ~AbsBits<Bits>::sign;
          bad |= static_cast<Bits>(b >= AbsBits<Bits>::inf);
          ++hist[b >> shift];
        }
        TORCH_CHECK(!bad, "ohem: weight \"", names[t],
                    "\" contains NaN or Inf; masks need finite weights (check the learning rate / the loss)");
      } else {
        const int high = shift + 16;
        for (int64_t i = 0; i < n; ++i) {
          Bits b;
          std::memcpy(&b, data + i, sizeof(Bits));
          b &= ~AbsBits<Bits>::sign;
          if ((b >> high) == prefix) ++hist[(b >> shift) & 0xFFFF];
        }
      }
    }
    prefix = static_cast<Bits>((prefix << 16) | static_cast<Bits>(find_digit(hist, &k)));
  }
  Scalar value;
  std::memcpy(&value, &prefix, sizeof(Bits));
  return static_cast<double>(value);
}

/// The device-agnostic variant: the same digit walk with bincount on the weight's device.
inline double select_tensor_ops(const std::vector<torch::Tensor>& ws, const std::vector<std::string>& names,
                                int64_t k, bool is_double) {
  const int digits = is_double ? 4 : 2;
  const auto bits_type = is_double ? torch::kLong : torch::kInt;
  const auto value_type = is_double ? torch::kDouble : torch::kFloat;
  std::vector<torch::Tensor> bits;
  bits.reserve(ws.size());
  for (size_t t = 0; t < ws.size(); ++t) {
    check_finite(ws[t], names[t]);
    bits.push_back(ws[t].detach().to(value_type).abs().contiguous().view(bits_type).flatten());
  }
  int64_t prefix = 0;  // the leading digits found so far (fits: at most 48 bits before the last pass)
  for (int pass = 0; pass < digits; ++pass) {
    const int shift = (digits - 1 - pass) * 16;
    std::vector<int64_t> hist(1 << 16, 0);
    for (const auto& b : bits) {
      torch::Tensor digit = b.__rshift__(shift).bitwise_and(0xFFFF);
      if (pass > 0) digit = digit.masked_select(b.__rshift__(shift + 16).eq(prefix));
      if (digit.numel() == 0) continue;
      torch::Tensor counts = torch::bincount(digit.to(torch::kLong), {}, 1 << 16).to(torch::kCPU);
      const int64_t* c = counts.data_ptr<int64_t>();
      for (int64_t d = 0; d < (1 << 16); ++d) hist[d] += c[d];
    }
    prefix = (prefix << 16) | find_digit(hist, &k);
  }
  if (is_double) {
    double v;
    std::memcpy(&v, &prefix, sizeof(v));
    return v;
  }
  const auto u = static_cast<std::uint32_t>(prefix);
  float v;
  std::memcpy(&v, &u, sizeof(v));
  return static_cast<double>(v);
}

/// Returns the k-th smallest (0-based) of |w| over all elements of all `ws`, exactly, as a double.
///
/// float32/float64 weights are compared in their own precision; half and bfloat16 weights are widened
/// to float32 (exact). Throws if a weight is NaN/Inf (naming it) or k is out of range.
inline double kth_smallest_abs(const std::vector<torch::Tensor>& ws, const std::vector<std::string>& names,
                               int64_t k, SelectBackend backend = SelectBackend::Auto) {
  TORCH_INTERNAL_ASSERT(ws.size() == names.size());
  TORCH_CHECK(!ws.empty(), "ohem: no weights to select from");
  int64_t total = 0;
  bool is_double = false, all_cpu = true;
  for (const auto& w : ws) {
    total += w.numel();
    is_double = is_double || w.scalar_type() == torch::kDouble;
    all_cpu = all_cpu && w.device().is_cpu();
  }
  TORCH_CHECK(k >= 0 && k < total, "ohem: selection index ", k, " out of range for ", total, " weights");
  if (backend == SelectBackend::Auto) backend = all_cpu ? SelectBackend::CpuLoops : SelectBackend::TensorOps;
  if (backend == SelectBackend::TensorOps) return select_tensor_ops(ws, names, k, is_double);
  std::vector<torch::Tensor> cpu;
  cpu.reserve(ws.size());
  const auto type = is_double ? torch::kDouble : torch::kFloat;
  for (const auto& w : ws) cpu.push_back(w.detach().to(torch::kCPU, type).contiguous());
  return is_double ? select_cpu<double, std::uint64_t>(cpu, names, k)
                   : select_cpu<float, std::uint32_t>(cpu, names, k);
}

/// The recipe's index into the ascending sort: min(ceil(ratio * n), n - 1).
inline int64_t recipe_index(double ratio, int64_t n) {
  const auto c = static_cast<int64_t>(std::ceil(ratio * static_cast<double>(n)));
  return std::min(c, n - 1);
}

}  // namespace detail
}  // namespace ohem
