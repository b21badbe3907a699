#!/usr/bin/env bash
# Measures what each public ohem header adds to a user's compile: the CPU seconds (user + sys) of a
# translation unit `#include <torch/torch.h>` + `#include <ohem/HEADER>` against one with
# `<torch/torch.h>` alone, compiled as a user's Release build would (-O2 -std=c++17, no precompiled
# header). Prints one row per header: median CPU seconds over the repetitions and the cost over the
# baseline in percent. Baseline and headers alternate within each repetition, so a busy machine slows
# both alike. docs/benchmarks.md ("Compile cost") records the figures.
#
# Usage: scripts/compile-cost.sh [--reps N] [--cxx COMPILER] [HEADER ...]
#   --reps N     repetitions of each compile (default 3; the median is printed)
#   --cxx C      the compiler (default: $CXX, else c++)
#   HEADER       header names under include/ohem (default: ohem.hpp twin.hpp self_competitor.hpp and
#                every other public header)
# Environment: TORCH_INCLUDE (default /usr/include/torch/csrc/api/include), EIGEN_INCLUDE (default
# /usr/include/eigen3).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
reps=3
cxx="${CXX:-c++}"
headers=()
while (($#)); do
  case "$1" in
    --reps) reps="${2:?--reps needs a number}"; shift 2 ;;
    --cxx) cxx="${2:?--cxx needs a compiler}"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "compile-cost: unknown option $1" >&2; exit 2 ;;
    *) headers+=("$1"); shift ;;
  esac
done
[[ "$reps" =~ ^[1-9][0-9]*$ ]] || { echo "compile-cost: --reps must be a positive whole number, got $reps" >&2; exit 2; }
if ((${#headers[@]} == 0)); then
  headers=(ohem.hpp twin.hpp self_competitor.hpp)
  for h in "$repo"/include/ohem/*.hpp; do
    h="$(basename "$h")"
    case " ${headers[*]} " in *" $h "*) ;; *) headers+=("$h") ;; esac
  done
fi
torch_inc="${TORCH_INCLUDE:-/usr/include/torch/csrc/api/include}"
eigen_inc="${EIGEN_INCLUDE:-/usr/include/eigen3}"
[[ -f "$torch_inc/torch/torch.h" ]] || { echo "compile-cost: no torch/torch.h under $torch_inc (set TORCH_INCLUDE)" >&2; exit 1; }
for h in "${headers[@]}"; do
  [[ -f "$repo/include/ohem/$h" ]] || { echo "compile-cost: no header include/ohem/$h" >&2; exit 2; }
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
flags=(-std=c++17 -O2 -c -I"$repo/include" -isystem "$torch_inc" -isystem "$eigen_inc" -o "$work/out.o")

# cpu_seconds FILE: compiles FILE, prints the CPU seconds (user + sys) the compiler took.
cpu_seconds() {
  local t
  t=$( { /usr/bin/env time -f '%U %S' "$cxx" "${flags[@]}" "$1" 2>&1 >/dev/null; } | tail -n 1) || {
    echo "compile-cost: compiling $1 failed:" >&2
    "$cxx" "${flags[@]}" "$1" >&2 || true
    exit 1
  }
  awk '{printf "%.2f", $1 + $2}' <<<"$t"
}
median() { tr ' ' '\n' | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

command -v time >/dev/null 2>&1 || [[ -x /usr/bin/time ]] || { echo "compile-cost: needs GNU time (apt-get install time)" >&2; exit 1; }
printf '#include <torch/torch.h>\nint main() {}\n' >"$work/base.cpp"
for h in "${headers[@]}"; do
  printf '#include <torch/torch.h>\n#include <ohem/%s>\nint main() {}\n' "$h" >"$work/${h%.hpp}.cpp"
done

echo "compile-cost: $("$cxx" --version | head -n 1); $reps repetition(s); CPU seconds (user + sys), median"
declare -A times
base_times=""
for ((r = 1; r <= reps; ++r)); do
  for h in "${headers[@]}"; do
    base_times+="$(cpu_seconds "$work/base.cpp") "
    times[$h]+="$(cpu_seconds "$work/${h%.hpp}.cpp") "
    printf '.' >&2
  done
done
echo >&2
base=$(median <<<"${base_times% }")
printf '%-28s %8s %8s\n' "translation unit" "CPU s" "over"
printf '%-28s %8.2f %8s\n' "<torch/torch.h> alone" "$base" "-"
for h in "${headers[@]}"; do
  t=$(median <<<"${times[$h]% }")
  printf '%-28s %8.2f %7.1f%%\n' "+ <ohem/$h>" "$t" "$(awk -v t="$t" -v b="$base" 'BEGIN {print 100 * (t - b) / b}')"
done
