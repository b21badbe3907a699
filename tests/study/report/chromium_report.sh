#!/usr/bin/env bash
# Opens the fixture's report in headless Chromium (Debian's `chromium`, or `chromium-browser`): takes a
# screenshot (a non-empty PNG of the window's size) and fails on a console message (an error of the
# page) or a chart missing from the rendered DOM. Exits 77 (CTest: skipped) where Chromium is absent.
# Usage: chromium_report.sh STUDY_REPORT FIXTURE_DIR WORK_DIR
set -uo pipefail
exe="$1" fixture="$2" work="$3"
browser="$(command -v chromium || command -v chromium-browser || true)"
if [ -z "$browser" ]; then
  echo "skipped: no chromium or chromium-browser on PATH (Debian: apt-get install chromium, or scripts/setup.sh --chromium)"
  exit 77
fi
rm -rf "$work" && mkdir -p "$work"
"$exe" "$fixture/results.json" --out "$work" >/dev/null || exit 1
flags=(--headless=new --no-sandbox --disable-gpu --hide-scrollbars --no-first-run --user-data-dir="$work/profile"
  --enable-logging=stderr --v=0 --window-size=1200,2400)
failures=0
check() {
  if "${@:2}"; then echo "ok: $1"; else echo "FAILED: $1"; failures=$((failures + 1)); fi
}
timeout 90 "$browser" "${flags[@]}" --screenshot="$work/report.png" "file://$work/report.html" >"$work/shot.log" 2>&1
check "chromium --screenshot exits 0" test $? -eq 0
check "screenshot written" test -s "$work/report.png"
# PNG signature and IHDR width/height (bytes 16..23, big-endian).
sig="$(head -c 8 "$work/report.png" | od -An -tx1 | tr -d ' \n')"
check "screenshot is a PNG" test "$sig" = 89504e470d0a1a0a
size="$(od -An -tu1 -j16 -N8 "$work/report.png" | tr -s ' ' | sed 's/^ //')"
read -r a b c d e f g h <<<"$size"
w=$(((a << 24) | (b << 16) | (c << 8) | d)) hgt=$(((e << 24) | (f << 16) | (g << 8) | h))
check "screenshot is 1200x2400 (got ${w}x${hgt})" test "$w" -eq 1200 -a "$hgt" -eq 2400
check "screenshot is not blank (> 20 kB)" test "$(stat -c %s "$work/report.png")" -gt 20000
timeout 90 "$browser" "${flags[@]}" --dump-dom "file://$work/report.html" >"$work/dom.html" 2>"$work/dom.log"
check "chromium --dump-dom exits 0" test $? -eq 0
for id in chart-srcc chart-enrichment; do
  check "$id rendered with its SVG" grep -q "id=\"$id\"><svg" "$work/dom.html"
done
check "chart-curves rendered with 4 SVG panels" \
  test "$(sed -n '/id="chart-curves"/,/id="chart-enrichment"/p' "$work/dom.html" | grep -o '<svg' | wc -l)" -ge 4
for id in gmad-pairs table-comparison table-mechanism table-gmad; do
  check "$id rendered" grep -q "id=\"$id\"" "$work/dom.html"
done
check "gMAD images rendered" test "$(grep -o '<img src="data:image/png;base64,' "$work/dom.html" | wc -l)" -ge 2
for log in "$work/shot.log" "$work/dom.log"; do
  if grep -E ':CONSOLE|Uncaught' "$log"; then
    echo "FAILED: console message in $(basename "$log")"
    failures=$((failures + 1))
  else
    echo "ok: no console message in $(basename "$log")"
  fi
done
echo "screenshot: $work/report.png"
echo "$failures failure(s)"
exit $((failures > 0))
