// `acmetool serve` end to end, as a user runs it: the binary serves a directory over HTTPS and
// curl fetches from it, trusting the local CA's root (or pebble's, for a public name).
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <crypt.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <sstream>
#include <future>
#include <regex>

#include "fixture_util.h"
#include "pebble.h"
#include "process.h"
#include "tiny_http_server.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using acmetool::test::ChildProcess;
using acmetool::test::CommandResult;
using acmetool::test::PebbleServer;
using acmetool::test::run_command;
using acmetool::test::TempDir;
using acmetool::test::write_file;

namespace {

// A running `acmetool serve --domain NAME --root DIR` on 127.0.0.1 and two free ports.
struct QuickServer {
  TempDir dir;
  fs::path storage = dir.path() / "storage";
  fs::path www = dir.path() / "www";
  fs::path log = dir.path() / "serve.log";
  std::string name;
  int http_port = 0, https_port = 0;
  std::optional<ChildProcess> process;

  explicit QuickServer(std::string domain, std::vector<std::string> extra = {}, int http = 0) : name(std::move(domain)) {
    fs::create_directories(www / "sub");
    fs::create_directories(www / "docs");
    write_file(www / "docs" / "index.html", "docs\n");
    write_file(www / "index.html", "hello from acmetool\n");
    write_file(www / "sub" / "file.txt", "0123456789");
    const std::vector<int> ports = acmetool::test::distinct_free_ports(2);
    http_port = http ? http : ports[0];
    https_port = ports[1];
    std::vector<std::string> argv = {ACMETOOL_BINARY, "--storage", storage.string(), "serve", "--domain", name,
                                     "--root", www.string(), "--listen", "127.0.0.1", "--http-port",
                                     std::to_string(http_port), "--https-port", std::to_string(https_port)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    process.emplace(ChildProcess::start(argv, log));
  }

  // curl against the server with `args` (the URL among them), trusting `root`.
  CommandResult curl(std::vector<std::string> args, const fs::path& root) const {
    std::vector<std::string> argv = {"curl", "-sS", "--max-time", "10", "--cacert", root.string(), "--resolve",
                                     name + ":" + std::to_string(https_port) + ":127.0.0.1", "--resolve",
                                     name + ":" + std::to_string(http_port) + ":127.0.0.1"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, "", {}, 20s);
  }
  std::string https(const std::string& path) const {
    return "https://" + name + ":" + std::to_string(https_port) + path;
  }
  fs::path local_root() const { return storage / "pki" / "authorities" / "local" / "root.crt"; }

  // Polls GET / trusting `root` until it succeeds (the certificate may still be on its way), at
  // most `timeout`; `last` is the last attempt.
  bool wait_until_serving(const fs::path& root, std::chrono::seconds timeout, CommandResult& last) const {
    return acmetool::test::wait_until(
        [&] {
          if (!fs::exists(root)) return false;
          last = curl({https("/")}, root);
          return last.exit_code == 0;
        },
        timeout);
  }
};

// Connects to 127.0.0.1:port, sends `bytes`, then reads until the server closes the connection
// or `limit` passes. Returns what was read and how long until the close (limit when it stayed open).
struct RawExchange {
  std::string received;
  std::chrono::milliseconds closed_after{0};
  bool closed = false;
};
RawExchange raw_exchange(int port, const std::string& bytes, std::chrono::milliseconds limit) {
  RawExchange out;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()));
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    const auto left = limit - std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buffer[4096];
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) {
      out.closed = true;
      break;
    }
    out.received.append(buffer, static_cast<std::size_t>(n));
  }
  out.closed_after = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  ::close(fd);
  return out;
}

// A bcrypt hash of `password` at cost 4 (fast), as `caddy hash-password` would make at cost 14.
std::string bcrypt_hash(const std::string& password) {
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  REQUIRE(crypt_gensalt_rn("$2b$", 4, nullptr, 0, salt, sizeof salt) != nullptr);
  crypt_data data{};
  const char* hash = crypt_r(password.c_str(), salt, &data);
  REQUIRE(hash != nullptr);
  return hash;
}

}  // namespace

