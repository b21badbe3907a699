#!/usr/bin/env bash
# The OHEM study with one command (docs/study.md): fetches the photographs (scripts/fetch-photos.sh; the
# package manager's output goes to a log), installs what is missing (scripts/setup.sh), builds the study and its report generator, and
# runs it: baseline vs OHEM on 5 seeds, the mechanism with its controls, gMAD, results.json and the report.
#
# Usage: scripts/study.sh [study options, e.g. --quick, --seeds 3, --out DIR, --overwrite]
# Environment: OHEM_DEMO_CACHE (default build/demo-cache: photographs and the cached dataset),
#              OHEM_BUILD_DIR (default build/dev), OHEM_STUDY_SKIP_BUILD=1 to use an already built binary.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
cache="${OHEM_DEMO_CACHE:-$root/build/demo-cache}"
build="${OHEM_BUILD_DIR:-$root/build/dev}"
mkdir -p "$cache"

scripts/setup.sh
echo "photographs: scripts/fetch-photos.sh $cache/photos"
scripts/fetch-photos.sh "$cache/photos"
photos="$cache/photos"

if [ "${OHEM_STUDY_SKIP_BUILD:-0}" != 1 ]; then
  export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
  if [ ! -f "$build/CMakeCache.txt" ]; then
    echo "configuring $build"
    if [ "$build" = "$root/build/dev" ]; then cmake --preset dev >/dev/null; else cmake -S "$root" -B "$build" >/dev/null; fi
  fi
  targets=(study study_report)
  echo "building ${targets[*]} in $build"
  cmake --build "$build" --target "${targets[@]}"
fi
# Defaults for the options the command line does not give.
args=()
given() { local o="$1"; shift; for a in "$@"; do case "$a" in "$o" | "$o"=*) return 0 ;; esac; done; return 1; }
given --photos "$@" || args+=(--photos "$photos")
given --data "$@" || args+=(--data "$cache/study-data")
given --out "$@" || args+=(--out "$root/build/study")
exec "$build/examples/study/study" "${args[@]}" "$@"
