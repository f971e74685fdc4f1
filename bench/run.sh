#!/usr/bin/env bash
# The side-by-side run for small files: every tool downloads the same FILES x SIZE files from one
# nginx on loopback, at the same concurrency, into the same kind of tmpfs directory; each run is
# checked (file count and total bytes) before its time counts. Prints a Markdown table: median
# files/s with min-max, peak RSS and CPU seconds (median), and each tool's ratio to uvget.
# Usage: bench/run.sh [BUILD_DIR]   (default build-release; see bench/README.md)
# env: RUNS=3 FILES=10000 SIZE=4096 CONNS=64 PROTO=http|https
#      TOOLS="uvget curl wget2 aria2c aiohttp thread process seq" (also: uvget-loops, uvget with
#      --loops $LOOPS (default 2) on every core, since more loops than cores is pointless;
#      uvget-split and aria2c-split: each file over $SPLIT (default 4) connections, for L;
#      uvget-split-loops: the same with --loops $LOOPS on every core, segments on every loop;
#      uvget-pipe: --pipeline $PIPE (default 4) on the same connections, so up to CONNS x PIPE
#      requests in flight; uvget-pipe-same: CONNS/PIPE connections, CONNS requests in flight;
#      uvget-base: the uvget row's command with the binary UVGET_BASE, for a before/after)
#      PIN=0: nothing pinned (default: nginx on core 0, each client on core 1)
#      DISCARD=1: bodies discarded (uvget --discard, curl to /dev/null; only those tools), each run
#      checked by the byte count the tool reports
#      CHART=1: also bench/charts/<workload>.{dat,svg}, files/s and MB/s per tool (CHART=0: not),
#      workload as S-http-64 (S 10000 x 4 KiB, M 200 x 1 MiB, L 1 x 1 GiB, else 500x4KiB-http-64)
# The other workloads: M is FILES=200 SIZE=1048576, L is FILES=1 SIZE=1073741824.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-release}
runs=${RUNS:-3}
files=${FILES:-10000}
size=${SIZE:-4096}
conns=${CONNS:-64}
tools=${TOOLS:-uvget curl wget2 aria2c aiohttp thread process seq}
proto=${PROTO:-http}
uvget=$build/src/uvget
loops=${LOOPS:-2}
split=${SPLIT:-4}
pipe=${PIPE:-4}
discard=${DISCARD:-0}
if [ "${PIN:-1}" = 0 ]; then
  pin="" all_cores="" where="nothing pinned"
  export NGINX_PIN=""
else
  pin="taskset -c 1" all_cores="taskset -c 0,1" where="nginx on core 0, client on core 1"
fi
py=/usr/bin/python3  # Debian's, with python3-requests and python3-aiohttp
[ -x "$uvget" ] || { echo "build uvget first: meson setup $build --buildtype=release -Dtests=false && ninja -C $build" >&2; exit 2; }
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
export REQUESTS_CA_BUNDLE=$work/ca.crt SSL_CERT_FILE=$work/ca.crt  # the Python clients
serve_files "$files" "$size" "$proto"
sed 's/^/url = /' "$work/urls.txt" | awk -v d="$shm/out" '{print; sub(/.*\//, ""); print "output = " d "/" $0}' > "$work/curl.cfg"
sed 's/^/url = /; a output = /dev/null' "$work/urls.txt" > "$work/curl-null.cfg"
procs=$(( $(nproc) * 2 ))

command_for() {  # $1 tool; uvget-base: the uvget row's command with $UVGET_BASE
  if [ "$1" = uvget-base ]; then uvget=$UVGET_BASE command_for_tool uvget; else command_for_tool "$1"; fi
}

