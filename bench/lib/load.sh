# Sourced by the load benchmarks (serve.sh, proxy.sh, storm.sh): the Release acmetool, stopping a
# server we started, process-group accounting from /proc, parsers for wrk's and h2load's output,
# and the anchors' shared settings. Needs $tck (getconf CLK_TCK) for the CPU figures.

# Sets $acmetool to the Release build in ${BUILD_DIR:-build-release}, configuring and building it
# when it is missing. With "pgo": the profile-guided build in ${BUILD_DIR:-build-pgo}
# (scripts/build-pgo), built and trained again when a source file is newer than it.
release_acmetool() {
  if [[ ${1:-} == pgo ]]; then
    local build=${BUILD_DIR:-build-pgo}
    if [[ ! -x $build/cmd/acmetool ||
      -n $(find cmd libpki libacme libcaddyfile libserve CMakeLists.txt -newer "$build/cmd/acmetool" \
        \( -name '*.cpp' -o -name '*.h' -o -name CMakeLists.txt \) -print -quit) ]]; then
      BUILD_DIR=$build scripts/build-pgo >/dev/null
    fi
    acmetool=$PWD/$build/cmd/acmetool
    return
  fi
  local build=${BUILD_DIR:-build-release}
  if [[ ! -x $build/cmd/acmetool ]]; then
    cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DACMETOOL_TESTS=OFF >/dev/null
    ninja -C "$build" acmetool >/dev/null
  fi
  acmetool=$PWD/$build/cmd/acmetool
}

stop_pid() { # PID: SIGTERM, wait (bounded to 5 s), then SIGKILL; clears $live
  local p=$1 i
  kill "$p" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
  kill -9 "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
  live=""
}

# stop_pid, then waits (bounded to 2 s) until the process group is gone and $http_port and
# $https_port are free (nginx workers and h2o's crash handler exit after their leader).
stop_server() { # PID
  local p=$1 i
  stop_pid "$p"
  for ((i = 0; i < 40; i++)); do
    group_alive "$p" || ss -Htln "sport = :$https_port or sport = :$http_port" | grep -q . || break
    sleep 0.05
  done
  if group_alive "$p"; then echo "  still running in group $p: $(pgrep -r D,R,S,T -g "$p" | xargs)" >&2; fi
}

group_alive() { pgrep -r D,R,S,T -g "$1" >/dev/null; } # PGID: a live (not zombie) process in it

pg_cpu_ticks() { # PGID -> utime+stime of every live process in the group
  local pg=$1 f line rest total=0
  for f in /proc/[0-9]*/stat; do
    { line=$(<"$f"); } 2>/dev/null || continue # the process may have exited
    rest=${line##*) } # fields from 3 (state) on
    read -r -a a <<<"$rest"
    [[ ${a[2]} == "$pg" ]] && total=$((total + a[11] + a[12]))
  done
  echo "$total"
}
pg_rss_kib() { # PGID -> sum of VmRSS
  local pg=$1 f d line rest total=0 kb
  for f in /proc/[0-9]*/stat; do
    { line=$(<"$f"); } 2>/dev/null || continue # the process may have exited
    rest=${line##*) }
    read -r -a a <<<"$rest"
    [[ ${a[2]} == "$pg" ]] || continue
    d=${f%/stat}
    kb=$(awk '/^VmRSS:/ {print $2}' "$d/status" 2>/dev/null || echo 0)
    total=$((total + ${kb:-0}))
  done
  echo "$total"
}

# Server CPU µs per unit: ticks c0 -> c1 over n units.
cpu_per() { awk -v d=$(($2 - $1)) -v t="$tck" -v n="$3" 'BEGIN { printf "%.1f", (n > 0 ? d / t * 1e6 / n : 0) }'; }

wrk_rps() { awk '/^Requests\/sec:/ {print $2}'; }
wrk_p99_ms() { # "99%   12.34ms" -> ms
  awk '$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 }
                     else if (v ~ /ms$/) sub(/ms$/, "", v)
                     else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 }
                     printf "%.2f", v }'
}
wrk_mbs() { # "Transfer/sec: 812.34MB" -> MB/s
  awk '/^Transfer\/sec:/ { v = $2; if (v ~ /GB$/) { sub(/GB$/, "", v); v *= 1024 }
                          else if (v ~ /MB$/) sub(/MB$/, "", v)
                          else if (v ~ /KB$/) { sub(/KB$/, "", v); v /= 1024 }
                          printf "%.0f", v }'
}
h2load_rps() { awk '/^finished in/ { for (i = 1; i <= NF; i++) if ($(i+1) == "req/s,") printf "%.0f", $i }'; }
h2load_done() { awk '/^requests:/ { print $8 }'; }

