#pragma once
/// @file
/// Internal: exact k-th smallest |w| over several tensors in linear time (radix select on the bits).
///
/// For a non-negative IEEE-754 number the order of the values equals the order of the bit patterns read
/// as unsigned integers (denormals and zero included; the sign bit is cleared, so -0 counts as +0).
/// A selection therefore walks the bit pattern 16 bits at a time from the top: each pass histograms one
/// 16-bit digit of the elements whose higher digits equal the prefix found so far, and the cumulative
/// counts name the next digit of the k-th value. float needs 2 passes, double 4; nothing is sorted and
/// no concatenated copy of the weights is made. For large float32 inputs a sample-guided single pass
/// (select_sampled_float) answers first and the radix select is its exact fallback.

#include <ohem/version.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#endif

OHEM_BEGIN_NAMESPACE
namespace detail {

/// How the selection runs: CPU (sample-guided single pass for large float32 inputs, else radix select
/// over raw memory), the radix select over raw memory alone, or tensor ops that work on any device.
enum class SelectBackend { Auto, CpuLoops, CpuRadix, TensorOps };

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

/// The scalar end of `gather_range` from element i on, and its results.
inline bool gather_tail(const std::uint32_t* p, int64_t i, int64_t n, std::uint32_t lo, std::uint32_t hi,
                        size_t cap, std::uint32_t* out, size_t cnt, int64_t below, std::uint32_t nonfinite,
                        int64_t* less, size_t* count, bool* bad) {
  for (; i < n; ++i) {
    const std::uint32_t b = p[i] & 0x7FFFFFFFu;
    nonfinite |= static_cast<std::uint32_t>(b >= 0x7F800000u);
    below += b < lo;
    if (b >= lo && b <= hi) {
      out[cnt++] = b;
      if (cnt > cap) return false;
    }
  }
  *count = cnt;
  *less += below;
  *bad = nonfinite != 0;
  return true;
}

#if defined(__GNUC__) && defined(__x86_64__)
#define OHEM_DETAIL_SELECT_AVX2 1
/// `gather_range` with AVX2 (8 weights per step), compiled for AVX2 whatever the build's baseline and
/// called only where the CPU has it (`cpu_has_avx2()`). Same contract.
__attribute__((target("avx2"))) inline bool gather_range_avx2(const std::uint32_t* p, int64_t n,
                                                              std::uint32_t lo, std::uint32_t hi, size_t cap,
                                                              int64_t* less, std::uint32_t* out,
                                                              size_t* count, bool* bad) {
  int64_t i = 0;
  int64_t below = 0;
  size_t cnt = *count;
  const __m256i abs_mask = _mm256_set1_epi32(0x7FFFFFFF), vlo = _mm256_set1_epi32(static_cast<int>(lo)),
                vhi = _mm256_set1_epi32(static_cast<int>(hi)), vmax = _mm256_set1_epi32(0x7F7FFFFF);
  __m256i bad_v = _mm256_setzero_si256();
  while (i + 8 <= n) {
    // Count in 32-bit lanes for at most 2^30 vectors, then fold into the 64-bit total.
    const int64_t stop = std::min<int64_t>(n - (n - i) % 8, i + (int64_t{1} << 30));
    __m256i vcount = _mm256_setzero_si256();
    for (; i < stop; i += 8) {
      const __m256i b =
          _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)), abs_mask);
      const __m256i lt = _mm256_cmpgt_epi32(vlo, b);
      vcount = _mm256_sub_epi32(vcount, lt);
      bad_v = _mm256_or_si256(bad_v, _mm256_cmpgt_epi32(b, vmax));
      const int outside =
          _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_or_si256(lt, _mm256_cmpgt_epi32(b, vhi))));
      if (outside != 0xFF) {
        for (int j = 0; j < 8; ++j) {
          if (!((outside >> j) & 1)) out[cnt++] = p[i + j] & 0x7FFFFFFFu;
        }
        if (cnt > cap) return false;
      }
    }
    alignas(32) std::uint32_t lanes[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), vcount);
    for (int j = 0; j < 8; ++j) below += lanes[j];
  }
  alignas(32) std::uint32_t bad_lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(bad_lanes), bad_v);
  std::uint32_t nonfinite = 0;
  for (int j = 0; j < 8; ++j) nonfinite |= bad_lanes[j];
  return gather_tail(p, i, n, lo, hi, cap, out, cnt, below, nonfinite, less, count, bad);
}

