#!/usr/bin/env bash
# Runs every benchmark side by side on this machine and writes JSON + a markdown report:
#   build/bench/results/bench_*.json   Google Benchmark output of each C++ program
#   build/bench/results/python.json    the Python originals (Debian's python3-torch / python3-scipy)
#   build/bench/results/report.md      the table for docs/benchmarks.md, with C++/Python ratios and targets
# Usage: scripts/bench.sh [--threads N] [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=1
quick=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --threads) threads="$2"; shift 2 ;;
    --quick) quick=(--quick); shift ;;
    *) echo "usage: scripts/bench.sh [--threads N] [--quick]" >&2; exit 2 ;;
  esac
done
scripts/setup.sh --python
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
cmake --preset bench >/dev/null
cmake --build --preset bench
out=build/bench/results
mkdir -p "$out"
echo "[bench] threads: $threads"
extra=()
[[ ${#quick[@]} -gt 0 ]] && extra=(--benchmark_min_time=0.1)
for exe in build/bench/benchmarks/bench_*; do
  [[ -x "$exe" ]] || continue
  name=$(basename "$exe")
  echo "[bench] $name"
  "$exe" --threads="$threads" --benchmark_out="$out/$name.json" --benchmark_out_format=json "${extra[@]}"
done
echo "[bench] python baselines"
/usr/bin/python3 benchmarks/python/bench_recipe.py --threads "$threads" --max-n 100000 --json "$out/python.json" "${quick[@]}"
/usr/bin/python3 benchmarks/report.py "$out" | tee "$out/report.md"
