#!/usr/bin/env bash
# Fetches the study's reference photographs (40 of them) from four Debian packages: python3-skimage
# (its sample photographs), mate-backgrounds (nature/), lomiri-wallpapers-16.04 and
# lomiri-wallpapers-20.04 (photographs only: no abstract art, illustrations or patterns). Each
# package is taken with `apt-get download` + `dpkg -x` (nothing is installed); the chosen files are
# copied (hard-linked where possible), unchanged, into DIR as <name>.png / <name>.jpg, and DIR/photos.csv lists them with
# name,file,package,author,licence,source (authors and licences from each package's copyright file;
# see docs/datasets.md). Cached: a second run finds DIR/photos.csv complete and does nothing.
# One line per step; apt's output goes to a log file, whose path is printed when a step fails.
#
# Usage: scripts/fetch-photos.sh [DIR]      (default build/demo-cache/photos)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:-$repo/build/demo-cache/photos}"
case "$dir" in --help | -h) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
pkgdir="$(dirname "$dir")/photo-packages"
log="$pkgdir/apt.log"

# name|package|path inside the package|author|licence|source
skd=usr/lib/python3/dist-packages/skimage/data
mate=usr/share/backgrounds/mate/nature
lw=usr/share/backgrounds
photos="\
astronaut|python3-skimage|$skd/astronaut.png|NASA (Eileen Collins)|public domain|scikit-image data
camera|python3-skimage|$skd/camera.png|Lav Varshney|CC0-1.0|scikit-image data
coffee|python3-skimage|$skd/coffee.png|Rachel Michetti (courtesy Pikolo Espresso Bar)|CC0-1.0|scikit-image data
chelsea|python3-skimage|$skd/chelsea.png|Stefan van der Walt|CC0-1.0|scikit-image data
coins|python3-skimage|$skd/coins.png|Brooklyn Museum|no known copyright restrictions|scikit-image data
rocket|python3-skimage|$skd/rocket.jpg|SpaceX|public domain|scikit-image data
retina|python3-skimage|$skd/retina.jpg|Mikael Haggstrom|CC0-1.0|scikit-image data
brick|python3-skimage|$skd/brick.png|CC0Textures (Bricks25)|CC0-1.0|scikit-image data
grass|python3-skimage|$skd/grass.png|linolafett (Grass 01)|CC0-1.0|scikit-image data
gravel|python3-skimage|$skd/gravel.png|CC0Textures (Gravel04)|CC0-1.0|scikit-image data
cell|python3-skimage|$skd/cell.png|scikit-image|CC0-1.0|scikit-image data
ihc|python3-skimage|$skd/ihc.png|unknown (immunohistochemistry slide)|no known copyright restrictions|scikit-image data
hubble_deep_field|python3-skimage|$skd/hubble_deep_field.jpg|NASA (Hubble eXtreme Deep Field)|public domain|scikit-image data
mate_aqua|mate-backgrounds|$mate/Aqua.jpg|Charles Barbin|GPL-2+|MATE desktop backgrounds
mate_ladybird|mate-backgrounds|$mate/LadyBird.jpg|Charles Barbin|GPL-2+|MATE desktop backgrounds
mate_yellowflower|mate-backgrounds|$mate/YellowFlower.jpg|Charles Barbin|GPL-2+|MATE desktop backgrounds
mate_garden|mate-backgrounds|$mate/Garden.jpg|Charles Barbin|GPL-2+|MATE desktop backgrounds
mate_blinds|mate-backgrounds|$mate/Blinds.jpg|Lennart Poettering; Andrea Cimitan|GPL-2+|MATE desktop backgrounds
mate_dune|mate-backgrounds|$mate/Dune.jpg|Marco Cogoni; Hylke Bons|GPL-2+|MATE desktop backgrounds
mate_freshflower|mate-backgrounds|$mate/FreshFlower.jpg|Jens Ansorg|GPL-2+|MATE desktop backgrounds
mate_greenmeadow|mate-backgrounds|$mate/GreenMeadow.jpg|Timothy Schellhase; Lapo Calamandrei|GPL-2+|MATE desktop backgrounds
mate_raindrops|mate-backgrounds|$mate/RainDrops.jpg|blackcombwhistler07|GPL-2+|MATE desktop backgrounds
mate_storm|mate-backgrounds|$mate/Storm.jpg|Sergey Nazarov|GPL-2+|MATE desktop backgrounds
mate_twowings|mate-backgrounds|$mate/TwoWings.jpg|Charles Barbin; Hylke Bons|GPL-2+|MATE desktop backgrounds
mate_wood|mate-backgrounds|$mate/Wood.jpg|Jean-Francois Fortin Tam|GPL-2+|MATE desktop backgrounds
lomiri_aitzgorri|lomiri-wallpapers-16.04|$lw/aitzgorri_by_Aitzol_Berasategi.jpg|Aitzol Berasategi|CC-BY-4.0|Ubuntu 16.04 wallpaper contest (lomiri-wallpapers)
lomiri_bridge|lomiri-wallpapers-16.04|$lw/Bridge_by_Sander_Klootwijk.jpg|Sander Klootwijk|CC-BY-SA-4.0|Ubuntu 16.04 wallpaper contest (lomiri-wallpapers)
lomiri_dragonfly|lomiri-wallpapers-16.04|$lw/Dragonfly_by_Bolly.jpg|Bolly|CC-BY-SA-4.0|Ubuntu 16.04 wallpaper contest (lomiri-wallpapers)
lomiri_free|lomiri-wallpapers-16.04|$lw/free_by_Peter_Nerlich.jpg|Peter Nerlich|CC-BY-SA-4.0|Ubuntu 16.04 wallpaper contest (lomiri-wallpapers)
lomiri_friends|lomiri-wallpapers-16.04|$lw/friends_by_Aitzol_Berasategi.jpg|Aitzol Berasategi|CC-BY-4.0|Ubuntu 16.04 wallpaper contest (lomiri-wallpapers)
lomiri_greentock|lomiri-wallpapers-16.04|$lw/greentock_by_Peter_Nerlich.jpg|Peter Nerlich|CC-BY-SA-4.0|Ubuntu 16.04 wallpaper contest (lomiri-wallpapers)
lomiri_life|lomiri-wallpapers-16.04|$lw/life_by_Aitzol_Berasategi.jpg|Aitzol Berasategi|CC-BY-4.0|Ubuntu 16.04 wallpaper contest (lomiri-wallpapers)
lomiri_picosdeeuropa|lomiri-wallpapers-16.04|$lw/picosdeeuropa_by_Aitzol_Berasategi.jpg|Aitzol Berasategi|CC-BY-4.0|Ubuntu 16.04 wallpaper contest (lomiri-wallpapers)
lomiri_picture_0b|lomiri-wallpapers-16.04|$lw/Picture_0B_by_freespace.jpg|Trevor (Freespace)|CC-BY-4.0|Ubuntu 16.04 wallpaper contest (lomiri-wallpapers)
lomiri_picture_1a|lomiri-wallpapers-16.04|$lw/Picture_1A_by_freespace.jpg|Trevor (Freespace)|CC-BY-4.0|Ubuntu 16.04 wallpaper contest (lomiri-wallpapers)
lomiri_seeding|lomiri-wallpapers-16.04|$lw/seeding_by_Clements_Engelhardt.jpg|Clemens Engelhardt|CC0-1.0|Ubuntu 16.04 wallpaper contest (lomiri-wallpapers)
lomiri_sunset|lomiri-wallpapers-16.04|$lw/sunset_by_Aitzol_Berasategi.jpg|Aitzol Berasategi|CC-BY-4.0|Ubuntu 16.04 wallpaper contest (lomiri-wallpapers)
lomiri_wine|lomiri-wallpapers-16.04|$lw/Wine_by_Jakkub_Mede.jpg|Jakub Mede|CC-BY-4.0|Ubuntu 16.04 wallpaper contest (lomiri-wallpapers)
lomiri_kleiber|lomiri-wallpapers-20.04|$lw/Kleiber_by_Lukas_Baubkus.jpg|Lukas Baubkus|CC-BY-SA-3.0|Ubuntu 20.04 wallpapers (lomiri-wallpapers)
lomiri_infinite_sea|lomiri-wallpapers-20.04|$lw/Infinite-Sea_by_Aury88.jpg|Aury88|CC-BY-SA-3.0|Ubuntu 20.04 wallpapers (lomiri-wallpapers)"

