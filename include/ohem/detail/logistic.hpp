#pragma once
/// @file
/// Internals of the logistic fits (ohem/logistic_fit.hpp): the two logistic functions with their
/// gradients, the standardisation the fits run in, and one Levenberg–Marquardt run from one start.

#include <ohem/detail/levenberg_marquardt.hpp>
#include <ohem/detail/statistics.hpp>
#include <ohem/version.hpp>

#include <Eigen/Dense>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

OHEM_BEGIN_NAMESPACE
namespace detail {

/// Returns 1/(1 + exp(−z)) without overflow.
inline double sigmoid(double z) {
  if (z >= 0) return 1.0 / (1.0 + std::exp(-z));
  const double e = std::exp(z);
  return e / (1.0 + e);
}

/// Evaluates the P-parameter logistic function (P = 4 or 5, see ohem::LogisticModel) at x; if `grad` is
/// non-null, also its gradient with respect to β.
template <int P>
double logistic_eval(const double* b, double x, double* grad) {
  static_assert(P == 4 || P == 5, "the logistic functions have 4 or 5 parameters");
  if constexpr (P == 4) {
    const double a = std::abs(b[3]);
    const double s = sigmoid((x - b[2]) / a);
    if (grad) {
      const double ds = s * (1.0 - s);
      grad[0] = s;
      grad[1] = 1.0 - s;
      grad[2] = -(b[0] - b[1]) * ds / a;
      grad[3] = -(b[0] - b[1]) * ds * (x - b[2]) / (a * a) * (b[3] >= 0 ? 1.0 : -1.0);
    }
    return (b[0] - b[1]) * s + b[1];
  } else {
    const double q = sigmoid(-b[1] * (x - b[2]));  // 1/(1 + exp(β2 (x − β3)))
    if (grad) {
      const double dq = q * (1.0 - q);
      grad[0] = 0.5 - q;
      grad[1] = b[0] * dq * (x - b[2]);
      grad[2] = -b[0] * dq * b[1];
      grad[3] = x;
      grad[4] = 1.0;
    }
    return b[0] * (0.5 - q) + b[3] * x + b[4];
  }
}

/// The affine maps x = mx + sx·z and y = my + sy·w under which a fit runs on standardised data (mean 0,
/// standard deviation 1), so that its conditioning and the starts' meaning do not depend on the scale of
/// the scores (|x| near 1e300 or 1e-300 included), and the maps of β between the two coordinates.
struct Standardization {
  double mx = 0, sx = 1, my = 0, sy = 1;

  /// Standardises x and y (neither may be constant); `z` and `w` receive the standardised values.
  static Standardization of(const double* x, const double* y, int64_t n, std::vector<double>& z,
                            std::vector<double>& w) {
    // Moments of the pow2-scaled values (exact scaling), so that nothing overflows on the way.
    const double kx = pow2_scale(x, n), ky = pow2_scale(y, n);
    z.resize(n);
    w.resize(n);
    for (int64_t i = 0; i < n; ++i) {
      z[i] = x[i] * kx;
      w[i] = y[i] * ky;
    }
    const Moments a = moments(z.data(), n), b = moments(w.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      z[i] = (z[i] - a.mean) / a.std;
      w[i] = (w[i] - b.mean) / b.std;
    }
    return {a.mean / kx, a.std / kx, b.mean / ky, b.std / ky};
  }

