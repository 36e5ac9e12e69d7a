#!/usr/bin/env bash
# DNS-01 wildcard issuance from a local pebble whose VA resolves through a local BIND 9: acmetool
# beside lego, both with their rfc2136 provider (TSIG-signed updates to the same named), each with
# a fresh account, one certificate for NAME and *.NAME per run. Mean of RUNS runs.
#   bench/dns01.sh [RUNS] [BASE_PORT]     (default 5 runs; pebble on BASE.., BIND on BASE+10, +11)
# acmetool checks that the authoritative nameserver serves every record before the CA is told to
# look; lego runs with --dns.disable-cp (one TXT query at its resolver) because its complete
# propagation check asks port 53 (../shared/notes/dns01.md, gotcha 1). acmetool's own lookups go
# to the authoritative face, so they never seed the negative cache of the resolver pebble asks.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5} base=${2:-14300}
scripts/bootstrap --bench
scripts/build >/dev/null
acmetool=$PWD/${BUILD_DIR:-build}/cmd/acmetool
. bench/lib/pebble.sh
. bench/lib/bind9.sh
bind9_up "$((base + 10))"
PEBBLE_DNSSERVER=$BIND_RESOLVER pebble_up "$base"
work=$(mktemp -d)
trap 'pebble_down; bind9_down; rm -rf "$work"' EXIT

now() { date +%s.%N; }
acme_one() {
  "$acmetool" -q --storage "$work/a$1" obtain --ca "$PEBBLE_DIR_URL" --ca-root "$PEBBLE_TLS_CA" \
    --dns rfc2136 --dns-opt "nameserver=$BIND_SERVER" --dns-opt "tsig_key=$TSIG_NAME" \
    --dns-opt "tsig_secret=$TSIG_SECRET" --dns-resolvers "$BIND_SERVER" --dns-nameserver-port "$BIND_PORT" \
    --dns-propagation-interval 100ms --dns-ttl 1s "$2,*.$2" >/dev/null
}
lego_one() {
  LEGO_CA_CERTIFICATES=$PEBBLE_TLS_CA RFC2136_NAMESERVER=$BIND_SERVER RFC2136_TSIG_KEY=$TSIG_NAME \
    RFC2136_TSIG_SECRET=$TSIG_SECRET RFC2136_TSIG_ALGORITHM=hmac-sha256. RFC2136_TTL=1 \
    RFC2136_POLLING_INTERVAL=1 RFC2136_PROPAGATION_TIMEOUT=30 RFC2136_SEQUENCE_INTERVAL=1 \
    timeout 120 lego --server "$PEBBLE_DIR_URL" -a -m bench@example.test --path "$work/l$1" \
    --dns rfc2136 --dns.resolvers "$BIND_RESOLVER" --dns.disable-cp -d "$2" -d "*.$2" run >/dev/null 2>&1
}
elapsed() {
  local t0 t1; t0=$(now)
  if "$@"; then t1=$(now); awk -v s="$t0" -v e="$t1" 'BEGIN { printf "%.3f", e - s }'; else echo fail; fi
}

total_a=0 total_l=0 fails=0
for i in $(seq 1 "$runs"); do
  a=$(elapsed acme_one "$i" "a$i-$RANDOM.example.test"); l=$(elapsed lego_one "$i" "l$i-$RANDOM.example.test")
  [ "$a" = fail ] || [ "$l" = fail ] && { fails=$((fails + 1)); continue; }
  total_a=$(awk -v t="$total_a" -v x="$a" 'BEGIN { print t + x }')
  total_l=$(awk -v t="$total_l" -v x="$l" 'BEGIN { print t + x }')
done
ok=$((runs - fails))
[ "$ok" -gt 0 ] || { echo "dns01: every run failed" >&2; exit 1; }

bad=0 checked=0
for crt in $(find "$work" -path '*/certificates/*' -name '*.crt' ! -name '*.issuer.crt'); do
  checked=$((checked + 1))
  openssl verify -CAfile "$PEBBLE_ROOT" -untrusted "$crt" "$crt" >/dev/null 2>&1 || bad=$((bad + 1))
done
left=$(dig +noall +answer @127.0.0.1 -p "$BIND_PORT" example.test AXFR | grep -c '_acme-challenge.*TXT' || true)
a1=$(awk -v t="$total_a" -v n="$ok" 'BEGIN { printf "%.3f", t / n }')
l1=$(awk -v t="$total_l" -v n="$ok" 'BEGIN { printf "%.3f", t / n }')
echo "DNS-01 NAME + *.NAME via rfc2136 to BIND $(named -v | awk '{print $2}'), pebble 2.4 ($(date -u +%F), $(nproc) cores), fresh account each"
printf '  mean of %s runs:  acmetool %6.3f s   lego %6.3f s   (acmetool %.1fx faster)\n' "$ok" "$a1" "$l1" \
  "$(awk -v a="$a1" -v l="$l1" 'BEGIN { print l / a }')"
echo "  failed runs: $fails; certificates verified: $checked, failing openssl verify: $bad; _acme-challenge TXT left: $left"
