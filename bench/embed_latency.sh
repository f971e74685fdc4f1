#!/usr/bin/env bash
# Embedding latency: does uvget ever hold the host's loop for over 1 ms? bench/embed_latency (a
# host with a 1 ms uv_timer and an embedded Client on the same loop) downloads FILES x SIZE files
# from nginx on loopback, bodies discarded and written into tmpfs; the timer alone first, for this
# machine's own loop jitter. nginx on core 0, the host on core 1. Prints a Markdown table of the
# medians over RUNS runs: files/s, the ticks' lateness (gap between ticks minus 1 ms), the loop
# thread's CPU time between ticks beyond 1 ms (held), and how often the kernel preempted it.
# Usage: bench/embed_latency.sh [BUILD_DIR]   (default build-release; see bench/README.md)
# env: RUNS=3 FILES=10000 SIZE=4096 CONNS=64 PROTO=http|https BASELINE_SECS=1
#      MODES="baseline discard dir" HOST_CPUS=1 (taskset's list for the host and its threadpool)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-release}
runs=${RUNS:-3}
files=${FILES:-10000}
size=${SIZE:-4096}
conns=${CONNS:-64}
proto=${PROTO:-http}
baseline_secs=${BASELINE_SECS:-1}
modes=${MODES:-baseline discard dir}
host_cpus=${HOST_CPUS:-1}
host=$build/bench/embed_latency
[ -x "$host" ] || { echo "build it first: meson setup $build --buildtype=release -Dtests=false && ninja -C $build" >&2; exit 2; }
"$root/scripts/deps" bench

work=$(mktemp -d /tmp/uvget-bench.XXXXXX)
shm=$(mktemp -d /dev/shm/uvget-bench.XXXXXX)
chmod 755 "$work"
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
cleanup() {
  stop_nginx
  rm -rf "$work" "$shm"
}
trap cleanup EXIT
serve_files "$files" "$size" "$proto"

field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }  # $1: a key of embed_latency's result line

declare -A rate p50 p99 max over held preempted
for mode in $modes; do
  rates=() p50s=() p99s=() maxs=() overs=() helds=() preempts=()
  for r in $(seq 1 "$runs"); do
    case $mode in
      baseline) args=(--baseline "$baseline_secs") ;;
      discard) args=(-j "$conns" --cacert "$work/ca.crt" --discard "$work/urls.txt") ;;
      dir) rm -rf "$shm/out"; mkdir -p "$shm/out"
           args=(-j "$conns" --cacert "$work/ca.crt" --dir "$shm/out" "$work/urls.txt") ;;
      *) echo "unknown mode '$mode' (baseline, discard, dir)" >&2; exit 2 ;;
    esac
    line=$(taskset -c "$host_cpus" "$host" "${args[@]}" 2>"$work/err") || {
      echo "$mode run $r failed: $line $(tail -3 "$work/err")" >&2; continue; }
    if [ "$mode" = dir ]; then
      got_files=$(find "$shm/out" -type f | wc -l)
      got_bytes=$(find "$shm/out" -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}')
      if [ "$got_files" -ne "$files" ] || [ "$got_bytes" -ne $((files * size)) ]; then
        echo "dir run $r did not write everything: $got_files files, $got_bytes bytes" >&2
        continue
      fi
    fi
    echo "$mode run $r: $line" >&2
    rates+=("$(echo " $line" | field files_per_s)")
    p50s+=("$(echo " $line" | field p50_us)")
    p99s+=("$(echo " $line" | field p99_us)")
    maxs+=("$(echo " $line" | field max_us)")
    overs+=("$(echo " $line" | field over_1ms)")
    helds+=("$(echo " $line" | field held_p99_us)")
    preempts+=("$(echo " $line" | field preempted)")
  done
  [ ${#p99s[@]} -gt 0 ] || continue
  [ "$mode" = baseline ] || rate[$mode]=$(printf '%s\n' "${rates[@]}" | median)
  p50[$mode]=$(printf '%s\n' "${p50s[@]}" | median)
  p99[$mode]=$(printf '%s\n' "${p99s[@]}" | median)
  max[$mode]=$(printf '%s\n' "${maxs[@]}" | median)
  over[$mode]=$(printf '%s\n' "${overs[@]}" | median)
  held[$mode]=$(printf '%s\n' "${helds[@]}" | median)
  preempted[$mode]=$(printf '%s\n' "${preempts[@]}" | median)
done

echo "1 ms uv_timer on the host's loop; $files × $size B over ${proto^^}, $conns connections,"
echo "nginx on core 0, host on core(s) $host_cpus, median of $runs. Late: the gap between ticks − 1 ms."
echo "Held: the loop thread's CPU time over that gap − 1 ms (work that kept the loop from the timer)."
echo "Preempted: the loop thread's involuntary context switches (another thread or process took the core)."
echo
echo "| mode | files/s | late p50 µs | late p99 µs | late max µs | ticks > 1 ms late | held p99 µs | preempted | p99 < 1000 µs: late / held |"
echo "|---|---|---|---|---|---|---|---|---|"
failed=0
for mode in $modes; do
  case $mode in
    baseline) name="timer alone (${baseline_secs} s)" ;;
    discard) name="embedded, bodies discarded" ;;
    dir) name="embedded, files written into tmpfs" ;;
  esac
  if [ -z "${p99[$mode]:-}" ]; then
    echo "| $name | failed | | | | | | | |"
    failed=1
    continue
  fi
  verdict="$([ "${p99[$mode]}" -lt 1000 ] && echo yes || echo no) / $([ "${held[$mode]}" -lt 1000 ] && echo yes || echo no)"
  echo "| $name | ${rate[$mode]:-–} | ${p50[$mode]} | ${p99[$mode]} | ${max[$mode]} | ${over[$mode]} | ${held[$mode]} | ${preempted[$mode]} | $verdict |"
done
exit $failed
