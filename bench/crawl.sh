#!/usr/bin/env bash
# The crawl shape: one small page from each of HOSTS distinct host names, so every download pays a
# DNS lookup, a new connection and (HTTPS) a full TLS handshake. uvget beside curl --parallel,
# wget2 and aria2c, all at the same concurrency, writing into tmpfs. Everything runs in a private
# network and mount namespace (unshare): loopback plus 192.0.2.1 (so aria2c's c-ares asks A
# records), the project's DNS server on 127.0.0.1:53 answering every <label>.crawl.test with an
# address in 127.0.0.0/8 after DELAY_MS, a resolv.conf and an /etc/hosts of our own bind-mounted
# over the system's (inside the namespace only), nginx on 0.0.0.0:80 and :443 serving /page.html
# for any host name. Each run is checked: HOSTS files, every one identical to the source.
# Prints the command, then per protocol a Markdown table (files/s median with min-max per DNS
# delay, client CPU, CPU per file, peak RSS, ratio to curl), the DNS queries each tool made and
# uvget -v's connection summary.
# Usage: bench/crawl.sh [BUILD_DIR]   (default build-release, configured with -Dtests=true)
# env: HOSTS=2000 CONNS=64 DELAY_MS="0 30" PROTO="http https" CERTS=wildcard|per-host
#      TOOLS="uvget curl wget2 aria2c" (also uvget-discard and curl-discard: bodies discarded, each checked by its own count) RUNS=3 SIZE=19000 EXTRA_UVGET="" (e.g. "--loops auto":
#      uvget is then not pinned) TIMEOUT=600 (per tool run) CRAWL_CERTS=BUILD_DIR/crawl-certs
#      (per-host certificates, cached per HOSTS) UVGET_BASE=PATH (the uvget-base row: the uvget
#      row's command with another uvget binary, e.g. a build of the commit before a change)
# The 20,000-host shape: HOSTS=20000 CONNS=1000 DELAY_MS=30 PROTO=http TOOLS="uvget curl".
set -euo pipefail
[ -z "${UVGET_BASE:-}" ] || UVGET_BASE=$(realpath "$UVGET_BASE")
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-release}

if [ "${UVGET_CRAWL_INNER:-}" != 1 ]; then
  [ "$(id -u)" -eq 0 ] || { echo "crawl.sh needs root (unshare --net --mount)" >&2; exit 2; }
  if [ ! -x "$build/src/uvget" ] || [ ! -x "$build/tests/dns_test_server" ]; then
    echo "build first: meson setup $build --buildtype=release -Dtests=true &&" \
      "ninja -C $build src/uvget tests/dns_test_server" >&2
    exit 2
  fi
  "$root/scripts/deps" bench
  build=$(cd "$build" && pwd)
  export UVGET_CRAWL_INNER=1
  exec unshare --net --mount --propagation private bash "$0" "$build"
fi

# ---- inside the namespace from here on ----
hosts=${HOSTS:-2000}
conns=${CONNS:-64}
delays=${DELAY_MS:-0 30}
protos=${PROTO:-http https}
certs_mode=${CERTS:-wildcard}
tools=${TOOLS:-uvget curl wget2 aria2c}
runs=${RUNS:-3}
size=${SIZE:-19000}
extra=${EXTRA_UVGET:-}
limit=${TIMEOUT:-600}
uvget=$build/src/uvget
uvget_base=${UVGET_BASE:-}  # the uvget-base row: another build's binary, for a before/after
rev="$(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- src include 2>/dev/null || echo '+changes')"
case $certs_mode in wildcard | per-host) ;; *) echo "CERTS is wildcard or per-host" >&2; exit 2 ;; esac

ip link set lo up
ip addr add 192.0.2.1/32 dev lo  # TEST-NET-1: nothing is ever sent there
ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d /tmp/uvget-crawl.XXXXXX)
shm=$(mktemp -d /dev/shm/uvget-crawl.XXXXXX)
chmod 755 "$work"
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
dns_pid=""
cleanup() {
  stop_dns_server >/dev/null
  stop_nginx
  rm -rf "$work" "$shm"
}
trap cleanup EXIT

# Name resolution of our own, seen by this namespace only (the mount namespace is private).
printf 'nameserver 127.0.0.1\n' > "$work/resolv.conf"
printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' > "$work/hosts"
mount --bind "$work/resolv.conf" /etc/resolv.conf
mount --bind "$work/hosts" /etc/hosts
mkdir -p "$work/home"  # HOME for every tool: no ~/.curlrc, ~/.wget2rc, ~/.aria2 of anybody's