TEST_CASE("serve --domain localhost serves a directory over HTTPS trusted through the local CA",
          "[serve][cli]") {
  QuickServer server("localhost");
  CommandResult r;
  const bool up = server.wait_until_serving(server.local_root(), 20s, r);
  INFO(acmetool::test::log_tail("serve", server.log));
  INFO(r.err);
  REQUIRE(up);
  CHECK(r.out == "hello from acmetool\n");

  // HTTP redirects to HTTPS with 308, keeping path and query.
  r = server.curl({"-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
                   "http://localhost:" + std::to_string(server.http_port) + "/sub/file.txt?x=1"},
                  server.local_root());
  CHECK(r.out == "308 " + server.https("/sub/file.txt?x=1"));

  // Files, HEAD, ranges, validators.
  CHECK(server.curl({server.https("/sub/file.txt")}, server.local_root()).out == "0123456789");
  CHECK(server.curl({"-r", "2-4", server.https("/sub/file.txt")}, server.local_root()).out == "234");
  r = server.curl({"--http1.1", "-I", server.https("/sub/file.txt")}, server.local_root());
  for (char& c : r.out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));  // field names' case varies
  CHECK(r.out.find("http/1.1 200") == 0);
  CHECK(r.out.find("content-length: 10") != std::string::npos);
  CHECK(r.out.find("content-type: text/plain; charset=utf-8") != std::string::npos);
  const auto etag_at = r.out.find("etag: ");
  REQUIRE(etag_at != std::string::npos);
  const std::string etag = r.out.substr(etag_at + 6, r.out.find('\r', etag_at) - etag_at - 6);
  CHECK(server.curl({"-o", "/dev/null", "-w", "%{http_code}", "-H", "If-None-Match: " + etag,
                     server.https("/sub/file.txt")},
                    server.local_root())
            .out == "304");
  CHECK(server.curl({"-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", server.https("/docs")}, server.local_root())
            .out == "308 " + server.https("/docs/"));
  CHECK(server.curl({server.https("/docs/")}, server.local_root()).out == "docs\n");
  // A directory without an index, and without --browse, is not listed.
  CHECK(server.curl({"-o", "/dev/null", "-w", "%{http_code}", server.https("/sub/")}, server.local_root()).out == "404");
  CHECK(server.curl({"-o", "/dev/null", "-w", "%{http_code}", server.https("/missing")}, server.local_root()).out ==
        "404");
  // A path that tries to leave the root, sent as is.
  r = server.curl({"--path-as-is", "-o", "/dev/null", "-w", "%{http_code}", server.https("/../../../../etc/passwd")},
                  server.local_root());
  CHECK(r.out != "200");
  CHECK(server.curl({"-o", "/dev/null", "-w", "%{http_code}", server.https("/%2e%2e/%2e%2e/etc/passwd")},
                    server.local_root())
            .out != "200");

  // Limits: a head over 16 KiB gets 431; plain HTTP on the TLS port gets 400.
  CHECK(server.curl({"-o", "/dev/null", "-w", "%{http_code}", "-H", "X-Big: " + std::string(20000, 'a'),
                     server.https("/")},
                    server.local_root())
            .out == "431");
  r = run_command({"curl", "-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}",
                   "http://127.0.0.1:" + std::to_string(server.https_port) + "/"},
                  "", {}, 20s);
  CHECK(r.out == "400");

  // A name we do not serve gets a fatal unrecognized_name alert, never another site's certificate.
  r = run_command({"curl", "-sS", "--max-time", "10", "-k", "--resolve",
                   "other.test:" + std::to_string(server.https_port) + ":127.0.0.1",
                   "https://other.test:" + std::to_string(server.https_port) + "/"},
                  "", {}, 20s);
  CHECK(r.exit_code != 0);
  CHECK(r.err.find("unrecognized name") != std::string::npos);

  // HTTP/2 through ALPN: several requests on one connection, a range, and a file of 3 MiB, which
  // needs flow control (the initial window is 64 KiB).
  std::string big(3 * 1024 * 1024, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  write_file(server.www / "big.txt", big);
  r = server.curl({"--http2", "-w", " %{http_version}", server.https("/"), server.https("/sub/file.txt")},
                  server.local_root());
  CHECK(r.out == "hello from acmetool\n 20123456789 2");
  CHECK(server.curl({"--http2", "-r", "3-5", server.https("/sub/file.txt")}, server.local_root()).out == "345");
  // nghttp (nghttp2's own client) and h2load negotiate h2 and get the page.
  r = run_command({"nghttp", "-v", server.https("/")}, "", {}, 20s);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("hello from acmetool") != std::string::npos);
  CHECK(r.out.find(":status: 200") != std::string::npos);
  r = run_command({"h2load", "-n", "20", "-c", "2", server.https("/")}, "", {}, 20s);
  CHECK(r.out.find("Application protocol: h2") != std::string::npos);
  CHECK(r.out.find("20 succeeded") != std::string::npos);
  r = server.curl({"--http2", server.https("/big.txt")}, server.local_root());
  CHECK(r.out.size() == big.size());
  CHECK(r.out == big);

  // Sessions resume (rotating ticket keys), in TLS 1.3 and 1.2.
  for (const std::string version : {"-tls1_3", "-tls1_2"}) {
    const fs::path session = server.dir.path() / ("session" + version);
    auto s_client = [&](const std::string& flag) {
      return run_command({"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(server.https_port),
                          "-servername", "localhost", version, flag, session.string(), "-CAfile",
                          server.local_root().string(), "-ign_eof"},
                         // A request, read to the end: by then the TLS 1.3 tickets have arrived.
                         "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", {}, 20s);
    };
    INFO(version);
    CHECK(s_client("-sess_out").out.find("\nNew, TLSv1.") != std::string::npos);
    CHECK(s_client("-sess_in").out.find("\nReused, TLSv1.") != std::string::npos);
  }

  // SIGTERM stops it gracefully with status 0.
  server.process->kill(SIGTERM);
  const auto status = server.process->wait(15s);
  REQUIRE(status);
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
}

TEST_CASE("serve --domain with a public name gets its certificate from pebble through its own HTTP port",
          "[serve][cli][pebble]") {
  PebbleServer& pebble = PebbleServer::shared();
  QuickServer server("site.serve.test",
                     {"--ca", pebble.directory_url(), "--ca-root", pebble.listener_ca_file().string()},
                     pebble.http01_port());
  CommandResult r;
  const bool up = server.wait_until_serving(pebble.root_file(), 30s, r);
  INFO(acmetool::test::log_tail("serve", server.log));
  INFO(r.err);
  REQUIRE(up);
  CHECK(r.out == "hello from acmetool\n");
  server.process->kill(SIGTERM);
  CHECK(server.process->wait(15s));
}

