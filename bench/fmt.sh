#!/usr/bin/env bash
# `acmetool fmt` vs `caddy fmt` on one generated 10,000-site Caddyfile, start-up included.
# The file mixes the shapes real Caddyfiles have (static sites, reverse proxies with blocks,
# php_fastcgi, redirects, matchers, handle/route nesting, comments, env vars, placeholders) and
# is messily indented (spaces, tabs, braces on their own lines, runs of blank lines), so both
# formatters have work to do. Prints each mean and the ratio (target: acmetool >= 5x faster).
#
#   bench/fmt.sh [RUNS] [SITES]   (default 30 runs, 10000 sites; needs scripts/bootstrap --bench)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}
sites=${2:-10000}
scripts/bootstrap --bench
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" --target acmetool -j "$(nproc)" >/dev/null
acmetool=$PWD/$BUILD_DIR/cmd/acmetool

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
caddyfile=$out/Caddyfile

# Deterministic (fixed seed) so every run formats the same bytes.
awk -v sites="$sites" 'BEGIN {
  srand(42)
  split("    |\t|  |\t\t| \t|        ", pad, "|")
  print "{\n    email ops@example.com\n  admin off\n\tservers {\n\t\tprotocols h1 h2\n}\n}\n"
  print "(headers) {\n  header {\n    X-Frame-Options DENY\n\t-Server\n  }\n}\n"
  for (i = 1; i <= sites; i++) {
    p = pad[int(rand() * 6) + 1]; q = pad[int(rand() * 6) + 1]
    host = "site" i ".example.com"
    open = rand() < 0.2 ? "\n{" : (rand() < 0.5 ? "   {" : " {")
    if (rand() < 0.15) print "# site " i " -- generated   for the benchmark"
    kind = i % 6
    if (kind == 0) {
      print host ", www." host open
      print p "root * /srv/" i "\n" q "encode   gzip zstd\n" p "file_server"
      print q "import headers"
    } else if (kind == 1) {
      print host open
      print p "reverse_proxy   app" i ":8080 app" i "b:8080 {"
      print q q "lb_policy least_conn\n" p "health_uri /healthz\n" q "header_up X-Real-IP {remote_host}"
      print p "}"
    } else if (kind == 2) {
      print host open
      print p "root * /var/www/" i "\n" p "php_fastcgi unix//run/php/php-fpm.sock"
      print q "@blocked {\n" p p "path /xmlrpc.php *.sql\n" q "}\n" p "respond @blocked 403"
    } else if (kind == 3) {
      print "http://" host open
      print p "redir https://{host}{uri}   permanent"
    } else if (kind == 4) {
      print host open
      print p "handle /api/* {\n" q "reverse_proxy {$API_HOST:localhost}:9000\n" p "}"
      print p "handle {\n" q q "try_files {path} /index.html\n" q "file_server\n" p "}"
    } else {
      print host open
      print p "respond \"Hello   from " i "\" 200 # greeting"
      print q "log {\n" p "output file /var/log/caddy/" i ".log\n" q "}"
    }
    print (rand() < 0.3 ? "  }" : "}")
    if (rand() < 0.4) print "\n"
  }
}' >"$caddyfile"

echo "input: $sites sites, $(wc -l <"$caddyfile") lines, $(wc -c <"$caddyfile") bytes"
# Both exit non-zero or print much: -i ignores the status (the input is not formatted), and the
# output goes through a pipe so neither writes to a terminal.
hyperfine -N -i --output=pipe --warmup 3 --runs "$runs" --export-csv "$out/fmt.csv" \
  "$acmetool fmt $caddyfile" "caddy fmt $caddyfile" >/dev/null 2>&1

echo "fmt of a $sites-site Caddyfile, exec -> exit, mean of $runs runs ($(date -u +%F), $(nproc) cores)"
awk -F, 'NR > 1 { name[NR] = $1; mean[NR] = $2 * 1000; if ($1 ~ /^caddy/) caddy = $2 * 1000 }
         END { for (i = 2; i <= NR; i++)
                 printf "  %-12s %8.2f ms   %5.2fx faster than caddy\n", \
                        (name[i] ~ /^caddy/ ? "caddy fmt" : "acmetool fmt"), mean[i], caddy / mean[i] }' \
  "$out/fmt.csv"
