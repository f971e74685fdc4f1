#!/usr/bin/env bash
# Small-file throughput: 10,000 x 4 KiB from nginx on loopback, uvget beside wrk (the request-rate
# ceiling of this nginx) and curl --parallel, in one run, over HTTP and HTTPS; then one large file
# (uvget and curl to /dev/null). Prints medians of RUNS runs.
# Usage: bench/small_files.sh [BUILD_DIR] (default build-release)
# env: RUNS=5 FILES=10000 CONNS=64 LARGE_MB=300
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-release}
runs=${RUNS:-5}
files=${FILES:-10000}
conns=${CONNS:-64}
uvget=$build/src/uvget
[ -x "$uvget" ] || { echo "build uvget first: meson setup $build --buildtype=release && ninja -C $build" >&2; exit 2; }
command -v nginx >/dev/null || { echo "nginx missing: scripts/deps bench" >&2; exit 2; }

work=$(mktemp -d /tmp/uvget-bench.XXXXXX)
chmod 755 "$work"
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
trap 'stop_nginx; rm -rf "$work"' EXIT
mkdir -p "$work/www"
head -c 4096 /dev/urandom > "$work/www/seed"
for i in $(seq 1 "$files"); do ln "$work/www/seed" "$work/www/f$i"; done
large_mb=${LARGE_MB:-300}
head -c "$((large_mb * 1000000))" /dev/urandom > "$work/www/large"
port=$(free_port)
tport=$(free_port)
make_certs
start_nginx "listen 127.0.0.1:$port;" "$(tls_listen "$tport")"
for i in $(seq 1 "$files"); do echo "http://127.0.0.1:$port/f$i"; done > "$work/urls.txt"
pin="taskset -c 1"

# $1: http or https
base() { [ "$1" = https ] && echo "https://127.0.0.1:$tport" || echo "http://127.0.0.1:$port"; }
rate_uvget() {  # files/s from uvget's summary
  sed "s|^http://127.0.0.1:$port|$(base "$1")|" "$work/urls.txt" > "$work/list"
  $pin "$uvget" --cacert "$work/ca.crt" --discard -j "$conns" --per-host "$conns" -i "$work/list" 2>&1 |
    sed -n 's/.*(\([0-9.]*\) files\/s.*/\1/p'
}
rate_curl() {
  local t0 t1
  sed "s|^http://127.0.0.1:$port|$(base "$1")|; s/^/url = /; s/$/\noutput = \/dev\/null/" "$work/urls.txt" > "$work/curl.cfg"
  t0=$(date +%s.%N)
  $pin curl -s --no-progress-meter --cacert "$work/ca.crt" --parallel --parallel-max "$conns" -K "$work/curl.cfg" >/dev/null 2>&1
  t1=$(date +%s.%N)
  python3 -c "print($files / ($t1 - $t0))"
}
rate_wrk() {
  $pin wrk -t1 -c"$conns" -d3s "$(base "$1")/f1" | awk '/Requests\/sec/ {print $2}'
}
mbps_uvget() {
  $pin "$uvget" --cacert "$work/ca.crt" --discard "$(base "$1")/large" 2>&1 |
    sed -n 's/.* \([0-9.]*\) MB\/s.*/\1/p'
}
mbps_curl() {
  local t0 t1
  t0=$(date +%s.%N)
  $pin curl -s --cacert "$work/ca.crt" -o /dev/null "$(base "$1")/large"
  t1=$(date +%s.%N)
  python3 -c "print($large_mb / ($t1 - $t0))"
}

echo "$files x 4 KiB, nginx on core 0, clients on core 1, $conns connections, median of $runs"
for proto in http https; do
  for tool in wrk uvget curl; do
    vals=$(for r in $(seq 1 "$runs"); do "rate_$tool" "$proto"; done)
    printf '%-6s %-8s %10.0f files/s   (runs: %s)\n' "$proto" "$tool" "$(echo "$vals" | median)" "$(echo $vals)"
  done
done
echo "one $large_mb MB file, to /dev/null (uvget --discard), median of $runs"
for proto in http https; do
  for tool in uvget curl; do
    vals=$(for r in $(seq 1 "$runs"); do "mbps_$tool" "$proto"; done)
    printf '%-6s %-8s %10.0f MB/s      (runs: %s)\n' "$proto" "$tool" "$(echo "$vals" | median)" "$(echo $vals)"
  done
done
