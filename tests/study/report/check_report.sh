#!/usr/bin/env bash
# The report's structure test: study_report on the hand-made fixture must write a self-contained
# report.html (every element id of the contract, every gMAD image as a data: URI, no network reference,
# no script) and report.md (the tables); malformed inputs must fail with a message naming the problem.
# Usage: check_report.sh STUDY_REPORT FIXTURE_DIR WORK_DIR
set -uo pipefail
exe="$1" fixture="$2" work="$3"
rm -rf "$work" && mkdir -p "$work"
failures=0
check() {  # check <description> <command...>
  if "${@:2}"; then echo "ok: $1"; else echo "FAILED: $1"; failures=$((failures + 1)); fi
}
"$exe" "$fixture/results.json" --out "$work/out" >"$work/stdout" 2>"$work/stderr"
check "study_report exits 0 on the fixture" test $? -eq 0 || cat "$work/stderr"
html="$work/out/report.html" md="$work/out/report.md"
check "report.html written" test -s "$html"
check "report.md written" test -s "$md"
for id in chart-srcc chart-curves chart-enrichment gmad-pairs table-comparison table-mechanism table-gmad; do
  check "id $id" grep -q "id=\"$id\"" "$html"
done
for chart in chart-srcc chart-enrichment; do
  check "$chart holds an SVG" grep -q "id=\"$chart\"><svg" "$html"
done
check "chart-curves holds 4 SVG panels" test "$(grep -o '<svg' "$html" | wc -l)" -ge 7
n=0
for png in "$fixture"/gmad/*.png; do
  n=$((n + 1))
  check "$(basename "$png") embedded as a data: URI" grep -qF "src=\"data:image/png;base64,$(base64 -w0 "$png")\"" "$html"
done
check "the fixture has gMAD images" test "$n" -ge 2
check "no http(s):// reference" bash -c "! grep -qE 'https?://' '$html'"
check "no script" bash -c "! grep -qi '<script' '$html'"
check "click to enlarge (CSS lightbox)" grep -q 'class="zoom"' "$html"
check "native size or more (32 px images shown 192 px wide)" grep -q 'width="192" height="192"' "$html"
check "plain-words summary" grep -q 'What the numbers support' "$html"
check "the type-and-level reference in the summary" grep -q 'Reference: a predictor that knew each test image' "$html"
check "the type-and-level reference in the comparison table" grep -qF "| group | metric | baseline | OHEM | type+level only |" "$md"
for header in "| group | metric |" "| variant | type |" "| attacker | defender |"; do
  check "report.md table '$header'" grep -qF "$header" "$md"
done

# Malformed inputs: exit 1 and a message naming the problem.
fails_with() {  # fails_with <description> <expected message> <results.json>
  "$exe" "$3" --out "$work/bad_out" >/dev/null 2>"$work/err"
  local rc=$?
  check "$1: exit 1" test "$rc" -eq 1
  check "$1: message '$2'" grep -qF -- "$2" "$work/err" || cat "$work/err"
}
mkdir -p "$work/bad"
printf '{"schema": "ohem-study/1",' >"$work/bad/truncated.json"
fails_with "truncated JSON" "not valid JSON" "$work/bad/truncated.json"
sed 's#"ohem-study/1"#"ohem-study/0"#' "$fixture/results.json" >"$work/bad/schema.json"
fails_with "wrong schema" 'schema: expected "ohem-study/1", got "ohem-study/0"' "$work/bad/schema.json"
sed 's#"runs":#"runz":#' "$fixture/results.json" >"$work/bad/runs.json"
fails_with "missing runs" 'missing field "runs"' "$work/bad/runs.json"
sed '0,/"attack_succeeded": true/s//"attack_succeeded": 1/' "$fixture/results.json" >"$work/bad/type.json"
fails_with "wrong type" 'gmad.pairs[0].attack_succeeded: expected true or false, got a number' "$work/bad/type.json"
cp "$fixture/results.json" "$work/bad/results.json"  # without its gmad/ folder
fails_with "missing image" 'gmad.pairs[0].images[0].path: cannot read gMAD image' "$work/bad/results.json"
fails_with "missing file" "cannot read $work/bad/nothing.json" "$work/bad/nothing.json"
check "no report written on error" test ! -e "$work/bad_out/report.html"
"$exe" --help >"$work/help" 2>&1
check "--help" grep -q "Usage: study_report" "$work/help"
echo "$failures failure(s)"
exit $((failures > 0))