# Caddy as an anchor: the global options every benchmark runs it with (no admin endpoint, no
# redirects, no trust store changes, HTTP/1.1 and HTTP/2 only, storage in $tmp/caddy), and its
# start from $tmp/caddy.Caddyfile in a process group of its own (sets $pid).
caddy_globals() {
  mkdir -p "$tmp/caddy"
  cat <<EOF
{
	admin off
	auto_https disable_redirects
	http_port $http_port
	https_port $https_port
	storage file_system $tmp/caddy
	skip_install_trust
	servers {
		protocols h1 h2
	}
}
EOF
}
start_caddy() {
  XDG_CONFIG_HOME=$tmp/caddy XDG_DATA_HOME=$tmp/caddy HOME=$tmp/caddy \
    setsid caddy run --config "$tmp/caddy.Caddyfile" --adapter caddyfile >>"$tmp/caddy.log" 2>&1 &
  pid=$!
}

# h2 load on URL for $secs (h2load -c16 -m10) against the server group $pid: R[SERVER.h2] req/s
# and R[SERVER.h2_cpu] µs per request (keys ending in .$round when a round is set).
measure_h2() { # SERVER URL
  local s=$1 out c0 c1 r=${round:+.$round}
  c0=$(pg_cpu_ticks "$pid")
  out=$(timeout $((secs + 20)) h2load -t1 -c16 -m10 -D "$secs" "$2" 2>&1)
  c1=$(pg_cpu_ticks "$pid")
  R[$s.h2$r]=$(h2load_rps <<<"$out")
  R[$s.h2_cpu$r]=$(cpu_per "$c0" "$c1" "$(h2load_done <<<"$out")")
  grep -q '^requests:.* 0 errored' <<<"$out" || echo "  $s h2: $(grep '^requests:' <<<"$out")" >&2
  grep -q 'Application protocol: h2' <<<"$out" || echo "  $s h2: not h2: $(grep 'Application protocol' <<<"$out")" >&2
  return 0
}

# The start of an anchor nginx's configuration under PREFIX (its pid, error log and temp paths
# there): WORKERS worker processes with CONNECTIONS connections each, then an open `http {`
# block without access log and with long keep-alive.
nginx_conf_head() { # PREFIX WORKERS CONNECTIONS (PREFIX/logs must exist)
  cat <<EOF
worker_processes $2;
daemon off;
pid $1/nginx.pid;
error_log $1/logs/error.log warn;
events { worker_connections $3; }
http {
	access_log off;
	keepalive_timeout 65;
	keepalive_requests 1000000;
$(nginx_temp_paths "$1")
EOF
}

# nginx's temp paths under PREFIX, as http-block lines (an nginx run as root with -p otherwise
# writes to /var/lib/nginx).
nginx_temp_paths() { # PREFIX
  printf '\tclient_body_temp_path %s/body;\n\tproxy_temp_path %s/proxy;\n\tfastcgi_temp_path %s/fastcgi;\n' "$1" "$1" "$1"
  printf '\tuwsgi_temp_path %s/uwsgi;\n\tscgi_temp_path %s/scgi;\n' "$1" "$1"
}
