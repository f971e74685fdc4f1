#!/usr/bin/env bash
# Many connections on one loop: uvget holds N concurrent connections (default 10,000) to nginx on
# loopback, every response slowed by nginx's limit_rate so that all are open at once, bodies
# discarded. Reports, for 1,000 and for N connections: errors, the peak of established
# connections seen by `ss`, peak RSS, CPU seconds, and the memory per connection between the two.
# Usage: bench/load.sh [BUILD_DIR]   env: CONNS=10000 SIZE=16384 RATE=4k
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-release}
conns=${CONNS:-10000}
size=${SIZE:-16384}
rate=${RATE:-4k}
uvget=$build/src/uvget
[ -x "$uvget" ] || { echo "build uvget first (see bench/README.md)" >&2; exit 2; }
"$root/scripts/deps" bench
# uvget needs a socket per connection (bodies are discarded) plus a few; root may raise the cap.
[ "$(id -u)" -eq 0 ] && [ "$(ulimit -Hn)" -lt $((conns + 200)) ] && ulimit -Hn $((conns + 200))
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge $((conns + 200)) ] || { echo "needs $((conns + 200)) open files, have $(ulimit -n)" >&2; exit 2; }

work=$(mktemp -d /tmp/uvget-load.XXXXXX)
chmod 755 "$work"
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
trap 'stop_nginx; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
mkdir -p "$work/www"
head -c "$size" /dev/urandom > "$work/www/slow"
port=$(free_port)
export NGINX_CONNS=$((conns * 2)) NGINX_PIN="" NGINX_EVENTS="multi_accept on;"
# One cached fd serves every request for the file: nginx has the same open-files cap as we do.
start_nginx "listen 127.0.0.1:$port backlog=16384; limit_rate $rate; open_file_cache max=16 inactive=60s;"

run() {  # $1 connections
  local n=$1
  for i in $(seq 1 "$n"); do echo "http://127.0.0.1:$port/slow?$i"; done > "$work/urls.txt"
  : > "$work/ss"
  ( while sleep 0.25; do ss -Htn state established "( dport = :$port )" | wc -l >> "$work/ss"; done ) &
  local sampler=$!
  local t0 t1
  t0=$(date +%s%N)
  /usr/bin/time -f "%M %U %S" -o "$work/time" "$uvget" --progress none --discard --retries 0 \
    -j "$n" --per-host "$n" -i "$work/urls.txt" 2> "$work/err" || cp "$work/err" "$work/err-$n"
  t1=$(date +%s%N)
  kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
  read -r kb user sys < <(tail -1 "$work/time")
  local ok failed peak
  ok=$(sed -nE 's/.*uvget: ([0-9]+) files ok, ([0-9]+) failed.*/\1/p' "$work/err")
  failed=$(sed -nE 's/.*uvget: ([0-9]+) files ok, ([0-9]+) failed.*/\2/p' "$work/err")
  peak=$(sort -n "$work/ss" | tail -1)
  printf '| %d | %s | %s | %s | %d KB | %.2f | %.1f s |\n' "$n" "${ok:-?}" "${failed:-?}" \
    "${peak:-0}" "$kb" "$(python3 -c "print($user + $sys)")" \
    "$(python3 -c "print(($t1 - $t0) / 1e9)")"
  echo "$kb" > "$work/rss-$n"
  if [ "${failed:-0}" != 0 ]; then  # what failed, by cause
    grep -v "files ok" "$work/err" | sed -E 's|^uvget: http://[^ ]*: ||' | sort | uniq -c | sort -rn | head -5 >&2
  fi
}

echo "One loop, N connections to nginx on loopback, $size-byte bodies at $rate each (so all are open at once), discarded"
echo
echo "| connections | ok | failed | peak established (ss) | peak RSS | CPU s | wall |"
echo "|---|---|---|---|---|---|---|"
[ -z "${ONLY:-}" ] && run 1000
run "$conns"
small=$(cat "$work/rss-1000") big=$(cat "$work/rss-$conns")
echo
echo "Memory per connection between 1,000 and $conns: $(( (big - small) * 1024 / (conns - 1000) )) bytes"
