#!/usr/bin/env bash
# The GPU check, for a machine with a CUDA device and pip `torch` (its bundled LibTorch): configures a
# Release build against that LibTorch, builds ohem_tests and bench_step, runs the CUDA tests (CTest label
# cuda) and bench_step on the GPU, trains train_pairwise for 50 OHEM steps and 50 plain steps on the GPU (the
# first step's loss against the CPU's, and the OHEM/plain step-time ratio), and writes a markdown summary:
#   $OUT/gpu-summary.md when $OUT is set, else build/gpu/summary.md   (logs next to it, *.log)
# Each step has a time limit; the whole check fits in about 10 minutes on a 16-core machine.
#
# Usage: scripts/gpu-check.sh [--jobs N] [--cpu-dry-run] [--distributed]
#   --jobs N        build jobs (default: nproc)
#   --distributed   also bench_distributed on the CPU cores: 1 x 4 threads vs 2 processes x 4 threads
#   --cpu-dry-run   no GPU needed: every step runs, the CUDA tests must report "skipped" and bench_step
#                   runs briefly on the CPU (to check this script on a machine without a GPU)
# Environment:
#   OHEM_TORCH_PREFIX   a LibTorch to use instead of pip torch's (e.g. an unpacked libtorch archive)
#   PYTHON              the Python whose torch is used (default python3)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"

jobs="$(nproc)"
dry=0
dist=0
while (($#)); do
  case "$1" in
    --jobs) jobs="${2:?--jobs needs a number}"; shift 2 ;;
    --cpu-dry-run) dry=1; shift ;;
    --distributed) dist=1; shift ;;
    *) echo "usage: scripts/gpu-check.sh [--jobs N] [--cpu-dry-run] [--distributed]" >&2; exit 2 ;;
  esac
done

build="$repo/build/gpu"
out="${OUT:-$build}"
summary="$out/gpu-summary.md"
[[ -n "${OUT:-}" ]] || summary="$build/summary.md"
mkdir -p "$build" "$out"
python="${PYTHON:-python3}"

say() { echo "[gpu-check] $*"; }
fail() {
  echo "[gpu-check] FAILED: $*" >&2
  {
    echo
    echo "**FAILED**: $*"
  } >>"$summary"
  exit 1
}
# run_step <name> <seconds> <command...>: runs the command with its output in $out/<name>.log.
run_step() {
  local name="$1" limit="$2"
  shift 2
  say "$name (limit ${limit}s, log: $out/$name.log)"
  local start=$SECONDS rc=0
  timeout --kill-after=10 "$limit" "$@" >"$out/$name.log" 2>&1 || rc=$?
  local took=$((SECONDS - start))
  if ((rc == 124 || rc == 137)); then
    tail -n 20 "$out/$name.log" >&2
    fail "$name ran past its limit of ${limit}s"
  fi
  say "$name: exit $rc after ${took}s"
  return "$rc"
}

{
  echo "# GPU check ($(date -u '+%Y-%m-%d %H:%M UTC'))"
  echo
  echo "- tree: $(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)"
} >"$summary"

# 1. The device and the LibTorch.
if command -v nvidia-smi >/dev/null; then
  gpu=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -n 1 || true)
else
  gpu=""
fi
if [[ -n "${OHEM_TORCH_PREFIX:-}" ]]; then
  torch_prefix="$OHEM_TORCH_PREFIX"
  torch_info="LibTorch at $torch_prefix"
