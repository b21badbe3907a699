#!/usr/bin/python3
"""Generates the fixtures of ohem-eval's join tests (examples/ohem_eval/CMakeLists.txt, "join").

Python's standard library only; run from anywhere:

    python3 tests/data/generate_join_fixtures.py

Writes tests/data/metrics/join/ (see its README.md): a merged evaluation file and the same data split
into a name,prediction file (as ohem-score writes it) and a MOS file (a dataset's metadata: other
columns, another column order, another row order); a gMAD three-column file and the same data split into
one name,prediction file per model. The split files hold the very same field texts as the merged ones,
so the expectation "the join prints what the merged file prints" needs no computation here: the tests
compare ohem-eval's reports on both forms. Numbers are written with repr (17 significant digits).
"""

import csv
import io
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "metrics", "join")


def write(name, header, rows):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    with open(os.path.join(OUT, name), "w", newline="") as f:
        f.write(buf.getvalue())


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = random.Random(25)

    # Evaluation: 40 images in 4 distortion groups of 10; one name holds a comma (quoted in the CSV).
    names = ["img_%03d.png" % i for i in range(39)] + ["img, 039.png"]
    groups = ["blur", "noise", "jpeg", "contrast"]
    merged = []
    for i, n in enumerate(names):
        mos = 1 + 4 * rng.random()
        pred = 0.2 * mos + 0.3 * rng.random()
        merged.append((n, repr(mos), repr(pred), groups[i % 4]))
    write("merged.csv", ["name", "mos", "prediction", "distortion"], merged)
    write("scores.csv", ["name", "prediction"], [(n, p) for n, _, p, _ in merged])
    meta = [(g, n, "ref_%02d.png" % (i // 4), m, repr(rng.random())) for i, (n, m, _, g) in enumerate(merged)]
    rng.shuffle(meta)
    write("mos.csv", ["distortion", "name", "ref", "mos", "var"], meta)
    # The same MOS in KADID-10k's dmos.csv layout (the name column is dist_img).
    write("dmos.csv", ["dist_img", "ref_img", "dmos", "var"], [(n, r, m, v) for _, n, r, m, v in meta])
    # The same in the generic format of the trainers (path,mos,std,group,type): two group-like columns.
    write("generic.csv", ["path", "mos", "std", "group", "type"], [(n, m, v, r, g) for g, n, r, m, v in meta])
    bad = list(meta)
    bad[4] = bad[4][:3] + ("n/a",) + bad[4][4:]
    write("mos_bad.csv", ["distortion", "name", "ref", "mos", "var"], bad)

    # The scores of 37 of those images plus 2 names the MOS file lacks ("other/img_005.png" differs from
    # "img_005.png" only in its folder), and the merged file of the 37 in the same order.
    dropped = {"img_003.png", "img_005.png", "img_017.png"}
    partial = [(n, p) for n, _, p, _ in merged if n not in dropped]
    partial.insert(10, ("other/img_005.png", "0.5"))
    partial.append(("img_999.png", "0.25"))
    write("scores_partial.csv", ["name", "prediction"], partial)
    write("merged_partial.csv", ["name", "mos", "prediction", "distortion"],
          [r for r in merged if r[0] not in dropped])
    write("scores_dup.csv", ["name", "prediction"], [(n, p) for n, _, p, _ in merged] + [(merged[1][0], "0.5")])

    # gMAD: 300 images, two models; the split files are named after the models.
    gm = []
    for i in range(300):
        q = rng.random()
        gm.append(("img_%03d.png" % i, repr(q + 0.2 * rng.random()), repr(q + 0.2 * rng.random())))
    write("gmad_merged.csv", ["name", "baseline", "ohem"], gm)
    write("baseline.csv", ["name", "prediction"], [(n, a) for n, a, _ in gm])
    shuffled = [(n, b) for n, _, b in gm]
    rng.shuffle(shuffled)
    write("ohem.csv", ["name", "prediction"], shuffled)
    write("ohem_missing.csv", ["name", "prediction"], [r for r in shuffled if r[0] not in ("img_007.png", "img_123.png")])


if __name__ == "__main__":
    main()
