#!/usr/bin/env bash
# Quick start command 1: installs what is missing, builds the demo and runs it on built-in data.
# Extra arguments are passed to the demo (e.g. --threads 2 --steps 100).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
cmake --preset dev >/dev/null
cmake --build --preset dev --target quickstart
exec build/dev/examples/quickstart/quickstart "$@"
