#!/usr/bin/env bash
# Runs a worker under torchrun --no-python with 2 local processes; exits 77 (CTest: skipped) where
# Debian's python3-torch (torchrun) is not installed.
set -euo pipefail
if ! command -v torchrun >/dev/null 2>&1 || ! python3 -c 'import torch' >/dev/null 2>&1; then
  echo "SKIP: torchrun / python3-torch not installed (apt install python3-torch)"
  exit 77
fi
exec torchrun --standalone --nproc_per_node=2 --no-python "$@"
