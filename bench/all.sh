#!/usr/bin/env bash
# The whole comparison in one command: every workload of bench/README.md, one after another on a
# quiet machine, each table printed as it finishes (Markdown) and its chart drawn into
# bench/charts/. About 18 minutes on the project's 2-core machine.
# Usage: bench/all.sh [BUILD_DIR] > results.md   (env: RUNS=3; QUICK=1: S only)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-release}
export RUNS=${RUNS:-3}
everyone="uvget uvget-loops curl wget2 aria2c aiohttp thread process seq"
fast="uvget uvget-loops curl wget2 aria2c aiohttp"

section() {  # $1 title, then env assignments for run.sh
  local title=$1
  shift
  printf '\n### %s\n\nCommand: `%s bench/run.sh`\n\n' "$title" "$*"
  env "$@" "$root/bench/run.sh" "$build" 2>&1 | grep -v '^chart:'
}

echo "## bench/all.sh, $(date '+%F %H:%M'), $(nproc) cores, $(uname -r), RUNS=$RUNS"
section "S over HTTP, writing files" TOOLS="$everyone"
section "S over HTTP, writing files, 8 connections" CONNS=8 TOOLS="$fast thread"
section "S over HTTP, nothing pinned" PIN=0 TOOLS="$fast"
section "S over HTTP, bodies discarded" DISCARD=1 TOOLS="uvget uvget-loops curl"
section "S over HTTPS, writing files" PROTO=https TOOLS="$everyone"
section "S over HTTPS, bodies discarded" PROTO=https DISCARD=1 TOOLS="uvget uvget-loops curl"
printf '\n### One URL, start to finish\n\nCommand: `bench/one_url.sh`\n\n'
RUNS=100 "$root/bench/one_url.sh" "$build"  # its own count: each run is milliseconds
[ "${QUICK:-0}" = 1 ] && exit 0
section "M over HTTP, writing files" FILES=200 SIZE=1048576 TOOLS="$fast thread"
section "M over HTTP, writing files, 8 connections" FILES=200 SIZE=1048576 CONNS=8 TOOLS="$fast thread"
section "L over HTTP, writing files" FILES=1 SIZE=1073741824 TOOLS="uvget curl wget2 aria2c aiohttp"
section "L over HTTP, bodies discarded" FILES=1 SIZE=1073741824 DISCARD=1 TOOLS="uvget curl"
section "L over HTTPS, writing files" PROTO=https FILES=1 SIZE=1073741824 TOOLS="uvget curl wget2 aria2c"
section "L over HTTPS, bodies discarded" PROTO=https FILES=1 SIZE=1073741824 DISCARD=1 TOOLS="uvget curl"
section "L over HTTP, one file over 4 connections" FILES=1 SIZE=1073741824 CONNS=4 TOOLS="uvget uvget-split curl aria2c-split"
section "L over HTTPS, one file over 4 connections, on both cores" PROTO=https FILES=1 SIZE=1073741824 CONNS=4 TOOLS="uvget uvget-split uvget-split-loops curl aria2c-split"
printf '\n### Memory against the length of the list\n\nCommand: `bench/memory.sh`\n\n'
"$root/bench/memory.sh" "$build"
printf '\n### Embedding latency (HTTP, then HTTPS)\n\nCommand: `bench/embed_latency.sh`, `PROTO=https bench/embed_latency.sh`\n\n'
"$root/bench/embed_latency.sh" "$build"
PROTO=https "$root/bench/embed_latency.sh" "$build"
printf '\n### Crawl: 2,000 distinct hosts, DNS answers after 0 and 30 ms\n\nCommand: `bench/crawl.sh`\n\n'
if [ -x "$build/tests/dns_test_server" ]; then  # the DNS server is built with -Dtests=true
  "$root/bench/crawl.sh" "$build"
else
  echo "(skipped: $build has no tests/dns_test_server; configure it with -Dtests=true)"
fi
printf '\n### Soak: faults from one host, and a host that refuses above K connections\n\nCommand: `bench/soak.sh`\n\n'
if [ -x "$build/tests/soak_server" ]; then  # built with -Dtests=true
  "$root/bench/soak.sh" "$build"
else
  echo "(skipped: $build has no tests/soak_server; configure it with -Dtests=true)"
fi
