#!/usr/bin/env bash
# Local CA: a trusted-to-be localhost certificate from nothing, acmetool beside mkcert in one run.
#   fresh:  `acmetool ca init && acmetool ca issue localhost --out DIR`  vs  `mkcert localhost` with
#           an empty CAROOT (both create their CA, then the leaf; nothing is installed in trust stores)
#   steady: one more leaf from the existing CA
# Target (issue 4): fresh under 50 ms wall.
#
#   bench/local_ca.sh [RUNS]     (default 100; needs scripts/bootstrap --bench)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-100}
scripts/bootstrap --bench
scripts/build >/dev/null
acmetool=$PWD/${BUILD_DIR:-build}/cmd/acmetool

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fresh="rm -rf $work/s $work/c $work/o && mkdir -p $work/c $work/o"
hyperfine --warmup 3 --runs "$runs" --export-csv "$work/fresh.csv" \
  --prepare "$fresh" \
  -n "acmetool ca init && ca issue (fresh)" \
  "$acmetool --storage $work/s ca init >/dev/null && $acmetool --storage $work/s ca issue localhost --out $work/o >/dev/null" \
  -n "mkcert localhost (fresh CAROOT)" \
  "cd $work/o && CAROOT=$work/c mkcert localhost 2>/dev/null" >/dev/null 2>&1

# Steady state: the CA exists; one more leaf each.
$acmetool --storage "$work/s2" ca init >/dev/null
mkdir -p "$work/c2" "$work/o2" && (cd "$work/o2" && CAROOT=$work/c2 mkcert localhost 2>/dev/null)
hyperfine -N --warmup 5 --runs "$runs" --export-csv "$work/steady.csv" \
  -n "acmetool ca issue (existing CA)" "$acmetool --storage $work/s2 ca issue localhost --out $work/o2" \
  -n "mkcert localhost (existing CAROOT)" "env CAROOT=$work/c2 mkcert -cert-file $work/o2/m.crt -key-file $work/o2/m.key localhost" \
  >/dev/null 2>&1

echo "local CA, mean wall time of $runs runs ($(date -u +%F), $(nproc) cores; fresh runs include a shell)"
for csv in "$work/fresh.csv" "$work/steady.csv"; do
  awk -F, 'NR == 2 { a_name = $1; a = $2 * 1000 } NR == 3 { b_name = $1; b = $2 * 1000 }
           END { printf "  %-40s %8.2f ms\n  %-40s %8.2f ms   (acmetool %.1fx faster)\n", a_name, a, b_name, b, b / a }' "$csv"
done
