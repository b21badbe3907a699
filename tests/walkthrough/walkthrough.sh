#!/usr/bin/env bash
# The walk-through of docs/examples.md ("From a run to a comparison") on small data, as one CTest test:
# train two models (without and with OHEM), score the test images with each checkpoint, check that
# ohem-score's scores equal the trainer's own test predictions, evaluate each against the MOS, and run
# gMAD between them, then the split protocol (ohem-splits: 3 random splits and the summary over them).
# Exits 77 (reported as skipped) where no python3 can write the images.
# usage: walkthrough.sh TRAIN_PAIRWISE OHEM_SCORE OHEM_EVAL OHEM_SPLITS WORK_DIR
set -euo pipefail
train_pairwise=$1 ohem_score=$2 ohem_eval=$3 ohem_splits=$4 work=$5
here=$(cd "$(dirname "$0")" && pwd)
python=$(command -v python3 || true)
if [[ -z $python ]]; then
  echo "OHEM_TEST_SKIPPED: no python3 to write the walk-through's images (tests/walkthrough/make_data.py)"
  exit 77
fi
rm -rf "$work" && mkdir -p "$work" && cd "$work"
"$python" "$here/make_data.py" .
step() { echo; echo "\$ $*"; "$@"; }

# 1. Train: the same run without and with OHEM (small CNNIQA, two epochs, one thread).
common=(--csv train.csv --test-csv test.csv --arch cnniqa --width 8 --resize 0 --crop 32 --test-resize 0
        --epochs1 0 --epochs2 2 --batch2 8 --threads 1 --progress off)
step "$train_pairwise" "${common[@]}" --ohem off --out runs/base
step "$train_pairwise" "${common[@]}" --ohem on --out runs/ohem

# 2. Score the test images with each checkpoint (the run's own test transform, from the checkpoint).
for run in base ohem; do
  step "$ohem_score" --checkpoint runs/$run/checkpoint.pt --csv test.csv --out $run.csv --threads 1
  # The scores are the trainer's own test predictions (runs/<run>/predictions.csv), bit for bit.
  if ! diff <(cut -d, -f1,3 runs/$run/predictions.csv | tail -n +2) <(tail -n +2 $run.csv); then
    echo "FAILED: ohem-score's $run.csv differs from runs/$run/predictions.csv" >&2
    exit 1
  fi
done
step "$ohem_score" --checkpoint runs/ohem/checkpoint.pt --export ohem.pt

# 3. Evaluate each model's scores against the MOS (joined by name).
for run in base ohem; do
  step "$ohem_eval" $run.csv --mos test.csv --bootstrap 200 --json $run.metrics.json --progress off
  grep -q '"srcc"' $run.metrics.json
done

# 4. gMAD between the two models (one scores file per model).
step "$ohem_eval" --gmad base.csv ohem.csv --levels 2 --window 0.5 --image-root . --pairs gmad.csv --html gmad.html
test -s gmad.csv && test -s gmad.html && test -s ohem.pt

# 5. The split protocol: 3 random splits of train.csv by content (test.csv as an extra test set), each a
#    run of train_pairwise, then SRCC and PLCC over the splits (tests/splits checks the numbers).
step "$ohem_splits" --splits 3 --out splits -- "$train_pairwise" --csv train.csv --test held=generic:test.csv \
  --arch cnniqa --width 8 --resize 0 --crop 32 --test-resize 0 --epochs1 0 --epochs2 2 --batch2 8 --threads 1 \
  --progress off
grep -q '"schema": "ohem-splits/1"' splits/summary.json && test -s splits/summary.md && test -s splits/summary.html
echo
echo "walk-through: done"