/// True if the CPU running this has AVX2 (checked once).
inline bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}
#endif

/// Which gather loop `select_sampled_float` runs: the fastest the CPU has (AVX2 where available), or the
/// portable one (SSE2 or scalar). Both give the same answer; tests run each.
enum class GatherPath { Fastest, Portable };

/// Counts the elements below `lo` and gathers those in [lo, hi] of one float tensor's |w| bit patterns
/// into out[*count ...]; `out` holds cap + 8 elements. Returns false if more than `cap` were gathered
/// (then the caller falls back to radix select). The loop calls no function, so that the compiler keeps
/// its vector accumulators in registers.
inline bool gather_range(const std::uint32_t* p, int64_t n, std::uint32_t lo, std::uint32_t hi, size_t cap,
                         int64_t* less, std::uint32_t* out, size_t* count, bool* bad) {
  int64_t i = 0;
  int64_t below = 0;
  size_t cnt = *count;
  std::uint32_t nonfinite = 0;
#if defined(__SSE2__)
  const __m128i abs_mask = _mm_set1_epi32(0x7FFFFFFF), vlo = _mm_set1_epi32(static_cast<int>(lo)),
                vhi = _mm_set1_epi32(static_cast<int>(hi)), vmax = _mm_set1_epi32(0x7F7FFFFF);
  __m128i bad_v = _mm_setzero_si128();
  while (i + 4 <= n) {
    // Count in 32-bit lanes for at most 2^30 vectors, then fold into the 64-bit total.
    const int64_t stop = std::min<int64_t>(n - (n - i) % 4, i + (int64_t{1} << 30));
    __m128i count = _mm_setzero_si128();
    for (; i < stop; i += 4) {
      // |w| bit patterns are below 2^31, so signed 32-bit comparisons order them correctly.
      const __m128i b = _mm_and_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i)), abs_mask);
      const __m128i lt = _mm_cmplt_epi32(b, vlo);
      count = _mm_sub_epi32(count, lt);
      bad_v = _mm_or_si128(bad_v, _mm_cmpgt_epi32(b, vmax));
      const int outside = _mm_movemask_ps(_mm_castsi128_ps(_mm_or_si128(lt, _mm_cmpgt_epi32(b, vhi))));
      if (outside != 0xF) {
        for (int j = 0; j < 4; ++j) {
          if (!((outside >> j) & 1)) out[cnt++] = p[i + j] & 0x7FFFFFFFu;
        }
        if (cnt > cap) return false;
      }
    }
    alignas(16) std::uint32_t lanes[4];
    _mm_store_si128(reinterpret_cast<__m128i*>(lanes), count);
    below += int64_t{lanes[0]} + lanes[1] + lanes[2] + lanes[3];
  }
  alignas(16) std::uint32_t bad_lanes[4];
  _mm_store_si128(reinterpret_cast<__m128i*>(bad_lanes), bad_v);
  nonfinite = bad_lanes[0] | bad_lanes[1] | bad_lanes[2] | bad_lanes[3];
#endif
  return gather_tail(p, i, n, lo, hi, cap, out, cnt, below, nonfinite, less, count, bad);
}

