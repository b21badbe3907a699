#!/usr/bin/env bash
# A 2-process trainer run (train_pairwise or train_mos) on tiny data (issue 12, section 3), launched by
# scripts/launch.sh or by torchrun --no-python (exit 77, CTest's skip, where Debian's python3-torch is
# not installed):
#   1. a run of 1 epoch completes, writes one checkpoint (and no temporaries), and its two ranks end
#      bitwise identical (each prints a checksum of its parameters and buffers: OHEM_TRAINER_CHECKSUM);
#   2. it resumes from that checkpoint for a second epoch, and the result is bitwise the model of an
#      uninterrupted 2-epoch run (exact resume at a fixed world size);
#   3. a resume with another world size (1 process) is refused, naming both sizes;
#   4. ranks started with different options stop at once, naming the differences (issue 27);
#   5. --resume auto starts afresh, then, started again after a stop mid-epoch, resumes by itself and ends
#      bitwise as the uninterrupted run (issue 27).
# Usage: run_trainer.sh launch|torchrun <train_pairwise or train_mos> <launch.sh> <work dir>
set -euo pipefail
mode=$1 exe=$2 launch=$3 work=$4
# shellcheck source=tests/distributed/trainer_setup.sh
source "$(dirname "$0")/trainer_setup.sh"

# 1. One epoch: 12 training images (or 12 pairs), 6 per rank, batch 2 per rank: 3 steps.
run "$work/first.log" --epochs2 1 --out "$work/run"
grep -q "batch 2 per rank (4 global over 2 ranks)" "$work/first.log" || { cat "$work/first.log"; fail "no batch line"; }
[[ $(grep -c '"event":"step"' "$work/run/log.jsonl") == 3 ]] || fail "expected 3 steps in log.jsonl"
[[ $(grep -c '"event":"start"' "$work/run/log.jsonl") == 1 ]] || fail "expected one start event (rank 0 writes)"
grep -q '"--batch2":2,.*"world_size":2,"global_batch1":[0-9]*,"global_batch2":4' "$work/run/log.jsonl" ||
  fail "the start event lacks the per-rank and global batches"
for f in checkpoint.pt results.json hardest.csv log.jsonl; do [[ -f $work/run/$f ]] || fail "no $f"; done
[[ $(ls "$work/run" | grep -c 'checkpoint') == 1 ]] || { ls -a "$work/run"; fail "expected one checkpoint file"; }
grep -q '"world_size": 2' "$work/run/results.json" || fail "results.json lacks world_size 2"
# Rank 0's hardness table covers the 12 training images (gathered from both ranks).
[[ $(($(wc -l <"$work/run/hardest.csv") - 1)) == 12 ]] || fail "hardest.csv should rank the 12 training images"
one=$(checksums "$work/first.log")

# 2. Resume for a second epoch; compare with an uninterrupted 2-epoch run.
run "$work/resume.log" --epochs2 2 --out "$work/run" --resume "$work/run/checkpoint.pt"
grep -q '"event":"resume"' "$work/run/log.jsonl" || fail "no resume event in log.jsonl"
[[ $(grep -c '"event":"step"' "$work/run/log.jsonl") == 6 ]] || fail "expected 6 steps in log.jsonl after the resume"
resumed=$(checksums "$work/resume.log")
[[ $resumed != "$one" ]] || fail "the resumed epoch did not change the model"
run "$work/straight.log" --epochs2 2 --out "$work/straight"
straight=$(checksums "$work/straight.log")
[[ $resumed == "$straight" ]] || fail "resumed run $resumed differs from the uninterrupted run $straight"

# 3. Another world size is refused, naming both.
if "$exe" "${common[@]}" --epochs2 3 --out "$work/run" --resume "$work/run/checkpoint.pt" >"$work/one.log" 2>&1; then
  fail "a 1-process resume of a 2-process checkpoint was accepted"
fi
grep -q "world size 2, this run has world size 1" "$work/one.log" || { cat "$work/one.log"; fail "unclear error"; }

# 4. Ranks started with different options stop at once (not at the 5-minute collective timeout), every
#    rank naming the differences (issue 27): rank 1 gets another --weight-decay and --split-seed.
cat >"$work/disagree.sh" <<EOF
#!/usr/bin/env bash
if [[ \${RANK:-0} == 1 ]]; then exec "$exe" "\$@" --weight-decay 0.1 --split-seed 3; fi
exec "$exe" "\$@"
EOF
chmod +x "$work/disagree.sh"
start=$SECONDS
if "${launcher[@]}" "$work/disagree.sh" "${common[@]}" --epochs2 1 --out "$work/disagree" >"$work/disagree.log" 2>&1; then
  cat "$work/disagree.log"
  fail "ranks with different --weight-decay and --split-seed were accepted"
fi
for want in "the ranks were started with different options" "--split-seed: rank 0 0, rank 1 3" \
  "--weight-decay: rank 0 0.0005, rank 1 0.1"; do
  grep -qF -- "$want" "$work/disagree.log" || { cat "$work/disagree.log"; fail "no '$want' in the error"; }
done
stopped=$((SECONDS - start))
((stopped < 60)) || fail "the disagreeing ranks took $stopped s to stop"
[[ ! -e $work/disagree/log.jsonl ]] || fail "the disagreeing run wrote a log"

# 5. --resume auto (issue 27): a run stopped mid-epoch after a checkpoint (step 4 of 6) and started again
#    with the same command line resumes by itself and ends bitwise as the uninterrupted run.
run "$work/auto1.log" --epochs2 2 --resume auto --max-steps 4 --checkpoint-every 4 --out "$work/auto"
grep -q "no checkpoint in" "$work/auto1.log" || { cat "$work/auto1.log"; fail "auto did not start afresh"; }
run "$work/auto2.log" --epochs2 2 --resume auto --out "$work/auto"
grep -q "resuming from $work/auto/checkpoint.pt" "$work/auto2.log" || { cat "$work/auto2.log"; fail "auto did not resume"; }
auto=$(checksums "$work/auto2.log")
[[ $auto == "$straight" ]] || fail "the auto-resumed run $auto differs from the uninterrupted run $straight"

echo "OK: 2 ranks identical ($one after 1 epoch, $resumed after the resumed epoch = uninterrupted run = auto-resumed run);" \
  "disagreeing ranks stopped after $stopped s"
