#!/usr/bin/env bash
# ohem-splits on small data, as one CTest test (tests/splits/CMakeLists.txt): 3 splits of train_pairwise
# (by content, an epoch chosen on validation, an extra --test set), then checks
#  - a split killed mid-run stops ohem-splits with the split's status and log, and resumes on a rerun;
#  - summary.json's statistics equal those recomputed here (Python's statistics module) from the
#    splits' own results.json; the Markdown and HTML escape the names they copy;
#  - a rerun trains nothing (every split complete); a split without results.json reruns alone;
#  - a split of another run is refused by the summary (naming the option), and so are trainer
#    arguments that ohem-splits sets itself; a failing trainer stops it with the trainer's status, also
#    when a command changes a run option of complete splits (the trainer refuses to resume them).
# Exits 77 (reported as skipped) where no python3 can write the images.
# usage: splits.sh TRAIN_PAIRWISE OHEM_SPLITS WORK_DIR
set -euo pipefail
train_pairwise=$1 ohem_splits=$2 work=$3
here=$(cd "$(dirname "$0")" && pwd)
python=$(command -v python3 || true)
if [[ -z $python ]]; then
  echo "OHEM_TEST_SKIPPED: no python3 to write the images (tests/walkthrough/make_data.py)"
  exit 77
fi
rm -rf "$work" && mkdir -p "$work" && cd "$work"
data='data&<i>'  # a name to escape in summary.md and summary.html
"$python" "$here/../walkthrough/make_data.py" "$data"
fail() { echo "FAILED: $*" >&2; exit 1; }
expect() {  # expect RC PATTERN CMD...: CMD exits with RC and its output matches PATTERN
  local want=$1 pattern=$2 rc=0
  shift 2
  echo "\$ $*"
  "$@" > out.txt 2>&1 || rc=$?
  cat out.txt
  [[ $rc == "$want" ]] || fail "exit status $rc, expected $want: $*"
  grep -Eq -- "$pattern" out.txt || fail "output does not match /$pattern/: $*"
}
sums() { md5sum S/split-*/log.jsonl S/split-*/results.json; }

# The trainer's command: contents split apart (the generic CSV's group), validation contents choose the
# epoch, an extra test set; a checkpoint after every step so that a killed split resumes mid-epoch.
options=(--csv "$data/train.csv" --val-fraction 0.25 --test "held=generic:$data/test.csv" --arch cnniqa
         --width 8 --resize 0 --crop 32 --test-resize 0 --epochs1 0 --batch2 8 --threads 1 --progress off
         --checkpoint-every 1)
trainer=("$train_pairwise" "${options[@]}" --epochs2 2)

# 1. The first split is killed after its second step: ohem-splits stops with its status and names its log.
OHEM_TEST_KILL="0:2:$work/killed" expect 137 "split 1 of 3 \(seed 0\) failed \(signal 9.*S/split-0/ohem-splits.log" \
  "$ohem_splits" --splits 3 --out S -- "${trainer[@]}"
[[ -f S/split-0/checkpoint.pt && ! -f S/split-0/results.json && ! -e S/split-1 ]] || fail "after the kill"

# 2. The rerun resumes it and runs the other two; then the summary.
expect 0 "0 complete, 3 to run \(1 to resume\)" "$ohem_splits" --splits 3 --out S -- "${trainer[@]}"
grep -q "resumed from" S/split-0/ohem-splits.log || fail "split 0 did not resume"
grep -q "split 3 of 3 (seed 2): done in" out.txt || fail "no progress line for the last split"
for f in summary.json summary.md summary.html; do test -s S/$f || fail "no S/$f"; done

# 3. The summary's numbers, recomputed from each split's results.json.
"$python" - S <<'PY'
import json, math, os, statistics, sys
out = sys.argv[1]
s = json.load(open(os.path.join(out, "summary.json")))
assert s["schema"] == "ohem-splits/1", s["schema"]
assert s["seeds"] == [0, 1, 2], s["seeds"]
assert s["selection"] is True
assert "--split-seed" not in s["config"] and "--out" not in s["config"]
assert s["command"][1:3] == ["--csv", "data&<i>/train.csv"], s["command"]
runs = [json.load(open(os.path.join(out, "split-%d" % k, "results.json"))) for k in s["seeds"]]
assert [r["split_seed"] for r in runs] == [0, 1, 2]
want = []
for name in ["test", "held"]:
    for epoch in ["selected", "last"]:
        want.append((name, epoch))