TEST_CASE("serve -c Caddyfile serves its sites: files, respond, headers, redirects and an http:// site",
          "[serve][cli]") {
  TempDir dir;
  const fs::path www = dir.path() / "www";
  fs::create_directories(www);
  write_file(www / "index.html", "caddyfile site\n");
  const std::vector<int> ports = acmetool::test::distinct_free_ports(2);
  const std::string http = std::to_string(ports[0]), https = std::to_string(ports[1]);
  const fs::path caddyfile = dir.path() / "Caddyfile";
  write_file(caddyfile, "{\n\thttp_port " + http + "\n\thttps_port " + https +
                            "\n}\n"
                            "localhost {\n\troot * " + www.string() +
                            "\n\tfile_server\n\theader X-Served-By acmetool\n"
                            "\tbasic_auth /admin/* {\n\t\talice " + bcrypt_hash("sesame") + "\n\t}\n"
                            "\trespond /admin/* \"admin {http.auth.user.id}\"\n"
                            "\tlog {\n\t\toutput file " +
                            (dir.path() / "access.log").string() + "\n\t}\n}\n"
                            "app.localhost {\n\trespond \"app {host} {uri}\" 201\n}\n"
                            "http://plain.localhost {\n\trespond \"plain\"\n}\n");
  const fs::path storage = dir.path() / "storage", log = dir.path() / "serve.log";
  ChildProcess process = ChildProcess::start(
      {ACMETOOL_BINARY, "--storage", storage.string(), "serve", "-c", caddyfile.string()}, log);
  const fs::path root = storage / "pki" / "authorities" / "local" / "root.crt";
  auto curl = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {"curl", "-sS", "--max-time", "10", "--cacert", root.string()};
    for (const char* name : {"localhost", "app.localhost", "plain.localhost"}) {
      for (const std::string& port : {http, https}) {
        argv.insert(argv.end(), {"--resolve", std::string(name) + ":" + port + ":127.0.0.1"});
      }
    }
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, "", {}, 20s);
  };
  CommandResult r;
  const bool up = acmetool::test::wait_until(
      [&] {
        r = curl({"https://localhost:" + https + "/"});
        return r.exit_code == 0;
      },
      20s);
  INFO(acmetool::test::log_tail("serve", log));
  INFO(r.err);
  REQUIRE(up);
  CHECK(r.out == "caddyfile site\n");
  r = curl({"-D", "-", "-o", "/dev/null", "https://localhost:" + https + "/"});
  for (char& c : r.out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));  // HTTP/2: lower case
  CHECK(r.out.find("x-served-by: acmetool") != std::string::npos);
  REQUIRE(acmetool::test::wait_until([&] { return curl({"https://app.localhost:" + https + "/x?y=1"}).exit_code == 0; },
                                     20s));
  r = curl({"-w", " %{http_code}", "https://app.localhost:" + https + "/x?y=1"});
  CHECK(r.out == "app app.localhost /x?y=1 201");
  CHECK(curl({"http://plain.localhost:" + http + "/"}).out == "plain");
  // basic_auth: 401 with a challenge without credentials or with wrong ones, the page with right ones.
  r = curl({"-D", "-", "-o", "/dev/null", "https://localhost:" + https + "/admin/x"});
  INFO(r.err);
  CHECK(r.out.find(" 401") != std::string::npos);
  CHECK(r.out.find("asic realm=\"restricted\"") != std::string::npos);
  CHECK(curl({"-o", "/dev/null", "-w", "%{http_code}", "-u", "alice:wrong", "https://localhost:" + https + "/admin/x"})
            .out == "401");
  CHECK(curl({"-u", "alice:sesame", "https://localhost:" + https + "/admin/x"}).out == "admin alice");
  // The site's access log: one JSON line per request, Caddy's fields.
  const std::string access = acmetool::test::read_text(dir.path() / "access.log");
  CHECK(access.find("\"logger\":\"http.log.access") != std::string::npos);
  CHECK(access.find("\"uri\":\"/\"") != std::string::npos);
  CHECK(access.find("\"status\":200") != std::string::npos);
  CHECK(access.find("\"proto\":\"h2\"") != std::string::npos);  // curl negotiated HTTP/2
  CHECK(std::regex_search(access, std::regex(R"("remote_port":"[1-9][0-9]*")")));
  CHECK(std::regex_search(access, std::regex(R"("duration":0\.[0-9]+)")));
  CHECK(curl({"-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "http://localhost:" + http + "/a?b"}).out ==
        "308 https://localhost:" + https + "/a?b");
  process.kill(SIGTERM);
  const auto status = process.wait(15s);
  REQUIRE(status);
  CHECK(WEXITSTATUS(*status) == 0);
}

TEST_CASE("serve refuses a Caddyfile with a directive it cannot run yet, naming the line", "[serve][cli]") {
  TempDir dir;
  const fs::path caddyfile = dir.path() / "Caddyfile";
  write_file(caddyfile, "localhost {\n\ttry_files {path} /index.html\n}\n");
  const CommandResult r = run_command(
      {ACMETOOL_BINARY, "--storage", (dir.path() / "storage").string(), "serve", "-c", caddyfile.string()}, "", {},
      20s);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find(caddyfile.string() + ":2") != std::string::npos);
  CHECK(r.err.find("try_files") != std::string::npos);
}

TEST_CASE("serve resists slow clients and request smuggling", "[serve][cli][security]") {
  QuickServer server("localhost");
  CommandResult first;
  REQUIRE(server.wait_until_serving(server.local_root(), 20s, first));
  // Slowloris on both ports, at once: an unfinished request head, and an unfinished ClientHello,
  // are cut off by the 10 s header timeout.
  auto slow_http = std::async(std::launch::async, [&] {
    return raw_exchange(server.http_port, "GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: 1\r\n", 20s);
  });
  auto slow_tls = std::async(std::launch::async,
                             [&] { return raw_exchange(server.https_port, std::string("\x16\x03\x01\x00", 4), 20s); });
  const RawExchange http = slow_http.get(), tls = slow_tls.get();
  CHECK(http.closed);
  CHECK(http.closed_after < 15s);
  CHECK(tls.closed);
  CHECK(tls.closed_after < 15s);

  // Content-Length with Transfer-Encoding: one 400, the connection closed, nothing smuggled.
  const RawExchange smuggle = raw_exchange(
      server.http_port,
      "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n",
      10s);
  CHECK(smuggle.received.rfind("HTTP/1.1 400", 0) == 0);
  CHECK(smuggle.received.find("HTTP/1.1", 1) == std::string::npos);  // exactly one response
  CHECK(smuggle.closed);
}

