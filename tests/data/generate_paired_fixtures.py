#!/usr/bin/python3
"""Generates the fixtures of tests/test_paired.cpp (ohem/paired.hpp) with independent implementations.

Run from anywhere with Debian's python3-scipy / python3-numpy (scipy 1.10, numpy 1.24):

    /usr/bin/python3 tests/data/generate_paired_fixtures.py

Writes tests/data/paired/expected.json (Python's json writes every double in its shortest round-trip
form, so the C++ test reads back the same doubles):

- "t_tests": per case the inputs (a and b, or the differences) and the confidence level, with
  scipy.stats.ttest_rel / ttest_1samp (t, two-sided p), numpy's mean and std(ddof=1), scipy.stats.sem,
  the quantile c = t_ppf((1 + confidence) / 2, n − 1) and the interval mean ± c · sem (what
  scipy.stats.t.interval computes, with the polished quantile).
- "t_distribution": scipy.stats.t.cdf and t_ppf at extreme arguments (df = 1, tiny tails).
  t_ppf is scipy.stats.t.ppf polished by Newton steps on scipy.stats.t.sf: scipy 1.10's t.ppf alone is
  off by up to ~2e-9 relative, its t.sf by ~1e-15 (both measured against 40-digit mpmath roots).
- "sign_flip": the exact sign-flip p-value by brute force over itertools.product({−1, +1}^n), with the
  tie rule of ohem/paired.hpp (|Σ s_i d_i| >= |Σ d_i| − 1e-12 · Σ|d_i|) evaluated in exact rational
  arithmetic (fractions.Fraction) for n <= 14 and in numpy doubles for n = 20.
- "holm": Holm's step-down adjustment written from the textbook (sort ascending, multiply the k-th
  smallest by m − k + 1, running maximum, cap at 1, back to input order).
- "power" and "mde": the power of the two-sided paired t-test from scipy.stats.nct,
  power = 1 − nct.cdf(c, df, λ) + nct.cdf(−c, df, λ), λ = δ√n / sd, c = t_ppf(1 − α/2, df), and the
  minimum detectable effect δ solving power = target by scipy.optimize.brentq (xtol 1e-15, rtol 8.9e-16, brentq's smallest).
  If mpmath is installed, the powers are cross-checked against a 30-digit quadrature of the noncentral t
  and the largest discrepancy is printed on stderr (not stored).
"""

import itertools
import json
import os
import sys
from fractions import Fraction

import numpy as np
from scipy import optimize, stats

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "paired")


def lcg_values(n, seed, scale, shift):
    """Reproducible pseudo-random doubles (no numpy RNG version dependence)."""
    out, state = [], seed
    for _ in range(n):
        state = (state * 6364136223846793005 + 1442695040888963407) % 2**64
        out.append(shift + scale * ((state >> 11) / 2.0**53 - 0.5))
    return out


def t_ppf(q, df):
    """scipy.stats.t.ppf(q, df) for q >= 1/2, polished by Newton steps on scipy.stats.t.sf.

    scipy 1.10's t.ppf is accurate to only ~2e-9 relative (e.g. df 100, q 0.9995; measured against a
    40-digit mpmath root), its t.sf (cephes stdtr) to ~1e-15: three Newton steps on the tail reach it.
    """
    t, tail = float(stats.t.ppf(q, df)), 1.0 - q  # 1 - q is exact for q in [1/2, 1]
    for _ in range(3):
        t += (float(stats.t.sf(t, df)) - tail) / float(stats.t.pdf(t, df))
    return t


def t_case(name, confidence, a=None, b=None, d=None):
    if d is None:
        a, b = np.array(a, dtype=float), np.array(b, dtype=float)
        d = a - b
        res = stats.ttest_rel(a, b)
    else:
        d = np.array(d, dtype=float)
        res = stats.ttest_1samp(d, 0.0)
    n = len(d)
    mean, sd = float(np.mean(d)), float(np.std(d, ddof=1))
    se = float(stats.sem(d))
    c = t_ppf(0.5 + confidence / 2, n - 1)  # scipy.stats.t.interval with the polished quantile
    lower, upper = mean - c * se, mean + c * se
    case = {"name": name, "confidence": confidence}
    if a is not None:
        case["a"], case["b"] = [float(x) for x in a], [float(x) for x in b]
    else:
        case["differences"] = [float(x) for x in d]
    case.update(
        n=n, df=n - 1, mean=mean, sd=sd, se=se, t=float(res.statistic), p_value=float(res.pvalue),
        t_critical=c, lower=float(lower), upper=float(upper))
    return case


