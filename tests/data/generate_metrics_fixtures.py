#!/usr/bin/python3
"""Generates the IQA metric fixtures of tests/test_metrics.cpp with an independent implementation.

Run from anywhere with Debian's python3-scipy / python3-numpy (scipy 1.10, numpy 1.24):

    /usr/bin/python3 tests/data/generate_metrics_fixtures.py

Writes tests/data/metrics/<case>.csv (the data, in ohem-eval's format: name,mos,prediction; every
double printed with 17 significant digits so it round-trips exactly) and tests/data/metrics/expected.csv
(one row per case: scipy's spearmanr, kendalltau (tau-b), pearsonr, and PLCC / RMSE after curve_fit of
the 4- and 5-parameter logistic functions, plus the initial values and the fitted parameters).

The case "lcg_100000" is not stored as data: both this script and the C++ test generate it from the
integer formula in `lcg_case` (exact integer arithmetic, then division by a power of two, so both
languages produce bit-identical doubles).

The logistic functions and their data-driven initial values are the ones documented in docs/metrics.md
and implemented in include/ohem/metrics.hpp (`ohem::logistic_initial_params`):

  4p: f(x) = (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2
      b1 = max(mos), b2 = min(mos) (swapped when PLCC(pred, mos) < 0), b3 = mean(pred), b4 = std(pred)
  5p: f(x) = b1 * (0.5 - 1 / (1 + exp(b2 * (x - b3)))) + b4 * x + b5
      b1 = max(mos) - min(mos), b2 = sign(PLCC) / std(pred), b3 = mean(pred), b4 = 0,
      b5 = (max(mos) + min(mos)) / 2
  (std with ddof = 0; sign(0) = +1.)
"""

import os

import numpy as np
from scipy import optimize, stats

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "metrics")


def logistic4(x, b1, b2, b3, b4):
    with np.errstate(over="ignore"):
        return (b1 - b2) / (1.0 + np.exp(-(x - b3) / abs(b4))) + b2


def logistic4_jac(x, b1, b2, b3, b4):
    a = abs(b4)
    with np.errstate(over="ignore"):
        e = np.exp(-(x - b3) / a)
    s = 1.0 / (1.0 + e)  # sigmoid((x - b3) / a)
    ds = s * (1.0 - s)
    sign = 1.0 if b4 >= 0 else -1.0
    return np.column_stack([s, 1.0 - s, -(b1 - b2) * ds / a, -(b1 - b2) * ds * (x - b3) / (a * a) * sign])


def logistic5(x, b1, b2, b3, b4, b5):
    with np.errstate(over="ignore"):
        return b1 * (0.5 - 1.0 / (1.0 + np.exp(b2 * (x - b3)))) + b4 * x + b5


def logistic5_jac(x, b1, b2, b3, b4, b5):
    with np.errstate(over="ignore"):
        q = 1.0 / (1.0 + np.exp(b2 * (x - b3)))
    dq = q * (1.0 - q)  # -d q / d(b2 (x - b3))
    return np.column_stack([0.5 - q, b1 * dq * (x - b3), -b1 * dq * b2, x, np.ones_like(x)])


def initial_values(x, y):
    r = stats.pearsonr(x, y)[0]
    sign = 1.0 if r >= 0 else -1.0
    s = np.std(x)
    hi, lo = np.max(y), np.min(y)
    p4 = [hi, lo, np.mean(x), s] if sign > 0 else [lo, hi, np.mean(x), s]
    p5 = [hi - lo, sign / s, np.mean(x), 0.0, (hi + lo) / 2.0]
    return p4, p5


def fit(f, jac, x, y, p0):
    """curve_fit (MINPACK lmder) from p0, to a tight tolerance. Checks that the optimum is well defined:
    a loose fit (1e-8) must give the same RMSE to 1e-9, else the case is unsuitable as a fixture."""
    results = []
    for tol in (1e-14, 1e-8):
        popt, _ = optimize.curve_fit(f, x, y, p0=p0, jac=jac, method="lm", ftol=tol, xtol=tol, gtol=0.0,
                                     maxfev=10000)
        yhat = f(x, *popt)
        results.append((popt, stats.pearsonr(yhat, y)[0], float(np.sqrt(np.mean((yhat - y) ** 2)))))
    assert abs(results[0][2] - results[1][2]) <= 1e-9 * results[0][2], results
    return results[0]


