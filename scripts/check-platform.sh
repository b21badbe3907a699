#!/usr/bin/env bash
# Builds and tests the current tree on another Debian release, in a chroot: what a user of that release
# gets from its packages (LibTorch, compiler, Catch2, ...), without touching this machine's.
#
# Usage: scripts/check-platform.sh debian13 [--jobs N] [--prepare] [--quick] [--shell]
#   debian13   Debian 13 "trixie": LibTorch 2.6, GCC 14, Catch2 3 (the only platform so far)
#   --jobs N   build jobs inside the chroot (default 2; the build runs under nice)
#   --prepare  only make the root and install the packages (no build)
#   --quick    only the library's tests: builds ohem_tests, runs the CTest labels unit and cuda (no
#              examples, no header check, no consumer project)
#   --shell    after the check, an interactive shell in the chroot (source in /ohem/src)
#
# The root is made once with debootstrap under build/<platform>/root and reused; scripts/setup.sh
# installs the packages inside it (its apt log: build/<platform>/root/ohem/src/build/setup.log). Each
# run copies the tree's files (tracked and untracked, not ignored ones) to /ohem/src in the root, keeping
# /ohem/src/build (incremental builds), then runs the workflow preset "dev": configure, build, CTest.
# /proc is mounted in the root during the run and unmounted on exit, failure or Ctrl-C.
# Needs root (or sudo), debootstrap and network access to the Debian mirror. About 2.5 GB on disk.
set -euo pipefail
{ # (bash reads the whole block before running it: editing this file during a run cannot break the run)

repo="$(cd "$(dirname "$0")/.." && pwd)"
all_args=("$@")
platform="${1:-}"
shift || true
jobs=2
shell=0
prepare=0
quick=0
while (($#)); do
  case "$1" in
    --jobs) jobs="${2:?--jobs needs a number}"; shift 2 ;;
    --prepare) prepare=1; shift ;;
    --quick) quick=1; shift ;;
    --shell) shell=1; shift ;;
    *) echo "check-platform: unknown option $1" >&2; exit 2 ;;
  esac
done

case "$platform" in
  debian13)
    suite=trixie
    mirror="${OHEM_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
    ;;
  *)
    echo "usage: scripts/check-platform.sh debian13 [--jobs N] [--prepare] [--quick] [--shell]" >&2
    exit 2
    ;;
esac

say() { echo "[check-platform $platform] $*"; }
die() { echo "[check-platform $platform] error: $*" >&2; exit 1; }

if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || die "needs root (debootstrap, chroot, mount)"
  exec sudo --preserve-env=OHEM_DEBIAN_MIRROR "$0" "${all_args[@]}"
fi
command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap)"

work="$repo/build/$platform"
root="$work/root"
# Everything this script deletes or mounts lies under $work, inside the tree's build/ folder.
case "$work" in
  "$repo"/build/?*) ;;
  *) die "refusing to work outside $repo/build: $work" ;;
esac
mkdir -p "$work"
log="$work/check.log"
: >"$log"

# The mount points under $work that are mounted now (deepest first).
mounted_under() {
  awk -v p="$1" '$2 == p || index($2, p "/") == 1 { print $2 }' /proc/mounts | sort -r
}
unmount_all() {
  local m
  for m in $(mounted_under "$root") $(mounted_under "$work/root.partial"); do
    umount "$m" 2>/dev/null || umount -l "$m" || echo "[check-platform] could not unmount $m" >&2
  done
}
# Removes a folder under $work, never while something is mounted below it.
remove_dir() {
  case "$1" in "$work"/?*) ;; *) die "refusing to remove $1" ;; esac
  [[ -z "$(mounted_under "$1")" ]] || die "$1 still has mounts: $(mounted_under "$1" | tr '\n' ' ')"
  rm -rf --one-file-system -- "$1"
}
# shellcheck disable=SC2317  # (run by the trap)
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  unmount_all
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "[check-platform] interrupted" >&2; exit 130' INT TERM