count=$(printf '%s\n' "$photos" | wc -l)
complete() {
  [ -f "$dir/photos.csv" ] || return 1
  [ "$(($(wc -l <"$dir/photos.csv") - 1))" -eq "$count" ] || return 1
  local name pkg path rest
  while IFS='|' read -r name pkg path rest; do
    [ -s "$dir/$name.${path##*.}" ] || return 1
  done <<<"$photos"
}
if complete; then
  echo "[fetch-photos] $count photographs present in $dir"
  exit 0
fi

mkdir -p "$pkgdir"
echo "== $(date -u '+%F %T') scripts/fetch-photos.sh $dir" >>"$log"
fail() {
  echo "failed"
  echo "[fetch-photos] $1; apt's output: $log (last lines below)" >&2
  tail -n 5 "$log" | sed 's/^/  | /' >&2
  exit 1
}
updated=0
for pkg in $(printf '%s\n' "$photos" | cut -d'|' -f2 | uniq); do
  [ -f "$pkgdir/$pkg/.extracted" ] && continue
  printf '[fetch-photos] apt-get download %s ... ' "$pkg"
  (cd "$pkgdir" && rm -f "${pkg}"_*.deb)
  if ! (cd "$pkgdir" && apt-get download "$pkg" >>"$log" 2>&1); then
    if [ "$(id -u)" = 0 ] && [ "$updated" = 0 ]; then
      echo "retrying after apt-get update"
      printf '[fetch-photos] apt-get update ... '
      apt-get update >>"$log" 2>&1 || fail "apt-get update failed"
      echo ok
      updated=1
      printf '[fetch-photos] apt-get download %s ... ' "$pkg"
      (cd "$pkgdir" && apt-get download "$pkg" >>"$log" 2>&1) || fail "apt-get download $pkg failed"
    else
      fail "apt-get download $pkg failed (as root or with sudo, run 'apt-get update' and retry)"
    fi
  fi
  echo ok
  printf '[fetch-photos] dpkg -x %s ... ' "$pkg"
  rm -rf "${pkgdir:?}/$pkg"
  dpkg -x "$pkgdir/${pkg}"_*.deb "$pkgdir/$pkg" >>"$log" 2>&1 || fail "dpkg -x $pkg failed"
  rm -f "$pkgdir/${pkg}"_*.deb
  touch "$pkgdir/$pkg/.extracted"
  echo ok
done

printf '[fetch-photos] copying %d photographs into %s ... ' "$count" "$dir"
csv="name,file,package,author,licence,source"
while IFS='|' read -r name pkg path author licence source; do
  file="$name.${path##*.}"
  [ -f "$pkgdir/$pkg/$path" ] || fail "$path is missing from package $pkg"
  ln -f "$pkgdir/$pkg/$path" "$dir/$file" 2>/dev/null || cp "$pkgdir/$pkg/$path" "$dir/$file"  # a hard link where it can
  csv+=$'\n'"$name,$file,$pkg,$author,$licence,$source"
done <<<"$photos"
printf '%s\n' "$csv" >"$dir/photos.csv.tmp"
mv "$dir/photos.csv.tmp" "$dir/photos.csv"
echo ok
echo "[fetch-photos] $count photographs in $dir (list: $dir/photos.csv)"
