# Sourced by benchmarks: bind9_up PORT starts, on 127.0.0.1 only, an authoritative named for
# example.test (TSIG-updatable) on PORT and a forward-only resolver in front of it on PORT+1 (for
# pebble's VA, which asks one resolver and does not chase CNAMEs). Sets BIND_SERVER, BIND_RESOLVER,
# BIND_PORT, TSIG_NAME, TSIG_SECRET, BIND_PIDS, BIND_WORKDIR; bind9_down stops them by PID.
# Nothing listens on port 53, no query leaves 127.0.0.1 (a fake root zone; notify off).
bind9_up() {
  local port=$1 lo=127.0.0.1 wd
  wd=$(mktemp -d -t bind9-bench.XXXXXX)
  TSIG_NAME=acmetool-bench-key
  tsig-keygen -a hmac-sha256 "$TSIG_NAME" > "$wd/tsig.key"
  TSIG_SECRET=$(sed -n 's/.*secret "\(.*\)";.*/\1/p' "$wd/tsig.key")
  cat > "$wd/example.test.zone" <<ZONE
\$TTL 60
@   IN SOA ns1.example.test. hostmaster.example.test. ( 1 60 60 600 1 )
@   IN NS  ns1.example.test.
@   IN A   $lo
ns1 IN A   $lo
*   IN A   $lo
ZONE
  cat > "$wd/root.zone" <<ZONE
\$TTL 60
@                 IN SOA localhost. hostmaster.localhost. ( 1 60 60 600 1 )
@                 IN NS  localhost.
localhost         IN A   $lo
example.test.     IN NS  ns1.example.test.
ns1.example.test. IN A   $lo
ZONE
  local common="directory \"$wd\"; listen-on-v6 { none; }; query-source address $lo; notify no;
  dnssec-validation no; trust-anchor-telemetry no; empty-zones-enable no; managed-keys-directory \"$wd\";"
  cat > "$wd/named.conf" <<CONF
include "$wd/tsig.key";
options { $common pid-file "$wd/named.pid"; lock-file "$wd/named.lock"; session-keyfile "$wd/named.skey";
  listen-on port $port { $lo; }; recursion no; allow-query { $lo; }; allow-transfer { $lo; }; };
controls { };
zone "example.test" { type primary; file "example.test.zone"; allow-update { key "$TSIG_NAME"; }; };
CONF
  cat > "$wd/resolver.conf" <<CONF
options { $common pid-file "$wd/resolver.pid"; lock-file "$wd/resolver.lock"; session-keyfile "$wd/resolver.skey";
  listen-on port $((port + 1)) { $lo; }; recursion yes; allow-recursion { $lo; }; allow-query { $lo; };
  allow-query-cache { $lo; }; max-cache-ttl 1; max-ncache-ttl 1; };
controls { };
zone "." { type primary; file "root.zone"; };
zone "example.test" { type forward; forward only; forwarders { $lo port $port; }; };
CONF
  named -g -4 -c "$wd/named.conf" > "$wd/named.log" 2>&1 &
  local auth=$!
  named -g -4 -c "$wd/resolver.conf" > "$wd/resolver.log" 2>&1 &
  BIND_PIDS="$auth $!" BIND_WORKDIR=$wd BIND_PORT=$port
  BIND_SERVER=$lo:$port BIND_RESOLVER=$lo:$((port + 1))
  for _ in $(seq 1 100); do
    dig +short +time=1 +tries=1 @$lo -p "$((port + 1))" ns1.example.test A 2>/dev/null | grep -q "$lo" && return 0
    sleep 0.1
  done
  echo "bind9_up: named did not answer within 10 s; see $wd" >&2
  return 1
}

bind9_down() {
  local pid
  for pid in $BIND_PIDS; do kill "$pid" 2>/dev/null || true; done
  for pid in $BIND_PIDS; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$BIND_WORKDIR"
}
