#!/usr/bin/env bash
# One URL, start to finish: what a script that calls the tool once per file pays. One 4 KiB file
# from nginx on loopback into tmpfs, over HTTP (no CA option: each tool as a user runs it) and
# HTTPS (every tool given the run's CA), timed by hyperfine for uvget, curl, wget2 and aria2c in
# one run. Prints a Markdown table: mean, σ, min, user and system CPU, ratio to uvget.
# Usage: bench/one_url.sh [BUILD_DIR]   (env: RUNS=100, PIN=0 for nothing pinned)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-release}
runs=${RUNS:-100}
uvget=$build/src/uvget
[ -x "$uvget" ] || { echo "build uvget first: meson setup $build --buildtype=release && ninja -C $build" >&2; exit 2; }
for p in nginx hyperfine curl wget2 aria2c jq; do
  command -v $p >/dev/null || { echo "$p missing: scripts/deps bench" >&2; exit 2; }
done

work=$(mktemp -d /tmp/uvget-bench.XXXXXX)
chmod 755 "$work"
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
out=$(mktemp -d /dev/shm/uvget-one.XXXXXX)
trap 'stop_nginx; rm -rf "$work" "$out"' EXIT
mkdir -p "$work/www"
head -c 4096 /dev/urandom > "$work/www/f1"
port=$(free_port)
tport=$(free_port)
make_certs
start_nginx "listen 127.0.0.1:$port;" "$(tls_listen "$tport")"
pin="taskset -c 1"
[ "${PIN:-1}" = 0 ] && pin=""

echo "One 4 KiB file, start to finish (hyperfine, $runs runs after 5 warm-ups), $(date '+%F %H:%M')"
for proto in http https; do
  if [ "$proto" = https ]; then
    url="https://127.0.0.1:$tport/f1"
    ca_u="--cacert $work/ca.crt" ca_c="--cacert $work/ca.crt" ca_w="--ca-certificate=$work/ca.crt"
  else
    url="http://127.0.0.1:$port/f1"
    ca_u="" ca_c="" ca_w=""
  fi
  hyperfine -N -w 5 -r "$runs" --export-json "$work/$proto.json" \
    -n uvget "$pin $uvget -q --overwrite $ca_u -d $out $url" \
    -n curl "$pin curl -s $ca_c -o $out/f1 $url" \
    -n wget2 "$pin wget2 -q $ca_w --no-robots -O $out/f1 $url" \
    -n aria2c "$pin aria2c -q $ca_w --allow-overwrite=true --auto-file-renaming=false -d $out -o f1 $url" \
    >/dev/null 2>"$work/hyperfine.err" || { cat "$work/hyperfine.err" >&2; exit 1; }
  cmp -s "$out/f1" "$work/www/f1" || { echo "$proto: the file on disk differs" >&2; exit 1; }
  printf '\n%s (client %s)\n\n' "${proto^^}" "${pin:-not pinned}"
  echo "| tool | mean ms | σ ms | min ms | user ms | system ms | ratio to uvget |"
  echo "|---|---|---|---|---|---|---|"
  jq -r '(.results[] | select(.command == "uvget") | .mean) as $u | .results[] |
    "| \(.command) | \(.mean * 1000 * 100 | round / 100) | \(.stddev * 1000 * 100 | round / 100) | \(.min * 1000 * 100 | round / 100) | \(.user * 1000 * 10 | round / 10) | \(.system * 1000 * 10 | round / 10) | \($u / .mean * 100 | round / 100) |"' \
    "$work/$proto.json"
done
