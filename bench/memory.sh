#!/usr/bin/env bash
# Memory against the length of the list: 10,000 and then 1,000,000 URLs (200 files of 4 KiB from
# nginx on loopback, cycled), bodies discarded, 64 connections; peak RSS and time of each, and
# the RSS of the long list over the short one (target: within 1.5x). curl --parallel beside
# uvget, reading the same lists from a config file.
# Usage: bench/memory.sh [BUILD_DIR]   (env: LONG=1000000, SHORT=10000, TOOLS="uvget curl")
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-release}
uvget=$build/src/uvget
short=${SHORT:-10000}
long=${LONG:-1000000}
tools=${TOOLS:-uvget curl}
[ -x "$uvget" ] || { echo "build uvget first: meson setup $build --buildtype=release && ninja -C $build" >&2; exit 2; }
command -v nginx >/dev/null || { echo "nginx missing: scripts/deps bench" >&2; exit 2; }

work=$(mktemp -d /tmp/uvget-bench.XXXXXX)
chmod 755 "$work"
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
trap 'stop_nginx; rm -rf "$work"' EXIT
serve_files 200 4096 http  # sets $port
pin="taskset -c 1"

for n in "$short" "$long"; do
  awk -v n="$n" -v b="http://127.0.0.1:$port" 'BEGIN { for (i = 0; i < n; i++) print b "/f" (i % 200 + 1) }' \
    > "$work/list-$n"
  awk '{ print "url = " $0; print "output = /dev/null" }' "$work/list-$n" > "$work/curl-$n.cfg"
done

echo "Peak RSS against the list's length: $short and $long URLs, 4 KiB each, bodies discarded, 64 connections, nginx on core 0, client on core 1, $(date '+%F %H:%M')"
echo
echo "| tool | URLs | time s | files/s | peak RSS | RSS ratio to $short URLs |"
echo "|---|---|---|---|---|---|"
for tool in $tools; do
  base_kb=0
  for n in "$short" "$long"; do
    case $tool in
      uvget) cmd=("$uvget" --progress none --discard -j 64 --per-host 64 -i "$work/list-$n") ;;
      curl) cmd=(curl -s --parallel --parallel-max 64 -K "$work/curl-$n.cfg") ;;
      *) echo "unknown tool $tool" >&2; exit 2 ;;
    esac
    # shellcheck disable=SC2086
    /usr/bin/time -f "%e %M" -o "$work/time" $pin "${cmd[@]}" >/dev/null 2>"$work/err" ||
      { echo "$tool with $n URLs failed: $(tail -3 "$work/err")" >&2; exit 1; }
    if [ "$tool" = uvget ]; then  # it counts what it downloaded: all of it, or the row is void
      grep -q "uvget: $n files ok, 0 failed" "$work/err" ||
        { echo "uvget with $n URLs did not download everything: $(tail -2 "$work/err")" >&2; exit 1; }
    fi
    read -r secs kb < "$work/time"
    [ "$base_kb" = 0 ] && base_kb=$kb
    printf '| %s | %s | %s | %.0f | %s KB | %.2f |\n' "$tool" "$n" "$secs" \
      "$(python3 -c "print($n / max($secs, 0.001))")" "$kb" "$(python3 -c "print($kb / $base_kb)")"
  done
done
