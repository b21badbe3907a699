# Sourced by the study's end-to-end tests: sets `photos` to the photographs to use -- $OHEM_STUDY_PHOTOS,
# else build/demo-cache/photos (scripts/fetch-photos.sh), else the demo's (build/demo-cache/photos-demo,
# made by examples/demo/demo.sh) -- or exits 77 (skipped) where none was fetched.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache="${OHEM_DEMO_CACHE:-$root/build/demo-cache}"
photos="${OHEM_STUDY_PHOTOS:-}"
if [ -z "$photos" ] && [ -f "$cache/photos/photos.csv" ]; then photos="$cache/photos"; fi
if [ -z "$photos" ] && [ -f "$cache/photos-demo/astronaut.png" ]; then photos="$cache/photos-demo"; fi
if [ -z "$photos" ]; then
  echo "SKIP: no photographs (run scripts/fetch-photos.sh or examples/demo/demo.sh first)"
  exit 77
fi
