#pragma once
/// @file
/// The standard IQA evaluation of one set of predictions: SRCC, KRCC, PLCC and the 4- and 5-parameter
/// logistic fits, optionally with seeded, thread-count-independent bootstrap confidence intervals, and
/// the same per group (e.g. distortion type). See docs/metrics.md.

#include <ohem/correlation.hpp>
#include <ohem/detail/evaluation.hpp>
#include <ohem/detail/logistic_fit.hpp>
#include <ohem/detail/statistics.hpp>
#include <ohem/logistic_fit.hpp>
#include <ohem/scores.hpp>
#include <ohem/version.hpp>

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

OHEM_BEGIN_NAMESPACE

/// A confidence interval [lower, upper].
struct Interval {
  double lower = 0;
  double upper = 0;
};

/// Percentile bootstrap intervals of every metric of an `Evaluation`.
struct BootstrapIntervals {
  Interval srcc, krcc, plcc, plcc4, rmse4, plcc5, rmse5;
  /// Number of resamples.
  int64_t samples = 0;
  /// Coverage, e.g. 0.95.
  double confidence = 0;
};

/// The largest number of bootstrap resamples `evaluate` accepts (their values take 56 bytes each).
constexpr int64_t kMaxBootstrap = 10'000'000;

/// Options of `evaluate` and `evaluate_groups`.
///
/// Example: `ohem::EvalOptions().bootstrap(1000).seed(7)`
struct EvalOptions {
  /// Number of bootstrap resamples for the confidence intervals; 0 computes no intervals.
  TORCH_ARG(int64_t, bootstrap) = 0;
  /// Coverage of the percentile intervals, in (0, 1).
  TORCH_ARG(double, confidence) = 0.95;
  /// Seed of the resampling. Results do not depend on the number of threads.
  TORCH_ARG(uint64_t, seed) = 0;
  /// Threads of the bootstrap, in [0, 4096] (from 2, the point estimate's 4- and 5-parameter fits also
  /// run side by side); 0 uses LibTorch's intra-op thread count (`at::get_num_threads()`). Results are
  /// the same for every thread count.
  TORCH_ARG(int64_t, threads) = 0;
  /// Called as `progress(done, total)` from the calling thread while the bootstrap runs (about every
  /// 100 ms, and at the end); may be empty.
  TORCH_ARG(std::function<void(int64_t, int64_t)>, progress) = nullptr;
  /// Limits and tolerance of the logistic fits (`model` and `initial` are ignored).
  TORCH_ARG(FitOptions, fit) = {};
  /// Whether to compute the 4- and 5-parameter logistic fits (and, with `bootstrap`, their intervals).
  /// false: SRCC, KRCC and PLCC only, as the paper's official code evaluates (no fitting: fast); `fit4`
  /// and `fit5` are then left unfitted (`ok()` false, no parameters, `plcc` and `rmse` NaN, `message`
  /// says why) and so are their intervals (NaN).
  TORCH_ARG(bool, fits) = true;
  /// `evaluate_groups` only: a group with fewer images than this is left out of the result (0: none is
  /// left out, and a group of fewer than 2 images is an error naming it).
  TORCH_ARG(int64_t, min_group_size) = 0;
};

/// The standard IQA metrics of one set of predictions.
struct Evaluation {
  /// Number of images.
  int64_t n = 0;
  double srcc = 0, krcc = 0, plcc = 0;
  /// The 4-parameter fit (its `plcc` and `rmse` are the "fitted 4p" metrics).
  LogisticFit fit4;
  /// The 5-parameter fit (its `plcc` and `rmse` are the "fitted 5p" metrics).
  LogisticFit fit5;
  /// Bootstrap intervals, when `EvalOptions::bootstrap` > 0.
  std::optional<BootstrapIntervals> intervals;
};

