#!/usr/bin/env bash
# Runs a worker under torchrun --no-python with 2 local processes; exits 77 (CTest: skipped) where
# Debian's python3-torch (torchrun) is not installed. torchrun is tried first (its own interpreter,
# from its #! line), then `python3 -m torch.distributed.run` with the python3 on PATH and Debian's.
# Usage: run_torchrun.sh [--max-restarts R] <program> [args...]   or   run_torchrun.sh --check (exit 0 or 77,
# runs nothing); --max-restarts R becomes torchrun's --max_restarts=R (restart the group after a failure).
set -euo pipefail
restart=()
if [[ ${1:-} == --max-restarts ]]; then
  restart=("--max_restarts=$2")
  shift 2
fi
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
# Debian 12's torchrun (torch 1.13 on Python 3.11) fails before starting any process with its default
# output settings: Std.from_str("0") returns None on Python 3.11 (an IntFlag's 0 member is no longer
# iterated), and the elastic agent stops in to_map() ('NoneType' object has no attribute 'get').
# Settings that parse (stdout teed to the console through a log file, stderr untouched) avoid it:
# `--redirects 1 --tee 1`, used only when the plain launcher fails that way. A launcher that still cannot
# run `true` cannot test us: skipped, with the reason, never passed.
extra=()
probe() { timeout 120 "${launcher[@]}" --standalone --nproc_per_node=1 "${extra[@]}" --no_python true 2>&1; }
if ! out=$(probe); then
  if grep -q "to_map" <<<"$out"; then
    extra=(--redirects 1 --tee 1)
    out=$(probe) || {
      echo "SKIP: ${launcher[*]} cannot start a process here, even with ${extra[*]}:"
      printf '%s\n' "$out" | tail -n 3
      exit 77
    }
  else
    echo "SKIP: ${launcher[*]} cannot start a process here (torch's launcher itself fails):"
    printf '%s\n' "$out" | tail -n 3
    exit 77
  fi
fi
[[ "${1:-}" == --check ]] && exit 0
echo "launcher: ${launcher[*]} ${extra[*]}"
# --no_python: the spelling of torch 1.13 and 2.x alike
exec "${launcher[@]}" --standalone --nproc_per_node=2 "${restart[@]}" "${extra[@]}" --no_python "$@"
