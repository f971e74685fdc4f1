# Shared by the bench scripts (sourced, not run): a free loopback port, a CA and a leaf
# certificate for 127.0.0.1 made at run time, nginx on core 0 with its own configuration, medians.
# Expects $work (a temporary directory, mode 755) and $work/www (the files to serve).
# Also the chart helpers: workload names and draw_chart (gnuplot, bench/chart.gp).
bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

make_certs() {  # $work/ca.crt, $work/leaf.{crt,key}; every client is given the CA
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/ca.key" \
    -out "$work/ca.crt" -days 2 -subj "/CN=bench CA" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/leaf.key" \
    -out "$work/leaf.csr" -subj "/CN=127.0.0.1" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
    > "$work/ext"
  openssl x509 -req -in "$work/leaf.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" \
    -CAcreateserial -out "$work/leaf.crt" -days 2 -extfile "$work/ext" 2>/dev/null
}

tls_listen() {  # $1 port: an nginx listen line with TLS and session tickets
  echo "listen 127.0.0.1:$1 ssl; ssl_certificate $work/leaf.crt; ssl_certificate_key $work/leaf.key;
        ssl_session_tickets on; ssl_session_cache shared:bench:1m;"
}

start_nginx() {  # $@: listen lines, one server block each, all serving $work/www
  # env NGINX_CONNS: worker_connections (default 4096); NGINX_PIN: the taskset prefix;
  # NGINX_HTTP_EXTRA: more directives for the http block
  local servers="" l
  for l in "$@"; do servers+="  server { $l root $work/www; }"$'\n'; done
  cat > "$work/nginx.conf" <<CONF
daemon on; worker_processes 1; pid $work/nginx.pid; error_log $work/error.log ${NGINX_LOG_LEVEL:-error};
$( [ "$(id -u)" -eq 0 ] && echo "user root;" )
worker_rlimit_nofile $(( ${NGINX_CONNS:-4096} * 2 + 64 ));
events { worker_connections ${NGINX_CONNS:-4096}; ${NGINX_EVENTS:-} }
http {
  access_log off; sendfile on; keepalive_requests 1000000; keepalive_timeout 60;
  client_body_temp_path $work/t1; proxy_temp_path $work/t2; fastcgi_temp_path $work/t3;
  uwsgi_temp_path $work/t4; scgi_temp_path $work/t5; default_type application/octet-stream;
  ${NGINX_HTTP_EXTRA:-}
$servers}
CONF
  ${NGINX_PIN-taskset -c 0} nginx -p "$work" -c "$work/nginx.conf" -e "$work/error.log"
  sleep 0.3
}

stop_nginx() {
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null
  sleep 0.2
}

# nginx serving $1 hard links to one $2-byte file as /f1../fN over $3 (http or https); sets
# $port and writes the URLs to $work/urls.txt.
serve_files() {
  mkdir -p "$work/www"
  head -c "$2" /dev/urandom > "$work/www/seed"
  for i in $(seq 1 "$1"); do ln "$work/www/seed" "$work/www/f$i"; done
  port=$(free_port)
  make_certs
  local listen="listen 127.0.0.1:$port;"
  [ "$3" = https ] && listen=$(tls_listen "$port")
  start_nginx "$listen"
  for i in $(seq 1 "$1"); do echo "$3://127.0.0.1:$port/f$i"; done > "$work/urls.txt"
}

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)] }'; }

need_soak_build() {  # exits unless $uvget and $server_bin (the soak_server) are built in $build
  [ -x "$uvget" ] && [ -x "$server_bin" ] && return 0
  echo "build first: meson setup $build --buildtype=release -Dtests=true &&" \
    "ninja -C $build src/uvget tests/soak_server" >&2
  exit 2
}

human_size() {  # $1 bytes: 4KiB, 1MiB, 1GiB when exact, else the bytes with B
  local n=$1 unit
  for unit in GiB:1073741824 MiB:1048576 KiB:1024; do
    if [ "$n" -ge "${unit#*:}" ] && [ $((n % ${unit#*:})) -eq 0 ]; then
      echo "$((n / ${unit#*:}))${unit%%:*}"
      return
    fi
  done
  echo "${n}B"
}

workload_name() {  # $1 files, $2 size, $3 proto, $4 conns: S-http-64, M-https-64, 500x4KiB-http-64
  local w
  case "$1x$2" in
    10000x4096) w=S ;;
    200x1048576) w=M ;;
    1x1073741824) w=L ;;
    *) w="$1x$(human_size "$2")" ;;
  esac
  echo "$w-$3-$4"
}

# $1 data file (per line: tool files/s min max MB/s min max), $2 the SVG to write, $3 the title,
# $4 and $5 the files/s and MB/s ceilings drawn as dashed lines (0 or absent: none).
draw_chart() {
  gnuplot -e "datafile='$1'; outfile='$2'; ttl='$3'; ceiling=${4:-0}; ceiling_mbs=${5:-0}" \
    "$bench_dir/chart.gp"
}

# The project's DNS server (tests/dns_test_server, built with -Dtests=true) in the background on
# core 0 (env DNS_PIN: the taskset prefix). $1 the build directory, then its options, e.g.
# --bind 127.0.0.1 --port 53 --zone crawl.test --delay-ms 30 --ttl 300. Waits for its "ready PORT"
# line and sets $dns_pid and $dns_port; stop_dns_server prints its "N answered, M queries" line.
start_dns_server() {
  local b=$1 i
  shift
  : > "$work/dns.out"
  ${DNS_PIN-taskset -c 0} "$b/tests/dns_test_server" "$@" > "$work/dns.out" 2> "$work/dns.err" &
  dns_pid=$!
  for i in $(seq 1 100); do
    grep -q '^ready ' "$work/dns.out" && break
    kill -0 "$dns_pid" 2>/dev/null || { echo "dns_test_server died: $(cat "$work/dns.err")" >&2; return 1; }
    sleep 0.05
  done
  dns_port=$(awk '/^ready / {print $2}' "$work/dns.out")
  [ -n "$dns_port" ] || { echo "dns_test_server not ready" >&2; return 1; }
}

stop_dns_server() {  # prints e.g. "dns_test_server: 4000 answered, 4000 queries"
  [ -n "${dns_pid:-}" ] || return 0
  kill -TERM "$dns_pid" 2>/dev/null || true
  wait "$dns_pid" 2>/dev/null || true
  dns_pid=""
  grep '^dns_test_server:' "$work/dns.err" || true
}

# The project's fault-injecting server (tests/support/soak_server_main.cpp, built with
# -Dtests=true) on core 0. start_soak NAME OPTIONS...: sets $port; its output goes to
# $work/soak-NAME.{out,err}. stop_soak NAME: stops it and prints its counts line (call it
# outside $(...): wait needs the server as a child of this shell).
declare -A soak_pids
start_soak() {
  local name=$1 p=""
  shift
  taskset -c 0 "$build/tests/soak_server" "$@" > "$work/soak-$name.out" 2> "$work/soak-$name.err" &
  soak_pids[$name]=$!
  for _ in $(seq 1 100); do
    p=$(sed -n 's/^ready //p' "$work/soak-$name.out")
    [ -n "$p" ] && { port=$p; return 0; }
    sleep 0.05
  done
  echo "soak_server did not start: $(cat "$work/soak-$name.err")" >&2
  exit 1
}
stop_soak() {
  local pid=${soak_pids[$1]:-}
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "soak_pids[$1]"
  cat "$work/soak-$1.err"
}
stop_all_soak() {
  local name
  for name in "${!soak_pids[@]}"; do stop_soak "$name" > /dev/null; done
}
