#!/usr/bin/env bash
# Launches N local processes of a command with the variables torchrun sets (no Python needed):
#   MASTER_ADDR=127.0.0.1 MASTER_PORT=<free port> WORLD_SIZE=N RANK=i LOCAL_RANK=i LOCAL_WORLD_SIZE=N
#   TORCHELASTIC_RESTART_COUNT=<restarts so far>
# (and OMP_NUM_THREADS=1 unless set, as torchrun does for N > 1). Waits for every process; when one fails,
# the others are stopped (TERM, then KILL after a grace period). With --max-restarts R the whole group is
# then started again with the same command and arguments, up to R times (as torchrun --max-restarts): a
# trainer run with --resume auto continues from its last checkpoint. Exits 0 when a group succeeds, else
# with the failing rank's status (after the last allowed restart).
#
# Usage: scripts/launch.sh [--max-restarts R] N <command> [args...]
#   --max-restarts R                            restart the group up to R times after a failure (default 0)
#   MASTER_PORT=29500 scripts/launch.sh 2 ...   use that port instead of a free one (on every restart)
#   MASTER_ADDR=host  scripts/launch.sh 2 ...   rendezvous address (default 127.0.0.1)
#   LAUNCH_GRACE=5                              seconds between TERM and KILL (default 5)
# Multi-node: run a torchrun-compatible launcher per node, or set the variables yourself (docs/distributed.md).
set -uo pipefail

usage() {
  echo "usage: $0 [--max-restarts R] N <command> [args...]   (N >= 1 local processes, R >= 0 restarts)" >&2
  exit 2
}
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
  sed -n '2,/^set -uo/{/^set -uo/d;s/^# \{0,1\}//;p}' "$0"
  exit 0