/// Computes SRCC, KRCC, PLCC, the 4- and 5-parameter logistic fits (PLCC and RMSE after each; not with
/// `EvalOptions::fits(false)`) and, if requested, percentile bootstrap confidence intervals of all seven
/// numbers.
///
/// Bootstrap: `options.bootstrap()` resamples of n pairs drawn with replacement (seeded, one random
/// stream per resample: reproducible across platforms and thread counts), on `options.threads()`
/// threads; each resample's fits start from the full sample's parameters alone (or from the standard
/// starts where the full fit fell back), with tolerance max(tolerance, 1e-8) and at most
/// min(max_iterations, 50) steps, and run over the resample's distinct pairs (≈ 63 % of n) weighted by
/// how often it draws each (the same fit as on the n drawn pairs, up to rounding). Cost: about
/// B × (2 fits of 0.63 n points + a few linear passes) after 3 sorts of the sample. Percentile intervals
/// with numpy's linear interpolation between order statistics.
/// Throws like `srcc`, and if `confidence` is not in (0, 1), `bootstrap` not in [0, kMaxBootstrap] or
/// `threads` not in [0, 4096]; rethrows what `progress` throws.
/// Example: `auto e = ohem::evaluate(pred, mos, ohem::EvalOptions().bootstrap(1000)); e.fit5.plcc;`
// A template only so that a translation unit that never evaluates compiles none of the fitting code
// (see fit_logistic): call it as a function.
template <typename = void>
Evaluation evaluate(const ScoresRef& prediction, const ScoresRef& mos, const EvalOptions& options = {}) {
  detail::check_scores("ohem::evaluate", prediction, mos);
  TORCH_CHECK(options.bootstrap() >= 0 && options.bootstrap() <= kMaxBootstrap,
              "ohem::evaluate: EvalOptions::bootstrap must be in [0, ", kMaxBootstrap, "], got ",
              options.bootstrap());
  TORCH_CHECK(options.threads() >= 0 && options.threads() <= 4096,
              "ohem::evaluate: EvalOptions::threads must be in [0, 4096], got ", options.threads());
  TORCH_CHECK(options.confidence() > 0 && options.confidence() < 1,
              "ohem::evaluate: EvalOptions::confidence must be in (0, 1), got ", options.confidence());
  const int64_t n = prediction.size();
  const double *x = prediction.data(), *y = mos.data();
  Evaluation e;
  e.n = n;
  // The rank statistics and the bootstrap's sorts of the sample: beside the 5-parameter fit, the longest
  // task, when there are 2 threads.
  std::optional<detail::ResampleRanks> ranks;
  const auto rank_statistics = [&] {
    e.srcc = srcc(prediction, mos);
    e.krcc = krcc(prediction, mos);
    e.plcc = plcc(prediction, mos);
    if (options.bootstrap() > 0) ranks.emplace(x, y, n);
  };
  FitOptions fo = options.fit();
  fo.initial({});
  const FitOptions fo4 = FitOptions(fo).model(LogisticModel::FourParameter);
  const FitOptions fo5 = FitOptions(fo).model(LogisticModel::FiveParameter);
  const int64_t threads = options.threads() > 0 ? options.threads() : at::get_num_threads();
  if (!options.fits()) {
    rank_statistics();
    for (auto [fit, model] : {std::pair{&e.fit4, LogisticModel::FourParameter},
                              std::pair{&e.fit5, LogisticModel::FiveParameter}}) {
      fit->model = model;
      fit->message = "not fitted: EvalOptions::fits is false";
      fit->plcc = fit->rmse = std::numeric_limits<double>::quiet_NaN();
    }
  } else if (threads >= 2) {
    // The two fits are independent: side by side, each exactly as on one thread.
    std::exception_ptr error4, error5;
    std::thread t4([&] {
      try {
        rank_statistics();
        e.fit4 = fit_logistic(prediction, mos, fo4);
      } catch (...) {
        error4 = std::current_exception();
      }
    });
    try {
      e.fit5 = fit_logistic(prediction, mos, fo5);
    } catch (...) {
      error5 = std::current_exception();
    }
    t4.join();
    if (error4) std::rethrow_exception(error4);
    if (error5) std::rethrow_exception(error5);
  } else {
    rank_statistics();
    e.fit4 = fit_logistic(prediction, mos, fo4);
    e.fit5 = fit_logistic(prediction, mos, fo5);
  }
  if (options.bootstrap() > 0) {
    const int64_t B = options.bootstrap();
    // The four fitted metrics of one resample, into out[0..3]: PLCC and RMSE of the 4- and then the
    // 5-parameter fit. Each starts from the full sample's fit (warm start: the resample's optimum is near
    // it) with looser limits than the point estimate's (an interval needs ~4 digits, not 10), and runs
    // over the resample's distinct points weighted by their draw counts (≈ 63 % of n points: the same
    // objective and iterates as on the resample (xs, ys), up to rounding); on (xs, ys) itself where it
    // would fall back to the line or the full fit has no parameters.
    std::vector<detail::CountedFitScratch> fit_scratch(
        static_cast<size_t>(detail::resample_workers(B, threads)));
    const auto fitted = [&](const std::vector<double>& xs, const std::vector<double>& ys,
                            const detail::CountedSample& distinct, int64_t worker, double* out) {
      if (!options.fits()) {
        std::fill(out, out + 4, std::numeric_limits<double>::quiet_NaN());
        return;
      }
      int slot = 0;
      for (const LogisticFit* full : {&e.fit4, &e.fit5}) {
        FitOptions rf = options.fit();
        rf.model(full->model);
        rf.tolerance(std::max(rf.tolerance(), 1e-8));
        rf.max_iterations(std::min<int64_t>(rf.max_iterations(), 50));
        rf.initial(full->ok() ? full->params : std::vector<double>{});
        std::optional<LogisticFit> fit;
        if (!rf.initial().empty()) {
          const auto m = static_cast<int64_t>(distinct.x.size());
          const double *dx = distinct.x.data(), *dy = distinct.y.data(), *dc = distinct.c.data();
          detail::CountedFitScratch* scratch = &fit_scratch[static_cast<size_t>(worker)];
          fit = full->model == LogisticModel::FourParameter
                    ? detail::fit_logistic_counted<4>(dx, dy, dc, m, rf, rf.initial(), scratch)
                    : detail::fit_logistic_counted<5>(dx, dy, dc, m, rf, rf.initial(), scratch);
        }
        if (!fit) fit = fit_logistic(xs, ys, rf);
        out[slot++] = fit->plcc;
        out[slot++] = fit->rmse;
      }
    };
    const auto iv = detail::bootstrap_intervals(x, y, n, B, options.confidence(), options.seed(), threads,
                                                *ranks, options.progress(), fitted);
    BootstrapIntervals& out = e.intervals.emplace();
    out.samples = B;
    out.confidence = options.confidence();
    Interval* targets[] = {&out.srcc, &out.krcc, &out.plcc, &out.plcc4, &out.rmse4, &out.plcc5, &out.rmse5};
    for (int k = 0; k < detail::kBootstrapMetrics; ++k) *targets[k] = {iv[k].first, iv[k].second};
  }
  return e;
}