command_for_tool() {  # $1 tool, output into $shm/out
  local out=$shm/out
  if [ "$discard" = 1 ]; then
    case $1 in
      uvget) echo "$pin $uvget --progress none --discard --cacert $work/ca.crt -j $conns --per-host $conns -i $work/urls.txt" ;;
      uvget-pipe) echo "$pin $uvget --progress none --pipeline $pipe --discard --cacert $work/ca.crt -j $conns --per-host $conns -i $work/urls.txt" ;;
      uvget-pipe-same) echo "$pin $uvget --progress none --pipeline $pipe --discard --cacert $work/ca.crt -j $((conns / pipe)) --per-host $((conns / pipe)) -i $work/urls.txt" ;;
      uvget-loops) echo "$all_cores $uvget --progress none --loops $loops --discard --cacert $work/ca.crt -j $conns --per-host $conns -i $work/urls.txt" ;;
      curl) echo "$pin curl -s --cacert $work/ca.crt --parallel --parallel-max $conns -K $work/curl-null.cfg -w %{size_download}\n" ;;
      *) echo "false" ;;
    esac
    return
  fi
  case $1 in
    uvget-loops) echo "$all_cores $uvget -q --loops $loops --cacert $work/ca.crt -d $out -j $conns --per-host $conns -i $work/urls.txt"; return ;;
    uvget-split-loops) echo "$all_cores $uvget -q --loops $loops -s $split --min-split-size 1M --cacert $work/ca.crt -d $out -j $conns --per-host $conns -i $work/urls.txt"; return ;;
  esac
  echo -n "$pin "
  case $1 in
    uvget) echo "$uvget -q --cacert $work/ca.crt -d $out -j $conns --per-host $conns -i $work/urls.txt" ;;
    uvget-pipe) echo "$uvget -q --pipeline $pipe --cacert $work/ca.crt -d $out -j $conns --per-host $conns -i $work/urls.txt" ;;
    uvget-pipe-same) echo "$uvget -q --pipeline $pipe --cacert $work/ca.crt -d $out -j $((conns / pipe)) --per-host $((conns / pipe)) -i $work/urls.txt" ;;
    uvget-split) echo "$uvget -q -s $split --min-split-size 1M --cacert $work/ca.crt -d $out -j $conns --per-host $conns -i $work/urls.txt" ;;
    aria2c-split) echo "aria2c -q --ca-certificate=$work/ca.crt -j $conns -x $split -s $split -k 1M --allow-overwrite=true --auto-file-renaming=false -d $out -i $work/urls.txt" ;;
    curl) echo "curl -s --cacert $work/ca.crt --parallel --parallel-max $conns -K $work/curl.cfg" ;;
    wget2) echo "wget2 -q --ca-certificate=$work/ca.crt --max-threads=$conns --no-robots -P $out -i $work/urls.txt" ;;
    aria2c) echo "aria2c -q --ca-certificate=$work/ca.crt -j $conns -x 1 --allow-overwrite=true --auto-file-renaming=false -d $out -i $work/urls.txt" ;;
    aiohttp) echo "$py $root/bench/py_clients.py aiohttp $conns $work/urls.txt $out" ;;
    thread) echo "$py $root/bench/py_clients.py thread $conns $work/urls.txt $out" ;;
    process) echo "$py $root/bench/py_clients.py process $procs $work/urls.txt $out" ;;
    seq) echo "$py $root/bench/py_clients.py seq 1 $work/urls.txt $out" ;;
  esac
}