/// Sample-guided exact selection for float32 on the CPU (one pass over the weights): a strided sample
/// brackets the k-th |w| in [lo, hi] (with a margin of 3 sampling standard deviations); one pass counts
/// the weights below lo and gathers those in [lo, hi]; the k-th is then selected among the few gathered.
/// Exact whenever it answers; returns false (the caller then uses the radix select) if the bracket
/// missed or gathered too many (e.g. many equal weights).
inline bool select_sampled_float(const std::vector<torch::Tensor>& ws, const std::vector<std::string>& names,
                                 int64_t k, double* result, GatherPath path = GatherPath::Fastest) {
  int64_t n = 0;
  for (const auto& w : ws) n += w.numel();
  constexpr int64_t kSample = 1 << 16;
  if (n < 8 * kSample) return false;
  // Strided sample over the concatenation (no copy of the weights is made).
  std::vector<std::uint32_t> sample;
  sample.reserve(kSample);
  const int64_t stride = (n + kSample - 1) / kSample;  // covers every layer
  int64_t pos = 0, next = 0;
  for (const auto& w : ws) {
    const auto* p = reinterpret_cast<const std::uint32_t*>(w.data_ptr<float>());
    const int64_t m = w.numel();
    for (; next < pos + m && static_cast<int64_t>(sample.size()) < kSample; next += stride) {
      sample.push_back(p[next - pos] & 0x7FFFFFFFu);
    }
    pos += m;
  }
  const auto s = static_cast<int64_t>(sample.size());
  const double q = static_cast<double>(k) / static_cast<double>(n);
  const double margin =
      3.0 * std::sqrt(q * (1.0 - q) / static_cast<double>(s)) + 2.0 / static_cast<double>(s);
  const auto il = static_cast<int64_t>(std::max(0.0, std::floor((q - margin) * static_cast<double>(s))));
  const auto ih = static_cast<int64_t>(
      std::min(static_cast<double>(s - 1), std::ceil((q + margin) * static_cast<double>(s))));
  std::nth_element(sample.begin(), sample.begin() + il, sample.end());
  const std::uint32_t lo = sample[il];
  std::nth_element(sample.begin() + il, sample.begin() + ih, sample.end());
  const std::uint32_t hi = sample[ih];
  // Expected share of candidates is 2·margin; allow 4 times that before giving up.
  const auto cap = static_cast<size_t>(8.0 * margin * static_cast<double>(n)) + 1024;
  std::unique_ptr<std::uint32_t[]> candidates(
      new std::uint32_t[cap + 8]);  // uninitialised; the AVX2 path writes up to 8 before checking
  size_t gathered = 0;
  int64_t less = 0;
  for (size_t t = 0; t < ws.size(); ++t) {
    bool bad = false;
    const auto* p = reinterpret_cast<const std::uint32_t*>(ws[t].data_ptr<float>());
#if defined(OHEM_DETAIL_SELECT_AVX2)
    const bool ok =
        path == GatherPath::Fastest && cpu_has_avx2()
            ? gather_range_avx2(p, ws[t].numel(), lo, hi, cap, &less, candidates.get(), &gathered, &bad)
            : gather_range(p, ws[t].numel(), lo, hi, cap, &less, candidates.get(), &gathered, &bad);
#else
    (void)path;
    const bool ok = gather_range(p, ws[t].numel(), lo, hi, cap, &less, candidates.get(), &gathered, &bad);
#endif
    if (!ok) return false;
    TORCH_CHECK(!bad, "ohem: weight \"", names[t],
                "\" contains NaN or Inf; masks need finite weights (check the learning rate / the loss)");
  }
  const auto c = static_cast<int64_t>(gathered);
  if (k < less || k >= less + c) return false;
  std::uint32_t* first = candidates.get();
  std::nth_element(first, first + (k - less), first + c);
  float value;
  std::memcpy(&value, first + (k - less), sizeof(value));
  *result = static_cast<double>(value);
  return true;
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
/// to float32 (exact). Throws if a weight is NaN/Inf (naming it) or k is out of range. (A template so that
/// a translation unit that never computes masks compiles none of the selection.)
template <typename = void>
double kth_smallest_abs(const std::vector<torch::Tensor>& ws, const std::vector<std::string>& names,
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
  if (is_double) return select_cpu<double, std::uint64_t>(cpu, names, k);
  double sampled = 0.0;
  if (backend != SelectBackend::CpuRadix && select_sampled_float(cpu, names, k, &sampled)) return sampled;
  return select_cpu<float, std::uint32_t>(cpu, names, k);
}

}  // namespace detail
OHEM_END_NAMESPACE

#undef OHEM_DETAIL_SELECT_AVX2
