#!/usr/bin/env bash
# One large file from mirrors that each allow a client one connection at a capped rate (nginx:
# limit_conn 1 per address, limit_rate RATE per connection), the shape of public mirror
# networks. Each tool fetches it from one URL; from the URL with its MIRRORS-1 mirrors in an
# aria2c-form list split MIRRORS ways; and from such a list whose last mirror is slow
# (SLOW_RATE), where a split that waits for its slowest part loses. Every result is checked
# against the file's digest. Prints the command and a Markdown table (median of RUNS, min-max).
# Usage: bench/mirrors.sh [BUILD_DIR]   env: SIZE_MB=48 RATE=8m SLOW_RATE=1m MIRRORS=3 RUNS=3
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-release}
size_mb=${SIZE_MB:-48}
rate=${RATE:-8m}
slow_rate=${SLOW_RATE:-1m}
mirrors=${MIRRORS:-3}
runs=${RUNS:-3}
uvget=$build/src/uvget
[ -x "$uvget" ] || { echo "build uvget first (see bench/README.md)" >&2; exit 2; }
"$root/scripts/deps" bench
work=$(mktemp -d /tmp/uvget-mirrors.XXXXXX)
shm=$(mktemp -d /dev/shm/uvget-mirrors.XXXXXX)
chmod 755 "$work"
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
trap 'stop_nginx; rm -rf "$work" "$shm"' EXIT
mkdir -p "$work/www"
head -c $((size_mb * 1048576)) /dev/urandom > "$work/www/big.bin"
want=$(sha256sum < "$work/www/big.bin" | cut -d' ' -f1)
ports=() listens=()
for i in $(seq 0 "$mirrors"); do  # the last one is the slow mirror
  p=$(free_port)
  ports+=("$p")
  # One connection per client at RATE: a second one is refused with 503.
  r=$rate
  [ "$i" -eq "$mirrors" ] && r=$slow_rate
  listens+=("listen 127.0.0.1:$p; limit_conn one 1; limit_rate $r;")
done
NGINX_HTTP_EXTRA='limit_conn_zone $binary_remote_addr$server_port zone=one:1m; limit_conn_status 503;' \
  start_nginx "${listens[@]}"
url() { echo "http://127.0.0.1:${ports[$1]}/big.bin"; }
printf '%s' "$(url 0)" > "$work/one.txt"
printf '\n' >> "$work/one.txt"
line=$(url 0)
for i in $(seq 1 $((mirrors - 1))); do line+=$'\t'"$(url "$i")"; done
printf '%s\n' "$line" > "$work/mirrored.txt"
line=$(url 0)
for i in $(seq 1 $((mirrors - 2))); do line+=$'\t'"$(url "$i")"; done
line+=$'\t'"$(url "$mirrors")"
printf '%s\n' "$line" > "$work/slow.txt"

declare -A secs
run() {  # $1 row name, then the command; checks the file
  local name=$1 t0 t1 got
  shift
  rm -rf "$shm/out"
  mkdir -p "$shm/out"
  t0=$(date +%s%N)
  taskset -c 1 "$@" > "$work/out.log" 2>&1 || { echo "$name failed: $(tail -3 "$work/out.log")" >&2; exit 1; }
  t1=$(date +%s%N)
  got=$(sha256sum < "$shm/out/big.bin" | cut -d' ' -f1)
  [ "$got" = "$want" ] || { echo "$name: the file differs" >&2; exit 1; }
  secs[$name]+="$(awk -v ns=$((t1 - t0)) 'BEGIN { printf "%.2f", ns / 1e9 }') "
}
rows=("uvget, one URL" "aria2c, one URL" "uvget -s $mirrors, $mirrors URLs"
  "aria2c -s $mirrors, $mirrors URLs" "uvget -s $mirrors, $mirrors URLs, one at $slow_rate"
  "aria2c -s $mirrors, $mirrors URLs, one at $slow_rate")
for _ in $(seq 1 "$runs"); do
  run "${rows[0]}" "$uvget" -q -d "$shm/out" -i "$work/one.txt"
  run "${rows[1]}" aria2c -q -d "$shm/out" -i "$work/one.txt" --allow-overwrite=true \
    --file-allocation=none -s 1 -x 1
  run "${rows[2]}" "$uvget" -q -d "$shm/out" -s "$mirrors" --min-split-size 1M \
    -i "$work/mirrored.txt"
  # aria2c's -x counts connections by host name, and these mirrors share 127.0.0.1: -x N lets
  # it open one to each, as it would to mirrors on N hosts.
  run "${rows[3]}" aria2c -q -d "$shm/out" -i "$work/mirrored.txt" --allow-overwrite=true \
    --file-allocation=none -s "$mirrors" -x "$mirrors" --min-split-size=1M
  run "${rows[4]}" "$uvget" -q -d "$shm/out" -s "$mirrors" --min-split-size 1M \
    -i "$work/slow.txt"
  run "${rows[5]}" aria2c -q -d "$shm/out" -i "$work/slow.txt" --allow-overwrite=true \
    --file-allocation=none -s "$mirrors" -x "$mirrors" --min-split-size=1M
done
echo "Mirrors (bench/mirrors.sh), $(date '+%F %H:%M'), $(nproc) cores, uvget $(git -C "$root" rev-parse --short HEAD)"
echo
echo "Command: \`SIZE_MB=$size_mb RATE=$rate SLOW_RATE=$slow_rate MIRRORS=$mirrors RUNS=$runs bench/mirrors.sh\`"
echo
echo "| tool | wall s (median of $runs, min-max) | MB/s |"
echo "|---|---|---|"
for r in "${rows[@]}"; do
  # shellcheck disable=SC2086
  m=$(printf '%s\n' ${secs[$r]} | median)
  lo=$(printf '%s\n' ${secs[$r]} | sort -g | head -1)
  hi=$(printf '%s\n' ${secs[$r]} | sort -g | tail -1)
  echo "| $r | $m ($lo–$hi) | $(awk -v s="$m" -v mb="$size_mb" 'BEGIN { printf "%.1f", mb * 1.048576 / s }') |"
done