elif "$python" -c 'import torch' 2>/dev/null; then
  torch_prefix=$("$python" -c 'import torch; print(torch.utils.cmake_prefix_path)')
  torch_info=$("$python" -c 'import torch
print(f"pip torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()},"
      f" C++11 ABI {torch._C._GLIBCXX_USE_CXX11_ABI}, cuda.is_available() {torch.cuda.is_available()}")')
elif ((dry)); then
  torch_prefix=""  # the system's LibTorch (find_package's default search)
  torch_info="system LibTorch (no pip torch; dry run)"
else
  fail "no pip torch for $python (pip install torch, or set OHEM_TORCH_PREFIX to a LibTorch)"
fi
{
  echo "- GPU: ${gpu:-none found by nvidia-smi}"
  echo "- LibTorch: $torch_info"
  echo "- compiler: $(c++ --version | head -n 1)"
} >>"$summary"
say "GPU: ${gpu:-none}; $torch_info"
if ((!dry)); then
  [[ -n "$gpu" ]] || fail "no CUDA device (nvidia-smi finds none); --cpu-dry-run checks the rest"
  if [[ -z "${OHEM_TORCH_PREFIX:-}" ]] &&
    ! "$python" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    fail "no CUDA device: torch.cuda.is_available() is false (a CPU-only torch, or no driver)"
  fi
  if ! command -v nvcc >/dev/null && [[ ! -x /usr/local/cuda/bin/nvcc ]]; then
    say "warning: no nvcc on PATH or in /usr/local/cuda: LibTorch's CMake config may not find CUDA"
  fi
  if [[ -z "${OHEM_TORCH_PREFIX:-}" ]] &&
    [[ $("$python" -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))') == 0 ]]; then
    say "warning: this torch uses the pre-C++11 ABI: Debian's fmt/benchmark libraries may not link"
  fi
  # LibTorch's CMake config derives CUDA flags from TORCH_CUDA_ARCH_LIST, else detects the GPUs (or
  # falls back to a long list): the device's own compute capability, unless the caller set one.
  if [[ -z "${TORCH_CUDA_ARCH_LIST:-}" ]] && [[ -z "${OHEM_TORCH_PREFIX:-}" ]]; then
    TORCH_CUDA_ARCH_LIST=$("$python" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability(0))')
    export TORCH_CUDA_ARCH_LIST
  fi
  echo "- CUDA architectures (TORCH_CUDA_ARCH_LIST): ${TORCH_CUDA_ARCH_LIST:-detected by LibTorch}" >>"$summary"
fi

# 2. Configure and build (Release, tests and benchmarks, and of the examples train_pairwise only).
configure=(cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DOHEM_BUILD_TESTS=ON
  -DOHEM_BUILD_EXAMPLES=ON -DOHEM_BUILD_BENCHMARKS=ON)
[[ -z "$torch_prefix" ]] || configure+=("-DCMAKE_PREFIX_PATH=$torch_prefix")
run_step configure 180 "${configure[@]}" || fail "configure (see $out/configure.log)"
targets=(ohem_tests bench_step train_pairwise)
((!dist)) || targets+=(bench_distributed)
run_step build 420 cmake --build "$build" -j "$jobs" --target "${targets[@]}" ||
  fail "build (see $out/build.log)"

# 3. The CUDA tests: CTest's "cuda" test (ohem_tests "[cuda]"), then the per-test durations.
ctest_rc=0
run_step ctest-cuda 300 ctest --test-dir "$build" -L cuda -V || ctest_rc=$?
{
  echo
  echo "## CUDA tests (ctest -L cuda)"
  echo
  echo '```'
  grep -E 'Test +#|tests passed|tests failed|Skipped|\*\*\*' "$out/ctest-cuda.log" || true
  # Catch2's totals: how many CUDA test cases ran, failed or skipped themselves (e.g. no autocast support).
  grep -E 'test cases:|assertions:|All tests passed' "$out/ctest-cuda.log" || true
  grep -E '[0-9.]+ s: ' "$out/ctest-cuda.log" || true  # ohem_tests --durations yes: one line per test case
  echo '```'
} >>"$summary"
if ((dry)); then
  grep -q 'Skipped' "$out/ctest-cuda.log" || fail "dry run: the cuda test did not report skipped"
elif ((ctest_rc != 0)) || grep -q 'Skipped' "$out/ctest-cuda.log" ||
  ! grep -q '100% tests passed, 0 tests failed out of 1' "$out/ctest-cuda.log"; then
  fail "CUDA tests (see $out/ctest-cuda.log): the cuda test must run and pass"
fi

# 4. bench_step on the GPU (OHEM_BENCH_DEVICE), JSON next to the log.
bench=(env OHEM_BENCH_DEVICE=cuda "$build/benchmarks/bench_step" --benchmark_out="$out/bench_step.json"
  --benchmark_out_format=json)
((!dry)) || bench=(env OHEM_BENCH_DEVICE=cpu "$build/benchmarks/bench_step" --benchmark_filter='PlainStep|OhemStepJoint$'
  --benchmark_min_time=0.01 --benchmark_out="$out/bench_step.json" --benchmark_out_format=json)
run_step bench_step 240 "${bench[@]}" || fail "bench_step (see $out/bench_step.log)"
{
  echo
  echo "## bench_step ($([[ $dry == 1 ]] && echo "CPU, dry run" || echo "GPU"))"
  echo
  if "$python" -c 'import json' 2>/dev/null; then
    "$python" - "$out/bench_step.json" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))["benchmarks"]
print("| benchmark | time per step (ms) | iterations |")
print("| --- | ---: | ---: |")
for r in runs:
    scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[r.get("time_unit", "ns")]
    print(f"| {r['name']} | {r['real_time'] * scale:.2f} | {r['iterations']} |")
PY
  else
    echo '```'
    grep -E '^BM_' "$out/bench_step.log" || true
    echo '```'
  fi
} >>"$summary"

