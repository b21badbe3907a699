#!/usr/bin/env bash
# The built-in demo: fetches the public-domain/CC0 sample photographs of scikit-image from Debian's
# python3-skimage package (apt-get download + dpkg -x; no Python install, cached), builds the demo
# and trains baseline vs OHEM on synthetic distortions of them, printing a side-by-side table.
#
# Usage: examples/demo/demo.sh [demo options, e.g. --seeds 1 --threads 2]
# Environment: OHEM_DEMO_CACHE (default build/demo-cache), OHEM_BUILD_DIR (default build/dev),
#              OHEM_DEMO_SKIP_BUILD=1 to use an already built binary,
#              OHEM_DEMO_FETCH_ONLY=1 to fetch the photographs, print their folder (photos-demo) and stop.
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$(pwd)"
cache="${OHEM_DEMO_CACHE:-$root/build/demo-cache}"
build="${OHEM_BUILD_DIR:-$root/build/dev}"
photos="$cache/skimage/usr/lib/python3/dist-packages/skimage/data"
mkdir -p "$cache"

if [ ! -f "$photos/astronaut.png" ]; then
  echo "fetching the scikit-image sample photographs (Debian package python3-skimage) into $cache" >&2
  (
    cd "$cache"
    rm -f python3-skimage_*.deb
    if ! apt-get download python3-skimage >/dev/null 2>apt.log; then
      if [ "$(id -u)" = 0 ]; then
        apt-get update >/dev/null
        apt-get download python3-skimage >/dev/null 2>apt.log
      else
        cat apt.log >&2
        echo "error: 'apt-get download python3-skimage' failed; run 'sudo apt-get update' and retry" >&2
        exit 1
      fi
    fi
    rm -rf skimage
    dpkg -x python3-skimage_*.deb skimage
    rm -f python3-skimage_*.deb apt.log
  )
fi

# The demo's photographs as a folder of their own (not every image of scikit-image's folder is a
# photograph): what study --photos and the study's test read where scripts/fetch-photos.sh did not run.
mkdir -p "$cache/photos-demo"
for f in astronaut.png camera.png coffee.png chelsea.png coins.png rocket.jpg retina.jpg brick.png grass.png \
         gravel.png cell.png ihc.png hubble_deep_field.jpg; do
  ln -sf "$photos/$f" "$cache/photos-demo/$f"
done
if [ "${OHEM_DEMO_FETCH_ONLY:-0}" = 1 ]; then
  echo "$cache/photos-demo"
  exit 0
fi

if [ "${OHEM_DEMO_SKIP_BUILD:-0}" != 1 ]; then
  export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
  if [ ! -f "$build/CMakeCache.txt" ]; then
    if [ "$build" = "$root/build/dev" ]; then cmake --preset dev >/dev/null; else cmake -S "$root" -B "$build" >/dev/null; fi
  fi
  cmake --build "$build" --target demo
fi
exec "$build/examples/demo/demo" --photos "$photos" --work "$cache/data" "$@"
