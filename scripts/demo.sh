#!/usr/bin/env bash
# Quick start command 1: installs what is missing, builds the demo and runs it on built-in data:
# baseline vs OHEM training on synthetic distortions of public-domain photographs, side by side
# (see docs/examples.md). Extra arguments go to the demo (e.g. --seeds 1 --threads 2).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec examples/demo/demo.sh "$@"
