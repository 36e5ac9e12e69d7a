#!/usr/bin/env bash
# obtain from a local pebble: acmetool beside lego in one run, each with a fresh account.
#   1 name: mean of RUNS runs each; 20 names: one run each (acmetool orders them concurrently,
#   lego obtains them one after another, as a script would).
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
mean() { awk -v t="$1" -v n="$2" 'BEGIN { printf "%.3f", t / n }'; }

total_a=0 total_l=0
for i in $(seq 1 "$runs"); do
  t0=$(now); acme_one "$i" "one$i.example.test"; t1=$(now); lego_one "$i" "lone$i.example.test"; t2=$(now)
  total_a=$(awk -v a="$total_a" -v s="$t0" -v e="$t1" 'BEGIN { print a + e - s }')
  total_l=$(awk -v a="$total_l" -v s="$t1" -v e="$t2" 'BEGIN { print a + e - s }')
done
a1=$(mean "$total_a" "$runs") l1=$(mean "$total_l" "$runs")

names=(); for i in $(seq 0 19); do names+=("m$i.example.test"); done
t0=$(now); acme_one batch "${names[@]}"; t1=$(now)
for i in $(seq 0 19); do lego_one "batch$i" "lm$i.example.test"; done; t2=$(now)
a20=$(awk -v s="$t0" -v e="$t1" 'BEGIN { printf "%.3f", e - s }')
l20=$(awk -v s="$t1" -v e="$t2" 'BEGIN { printf "%.3f", e - s }')

# Every certificate acmetool stored must verify against pebble's root.
bad=0
for crt in $(find "$work" -path '*/certificates/*' -name '*.crt'); do
  openssl verify -CAfile "$PEBBLE_ROOT" -untrusted "$crt" "$crt" >/dev/null 2>&1 || bad=$((bad + 1))
done
echo "obtain from pebble 2.4 ($(date -u +%F), $(nproc) cores), fresh account each, http-01"
printf '  1 name (mean of %s):  acmetool %6.3f s   lego %6.3f s   (acmetool %.1fx faster)\n' "$runs" "$a1" "$l1" \
  "$(awk -v a="$a1" -v l="$l1" 'BEGIN { print l / a }')"
printf '  20 names:            acmetool %6.3f s   lego %6.3f s   (acmetool %.1fx faster)\n' "$a20" "$l20" \
  "$(awk -v a="$a20" -v l="$l20" 'BEGIN { print l / a }')"
echo "  certificates failing openssl verify: $bad"