fi
max_restarts=0
while [[ ${1:-} == --max-restarts || ${1:-} == --max-restarts=* ]]; do
  if [[ $1 == --max-restarts=* ]]; then
    max_restarts=${1#--max-restarts=}
    shift
  else
    [[ $# -ge 2 ]] || usage
    max_restarts=$2
    shift 2
  fi
  [[ "$max_restarts" =~ ^[0-9]+$ ]] ||
    { echo "launch.sh: --max-restarts must be a non-negative integer, got '$max_restarts'" >&2; exit 2; }
done
[[ $# -ge 2 ]] || usage
n=$1
shift
[[ "$n" =~ ^[0-9]+$ && "$n" -ge 1 ]] || { echo "launch.sh: N must be a positive integer, got '$n'" >&2; exit 2; }

# A port nobody listens on: ask the kernel for an ephemeral one through bash's /dev/tcp is not possible,
# so probe random ports until a connection is refused and no listener is shown. The candidates lie outside
# the kernel's ephemeral range (ip_local_port_range), from which every port-0 bind and outgoing connection
# gets its port (Gloo's pairs, torchrun's store, other programs): a port found free inside it can be
# handed to one of those before rank 0 binds it ("Address already in use"), which happened when two
# distributed tests ran at once.
port_in_use() {
  if command -v ss >/dev/null 2>&1; then
    ss -Hltn "sport = :$1" 2>/dev/null | grep -q . && return 0
  fi
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
  return 1
}
# Prints a random port in [10000, 65535] outside the ephemeral range (anywhere in it if none is left).
random_port() {
  local lo=32768 hi=60999
  { read -r lo hi </proc/sys/net/ipv4/ip_local_port_range; } 2>/dev/null || true
  local below=$((lo - 10000)) above=$((65535 - hi))
  ((below < 0)) && below=0
  ((above < 0)) && above=0
  local r=$((RANDOM * 32768 + RANDOM))
  if ((below + above == 0)); then
    echo $((10000 + r % 55536))
  elif ((r % (below + above) < below)); then
    echo $((10000 + r % below))
  else
    echo $((hi + 1 + r % above))
  fi
}
# Sets MASTER_PORT to a free port.
pick_port() {
  MASTER_PORT=
  for _ in $(seq 1 100); do
    candidate=$(random_port)
    # torchrun --standalone's rendezvous port and torch's default MASTER_PORT: left to their owners.
    [[ $candidate == 29400 || $candidate == 29500 ]] && continue
    if ! port_in_use "$candidate"; then
      MASTER_PORT=$candidate
      break
    fi
  done
  [[ -n "${MASTER_PORT:-}" ]] || { echo "launch.sh: found no free port" >&2; exit 1; }
}
own_port=0
if [[ -z "${MASTER_PORT:-}" ]]; then
  own_port=1
  pick_port
fi
export MASTER_ADDR=${MASTER_ADDR:-127.0.0.1} MASTER_PORT WORLD_SIZE=$n LOCAL_WORLD_SIZE=$n
if [[ $n -gt 1 ]]; then export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}; fi
grace=${LAUNCH_GRACE:-5}

pids=()
stop_all() {
  local sig=$1
  # Each rank runs in its own process group (set -m): stop the rank and whatever it started.
  for p in "${pids[@]}"; do kill "-$sig" -- "-$p" 2>/dev/null || kill "-$sig" "$p" 2>/dev/null; done
}
cleanup() {
  stop_all TERM
  sleep "$grace" &
  local sleeper=$!
  # Wait for the others to exit (or the grace period to pass), then kill what is left.
  for p in "${pids[@]}"; do
    while kill -0 "$p" 2>/dev/null && kill -0 "$sleeper" 2>/dev/null; do sleep 0.1; done
  done
  kill "$sleeper" 2>/dev/null
  stop_all KILL
}
trap 'cleanup; exit 130' INT TERM
# Starts the group (TORCHELASTIC_RESTART_COUNT=$1) and waits; returns 0, or the first failing rank's
# status after stopping the others.
run_group() {
  local restart_count=$1
  shift
  pids=()
  set -m  # a process group per rank
  for ((i = 0; i < n; i++)); do
    RANK=$i LOCAL_RANK=$i TORCHELASTIC_RESTART_COUNT=$restart_count "$@" &
    pids+=($!)
  done
  set +m  # the groups exist; no job-control notices from here on
  # Poll rather than `wait -n`: when two ranks exit together bash can reap one without `wait -n` ever
  # reporting it, and a failing rank would pass for a success. `wait PID` on a rank that is gone returns
  # its own status (bash keeps the statuses of the children it reaped).
  local status=0 remaining=$n rc p i
  local -A finished=()
  while ((remaining > 0)); do
    for ((i = 0; i < n; i++)); do
      p=${pids[$i]}
      [[ -n "${finished[$p]:-}" ]] && continue
      kill -0 "$p" 2>/dev/null && continue
      wait "$p"
      rc=$?
      finished[$p]=1
      remaining=$((remaining - 1))
      if ((rc != 0)); then
        echo "launch.sh: rank $i (pid $p) exited with status $rc; stopping the other ranks" >&2
        status=$rc
        cleanup
        break 2
      fi
    done
    ((remaining > 0)) && sleep 0.05
  done
  pids=()
  return "$status"
}

restarts=0
while true; do
  run_group "$restarts" "$@"
  status=$?
  ((status == 0)) && exit 0
  if ((restarts >= max_restarts)); then
    ((max_restarts > 0)) &&
      echo "launch.sh: giving up: the group failed (status $status) after $restarts restart(s), the --max-restarts $max_restarts allowed" >&2
    exit "$status"
  fi
  restarts=$((restarts + 1))
  # A fresh port for the new group unless the caller chose one (the old one may still be in TIME_WAIT).
  ((own_port)) && pick_port
  echo "launch.sh: restarting the group of $n ($restarts of $max_restarts) on $MASTER_ADDR:$MASTER_PORT: $*" >&2
done