mkdir -p "$work/www"
head -c "$size" /dev/urandom > "$work/www/page.html"
src_sum=$(sha256sum < "$work/www/page.html" | cut -d' ' -f1)

# Certificates: one test CA; a wildcard leaf for *.crawl.test, or one leaf per host chosen by SNI.
make_wildcard_certs() {  # $1 directory: ca.crt, ca.key, leaf.crt, leaf.key
  local d=$1
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/ca.key" \
    -out "$d/ca.crt" -days 2 -subj "/CN=crawl bench CA" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/leaf.key" \
    -out "$d/leaf.csr" -subj "/CN=*.crawl.test" 2>/dev/null
  printf 'subjectAltName=DNS:*.crawl.test\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
    > "$d/ext"
  openssl x509 -req -in "$d/leaf.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -set_serial 2 \
    -out "$d/leaf.crt" -days 2 -extfile "$d/ext" 2>/dev/null
}
make_host_certs() {  # $1 directory, $2 hosts: ca.{crt,key}, leaf.key, certs/hN.crawl.test.crt
  local d=$1 n=$2
  if [ -f "$d/done" ] && openssl x509 -checkend 86400 -noout -in "$d/ca.crt" >/dev/null 2>&1; then
    return 0
  fi
  echo "making $n leaf certificates in $d (kept for the next run)" >&2
  rm -rf "$d"
  mkdir -p "$d/certs"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/ca.key" \
    -out "$d/ca.crt" -days 30 -subj "/CN=crawl bench CA" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/leaf.key" \
    -out "$d/leaf.csr" -subj "/CN=crawl.test" 2>/dev/null
  # shellcheck disable=SC2016
  seq 0 $((n - 1)) | xargs -P "$(nproc)" -n 100 bash -c 'd=$0
    for i in "$@"; do
      openssl x509 -req -in "$d/leaf.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -set_serial $((i + 2)) \
        -days 30 -out "$d/certs/h$i.crawl.test.crt" 2>/dev/null -extfile <(printf "%s\n" \
        "subjectAltName=DNS:h$i.crawl.test" basicConstraints=CA:FALSE extendedKeyUsage=serverAuth)
    done' "$d"
  [ "$(find "$d/certs" -name '*.crt' | wc -l)" -eq "$n" ] || { echo "certificates missing in $d" >&2; exit 1; }
  touch "$d/done"
}
if [ "$certs_mode" = per-host ] && [[ " $protos " == *" https "* ]]; then
  cdir=${CRAWL_CERTS:-$build/crawl-certs}/$hosts
  make_host_certs "$cdir" "$hosts"
  ca=$cdir/ca.crt
  tls_certs="ssl_certificate $cdir/certs/\$ssl_server_name.crt; ssl_certificate_key $cdir/leaf.key;"
else
  make_wildcard_certs "$work"
  ca=$work/ca.crt
  tls_certs="ssl_certificate $work/leaf.crt; ssl_certificate_key $work/leaf.key;"
fi

# nginx on core 0, every 127.x.y.z: room for every host's idle connection if need be, but within
# the descriptor limit here (lib.sh asks for 2 x NGINX_CONNS + 64; the hard limit cannot be
# raised). nginx closes idle keep-alive connections when it runs short, so CONNS is what matters.
fd_hard=$(ulimit -Hn)
want_conns=$((hosts + 2 * conns + 256))
[ "$want_conns" -lt 4096 ] && want_conns=4096
[ "$want_conns" -gt $(((fd_hard - 64) / 2)) ] && want_conns=$(((fd_hard - 64) / 2))
export NGINX_CONNS=${NGINX_CONNS:-$want_conns}
start_nginx "listen 0.0.0.0:80 default_server backlog=4096; server_name _;" \
  "listen 0.0.0.0:443 ssl default_server backlog=4096; server_name _; $tls_certs
   ssl_session_tickets on; ssl_session_cache shared:crawl:10m;"
curl -sf -o /dev/null http://127.0.0.1/page.html || { echo "nginx does not serve: $(cat "$work/error.log")" >&2; exit 1; }