  /// β in data coordinates → β in standardised coordinates.
  template <int P>
  std::array<double, P> to_standard(const double* b) const {
    if constexpr (P == 4) {
      return {(b[0] - my) / sy, (b[1] - my) / sy, (b[2] - mx) / sx, b[3] / sx};
    } else {
      return {b[0] / sy, b[1] * sx, (b[2] - mx) / sx, b[3] * sx / sy, (b[3] * mx + b[4] - my) / sy};
    }
  }
  /// β in standardised coordinates → β in data coordinates.
  template <int P>
  std::array<double, P> from_standard(const double* c) const {
    if constexpr (P == 4) {
      return {my + sy * c[0], my + sy * c[1], mx + sx * c[2], sx * c[3]};
    } else {
      const double b4 = sy * c[3] / sx;
      return {sy * c[0], c[1] / sx, mx + sx * c[2], b4, my + sy * c[4] - b4 * mx};
    }
  }
};

/// The end of one Levenberg–Marquardt run of a P-parameter logistic fit on standardised data.
template <int P>
struct LogisticRun {
  std::array<double, P> params{};  ///< standardised β
  double cost = 0;                 ///< 0.5 · Σ (f(z) − w)²
  int64_t iterations = 0;
  LmEnd end = LmEnd::Failed;
};

/// Fits the P-parameter logistic function to (z, w) from `start` (standardised β).
template <int P>
LogisticRun<P> run_logistic(const std::vector<double>& z, const std::vector<double>& w,
                            const std::array<double, P>& start, int64_t max_iterations, double tolerance) {
  const int64_t n = static_cast<int64_t>(z.size());
  Eigen::Matrix<double, P, 1> s;
  for (int k = 0; k < P; ++k) s[k] = start[k];
  auto residuals = [&](const Eigen::Matrix<double, P, 1>& beta, Eigen::VectorXd& r,
                       Eigen::Matrix<double, Eigen::Dynamic, P>* J) {
    double grad[P];
    for (int64_t i = 0; i < n; ++i) {
      r[i] = logistic_eval<P>(beta.data(), z[i], J ? grad : nullptr) - w[i];
      if (J) {
        for (int k = 0; k < P; ++k) (*J)(i, k) = grad[k];
      }
    }
  };
  const auto lm = levenberg_marquardt<P>(residuals, s, n, max_iterations, tolerance, tolerance);
  LogisticRun<P> out;
  for (int k = 0; k < P; ++k) out.params[k] = lm.params[k];
  out.cost = lm.cost;
  out.iterations = lm.iterations;
  out.end = lm.end;
  return out;
}

/// The least-squares line w ≈ a·z + b of standardised data (a = PLCC, b = 0 up to rounding).
struct Line {
  double a = 0, b = 0;
};
inline Line least_squares_line(const double* x, const double* y, int64_t n) {
  const double mx = accurate_sum(n, [&](int64_t i) { return x[i]; }) / static_cast<double>(n);
  const double my = accurate_sum(n, [&](int64_t i) { return y[i]; }) / static_cast<double>(n);
  const double sxx = accurate_sum(n, [&](int64_t i) { return (x[i] - mx) * (x[i] - mx); });
  const double sxy = accurate_sum(n, [&](int64_t i) { return (x[i] - mx) * (y[i] - my); });
  const double a = is_constant(x, n) || !(sxx > 0) ? 0.0 : sxy / sxx;
  return {a, my - a * mx};
}

/// A coarse search for a start on standardised data: for each centre (the 10 %, 20 %, ..., 90 % quantiles
/// of z) and slope (1/4 to 32, doubling) of the sigmoid, the parameters that enter linearly (4p: the two
/// asymptotes; 5p: amplitude, linear term and offset) are solved by least squares; returns the grid
/// point with the smallest squared error (standardised β). Cost: 72 passes over the data.
template <int P>
std::array<double, P> grid_start(const std::vector<double>& z, const std::vector<double>& w) {
  constexpr int L = P == 4 ? 2 : 3;  // linear parameters
  const int64_t n = static_cast<int64_t>(z.size());
  std::vector<double> sorted(z);
  std::sort(sorted.begin(), sorted.end());
  const double ww = accurate_sum(n, [&](int64_t i) { return w[i] * w[i]; });
  double best_sse = std::numeric_limits<double>::infinity();
  std::array<double, P> best{};
  for (int qi = 1; qi <= 9; ++qi) {
    const double c = sorted[static_cast<size_t>(qi * (n - 1) / 10)];
    for (double k = 0.25; k <= 32; k *= 2) {
      Eigen::Matrix<double, L, L> A = Eigen::Matrix<double, L, L>::Zero();
      Eigen::Matrix<double, L, 1> g = Eigen::Matrix<double, L, 1>::Zero();
      for (int64_t i = 0; i < n; ++i) {
        const double s = sigmoid(k * (z[i] - c));
        Eigen::Matrix<double, L, 1> phi;
        if constexpr (P == 4) {
          phi << s, 1.0 - s;
        } else {
          phi << s - 0.5, z[i], 1.0;  // 0.5 − 1/(1 + exp(k (z − c))) = sigmoid(k (z − c)) − 0.5
        }
        A.noalias() += phi * phi.transpose();
        g.noalias() += phi * w[i];
      }
      const Eigen::Matrix<double, L, 1> theta = A.ldlt().solve(g);
      if (!theta.allFinite()) continue;
      const double sse = ww - 2 * theta.dot(g) + theta.dot(A * theta);
      if (!(sse < best_sse)) continue;
      best_sse = sse;
      if constexpr (P == 4) {
        best = {theta[0], theta[1], c, 1.0 / k};
      } else {
        best = {theta[0], k, c, theta[1], theta[2]};
      }
    }
  }
  return best;
}

}  // namespace detail
OHEM_END_NAMESPACE