TEST_CASE("Chromium renders a page served with a local-CA certificate without certificate errors",
          "[serve][cli][browser]") {
  if (!fs::exists("/usr/bin/chromium") || !fs::exists("/usr/bin/certutil")) {
    WARN("chromium or certutil is not installed: skipped");
    return;
  }
  QuickServer server("localhost");
  CommandResult first;
  REQUIRE(server.wait_until_serving(server.local_root(), 20s, first));
  // A profile of the test's own whose NSS database trusts the local root, as `acmetool trust`
  // would set up for the user.
  const fs::path home = server.dir.path() / "home";
  const fs::path nssdb = home / ".pki" / "nssdb";
  fs::create_directories(nssdb);
  REQUIRE(run_command({"certutil", "-N", "-d", "sql:" + nssdb.string(), "--empty-password"}).exit_code == 0);
  REQUIRE(run_command({"certutil", "-A", "-d", "sql:" + nssdb.string(), "-t", "C,,", "-n", "acmetool test root",
                       "-i", server.local_root().string()})
              .exit_code == 0);
  const CommandResult r = run_command(
      {"chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
       "--user-data-dir=" + (home / "profile").string(), "--dump-dom", server.https("/")},
      "", {{"HOME", home.string()}}, 90s);
  INFO(r.err.substr(0, 2000));
  CHECK(r.out.find("hello from acmetool") != std::string::npos);
}

TEST_CASE("serve --reload loads a changed Caddyfile, and keeps the running one when the new one is broken",
          "[serve][cli][reload]") {
  TempDir dir;
  const std::vector<int> ports = acmetool::test::distinct_free_ports(2);
  const std::string http = std::to_string(ports[0]), https = std::to_string(ports[1]);
  const fs::path caddyfile = dir.path() / "Caddyfile", storage = dir.path() / "storage", log = dir.path() / "serve.log";
  auto write_site = [&](const std::string& body) {
    write_file(caddyfile, "{\n\thttp_port " + http + "\n\thttps_port " + https + "\n}\nlocalhost {\n" + body + "}\n");
  };
  write_site("\trespond \"one\"\n");
  ChildProcess process = ChildProcess::start(
      {ACMETOOL_BINARY, "--storage", storage.string(), "serve", "-c", caddyfile.string()}, log);
  const fs::path root = storage / "pki" / "authorities" / "local" / "root.crt";
  auto get = [&] {
    return run_command({"curl", "-sS", "--max-time", "10", "--cacert", root.string(), "--resolve",
                        "localhost:" + https + ":127.0.0.1", "https://localhost:" + https + "/"},
                       "", {}, 20s);
  };
  const bool up = acmetool::test::wait_until([&] { return get().out == "one"; }, 20s);
  INFO(acmetool::test::log_tail("serve", log));
  INFO(get().err);
  REQUIRE(up);
  REQUIRE(fs::exists(storage / "serve.pid"));

  write_site("\trespond \"two\"\n");
  const CommandResult reload = run_command(
      {ACMETOOL_BINARY, "--storage", storage.string(), "serve", "--reload", "-c", caddyfile.string()}, "", {}, 20s);
  CHECK(reload.exit_code == 0);
  CHECK(acmetool::test::wait_until([&] { return get().out == "two"; }, 10s));

  // A broken file: --reload refuses it (exit 2) and says why; a SIGHUP anyway keeps "two".
  write_site("\trespond \"three\" {\n");
  const CommandResult refused = run_command(
      {ACMETOOL_BINARY, "--storage", storage.string(), "serve", "--reload", "-c", caddyfile.string()}, "", {}, 20s);
  CHECK(refused.exit_code == 2);
  process.kill(SIGHUP);
  CHECK(acmetool::test::wait_until(
      [&] { return acmetool::test::read_text(log).find("reload failed, keeping the running configuration") !=
                   std::string::npos; },
      10s));
  CHECK(get().out == "two");

  process.kill(SIGTERM);
  const auto status = process.wait(15s);
  REQUIRE(status);
  CHECK(WEXITSTATUS(*status) == 0);
  CHECK_FALSE(fs::exists(storage / "serve.pid"));
}

namespace {

// Whether something listens on TCP `port` at an address other than 127.0.0.1, by
// /proc/net/tcp and /proc/net/tcp6 (local address in hex, state 0A = LISTEN).
bool listens_beyond_loopback(int port) {
  char port_hex[8];
  std::snprintf(port_hex, sizeof port_hex, ":%04X", static_cast<unsigned>(port));
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::istringstream lines(acmetool::test::read_text(table));
    std::string line;
    while (std::getline(lines, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state;
      fields >> slot >> local >> remote >> state;
      if (state != "0A" || !local.ends_with(port_hex)) continue;
      if (local.rfind("0100007F:", 0) != 0) return true;
    }
  }
  return false;
}

}  // namespace