for proto in $protos; do
  awk -v n="$hosts" -v p="$proto" 'BEGIN { for (i = 0; i < n; i++) print p "://h" i ".crawl.test/page.html" }' \
    > "$work/urls-$proto.txt"
  awk -v d="$shm/out" '{ print "url = " $0; print "output = " d "/" NR }' "$work/urls-$proto.txt" \
    > "$work/curl-$proto.cfg"
  awk '{ print "url = " $0; print "output = /dev/null" }' "$work/urls-$proto.txt" > "$work/curl-null-$proto.cfg"
  awk '{ print; print "  out=" NR }' "$work/urls-$proto.txt" > "$work/aria2c-$proto.txt"
done

client_pin=(taskset -c 1)
uvget_pin=("${client_pin[@]}")
[[ " $extra " == *" --loops"* ]] && uvget_pin=()

# shellcheck disable=SC2206  # $extra: uvget's extra flags, split on purpose
command_for() {  # $1 tool, $2 proto: sets cmd (the tool's command line, output into $shm/out)
  local out=$shm/out urls=$work/urls-$2.txt
  case $1 in
    uvget) cmd=("$uvget" -q -j "$conns" --cacert "$ca" -d "$out" -i "$urls" $extra) ;;
    uvget-base) cmd=("$uvget_base" -q -j "$conns" --cacert "$ca" -d "$out" -i "$urls" $extra) ;;
    # Not defaults: bodies discarded, so no names to find (checked by the tool's own count).
    uvget-discard) cmd=("$uvget" --progress none --discard -j "$conns" --cacert "$ca" -i "$urls" $extra) ;;
    curl-discard) cmd=(curl -s --parallel --parallel-max "$conns" --cacert "$ca" -K "$work/curl-null-$2.cfg"
                       -w '%{size_download}\n') ;;
    curl) cmd=(curl -s --parallel --parallel-max "$conns" --cacert "$ca" -K "$work/curl-$2.cfg") ;;
    wget2) cmd=(wget2 -q --max-threads="$conns" --no-robots --ca-certificate="$ca" -P "$out" -i "$urls") ;;
    # Its own renaming races (concurrent downloads of page.html all pick page.1.html): so, like
    # curl, it is given a name per URL (" out=N" under each URL of its input file).
    aria2c) cmd=(aria2c -q -j "$conns" -x1 --ca-certificate="$ca" -d "$out" -i "$work/aria2c-$2.txt"
                 --async-dns=true --allow-overwrite=true --auto-file-renaming=false) ;;
    *) echo "unknown tool $1" >&2; exit 2 ;;
  esac
}

verify() {  # $1 tool: prints "" when $shm/out holds HOSTS files identical to the source, else what is wrong
  local n wrong
  if [ "$1" = uvget-discard ]; then  # no files: what uvget counted
    grep -q "^uvget: $hosts files ok, 0 failed, $((hosts * size)) bytes" "$work/err" ||
      echo "uvget counted: $(grep '^uvget: ' "$work/err" | tail -1)"
    return
  fi
  if [ "$1" = curl-discard ]; then  # what curl counted (-w)
    read -r n wrong < <(awk -v s="$size" '{ n++; if ($1 != s) w++ } END { print n + 0, w + 0 }' "$work/out")
    [ "$n" -eq "$hosts" ] && [ "$wrong" -eq 0 ] || echo "curl counted $n files, $wrong not $size bytes"
    return
  fi
  n=$(find "$shm/out" -type f | wc -l)
  wrong=$(find "$shm/out" -type f -print0 | xargs -0 -r -n 4000 sha256sum | awk -v h="$src_sum" '$1 != h' | wc -l)
  if [ "$n" -ne "$hosts" ] || [ "$wrong" -ne 0 ]; then
    echo "$n files, $wrong not identical to the source"
  fi
}

dns_start() { start_dns_server "$build" --bind 127.0.0.1 --port 53 --zone crawl.test --delay-ms "$1" --ttl 300; }

