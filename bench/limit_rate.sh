#!/usr/bin/env bash
# How close --limit-rate holds its cap: 8 files over 8 connections from nginx on loopback, for a
# few seconds at each rate; prints the achieved rate and its ratio to the cap (target ±10 %).
# Usage: bench/limit_rate.sh [BUILD_DIR]   env: RATES="1M 8M 32M" SECS=4
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-release}
uvget=$build/src/uvget
[ -x "$uvget" ] || { echo "build uvget first (see bench/README.md)" >&2; exit 2; }
"$root/scripts/deps" bench
work=$(mktemp -d /tmp/uvget-rate.XXXXXX)
chmod 755 "$work"
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
trap 'stop_nginx; rm -rf "$work"' EXIT
mkdir -p "$work/www"
port=$(free_port)
start_nginx "listen 127.0.0.1:$port;"
echo "| cap | bytes | seconds | achieved | achieved / cap |"
echo "|---|---|---|---|---|"
for rate in ${RATES:-1M 8M 32M}; do
  case $rate in *K) cap=$(( ${rate%K} * 1024 )) ;; *M) cap=$(( ${rate%M} * 1048576 )) ;; *) cap=$rate ;; esac
  per=$(( cap * ${SECS:-4} / 8 ))
  head -c "$per" /dev/zero > "$work/www/z"
  urls=()
  for i in 1 2 3 4 5 6 7 8; do urls+=("http://127.0.0.1:$port/z?$i"); done
  t0=$(date +%s%N)
  "$uvget" -q --discard -j 8 --per-host 8 --limit-rate "$rate" "${urls[@]}"
  t1=$(date +%s%N)
  python3 -c "
b=$per*8; s=($t1-$t0)/1e9
print('| %s | %d | %.2f | %.0f B/s | %.3f |' % ('$rate', b, s, b/s, b/s/$cap))"
done
