#!/usr/bin/env bash
# Tests of scripts/launch.sh: the variables each rank gets, success, a failing rank stopping the others, and
# --max-restarts.
set -uo pipefail
launch="$1"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAILED: $*" >&2; exit 1; }

# 1. Three ranks see RANK/LOCAL_RANK 0..2, WORLD_SIZE 3, one shared MASTER_ADDR:MASTER_PORT.
bash "$launch" 3 bash -c 'echo "$RANK $LOCAL_RANK $WORLD_SIZE $LOCAL_WORLD_SIZE $MASTER_ADDR $MASTER_PORT" > "'"$tmp"'/r$RANK"' ||
  fail "3 successful ranks did not exit 0"
for r in 0 1 2; do
  read -r rank local world lworld addr port < "$tmp/r$r" || fail "rank $r did not run"
  [[ "$rank" == "$r" && "$local" == "$r" && "$world" == 3 && "$lworld" == 3 && "$addr" == 127.0.0.1 ]] ||
    fail "rank $r saw: $(cat "$tmp/r$r")"
  [[ "$port" =~ ^[0-9]+$ && "$port" -ge 1024 ]] || fail "bad MASTER_PORT '$port'"
  [[ -z "${first_port:-}" || "$first_port" == "$port" ]] || fail "ranks saw different ports"
  first_port=$port
done
# The port chosen lies outside the kernel's ephemeral range, which port-0 binds draw from.
for _ in 1 2 3 4 5 6 7 8; do
  port=$(bash "$launch" 1 bash -c 'echo "$MASTER_PORT"') || fail "a 1-process launch failed"
  if read -r lo hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null && ((hi - lo < 55000)); then
    ((port < lo || port > hi)) || fail "MASTER_PORT $port is in the ephemeral range $lo-$hi"
  fi
  ((port >= 10000 && port <= 65535)) || fail "MASTER_PORT $port outside 10000-65535"
done

# 2. A failing rank: its status is returned and the other rank (sleeping 60 s) is stopped at once.
start=$SECONDS
LAUNCH_GRACE=2 bash "$launch" 2 bash -c 'if [[ $RANK == 1 ]]; then sleep 0.3; exit 7; fi; sleep 60; touch "'"$tmp"'/survived"'
rc=$?
[[ $rc == 7 ]] || fail "expected status 7 from the failing rank, got $rc"
((SECONDS - start < 15)) || fail "the other rank was not stopped (took $((SECONDS - start)) s)"
sleep 0.5
[[ ! -e "$tmp/survived" ]] || fail "the other rank ran to completion"

# 3. --max-restarts: the whole group starts again (TORCHELASTIC_RESTART_COUNT counts the restarts) until it
#    succeeds; when the restarts are spent, the failing status is returned with a message.
out=$(LAUNCH_GRACE=1 bash "$launch" --max-restarts 3 2 bash -c \
  'echo "$RANK $TORCHELASTIC_RESTART_COUNT" >> "'"$tmp"'/starts"; touch "'"$tmp"'/r$RANK.$TORCHELASTIC_RESTART_COUNT"
   # Rank 1 fails only once rank 0 has recorded its start (else the launcher may stop rank 0 first).
   if [[ $RANK == 1 && $TORCHELASTIC_RESTART_COUNT -lt 2 ]]; then
     for _ in $(seq 1 200); do [[ -e "'"$tmp"'/r0.$TORCHELASTIC_RESTART_COUNT" ]] && break; sleep 0.05; done
     exit 5
   fi
   exit 0' 2>&1) ||
  fail "a group that succeeds on its third start was not restarted: $out"
[[ $(sort "$tmp/starts" | tr '\n' ' ') == "0 0 0 1 0 2 1 0 1 1 1 2 " ]] || fail "unexpected starts: $(cat "$tmp/starts")"
[[ $(grep -c "launch.sh: restarting the group of 2" <<<"$out") == 2 ]] || fail "expected 2 restart lines: $out"
out=$(LAUNCH_GRACE=1 bash "$launch" --max-restarts 1 2 bash -c '[[ $RANK == 1 ]] && exit 6; sleep 30' 2>&1)
rc=$?
[[ $rc == 6 ]] || fail "expected status 6 once the restarts are spent, got $rc"
grep -q "giving up: the group failed (status 6) after 1 restart(s)" <<<"$out" || fail "no give-up message: $out"

# 4. Usage errors.
bash "$launch" 0 true 2>/dev/null && fail "N=0 accepted"
bash "$launch" 2 2>/dev/null && fail "a missing command accepted"
bash "$launch" --max-restarts x 2 true 2>/dev/null && fail "--max-restarts x accepted"
bash "$launch" --help | grep -q -- "--max-restarts R" || fail "--help does not document --max-restarts"
echo "launch.sh: all checks passed"