assert [(r["set"], r["epoch"]) for r in s["results"]] == want, [(r["set"], r["epoch"]) for r in s["results"]]
for row in s["results"]:
    for metric in ["srcc", "plcc"]:
        vals = []
        for r in runs:
            # results.json: the last epoch's test split at the top level and its --test sets in "tests";
            # the epoch chosen on validation in "selection" ("test", "tests")
            if row["epoch"] == "last":
                src = r if row["set"] == "test" else r["tests"][row["set"]]
            else:
                src = r["selection"]["test"] if row["set"] == "test" else r["selection"]["tests"][row["set"]]
            vals.append(src[metric])
        got = row[metric]
        assert got["values"] == vals, (row["set"], row["epoch"], metric, got["values"], vals)
        assert got["n"] == 3
        for key, v in [("mean", statistics.mean(vals)), ("median", statistics.median(vals)),
                       ("sd", statistics.stdev(vals)), ("min", min(vals)), ("max", max(vals))]:
            assert math.isclose(got[key], v, rel_tol=1e-12, abs_tol=1e-12), (row["set"], row["epoch"], metric, key, got[key], v)
md = open(os.path.join(out, "summary.md")).read()
page = open(os.path.join(out, "summary.html")).read()
assert "data&amp;&lt;i&gt;" in md and "<i>" not in md, "summary.md does not escape the command"
assert "data&amp;&lt;i&gt;" in page and "<i>" not in page, "summary.html does not escape the command"
assert page.count("<svg") == 2 and "held (selected)" in page and "split seed 2" in page
assert "| held | last |" in md
print("summary: statistics of %d rows match the splits' results.json" % len(s["results"]))
PY

# 4. A rerun trains nothing: every split is complete and kept, their files untouched.
sums > before.txt
expect 0 "3 complete, 0 to run \(0 to resume\)" "$ohem_splits" --splits 3 --out S -- "${trainer[@]}"
sums | diff before.txt - || fail "a rerun changed a complete split"

# 5. A split without its results.json reruns alone (it resumes at its end: no training, a new evaluation).
cp S/summary.json summary.before.json
rm S/split-1/results.json
expect 0 "2 complete, 1 to run \(1 to resume\)" "$ohem_splits" --splits 3 --out S -- "${trainer[@]}"
grep -q "split 2 of 3 (seed 1): done" out.txt || fail "split 1 did not rerun"
diff <(grep -v split-1 before.txt) <(sums | grep -v split-1) || fail "a complete split was rerun"
"$python" -c "
import json, sys
a, b = (json.load(open(f))['results'] for f in ('summary.before.json', 'S/summary.json'))
sys.exit(0 if a == b else 'the rerun split changed the summary')"

# 6. --summary-only rebuilds the summary from the split directories (all of them without --splits) and
#    refuses a split of another run (--epochs2 1), naming the option; the summary files stay as they were.
expect 0 "wrote S/summary.html" "$ohem_splits" --summary-only --out S
grep -q "Trainer: .*--val-fraction 0.25" S/summary.md || fail "--summary-only lost the trainer's command"
"$train_pairwise" "${options[@]}" --epochs2 1 --split-seed 3 --out S/split-3 > other.log 2>&1 || fail "split 3"
md5sum S/summary.* > summary.sums
expect 1 "split 3 vs split 0: --epochs2: 2 vs 1" "$ohem_splits" --summary-only --out S
md5sum -c --quiet summary.sums || fail "a refused summary changed the files"
expect 0 "wrote S/summary.json" "$ohem_splits" --summary-only --out S --splits 3

# 7. Refused before anything runs: the options ohem-splits sets, no trainer; a failing trainer stops it
#    with the trainer's status and log.
expect 1 "hold --out, --resume=auto" "$ohem_splits" --splits 2 --out T -- "${trainer[@]}" --out x --resume=auto
expect 1 "no trainer to run" "$ohem_splits" --splits 2 --out T
expect 1 "the split seed changes nothing" "$ohem_splits" --splits 2 --out T -- "$train_pairwise" --csv a.csv \
  --test-csv b.csv
#    A command that changes a run option of complete splits: the first is run again, and the trainer
#    refuses to resume it with another --ratio (ohem-splits stops with its status); nothing changed.
sums > before.txt
expect 1 "split 1 of 3 \(seed 0\) failed \(exit status 1\)" "$ohem_splits" --splits 3 --out S -- "${trainer[@]}" --ratio 0.5
grep -q -- "--ratio: checkpoint 0.65, command line 0.5" out.txt || fail "no reason given for the refused resume"
sums | diff before.txt - || fail "a refused resume changed a split"
expect 1 "split 1 of 2 \(seed 0\) failed \(exit status 1\).*T/split-0/ohem-splits.log" \
  "$ohem_splits" --splits 2 --out T -- "$train_pairwise" --csv no-such.csv
[[ ! -e T/split-1 ]] || fail "ohem-splits went on after a failing split"
echo
echo "splits: done"