/// Evaluates each group (e.g. distortion type) on its own: one `Evaluation` per distinct label, in
/// label order. `groups[i]` is the label of image i.
///
/// Groups with fewer than `options.min_group_size()` images are left out.
/// Throws if `groups` has a different size from the scores, if a group left in has fewer than 2 images
/// (naming it), if `min_group_size` is negative, and like `evaluate`.
/// Example: `for (auto& [name, e] : ohem::evaluate_groups(pred, mos, distortion)) print(name, e.srcc);`
// (A template, like evaluate.)
template <typename = void>
std::map<std::string, Evaluation> evaluate_groups(const ScoresRef& prediction, const ScoresRef& mos,
                                                  const std::vector<std::string>& groups,
                                                  const EvalOptions& options = {}) {
  detail::check_scores("ohem::evaluate_groups", prediction, mos);
  TORCH_CHECK(static_cast<int64_t>(groups.size()) == prediction.size(), "ohem::evaluate_groups: groups has ",
              groups.size(), " labels but there are ", prediction.size(), " scores");
  TORCH_CHECK(options.min_group_size() >= 0,
              "ohem::evaluate_groups: EvalOptions::min_group_size must be >= 0, got ",
              options.min_group_size());
  std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> split;
  for (size_t i = 0; i < groups.size(); ++i) {
    auto& g = split[groups[i]];
    g.first.push_back(prediction[static_cast<int64_t>(i)]);
    g.second.push_back(mos[static_cast<int64_t>(i)]);
  }
  std::map<std::string, Evaluation> out;
  for (const auto& [name, g] : split) {
    if (static_cast<int64_t>(g.first.size()) < options.min_group_size()) continue;
    TORCH_CHECK(g.first.size() >= 2, "ohem::evaluate_groups: group \"", name, "\" has ", g.first.size(),
                " image; every group needs at least 2");
    out.emplace(name, evaluate(g.first, g.second, options));
  }
  return out;
}

OHEM_END_NAMESPACE