def t_cases():
    return [
        t_case("n2", 0.95, a=[0.712, 0.745], b=[0.701, 0.690]),
        t_case("n2_conf99_df1", 0.99, a=[0.712, 0.745], b=[0.701, 0.690]),
        t_case("n3_ties", 0.95, d=[0.01, 0.01, 0.02]),
        t_case("n5_positive", 0.95, d=[0.012, 0.004, 0.020, 0.007, 0.015]),
        t_case("n5_negative", 0.95, a=[0.801, 0.795, 0.812, 0.788, 0.806], b=[0.810, 0.809, 0.815, 0.801, 0.808]),
        t_case("n5_study_like", 0.95, d=[-0.004, -0.012, 0.003, -0.008, -0.001]),
        t_case("n6_mixed", 0.95, d=[0.01, 0.02, 0.03, -0.01, 0.02, 0.0]),
        t_case("n6_conf50", 0.5, d=[0.01, 0.02, 0.03, -0.01, 0.02, 0.0]),
        t_case("n10", 0.95, d=lcg_values(10, 1, 0.04, 0.005)),
        t_case("n10_conf999", 0.999, d=lcg_values(10, 2, 0.04, -0.003)),
        t_case("n20", 0.95, a=lcg_values(20, 3, 0.1, 0.85), b=lcg_values(20, 4, 0.1, 0.84)),
        t_case("n6_large_t", 0.95, d=[1.0, 1.0 + 1e-9, 1.0 - 1e-9, 1.0 + 2e-9, 1.0, 1.0 - 2e-9]),
    ]


def t_distribution():
    rows = []
    for df, t in [(1, 0.5), (1, -3.0), (1, 63.0), (1, 1e6), (2, 10.0), (3, 50.0), (4, -0.25), (5, 2.5706),
                  (9, 6.0), (19, 12.0), (19, -12.0), (100, 3.0)]:
        rows.append({"kind": "cdf", "df": df, "x": t, "value": float(stats.t.cdf(t, df))})
    for df, q in [(1, 0.995), (1, 0.975), (1, 0.9999995), (2, 0.975), (4, 0.995), (5, 0.75), (9, 0.975),
                  (19, 0.975), (19, 0.9995), (100, 0.975)]:
        rows.append({"kind": "ppf", "df": df, "x": q, "value": t_ppf(q, df)})
    return rows


def sign_flip_p(d):
    n = len(d)
    if n <= 14:
        exact = [Fraction(x) for x in d]
        observed = abs(sum(exact))
        threshold = observed - Fraction(1, 10**12) * sum(abs(x) for x in exact)
        count = sum(1 for s in itertools.product((1, -1), repeat=n)
                    if abs(sum(si * x for si, x in zip(s, exact))) >= threshold)
    else:
        v = np.array(d, dtype=float)
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
        sums = np.abs(signs @ v)
        threshold = abs(v.sum()) - 1e-12 * np.abs(v).sum()
        count = int(np.count_nonzero(sums >= threshold))
    return count, 2**n


def sign_flip_cases():
    cases = [
        ("n2", [0.011, 0.055]),
        ("n3_ties", [0.01, 0.01, 0.02]),
        ("n4_decimal_tie", [0.1, 0.2, -0.3, 0.5]),  # 10 patterns with the tie rule, 8 without it
        ("n5_positive", [0.012, 0.004, 0.020, 0.007, 0.015]),
        ("n5_integers", [1.0, 2.0, 3.0, 4.0, 5.0]),
        ("n5_study_like", [-0.004, -0.012, 0.003, -0.008, -0.001]),
        ("n6_mixed_decimal_ties", [0.01, 0.02, 0.03, -0.01, 0.02, 0.0]),
        ("n6_integer_ties", [1.0, -1.0, 2.0, 2.0, -3.0, 1.0]),
        ("n8_zero_mean", [1.0, -1.0, 2.0, -2.0, 3.0, -3.0, 0.5, -0.5]),
        ("n10", lcg_values(10, 1, 0.04, 0.005)),
        ("n12", lcg_values(12, 5, 0.04, 0.01)),
        ("n20", lcg_values(20, 6, 0.04, 0.004)),
    ]
    out = []
    for name, d in cases:
        count, total = sign_flip_p(d)
        out.append({"name": name, "differences": d, "extreme_patterns": count, "patterns": total,
                    "p_value": count / total})
    return out


def holm(p):
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    adjusted, running = [0.0] * m, 0.0
    for k, i in enumerate(order):  # k-th smallest (0-based) is multiplied by m - k
        running = max(running, min(1.0, (m - k) * p[i]))
        adjusted[i] = running
    return adjusted


def holm_cases():
    inputs = [
        [0.01, 0.04, 0.03],
        [0.2, 0.001, 0.04, 0.04, 0.5, 0.012],
        [0.0625, 0.0625, 0.125, 0.375, 1.0, 0.03125],
        [0.9],
        [0.5, 0.6],
    ]
    return [{"p_values": p, "adjusted": holm(p)} for p in inputs]