declare -A rate rss cpu range lo hi
for tool in $tools; do
  rates=() rsss=() cpus=()
  for r in $(seq 1 "$runs"); do
    rm -rf "$shm/out"
    mkdir -p "$shm/out"
    t0=$(date +%s%N)
    # shellcheck disable=SC2046
    /usr/bin/time -f "%e %M %U %S" -o "$work/time" $(command_for "$tool") >"$work/out" 2>"$work/err" || {
      echo "$tool failed: $(tail -3 "$work/err")" >&2; continue; }
    t1=$(date +%s%N)
    if [ "$discard" = 1 ]; then  # what the tool itself counted
      case $tool in
        curl) got_files=$(grep -c . "$work/out"); got_bytes=$(awk '{s+=$1} END {print s+0}' "$work/out") ;;
        *) read -r got_files got_bytes < <(sed -nE 's/.*uvget: ([0-9]+) files? ok, 0 failed, ([0-9]+) bytes?.*/\1 \2/p' "$work/err") ;;
      esac
    else
      got_files=$(find "$shm/out" -type f | wc -l)
      got_bytes=$(find "$shm/out" -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}')
    fi
    if [ "$got_files" -ne "$files" ] || [ "$got_bytes" -ne $((files * size)) ]; then
      echo "$tool run $r did not download everything: $got_files files, $got_bytes bytes" >&2
      continue
    fi
    read -r _ kb user sys < "$work/time"
    rates+=("$(python3 -c "print($files * 1e9 / ($t1 - $t0))")")
    rsss+=("$kb")
    cpus+=("$(python3 -c "print('%.2f' % ($user + $sys))")")
  done
  [ ${#rates[@]} -gt 0 ] || { rate[$tool]=0; continue; }
  rate[$tool]=$(printf '%s\n' "${rates[@]}" | median)
  # Unrounded: the chart's MB/s whiskers come from them (a 1 GiB file is 0.2 files/s).
  lo[$tool]=$(printf '%s\n' "${rates[@]}" | sort -g | head -1)
  hi[$tool]=$(printf '%s\n' "${rates[@]}" | sort -g | tail -1)
  range[$tool]=$(printf '%.1f–%.1f' "${lo[$tool]}" "${hi[$tool]}")
  rss[$tool]=$(printf '%s\n' "${rsss[@]}" | median)
  cpu[$tool]=$(printf '%s\n' "${cpus[@]}" | median)
done
wrk_rate=0
# wrk's one-URL request rate is a ceiling for many files only; a large file has curl's figure.
if [ "$size" -le 16777216 ]; then
  wrk_rate=$($pin wrk -t1 -c"$conns" -d3s "$proto://127.0.0.1:$port/f1" | awk '/Requests\/sec/ {print $2}')
fi
wrk_rate=${wrk_rate:-0}

into="into tmpfs"
[ "$discard" = 1 ] && into="bodies discarded"
echo "$files × $size B over ${proto^^}, $conns connections, $where (uvget-loops: any core, $loops loops), $into, median of $runs"
echo
echo "| tool | files/s (median) | min–max | MB/s | peak RSS | CPU s | ratio to uvget |"
echo "|---|---|---|---|---|---|---|"
base=${rate[uvget]:-0}
for tool in $tools; do
  r=${rate[$tool]:-0}
  ratio=$(python3 -c "print('%.2f' % ($r / $base) if $base else '-')")
  mbs=$(python3 -c "print('%.0f' % ($r * $size / 1e6))")
  printf '| %s | %.1f | %s | %s | %s KB | %s | %s |\n' "$tool" "$r" "${range[$tool]:-–}" "$mbs" "${rss[$tool]:-–}" "${cpu[$tool]:-–}" "$ratio"
done
if [ "$size" -le 16777216 ]; then
  printf '| wrk -t1 -c%s (one URL, no files: the request-rate ceiling) | %.0f | | | | %s |\n' "$conns" "$wrk_rate" \
    "$(python3 -c "print('%.2f' % ($wrk_rate / $base) if $base else '-')")"
fi

if [ "${CHART:-1}" != 0 ]; then
  name=$(workload_name "$files" "$size" "$proto" "$conns")
  [ "$discard" = 1 ] && name+="-discard"
  [ "${PIN:-1}" = 0 ] && name+="-unpinned"
  class=${name%%-*}
  title="$files × $(human_size "$size" | sed -E 's/([0-9])([KMG]iB)$/\1 \2/'), ${proto^^}, $conns connections, median of $runs, $(date +%F)"
  case $class in S | M | L) title="$class: $title" ;; esac
  mkdir -p "$root/bench/charts"
  dat=$root/bench/charts/$name.dat
  {
    echo "# bench/run.sh, $title"
    echo "# ceiling ${wrk_rate:-0}"
    echo "# tool files_per_s min max mb_per_s min max"
    for tool in $tools; do
      awk -v t="$tool" -v r="${rate[$tool]:-0}" -v l="${lo[$tool]:-0}" -v h="${hi[$tool]:-0}" -v s="$size" \
        'BEGIN { printf "%s %.1f %.1f %.1f %.2f %.2f %.2f\n", t, r, l, h, r*s/1e6, l*s/1e6, h*s/1e6 }'
    done
  } > "$dat"
  draw_chart "$dat" "$root/bench/charts/$name.svg" "$title" "$wrk_rate" \
    "$(awk -v r="$wrk_rate" -v s="$size" 'BEGIN { print r*s/1e6 }')"
  echo "chart: bench/charts/$name.svg (data: bench/charts/$name.dat)" >&2
fi
