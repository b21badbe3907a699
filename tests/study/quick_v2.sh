#!/usr/bin/env bash
# Study v2 end to end (issue 26 §5): `study --design v2 --quick` into WORK within 60 s, results.json checked
# (schema ohem-study/2: fields and design, not numbers), and study_report's v2 page: the registered
# endpoints first, the primary's line with the numbers study printed, a malformed file refused with the
# field's path. Photographs as tests/study/quick.sh; exits 77 (skipped) where none.
# Usage: tests/study/quick_v2.sh STUDY_BINARY CHECK_BINARY REPORT_BINARY WORK
set -euo pipefail
study="$1" check="$2" report="$3" work="$4"
rm -rf "$work"
mkdir -p "$work"
source "$(dirname "$0")/photos.sh"
start=$(date +%s)
"$study" --design v2 --quick --photos "$photos" --out "$work/out" --progress off --threads 1 | tee "$work/study.log"
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
  grep -q '"--init-from": ".*seed0_start/checkpoint.pt"' "$runs/seed0_${arm}_lr0.0001/results.json" &&
    grep -q '"--mask-layers": "conv+linear"' "$runs/seed0_${arm}_lr0.0001/results.json" &&
    grep -q '"warnings": \[\]' "$runs/seed0_${arm}_lr0.0001/results.json" ||
    { echo "FAIL: seed 0's $arm arm does not start from W with conv+linear masks and no warning" >&2; exit 1; }
done
grep -q '"--mask-criterion": "magnitude"' "$runs/seed0_ohem_lr0.0001/results.json" &&
  grep -q '"--mask-criterion": "random"' "$runs/seed0_random_lr0.0001/results.json" ||
  { echo "FAIL: the ohem and random arms' mask criteria" >&2; exit 1; }
# The report: the primary's line carries the numbers study printed (study and study_report format them
# apart, from the same results.json); Markdown escapes the brackets.
"$report" "$work/out/results.json" --out "$work/report" >"$work/report.log" 2>&1 ||
  { echo "FAIL: study_report on the v2 results.json" >&2; cat "$work/report.log" >&2; exit 1; }
primary=$(sed -n 's/^primary.*Δ overall SRCC (ohem − baseline) = \(.*\)$/\1/p' "$work/study.log")
[ -n "$primary" ] || { echo "FAIL: study printed no primary endpoint line" >&2; exit 1; }
html="$work/report/report.html" md="$work/report/report.md"
grep -qF "<b>Primary.</b> Δ overall SRCC (OHEM − baseline): Δ = $primary." "$html" ||
  { echo "FAIL: report.html lacks the primary's line 'Δ = $primary'" >&2; exit 1; }
grep -qF "Δ = $(printf '%s' "$primary" | sed 's/\[/\\[/; s/\]/\\]/')." "$md" ||
  { echo "FAIL: report.md lacks the primary's line 'Δ = $primary'" >&2; exit 1; }
for id in primary primary-reading mde table-endpoints table-per-type table-mechanism-v2 table-differences table-seeds; do
  grep -q "id=\"$id\"" "$html" || { echo "FAIL: report.html lacks id $id" >&2; exit 1; }
done
first=$(grep -n 'Registered endpoints' "$html" | head -1 | cut -d: -f1)
per_type=$(grep -n 'Per distortion type' "$html" | head -1 | cut -d: -f1)
[ -n "$first" ] && [ -n "$per_type" ] && [ "$first" -lt "$per_type" ] ||
  { echo "FAIL: the registered endpoints do not come first" >&2; exit 1; }
grep -qF "| type | Δ SRCC | 95 % t-interval | t-test p | Holm-adjusted p |" "$md" ||
  { echo "FAIL: report.md lacks the per-type table with Holm-adjusted p" >&2; exit 1; }
! grep -qiE '<script|https?://' "$html" || { echo "FAIL: report.html has a script or a network reference" >&2; exit 1; }
sed -E '0,/"sign_flip_p_value": [^,]*/s//"sign_flip_p_value": "x"/' "$work/out/results.json" >"$work/bad.json"
if "$report" "$work/bad.json" --out "$work/bad" >"$work/bad.log" 2>&1; then
  echo "FAIL: study_report rendered a malformed ohem-study/2 results.json" >&2
  exit 1
fi
grep -qF "endpoints.primary.sign_flip_p_value: expected a number or null, got a string" "$work/bad.log" ||
  { cat "$work/bad.log" >&2; exit 1; }
# The registered grid is the default (--quick keeps it): every arm tried each rate (check_results: the rate
# used is the best validation SRCC's); --ft-lr (one rate) and --ft-lr-grid are not taken together.
tr -d ' \n' <"$work/out/results.json" | grep -q '"ft_lr":null,"ft_lr_grid":\[3e-05,0.0001,0.0003\]' ||
  { echo "FAIL: the default grid is not 3e-5, 1e-4, 3e-4" >&2; exit 1; }
if "$study" --design v2 --quick --ft-lr 1e-4 --ft-lr-grid 1e-4,3e-4 --photos "$photos" --out "$work/lr" \
  >"$work/lr.log" 2>&1; then
  echo "FAIL: --ft-lr and --ft-lr-grid accepted together" >&2
  exit 1
fi
grep -q "excludes" "$work/lr.log" || { cat "$work/lr.log" >&2; exit 1; }
# Seeds that are not a multiple of the rotation are refused.
if "$study" --design v2 --quick --seeds 4 --photos "$photos" --out "$work/four" --progress off >"$work/four.log" 2>&1; then
  echo "FAIL: --design v2 accepted 4 seeds" >&2
  exit 1
fi
grep -q "multiple of 3" "$work/four.log" || { cat "$work/four.log" >&2; exit 1; }
# --registration: a commit's hash (refused otherwise, and with --design v1), recorded and named by the report.
if "$study" --design v2 --quick --registration not-a-hash --photos "$photos" --out "$work/reg" >"$work/reg.log" 2>&1 ||
  "$study" --quick --registration 0123abc --photos "$photos" --out "$work/reg" >"$work/reg1.log" 2>&1; then
  echo "FAIL: --registration accepted a bad hash or --design v1" >&2
  exit 1
fi
grep -q "must be a commit's hash" "$work/reg.log" && grep -q "applies to --design v2" "$work/reg1.log" ||
  { cat "$work/reg.log" "$work/reg1.log" >&2; exit 1; }
grep -q '"in_progress": true' "$work/out/results.json" && ! grep -q '"registration"' "$work/out/results.json" ||
  { echo "FAIL: a run without --registration is not marked in_progress" >&2; exit 1; }
sed -E 's/"in_progress": true,/"in_progress": false,\n  "registration": {"commit": "0123abc"},/' \
  "$work/out/results.json" >"$work/registered.json"
"$report" "$work/registered.json" --out "$work/registered" >/dev/null 2>&1 &&
  grep -qF "Registered design: commit 0123abc" "$work/registered/report.html" ||
  { echo "FAIL: the report does not name the registration commit" >&2; exit 1; }
echo "study_quick_v2: OK"