declare -A rates cpus rsss fails dnsq verbose_line
notes=()
for proto in $protos; do
  for delay in $delays; do
    for r in $(seq 1 "$runs"); do
      for tool in $tools; do  # interleaved: drift on this shared machine spreads over every tool
        k="$proto $delay $tool"
        command_for "$tool" "$proto"
        pin=("${client_pin[@]}")
        [[ $tool == uvget* ]] && pin=("${uvget_pin[@]}")
        rm -rf "$shm/out"
        mkdir -p "$shm/out"
        dns_start "$delay"
        rc=0
        t0=$(date +%s%N)
        HOME=$work/home /usr/bin/time -f '%e %U %S %M' -o "$work/time" "${pin[@]}" timeout "$limit" "${cmd[@]}" \
          > "$work/out" 2> "$work/err" || rc=$?
        t1=$(date +%s%N)
        stop_dns_server > "$work/dns.line"  # not in $(...): wait needs the server as its child
        dnsq[$k]+="$(sed -nE 's/.*: ([0-9]+) answered, ([0-9]+) queries.*/\2/p' "$work/dns.line") "
        user=0 sys=0 kb=0
        read -r _ user sys kb < <(tail -1 "$work/time") || true
        bad=$(verify "$tool")
        if [ "$rc" -ne 0 ] || [ -n "$bad" ]; then
          why="exit $rc"
          [ "$rc" -eq 124 ] && why="timed out after $limit s"
          spent=$(awk -v ns=$((t1 - t0)) -v u="$user" -v s="$sys" -v kb="$kb" \
            'BEGIN { printf "%.1f s, CPU %.1f s, peak RSS %.1f MB", ns / 1e9, u + s, kb / 1024 }')
          notes+=("$tool ${proto^^} DNS $delay ms run $r: $why ($spent), ${bad:-all files right}; stderr: $(sed '/^$/d' "$work/err" | tail -2 | tr '\n' ' ' | cut -c1-300)")
          fails[$k]=$(( ${fails[$k]:-0} + 1 ))
          continue
        fi
        rates[$k]+="$(awk -v n="$hosts" -v ns=$((t1 - t0)) 'BEGIN { printf "%.1f", n * 1e9 / ns }') "
        cpus[$k]+="$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }') "
        rsss[$k]+="$(awk -v kb="$kb" 'BEGIN { printf "%.1f", kb / 1024 }') "
      done
    done
    if [[ " $tools " == *" uvget "* ]] && [ -z "${rates["$proto $delay uvget"]:-}" ]; then
      verbose_line["$proto $delay"]="(skipped: no timed run succeeded)"
    elif [[ " $tools " == *" uvget "* ]]; then  # once more, untimed, for -v's connection summary
      command_for uvget "$proto"
      rm -rf "$shm/out"
      mkdir -p "$shm/out"
      dns_start "$delay"
      "${uvget_pin[@]}" timeout "$limit" "${cmd[@]/#-q/-v}" --progress none > /dev/null 2> "$work/err" || true
      stop_dns_server > /dev/null
      verbose_line["$proto $delay"]=$(grep -E '^uvget: [0-9]+ (files ok|loops?),' "$work/err" | tr '\n' ' ')
    fi
  done
done

med() { tr ' ' '\n' | { grep . || true; } | median; }
mn() { tr ' ' '\n' | { grep . || true; } | sort -g | head -1; }
mx() { tr ' ' '\n' | { grep . || true; } | sort -g | tail -1; }
cell_rate() {  # $1 key
  local k=$1 v f=${fails[$1]:-0}
  v=${rates[$k]:-}
  if [ "$f" -gt 0 ]; then
    if [ -n "$v" ]; then printf 'FAILED %s/%s (ok runs: %s)' "$f" "$runs" "$(echo "$v" | med)"
    else printf 'FAILED %s/%s' "$f" "$runs"; fi
    return
  fi
  [ -n "$v" ] || { printf '–'; return; }
  printf '%s (%s–%s)' "$(echo "$v" | med)" "$(echo "$v" | mn)" "$(echo "$v" | mx)"
}
slashed() {  # $1 array name, $2 proto, $3 tool, $4 awk format of the median (x: the median)
  local -n arr=$1
  local d out="" v
  for d in $delays; do
    v=${arr["$2 $d $3"]:-}
    if [ -n "$v" ]; then out+="$(awk -v x="$(echo "$v" | med)" -v n="$hosts" "BEGIN { printf $4 }") / "
    else out+="– / "; fi
  done
  echo "${out% / }"
}

