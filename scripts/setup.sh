#!/usr/bin/env bash
# Installs what ohem needs to build, test and run its examples, from Debian packages (12 or 13).
# Non-interactive and idempotent: packages already present are skipped, and when nothing is missing
# the script only runs dpkg-query (well under a second). One line per step; apt's own output goes to
# build/setup.log (its path is printed when a step fails).
#
# Usage: scripts/setup.sh [--python] [--clang] [--chromium]
#   --python    also python3-torch/scipy for fixtures and the side-by-side benchmarks (never needed by
#               the test suite)
#   --clang     also clang, for the clang preset
#   --chromium  also Debian's chromium, for the study report's headless screenshot test (skipped
#               without it)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"

packages=(
  g++ cmake ninja-build pkg-config
  libtorch-dev libeigen3-dev libfmt-dev catch2 libbenchmark-dev libstb-dev
  libcli11-dev nlohmann-json3-dev libgloo-dev
)
for arg in "$@"; do
  case "$arg" in
    --python) packages+=(python3-torch python3-scipy python3-numpy) ;;
    --clang) packages+=(clang) ;;
    --chromium) packages+=(chromium) ;;
    *) echo "[ohem setup] unknown option $arg (expected --python, --clang or --chromium)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "[ohem setup] all ${#packages[@]} packages present"
  exit 0
fi

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "[ohem setup] need root or sudo to install ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
mkdir -p "$repo/build"
log="$repo/build/setup.log"
echo "== $(date -u '+%F %T') scripts/setup.sh $*: installing ${missing[*]}" >>"$log"

# step <description> <command...>: runs the command with its output in the log, prints one line.
step() {
  local what="$1"
  shift
  printf '[ohem setup] %s ... ' "$what"
  if "$@" >>"$log" 2>&1; then
    echo ok
  else
    local rc=$?
    echo "failed (exit $rc)"
    echo "[ohem setup] apt's output: $log (last lines below)" >&2
    tail -n 5 "$log" | sed 's/^/  | /' >&2
    exit "$rc"
  fi
}

export DEBIAN_FRONTEND=noninteractive
step "apt-get update" "${sudo_cmd[@]}" apt-get update
step "installing ${#missing[@]} package(s): ${missing[*]}" \
  "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
echo "[ohem setup] done (log: $log)"