def nct_power(lam, df, c):
    with np.errstate(all="ignore"):  # Boost's underflow of the far tail at large λ: 0, as it should be
        return float(1.0 - stats.nct.cdf(c, df, lam) + stats.nct.cdf(-c, df, lam))


def power_cases():
    out = []
    for n, effect, sd, alpha in [(2, 0.05, 0.01, 0.05), (3, 0.02, 0.01, 0.05), (5, 0.01, 0.008, 0.05),
                                 (6, 0.01, 0.008, 0.05), (6, -0.01, 0.008, 0.05), (10, 0.005, 0.01, 0.05),
                                 (20, 0.003, 0.01, 0.05), (10, 0.01, 0.01, 0.01), (5, 0.0, 0.01, 0.05),
                                 (2, 0.18, 0.01, 0.05), (2, 0.7, 0.01, 0.01)]:  # λ = 25.5 and 99: many terms
        df = n - 1
        c = t_ppf(1 - alpha / 2, df)
        lam = abs(effect) * np.sqrt(n) / sd
        out.append({"n": n, "effect": effect, "sd": sd, "alpha": alpha, "power": nct_power(lam, df, c)})
    return out


def mde_cases():
    out = []
    for n, sd, alpha, power in [(2, 0.01, 0.05, 0.8), (3, 0.01, 0.05, 0.8), (5, 0.01, 0.05, 0.8),
                                (6, 0.01, 0.05, 0.8), (10, 0.01, 0.05, 0.8), (20, 0.01, 0.05, 0.8),
                                (6, 0.0123, 0.05, 0.9), (10, 0.02, 0.01, 0.8), (5, 1.0, 0.05, 0.5)]:
        df = n - 1
        c = t_ppf(1 - alpha / 2, df)
        hi = 1.0
        while nct_power(hi, df, c) < power:
            hi *= 2
        lam = optimize.brentq(lambda x: nct_power(x, df, c) - power, 0.0, hi, xtol=1e-15, rtol=8.9e-16,
                              maxiter=500)
        out.append({"n": n, "sd": sd, "alpha": alpha, "power": power, "noncentrality": lam,
                    "mde": lam * sd / np.sqrt(n)})
    return out


def mpmath_check(powers, mdes):
    try:
        import mpmath as mp
    except ImportError:
        print("mpmath not installed: no cross-check of the noncentral t", file=sys.stderr)
        return
    mp.mp.dps = 30

    def cdf(t, df, delta):  # P(T' <= t) = E[Φ(t W − δ)], W = sqrt(χ²_ν / ν), integrated over w
        df, t, delta = mp.mpf(df), mp.mpf(t), mp.mpf(delta)
        log_norm = (df / 2) * mp.log(df / 2) - mp.loggamma(df / 2) + mp.log(2)
        dens = lambda w: mp.exp(log_norm + (df - 1) * mp.log(w) - df * w * w / 2) if w > 0 else mp.mpf(0)
        centre = delta / t  # where Φ(t w − δ) turns over
        points = sorted({mp.mpf(0), mp.mpf(1), mp.mpf(10), mp.mpf(60)} |
                        {p for p in (centre - 1, centre, centre + 1) if p > 0})
        return mp.quad(lambda w: mp.ncdf(t * w - delta) * dens(w), points + [mp.inf])

    def power(lam, df, c):
        return 1 - cdf(c, df, lam) + cdf(-c, df, lam)

    worst = 0.0
    for p in powers:
        df = p["n"] - 1
        c = t_ppf(1 - p["alpha"] / 2, df)
        lam = abs(p["effect"]) * np.sqrt(p["n"]) / p["sd"]
        worst = max(worst, abs(float(power(lam, df, c)) - p["power"]) / p["power"])
    for m in mdes:
        df = m["n"] - 1
        c = t_ppf(1 - m["alpha"] / 2, df)
        worst = max(worst, abs(float(power(m["noncentrality"], df, c)) - m["power"]))
    print(f"mpmath cross-check of the scipy powers: largest relative deviation {worst:.3g}", file=sys.stderr)


def main():
    os.makedirs(OUT, exist_ok=True)
    powers, mdes = power_cases(), mde_cases()
    mpmath_check(powers, mdes)
    fixtures = {
        "generator": "tests/data/generate_paired_fixtures.py",
        "scipy": __import__("scipy").__version__,
        "numpy": np.__version__,
        "t_tests": t_cases(),
        "t_distribution": t_distribution(),
        "sign_flip": sign_flip_cases(),
        "holm": holm_cases(),
        "power": powers,
        "mde": mdes,
    }
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(fixtures, f, indent=1)
        f.write("\n")
    print("wrote", os.path.join(OUT, "expected.json"))


if __name__ == "__main__":
    main()
