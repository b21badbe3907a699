#!/usr/bin/env bash
# Quick start command 2: installs what is missing, then configures, builds and runs the whole test
# suite through CTest (CMake workflow preset "dev"); it also fetches the study's photographs
# (scripts/fetch-photos.sh, cached) for the study's end-to-end test.
#   --asan   the sanitizer build instead (preset "asan")
#   --clang  Clang with -Werror for ohem's code instead (preset "clang"; installs clang if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
preset=dev
setup=()
case "${1:-}" in
  "") ;;
  --asan) preset=asan ;;
  --clang) preset=clang; setup=(--clang) ;;
  *) echo "usage: scripts/test.sh [--asan | --clang]" >&2; exit 2 ;;
esac
scripts/setup.sh "${setup[@]}"
# The study's end-to-end test (study_quick) needs the photographs (Debian packages, cached; skipped without).
scripts/fetch-photos.sh || echo "warning: the photographs could not be fetched: the study_quick test will be skipped" >&2
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
cmake --workflow --preset "$preset"
