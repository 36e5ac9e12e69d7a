#!/usr/bin/env bash
# Reverse proxy: `acmetool serve` with reverse_proxy beside Caddy 2.6.2 and nginx (Debian) in one
# run, all three proxying to the SAME upstream: an nginx (one worker) serving a 1 KiB file over
# plain HTTP/1.1 on 127.0.0.1, kept running for the whole run. Each proxy keeps upstream
# connections alive, has no access log and uses one worker (thread or process) per core; each is
# stopped by its recorded PID at the end.
#
#   bench/proxy.sh [SECONDS] [ROUNDS]   (defaults 8 s per load run, 3 rounds; needs
#                                        scripts/bootstrap --bench)
#
# acmetool is the profile-guided Release build (scripts/build-pgo, rebuilt when a source file is
# newer), as a packager would build it; ACMETOOL_BUILD=plain measures the plain Release build.
# Caddy and nginx are Debian's builds.
#
# Per proxy: plain HTTP keep-alive (wrk -t1 -c64: req/s, p99, proxy CPU µs/req), HTTPS h1
# keep-alive (the same), h2 (h2load -c16 -m10: req/s, CPU µs/req), RSS after the load. The
# upstream's own CPU is not counted. Target (issue 9): ≥ nginx in req/s, ≤ its CPU per request.
#
# On a small VM one load run's CPU per request varies by ±10-20 % from one minute to the next, for
# any of the three. So the three run side by side, each on ports of its own (idle while another
# is measured), and take turns: ROUNDS rounds, each measuring plain HTTP with every proxy, then
# HTTPS, then h2, acmetool and nginx one right after the other (which of them first alternates),
# then Caddy. The table shows each figure's median over the rounds; below it, acmetool/nginx for
# each round on its own.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-8}
rounds=${2:-3}
scripts/bootstrap --bench >/dev/null
tck=$(getconf CLK_TCK)
. bench/lib/load.sh
build_kind=${ACMETOOL_BUILD:-pgo} # see the top
if [[ $build_kind == plain ]]; then release_acmetool; else release_acmetool pgo; fi

tmp=$(mktemp -d)
live="" upstream_pid=""
cleanup() {
  for p in $live $upstream_pid; do
    kill "$p" 2>/dev/null || true
    sleep 0.3
    kill -9 "$p" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

www=$tmp/www
mkdir -p "$www"
chmod 755 "$tmp" "$www" # nginx workers run as nobody
head -c 1024 /dev/urandom >"$www/1k.bin"
"$acmetool" -q --storage "$tmp/st" ca init >/dev/null
"$acmetool" -q --storage "$tmp/st" ca issue localhost --out "$tmp/cert" >/dev/null
cert=$tmp/cert/localhost.crt
key=$tmp/cert/localhost.key
upstream=127.0.0.1:18090
declare -A HTTP_PORT=([acmetool]=18080 [nginx]=18081 [caddy]=18082)
declare -A HTTPS_PORT=([acmetool]=18443 [nginx]=18444 [caddy]=18445)
use_ports() { http_port=${HTTP_PORT[$1]} https_port=${HTTPS_PORT[$1]}; } # PROXY

# ---- the upstream ----
mkdir -p "$tmp/upstream/logs"
cat >"$tmp/upstream/nginx.conf" <<EOF
$(nginx_conf_head "$tmp/upstream" 1 4096)
	server {
		listen $upstream;
		root $www;
	}
}
EOF
setsid nginx -p "$tmp/upstream" -c "$tmp/upstream/nginx.conf" >>"$tmp/upstream.log" 2>&1 &
upstream_pid=$!

# ---- the proxies (each sets $pid) ----
conf_acmetool() {
  cat >"$tmp/acmetool.Caddyfile" <<EOF
{
	http_port $http_port
	https_port $https_port
}

localhost {
	bind 127.0.0.1
	tls $cert $key
	reverse_proxy $upstream
}

http://127.0.0.1:$http_port {
	bind 127.0.0.1
	reverse_proxy $upstream
}
EOF
}
start_acmetool() {
  setsid "$acmetool" -q --storage "$tmp/st" serve -c "$tmp/acmetool.Caddyfile" >>"$tmp/acmetool.log" 2>&1 &
  pid=$!
}

conf_caddy() {
  {
    caddy_globals
    cat <<EOF

localhost:$https_port {
	bind 127.0.0.1
	tls $cert $key
	reverse_proxy $upstream
}

http://:$http_port {
	bind 127.0.0.1
	reverse_proxy $upstream
}
EOF
  } >"$tmp/caddy.Caddyfile"
}

