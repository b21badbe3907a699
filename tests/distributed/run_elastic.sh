#!/usr/bin/env bash
# Elastic restart of a 2-process trainer run (issue 27): rank 1 is killed (SIGKILL, by the test-only hook
# OHEM_TEST_KILL of examples/toolkit/trainer_base.hpp) in the middle of the second epoch, after step 5 of 6
# (checkpoints every 2 steps: the last one is step 4's); the launcher (scripts/launch.sh --max-restarts 1,
# or torchrun --max_restarts=1, skipped without python3-torch) stops the group and starts it again with
# the same command line, --resume auto continues from step 4's checkpoint, and the final model equals an
# uninterrupted run's bit for bit (both ranks' parameter checksums).
# Usage: run_elastic.sh launch|torchrun <train_pairwise or train_mos> <launch.sh> <work dir>
set -euo pipefail
mode=$1 exe=$2 launch=$3 work=$4
restarts=1
# shellcheck source=tests/distributed/trainer_setup.sh
source "$(dirname "$0")/trainer_setup.sh"

# The uninterrupted run: 2 epochs of 3 steps (12 training items, 6 per rank, batch 2 per rank).
run "$work/straight.log" --epochs2 2 --out "$work/straight"
straight=$(checksums "$work/straight.log")

# The killed and restarted run: the same command line for both starts.
marker="$work/killed"
OHEM_TEST_KILL="1:5:$marker" run "$work/elastic.log" --epochs2 2 --resume auto --checkpoint-every 2 \
  --out "$work/elastic"
log="$work/elastic.log"
[[ -f $marker ]] || { cat "$log"; fail "rank 1 was not killed (no $marker)"; }
grep -q "OHEM_TEST_KILL: rank 1 kills itself after step 5" "$log" || { cat "$log"; fail "no kill line"; }
grep -q "no checkpoint in $work/elastic; starting a fresh run" "$log" || { cat "$log"; fail "the first start did not start afresh"; }
grep -q "resuming from $work/elastic/checkpoint.pt" "$log" || { cat "$log"; fail "the restart did not resume"; }
if [[ $mode == launch ]]; then
  grep -q "launch.sh: restarting the group of 2 (1 of 1)" "$log" || { cat "$log"; fail "no restart line"; }
fi
grep -q '"event":"resume","checkpoint":"[^"]*","global_step":4' "$work/elastic/log.jsonl" ||
  { cat "$work/elastic/log.jsonl"; fail "expected a resume from step 4 in log.jsonl"; }
elastic=$(checksums "$log")
[[ $elastic == "$straight" ]] || fail "the restarted run $elastic differs from the uninterrupted run $straight"
echo "OK ($mode): rank 1 killed after step 5, the group restarted, resumed from step 4; final checksum $elastic" \
  "= uninterrupted run"
