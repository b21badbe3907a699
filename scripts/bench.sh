#!/usr/bin/env bash
# Runs every benchmark side by side on this machine and writes JSON + a markdown report:
#   build/bench/results/bench_*.json   Google Benchmark output of each C++ program
#   build/bench/results/python.json    the Python originals (Debian's python3-torch / python3-scipy)
#   build/bench/results/step/          the training-step comparison: R rounds, each running the C++ steps
#                                      and then the Python recipe's steps, so that both sides see the same
#                                      machine state (a shared VM drifts by ±25% over minutes)
#   build/bench/results/step-malloc/   the same with glibc's heap trimming and mmap threshold raised
#                                      (MALLOC_TRIM_THRESHOLD_ etc.) for both sides: no page faults for
#                                      memory that is freed and allocated again every step
#   build/bench/results/report.md      the table for docs/benchmarks.md, with C++/Python ratios and targets
# Usage: scripts/bench.sh [--threads N] [--rounds R] [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=1
rounds=5
quick=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --threads) threads="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --quick) quick=(--quick); rounds=1; shift ;;
    *) echo "usage: scripts/bench.sh [--threads N] [--rounds R] [--quick]" >&2; exit 2 ;;
  esac
done
scripts/setup.sh --python
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
cmake --preset bench >/dev/null
cmake --build --preset bench
out=build/bench/results
rm -rf "$out"
mkdir -p "$out/step"
echo "[bench] threads: $threads, step rounds: $rounds"
extra=()
[[ ${#quick[@]} -gt 0 ]] && extra=(--benchmark_min_time=0.1)
for exe in build/bench/benchmarks/bench_*; do
  [[ -x "$exe" ]] || continue
  name=$(basename "$exe")
  [[ "$name" == bench_step ]] && continue  # run in rounds below
  # bench_distributed has its own main and options (not Google Benchmark's): by hand or under a launcher,
  # docs/distributed.md
  [[ "$name" == bench_distributed ]] && continue
  echo "[bench] $name"
  "$exe" --threads="$threads" --benchmark_out="$out/$name.json" --benchmark_out_format=json "${extra[@]}"
done
echo "[bench] python baselines: masks, metrics"
/usr/bin/python3 benchmarks/python/bench_recipe.py --threads "$threads" --cases masks,metrics --max-n 100000 \
  --json "$out/python.json" "${quick[@]}"
# DIR ROUND HEAP [VAR=VALUE...]: bench_step's --heap (default: glibc's defaults, like Python's process;
# training: what every ohem program sets up) and the environment of both sides
step_round() {
  env "${@:4}" build/bench/benchmarks/bench_step --threads="$threads" --heap="$3" \
    --benchmark_out="$1/bench_step.$2.json" --benchmark_out_format=json "${extra[@]}"
  env "${@:4}" /usr/bin/python3 benchmarks/python/bench_recipe.py --threads "$threads" --cases step \
    --json "$1/python.$2.json" "${quick[@]}"
}
mkdir -p "$out/step-malloc"
for ((r = 1; r <= rounds; r++)); do
  echo "[bench] training step, round $r of $rounds: C++, then the Python recipe"
  step_round "$out/step" "$r" default
  echo "[bench] training step, round $r of $rounds, glibc malloc without trimming: C++, then Python"
  step_round "$out/step-malloc" "$r" training MALLOC_TRIM_THRESHOLD_=4294967295 MALLOC_MMAP_THRESHOLD_=33554432 \
    MALLOC_TOP_PAD_=268435456
done
/usr/bin/python3 benchmarks/report.py "$out" | tee "$out/report.md"
