#!/usr/bin/env python3
"""Writes the benchmark recipe's evaluation data as an ohem-eval input file (name,mos,prediction).

mos = U(0, 100), prediction = tanh((mos - 50) / 30) + N(0, 0.2), names img<i>.png, numpy's default_rng(seed):
the data of docs/benchmarks.md's ohem-eval timings (scripts/bench-defaults.sh --cases evalwall).
Usage: make_eval_data.py ROWS OUT.csv [--seed S]
"""
import argparse

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rows", type=int)
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.rows < 1:
        ap.error("ROWS must be positive")
    rng = np.random.default_rng(a.seed)
    mos = rng.uniform(0, 100, a.rows)
    pred = np.tanh((mos - 50) / 30) + rng.normal(0, 0.2, a.rows)
    with open(a.out, "w") as f:
        f.write("name,mos,prediction\n")
        f.writelines(f"img{i}.png,{m!r},{p!r}\n" for i, (m, p) in enumerate(zip(mos.tolist(), pred.tolist())))


if __name__ == "__main__":
    main()