TEST_CASE("serve answers tls-alpn-01 on its HTTPS port and listens only where the sites bind",
          "[serve][cli][pebble]") {
  PebbleServer& pebble = PebbleServer::shared();
  TempDir dir;
  const std::string http = std::to_string(acmetool::test::distinct_free_ports(1)[0]);
  const std::string https = std::to_string(pebble.tlsalpn01_port());
  const fs::path caddyfile = dir.path() / "Caddyfile", storage = dir.path() / "storage", log = dir.path() / "serve.log";
  // http-01 is off and the HTTP port is not the one pebble validates on: only tls-alpn-01 can work.
  write_file(caddyfile, "{\n\thttp_port " + http + "\n\thttps_port " + https + "\n\tacme_ca " + pebble.directory_url() +
                            "\n\tacme_ca_root " + pebble.listener_ca_file().string() +
                            "\n}\n"
                            "alpn.serve.test {\n\tbind 127.0.0.1\n\ttls {\n\t\tissuer acme {\n"
                            "\t\t\tdisable_http_challenge\n\t\t}\n\t}\n\trespond \"alpn\"\n}\n");
  ChildProcess process = ChildProcess::start(
      {ACMETOOL_BINARY, "--storage", storage.string(), "serve", "-c", caddyfile.string()}, log);
  auto get = [&] {
    return run_command({"curl", "-sS", "--max-time", "10", "--cacert", pebble.root_file().string(), "--resolve",
                        "alpn.serve.test:" + https + ":127.0.0.1", "https://alpn.serve.test:" + https + "/"},
                       "", {}, 20s);
  };
  CommandResult r;
  const bool up = acmetool::test::wait_until(
      [&] {
        r = get();
        return r.exit_code == 0;
      },
      30s);
  INFO(acmetool::test::log_tail("serve", log));
  INFO(r.err);
  REQUIRE(up);
  CHECK(r.out == "alpn");
  CHECK_FALSE(listens_beyond_loopback(pebble.tlsalpn01_port()));
  CHECK_FALSE(listens_beyond_loopback(std::stoi(http)));
  // A validation handshake for a name with no challenge presented is refused, never answered with
  // the site's certificate.
  r = run_command({"openssl", "s_client", "-connect", "127.0.0.1:" + https, "-servername", "alpn.serve.test", "-alpn",
                   "acme-tls/1"},
                  "", {}, 20s);
  CHECK(r.exit_code != 0);
  CHECK((r.out + r.err).find("unrecognized name") != std::string::npos);
  process.kill(SIGTERM);
  CHECK(process.wait(15s));
}

TEST_CASE("serve --trust puts the local CA's root into the system store, so plain curl trusts the site",
          "[serve][cli][trust]") {
  TempDir home;
  const std::vector<int> ports = acmetool::test::distinct_free_ports(2);
  TempDir dir;
  const fs::path storage = dir.path() / "storage", www = dir.path() / "www", log = dir.path() / "serve.log";
  fs::create_directories(www);
  write_file(www / "index.html", "trusted\n");
  const std::string https = std::to_string(ports[1]);
  ChildProcess process = ChildProcess::start(
      {ACMETOOL_BINARY, "--storage", storage.string(), "serve", "--domain", "localhost", "--root", www.string(),
       "--listen", "127.0.0.1", "--http-port", std::to_string(ports[0]), "--https-port", https, "--trust"},
      log, {{"HOME", home.path().string()}});
  // No --cacert: curl uses the system bundle, which update-ca-certificates rebuilt.
  CommandResult r;
  const bool up = acmetool::test::wait_until(
      [&] {
        r = run_command({"curl", "-sS", "--max-time", "10", "https://localhost:" + https + "/"}, "", {}, 20s);
        return r.exit_code == 0;
      },
      60s);
  INFO(acmetool::test::log_tail("serve", log));
  INFO(r.err);
  CHECK(up);
  CHECK(r.out == "trusted\n");
  CHECK(acmetool::test::read_text(log).find("trusted the local CA in system") != std::string::npos);
  // Leave the machine as it was: untrusted again, curl refuses the certificate (exit 60).
  CHECK(run_command({ACMETOOL_BINARY, "--storage", storage.string(), "untrust"}, "",
                    {{"HOME", home.path().string()}}, 120s)
            .exit_code == 0);
  CHECK(run_command({"curl", "-sS", "--max-time", "10", "https://localhost:" + https + "/"}, "", {}, 20s).exit_code ==
        60);
  process.kill(SIGTERM);
  CHECK(process.wait(15s));
}

