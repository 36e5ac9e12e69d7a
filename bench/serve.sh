#!/usr/bin/env bash
# Static-file serving: `acmetool serve` beside Caddy 2.6.2, nginx and h2o 2.2.5 (Debian) in one run.
# All four serve the same directory (1 KiB and 10 MiB files) with ONE certificate for localhost
# issued by acmetool's local CA, bound to 127.0.0.1, over HTTPS and plain HTTP, with one worker
# (thread or process) per core and no access log. Each server is started, measured and stopped
# (by its recorded PID) before the next one starts. Prints a table and acmetool's ratios.
#
#   bench/serve.sh [SECONDS]     (default 8 s per load run; needs scripts/bootstrap --bench)
#
# Per server: h1 keep-alive 1 KiB over HTTPS and over plain HTTP (wrk -t1 -c64: req/s, p99, server
# CPU µs/req), h2 1 KiB (h2load -c16 -m10), full handshakes (wrk -c16, Connection: close), 10 MiB
# (wrk -t1 -c8: MB/s), RSS of the server's process group right after the load and 6 s later,
# exec -> first HTTPS 200 (best of 3).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-8}
scripts/bootstrap --bench >/dev/null
tck=$(getconf CLK_TCK)
. bench/lib/load.sh
release_acmetool

tmp=$(mktemp -d)
live="" # PID of the one server running now (only ever one at a time)
cleanup() {
  if [[ -n $live ]]; then
    kill "$live" 2>/dev/null || true
    sleep 0.3
    kill -9 "$live" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# ---- shared content and certificate ----
www=$tmp/www
mkdir -p "$www"
chmod 755 "$tmp" "$www" # nginx workers run as nobody
head -c 1024 /dev/urandom >"$www/1k.bin"
head -c $((10 * 1024 * 1024)) /dev/urandom >"$www/10m.bin"
"$acmetool" -q --storage "$tmp/st" ca init >/dev/null
"$acmetool" -q --storage "$tmp/st" ca issue localhost --out "$tmp/cert" >/dev/null
cert=$tmp/cert/localhost.crt # leaf + chain
key=$tmp/cert/localhost.key

http_port=18080
https_port=18443

# ---- per-server configuration and start (each prints nothing; sets $pid) ----
# setsid: each server leads its own process group, so master + workers can be summed by pgrp.
conf_acmetool() {
  cat >"$tmp/acmetool.Caddyfile" <<EOF
{
	http_port $http_port
	https_port $https_port
}

localhost {
	bind 127.0.0.1
	tls $cert $key
	root * $www
	file_server
}

# Plain HTTP for the requests wrk sends to 127.0.0.1 (those for localhost redirect to HTTPS).
http://127.0.0.1:$http_port {
	bind 127.0.0.1
	root * $www
	file_server
}
EOF
}
start_acmetool() {
  setsid "$acmetool" -q --storage "$tmp/st" serve -c "$tmp/acmetool.Caddyfile" \
    >>"$tmp/acmetool.log" 2>&1 &
  pid=$!
}

conf_caddy() {
  {
    caddy_globals
    cat <<EOF

localhost:$https_port {
	bind 127.0.0.1
	tls $cert $key
	root * $www
	file_server
}

http://:$http_port {
	bind 127.0.0.1
	root * $www
	file_server
}
EOF
  } >"$tmp/caddy.Caddyfile"
}

conf_nginx() {
  mkdir -p "$tmp/nginx/logs"
  cat >"$tmp/nginx/nginx.conf" <<EOF
$(nginx_conf_head "$tmp/nginx" auto 1024)
	default_type application/octet-stream;
	sendfile on;
	tcp_nopush on;
	server {
		listen 127.0.0.1:$https_port ssl http2;
		server_name localhost;
		ssl_certificate $cert;
		ssl_certificate_key $key;
		ssl_protocols TLSv1.2 TLSv1.3;
		root $www;
	}
	server {
		listen 127.0.0.1:$http_port;
		root $www;
	}
}
EOF
}
start_nginx() {
  setsid nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/logs/error.log" \
    >>"$tmp/nginx.log" 2>&1 &
  pid=$!
}

