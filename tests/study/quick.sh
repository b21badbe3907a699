#!/usr/bin/env bash
# The study end to end: `study --quick` into WORK, then every field of results.json checked (structure,
# not numbers) and every gMAD image present. Photographs: $OHEM_STUDY_PHOTOS, else build/demo-cache/photos
# (scripts/fetch-photos.sh), else the demo's photographs (build/demo-cache/photos-demo, made by
# examples/demo/demo.sh); exits 77 (skipped) where none was fetched.
# Usage: tests/study/quick.sh STUDY_BINARY CHECK_BINARY WORK
set -euo pipefail
study="$1" check="$2" work="$3"
rm -rf "$work"
mkdir -p "$work"
source "$(dirname "$0")/photos.sh"
start=$(date +%s)
"$study" --quick --photos "$photos" --out "$work/out" --progress off --threads 1
echo "study --quick took $(($(date +%s) - start)) s"
"$check" "$work/out/results.json"
# A second run into the same directory is refused without --overwrite.
if "$study" --quick --photos "$photos" --out "$work/out" --progress off >"$work/again.log" 2>&1; then
  echo "FAIL: a second run overwrote the study without --overwrite" >&2
  exit 1
fi
grep -q "already holds a study" "$work/again.log" || { cat "$work/again.log" >&2; exit 1; }
echo "study_quick: OK"
