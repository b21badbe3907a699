#pragma once
/// @file
/// Internals of ohem/scores.hpp: the checks every metric makes of its two score vectors.

#include <ohem/version.hpp>

#include <c10/util/Exception.h>

#include <cmath>
#include <cstdint>

OHEM_BEGIN_NAMESPACE
namespace detail {

/// Checks what every metric needs: equal sizes, at least `min_n` values, all finite. `Scores` is
/// `ohem::ScoresRef` (anything with `size()` and `operator[]`).
template <class Scores>
void check_scores(const char* fn, const Scores& prediction, const Scores& mos, int64_t min_n = 2) {
  TORCH_CHECK(prediction.size() == mos.size(), fn, ": prediction has ", prediction.size(),
              " values but mos has ", mos.size());
  TORCH_CHECK(prediction.size() >= min_n, fn, ": needs at least ", min_n, " scores, got ", prediction.size());
  for (int64_t i = 0; i < prediction.size(); ++i) {
    TORCH_CHECK(std::isfinite(prediction[i]), fn, ": prediction[", i, "] is ", prediction[i],
                "; scores must be finite");
    TORCH_CHECK(std::isfinite(mos[i]), fn, ": mos[", i, "] is ", mos[i], "; scores must be finite");
  }
}

}  // namespace detail
OHEM_END_NAMESPACE