# h2o: HTTP/2 through ALPN, HTTP/1.1 keep-alive and no access log are its defaults. It starts as
# root and handles requests as nobody (the files are world-readable). No OCSP updater (it would
# fetch from the certificate's responder). Unlike the others, 2.2 always signs handshakes in a
# separate process (neverbleed; the directive to turn it off came in 2.3). That process and the
# crash handler (perl) are in its process group, so they count in the CPU and RSS rows.
conf_h2o() {
  mkdir -p "$tmp/h2o"
  cat >"$tmp/h2o/h2o.conf" <<EOF
num-threads: $(nproc)
listen:
  host: 127.0.0.1
  port: $https_port
  ssl:
    certificate-file: $cert
    key-file: $key
    minimum-version: TLSv1.2
    ocsp-update-interval: 0
listen:
  host: 127.0.0.1
  port: $http_port
hosts:
  "localhost":
    paths:
      /:
        file.dir: $www
EOF
}
start_h2o() {
  setsid h2o -c "$tmp/h2o/h2o.conf" >>"$tmp/h2o.log" 2>&1 &
  pid=$!
}

url() { echo "https://localhost:$https_port/$1"; }
http_url() { echo "http://127.0.0.1:$http_port/$1"; }

# Poll for the first HTTPS 200, bounded to 10 s; echoes ms since $1 (ns timestamp), or fails.
# First a tight connect loop with bash's /dev/tcp (no process to start, so no 10 ms steps
# between attempts), then curl, whose own start-up is the same for every server.
wait_200() {
  local t0=$1 i
  for ((i = 0; i < 20000; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$https_port") 2>/dev/null && break
  done
  for ((i = 0; i < 2000; i++)); do
    if [[ $(curl -sk --max-time 1 -o /dev/null -w '%{http_code}' "$(url 1k.bin)" 2>/dev/null) == 200 ]]; then
      echo $((($(date +%s%N) - t0) / 1000))
      return 0
    fi
    sleep 0.005
  done
  return 1
}

# ---- measurements (results go to the associative array R[server.metric]) ----
declare -A R

measure_startup() { # SERVER: exec -> first HTTPS 200, best of 3
  local s=$1 best="" ms i
  for ((i = 0; i < 3; i++)); do
    local t0
    t0=$(date +%s%N)
    "start_$s"
    live=$pid
    ms=$(wait_200 "$t0") || { echo "$s did not answer 200 within 10 s" >&2; tail -5 "$tmp/$s.log" >&2; exit 1; }
    stop_server "$pid"
    [[ -z $best || $ms -lt $best ]] && best=$ms
  done
  R[$s.start]=$(awk -v u="$best" 'BEGIN { printf "%.1f", u / 1000 }')
}

measure_keepalive() { # SERVER KEY URL: keep-alive 1 KiB, server CPU per request -> KEY, KEY_p99, KEY_cpu
  local s=$1 k=$2 u=$3 c0 c1 out rps n code
  code=$(curl -sk --max-time 5 -o /dev/null -w '%{http_code}' "$u" || true)
  [[ $code == 200 ]] || { echo "$s $k: $u answered $code, not 200" >&2; exit 1; }
  wrk -t1 -c64 -d2s "$u" >/dev/null 2>&1 || true # warm-up
  c0=$(pg_cpu_ticks "$pid")
  out=$(timeout $((secs + 20)) wrk -t1 -c64 -d"${secs}s" --latency "$u")
  c1=$(pg_cpu_ticks "$pid")
  rps=$(wrk_rps <<<"$out")
  R[$s.$k]=$(awk -v r="$rps" 'BEGIN { printf "%.0f", r }')
  R[$s.${k}_p99]=$(wrk_p99_ms <<<"$out")
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  R[$s.${k}_cpu]=$(awk -v d=$((c1 - c0)) -v t="$tck" -v n="$n" 'BEGIN { printf "%.1f", d / t * 1e6 / n }')
  grep -q 'Non-2xx\|Socket errors' <<<"$out" && echo "  $s $k: $(grep 'Non-2xx\|Socket errors' <<<"$out")" >&2
  return 0
}

measure_hs() { # one full TLS handshake per request
  local s=$1 out c0 c1
  c0=$(pg_cpu_ticks "$pid")
  out=$(timeout $((secs + 20)) wrk -t1 -c16 -d"${secs}s" -H 'Connection: close' "$(url 1k.bin)")
  c1=$(pg_cpu_ticks "$pid")
  R[$s.hs]=$(wrk_rps <<<"$out" | awk '{ printf "%.0f", $1 }')
  R[$s.hs_cpu]=$(cpu_per "$c0" "$c1" "$(awk '/requests in/ { print $1 }' <<<"$out")")
  grep -q 'Non-2xx' <<<"$out" && echo "  $s hs: $(grep 'Non-2xx' <<<"$out")" >&2
  return 0
}

measure_big() {
  local s=$1 out
  out=$(timeout $((secs + 20)) wrk -t1 -c8 -d"${secs}s" "$(url 10m.bin)")
  R[$s.big]=$(wrk_mbs <<<"$out")
  return 0
}

run_server() {
  local s=$1
  echo "-- $s" >&2
  "conf_$s"
  measure_startup "$s"
  "start_$s"
  live=$pid
  wait_200 "$(date +%s%N)" >/dev/null || { echo "$s did not start" >&2; exit 1; }
  measure_keepalive "$s" h1 "$(url 1k.bin)"
  measure_keepalive "$s" http "$(http_url 1k.bin)"
  measure_h2 "$s" "$(url 1k.bin)"
  measure_hs "$s"
  measure_big "$s"
  R[$s.rss]=$(awk -v k="$(pg_rss_kib "$pid")" 'BEGIN { printf "%.1f", k / 1024 }')
  sleep 6 # then at rest: what the server keeps once the load is gone
  R[$s.rss_rest]=$(awk -v k="$(pg_rss_kib "$pid")" 'BEGIN { printf "%.1f", k / 1024 }')
  stop_server "$pid"
}

echo "load: $(uptime | sed 's/.*load average/load average/')" >&2
for s in acmetool caddy nginx h2o; do run_server "$s"; done
echo "load: $(uptime | sed 's/.*load average/load average/')" >&2

# ---- table ----
row() { # LABEL KEY: the four servers' values, then acmetool's ratio to each anchor
  local label=$1 k=$2
  awk -v l="$label" -v a="${R[acmetool.$k]}" -v c="${R[caddy.$k]}" -v n="${R[nginx.$k]}" -v h="${R[h2o.$k]}" \
    'BEGIN { printf "| %s | %s | %s | %s | %s | %.2f | %.2f | %.2f |\n", l, a, c, n, h,
             (n ? a / n : 0), (c ? a / c : 0), (h ? a / h : 0) }'
}
echo "serve, $(date -u +%F), $(nproc) cores, ${secs} s per load run, one run"
echo
echo "| measure | acmetool | caddy | nginx | h2o | acmetool/nginx | acmetool/caddy | acmetool/h2o |"
echo "|---|---|---|---|---|---|---|---|"
row "h1 keep-alive 1 KiB, wrk -c64: req/s" h1
row "h1 keep-alive 1 KiB: p99 ms" h1_p99
row "h1 keep-alive 1 KiB: server CPU µs/req" h1_cpu
row "plain HTTP keep-alive 1 KiB, wrk -c64: req/s" http
row "plain HTTP keep-alive 1 KiB: p99 ms" http_p99
row "plain HTTP keep-alive 1 KiB: server CPU µs/req" http_cpu
row "h2 1 KiB, h2load -c16 -m10: req/s" h2
row "h2 1 KiB: server CPU µs/req" h2_cpu
row "full handshakes, wrk -c16 Connection: close: /s" hs
row "full handshakes: server CPU µs/handshake" hs_cpu
row "10 MiB file, wrk -c8: MB/s" big
row "RSS right after load: MiB (process group)" rss
row "RSS 6 s after load: MiB (process group)" rss_rest
row "exec -> first HTTPS 200: ms (best of 3)" start
