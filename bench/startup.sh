#!/usr/bin/env bash
# Process start-up: exec -> exit of a trivial command, acmetool beside its anchors in one run.
# Short commands (fmt, qualify, ca issue) are run from scripts and hooks, often in loops, so the
# time before main() counts (../shared/notes/startup.md). Prints each mean and the ratio to Caddy.
#
#   bench/startup.sh [RUNS]      (default 300 runs per command; needs scripts/bootstrap --bench)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-300}
scripts/bootstrap --bench
scripts/build >/dev/null
acmetool=$PWD/${BUILD_DIR:-build}/cmd/acmetool

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# -N: no shell in between, so only exec -> exit is measured.
hyperfine -N --warmup 20 --runs "$runs" --export-csv "$out/startup.csv" \
  "$acmetool version" "caddy version" "curl --version" "true" >/dev/null 2>&1

echo "start-up, exec -> exit, mean of $runs runs ($(date -u +%F), $(nproc) cores)"
awk -F, 'NR > 1 { name[NR] = $1; mean[NR] = $2 * 1000; if ($1 ~ /^caddy/) caddy = $2 * 1000 }
         END { for (i = 2; i <= NR; i++)
                 printf "  %-40s %7.2f ms   %5.2fx faster than caddy\n", name[i], mean[i], caddy / mean[i] }' \
  "$out/startup.csv"
echo "shared libraries loaded by acmetool: $(ldd "$acmetool" | wc -l)"
