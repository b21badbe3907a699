#!/usr/bin/env bash
# Installs what ohem needs to build, test and run its examples, from Debian 12 packages.
# Non-interactive and idempotent: packages already present are skipped, and when nothing is missing
# the script only runs dpkg-query (well under a second).
#
# Usage: scripts/setup.sh [--python]   (--python also installs python3-torch/scipy for fixtures and
#                                       the side-by-side benchmarks; never needed by the test suite)
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config
  libtorch-dev libeigen3-dev libfmt-dev catch2 libbenchmark-dev libstb-dev
)
if [[ "${1:-}" == "--python" ]]; then
  packages+=(python3-torch python3-scipy python3-numpy)
fi

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "[ohem setup] all ${#packages[@]} packages present"
  exit 0
fi

echo "[ohem setup] installing: ${missing[*]}"
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "[ohem setup] need root or sudo to install ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "[ohem setup] done"