TEST_CASE("serve compresses with encode: negotiated coding, coded ETag, 304, small and ranged bodies untouched",
          "[serve][cli][encode]") {
  TempDir dir;
  const fs::path www = dir.path() / "www";
  fs::create_directories(www);
  std::string text;
  for (int i = 0; text.size() < 20000; ++i) text += "line " + std::to_string(i) + " of a compressible page\n";
  write_file(www / "page.txt", text);
  write_file(www / "tiny.txt", "tiny\n");
  const std::vector<int> ports = acmetool::test::distinct_free_ports(2);
  const std::string http = std::to_string(ports[0]), https = std::to_string(ports[1]);
  const fs::path caddyfile = dir.path() / "Caddyfile", storage = dir.path() / "storage", log = dir.path() / "serve.log";
  write_file(caddyfile, "{\n\thttp_port " + http + "\n\thttps_port " + https + "\n}\nlocalhost {\n\troot * " +
                            www.string() + "\n\tencode gzip zstd\n\tfile_server\n}\n");
  ChildProcess process = ChildProcess::start(
      {ACMETOOL_BINARY, "--storage", storage.string(), "serve", "-c", caddyfile.string()}, log);
  const fs::path root = storage / "pki" / "authorities" / "local" / "root.crt";
  auto curl = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {"curl", "-sS", "--http1.1", "--max-time", "10", "--cacert", root.string(),
                                     "--resolve", "localhost:" + https + ":127.0.0.1"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, "", {}, 20s);
  };
  const std::string url = "https://localhost:" + https;
  REQUIRE(acmetool::test::wait_until([&] { return curl({url + "/tiny.txt"}).exit_code == 0; }, 20s));
  // The field value of `name` in a response head (lower-cased names), "" when absent.
  auto field = [](std::string head, const std::string& name) {
    for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const auto at = head.find("\n" + name + ": ");
    return at == std::string::npos ? std::string() : head.substr(at + name.size() + 3, head.find('\r', at) - at - name.size() - 3);
  };

  // gzip, as asked; curl --compressed decodes it back to the file.
  CommandResult r = curl({"-D", "-", "-o", "/dev/null", "-H", "Accept-Encoding: gzip", url + "/page.txt"});
  CHECK(field(r.out, "content-encoding") == "gzip");
  CHECK(field(r.out, "vary") == "accept-encoding");
  CHECK(field(r.out, "accept-ranges").empty());
  const std::string etag = field(r.out, "etag");
  CHECK(etag.ends_with("-gzip\""));
  CHECK(std::stoul(field(r.out, "content-length")) < text.size() / 4);
  CHECK(curl({"--compressed", url + "/page.txt"}).out == text);
  // The higher q-value wins; a tie goes to the configured order (gzip, then zstd).
  r = curl({"-D", "-", "-o", "/dev/null", "-H", "Accept-Encoding: zstd, gzip;q=0.5", url + "/page.txt"});
  CHECK(field(r.out, "content-encoding") == "zstd");
  r = curl({"-D", "-", "-o", "/dev/null", "-H", "Accept-Encoding: zstd, gzip", url + "/page.txt"});
  CHECK(field(r.out, "content-encoding") == "gzip");
  // The coded ETag revalidates: 304 with the same ETag.
  r = curl({"-D", "-", "-o", "/dev/null", "-H", "Accept-Encoding: gzip", "-H", "If-None-Match: " + etag,
            url + "/page.txt"});
  CHECK(r.out.find(" 304") != std::string::npos);
  CHECK(field(r.out, "etag") == etag);
  // HEAD announces the length GET sends.
  r = curl({"-I", "-H", "Accept-Encoding: gzip", url + "/page.txt"});
  const std::string head_length = field(r.out, "content-length");
  r = curl({"-D", "-", "-o", "/dev/null", "-H", "Accept-Encoding: gzip", url + "/page.txt"});
  CHECK(field(r.out, "content-length") == head_length);
  // Not encoded: a body of 512 bytes or less, a client that accepts nothing, a range.
  r = curl({"-D", "-", "-o", "/dev/null", "-H", "Accept-Encoding: gzip", url + "/tiny.txt"});
  CHECK(field(r.out, "content-encoding").empty());
  r = curl({"-D", "-", "-o", "/dev/null", url + "/page.txt"});
  CHECK(field(r.out, "content-encoding").empty());
  CHECK(field(r.out, "content-length") == std::to_string(text.size()));
  r = curl({"-H", "Accept-Encoding: gzip", "-r", "0-9", url + "/page.txt"});
  CHECK(r.out == text.substr(0, 10));
  process.kill(SIGTERM);
  CHECK(process.wait(15s));
}

TEST_CASE("serve's admin endpoint counts requests, handshakes and certificates in /metrics and answers /health",
          "[serve][cli][admin]") {
  TempDir dir;
  const std::vector<int> ports = acmetool::test::distinct_free_ports(3);
  const std::string http = std::to_string(ports[0]), https = std::to_string(ports[1]), admin = std::to_string(ports[2]);
  const fs::path caddyfile = dir.path() / "Caddyfile", storage = dir.path() / "storage", log = dir.path() / "serve.log";
  write_file(caddyfile, "{\n\thttp_port " + http + "\n\thttps_port " + https + "\n\tadmin 127.0.0.1:" + admin +
                            "\n}\nlocalhost {\n\trespond \"counted\"\n}\n");
  ChildProcess process = ChildProcess::start(
      {ACMETOOL_BINARY, "--storage", storage.string(), "serve", "-c", caddyfile.string()}, log);
  const fs::path root = storage / "pki" / "authorities" / "local" / "root.crt";
  auto get = [&] {
    return run_command({"curl", "-sS", "--http1.1", "--max-time", "10", "--cacert", root.string(), "--resolve",
                        "localhost:" + https + ":127.0.0.1", "https://localhost:" + https + "/"},
                       "", {}, 20s);
  };
  const bool up = acmetool::test::wait_until([&] { return get().out == "counted"; }, 20s);
  INFO(acmetool::test::log_tail("serve", log));
  REQUIRE(up);
  for (int i = 0; i < 4; ++i) CHECK(get().out == "counted");
  // A name not served: refused, and counted as such.
  CHECK(run_command({"curl", "-sS", "-k", "--max-time", "10", "--resolve", "other.test:" + https + ":127.0.0.1",
                     "https://other.test:" + https + "/"},
                    "", {}, 20s)
            .exit_code != 0);
  auto admin_get = [&](const std::string& path, const std::string& host = "") {
    std::vector<std::string> argv = {"curl", "-sS", "--max-time", "10", "-w", "\n%{http_code}"};
    if (!host.empty()) argv.insert(argv.end(), {"-H", "Host: " + host});
    argv.push_back("http://127.0.0.1:" + admin + path);
    return run_command(argv, "", {}, 20s).out;
  };
  const std::string metrics = admin_get("/metrics");
  CHECK(metrics.ends_with("\n200"));
  // The requests that succeeded (the first polls may have failed before the certificate).
  const std::regex requests(R"(acmetool_http_requests_total\{proto="h1",scheme="https"\} (\d+))");
  std::smatch m;
  REQUIRE(std::regex_search(metrics, m, requests));
  CHECK(std::stoi(m[1]) >= 5);
  CHECK(std::regex_search(metrics, std::regex(R"(acmetool_tls_handshakes_total\{outcome="ok"\} [1-9])")));
  CHECK(std::regex_search(metrics, std::regex(R"(acmetool_tls_handshakes_total\{outcome="unrecognized_name"\} 1\b)")));
  CHECK(std::regex_search(metrics, std::regex(R"(acmetool_certificates_cached [1-9])")));
  CHECK(metrics.find("# TYPE acmetool_http_request_duration_seconds histogram") != std::string::npos);
  CHECK(admin_get("/health").ends_with("\n200"));
  // DNS rebinding: a page on another origin cannot read the endpoint through a name of its own.
  CHECK(admin_get("/metrics", "evil.example").ends_with("\n403"));
  process.kill(SIGTERM);
  CHECK(process.wait(15s));

  // Quick mode takes --admin too.
  const std::string quick_admin = std::to_string(acmetool::test::distinct_free_ports(1)[0]);
  QuickServer quick("localhost", {"--admin", "127.0.0.1:" + quick_admin});
  CommandResult q;
  REQUIRE(quick.wait_until_serving(quick.local_root(), 20s, q));
  const std::string quick_metrics =
      run_command({"curl", "-sS", "--max-time", "10", "http://127.0.0.1:" + quick_admin + "/metrics"}, "", {}, 20s).out;
  CHECK(std::regex_search(quick_metrics, std::regex(R"(acmetool_http_requests_total\{proto="h2",scheme="https"\} [1-9])")));
}

