#!/usr/bin/env bash
# The soak shape: FILES files of 4 to 64 KiB from one host whose first answers are faulty for
# FAULTS % of them (resets, bodies cut short, 500s, 3 s stalls, trickles, keep-alive drops) and
# 503 with Retry-After: 1 for BUSY of those (tests/support/soak_server_main.cpp). uvget beside
# curl --parallel --retry 5 --retry-all-errors (without --retry-all-errors curl gives up on a
# reset or an empty reply), both at CONNS connections, writing into tmpfs; every run is checked
# against the server's manifest (every file, every byte).
# Then the 429 shape: a server that answers 429 whenever more than LIMIT_K connections are open
# to it, LIMIT_FILES files, uvget with --per-host 16; the server reports the peak of open
# connections it saw once 64 requests had come after its first 429.
# Prints the command, a Markdown table per shape (median of RUNS, min-max) and the server's
# counts of one run.
# Usage: bench/soak.sh [BUILD_DIR]   (default build-release, configured with -Dtests=true)
# env: FILES=5000 FAULTS=5 BUSY=39 CONNS=16 RUNS=3 TOOLS="uvget curl" RETRIES=5
#      LIMIT_K=4 LIMIT_FILES=2000 (LIMIT_FILES=0: no 429 shape)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-release}
files=${FILES:-5000}
faults=${FAULTS:-5}
busy=${BUSY:-39}
conns=${CONNS:-16}
runs=${RUNS:-3}
tools=${TOOLS:-uvget curl}
retries=${RETRIES:-5}
limit_k=${LIMIT_K:-4}
limit_files=${LIMIT_FILES:-2000}
uvget=$build/src/uvget
server_bin=$build/tests/soak_server
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
need_soak_build
"$root/scripts/deps" bench

work=$(mktemp -d /tmp/uvget-soak.XXXXXX)
shm=$(mktemp -d /dev/shm/uvget-soak.XXXXXX)
trap 'stop_all_soak; rm -rf "$work" "$shm"' EXIT


command_for() {  # $1 tool, $2 list, $3 curl config: sets cmd
  case $1 in
    uvget) cmd=("$uvget" -q --retries "$retries" -j "$conns" --per-host "$conns" -d "$shm/out" -i "$2") ;;
    curl) cmd=(curl -s --parallel --parallel-max "$conns" --retry "$retries" --retry-all-errors -K "$3") ;;
    *) echo "unknown tool $1" >&2; exit 2 ;;
  esac
}

# Every file of the manifest is in $shm/out, whole: prints what is wrong, nothing when all is.
verify() {  # $1 manifest, $2 count expected
  local n wrong
  n=$(find "$shm/out" -type f | wc -l)
  wrong=$(cd "$shm/out" && awk '{ print $3 "  " $1 }' "$1" | sha256sum --quiet -c - 2>/dev/null | wc -l || true)
  if [ "$n" -ne "$2" ] || [ "$wrong" -ne 0 ]; then echo "$n files, $wrong wrong or missing"; fi
}

run_shape() {  # $1 label, $2 file count, $3... server options
  local label=$1 count=$2
  shift 2
  declare -A secs cpu rss bad
  local r tool t0 t1 problem
  for r in $(seq 1 "$runs"); do
    for tool in $tools; do  # interleaved: drift on this shared machine spreads over both
      start_soak soak "$@"
      curl -s "http://127.0.0.1:$port/manifest" -o "$work/manifest"
      seq 0 $((count - 1)) | sed "s|^|http://127.0.0.1:$port/f|" > "$work/urls.txt"
      seq 0 $((count - 1)) | awk -v p="$port" -v d="$shm/out" \
        '{ print "url = http://127.0.0.1:" p "/f" $1; print "output = " d "/f" $1 }' > "$work/curl.cfg"
      command_for "$tool" "$work/urls.txt" "$work/curl.cfg"
      rm -rf "$shm/out"
      mkdir -p "$shm/out"
      t0=$(date +%s%N)
      /usr/bin/time -f '%U %S %M' -o "$work/time" taskset -c 1 timeout 600 "${cmd[@]}" \
        > /dev/null 2> "$work/err" || true
      t1=$(date +%s%N)
      problem=$(verify "$work/manifest" "$count")
      stop_soak soak > "$work/counts.$tool"
      if [ -n "$problem" ]; then
        bad[$tool]+="run $r: $problem ($(tail -2 "$work/err" | tr '\n' ' ' | cut -c1-200)); "
        continue
      fi
      secs[$tool]+="$(awk -v ns=$((t1 - t0)) 'BEGIN { printf "%.2f", ns / 1e9 }') "
      read -r u s kb < "$work/time"
      cpu[$tool]+="$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }') "
      rss[$tool]+="$(awk -v kb="$kb" 'BEGIN { printf "%.1f", kb / 1024 }') "
    done
  done
  echo
  echo "**$label**"
  echo
  echo "| tool | wall s (median) | min–max | CPU s | peak RSS MB | ÷ curl wall time | runs with every file right |"
  echo "|---|---|---|---|---|---|---|"
  local base
  base=$(echo "${secs[curl]:-}" | tr ' ' '\n' | grep . | median || true)
  for tool in $tools; do
    local v m ok
    v=$(echo "${secs[$tool]:-}" | tr ' ' '\n' | grep . || true)
    ok=$(echo "$v" | grep -c . || true)
    if [ "$ok" -eq 0 ]; then
      echo "| $tool | – | – | – | – | – | 0/$runs |"
      continue
    fi
    m=$(echo "$v" | median)
    echo "| $tool | $m | $(echo "$v" | sort -g | head -1)–$(echo "$v" | sort -g | tail -1) |" \
      "$(echo "${cpu[$tool]}" | tr ' ' '\n' | grep . | median) |" \
      "$(echo "${rss[$tool]}" | tr ' ' '\n' | grep . | median) |" \
      "$( [ -n "$base" ] && awk -v a="$m" -v b="$base" 'BEGIN { printf "%.2f", a / b }' || echo –) | $ok/$runs |"
  done
  for tool in $tools; do
    [ -n "${bad[$tool]:-}" ] && echo && echo "- $tool: ${bad[$tool]}"
    echo "- server, last $tool run: \`$(cat "$work/counts.$tool" 2>/dev/null)\`"
  done
}

echo "Soak (bench/soak.sh), $(date '+%F %H:%M'), $(nproc) cores, uvget $(git -C "$root" rev-parse --short HEAD)"
echo
echo "Command: \`FILES=$files FAULTS=$faults BUSY=$busy CONNS=$conns RUNS=$runs TOOLS=\"$tools\" RETRIES=$retries LIMIT_K=$limit_k LIMIT_FILES=$limit_files bench/soak.sh\`"
echo
echo "Server on core 0, clients on core 1, into tmpfs. Tool command lines:"
echo
for tool in $tools; do
  command_for "$tool" LIST CURL.cfg
  echo "    ${cmd[*]}" | sed "s|$shm|SHM|g; s|$build|BUILD|g"
done
run_shape "Faults: $files files of 4–64 KiB, $faults % of first answers faulty, $busy of them 503 + Retry-After: 1, $conns connections" \
  "$files" --files "$files" --faults "$faults" --busy "$busy"
if [ "$limit_files" -gt 0 ]; then
  conns=16
  run_shape "429 above $limit_k connections: $limit_files files, --per-host 16 (curl --parallel-max 16)" \
    "$limit_files" --files "$limit_files" --limit-above "$limit_k"
fi