# 5. train_pairwise on the GPU: the walk-through's images (tests/walkthrough/make_data.py), ResNet-18 of
# width 32, 50 steps of batch 16 pairs with OHEM and 50 without; the first step's loss against the CPU's
# (within 1e-4, float32) and the step times from log.jsonl (the median gap between steps 11-50 of one epoch).
device=cuda
((!dry)) || device=cpu
data="$build/trainer-data"
rm -rf "$data" && mkdir -p "$data"
"$python" "$repo/tests/walkthrough/make_data.py" "$data" || fail "tests/walkthrough/make_data.py"
trainer=("$build/examples/train_pairwise/train_pairwise" --csv "$data/train.csv" --arch resnet18 --width 32
  --resize 0 --crop 32 --test-resize 0 --epochs1 0 --epochs2 100 --batch2 16 --progress off --threads 4
  --eval-every-epoch off)
run_step trainer-cpu-1 120 "${trainer[@]}" --device cpu --max-steps 1 --ohem on --out "$build/run-cpu" --overwrite ||
  fail "train_pairwise on the CPU (see $out/trainer-cpu-1.log)"
run_step trainer-ohem 300 "${trainer[@]}" --device "$device" --max-steps 50 --ohem on --out "$build/run-ohem" \
  --overwrite || fail "train_pairwise --ohem on on $device (see $out/trainer-ohem.log)"
run_step trainer-plain 300 "${trainer[@]}" --device "$device" --max-steps 50 --ohem off --out "$build/run-plain" \
  --overwrite || fail "train_pairwise --ohem off on $device (see $out/trainer-plain.log)"
"$python" - "$build" "$device" >>"$summary" <<'PY' || fail "the trainer's first step on $device differs from the CPU's"
import json, sys
build, device = sys.argv[1], sys.argv[2]
def steps(run):
    return [j for j in map(json.loads, open(f"{build}/{run}/log.jsonl")) if j.get("event") == "step"]
cpu, ohem, plain = steps("run-cpu"), steps("run-ohem"), steps("run-plain")
def step_time(s):  # median gap between consecutive steps 11..50 within an epoch (no epoch-end work in it)
    gaps = sorted(b["elapsed_s"] - a["elapsed_s"] for a, b in zip(s[10:], s[11:]) if b["step"] != 0)
    return gaps[len(gaps) // 2]
diff = abs(cpu[0]["loss"] - ohem[0]["loss"])
print(f"\n## train_pairwise on {device} (ResNet-18 width 32, batch 16 pairs of 32 px, 50 steps)\n")
print(f"- first step's loss: CPU {cpu[0]['loss']:.6f}, {device} {ohem[0]['loss']:.6f}, |diff| {diff:.2e} (limit 1e-4)")
print(f"- step time (median, steps 11-50): OHEM {1e3 * step_time(ohem):.1f} ms, plain {1e3 * step_time(plain):.1f} ms, "
      f"OHEM/plain {step_time(ohem) / step_time(plain):.2f}")
sys.exit(0 if diff <= 1e-4 * max(1.0, abs(cpu[0]["loss"])) else 1)
PY

# 6. (--distributed) Data-parallel throughput and overlap on this machine's CPU cores (Gloo on 127.0.0.1):
# with spare cores, how much of the all-reduce hides behind backward (docs/distributed.md). A failure is
# reported, not fatal (a step past its time limit still ends the check).
if ((dist)); then
  export MALLOC_TRIM_THRESHOLD_=4294967295 MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TOP_PAD_=268435456
  bd="$build/benchmarks/bench_distributed"
  args=(--steps=10 --warmup=4 --batch=8 --size=128)
  {
    run_step dist-1x4 120 "$bd" --threads=4 "${args[@]}" &&
      run_step dist-2x4 180 "$repo/scripts/launch.sh" 2 "$bd" --threads=4 "${args[@]}" &&
      run_step dist-2x4-off-first 180 "$repo/scripts/launch.sh" 2 "$bd" --threads=4 "${args[@]}" --first=off
  } || say "warning: bench_distributed failed (see $out/dist-*.log)"
  {
    echo
    echo "## bench_distributed (CPU, Gloo on 127.0.0.1, $(nproc) cores)"
    echo
    echo '```'
    cat "$out"/dist-*.log 2>/dev/null || true
    echo '```'
  } >>"$summary"
fi
say "done: $summary"
cat "$summary"
