#!/usr/bin/env bash
# A re-run of a list that is all done: FILES files of SIZE bytes are downloaded once with
# --json, then the same list is run again RUNS times with --skip-done on those records, each
# time against a fresh server that counts the requests it gets (the project's soak_server, no
# faults). Prints the first run's time, the re-runs' median, their ratio, and the requests the
# server saw during the re-runs (0 is the point), with the re-run's peak RSS. uvget runs on core
# 1 (the server has core 0); each re-run is also timed on both cores, since a re-run has no
# server to leave room for and checks its files in the threadpool. The list, the records and
# the files are all in tmpfs (this VM's page cache is trimmed under it, which made reads from
# disk a noisy part of a run of a quarter second).
# Usage: bench/rerun.sh [BUILD_DIR]   (default build-release, configured with -Dtests=true)
# env: FILES=100000 SIZE=4096 CONNS=64 RUNS=3
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-release}
files=${FILES:-100000}
size=${SIZE:-4096}
conns=${CONNS:-64}
runs=${RUNS:-3}
uvget=$build/src/uvget
server_bin=$build/tests/soak_server
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
need_soak_build
work=$(mktemp -d /tmp/uvget-rerun.XXXXXX)
shm=$(mktemp -d /dev/shm/uvget-rerun.XXXXXX)
trap 'stop_all_soak; rm -rf "$work" "$shm"' EXIT
start_server() { start_soak one --files "$files" --faults 0 --busy 0 --size "$size"; }
requests_seen() {  # stops the server: the requests it saw
  stop_soak one > "$work/soak.last"
  sed -n 's/^soak_server: \([0-9]*\) requests.*/\1/p' "$work/soak.last"
}
run() {  # $@: uvget's extra options; prints "seconds rss_kb exit"; env CORES: taskset's list
  local t0 t1 rc=0
  t0=$(date +%s%N)
  /usr/bin/time -f '%M' -o "$work/time" taskset -c "${CORES:-1}" "$uvget" -q -j "$conns" --per-host "$conns" \
    -d "$shm/out" -i "$shm/urls.txt" "$@" 2> "$work/err" || rc=$?
  t1=$(date +%s%N)
  echo "$(awk -v ns=$((t1 - t0)) 'BEGIN { printf "%.3f", ns / 1e9 }') $(cat "$work/time") $rc"
}

start_server
seq 0 $((files - 1)) | sed "s|^|http://127.0.0.1:$port/f|" > "$shm/urls.txt"
read -r first first_kb first_rc < <(run --json "$shm/first.jsonl")
requests_seen > "$work/count"  # not in $(...): wait needs the server as its child
first_requests=$(cat "$work/count")
[ "$first_rc" -eq 0 ] || { echo "the first run failed: $(tail -2 "$work/err")" >&2; exit 1; }
secs=() kbs=() both=() requests=0
rerun() {  # CORES=...: one re-run against a fresh server; prints "seconds rss_kb"
  start_server
  sed -i "s|127.0.0.1:[0-9]*/|127.0.0.1:$port/|" "$shm/urls.txt" "$shm/first.jsonl"
  read -r s kb rc < <(run --skip-done "$shm/first.jsonl" --json "$shm/again.jsonl")
  requests_seen > "$work/count"
  requests=$((requests + $(cat "$work/count")))
  [ "$rc" -eq 0 ] || { echo "a re-run failed: $(tail -2 "$work/err")" >&2; exit 1; }
  skipped=$(grep -c '"skipped":true' "$shm/again.jsonl" || true)
  [ "$skipped" -eq "$files" ] || { echo "a re-run skipped $skipped of $files" >&2; exit 1; }
}
for _ in $(seq 1 "$runs"); do
  rerun
  secs+=("$s")
  kbs+=("$kb")
  CORES=0,1 rerun
  both+=("$s")
done
again=$(printf '%s\n' "${secs[@]}" | median)
both_median=$(printf '%s\n' "${both[@]}" | median)
echo "Re-run (bench/rerun.sh), $(date '+%F %H:%M'), $(nproc) cores, uvget $(git -C "$root" rev-parse --short HEAD)"
echo
echo "Command: \`FILES=$files SIZE=$size CONNS=$conns RUNS=$runs bench/rerun.sh\`"
echo
echo "| run | wall s | peak RSS MB | requests the server saw |"
echo "|---|---|---|---|"
echo "| first, --json | $first | $(awk -v k="$first_kb" 'BEGIN { printf "%.1f", k / 1024 }') | $first_requests |"
echo "| again, --skip-done (median of $runs) | $again ($(printf '%s\n' "${secs[@]}" | sort -g | head -1)–$(printf '%s\n' "${secs[@]}" | sort -g | tail -1)) | $(printf '%s\n' "${kbs[@]}" | median | awk '{ printf "%.1f", $1 / 1024 }') | $requests in all |"
echo "| again, on both cores (median of $runs) | $both_median ($(printf '%s\n' "${both[@]}" | sort -g | head -1)–$(printf '%s\n' "${both[@]}" | sort -g | tail -1)) | | |"
echo
echo "First run ÷ re-run: $(awk -v a="$first" -v b="$again" 'BEGIN { printf "%.1f", a / b }')× on core 1, $(awk -v a="$first" -v b="$both_median" 'BEGIN { printf "%.1f", a / b }')× on both cores"