# 1. The root, once: debootstrap into root.partial, renamed when complete.
if [[ ! -e "$root/.ohem-bootstrapped" ]]; then
  unmount_all
  [[ ! -e "$root" ]] || remove_dir "$root"
  [[ ! -e "$work/root.partial" ]] || remove_dir "$work/root.partial"
  say "debootstrap $suite from $mirror (once; several minutes; log: $work/debootstrap.log)"
  debootstrap --variant=minbase "$suite" "$work/root.partial" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    die "debootstrap failed: see $work/debootstrap.log"
  unmount_all  # debootstrap mounts /proc and /sys itself and normally unmounts them
  mv "$work/root.partial" "$root"
  touch "$root/.ohem-bootstrapped"
fi

# 2. The tree: its files (tracked and untracked, not ignored) replace /ohem/src, except /ohem/src/build.
say "copying the tree to $root/ohem/src"
src="$root/ohem/src"
mkdir -p "$src"
find "$src" -mindepth 1 -maxdepth 1 ! -name build -exec rm -rf --one-file-system -- {} +
(cd "$repo" && git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' f; do [[ -e "$f" ]] && printf '%s\0' "$f"; done |
  tar --null -T - -cf -) | tar -C "$src" -xf -

# 3. /proc for the build and the tests; the host's DNS for apt.
unmount_all
mount -t proc proc "$root/proc"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
echo "deb $mirror $suite main" >"$root/etc/apt/sources.list"

in_root() {
  chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" "$@"
}

# 4. The packages scripts/setup.sh names (nothing to do when all are present).
say "scripts/setup.sh in the root"
in_root bash /ohem/src/scripts/setup.sh || die "setup failed (apt log: $src/build/setup.log)"

# shellcheck disable=SC2016  # (dpkg-query's format, not ours)
torch_version=$(in_root dpkg-query -W -f='${Version}' libtorch-dev)
# shellcheck disable=SC2016
catch2_version=$(in_root dpkg-query -W -f='${Version}' catch2)
compiler=$(in_root c++ --version | head -n 1)
cmake_version=$(in_root cmake --version | head -n 1)
say "LibTorch (libtorch-dev) $torch_version; $compiler; Catch2 $catch2_version; $cmake_version"
if ((prepare)); then
  say "prepared: $root"
  exit 0
fi

# 5. Configure, build and test with the presets "dev", as scripts/test.sh does (its workflow preset would
# go on to CTest after an interrupted build); --quick: ohem_tests and its CTest labels only.
if ((quick)); then
  commands='cmake --preset dev && cmake --build --preset dev --target ohem_tests && ctest --preset dev -L "unit|cuda"'
else
  commands='cmake --preset dev && cmake --build --preset dev && ctest --preset dev'
fi
say "$commands (-j$jobs, nice; log: $log)"
status=0
in_root env CMAKE_BUILD_PARALLEL_LEVEL="$jobs" nice -n 10 \
  bash -c "cd /ohem/src && $commands" >>"$log" 2>&1 || status=$?

echo
say "summary"
echo "  platform:  Debian $(cat "$root/etc/debian_version") ($suite)"
echo "  LibTorch:  $torch_version"
echo "  compiler:  $compiler"
echo "  Catch2:    $catch2_version ($(grep -o 'ohem tests: Catch2 [0-9.]*' "$log" | tail -n 1 || true))"
echo "  CTest:"
sed -n '/tests passed\|tests failed/,$p' "$log" | sed 's/^/    /'
if ((status != 0)); then
  grep -q 'tests passed\|tests failed' "$log" || tail -n 30 "$log" | sed 's/^/    | /'
  say "FAILED (exit $status); full log: $log"
else
  say "passed; full log: $log"
fi
if ((shell)); then
  say "shell in the root (exit to unmount)"
  in_root bash -c 'cd /ohem/src && exec bash -i' || true
fi
exit "$status"
}
