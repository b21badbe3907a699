#!/usr/bin/env python3
"""Writes the hand-made study results fixture (results.json + gmad/*.png) used by the report's tests.

The numbers are invented (plausible shapes, schema "ohem-study/1" of /work docs/study.md); the report's
tests check its structure, never these values. Standard library only; deterministic.
Usage: python3 tests/data/study_results_fixture/make_fixture.py
"""
import json, os, random, struct, zlib

here = os.path.dirname(os.path.abspath(__file__))
rng = random.Random(14)
types = ["white_noise", "gaussian_blur", "jpeg", "contrast", "pixelate", "impulse_noise"]
train_share = [0.40, 0.25, 0.15, 0.10, 0.06, 0.04]


def png(path, w, h, seed):
    r = random.Random(seed)
    rows = b""
    for y in range(h):
        row = bytearray([0])
        for x in range(w):
            row += bytes([(x * 255 // w + r.randrange(40)) % 256, (y * 255 // h) % 256, (seed * 37 + r.randrange(60)) % 256])
        rows += bytes(row)
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    data += chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)


def r3(x):
    return None if x is None else round(x, 4)


runs = []
for seed in range(2):
    for method in ["baseline", "ohem"]:
        base = 0.80 + 0.02 * seed + (0.01 if method == "ohem" else 0.0)
        metrics = {"overall": {"srcc": r3(base), "plcc": r3(base + 0.01), "n": 720}}
        for i, t in enumerate(types):
            metrics[t] = {"srcc": r3(base - 0.03 * i + rng.uniform(-0.01, 0.01)), "plcc": r3(base - 0.025 * i), "n": 120}
        curve = []
        for e in range(1, 4):
            o = method == "ohem"
            curve.append({"epoch": e, "task_loss": r3(0.5 / e + 0.01 * seed + (0.0 if o else 0.04)), "twin_task_loss": r3(0.55 / e) if o else None,
                          "consistency": r3(0.1 / e) if o else None, "mean_hardness": r3(0.05 / e + 0.01) if o else None,
                          "test_srcc": r3(base - 0.3 / e)})
        runs.append({"seed": seed, "method": method, "seconds": 1.5, "steps": 30, "metrics": metrics, "curve": curve})

comparison = []
for g in ["overall"] + types:
    for m in ["srcc", "plcc"]:
        b = [r["metrics"][g][m] for r in runs if r["method"] == "baseline"]
        o = [r["metrics"][g][m] for r in runs if r["method"] == "ohem"]
        d = [y - x for x, y in zip(b, o)]
        mean = lambda v: sum(v) / len(v)
        sd = lambda v: (sum((x - mean(v)) ** 2 for x in v) / (len(v) - 1)) ** 0.5
        comparison.append({"group": g, "metric": m, "baseline_mean": r3(mean(b)), "baseline_std": r3(sd(b)),
                           "ohem_mean": r3(mean(o)), "ohem_std": r3(sd(o)), "diff_mean": r3(mean(d)),
                           "ci_low": r3(min(d)), "ci_high": r3(max(d)), "ci_level": 0.95,
                           "wins": sum(1 for x in d if x > 0), "seeds": 2})

variants = []
for name, label, twins, crit, tilt in [("magnitude", "magnitude-pruned twin (the method)", 1, "GlobalMagnitude", 2.0),
                                       ("random", "random mask, same ratio", 1, "Random", 1.1),
                                       ("ensemble4", "4 magnitude twins", 4, "GlobalMagnitude", 2.4)]:
    w = [s * (tilt if s < 1 / 6 else 1.0) for s in train_share]
    hs = [x / sum(w) for x in w]
    by_type = [{"type": t, "train_share": s, "hardest_share": r3(h), "enrichment": r3(h / s),
                "mean_hardness": r3(0.01 + 0.01 * h / s)} for t, s, h in zip(types, train_share, hs)]
    variants.append({"name": name, "label": label, "twins": twins, "criterion": crit, "seeds": [0, 1],
                     "by_type": by_type, "hardness_error_srcc": {"mean": r3(0.2 * tilt), "per_seed": [r3(0.2 * tilt - 0.01), r3(0.2 * tilt + 0.01)]}})

os.makedirs(os.path.join(here, "gmad"), exist_ok=True)
pairs = []
for k, (att, dfd) in enumerate([("ohem", "baseline"), ("ohem", "baseline"), ("baseline", "ohem"), ("baseline", "ohem")]):
    images = []
    for j in range(2):
        path = f"gmad/p{k}_{'ab'[j]}.png"
        png(os.path.join(here, path), 32, 32, 10 * k + j)
        images.append({"path": path, "name": f"photo{k}_{types[(k + j) % 6]}_{j + 2}", "type": types[(k + j) % 6],
                       "label": r3(0.9 - 0.3 * j if k != 3 else 0.5 + 0.3 * j),
                       "scores": {dfd: r3(0.4 + 0.01 * j), att: r3(0.8 - 0.6 * j)}})
    label_prefers = 0 if images[0]["label"] > images[1]["label"] else 1
    pairs.append({"attacker": att, "defender": dfd, "level": 1 + k % 2, "defender_level_score": 0.4,
                  "images": images, "attacker_prefers": 0, "label_prefers": label_prefers,
                  "attack_succeeded": label_prefers == 0})

results = {
    "schema": "ohem-study/1", "created": "2026-11-28T12:00:00Z", "quick": True,
    "environment": {"libtorch": "1.13.1", "compiler": "GCC 12.2.0", "threads": 2, "hardware_threads": 2},
    "seconds": {"dataset": 2.0, "training": 6.0, "analysis": 1.0, "total": 9.0},
    "config": {"seeds": 2, "patch": 32, "crop": 24, "width": 8, "epochs1": 1, "epochs2": 2, "quick": True},
    "dataset": {"photos": 12, "train_photos": 8, "test_photos": 4, "patch": 32, "levels": 5, "images": 1440,
                "types": types, "train_images": {t: int(480 * s) for t, s in zip(types, train_share)},
                "test_images": {t: 120 for t in types}},
    "runs": runs, "comparison": comparison,
    "reference": {"name": "type_level", "label": "knows each image's distortion type and level, not its content",
                  "seeds": 2, "metrics": dict([("overall", {"srcc": 0.85, "plcc": 0.84})] +
                                              [(t, {"srcc": r3(0.85 - 0.04 * i), "plcc": r3(0.8 - 0.04 * i)})
                                               for i, t in enumerate(types)])},
    "mechanism": {"top_fraction": 0.1, "variants": variants},
    "gmad": {"seed": 0, "levels": 2, "margin": 0.0, "pairs": pairs,
             "summary": [{"attacker": "ohem", "defender": "baseline", "succeeded": 2, "pairs": 2},
                         {"attacker": "baseline", "defender": "ohem", "succeeded": 1, "pairs": 2}]},
}
with open(os.path.join(here, "results.json"), "w") as f:
    json.dump(results, f, indent=1)
    f.write("\n")