def lcg_case(n):
    """x = a / 2^20 and y = a^3 / (a^3 + (2^20 - a)^3) + b / 2^22, i.e. y = sigmoid(3 logit(x)) plus
    uniform noise in [0, 1/4), with a and b the top 20 bits of two successive steps of Knuth's MMIX LCG.
    The integers are exact below 2^63, and their conversion to double, the division and the sum are
    correctly rounded IEEE operations, so C++ reproduces every value bit for bit."""
    state = 12345
    mask = (1 << 64) - 1
    x = np.empty(n)
    y = np.empty(n)
    for i in range(n):
        state = (state * 6364136223846793005 + 1442695040888963407) & mask
        a = state >> 44
        state = (state * 6364136223846793005 + 1442695040888963407) & mask
        b = state >> 44
        x[i] = a / 2.0**20
        y[i] = float(a**3) / float(a**3 + (2**20 - a) ** 3) + b / 2.0**22
    return x, y


def cases():
    rng = np.random.default_rng(20230401)
    out = {}
    # Random predictions with a saturating (logistic-shaped) relation to MOS plus noise, as IQA data
    # usually have: the 4p and 5p fits then have a well-defined optimum (on purely linear data the
    # logistic optimum lies at infinity and no two implementations stop at the same point).
    for n, noise in ((10, 0.05), (1000, 0.3)):
        x = rng.uniform(0.0, 1.0, n)
        out[f"random_{n}"] = (x, 1.0 + 4.0 / (1.0 + np.exp(-8.0 * (x - 0.45))) + rng.normal(0.0, noise, n))
    # Heavy ties: integer predictions in 0..9, integer MOS in 1..5.
    x = rng.integers(0, 10, 1000).astype(float)
    y = np.clip(np.round(1.0 + x * 0.4 + rng.normal(0.0, 0.8, 1000)), 1, 5)
    out["ties_1000"] = (x, y)
    # Reversed order: a decreasing relation (the model's score is a badness score).
    x = np.sort(rng.uniform(0.0, 10.0, 500))
    out["reversed_500"] = (x, 20.0 + 60.0 / (1.0 + np.exp(x - 5.0)) + rng.normal(0.0, 4.0, 500))
    # A monotone non-linear relation (a logistic plus noise): the fits matter here.
    x = rng.uniform(-2.0, 2.0, 1000)
    out["nonlinear_1000"] = (x, 1.0 + 4.0 / (1.0 + np.exp(-2.5 * x)) + rng.normal(0.0, 0.15, 1000))
    out["lcg_100000"] = lcg_case(100000)
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    rows = []
    for name, (x, y) in cases().items():
        if name != "lcg_100000":
            with open(os.path.join(OUT, name + ".csv"), "w") as f:
                f.write("name,mos,prediction\n")
                for i, (xi, yi) in enumerate(zip(x, y)):
                    f.write(f"img_{i:05d}.png,{yi!r},{xi!r}\n")
        p4, p5 = initial_values(x, y)
        b4, plcc4, rmse4 = fit(logistic4, logistic4_jac, x, y, p4)
        b5, plcc5, rmse5 = fit(logistic5, logistic5_jac, x, y, p5)
        values = [len(x), stats.spearmanr(x, y)[0], stats.kendalltau(x, y, variant="b")[0],
                  stats.pearsonr(x, y)[0], plcc4, rmse4, plcc5, rmse5, *p4, *p5, *b4, *b5]
        rows.append(",".join([name] + [repr(float(v)) if not isinstance(v, int) else str(v) for v in values]))
        print(name, "srcc", values[1], "krcc", values[2], "plcc", values[3], "fit4", plcc4, rmse4, "fit5", plcc5,
              rmse5)
    header = ["case", "n", "srcc", "krcc", "plcc", "plcc4", "rmse4", "plcc5", "rmse5"]
    header += [f"init4_{i}" for i in range(1, 5)] + [f"init5_{i}" for i in range(1, 6)]
    header += [f"beta4_{i}" for i in range(1, 5)] + [f"beta5_{i}" for i in range(1, 6)]
    with open(os.path.join(OUT, "expected.csv"), "w") as f:
        f.write(",".join(header) + "\n")
        for r in rows:
            f.write(r + "\n")


if __name__ == "__main__":
    main()