TEST_CASE("an http:// site sends files with sendfile: a big file, a range and several ranges arrive intact",
          "[serve][cli][sendfile]") {
  TempDir dir;
  const fs::path www = dir.path() / "www";
  fs::create_directories(www);
  std::string big(5 * 1024 * 1024 + 7, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('A' + (i * 7 + i / 4096) % 26);
  write_file(www / "big.bin", big);
  const std::vector<int> ports = acmetool::test::distinct_free_ports(2);
  const std::string http = std::to_string(ports[0]), https = std::to_string(ports[1]);
  const fs::path caddyfile = dir.path() / "Caddyfile", log = dir.path() / "serve.log";
  write_file(caddyfile, "{\n\thttp_port " + http + "\n\thttps_port " + https + "\n}\nhttp://localhost {\n\troot * " +
                            www.string() + "\n\tfile_server\n}\n");
  ChildProcess process = ChildProcess::start(
      {ACMETOOL_BINARY, "--storage", (dir.path() / "storage").string(), "serve", "-c", caddyfile.string()}, log);
  const std::string url = "http://127.0.0.1:" + http + "/big.bin";
  auto curl = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {"curl", "-sS", "--max-time", "20", "-H", "Host: localhost"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, "", {}, 30s);
  };
  CommandResult r;
  const bool up = acmetool::test::wait_until(
      [&] {
        r = curl({url});
        return r.exit_code == 0;
      },
      20s);
  INFO(acmetool::test::log_tail("serve", log));
  REQUIRE(up);
  CHECK(r.out.size() == big.size());
  CHECK(r.out == big);
  CHECK(curl({"-r", "4000000-4000009", url}).out == big.substr(4000000, 10));
  r = curl({"-r", "0-2,5242880-5242886", url});
  CHECK(r.out.find(big.substr(0, 3)) != std::string::npos);
  CHECK(r.out.find(big.substr(5242880, 7)) != std::string::npos);
  // Four clients at once, each limited to 2 MB/s: the server waits for their sockets to drain.
  std::vector<std::future<CommandResult>> slow;
  for (int i = 0; i < 4; ++i) slow.push_back(std::async(std::launch::async, [&] { return curl({"--limit-rate", "2M", url}); }));
  for (auto& f : slow) CHECK(f.get().out == big);
  process.kill(SIGTERM);
  CHECK(process.wait(15s));
}

TEST_CASE("serve obtains on-demand certificates at the first handshake for names the ask endpoint allows",
          "[serve][cli][pebble][on_demand]") {
  PebbleServer& pebble = PebbleServer::shared();
  acmetool::test::TinyHttpServer ask([](const acmetool::test::RecordedRequest& request) {
    const bool allowed = request.target.find(".allowed.test") != std::string::npos;
    return acmetool::test::CannedResponse{allowed ? 200 : 403, "", "text/plain", {}};
  });
  TempDir dir;
  const std::string https = std::to_string(acmetool::test::distinct_free_ports(1)[0]);
  const fs::path caddyfile = dir.path() / "Caddyfile", storage = dir.path() / "storage", log = dir.path() / "serve.log";
  write_file(caddyfile, "{\n\thttp_port " + std::to_string(pebble.http01_port()) + "\n\thttps_port " + https +
                            "\n\tacme_ca " + pebble.directory_url() + "\n\tacme_ca_root " +
                            pebble.listener_ca_file().string() + "\n\ton_demand_tls {\n\t\task " + ask.url() +
                            "/check\n\t}\n}\nhttps:// {\n\tbind 127.0.0.1\n\ttls {\n\t\ton_demand\n\t}\n"
                            "\trespond \"on demand {host}\"\n}\n");
  ChildProcess process = ChildProcess::start(
      {ACMETOOL_BINARY, "--storage", storage.string(), "serve", "-c", caddyfile.string()}, log);
  auto get = [&](const std::string& name) {
    return run_command({"curl", "-sS", "--max-time", "30", "--cacert", pebble.root_file().string(), "--resolve",
                        name + ":" + https + ":127.0.0.1", "https://" + name + ":" + https + "/"},
                       "", {}, 40s);
  };
  // Wait until the server listens (a denied name is answered with an alert once it does).
  REQUIRE(acmetool::test::wait_until(
      [&] { return get("probe.denied.test").err.find("Couldn't connect") == std::string::npos; }, 20s));
  CommandResult r = get("shop.allowed.test");  // the handshake waits for the order
  INFO(acmetool::test::log_tail("serve", log));
  INFO(r.err);
  CHECK(r.out == "on demand shop.allowed.test");
  CHECK(get("shop.allowed.test").out == "on demand shop.allowed.test");  // from the cache now
  // A name the endpoint refuses gets an alert, and is asked about once.
  for (int i = 0; i < 3; ++i) {
    r = get("scanner.denied.test");
    CHECK(r.exit_code != 0);
    CHECK(r.err.find("unrecognized name") != std::string::npos);
  }
  int asked_scanner = 0, asked_shop = 0;
  for (const auto& request : ask.requests()) {
    asked_scanner += request.target.find("domain=scanner.denied.test") != std::string::npos;
    asked_shop += request.target.find("domain=shop.allowed.test") != std::string::npos;
  }
  CHECK(asked_scanner == 1);
  CHECK(asked_shop == 1);
  process.kill(SIGTERM);
  CHECK(process.wait(15s));
}

