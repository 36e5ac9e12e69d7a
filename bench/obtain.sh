#!/usr/bin/env bash
# obtain from a local pebble: acmetool beside lego, certbot and uacme in one run, each with a
# fresh account and http-01.
#   1 name: mean of RUNS runs each; 20 names: one run each (acmetool orders them concurrently;
#   the others obtain them one after another, as a script would).
# certbot answers with its own standalone listener; uacme has none, so its stock hook writes into
# a webroot that busybox httpd serves. uacme has no option to trust another CA: it runs in a
# private mount namespace where pebble's listener CA is bound over the system bundle.
# Targets (issue 5): 1 name ≤ 0.5 s; 20 names ≤ 3 s.
#   bench/obtain.sh [RUNS] [BASE_PORT]     (default 5 runs, ports 14000..14005)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
scripts/bootstrap --bench
scripts/build >/dev/null
acmetool=$PWD/${BUILD_DIR:-build}/cmd/acmetool
. bench/lib/pebble.sh
pebble_up "${2:-14000}"
work=$(mktemp -d)
trap 'pebble_down; rm -rf "$work"' EXIT

now() { date +%s.%N; }
acme_one() {  # a fresh storage = a fresh account
  "$acmetool" -q --storage "$work/a$1" obtain --ca "$PEBBLE_DIR_URL" --ca-root "$PEBBLE_TLS_CA" \
    --challenge http-01 --http-port "$PEBBLE_HTTP01_PORT" "${@:2}" >/dev/null
}
lego_one() {
  LEGO_CA_CERTIFICATES=$PEBBLE_TLS_CA lego --server "$PEBBLE_DIR_URL" -a -m bench@example.test \
    --path "$work/l$1" --http --http.port "127.0.0.1:$PEBBLE_HTTP01_PORT" -d "$2" run >/dev/null 2>&1
}
certbot_one() {
  REQUESTS_CA_BUNDLE=$PEBBLE_TLS_CA certbot certonly -n --agree-tos -m bench@example.test --no-eff-email \
    --server "$PEBBLE_DIR_URL" --standalone --http-01-address 127.0.0.1 --http-01-port "$PEBBLE_HTTP01_PORT" \
    --config-dir "$work/c$1" --work-dir "$work/c$1/w" --logs-dir "$work/c$1/l" -d "$2" >/dev/null 2>&1
}
uacme_one() {
  unshare -m sh -c 'mount --bind "$1" /etc/ssl/certs/ca-certificates.crt && shift &&
    uacme -y -c "$1" -a "$2" new bench@example.test && UACME_CHALLENGE_PATH="$3" uacme -c "$1" -a "$2" -h "$4" issue "$5"' \
    uacme "$PEBBLE_TLS_CA" "$work/u$1" "$PEBBLE_DIR_URL" "$work/www/.well-known/acme-challenge" \
    /usr/share/uacme/uacme.sh "$2" >/dev/null 2>&1
}
have_certbot=$(command -v certbot || true) have_uacme=$(command -v uacme || true)
mkdir -p "$work/www/.well-known/acme-challenge"
httpd_pid=
trap 'stop_httpd; pebble_down; rm -rf "$work"' EXIT
mean() { awk -v t="$1" -v n="$2" 'BEGIN { printf "%.3f", t / n }'; }

# elapsed CMD ARGS...: runs it, prints the seconds it took; "fail" when it failed.
elapsed() {
  local t0 t1; t0=$(now)
  if "$@"; then t1=$(now); awk -v s="$t0" -v e="$t1" 'BEGIN { printf "%.3f", e - s }'; else echo fail; fi
}
add() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "fail" || b == "fail") print "fail"; else print a + b }'; }
# With uacme's httpd on the http-01 port, the others need it free: uacme runs last and alone.
stop_httpd() {
  if [ -n "$httpd_pid" ]; then kill "$httpd_pid" 2>/dev/null || true; wait "$httpd_pid" 2>/dev/null || true; fi
  httpd_pid=
}
start_httpd() {
  busybox httpd -f -p "127.0.0.1:$PEBBLE_HTTP01_PORT" -h "$work/www" & httpd_pid=$!
  sleep 0.2
}
total_a=0 total_l=0 total_c=0 total_u=0
for i in $(seq 1 "$runs"); do
  total_a=$(add "$total_a" "$(elapsed acme_one "$i" "one$i.example.test")")
  total_l=$(add "$total_l" "$(elapsed lego_one "$i" "lone$i.example.test")")
  [ -n "$have_certbot" ] && total_c=$(add "$total_c" "$(elapsed certbot_one "$i" "cone$i.example.test")")
  if [ -n "$have_uacme" ]; then
    start_httpd; total_u=$(add "$total_u" "$(elapsed uacme_one "$i" "uone$i.example.test")"); stop_httpd
  fi
done
a1=$(mean "$total_a" "$runs") l1=$(mean "$total_l" "$runs")
c1=$([ "$total_c" = fail ] && echo fail || mean "$total_c" "$runs")
u1=$([ "$total_u" = fail ] && echo fail || mean "$total_u" "$runs")

names=(); for i in $(seq 0 19); do names+=("m$i.example.test"); done
a20=$(elapsed acme_one batch "${names[@]}")
l20=0 c20=0 u20=0
for i in $(seq 0 19); do l20=$(add "$l20" "$(elapsed lego_one "batch$i" "lm$i.example.test")"); done
if [ -n "$have_certbot" ]; then
  for i in $(seq 0 19); do c20=$(add "$c20" "$(elapsed certbot_one "batch$i" "cm$i.example.test")"); done
fi
if [ -n "$have_uacme" ]; then
  start_httpd
  for i in $(seq 0 19); do u20=$(add "$u20" "$(elapsed uacme_one "batch$i" "um$i.example.test")"); done
  stop_httpd
fi

# Every certificate acmetool stored must verify against pebble's root.
bad=0
for crt in $(find "$work" -path '*/certificates/*' -name '*.crt'); do
  openssl verify -CAfile "$PEBBLE_ROOT" -untrusted "$crt" "$crt" >/dev/null 2>&1 || bad=$((bad + 1))
done
ratio() { awk -v a="$1" -v o="$2" 'BEGIN { if (o == "fail") print "failed"; else printf "%.1fx", o / a }'; }
row() {  # label acmetool lego certbot uacme
  printf '  %-20s acmetool %6s s | lego %6s s (%s) | certbot %6s s (%s) | uacme %6s s (%s)\n' "$1" "$2" \
    "$3" "$(ratio "$2" "$3")" "${4:--}" "$([ -n "$have_certbot" ] && ratio "$2" "$4" || echo absent)" \
    "${5:--}" "$([ -n "$have_uacme" ] && ratio "$2" "$5" || echo absent)"
}
echo "obtain from pebble 2.4 ($(date -u +%F), $(nproc) cores), fresh account each, http-01; (N.Nx) = how many times acmetool is faster"
row "1 name (mean of $runs):" "$a1" "$l1" "$c1" "$u1"
fmt() { awk -v t="$1" 'BEGIN { if (t == "fail") print "fail"; else printf "%.3f", t }'; }
row "20 names:" "$a20" "$(fmt "$l20")" "$(fmt "$c20")" "$(fmt "$u20")"
echo "  certificates failing openssl verify: $bad"