# nginx as the usual reverse proxy: HTTP/1.1 to the upstream with a keep-alive pool, sending
# what Caddy's and acmetool's reverse_proxy send by default: the client's Host, and
# X-Forwarded-For (the client's address; no trusted proxies), -Proto and -Host. (Without these
# lines nginx sends "Host: app" and nothing else, which cost it about 10 % less CPU here.)
conf_nginx() {
  local forwarded='proxy_http_version 1.1; proxy_set_header Connection "";
			proxy_set_header Host $http_host; proxy_set_header X-Forwarded-For $remote_addr;
			proxy_set_header X-Forwarded-Proto $scheme; proxy_set_header X-Forwarded-Host $http_host;'
  mkdir -p "$tmp/nginx/logs"
  cat >"$tmp/nginx/nginx.conf" <<EOF
$(nginx_conf_head "$tmp/nginx" auto 4096)
	upstream app {
		server $upstream;
		keepalive 64;
	}
	server {
		listen 127.0.0.1:$https_port ssl http2;
		server_name localhost;
		ssl_certificate $cert;
		ssl_certificate_key $key;
		ssl_protocols TLSv1.2 TLSv1.3;
		location / { proxy_pass http://app; $forwarded }
	}
	server {
		listen 127.0.0.1:$http_port;
		location / { proxy_pass http://app; $forwarded }
	}
}
EOF
}
start_nginx() {
  setsid nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" >>"$tmp/nginx.log" 2>&1 &
  pid=$!
}


url() { echo "https://localhost:$https_port/1k.bin"; }
http_url() { echo "http://127.0.0.1:$http_port/1k.bin"; }

wait_200() { # URL, bounded to 10 s
  local i
  for ((i = 0; i < 200; i++)); do
    [[ $(curl -sk --max-time 1 -o /dev/null -w '%{http_code}' "$1" 2>/dev/null) == 200 ]] && return 0
    sleep 0.05
  done
  return 1
}

declare -A R
measure_keepalive() { # PROXY KEY URL
  local s=$1 k=$2 u=$3 c0 c1 out n
  cmp -s <(curl -sk --max-time 5 "$u") "$www/1k.bin" || { echo "$s $k: $u did not relay the file" >&2; exit 1; }
  wrk -t1 -c64 -d2s "$u" >/dev/null 2>&1 || true # warm-up
  c0=$(pg_cpu_ticks "$pid")
  out=$(timeout $((secs + 20)) wrk -t1 -c64 -d"${secs}s" --latency "$u")
  c1=$(pg_cpu_ticks "$pid")
  R[$s.$k.$round]=$(wrk_rps <<<"$out" | awk '{ printf "%.0f", $1 }')
  R[$s.${k}_p99.$round]=$(wrk_p99_ms <<<"$out")
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  R[$s.${k}_cpu.$round]=$(cpu_per "$c0" "$c1" "$n")
  grep -q 'Non-2xx\|Socket errors' <<<"$out" && echo "  $s $k: $(grep 'Non-2xx\|Socket errors' <<<"$out")" >&2
  return 0
}
declare -A PID
start_proxy() { # PROXY: configured, started, answering
  local s=$1
  use_ports "$s"
  "conf_$s"
  "start_$s"
  PID[$s]=$pid
  live+=" $pid"
  wait_200 "$(http_url)" || { echo "$s did not start" >&2; tail -5 "$tmp/$s.log" >&2; exit 1; }
}
measure() { # PROXY KEY
  local s=$1
  use_ports "$s"
  pid=${PID[$s]}
  case $2 in
  http) measure_keepalive "$s" http "$(http_url)" ;;
  h1) measure_keepalive "$s" h1 "$(url)" ;;
  h2) measure_h2 "$s" "$(url)" ;;
  esac
}

wait_200 "http://$upstream/1k.bin" || { echo "the upstream did not start" >&2; exit 1; }
for s in acmetool nginx caddy; do start_proxy "$s"; done
echo "load: $(uptime | sed 's/.*load average/load average/')" >&2
for ((round = 1; round <= rounds; round++)); do
  echo "-- round $round" >&2
  order=(acmetool nginx caddy)
  ((round % 2)) || order=(nginx acmetool caddy)
  for k in http h1 h2; do
    for s in "${order[@]}"; do measure "$s" "$k"; done
  done
  for s in acmetool nginx caddy; do
    R[$s.rss.$round]=$(awk -v k="$(pg_rss_kib "${PID[$s]}")" 'BEGIN { printf "%.1f", k / 1024 }')
  done
done
echo "load: $(uptime | sed 's/.*load average/load average/')" >&2
for s in acmetool nginx caddy; do
  use_ports "$s"
  stop_server "${PID[$s]}"
done

median() { # PROXY KEY: the median over the rounds
  local r
  for ((r = 1; r <= rounds; r++)); do echo "${R[$1.$2.$r]}"; done |
    sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
row() { # LABEL KEY
  awk -v l="$1" -v a="$(median acmetool "$2")" -v c="$(median caddy "$2")" -v n="$(median nginx "$2")" \
    'BEGIN { printf "| %s | %s | %s | %s | %.2f | %.2f |\n", l, a, c, n, (n ? a / n : 0), (c ? a / c : 0) }'
}
per_round() { # LABEL KEY: acmetool/nginx in each round
  local r line="$1:"
  for ((r = 1; r <= rounds; r++)); do
    line+=$(awk -v a="${R[acmetool.$2.$r]}" -v n="${R[nginx.$2.$r]}" 'BEGIN { printf " %.2f", (n ? a / n : 0) }')
  done
  echo "- $line"
}
echo "proxy, $(date -u +%F), $(nproc) cores, ${secs} s per load run, median of $rounds rounds, acmetool build: $build_kind"
echo
echo "| measure | acmetool | caddy | nginx | acmetool/nginx | acmetool/caddy |"
echo "|---|---|---|---|---|---|"
row "plain HTTP keep-alive 1 KiB, wrk -c64: req/s" http
row "plain HTTP: p99 ms" http_p99
row "plain HTTP: proxy CPU µs/req" http_cpu
row "HTTPS h1 keep-alive 1 KiB, wrk -c64: req/s" h1
row "HTTPS h1: p99 ms" h1_p99
row "HTTPS h1: proxy CPU µs/req" h1_cpu
row "h2 1 KiB, h2load -c16 -m10: req/s" h2
row "h2: proxy CPU µs/req" h2_cpu
row "RSS right after load: MiB (process group)" rss
echo
echo "acmetool/nginx in each round:"
echo
per_round "plain HTTP req/s" http
per_round "plain HTTP CPU/req" http_cpu
per_round "HTTPS h1 req/s" h1
per_round "HTTPS h1 CPU/req" h1_cpu
per_round "h2 req/s" h2
per_round "h2 CPU/req" h2_cpu
