#!/usr/bin/env bash
# Names that clash, and the notebook's list.
# 1. FILES URLs that all end in one name (/f<i>/index.html: every file is NAME, NAME.1, ...)
#    against FILES distinct names (/f<i>), uvget alone, interleaved: files/s and their ratio.
# 2. The notebook's list: [a page on host A, a small page on host B] x PAIRS, the same two URLs
#    over and over, uvget beside the classic comparison (sequential requests, a thread pool, a
#    process pool; bench/py_clients.py, which overwrite one file per name where uvget keeps
#    every one).
# Servers: the project's soak_server without faults, on core 0; clients on core 1, into tmpfs.
# Usage: bench/names.sh [BUILD_DIR]   (default build-release, configured with -Dtests=true)
# env: FILES=100000 SIZE=4096 CONNS=64 RUNS=3 PAIRS=5000 TOOLS="uvget seq thread process"
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-release}
files=${FILES:-100000}
size=${SIZE:-4096}
conns=${CONNS:-64}
runs=${RUNS:-3}
pairs=${PAIRS:-5000}
tools=${TOOLS:-uvget seq thread process}
uvget=$build/src/uvget
server_bin=$build/tests/soak_server
py=/usr/bin/python3
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
need_soak_build
"$root/scripts/deps" bench
work=$(mktemp -d /tmp/uvget-names.XXXXXX)
shm=$(mktemp -d /dev/shm/uvget-names.XXXXXX)
trap 'stop_all_soak; rm -rf "$work" "$shm"' EXIT
timed() {  # $1 expected file count, then the command: prints seconds (fails if files are missing)
  local want=$1 t0 t1 n
  shift
  rm -rf "$shm/out"
  mkdir -p "$shm/out"
  t0=$(date +%s%N)
  taskset -c 1 "$@" > /dev/null 2> "$work/err" || { echo "failed: $(tail -2 "$work/err")" >&2; exit 1; }
  t1=$(date +%s%N)
  n=$(find "$shm/out" -type f | wc -l)
  [ "$n" -eq "$want" ] || { echo "$* left $n files, not $want" >&2; exit 1; }
  awk -v ns=$((t1 - t0)) 'BEGIN { printf "%.3f", ns / 1e9 }'
}

start_soak one --files "$files" --faults 0 --busy 0 --size "$size"
seq 0 $((files - 1)) | sed "s|^|http://127.0.0.1:$port/f|" > "$work/distinct.txt"
seq 0 $((files - 1)) | sed "s|^|http://127.0.0.1:$port/f|; s|$|/index.html|" > "$work/same.txt"
d=() s=()
for _ in $(seq 1 "$runs"); do
  for kind in distinct same; do
    t=$(timed "$files" "$uvget" -q -j "$conns" --per-host "$conns" -d "$shm/out" -i "$work/$kind.txt")
    if [ "$kind" = distinct ]; then d+=("$t"); else s+=("$t"); fi
  done
done
dm=$(printf '%s\n' "${d[@]}" | median)
sm=$(printf '%s\n' "${s[@]}" | median)

start_soak a --files "$files" --faults 0 --busy 0 --size 19000
port_a=$port
start_soak b --files "$files" --faults 0 --busy 0 --size 1200
port_b=$port
for _ in $(seq 1 "$pairs"); do
  echo "http://127.0.0.1:$port_a/f0/page.html"
  echo "http://127.0.0.1:$port_b/f1/small.html"
done > "$work/notebook.txt"
declare -A secs
for _ in $(seq 1 "$runs"); do
  for tool in $tools; do
    case $tool in
      uvget) t=$(timed $((pairs * 2)) "$uvget" -q -j "$conns" -d "$shm/out" -i "$work/notebook.txt") ;;
      seq) t=$(timed 2 "$py" "$root/bench/py_clients.py" seq 1 "$work/notebook.txt" "$shm/out") ;;
      thread) t=$(timed 2 "$py" "$root/bench/py_clients.py" thread "$conns" "$work/notebook.txt" "$shm/out") ;;
      process) t=$(timed 2 "$py" "$root/bench/py_clients.py" process 4 "$work/notebook.txt" "$shm/out") ;;
    esac
    secs[$tool]+="$t "
  done
done

echo "Names (bench/names.sh), $(date '+%F %H:%M'), $(nproc) cores, uvget $(git -C "$root" rev-parse --short HEAD)"
echo
echo "Command: \`FILES=$files SIZE=$size CONNS=$conns RUNS=$runs PAIRS=$pairs TOOLS=\"$tools\" bench/names.sh\`"
echo
echo "| $files URLs | wall s (median of $runs) | files/s | ÷ distinct |"
echo "|---|---|---|---|"
echo "| distinct names (/f<i>) | $dm | $(awk -v n="$files" -v t="$dm" 'BEGIN { printf "%.0f", n / t }') | 1.00 |"
echo "| one name (/f<i>/index.html) | $sm | $(awk -v n="$files" -v t="$sm" 'BEGIN { printf "%.0f", n / t }') | $(awk -v a="$dm" -v b="$sm" 'BEGIN { printf "%.2f", a / b }') |"
echo
echo "The notebook's list: [19,000-byte page on host A, 1,200-byte page on host B] × $pairs"
echo
echo "| tool | wall s (median of $runs) | ÷ uvget |"
echo "|---|---|---|"
um=$(echo "${secs[uvget]:-}" | tr ' ' '\n' | grep . | median || true)
for tool in $tools; do
  m=$(echo "${secs[$tool]}" | tr ' ' '\n' | grep . | median)
  echo "| $tool | $m | $( [ -n "$um" ] && awk -v a="$m" -v b="$um" 'BEGIN { printf "%.1f", a / b }' || echo –) |"
done
