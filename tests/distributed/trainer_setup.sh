# Sourced by run_trainer.sh and run_elastic.sh, after they set mode (launch|torchrun), exe (the trainer),
# launch (scripts/launch.sh), work (a scratch directory, replaced) and optionally restarts (the launcher's
# restart count): the launcher command (exit 77, CTest's skip, for torchrun where Debian's python3-torch
# is missing), tiny data in $work/data, the common trainer options, and the helpers fail, run, checksums.
# shellcheck shell=bash
# shellcheck disable=SC2034,SC2154  # mode, exe, launch, work: set by the sourcing script; common, launcher: used there
here=$(dirname "${BASH_SOURCE[0]}")
if [[ $mode == torchrun ]]; then
  bash "$here/run_torchrun.sh" --check || exit $?  # 77: skipped
  launcher=(bash "$here/run_torchrun.sh" ${restarts:+--max-restarts "$restarts"})
else
  launcher=(bash "$launch" ${restarts:+--max-restarts "$restarts"} 2)
fi
fail() { echo "FAIL: $*" >&2; exit 1; }

rm -rf "$work"
mkdir -p "$work/data/images"
# 16 tiny 20x20 binary PPM images of 4 contents, and a generic CSV (path, mos, std, group, type).
echo "path,mos,std,group,type" >"$work/data/all.csv"
for i in $(seq 0 15); do
  f="$work/data/images/t$i.ppm"
  printf 'P6\n20 20\n255\n' >"$f"
  head -c 1200 < <(yes "ohem $i $((i * 37)) image") >>"$f"
  echo "images/t$i.ppm,$(((i * 5) % 16)).25,0.5,ref$((i % 4)),$([[ $((i % 2)) == 1 ]] && echo noise || echo blur)" \
    >>"$work/data/all.csv"
done

common=(--csv "$work/data/all.csv" --width 8 --resize 0 --crop 16 --test-resize 0 --epochs1 0 --batch2 2
        --lr 1e-3 --train-fraction 0.75 --progress off --threads 1)
# run <log> args...: the trainer under the launcher (at most 150 s), both ranks printing their checksums.
run() {
  local log=$1
  shift
  OHEM_TRAINER_CHECKSUM=1 timeout 150 "${launcher[@]}" "$exe" "${common[@]}" "$@" >"$log" 2>&1 || {
    cat "$log"
    fail "the 2-process run failed: $*"
  }
}
# checksums <log>: the two ranks' checksums must be present and equal; prints the value.
checksums() {
  local r0 r1
  r0=$(sed -n 's/.*parameter checksum of rank 0 of 2: \([0-9a-f]*\).*/\1/p' "$1")
  r1=$(sed -n 's/.*parameter checksum of rank 1 of 2: \([0-9a-f]*\).*/\1/p' "$1")
  [[ -n $r0 && -n $r1 ]] || { cat "$1"; fail "missing a rank's checksum in $1"; }
  [[ $r0 == "$r1" ]] || fail "ranks differ after training: rank 0 $r0, rank 1 $r1"
  echo "$r0"
}