TEST_CASE("two serve instances sharing storage act as one for on-demand names", "[serve][cli][pebble][on_demand]") {
  PebbleServer& pebble = PebbleServer::shared();
  acmetool::test::TinyHttpServer ask([](const acmetool::test::RecordedRequest& request) {
    const bool allowed = request.target.find(".allowed.test") != std::string::npos;
    return acmetool::test::CannedResponse{allowed ? 200 : 403, "", "text/plain", {}};
  });
  TempDir dir;
  const fs::path storage = dir.path() / "storage";
  const std::vector<int> ports = acmetool::test::distinct_free_ports(3);
  // Instance A answers the CA's http-01 requests; B has an HTTP port of its own that the CA never
  // reaches, so an order B places fails.
  struct Instance {
    std::string https;
    fs::path log;
    std::optional<ChildProcess> process;
  };
  Instance a{std::to_string(ports[0]), dir.path() / "a.log", {}}, b{std::to_string(ports[1]), dir.path() / "b.log", {}};
  const auto start = [&](Instance& instance, int http_port, const std::string& tag) {
    const fs::path caddyfile = dir.path() / ("Caddyfile." + tag);
    write_file(caddyfile, "{\n\thttp_port " + std::to_string(http_port) + "\n\thttps_port " + instance.https +
                              "\n\tacme_ca " + pebble.directory_url() + "\n\tacme_ca_root " +
                              pebble.listener_ca_file().string() + "\n\ton_demand_tls {\n\t\task " + ask.url() +
                              "/check\n\t\tcooldown 10m\n\t}\n}\nhttps:// {\n\tbind 127.0.0.1\n\ttls {\n\t\ton_demand\n\t}\n"
                              "\trespond \"" + tag + " {host}\"\n}\n");
    instance.process.emplace(ChildProcess::start({ACMETOOL_BINARY, "--storage", storage.string(), "serve", "-c",
                                                  caddyfile.string(), "--pidfile", (dir.path() / (tag + ".pid")).string()},
                                                 instance.log));
  };
  start(a, pebble.http01_port(), "a");
  start(b, ports[2], "b");
  const auto get = [&](const Instance& instance, const std::string& name) {
    return run_command({"curl", "-sS", "--max-time", "60", "--cacert", pebble.root_file().string(), "--resolve",
                        name + ":" + instance.https + ":127.0.0.1", "https://" + name + ":" + instance.https + "/"},
                       "", {}, 70s);
  };
  const auto asked = [&](const std::string& name) {
    int n = 0;
    for (const auto& request : ask.requests()) n += request.target.find("domain=" + name) != std::string::npos;
    return n;
  };
  for (const Instance* instance : {&a, &b}) {
    REQUIRE(acmetool::test::wait_until(
        [&] { return get(*instance, "probe.denied.test").err.find("Couldn't connect") == std::string::npos; }, 20s));
  }
  INFO(acmetool::test::log_tail("a", a.log));
  INFO(acmetool::test::log_tail("b", b.log));

  // Issued by A, served by B from the shared storage: B neither asks nor orders.
  CHECK(get(a, "shop.allowed.test").out == "a shop.allowed.test");
  CHECK(get(b, "shop.allowed.test").out == "b shop.allowed.test");
  CHECK(asked("shop.allowed.test") == 1);
  CHECK(acmetool::test::read_text(b.log).find("obtained a certificate for shop.allowed.test") == std::string::npos);

  // The refusal record is written right after the handshake is refused.
  const auto recorded = [&](const std::string& name) {
    return acmetool::test::wait_until([&] { return fs::exists(storage / "on_demand" / "refused" / name); }, 5s);
  };
  // Denied on A: B refuses it without asking the endpoint again.
  CHECK(get(a, "scanner.denied.test").err.find("unrecognized name") != std::string::npos);
  CHECK(recorded("scanner.denied.test"));
  CHECK(get(b, "scanner.denied.test").err.find("unrecognized name") != std::string::npos);
  CHECK(asked("scanner.denied.test") == 1);

  // An order that fails on B (the CA cannot reach it) cools the name down on A as well.
  CHECK(get(b, "unreachable.allowed.test").exit_code != 0);
  CHECK(recorded("unreachable.allowed.test"));
  CHECK(get(a, "unreachable.allowed.test").err.find("unrecognized name") != std::string::npos);
  CHECK(asked("unreachable.allowed.test") == 1);
  CHECK(acmetool::test::read_text(a.log).find("refused by another instance") != std::string::npos);

  for (Instance* instance : {&a, &b}) {
    instance->process->kill(SIGTERM);
    CHECK(instance->process->wait(15s));
  }
}
