#!/usr/bin/env bash
# Quick start command 2: installs what is missing, then configures, builds and runs the whole test
# suite through CTest (CMake workflow preset "dev"). Pass --asan for the sanitizer build instead.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
preset=dev
[[ "${1:-}" == "--asan" ]] && preset=asan
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
cmake --workflow --preset "$preset"
