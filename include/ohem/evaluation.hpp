#pragma once
/// @file
/// The standard IQA evaluation of one set of predictions: SRCC, KRCC, PLCC and the 4- and 5-parameter
/// logistic fits, optionally with seeded, thread-count-independent bootstrap confidence intervals, and
/// the same per group (e.g. distortion type). See docs/metrics.md.

#include <ohem/correlation.hpp>
#include <ohem/detail/bootstrap.hpp>
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

namespace detail {

/// A bootstrap resample as its distinct points (x, y) and how often it draws each (c).
struct CountedSample {
  std::vector<double> x, y, c;
};

/// The four fitted metrics of one resample given the full sample's fits (warm starts), into out[0..3]:
/// PLCC and RMSE of the 4- and then the 5-parameter fit. Each fit runs over the resample's distinct
/// points `distinct` weighted by their draw counts (≈ 63 % of n points: the same objective and iterates
/// as on the resample (xs, ys), up to rounding), and on (xs, ys) itself where it would fall back to the
/// line or the full fit has no parameters. `scratch`: the worker's buffers for the counted fits.
/// (Templates, here and below, only so that a translation unit that never evaluates compiles none of the
/// fitting code: see `fit_logistic`.)
template <typename = void>
void resample_fits(const std::vector<double>& xs, const std::vector<double>& ys,
                   const CountedSample& distinct, const Evaluation& point, const FitOptions& base,
                   double* out, CountedFitScratch& scratch) {
  int slot = 0;
  for (const LogisticFit* full : {&point.fit4, &point.fit5}) {
    // Warm start from the full sample's fit: the resample's optimum is near it.
    // Looser limits than the point estimate's: an interval needs ~4 digits, not 10.
    FitOptions fo = base;
    fo.model(full->model);
    fo.tolerance(std::max(fo.tolerance(), 1e-8));
    fo.max_iterations(std::min<int64_t>(fo.max_iterations(), 50));
    fo.initial(full->ok() ? full->params : std::vector<double>{});
    std::optional<LogisticFit> fit;
    if (!fo.initial().empty()) {
      const auto m = static_cast<int64_t>(distinct.x.size());
      const double *dx = distinct.x.data(), *dy = distinct.y.data(), *dc = distinct.c.data();
      fit = full->model == LogisticModel::FourParameter
                ? fit_logistic_counted<4>(dx, dy, dc, m, fo, fo.initial(), &scratch)
                : fit_logistic_counted<5>(dx, dy, dc, m, fo, fo.initial(), &scratch);
    }
    if (!fit) fit = fit_logistic(xs, ys, fo);
    out[slot++] = fit->plcc;
    out[slot++] = fit->rmse;
  }
}

/// One bootstrap worker's buffers, reused from resample to resample (no allocation after the first).
struct BootstrapScratch {
  std::vector<int64_t> idx;
  std::vector<double> xs, ys;
  CountedSample distinct;
  ResampleRanks::Scratch ranks;
  CountedFitScratch fit;
};

/// The bootstrap intervals of `evaluate`; `ranks` holds the original sample's sorts (`ResampleRanks` of
/// x, y, n), made by the caller so that they can run beside the point estimate's fits.
template <typename = void>
BootstrapIntervals bootstrap(const double* x, const double* y, int64_t n, const EvalOptions& options,
                             const Evaluation& point, const ResampleRanks& ranks) {
  const int64_t B = options.bootstrap();
  std::vector<std::vector<double>> values(7, std::vector<double>(B));
  const int64_t threads = options.threads() > 0 ? options.threads() : at::get_num_threads();
  // Each resample's ranks and Kendall's tau follow from the original sample's three sorts (`ranks`) and
  // how often it draws each pair (the same numbers as sorting the resample).
  std::vector<BootstrapScratch> scratch(static_cast<size_t>(resample_workers(B, threads)));
  parallel_resamples(
      B, threads,
      [&](int64_t b, int64_t worker) {
        BootstrapScratch& s = scratch[static_cast<size_t>(worker)];
        resample_indices(options.seed(), b, n, s.idx);
        s.xs.resize(n);
        s.ys.resize(n);
        for (int64_t i = 0; i < n; ++i) {
          s.xs[i] = x[s.idx[i]];
          s.ys[i] = y[s.idx[i]];
        }
        double v[7];
        std::tie(v[0], v[1]) = ranks.srcc_krcc(s.idx, s.ranks);  // also counts the draws of each pair
        v[2] = pearson(s.xs.data(), s.ys.data(), n);
        CountedSample& d = s.distinct;
        d.x.clear(), d.y.clear(), d.c.clear();
        for (int64_t j = 0; j < n; ++j) {
          if (const int64_t c = s.ranks.count[static_cast<size_t>(j)]; c > 0) {
            d.x.push_back(x[j]);
            d.y.push_back(y[j]);
            d.c.push_back(static_cast<double>(c));
          }
        }
        resample_fits(s.xs, s.ys, d, point, options.fit(), v + 3, s.fit);
        for (int k = 0; k < 7; ++k) values[k][b] = v[k];
      },
      options.progress());
  const double alpha = 1.0 - options.confidence();
  BootstrapIntervals out;
  out.samples = B;
  out.confidence = options.confidence();
  Interval* targets[] = {&out.srcc, &out.krcc, &out.plcc, &out.plcc4, &out.rmse4, &out.plcc5, &out.rmse5};
  for (int k = 0; k < 7; ++k) {
    std::sort(values[k].begin(), values[k].end());
    *targets[k] = {sorted_quantile(values[k], alpha / 2), sorted_quantile(values[k], 1 - alpha / 2)};
  }
  return out;
}

}  // namespace detail

/// Computes SRCC, KRCC, PLCC, the 4- and 5-parameter logistic fits (PLCC and RMSE after each) and,
/// if requested, percentile bootstrap confidence intervals of all seven numbers.
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
  if (threads >= 2) {
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
  if (options.bootstrap() > 0) e.intervals = detail::bootstrap(x, y, n, options, e, *ranks);
  return e;
}

/// Evaluates each group (e.g. distortion type) on its own: one `Evaluation` per distinct label, in
/// label order. `groups[i]` is the label of image i.
///
/// Throws if `groups` has a different size from the scores, if a group has fewer than 2 images (naming
/// it), and like `evaluate`.
/// Example: `for (auto& [name, e] : ohem::evaluate_groups(pred, mos, distortion)) print(name, e.srcc);`
// (A template, like evaluate.)
template <typename = void>
std::map<std::string, Evaluation> evaluate_groups(const ScoresRef& prediction, const ScoresRef& mos,
                                                  const std::vector<std::string>& groups,
                                                  const EvalOptions& options = {}) {
  detail::check_scores("ohem::evaluate_groups", prediction, mos);
  TORCH_CHECK(static_cast<int64_t>(groups.size()) == prediction.size(), "ohem::evaluate_groups: groups has ",
              groups.size(), " labels but there are ", prediction.size(), " scores");
  std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> split;
  for (size_t i = 0; i < groups.size(); ++i) {
    auto& g = split[groups[i]];
    g.first.push_back(prediction[static_cast<int64_t>(i)]);
    g.second.push_back(mos[static_cast<int64_t>(i)]);
  }
  std::map<std::string, Evaluation> out;
  for (const auto& [name, g] : split) {
    TORCH_CHECK(g.first.size() >= 2, "ohem::evaluate_groups: group \"", name, "\" has ", g.first.size(),
                " image; every group needs at least 2");
    out.emplace(name, evaluate(g.first, g.second, options));
  }
  return out;
}

OHEM_END_NAMESPACE
