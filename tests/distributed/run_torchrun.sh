#!/usr/bin/env bash
# Runs a worker under torchrun --no-python with 2 local processes; exits 77 (CTest: skipped) where
# Debian's python3-torch (torchrun) is not installed. torchrun is tried first (its own interpreter,
# from its #! line), then `python3 -m torch.distributed.run` with the python3 on PATH and Debian's.
# Usage: run_torchrun.sh <program> [args...]   or   run_torchrun.sh --check (exit 0 or 77, runs nothing)
set -euo pipefail
launcher=()
if command -v torchrun >/dev/null 2>&1 && torchrun --help >/dev/null 2>&1; then
  launcher=(torchrun)
else
  for py in python3 /usr/bin/python3; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import torch.distributed.run' >/dev/null 2>&1; then
      launcher=("$py" -m torch.distributed.run)
      break
    fi
  done
fi
if ((${#launcher[@]} == 0)); then
  echo "SKIP: torchrun / python3-torch not installed (apt install python3-torch)"
  exit 77
fi
# Debian 12's torchrun (torch 1.13 on Python 3.11) cannot start any process: its elastic agent fails
# in to_map() ('NoneType' object has no attribute 'get') whatever the program. A launcher that cannot
# run `true` cannot test us: skipped, with the reason, never passed.
if ! probe=$(timeout 120 "${launcher[@]}" --standalone --nproc_per_node=1 --no_python true 2>&1); then
  echo "SKIP: ${launcher[*]} cannot start a process here (torch's launcher itself fails):"
  printf '%s\n' "$probe" | tail -n 3
  exit 77
fi
[[ "${1:-}" == --check ]] && exit 0
echo "launcher: ${launcher[*]}"
exec "${launcher[@]}" --standalone --nproc_per_node=2 --no_python "$@"  # --no_python: the spelling of torch 1.13 and 2.x alike
