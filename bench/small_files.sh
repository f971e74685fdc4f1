#!/usr/bin/env bash
# Small-file throughput: 10,000 x 4 KiB from nginx on loopback, uvget beside wrk (the request-rate
# ceiling of this nginx) and curl --parallel, in one run. Prints medians of RUNS runs.
# Usage: bench/small_files.sh [BUILD_DIR] (default build-release)   env: RUNS=5 FILES=10000 CONNS=64
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
trap '[ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null; sleep 0.2; rm -rf "$work"' EXIT
mkdir -p "$work/www"
head -c 4096 /dev/urandom > "$work/www/seed"
for i in $(seq 1 "$files"); do ln "$work/www/seed" "$work/www/f$i"; done
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$work/nginx.conf" <<CONF
daemon on; worker_processes 1; pid $work/nginx.pid; error_log $work/error.log;
$( [ "$(id -u)" -eq 0 ] && echo "user root;" )
events { worker_connections 4096; }
http {
  access_log off; sendfile on; keepalive_requests 1000000; keepalive_timeout 60;
  client_body_temp_path $work/t1; proxy_temp_path $work/t2; fastcgi_temp_path $work/t3;
  uwsgi_temp_path $work/t4; scgi_temp_path $work/t5; default_type application/octet-stream;
  server { listen 127.0.0.1:$port; root $work/www; }
}
CONF
taskset -c 0 nginx -p "$work" -c "$work/nginx.conf" -e "$work/error.log"
sleep 0.3
for i in $(seq 1 "$files"); do echo "http://127.0.0.1:$port/f$i"; done > "$work/urls.txt"
pin="taskset -c 1"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
rate_uvget() {  # files/s from uvget's summary
  $pin "$uvget" --discard -j "$conns" --per-host "$conns" -i "$work/urls.txt" 2>&1 |
    sed -n 's/.*(\([0-9.]*\) files\/s.*/\1/p'
}
rate_curl() {
  local t0 t1
  t0=$(date +%s.%N)
  $pin curl -s --no-progress-meter --parallel --parallel-max "$conns" -K <(sed 's/^/url = /; s/$/\noutput = \/dev\/null/' "$work/urls.txt") >/dev/null 2>&1
  t1=$(date +%s.%N)
  python3 -c "print($files / ($t1 - $t0))"
}
rate_wrk() {
  $pin wrk -t1 -c"$conns" -d3s "http://127.0.0.1:$port/f1" | awk '/Requests\/sec/ {print $2}'
}

echo "10,000 x 4 KiB over HTTP, nginx on core 0, clients on core 1, $conns connections, median of $runs"
for tool in wrk uvget curl; do
  vals=$(for r in $(seq 1 "$runs"); do "rate_$tool"; done)
  printf '%-8s %10.0f /s   (runs: %s)\n' "$tool" "$(echo "$vals" | median)" "$(echo $vals)"
done
