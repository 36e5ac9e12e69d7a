# Sourced by benchmarks: pebble_up starts pebble + pebble-challtestsrv on loopback ports from BASE
# (default 14000) in a temp dir and sets PEBBLE_DIR_URL, PEBBLE_TLS_CA, PEBBLE_ROOT,
# PEBBLE_HTTP01_PORT, PEBBLE_PIDS, PEBBLE_WORKDIR; pebble_down stops them by PID and removes the dir.
# Every name resolves to 127.0.0.1 (challtestsrv), with no AAAA: pebble 2.4 dials the first address.
# PEBBLE_DNSSERVER=HOST:PORT makes its VA ask another DNS server instead (DNS-01 benchmarks).
pebble_up() {
  local base=${1:-14000} lo=127.0.0.1 wd
  wd=$(mktemp -d -t pebble-bench.XXXXXX)
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$wd/ca.key" -out "$wd/ca.pem" \
    -days 2 -subj "/CN=bench listener CA" -addext "basicConstraints=critical,CA:TRUE" 2>/dev/null
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$wd/key.pem" -out "$wd/leaf.csr" \
    -subj "/CN=localhost" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$wd/leaf.ext"
  openssl x509 -req -in "$wd/leaf.csr" -CA "$wd/ca.pem" -CAkey "$wd/ca.key" -CAcreateserial -days 2 \
    -extfile "$wd/leaf.ext" -out "$wd/cert.pem" 2>/dev/null
  cat > "$wd/pebble.json" <<JSON
{"pebble": {"listenAddress": "$lo:$base", "managementListenAddress": "$lo:$((base + 1))",
 "certificate": "$wd/cert.pem", "privateKey": "$wd/key.pem", "httpPort": $((base + 2)), "tlsPort": $((base + 3)),
 "ocspResponderURL": "", "externalAccountBindingRequired": false}}
JSON
  pebble-challtestsrv -management "$lo:$((base + 5))" -dns01 "$lo:$((base + 4))" -http01 "" -https01 "" \
    -tlsalpn01 "" -defaultIPv4 "$lo" -defaultIPv6 "" > "$wd/cts.log" 2>&1 &
  local cts=$!
  PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 pebble -config "$wd/pebble.json" \
    -dnsserver "${PEBBLE_DNSSERVER:-$lo:$((base + 4))}" \
    > "$wd/pebble.log" 2>&1 &
  local pebble=$!
  PEBBLE_PIDS="$pebble $cts" PEBBLE_WORKDIR=$wd PEBBLE_TLS_CA=$wd/ca.pem
  PEBBLE_DIR_URL=https://$lo:$base/dir PEBBLE_HTTP01_PORT=$((base + 2))
  for _ in $(seq 1 100); do
    curl -sf --max-time 1 --cacert "$wd/ca.pem" "$PEBBLE_DIR_URL" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -sf --cacert "$wd/ca.pem" "https://$lo:$((base + 1))/roots/0" > "$wd/root.pem"
  PEBBLE_ROOT=$wd/root.pem
}

pebble_down() {
  local pid
  for pid in $PEBBLE_PIDS; do kill "$pid" 2>/dev/null || true; done
  for pid in $PEBBLE_PIDS; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$PEBBLE_WORKDIR"
}