echo "Crawl (bench/crawl.sh), $(date '+%F %H:%M'), $(nproc) cores, uvget $rev (source when the run started)"
echo
echo "Command: \`HOSTS=$hosts CONNS=$conns DELAY_MS=\"$delays\" PROTO=\"$protos\" CERTS=$certs_mode TOOLS=\"$tools\" RUNS=$runs SIZE=$size EXTRA_UVGET=\"$extra\" bench/crawl.sh $build\`"
echo
echo "$hosts distinct hosts (h0..h$((hosts - 1)).crawl.test), one $size-byte /page.html each, $conns connections, into tmpfs;" \
  "DNS from dns_test_server on 127.0.0.1:53 (answer delay per column); nginx and the DNS server on core 0," \
  "clients on core 1$( [ ${#uvget_pin[@]} -eq 0 ] && echo ' (uvget not pinned: --loops)'); median of $runs (min–max); CPU = client user+sys."
echo "Tool command lines (PROTO = http or https; the CA is given for both):"
echo
for tool in $tools; do
  command_for "$tool" PROTO
  pin=("${client_pin[@]}")
  [[ $tool == uvget* ]] && pin=("${uvget_pin[@]}")
  echo "    ${pin[*]} ${cmd[*]}" | sed "s|$work|WORK|g; s|$shm|SHM|g; s|$build|BUILD|g; s|^    *|    |"
done
[ "$conns" -gt 300 ] && [[ " $tools " == *" curl "* ]] && echo && echo "Note: curl $(curl -V | awk 'NR==1 {print $2}') caps --parallel-max at 300."
for proto in $protos; do
  echo
  certs_desc="wildcard *.crawl.test certificate"
  [ "$certs_mode" = per-host ] && certs_desc="one certificate per host, chosen by SNI"
  if [ "$proto" = https ]; then echo "**HTTPS, $hosts hosts, $certs_desc (ECDSA P-256)**"; else echo "**HTTP, $hosts hosts**"; fi
  echo
  head="| tool |"
  sep="|---|"
  for d in $delays; do head+=" files/s, DNS $d ms |"; sep+="---|"; done
  dl=$(echo "$delays" | sed 's/ / \/ /g')
  head+=" CPU s ($dl ms) | CPU ms/file | peak RSS MB | ÷ curl files/s$([[ " $tools " != *" curl-discard "* ]] || echo ' (-discard rows: ÷ curl-discard)') |"
  sep+="---|---|---|---|"
  echo "$head"
  echo "$sep"
  for tool in $tools; do
    row="| $tool |"
    for d in $delays; do row+=" $(cell_rate "$proto $d $tool") |"; done
    row+=" $(slashed cpus "$proto" "$tool" '"%.2f", x') |"
    row+=" $(slashed cpus "$proto" "$tool" '"%.3f", x * 1000 / n') |"
    row+=" $(slashed rsss "$proto" "$tool" '"%.1f", x') |"
    ratio=""
    base=curl  # a row that discards is set against curl discarding, when that was run
    [[ $tool == *-discard ]] && [[ " $tools " == *" curl-discard "* ]] && base=curl-discard
    for d in $delays; do
      a=${rates["$proto $d $tool"]:-} b=${rates["$proto $d $base"]:-}
      if [ -n "$a" ] && [ -n "$b" ] && [ "${fails["$proto $d $tool"]:-0}" = 0 ] && [ "${fails["$proto $d $base"]:-0}" = 0 ]; then
        ratio+="$(awk -v a="$(echo "$a" | med)" -v b="$(echo "$b" | med)" 'BEGIN { printf "%.2f", a / b }') / "
      else ratio+="– / "; fi
    done
    echo "$row ${ratio% / } |"
  done
  echo
  echo "DNS queries the server received per run (median, min–max over runs):"
  echo
  echo "| tool |$(for d in $delays; do printf ' DNS %s ms |' "$d"; done)"
  echo "|---|$(for d in $delays; do printf -- '---|'; done)"
  for tool in $tools; do
    row="| $tool |"
    for d in $delays; do
      v=${dnsq["$proto $d $tool"]:-}
      if [ -n "$v" ]; then row+=" $(echo "$v" | med) ($(echo "$v" | mn)–$(echo "$v" | mx)) |"; else row+=" – |"; fi
    done
    echo "$row"
  done
  if [[ " $tools " == *" uvget "* ]]; then
    echo
    for d in $delays; do echo "- uvget -v, DNS $d ms: \`${verbose_line["$proto $d"]:-(no summary)}\`"; done
  fi
done
if [ ${#notes[@]} -gt 0 ]; then
  echo
  echo "Failed runs (not in the medians):"
  echo
  for n in "${notes[@]}"; do echo "- $n"; done
fi
