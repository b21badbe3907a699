#pragma once
/// @file
/// Internals of the logistic fits (ohem/logistic_fit.hpp): a small dense Levenberg–Marquardt solver on
/// Eigen.
///
/// Our own solver rather than Eigen's unsupported modules: `unsupported/Eigen/LevenbergMarquardt` and
/// `unsupported/Eigen/NonLinearOptimization` both define `Eigen::LevenbergMarquardt`, so a header that
/// includes one breaks every user translation unit that includes the other.

#include <ohem/version.hpp>

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

OHEM_BEGIN_NAMESPACE
namespace detail {

/// How a Levenberg–Marquardt run ended.
enum class LmEnd {
  Converged,       ///< a relative step, reduction or gradient test passed
  IterationLimit,  ///< max_iterations accepted steps without meeting a test
  Failed,          ///< the start had a non-finite cost or no finite step could be taken
};

/// Result of `levenberg_marquardt`.
template <int P>
struct LmResult {
  Eigen::Matrix<double, P, 1> params;
  double cost = 0;  ///< 0.5 · sum of squared residuals at `params`
  int64_t iterations = 0;
  LmEnd end = LmEnd::Failed;
};

/// Minimises 0.5·‖r(β)‖² by Levenberg–Marquardt with Marquardt's diagonal scaling (the running maximum
/// of diag(JᵀJ), as MINPACK does) and Nielsen's damping update.
///
/// `model(beta, A, g)` returns the cost 0.5·‖r(β)‖² and sets A = JᵀJ and g = Jᵀr (J: the n × P Jacobian
/// of the residuals r), all from one pass over the data that stores neither r nor J. Stops
/// when an accepted step changes β by at most `xtol`·(‖β‖ + xtol), when both the actual and the predicted
/// relative cost reductions are at most `ftol`, when the cost is 0, or when no finite damping gives a
/// decrease (the minimum is reached to rounding). Never returns non-finite parameters: a failed start
/// returns the start with `LmEnd::Failed`.
template <int P, class Model>
LmResult<P> levenberg_marquardt(Model&& model, const Eigen::Matrix<double, P, 1>& start,
                                int64_t max_iterations, double ftol, double xtol) {
  using Vec = Eigen::Matrix<double, P, 1>;
  using Mat = Eigen::Matrix<double, P, P>;
  // The normal equations are evaluated with every trial's cost (the model computes both in one pass), so
  // an accepted step needs no second evaluation at the same point.
  Mat A, A_new;
  Vec g, g_new;
  LmResult<P> out;
  out.params = start;
  Vec beta = start;
  double cost = model(beta, A, g);
  if (!std::isfinite(cost) || !A.allFinite() || !g.allFinite()) return out;
  out.cost = cost;
  out.end = LmEnd::Converged;
  if (cost == 0) return out;

  Vec D = A.diagonal().cwiseMax(std::numeric_limits<double>::min());
  double mu = 1e-3, nu = 2.0;
  while (out.iterations < max_iterations) {
    D = D.cwiseMax(A.diagonal());
    Mat M = A;
    M.diagonal() += mu * D;
    const Vec step = M.ldlt().solve(-g);
    const double predicted = 0.5 * step.dot(mu * D.cwiseProduct(step) - g);
    if (!step.allFinite() || !(predicted > 0)) {
      mu *= nu;
      nu *= 2;
      if (!(mu < 1e300)) {
        if (out.iterations == 0) out.end = LmEnd::Failed;
        return out;
      }
      continue;
    }
    const Vec trial = beta + step;
    const double cost_new = model(trial, A_new, g_new);
    const double actual = cost - cost_new;
    if (std::isfinite(cost_new) && actual > 0) {
      const double rho = actual / predicted;
      beta = trial;
      out.iterations++;
      const bool small_step = step.norm() <= xtol * (beta.norm() + xtol);
      const bool small_reduction = actual <= ftol * cost && predicted <= ftol * cost;
      cost = cost_new;
      out.params = beta;
      out.cost = cost;
      if (small_step || small_reduction || cost == 0) return out;
      if (!A_new.allFinite() || !g_new.allFinite()) return out;
      A = A_new;
      g = g_new;
      mu *= std::max(1.0 / 3.0, 1.0 - std::pow(2.0 * rho - 1.0, 3));
      nu = 2.0;
    } else {
      // No decrease: at the minimum to rounding once the step is negligible, else damp harder.
      if (step.norm() <= std::numeric_limits<double>::epsilon() * (beta.norm() + 1e-300)) return out;
      mu *= nu;
      nu *= 2;
      if (!(mu < 1e300)) return out;
    }
  }
  if (out.iterations >= max_iterations) out.end = LmEnd::IterationLimit;
  return out;
}

}  // namespace detail
OHEM_END_NAMESPACE
