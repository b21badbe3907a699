#!/usr/bin/env bash
# Study v2 end to end (issue 26 §5): `study --design v2 --quick` into WORK within 60 s, results.json checked
# (schema ohem-study/2: fields and design, not numbers), and study_report refusing it with a clear message
# (v2's report is not written yet). Photographs as tests/study/quick.sh; exits 77 (skipped) where none.
# Usage: tests/study/quick_v2.sh STUDY_BINARY CHECK_BINARY REPORT_BINARY WORK
set -euo pipefail
study="$1" check="$2" report="$3" work="$4"
rm -rf "$work"
mkdir -p "$work"
source "$(dirname "$0")/photos.sh"
start=$(date +%s)
"$study" --design v2 --quick --photos "$photos" --out "$work/out" --progress off --threads 1
took=$(($(date +%s) - start))
echo "study --design v2 --quick took $took s"
if [ "$took" -gt "${OHEM_STUDY_V2_QUICK_LIMIT:-60}" ]; then
  echo "FAIL: study --design v2 --quick took $took s (limit ${OHEM_STUDY_V2_QUICK_LIMIT:-60} s)" >&2
  exit 1
fi
"$check" "$work/out/results.json"
# The arms start from W (so no untrained-weights warning) and mask conv + Linear, by magnitude or at random.
runs="$work/out/runs"
for arm in ohem random; do
  grep -q '"--init-from": ".*seed0_start/checkpoint.pt"' "$runs/seed0_$arm/results.json" &&
    grep -q '"--mask-layers": "conv+linear"' "$runs/seed0_$arm/results.json" &&
    grep -q '"warnings": \[\]' "$runs/seed0_$arm/results.json" ||
    { echo "FAIL: seed 0's $arm arm does not start from W with conv+linear masks and no warning" >&2; exit 1; }
done
grep -q '"--mask-criterion": "magnitude"' "$runs/seed0_ohem/results.json" &&
  grep -q '"--mask-criterion": "random"' "$runs/seed0_random/results.json" ||
  { echo "FAIL: the ohem and random arms' mask criteria" >&2; exit 1; }
if "$report" "$work/out/results.json" --out "$work/report" >"$work/report.log" 2>&1; then
  echo "FAIL: study_report rendered an ohem-study/2 results.json" >&2
  exit 1
fi
grep -q "v2's report is not written yet" "$work/report.log" || { cat "$work/report.log" >&2; exit 1; }
# Seeds that are not a multiple of the rotation are refused.
if "$study" --design v2 --quick --seeds 4 --photos "$photos" --out "$work/four" --progress off >"$work/four.log" 2>&1; then
  echo "FAIL: --design v2 accepted 4 seeds" >&2
  exit 1
fi
grep -q "multiple of 3" "$work/four.log" || { cat "$work/four.log" >&2; exit 1; }
echo "study_quick_v2: OK"
