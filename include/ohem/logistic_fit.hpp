#pragma once
/// @file
/// Logistic fits that map predictions onto the MOS scale before PLCC and RMSE (VQEG's 4- and
/// 5-parameter functions), by Levenberg–Marquardt on standardised data from several standard starts;
/// see docs/metrics.md ("Logistic fits").

#include <ohem/detail/logistic_fit.hpp>
#include <ohem/detail/statistics.hpp>
#include <ohem/logistic_model.hpp>
#include <ohem/scores.hpp>
#include <ohem/version.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

OHEM_BEGIN_NAMESPACE

/// Returns the standard starts `fit_logistic` runs from (docs/metrics.md, "Starts"), β in data
/// coordinates, with m = mean(prediction), s = std(prediction), hi/lo = max/min(mos):
/// 4p: "data" = `logistic_initial_params`; "pyiqa" = (hi, lo, m, s/4) (pyiqa's `fit_curve`);
///     "common" = (hi, lo, m, 0.5) (the start many IQA scripts pass to scipy's curve_fit);
/// 5p: "data" = `logistic_initial_params`; "dbcnn" = (10, 0, m, 0.1, 0.1) (DBCNN's and UNIQUE's
///     verify_performance.m); "pyiqa" = (10, 0, mean(mos), 0.1, 0.1) (pyiqa's `fit_curve`); "line" =
///     (0, 1/s, m, a, b), the least-squares line mos ≈ a·x + b, which the 5p function contains;
/// both: "grid" = the best point of a coarse search over the sigmoid's centre and slope, with the
///     parameters that enter linearly solved by least squares (see docs/metrics.md).
/// Starts whose standardised form is not finite (fixed numbers on data of extreme scale) are left out;
/// values may be infinite when the two scales differ by more than ~1e300.
/// Throws like `logistic_initial_params`, and if the MOS are constant.
/// Example: `for (auto& s : ohem::logistic_standard_starts(model, pred, mos)) print(s.name);`
// (A template, like fit_logistic: see there.)
template <typename = void>
std::vector<LogisticStart> logistic_standard_starts(LogisticModel model, const ScoresRef& prediction,
                                                    const ScoresRef& mos) {
  const auto data = logistic_initial_params(model, prediction, mos);
  const int64_t n = prediction.size();
  const double *x = prediction.data(), *y = mos.data();
  TORCH_CHECK(!detail::is_constant(y, n), "ohem::logistic_standard_starts: the MOS are constant (all ", y[0],
              ")");
  std::vector<double> z, w;
  const auto st = detail::Standardization::of(x, y, n, z, w);
  std::vector<LogisticStart> out;
  auto convert = [&](const auto& starts, auto tag) {
    constexpr int P = decltype(tag)::value;
    for (const auto& s : starts) {
      const auto b = st.from_standard<P>(s.c.data());
      out.push_back({s.name, std::string(s.name) == "data" ? data : std::vector<double>(b.begin(), b.end())});
    }
  };
  if (model == LogisticModel::FourParameter) {
    convert(detail::standard_starts<4>(x, y, n, st, z, w), std::integral_constant<int, 4>{});
  } else {
    convert(detail::standard_starts<5>(x, y, n, st, z, w), std::integral_constant<int, 5>{});
  }
  return out;
}

/// Fits a logistic function mapping predictions onto the MOS scale by Levenberg–Marquardt (analytic
/// Jacobian) and returns the parameters and the PLCC and RMSE of the mapped predictions.
///
/// The fit runs on standardised data (mean 0, standard deviation 1 on both sides; β is mapped back),
/// so scores of any finite magnitude fit alike. It runs from every start of `logistic_standard_starts`
/// for up to 40 steps, then continues the run with the lowest squared error to `max_iterations` steps
/// in all (or runs from `options.initial()` alone): it never ends worse than any standard start after 40
/// steps, and the 5p fit never worse than the least-squares line (one of its starts).
/// Never returns NaN: when no fit is possible (fewer points than parameters + 1, constant predictions
/// or MOS, non-finite costs at every start, a constant fitted curve) or the 4p curve does not beat the
/// line, the result has status `Fallback`, a `message`, and the PLCC/RMSE of the least-squares line
/// (PLCC 0 and RMSE = std(mos) for constant predictions).
/// Throws if the sizes differ, if there are fewer than 2 scores, if a score is NaN or infinite, or if
/// `options.initial()` has the wrong size.
/// Example: `auto fit = ohem::fit_logistic(pred, mos); if (fit.ok()) use(fit.plcc, fit.rmse);`
// A template only so that a translation unit that never fits compiles none of the fitting code (its
// Eigen instantiations cost ~20 s of CPU per translation unit): call it as a function, `fit_logistic(p, m)`.
template <typename = void>
LogisticFit fit_logistic(const ScoresRef& prediction, const ScoresRef& mos, const FitOptions& options = {}) {
  detail::check_scores("ohem::fit_logistic", prediction, mos);
  const LogisticModel model = options.model();
  const int64_t n = prediction.size(), p = num_params(model);
  TORCH_CHECK(options.initial().empty() || static_cast<int64_t>(options.initial().size()) == p,
              "ohem::fit_logistic: FitOptions::initial has ", options.initial().size(), " values, ",
              to_string(model), " takes ", p);
  TORCH_CHECK(options.max_iterations() >= 0,
              "ohem::fit_logistic: FitOptions::max_iterations must be >= 0, got ", options.max_iterations());
  const double *x = prediction.data(), *y = mos.data();
  if (n < p + 1) {
    return detail::fallback_line(
        model, x, y, n, fmt::format("{} fit needs at least {} points, got {}", to_string(model), p + 1, n));
  }
  if (detail::is_constant(x, n)) {
    return detail::fallback_line(model, x, y, n, fmt::format("the predictions are constant (all {})", x[0]));
  }
  if (detail::is_constant(y, n)) {
    return detail::fallback_line(model, x, y, n, fmt::format("the MOS are constant (all {})", y[0]));
  }
  return model == LogisticModel::FourParameter
             ? detail::fit_logistic_impl<4>(x, y, n, options, options.initial())
             : detail::fit_logistic_impl<5>(x, y, n, options, options.initial());
}

OHEM_END_NAMESPACE
