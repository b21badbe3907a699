#!/usr/bin/python3
"""Generates tests/data/metrics/fits_expected.csv: scipy's best logistic fits on KonIQ-like cases where a
single Levenberg-Marquardt run from the usual data-driven start stops at a poor optimum (issue 11).

Run with Debian's python3-scipy / python3-numpy (scipy 1.10, numpy 1.24):

    /usr/bin/python3 tests/data/generate_fit_fixtures.py

The cases are not stored as data: this script and tests/test_metrics.cpp (`koniq_like_case`) both build
them from integers of Knuth's MMIX LCG with exact integer arithmetic followed by correctly rounded IEEE
operations, so both languages produce bit-identical doubles:

  q = u1 + u2 + u3                      (three 20-bit draws: a bell-shaped "true quality" in [0, 3N), N = 2^20)
  e = floor((u4 - N/2) / 2)             (noise)
  A = clamp(floor((q + e) / 3), 0, N)
  prediction = 0.5 * A^2 / (A^2 + (N - A)^2) + 0.5 * (A / N)   (a sigmoid-distorted, noisy score)
  mos = 1 + (4 q) / (3 N)                                          (MOS on KonIQ's 1..5 scale)

For each case and model, scipy's curve_fit (MINPACK lmdif, method "lm", the usual call) runs from the
starts IQA code passes (4p: [max(mos), min(mos), mean(pred), std(pred)], pyiqa's [max, min, mean(pred),
std(pred)/4], and [max, min, mean(pred), 0.5]; 5p: the data-driven start of docs/metrics.md, DBCNN's
[10, 0, mean(pred), 0.1, 0.1] and pyiqa's [10, 0, mean(mos), 0.1, 0.1]); the row records the lowest
RMSE any of them reached and its PLCC, plus the least-squares line's PLCC and RMSE.
"""

import os
import warnings

import numpy as np
from scipy import optimize, stats

from generate_metrics_fixtures import initial_values, logistic4, logistic5

HERE = os.path.dirname(os.path.abspath(__file__))
N = 1 << 20
MASK = (1 << 64) - 1


def koniq_like_case(n):
    s = 20240601

    def draw():
        nonlocal s
        s = (s * 6364136223846793005 + 1442695040888963407) & MASK
        return s >> 44

    x = np.empty(n)
    y = np.empty(n)
    for i in range(n):
        q = draw() + draw() + draw()
        e = (draw() - (N >> 1)) // 2
        a = min(max((q + e) // 3, 0), N)
        x[i] = 0.5 * (float(a * a) / float(a * a + (N - a) * (N - a))) + 0.5 * (a / N)
        y[i] = 1.0 + (4.0 * q) / (3.0 * N)
    return x, y


def best_fit(f, x, y, starts):
    best = None
    for p0 in starts:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                popt, _ = optimize.curve_fit(f, x, y, p0=p0, maxfev=20000)
        except RuntimeError:
            continue  # "Optimal parameters not found": this start gives no result
        yhat = f(x, *popt)
        r = (float(np.sqrt(np.mean((yhat - y) ** 2))), float(stats.pearsonr(yhat, y)[0]))
        if np.isfinite(r[0]) and (best is None or r[0] < best[0]):
            best = r
    assert best is not None
    return best


def main():
    rows = []
    for n in (10000, 100000):
        x, y = koniq_like_case(n)
        p4, p5 = initial_values(x, y)
        hi, lo, m, s = np.max(y), np.min(y), np.mean(x), np.std(x)
        rmse4, plcc4 = best_fit(logistic4, x, y, [p4, [hi, lo, m, s / 4], [hi, lo, m, 0.5]])
        rmse5, plcc5 = best_fit(logistic5, x, y, [p5, [10, 0, m, 0.1, 0.1], [10, 0, np.mean(y), 0.1, 0.1]])
        a, b = np.polyfit(x, y, 1)
        line_rmse = float(np.sqrt(np.mean((a * x + b - y) ** 2)))
        row = [f"koniq_like_{n}", n, stats.pearsonr(x, y)[0], line_rmse, plcc4, rmse4, plcc5, rmse5]
        print(row)
        rows.append(",".join(str(v) if isinstance(v, (int, str)) else repr(float(v)) for v in row))
    with open(os.path.join(HERE, "metrics", "fits_expected.csv"), "w") as f:
        f.write("case,n,plcc,line_rmse,plcc4,rmse4,plcc5,rmse5\n")
        for r in rows:
            f.write(r + "\n")


if __name__ == "__main__":
    main()
