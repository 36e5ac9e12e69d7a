// `acmetool serve -c Caddyfile` as a reverse proxy, end to end: the binary proxies to
// TestUpstreams on 127.0.0.1, and curl or raw sockets speak to it as clients do. Each test
// starts its own server (a plain http:// site unless TLS matters) and asserts what the upstream
// saw and what the client got.
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bind9.h"
#include "fixture_util.h"
#include "process.h"
#include "raw_socket.h"
#include "test_upstream.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using acmetool::test::ChildProcess;
using acmetool::test::CommandResult;
using acmetool::test::Exchange;
using acmetool::test::run_command;
using acmetool::test::TempDir;
using acmetool::test::TestUpstream;
using acmetool::test::UpstreamRecord;

namespace {

using Clock = std::chrono::steady_clock;

// A running `acmetool serve -c Caddyfile` with one site: `http://localhost:HTTP` or, with `tls`,
// `localhost` on HTTPS (a local-CA certificate). `site` is the site block's body.
struct ProxyServer {
  TempDir dir;
  fs::path storage = dir.path() / "storage";
  fs::path log = dir.path() / "serve.log";
  bool tls = false;
  int http_port = 0, https_port = 0;
  std::optional<ChildProcess> process;

  // `globals`: more global options, each line tab-indented.
  explicit ProxyServer(const std::string& site, bool use_tls = false, const std::string& globals = "") : tls(use_tls) {
    const std::vector<int> ports = acmetool::test::distinct_free_ports(2);
    http_port = ports[0];
    https_port = ports[1];
    const std::string address = tls ? "localhost" : "http://localhost:" + std::to_string(http_port);
    const fs::path caddyfile = dir.path() / "Caddyfile";
    acmetool::test::write_file(caddyfile, "{\n\thttp_port " + std::to_string(http_port) + "\n\thttps_port " +
                                              std::to_string(https_port) + "\n" + globals + "}\n" + address + " {\n" +
                                              site + "}\n");
    process.emplace(ChildProcess::start(
        {ACMETOOL_BINARY, "--storage", storage.string(), "serve", "-c", caddyfile.string()}, log));
    // Listening is enough: the configuration is loaded before the sockets are bound, and a TLS
    // handshake gets its certificate from the local CA on the spot.
    const bool up = acmetool::test::wait_until(
        [&] {
          if (tls && !fs::exists(root())) return false;
          try {
            const acmetool::pki::UniqueFd probe = acmetool::test::connect_tcp(port());
            return static_cast<bool>(probe);
          } catch (const std::exception&) {
            return false;
          }
        },
        20s);
    INFO(acmetool::test::log_tail("serve", log));
    REQUIRE(up);
  }

  int port() const { return tls ? https_port : http_port; }
  fs::path root() const { return storage / "pki" / "authorities" / "local" / "root.crt"; }
  std::string url(const std::string& path) const {
    return (tls ? "https://localhost:" : "http://localhost:") + std::to_string(port()) + path;
  }
  std::string host() const { return "localhost:" + std::to_string(port()); }

  // curl against the server with `args` (URLs among them).
  CommandResult curl(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {"curl", "-sS", "--max-time", "15", "--resolve",
                                     "localhost:" + std::to_string(port()) + ":127.0.0.1"};
    if (tls) argv.insert(argv.end(), {"--cacert", root().string()});
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, "", {}, 30s);
  }
  // The status code of GET `path`, with extra curl `args`.
  std::string status(const std::string& path, std::vector<std::string> args = {}) const {
    args.insert(args.end(), {"-o", "/dev/null", "-w", "%{http_code}", url(path)});
    return curl(args).out;
  }

  // Sends `bytes` on a new connection and reads until the server closes it or `limit` passes.
  std::string raw(const std::string& bytes, std::chrono::milliseconds limit = 5s) const {
    const acmetool::pki::UniqueFd fd = acmetool::test::connect_tcp(http_port);
    acmetool::test::send_all(fd.get(), bytes);
    return acmetool::test::read_until_closed(fd.get(), limit);
  }
};

// `size` pseudo-random bytes (every byte value occurs), the same for the same seed.
std::string random_bytes(std::size_t size, unsigned seed) {
  std::mt19937 engine(seed);
  std::string out(size, '\0');
  for (char& c : out) c = static_cast<char>(engine() & 0xff);
  return out;
}

// `body` as chunks of `piece` bytes, ended by the last chunk.
std::string chunked(const std::string& body, std::size_t piece) {
  std::string out;
  for (std::size_t at = 0; at < body.size(); at += piece) {
    const std::string part = body.substr(at, piece);
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", part.size());
    out += size + part + "\r\n";
  }
  return out + "0\r\n\r\n";
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

// A response head's field value (any case), as curl -D or a raw socket received it.
std::optional<std::string> response_field(const std::string& response, const std::string& name) {
  const std::string text = lower(response);
  const std::size_t at = text.find("\r\n" + lower(name) + ":");
  if (at == std::string::npos) return std::nullopt;
  const std::size_t begin = response.find_first_not_of(' ', at + name.size() + 3);
  return response.substr(begin, response.find("\r\n", begin) - begin);
}

// A recorded request as text, for failure messages.
std::string describe(const UpstreamRecord& r) {
  std::string out = r.method + " " + r.target + " (connection " + std::to_string(r.connection) + ")\n";
  for (const auto& [name, value] : r.headers) out += name + ": " + value + "\n";
  return out + "body: " + std::to_string(r.body.size()) + " bytes\n";
}

// Three upstreams that answer their own name ("a", "b", "c").
struct ThreeUpstreams {
  TestUpstream a{[](Exchange& e) { e.respond(200, "a"); }};
  TestUpstream b{[](Exchange& e) { e.respond(200, "b"); }};
  TestUpstream c{[](Exchange& e) { e.respond(200, "c"); }};
  std::string dials() const { return a.dial() + " " + b.dial() + " " + c.dial(); }
  std::vector<std::size_t> counts() const {
    return {a.requests().size(), b.requests().size(), c.requests().size()};
  }
};

// For each value of `field` among every upstream's requests, how many upstreams saw it.
std::map<std::string, int> upstreams_per_key(const ThreeUpstreams& up, const std::string& field) {
  std::map<std::string, std::set<int>> seen;
  int index = 0;
  for (const TestUpstream* u : {&up.a, &up.b, &up.c}) {
    for (const UpstreamRecord& r : u->requests()) {
      seen[field == ":path" ? r.target : r.header(field).value_or("")].insert(index);
    }
    ++index;
  }
  std::map<std::string, int> out;
  for (const auto& [key, upstreams] : seen) out[key] = static_cast<int>(upstreams.size());
  return out;
}

}  // namespace

TEST_CASE("reverse_proxy drops hop-by-hop request fields and sets X-Forwarded-* over plain HTTP",
          "[proxy][headers]") {
  TestUpstream upstream([](Exchange& e) { e.respond(200, "ok"); });
  ProxyServer server("\treverse_proxy " + upstream.dial() + "\n");
  const std::string reply = server.raw(
      "GET /hop?q=1 HTTP/1.1\r\nHost: " + server.host() +
      "\r\nConnection: X-Foo, close\r\nX-Foo: secret\r\nKeep-Alive: timeout=5\r\n"
      "Proxy-Authorization: Basic YTpi\r\nTe: gzip\r\nX-Keep: 1\r\n"
      "X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.test\r\n\r\n");
  INFO(reply);
  CHECK(reply.starts_with("HTTP/1.1 200"));
  const std::vector<UpstreamRecord> seen = upstream.requests();
  REQUIRE(seen.size() == 1);
  const UpstreamRecord& r = seen[0];
  INFO(describe(r));
  CHECK(r.target == "/hop?q=1");
  for (const char* gone : {"X-Foo", "Keep-Alive", "Proxy-Authorization", "Te"}) {
    INFO(gone);
    CHECK_FALSE(r.header(gone));
  }
  // The proxy may speak keep-alive to the upstream, but never forwards what the client named.
  CHECK(lower(r.header("Connection").value_or("")).find("x-foo") == std::string::npos);
  CHECK(r.header("X-Keep") == "1");
  CHECK(r.header("Host") == server.host());
  CHECK(r.count("Host") == 1);
  // From an untrusted client the forged X-Forwarded-* values are replaced, not appended to.
  // An IPv4 client of the dual-stack listener is named as IPv4 ("127.0.0.1", not "::ffff:..."),
  // as Go reports it.
  CHECK(r.header("X-Forwarded-For") == "127.0.0.1");
  CHECK(r.count("X-Forwarded-For") == 1);
  CHECK(r.header("X-Forwarded-Proto") == "http");
  CHECK(r.header("X-Forwarded-Host") == server.host());

  // "Te: trailers" is the one Te value that passes.
  server.raw("GET /te HTTP/1.1\r\nHost: " + server.host() + "\r\nTe: trailers\r\nConnection: close\r\n\r\n");
  REQUIRE(upstream.requests().size() == 2);
  CHECK(upstream.requests()[1].header("Te") == "trailers");
}

TEST_CASE("reverse_proxy appends to X-Forwarded-For only from trusted_proxies", "[proxy][headers]") {
  TestUpstream upstream([](Exchange& e) { e.respond(200, "ok"); });
  ProxyServer server("\thandle /trusted/* {\n\t\treverse_proxy " + upstream.dial() +
                     " {\n\t\t\ttrusted_proxies 127.0.0.0/8\n\t\t}\n\t}\n"
                     "\thandle {\n\t\treverse_proxy " + upstream.dial() + "\n\t}\n");
  const std::vector<std::string> forged = {"-H", "X-Forwarded-For: 1.2.3.4", "-H", "X-Forwarded-Proto: https",
                                           "-H", "X-Forwarded-Host: front.test"};
  CHECK(server.status("/trusted/x", forged) == "200");
  CHECK(server.status("/untrusted", forged) == "200");
  const std::vector<UpstreamRecord> seen = upstream.requests();
  REQUIRE(seen.size() == 2);
  INFO(describe(seen[0]) << describe(seen[1]));
  CHECK(seen[0].header("X-Forwarded-For") == "1.2.3.4, 127.0.0.1");
  CHECK(seen[0].header("X-Forwarded-Proto") == "https");
  CHECK(seen[0].header("X-Forwarded-Host") == "front.test");
  CHECK(seen[1].header("X-Forwarded-For") == "127.0.0.1");
  CHECK(seen[1].header("X-Forwarded-Proto") == "http");
  CHECK(seen[1].header("X-Forwarded-Host") == server.host());
}

TEST_CASE("reverse_proxy applies header_up and header_down and drops the upstream's hop-by-hop fields",
          "[proxy][headers]") {
  TestUpstream upstream([](Exchange& e) {
    e.respond(200, "ok",
              {{"Server", "upstream/1.0"}, {"Connection", "X-Secret"}, {"X-Secret", "s"},
               {"Keep-Alive", "timeout=5"}, {"X-Visible", "v"}});
  });
  ProxyServer server("\treverse_proxy " + upstream.dial() +
                     " {\n\t\theader_up X-Path {http.request.uri.path}\n"
                     "\t\theader_down -Server\n\t\theader_down X-Down yes\n\t}\n");
  const CommandResult r = server.curl({"--http1.1", "-D", "-", server.url("/some/path?x=1")});
  INFO(r.out << r.err);
  CHECK(r.out.starts_with("HTTP/1.1 200"));
  CHECK(r.out.ends_with("\r\n\r\nok"));
  CHECK(response_field(r.out, "X-Down") == "yes");
  CHECK(response_field(r.out, "X-Visible") == "v");
  CHECK(r.out.find("upstream/1.0") == std::string::npos);
  CHECK_FALSE(response_field(r.out, "X-Secret"));
  CHECK_FALSE(response_field(r.out, "Keep-Alive"));
  const std::vector<UpstreamRecord> seen = upstream.requests();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].header("X-Path") == "/some/path");
}

TEST_CASE("reverse_proxy over TLS relays big bodies byte-identical over HTTP/1.1 and HTTP/2",
          "[proxy][body][tls]") {
  const std::string big = random_bytes(1536 * 1024 + 7, 42);
  const std::string upload = random_bytes(3 * 1024 * 1024 + 3, 7);  // past the 1 MiB bodies the server keeps
  TestUpstream upstream([&](Exchange& e) {
    const std::string& target = e.request().target;
    if (target == "/chunked") {
      e.send_raw("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/octet-stream\r\n\r\n");
      e.send_raw(chunked(big, 100000));
    } else if (target == "/eof") {
      e.send_raw("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n" + big);
      e.close();
    } else if (target == "/length") {
      e.respond(200, big, {{"Content-Type", "application/octet-stream"}});
    } else {
      e.respond(200, "got " + std::to_string(e.request().body.size()), {{"X-Head", "1"}});
    }
  });
  ProxyServer server("\treverse_proxy " + upstream.dial() + "\n", true);
  const fs::path upload_file = server.dir.path() / "upload.bin", out = server.dir.path() / "out.bin";
  acmetool::test::write_file(upload_file, upload);

  for (const std::string version : {"--http1.1", "--http2"}) {
    for (const std::string path : {"/chunked", "/length", "/eof"}) {
      INFO(version << " " << path);
      fs::remove(out);
      const CommandResult r = server.curl({version, "-o", out.string(), "-w", "%{http_version} %{http_code}",
                                           server.url(path)});
      INFO(r.err << acmetool::test::log_tail("serve", server.log));
      CHECK(r.out == (version == "--http2" ? "2 200" : "1.1 200"));
      const std::string received = acmetool::test::read_text(out);
      CHECK(received.size() == big.size());
      CHECK((received == big));  // parenthesized: Catch must not print 1.5 MiB of bytes
    }
    const std::size_t before = upstream.requests().size();
    const CommandResult post = server.curl({version, "--data-binary", "@" + upload_file.string(), "-H",
                                            "Content-Type: application/octet-stream", server.url("/upload")});
    INFO(version << " POST: " << post.err);
    CHECK(post.out == "got " + std::to_string(upload.size()));
    const std::vector<UpstreamRecord> seen = upstream.requests();
    REQUIRE(seen.size() == before + 1);
    CHECK(seen.back().method == "POST");
    CHECK((seen.back().body == upload));
    CHECK(seen.back().header("Content-Length") == std::to_string(upload.size()));
    CHECK(seen.back().header("X-Forwarded-Proto") == "https");
    CHECK(seen.back().header("Host") == server.host());
  }

  // HEAD gets the upstream's fields (its Content-Length too) and no body.
  for (const std::string version : {"--http1.1", "--http2"}) {
    const CommandResult head = server.curl({version, "-I", server.url("/head")});
    INFO(version << " HEAD: " << head.out << head.err);
    CHECK(response_field(head.out, "X-Head") == "1");
    CHECK(response_field(head.out, "Content-Length") == "5");
    CHECK(upstream.requests().back().method == "HEAD");
  }
}

TEST_CASE("reverse_proxy answers HEAD with the upstream's head and no body, and streams uploads of any size",
          "[proxy][body]") {
  TestUpstream upstream([](Exchange& e) {
    e.respond(200, e.request().method == "HEAD" ? "twelve bytes" : "got " + std::to_string(e.request().body.size()),
              {{"X-Head", "1"}});
  });
  ProxyServer server("\treverse_proxy " + upstream.dial() + "\n");
  const std::string reply =
      server.raw("HEAD /h HTTP/1.1\r\nHost: " + server.host() + "\r\nConnection: close\r\n\r\n");
  INFO(reply);
  CHECK(reply.starts_with("HTTP/1.1 200"));
  CHECK(response_field(reply, "Content-Length") == "12");
  CHECK(response_field(reply, "X-Head") == "1");
  CHECK(reply.ends_with("\r\n\r\n"));  // no body, and nothing after it

  // HTTP/1.1 uploads go through as they arrive, past the 1 MiB the server's own handlers take:
  // with Content-Length (curl waits for "100 Continue" first) and chunked.
  const std::string bytes = random_bytes(6 * 1024 * 1024 + 11, 3);
  const fs::path big = server.dir.path() / "big.bin";
  acmetool::test::write_file(big, bytes);
  CommandResult r = server.curl({"--http1.1", "--data-binary", "@" + big.string(), server.url("/big")});
  INFO(r.err << acmetool::test::log_tail("serve", server.log));
  CHECK(r.out == "got " + std::to_string(bytes.size()));
  r = server.curl({"--http1.1", "-H", "Transfer-Encoding: chunked", "--data-binary", "@" + big.string(),
                   server.url("/chunked-upload")});
  CHECK(r.out == "got " + std::to_string(bytes.size()));
  CHECK(r.err.empty());
  const std::vector<UpstreamRecord> seen = upstream.requests();
  REQUIRE(seen.size() == 3);
  CHECK(seen[0].method == "HEAD");
  CHECK(seen[1].header("Content-Length") == std::to_string(bytes.size()));
  CHECK((seen[1].body == bytes));
  CHECK(seen[2].header("Transfer-Encoding") == "chunked");
  CHECK((seen[2].body == bytes));
  // A client that stops halfway: the upstream never sees a complete request.
  const std::string partial = "POST /cut HTTP/1.1\r\nHost: " + server.host() + "\r\nContent-Length: 100000\r\n\r\n" +
                              std::string(1000, 'x');
  {
    const acmetool::pki::UniqueFd fd = acmetool::test::connect_tcp(server.http_port);
    acmetool::test::send_all(fd.get(), partial);
  }
  std::this_thread::sleep_for(300ms);
  CHECK(upstream.requests().size() == 3);
}

TEST_CASE("reverse_proxy streams server-sent events as the upstream sends them", "[proxy][stream][slow]") {
  TestUpstream upstream([](Exchange& e) {
    e.send_raw("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
               "Transfer-Encoding: chunked\r\n\r\n");
    e.send_raw("b\r\ndata: one\n\n\r\n");
    e.sleep_for(1500ms);
    e.send_raw("b\r\ndata: two\n\n\r\n0\r\n\r\n");
  });
  ProxyServer server("\treverse_proxy " + upstream.dial() + "\n");

  const acmetool::pki::UniqueFd fd = acmetool::test::connect_tcp(server.http_port);
  const auto sent = Clock::now();
  acmetool::test::send_all(fd.get(), "GET /events HTTP/1.1\r\nHost: " + server.host() +
                                         "\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n");
  std::string received;
  std::optional<Clock::duration> first, second;
  while (Clock::now() - sent < 10s && !second) {
    received += acmetool::test::read_until_closed(fd.get(), 50ms);
    if (!first && received.find("data: one") != std::string::npos) first = Clock::now() - sent;
    if (received.find("data: two") != std::string::npos) second = Clock::now() - sent;
  }
  INFO(received);
  REQUIRE(first);
  REQUIRE(second);
  // The upstream waits 1.5 s between the events: the first must not have waited for the second.
  CHECK(*first < 1000ms);
  CHECK(*second - *first > 700ms);
  CHECK(response_field(received, "Content-Type") == "text/event-stream");
  CHECK(response_field(received, "Transfer-Encoding") == "chunked");
}

TEST_CASE("reverse_proxy streams server-sent events to an HTTP/2 client as they come", "[proxy][stream][slow][tls]") {
  TestUpstream upstream([](Exchange& e) {
    // No Content-Length and no chunked framing: the body ends when the upstream closes.
    e.send_raw("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: one\n\n");
    e.sleep_for(1500ms);
    e.send_raw("data: two\n\n");
    e.close();
  });
  ProxyServer server("\treverse_proxy " + upstream.dial() + "\n", true);
  const fs::path out = server.dir.path() / "events.txt";
  const auto started = Clock::now();
  ChildProcess curl = ChildProcess::start({"curl", "-sS", "-N", "--http2", "--max-time", "15", "--cacert",
                                           server.root().string(), "--resolve",
                                           "localhost:" + std::to_string(server.https_port) + ":127.0.0.1",
                                           server.url("/events")},
                                          out);
  auto arrived = [&](const std::string& text) {
    return acmetool::test::read_text(out).find(text) != std::string::npos;
  };
  REQUIRE(acmetool::test::wait_until([&] { return arrived("data: one"); }, 10s));
  const auto first = Clock::now() - started;
  REQUIRE(acmetool::test::wait_until([&] { return arrived("data: two"); }, 10s));
  const auto second = Clock::now() - started;
  INFO(acmetool::test::read_text(out));
  // curl's own start and TLS handshake are in `first`; the upstream's 1.5 s pause is not.
  CHECK(first < 1200ms);
  CHECK(second - first > 600ms);
  CHECK(curl.wait(10s));
}

TEST_CASE("reverse_proxy answers 502 for a closed upstream and 504 after response_header_timeout",
          "[proxy][failure]") {
  const int closed_port = acmetool::test::free_port();
  TestUpstream slow([](Exchange& e) {
    e.sleep_for(3s);
    e.respond(200, "late");
  });
  ProxyServer server("\thandle /down* {\n\t\treverse_proxy 127.0.0.1:" + std::to_string(closed_port) + "\n\t}\n" +
                     "\thandle /slow* {\n\t\treverse_proxy " + slow.dial() +
                     " {\n\t\t\ttransport http {\n\t\t\t\tresponse_header_timeout 500ms\n\t\t\t}\n\t\t}\n\t}\n" +
                     "\thandle /marked* {\n\t\treverse_proxy 127.0.0.1:" + std::to_string(closed_port) +
                     " {\n\t\t\tfail_duration 30s\n\t\t\tmax_fails 1\n\t\t}\n\t}\n");
  CHECK(server.status("/down/here") == "502");
  INFO(acmetool::test::log_tail("serve", server.log));
  CHECK(acmetool::test::wait_until(
      [&] {
        const std::string text = acmetool::test::read_text(server.log);
        const std::size_t at = text.find("reverse_proxy: GET /down/here: ");
        return at != std::string::npos && text.find("(502)", at) != std::string::npos;
      },
      5s));

  const auto started = Clock::now();
  CHECK(server.status("/slow") == "504");
  const auto took = Clock::now() - started;
  CHECK(took < 2500ms);
  CHECK(slow.requests().size() == 1);  // a timed-out GET is not retried without lb_try_duration

  // With passive health, the failed dial marks the only upstream down: then none is available.
  CHECK(server.status("/marked") == "502");
  CHECK(server.status("/marked") == "503");
}

TEST_CASE("reverse_proxy load balances by lb_policy", "[proxy][lb]") {
  ThreeUpstreams up;
  auto serve = [&](const std::string& options) {
    return ProxyServer("\treverse_proxy " + up.dials() + " {\n" + options + "\t}\n");
  };
  auto get_many = [](const ProxyServer& server, const std::string& path, int n, std::vector<std::string> args = {}) {
    for (int i = 0; i < n; ++i) args.push_back(server.url(path));
    return server.curl(args);
  };

  SECTION("round_robin spreads requests evenly") {
    const ProxyServer server = serve("\t\tlb_policy round_robin\n");
    const CommandResult r = get_many(server, "/", 30);
    CHECK(r.out.size() == 30);
    CHECK(up.counts() == std::vector<std::size_t>{10, 10, 10});
  }
  SECTION("first sends everything to the first upstream") {
    const ProxyServer server = serve("\t\tlb_policy first\n");
    CHECK(get_many(server, "/", 30).out == std::string(30, 'a'));
    CHECK(up.counts() == std::vector<std::size_t>{30, 0, 0});
    // One client connection, one kept-alive upstream connection.
    CHECK(up.a.connections() == 1);
  }
  // Twelve keys: a policy that ignored the key would hit one upstream with all of them, while
  // hashing spreads them (all twelve on one of three upstreams happens with odds of 1 in 177147).
  const std::vector<std::string> keys = {"k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9", "k10", "k11", "k12"};
  auto check_spread = [&](const std::map<std::string, int>& spread) {
    CHECK(spread.size() == keys.size());
    for (const auto& [key, upstreams] : spread) {
      INFO(key);
      CHECK(upstreams == 1);
    }
    const std::vector<std::size_t> counts = up.counts();
    CHECK(std::count(counts.begin(), counts.end(), 0u) < 2);
  };
  SECTION("header sends equal X-User values to the same upstream") {
    const ProxyServer server = serve("\t\tlb_policy header X-User\n");
    for (const std::string& user : keys) get_many(server, "/", 5, {"-H", "X-User: " + user});
    check_spread(upstreams_per_key(up, "X-User"));
  }
  SECTION("uri_hash sends equal URIs to the same upstream") {
    const ProxyServer server = serve("\t\tlb_policy uri_hash\n");
    for (const std::string& key : keys) get_many(server, "/" + key + "?x=1", 5);
    check_spread(upstreams_per_key(up, ":path"));
  }
  SECTION("ip_hash sends one client to one upstream") {
    const ProxyServer server = serve("\t\tlb_policy ip_hash\n");
    get_many(server, "/", 30);
    std::vector<std::size_t> counts = up.counts();
    std::sort(counts.begin(), counts.end());
    CHECK(counts == std::vector<std::size_t>{0, 0, 30});
  }
  SECTION("cookie sets a sticky cookie and honours it") {
    const ProxyServer server = serve("\t\tlb_policy cookie\n");
    // New clients are spread at random, each with the cookie of its upstream: collect cookies
    // until two upstreams have one (30 tries all landing on one upstream: odds 1 in 10^14).
    std::map<char, std::string> cookies;
    for (int i = 0; i < 30 && cookies.size() < 2; ++i) {
      const CommandResult first = server.curl({"-D", "-", server.url("/")});
      const std::optional<std::string> set_cookie = response_field(first.out, "Set-Cookie");
      INFO(first.out);
      REQUIRE(set_cookie);
      CHECK(set_cookie->starts_with("lb="));
      CHECK(set_cookie->find("Path=/") != std::string::npos);
      cookies[first.out.back()] = set_cookie->substr(0, set_cookie->find(';'));
    }
    REQUIRE(cookies.size() == 2);
    for (const auto& [chosen, cookie] : cookies) {
      INFO(cookie);
      CHECK(get_many(server, "/", 20, {"-H", "Cookie: " + cookie}).out == std::string(20, chosen));
      // A request carrying its cookie gets no new one.
      CHECK_FALSE(response_field(server.curl({"-D", "-", "-H", "Cookie: " + cookie, server.url("/")}).out,
                                 "Set-Cookie"));
    }
  }
}

TEST_CASE("reverse_proxy retries a dead upstream within lb_try_duration", "[proxy][lb]") {
  TestUpstream live([](Exchange& e) { e.respond(200, "live"); });
  const int closed_port = acmetool::test::free_port();
  ProxyServer server("\treverse_proxy 127.0.0.1:" + std::to_string(closed_port) + " " + live.dial() +
                     " {\n\t\tlb_policy round_robin\n\t\tlb_try_duration 2s\n\t\tlb_try_interval 50ms\n\t}\n");
  std::vector<std::string> args = {"-w", "%{http_code}\n"};
  for (int i = 0; i < 10; ++i) args.push_back(server.url("/"));
  const CommandResult r = server.curl(args);
  INFO(r.err << acmetool::test::log_tail("serve", server.log));
  std::string expected;
  for (int i = 0; i < 10; ++i) expected += "live200\n";
  CHECK(r.out == expected);
  // Dial failures are retried whatever the method.
  args = {"-w", "%{http_code}\n", "-d", "x=1"};
  for (int i = 0; i < 4; ++i) args.push_back(server.url("/post"));
  CHECK(server.curl(args).out == "live200\nlive200\nlive200\nlive200\n");
  CHECK(live.requests().size() == 14);
  CHECK(live.requests().back().method == "POST");
  CHECK(live.requests().back().body == "x=1");
}

TEST_CASE("reverse_proxy's passive health checks avoid an upstream that answered an unhealthy status",
          "[proxy][lb]") {
  TestUpstream flaky([](Exchange& e) { e.respond(e.request().target == "/1" ? 500 : 200, "flaky"); });
  TestUpstream steady([](Exchange& e) { e.respond(200, "steady"); });
  ProxyServer server("\treverse_proxy " + flaky.dial() + " " + steady.dial() +
                     " {\n\t\tlb_policy first\n\t\tfail_duration 30s\n\t\tmax_fails 1\n"
                     "\t\tunhealthy_status 500\n\t}\n");
  std::vector<std::string> args = {"-w", " %{http_code}\n"};
  for (int i = 1; i <= 6; ++i) args.push_back(server.url("/" + std::to_string(i)));
  const CommandResult r = server.curl(args);
  CHECK(r.out == "flaky 500\nsteady 200\nsteady 200\nsteady 200\nsteady 200\nsteady 200\n");
  CHECK(flaky.requests().size() == 1);
  CHECK(steady.requests().size() == 5);
}

TEST_CASE("reverse_proxy never lets a request smuggle a second one past it", "[proxy][smuggling]") {
  TestUpstream upstream([](Exchange& e) { e.respond(200, "ok"); });
  ProxyServer server("\treverse_proxy " + upstream.dial() + "\n");
  const std::string host = "Host: " + server.host() + "\r\n";
  const std::string hidden = "GET /hidden HTTP/1.1\r\n" + host + "\r\n";
  const std::vector<std::pair<std::string, std::string>> attacks = {
      {"CL.TE", "POST /a HTTP/1.1\r\n" + host + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" +
                    hidden},
      {"TE.CL", "POST /a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n" +
                    hidden},
      {"obfuscated TE", "POST /a HTTP/1.1\r\n" + host + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + hidden},
      {"obfuscated TE, request as body", "POST /a HTTP/1.1\r\n" + host + "Transfer-Encoding: xchunked\r\n\r\n" + hidden},
      {"TE list", "POST /a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + hidden},
      {"TE identity, request as body", "POST /a HTTP/1.1\r\n" + host + "Transfer-Encoding: identity\r\n\r\n" + hidden},
      {"TE space before colon",
       "POST /a HTTP/1.1\r\n" + host + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + hidden},
      {"duplicate CL", "POST /a HTTP/1.1\r\n" + host + "Content-Length: 0\r\nContent-Length: " +
                           std::to_string(hidden.size()) + "\r\n\r\n" + hidden},
      {"body hiding a request",
       "POST /a HTTP/1.1\r\n" + host + "Content-Length: " + std::to_string(hidden.size()) + "\r\n\r\n" + hidden},
  };
  // A Transfer-Encoding other than one "chunked" ("xchunked", "chunked, identity", "identity")
  // leaves the body's length unknown: 400 and close (RFC 9112 §6.3), or the body would be read
  // as the next request.
  for (const auto& [name, bytes] : attacks) {
    const std::size_t before = upstream.requests().size();
    const std::string reply = server.raw(bytes, 1500ms);
    const std::vector<UpstreamRecord> seen = upstream.requests();
    std::string upstream_saw;
    for (std::size_t i = before; i < seen.size(); ++i) upstream_saw += describe(seen[i]);
    INFO(name << "\n--- reply ---\n" << reply << "\n--- upstream saw ---\n" << upstream_saw);
    CHECK((reply.starts_with("HTTP/1.1 400") || seen.size() == before + 1));
    CHECK(seen.size() <= before + 1);
    for (std::size_t i = before; i < seen.size(); ++i) {
      CHECK(seen[i].target == "/a");
      CHECK(seen[i].method == "POST");
    }
    // Whatever the server made of it, the client got at most one response.
    CHECK(reply.find("HTTP/1.1", 1) == std::string::npos);
  }
  // The one that is not an attack arrives with the hidden request as its body, whole.
  REQUIRE_FALSE(upstream.requests().empty());
  CHECK(upstream.requests().back().body == hidden);
}

TEST_CASE("reverse_proxy tunnels a WebSocket upgrade both ways over TLS", "[proxy][websocket][tls]") {
  // The upstream switches protocols, then echoes every message upper-cased until the peer leaves.
  TestUpstream upstream([](Exchange& e) {
    if (lower(e.request().header("Upgrade").value_or("")) != "websocket") return e.respond(426, "upgrade please");
    e.send_raw("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\nhello;");
    for (int i = 0; i < 100; ++i) {
      std::string message = e.read_raw(5s);
      if (message.empty()) break;
      for (char& c : message) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      e.send_raw(message);
    }
    e.close();
  });
  ProxyServer server("\treverse_proxy " + upstream.dial() + "\n", /*use_tls=*/true);
  // openssl s_client is the raw TLS client: the upgrade request, then messages, each echoed.
  acmetool::test::TempDir dir;
  const fs::path script = dir.path() / "ws.sh";
  acmetool::test::write_file(
      script, "{ printf 'GET /chat HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: Upgrade\\r\\nUpgrade: websocket\\r\\n"
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n'; sleep 0.5;"
              " printf 'ping one;'; sleep 0.3; printf 'ping two;'; sleep 0.5; } | "
              "openssl s_client -quiet -no_ign_eof -alpn http/1.1 -servername localhost -CAfile " + server.root().string() +
              " -connect 127.0.0.1:" + std::to_string(server.https_port) + " 2>/dev/null\n");
  const CommandResult r = run_command({"sh", script.string()}, "", {}, 20s);
  INFO(r.out << r.err << acmetool::test::log_tail("serve", server.log));
  CHECK(r.out.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
  CHECK(lower(r.out).find("\r\nupgrade: websocket\r\n") != std::string::npos);
  CHECK(lower(r.out).find("\r\nconnection: upgrade\r\n") != std::string::npos);
  CHECK(r.out.ends_with("\r\n\r\nhello;PING ONE;PING TWO;"));
  REQUIRE(upstream.requests().size() == 1);
  CHECK(upstream.requests()[0].header("Upgrade") == "websocket");
  // A 101 the client did not ask for is not relayed.
  TestUpstream rogue([](Exchange& e) { e.send_raw("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n"); });
  ProxyServer plain("\treverse_proxy " + rogue.dial() + "\n");
  CHECK(plain.status("/") == "502");
}

TEST_CASE("reverse_proxy's active health checks take an upstream out and bring it back", "[proxy][health][slow]") {
  std::atomic<bool> sick{false};
  TestUpstream a([&](Exchange& e) {
    if (e.request().target == "/healthz") return e.respond(sick ? 503 : 200, sick ? "down" : "ok");
    e.respond(200, "a");
  });
  TestUpstream b([](Exchange& e) { e.respond(200, e.request().target == "/healthz" ? "ok" : "b"); });
  ProxyServer server("\treverse_proxy " + a.dial() + " " + b.dial() +
                     " {\n\t\tlb_policy first\n\t\thealth_uri /healthz\n\t\thealth_interval 200ms\n\t\thealth_timeout 1s\n\t}\n");
  const auto body = [&] { return server.curl({server.url("/")}).out; };
  REQUIRE(acmetool::test::wait_until([&] { return body() == "a"; }, 5s));
  sick = true;
  CHECK(acmetool::test::wait_until([&] { return body() == "b"; }, 5s));
  CHECK(body() == "b");
  sick = false;
  CHECK(acmetool::test::wait_until([&] { return body() == "a"; }, 5s));
  const std::string log = acmetool::test::read_text(server.log);
  CHECK(log.find("upstream " + a.dial() + " is unhealthy: status 503") != std::string::npos);
  CHECK(log.find("upstream " + a.dial() + " is healthy again") != std::string::npos);
}

TEST_CASE("serve --from NAME --to UPSTREAM proxies like caddy reverse-proxy", "[proxy][cli]") {
  TestUpstream upstream([](Exchange& e) { e.respond(200, "from " + e.request().header("Host").value_or("?")); });
  TempDir dir;
  const std::vector<int> ports = acmetool::test::distinct_free_ports(2);
  const fs::path storage = dir.path() / "storage", log = dir.path() / "serve.log";
  ChildProcess process = ChildProcess::start(
      {ACMETOOL_BINARY, "--storage", storage.string(), "serve", "--from", "localhost", "--to", upstream.dial(),
       "--change-host-header", "--header-down", "X-Proxied-By: acmetool", "--http-port", std::to_string(ports[0]),
       "--https-port", std::to_string(ports[1])},
      log);
  const fs::path root = storage / "pki" / "authorities" / "local" / "root.crt";
  CommandResult r;
  const auto fetch = [&] {
    r = run_command({"curl", "-sS", "-i", "--max-time", "10", "--cacert", root.string(),
                     "https://localhost:" + std::to_string(ports[1]) + "/"},
                    "", {}, 20s);
    return r.exit_code == 0;
  };
  INFO(acmetool::test::log_tail("serve", log));
  REQUIRE(acmetool::test::wait_until([&] { return fs::exists(root) && fetch(); }, 20s));
  CHECK(r.out.ends_with("from " + upstream.dial()));  // --change-host-header: the upstream's host:port
  CHECK(response_field(r.out, "X-Proxied-By") == "acmetool");
  // Usage errors: one line, exit 2.
  CommandResult bad = run_command({ACMETOOL_BINARY, "serve", "--to", "a:1", "--domain", "x.test"}, "", {}, 10s);
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("--to and --domain cannot be used together") != std::string::npos);
  bad = run_command({ACMETOOL_BINARY, "serve", "--to", "a\nb:1"}, "", {}, 10s);
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("--to: control characters are not allowed") != std::string::npos);
}

TEST_CASE("reverse_proxy speaks TLS to https:// upstreams, verifying them against the roots it is given",
          "[proxy][tls]") {
  // The upstream: openssl s_server serving a directory over TLS, with a certificate for
  // 127.0.0.1 from a local CA of the test's own.
  TempDir dir;
  const fs::path www = dir.path() / "www", cert = dir.path() / "cert", storage = dir.path() / "ca";
  fs::create_directories(www);
  acmetool::test::write_file(www / "page.txt", "from the TLS upstream\n");
  REQUIRE(run_command({ACMETOOL_BINARY, "-q", "--storage", storage.string(), "ca", "issue", "127.0.0.1", "--out",
                       cert.string()},
                      "", {}, 30s)
              .exit_code == 0);
  const fs::path root = storage / "pki" / "authorities" / "local" / "root.crt";
  const int port = acmetool::test::distinct_free_ports(1)[0];
  const std::string pem = (cert / "127.0.0.1.crt").string();
  ChildProcess upstream = ChildProcess::start(
      {"sh", "-c", "cd '" + www.string() + "' && exec openssl s_server -quiet -WWW -accept 127.0.0.1:" +
                       std::to_string(port) + " -cert '" + pem + "' -cert_chain '" + pem + "' -key '" +
                       (cert / "127.0.0.1.key").string() + "'"},
      dir.path() / "s_server.log");
  const std::string https = "https://127.0.0.1:" + std::to_string(port);
  ProxyServer server("\thandle_path /trusted/* {\n\t\treverse_proxy " + https +
                     " {\n\t\t\ttransport http {\n\t\t\t\ttls_trusted_ca_certs " + root.string() +
                     "\n\t\t\t}\n\t\t}\n\t}\n"
                     "\thandle_path /insecure/* {\n\t\treverse_proxy " + https +
                     " {\n\t\t\ttransport http {\n\t\t\t\ttls_insecure_skip_verify\n\t\t\t}\n\t\t}\n\t}\n"
                     "\treverse_proxy " + https + "\n");
  CommandResult r;
  REQUIRE(acmetool::test::wait_until(
      [&] {
        r = server.curl({server.url("/trusted/page.txt")});
        return r.out == "from the TLS upstream\n";
      },
      10s));
  CHECK(server.curl({server.url("/insecure/page.txt")}).out == "from the TLS upstream\n");
  // Without its roots the upstream's certificate is not trusted: 502, and the log says why.
  CHECK(server.status("/page.txt") == "502");
  CHECK(acmetool::test::read_text(server.log).find("certificate verify failed") != std::string::npos);
  upstream.kill(SIGTERM);
  CHECK(upstream.wait(10s));
}

TEST_CASE("reverse_proxy finds dynamic upstreams in DNS (A and SRV) and follows changes", "[proxy][dynamic]") {
  acmetool::test::Bind9Server& dns = acmetool::test::Bind9Server::shared();
  TestUpstream a([](Exchange& e) { e.respond(200, "a"); });
  TestUpstream b([](Exchange& e) { e.respond(200, "b"); });
  // app.example.test has an A record (127.0.0.1, the zone's wildcard); the SRV record names it.
  const auto srv = [&](int port) {
    dns.update("example.test", "update delete _app._tcp.example.test SRV\nupdate add _app._tcp.example.test 1 SRV 0 0 " +
                                   std::to_string(port) + " app.example.test.\n");
  };
  srv(a.port());
  ProxyServer server("\thandle /a {\n\t\treverse_proxy {\n\t\t\tdynamic a app.example.test " + std::to_string(b.port()) +
                     " {\n\t\t\t\tresolvers " + dns.server() + "\n\t\t\t}\n\t\t}\n\t}\n"
                     "\thandle {\n\t\treverse_proxy {\n\t\t\tdynamic srv _app._tcp.example.test {\n\t\t\t\tresolvers " +
                     dns.server() + "\n\t\t\t\trefresh 300ms\n\t\t\t}\n\t\t}\n\t}\n");
  INFO(acmetool::test::log_tail("serve", server.log));
  CHECK(server.curl({server.url("/a")}).out == "b");
  CHECK(server.curl({server.url("/srv")}).out == "a");
  // The SRV record moves to the other upstream: within a few refreshes, so does the proxy.
  srv(b.port());
  CHECK(acmetool::test::wait_until([&] { return server.curl({server.url("/srv")}).out == "b"; }, 5s));
  CHECK(acmetool::test::read_text(server.log).find("dynamic srv _app._tcp.example.test: upstreams 127.0.0.1:" +
                                                   std::to_string(b.port())) != std::string::npos);
}

TEST_CASE("reverse_proxy's replace_status changes the status of the responses its matcher matches", "[proxy][headers]") {
  TestUpstream upstream([](Exchange& e) {
    e.respond(e.request().target == "/missing" ? 404 : 200, "body of " + e.request().target);
  });
  ProxyServer server("\treverse_proxy " + upstream.dial() +
                     " {\n\t\t@gone status 404\n\t\treplace_status @gone 410\n\t}\n");
  CHECK(server.curl({"-w", " %{http_code}", server.url("/missing")}).out == "body of /missing 410");
  CHECK(server.curl({"-w", " %{http_code}", server.url("/here")}).out == "body of /here 200");
}

TEST_CASE("reverse_proxy's handle_response runs routes on matching responses, over HTTP/1.1 and HTTP/2",
          "[proxy][handle_response][tls]") {
  const std::string big(1024 * 1024, 'u');  // never reaches the client: the routes answer instead
  TestUpstream upstream([&](Exchange& e) {
    const std::string& target = e.request().target;
    if (target == "/accel") return e.respond(200, big, {{"X-Accel-Redirect", "/private/file.txt"}});
    if (target == "/busy") return e.respond(503, "upstream detail", {{"X-Why", "overloaded"}});
    if (target == "/teapot") return e.respond(418, "tea", {{"X-Keep", "k1"}, {"X-Keep", "k2"}, {"X-Drop", "d"}});
    if (target == "/missing") return e.respond(404, "not here", {{"X-Up", "u"}});
    e.respond(200, "plain " + target);
  });
  TempDir files;
  fs::create_directories(files.path() / "private");
  acmetool::test::write_file(files.path() / "private" / "file.txt", "the private file\n");
  ProxyServer server("\troot * " + files.path().string() + "\n\theader X-Site yes\n\treverse_proxy " + upstream.dial() +
                         " {\n"
                         "\t\t@accel header X-Accel-Redirect *\n"
                         "\t\thandle_response @accel {\n\t\t\trewrite * {rp.header.X-Accel-Redirect}\n\t\t\tfile_server\n\t\t}\n"
                         "\t\t@busy status 5xx\n"
                         "\t\thandle_response @busy {\n\t\t\theader X-Upstream-Status {rp.status_code}\n"
                         "\t\t\trespond \"sorry: {rp.status_text}\" 502\n\t\t}\n"
                         "\t\t@teapot status 418\n"
                         "\t\thandle_response @teapot {\n\t\t\tcopy_response_headers {\n\t\t\t\tinclude X-Keep\n\t\t\t}\n"
                         "\t\t\trespond \"short and stout\"\n\t\t}\n"
                         "\t\t@missing status 404\n"
                         "\t\thandle_response @missing {\n\t\t\theader X-Handled yes\n\t\t\tcopy_response 410\n\t\t}\n"
                         "\t}\n",
                     /*use_tls=*/true);
  for (const std::string protocol : {"--http1.1", "--http2"}) {
    INFO(protocol);
    const std::string line = protocol == "--http1.1" ? "HTTP/1.1 " : "HTTP/2 ";
    // X-Accel-Redirect: the file the upstream names, served from the site's root; the upstream's
    // megabyte is dropped, and the same connection goes on to the next request.
    CommandResult r = server.curl({protocol, "-D", "-", server.url("/accel"), server.url("/plain")});
    INFO(r.out << r.err);
    CHECK(r.out.starts_with(line + "200"));
    CHECK(r.out.find("the private file\n") != std::string::npos);
    CHECK(r.out.find("uuuu") == std::string::npos);
    CHECK(lower(r.out).find("x-accel-redirect") == std::string::npos);
    CHECK(r.out.find("plain /plain") != std::string::npos);
    // Routes answering for an error: the upstream's status and reason in placeholders, the
    // site's `header` still applied.
    r = server.curl({protocol, "-D", "-", server.url("/busy")});
    CHECK(r.out.starts_with(line + "502"));
    CHECK(r.out.ends_with("sorry: 503 Service Unavailable"));
    CHECK(response_field(r.out, "X-Upstream-Status") == "503");
    CHECK(response_field(r.out, "X-Site") == "yes");
    CHECK_FALSE(response_field(r.out, "X-Why"));
    // copy_response_headers: only the included field, every value of it.
    r = server.curl({protocol, "-D", "-", server.url("/teapot")});
    CHECK(r.out.starts_with(line + "200"));
    CHECK(r.out.ends_with("short and stout"));
    CHECK(lower(r.out).find("x-keep: k1\r\n") != std::string::npos);
    CHECK(lower(r.out).find("x-keep: k2\r\n") != std::string::npos);
    CHECK_FALSE(response_field(r.out, "X-Drop"));
    // copy_response: the upstream's own response after all, with the new status and the block's header.
    r = server.curl({protocol, "-D", "-", server.url("/missing")});
    CHECK(r.out.starts_with(line + "410"));
    CHECK(r.out.ends_with("not here"));
    CHECK(response_field(r.out, "X-Up") == "u");
    CHECK(response_field(r.out, "X-Handled") == "yes");
    // HEAD of a handled response: the file's head, no body.
    r = server.curl({protocol, "-I", server.url("/accel")});
    CHECK(r.out.starts_with(line + "200"));
    CHECK(response_field(r.out, "Content-Length") == "17");
  }
  // Unmatched responses are relayed as they are.
  CHECK(server.curl({server.url("/other")}).out == "plain /other");
}

namespace {

// A PROXY version 2 header for TCP over IPv6 from [2001:db8::7]:4242.
std::string proxy_v2_tcp6() {
  std::string h("\r\n\r\n\0\r\nQUIT\n\x21\x21\x00\x24", 16);
  std::string source(16, '\0');
  source[0] = 0x20, source[1] = 0x01, source[2] = 0x0d, source[3] = static_cast<char>(0xb8), source[15] = 7;
  return h + source + std::string(16, '\0') + std::string("\x10\x92\x01\xbb", 4);
}

// `header`, then a TLS connection (any certificate) for `host` on the same socket, one GET with
// Connection: close, and the whole answer; "" when the handshake fails.
std::string get_over_tls_after(int port, const std::string& header, const std::string& host) {
  const acmetool::pki::UniqueFd fd = acmetool::test::connect_tcp(port);
  acmetool::test::send_all(fd.get(), header);
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), SSL_free);
  SSL_set_fd(ssl.get(), fd.get());
  SSL_set_tlsext_host_name(ssl.get(), "localhost");
  if (SSL_connect(ssl.get()) != 1) return "";
  const std::string request = "GET / HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n";
  SSL_write(ssl.get(), request.data(), static_cast<int>(request.size()));
  std::string answer;
  char buffer[4096];
  for (int n; (n = SSL_read(ssl.get(), buffer, sizeof buffer)) > 0;) answer.append(buffer, static_cast<std::size_t>(n));
  return answer;
}

}  // namespace

TEST_CASE("the PROXY protocol names the client behind a load balancer, over HTTP and HTTPS", "[proxy][proxy_protocol]") {
  TestUpstream upstream([](Exchange& e) { e.respond(200, "client " + e.request().header("X-Forwarded-For").value_or("-")); });
  const std::string wrappers = "\tservers {\n\t\tlistener_wrappers {\n\t\t\tproxy_protocol {\n\t\t\t\ttimeout 1s\n"
                               "\t\t\t\tallow 127.0.0.1/32\n\t\t\t}\n\t\t\ttls\n\t\t}\n\t}\n";
  SECTION("plain HTTP: versions 1 and 2, health checks, and connections without a header") {
    ProxyServer server("\treverse_proxy " + upstream.dial() + "\n", false, wrappers);
    const std::string get = "GET / HTTP/1.1\r\nHost: " + server.host() + "\r\nConnection: close\r\n\r\n";
    std::string r = server.raw("PROXY TCP4 203.0.113.9 127.0.0.1 56324 80\r\n" + get);
    CHECK(r.starts_with("HTTP/1.1 200"));
    CHECK(r.ends_with("client 203.0.113.9"));
    r = server.raw(proxy_v2_tcp6() + get);
    CHECK(r.ends_with("client 2001:db8::7"));
    // UNKNOWN and LOCAL (a balancer's own checks): the TCP peer stands.
    CHECK(server.raw("PROXY UNKNOWN\r\n" + get).ends_with("client 127.0.0.1"));
    CHECK(server.raw(std::string("\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00", 16) + get).ends_with("client 127.0.0.1"));
    // A header in pieces, cut inside the signature.
    {
      const acmetool::pki::UniqueFd fd = acmetool::test::connect_tcp(server.http_port);
      acmetool::test::send_all(fd.get(), "PRO");
      std::this_thread::sleep_for(100ms);
      acmetool::test::send_all(fd.get(), "XY TCP4 198.51.100.");
      std::this_thread::sleep_for(100ms);
      acmetool::test::send_all(fd.get(), "2 127.0.0.1 1 80\r\n" + get);
      CHECK(acmetool::test::read_until_closed(fd.get(), 5s).ends_with("client 198.51.100.2"));
    }
    // From an allowed source the header is required: without one, or malformed, no answer.
    CHECK(server.raw(get).empty());
    CHECK(server.raw("PROXY TCP4 203.0.113.9 127.0.0.1 99999 80\r\n" + get).empty());
    // A client that sends nothing is closed after the timeout.
    const auto start = Clock::now();
    CHECK(server.raw("", 5s).empty());
    CHECK(Clock::now() - start < 3s);
    CHECK(Clock::now() - start >= 900ms);
  }
  SECTION("HTTPS: the header comes before the ClientHello") {
    ProxyServer server("\treverse_proxy " + upstream.dial() + "\n", true, wrappers);
    const std::string r = get_over_tls_after(server.https_port, "PROXY TCP4 203.0.113.9 127.0.0.1 56324 443\r\n", server.host());
    CHECK(r.starts_with("HTTP/1.1 200"));
    CHECK(r.ends_with("client 203.0.113.9"));
    CHECK(get_over_tls_after(server.https_port, "", server.host()).empty());
  }
  SECTION("sources outside allow connect as usual, without a header") {
    const std::string others = "\tservers {\n\t\tlistener_wrappers {\n\t\t\tproxy_protocol {\n"
                               "\t\t\t\tallow 10.0.0.0/8\n\t\t\t}\n\t\t}\n\t}\n";
    ProxyServer server("\treverse_proxy " + upstream.dial() + "\n", false, others);
    CHECK(server.curl({server.url("/")}).out == "client 127.0.0.1");
  }
}

TEST_CASE("a request waiting on its upstream survives a reload that replaces its reverse_proxy", "[proxy][reload]") {
  std::atomic<bool> release{false};
  TestUpstream upstream([&](Exchange& e) {
    if (e.request().target != "/slow") return e.respond(200, "fast");
    for (int i = 0; i < 200 && !release; ++i) e.sleep_for(25ms);
    e.respond(503, "upstream body");
  });
  ProxyServer server("\trespond \"first config\"\n");
  const fs::path path = server.dir.path() / "Caddyfile";
  const std::string text = acmetool::test::read_text(path);
  const std::string head = text.substr(0, text.find("http://localhost")) + "http://localhost:" +
                           std::to_string(server.http_port) + " {\n";
  const auto reload_to = [&](const std::string& site, const std::string& probe, const std::string& expected) {
    acmetool::test::write_file(path, head + site + "}\n");
    server.process->kill(SIGHUP);
    return acmetool::test::wait_until([&] { return server.curl({server.url(probe)}).out == expected; }, 10s);
  };
  // The proxy's handle_response and header_down run after the next reload has dropped its
  // configuration: the proxy keeps the site it was built from (under ASan, a freed one would be a
  // use after free). The first configuration is the command's own and never freed, so the proxy
  // comes with a reload.
  CHECK(reload_to("\treverse_proxy " + upstream.dial() +
                      " {\n\t\theader_down X-Old yes\n\t\t@e status 503\n\t\thandle_response @e {\n"
                      "\t\t\trespond \"old config saw {rp.status_code}\"\n\t\t}\n\t}\n",
                  "/fast", "fast"));
  CommandResult slow;
  std::thread client([&] { slow = server.curl({server.url("/slow")}); });
  const bool waiting = acmetool::test::wait_until(
      [&] {
        const auto seen = upstream.requests();
        return std::any_of(seen.begin(), seen.end(), [](const UpstreamRecord& r) { return r.target == "/slow"; });
      },
      10s);
  CHECK(waiting);
  CHECK(reload_to("\trespond \"new config\"\n", "/other", "new config"));
  release = true;
  client.join();
  INFO(acmetool::test::log_tail("serve", server.log));
  CHECK(slow.out == "old config saw 503");
  CHECK(server.curl({server.url("/other")}).out == "new config");
}

// Reads from `fd` until `text` has arrived (true), the peer closes or `limit` passes (false).
bool read_until(int fd, std::string& got, std::string_view text, std::chrono::milliseconds limit) {
  const auto end = Clock::now() + limit;
  while (got.find(text) == std::string::npos) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buffer[4096];
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) return false;
    got.append(buffer, static_cast<std::size_t>(n));
  }
  return true;
}

TEST_CASE("servers timeouts: idle closes a kept-alive connection left waiting, read_header a head that does not come",
          "[proxy][timeout]") {
  TestUpstream upstream([](Exchange& e) { e.respond(200, "ok"); });
  ProxyServer server("\treverse_proxy " + upstream.dial() + "\n", false,
                     "\tservers {\n\t\ttimeouts {\n\t\t\tidle 600ms\n\t\t\tread_header 600ms\n\t\t}\n\t}\n");
  const std::string request = "GET /a HTTP/1.1\r\nHost: " + server.host() + "\r\n\r\n";

  // Requests 200 ms apart, for 2 s: each wait is shorter than idle, so the connection stays.
  const acmetool::pki::UniqueFd busy = acmetool::test::connect_tcp(server.http_port);
  std::string got;
  for (int i = 1; i <= 10; ++i) {
    acmetool::test::send_all(busy.get(), request);
    INFO("request " << i);
    REQUIRE(read_until(busy.get(), got, "\r\n\r\nok", 5s));
    got.clear();
    std::this_thread::sleep_for(200ms);
  }
  // Then left waiting: closed after idle (600 ms), not long after.
  const auto left = Clock::now();
  bool closed = false;
  CHECK(acmetool::test::read_until_closed(busy.get(), 5s, &closed).empty());
  CHECK(closed);
  const auto waited = Clock::now() - left;
  CHECK(waited >= 200ms);  // 600 ms from the start of the wait, which began 200 ms earlier
  CHECK(waited < 3s);

  // Half a head: closed after read_header.
  const acmetool::pki::UniqueFd slow = acmetool::test::connect_tcp(server.http_port);
  const auto sent = Clock::now();
  acmetool::test::send_all(slow.get(), "GET /a HTTP/1.1\r\n");
  closed = false;
  CHECK(acmetool::test::read_until_closed(slow.get(), 5s, &closed).empty());
  CHECK(closed);
  CHECK(Clock::now() - sent < 3s);
  CHECK(upstream.requests().size() == 10);
}

// A blocking TLS client on one connection (certificates unchecked): what the HTTPS tests below
// need to hold a connection open, send part of a head, or stop reading for a while.
class TlsClient {
 public:
  explicit TlsClient(int port)
      : fd_(acmetool::test::connect_tcp(port)), ctx_(SSL_CTX_new(TLS_client_method()), SSL_CTX_free),
        ssl_(SSL_new(ctx_.get()), SSL_free) {
    SSL_set_fd(ssl_.get(), fd_.get());
    SSL_set_tlsext_host_name(ssl_.get(), "localhost");
    static const unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    SSL_set_alpn_protos(ssl_.get(), kHttp11, sizeof kHttp11);
    connected_ = SSL_connect(ssl_.get()) == 1;
  }
  bool connected() const { return connected_; }
  void send(const std::string& text) {
    REQUIRE(SSL_write(ssl_.get(), text.data(), static_cast<int>(text.size())) == static_cast<int>(text.size()));
  }
  // Reads until `got` holds `size` bytes or the connection ends (closed() then), for at most
  // `limit` in all.
  std::string read(std::size_t size, std::chrono::milliseconds limit) {
    std::string got;
    const auto deadline = Clock::now() + limit;
    char buffer[16384];
    while (got.size() < size && Clock::now() < deadline) {
      if (SSL_pending(ssl_.get()) == 0) {
        pollfd p{fd_.get(), POLLIN, 0};
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(left.count(), 1))) <= 0) continue;
      }
      const int n = SSL_read(ssl_.get(), buffer, static_cast<int>(std::min(sizeof buffer, size - got.size())));
      if (n <= 0) {
        closed_ = true;
        break;
      }
      got.append(buffer, static_cast<std::size_t>(n));
    }
    return got;
  }
  bool closed() const { return closed_; }

 private:
  acmetool::pki::UniqueFd fd_;
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx_;
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl_;
  bool connected_ = false;
  bool closed_ = false;
};

TEST_CASE("over HTTPS, idle and read_header close connections, and a client that stops reading gets every byte",
          "[proxy][timeout][tls]") {
  const std::string big = random_bytes(8 * 1024 * 1024 + 5, 3);  // beyond what the socket buffers hold
  TestUpstream upstream([&](Exchange& e) {
    if (e.request().target == "/big") {
      e.respond(200, big, {{"Content-Type", "application/octet-stream"}});
    } else {
      e.respond(200, "ok");
    }
  });
  const std::string get = "GET /a HTTP/1.1\r\nHost: localhost\r\n\r\n";
  // The size of the whole answer to `get`, read off a first connection (its end is not marked).
  const auto answer_size = [&](const ProxyServer& server) {
    TlsClient client(server.https_port);
    REQUIRE(client.connected());
    client.send(get);
    const std::string answer = client.read(100000, 1s);
    REQUIRE(answer.ends_with("\r\n\r\nok"));
    return answer.size();
  };

  SECTION("idle and read_header") {
    ProxyServer server("\treverse_proxy " + upstream.dial() + "\n", true,
                       "\tservers {\n\t\ttimeouts {\n\t\t\tidle 600ms\n\t\t\tread_header 600ms\n\t\t}\n\t}\n");
    const std::size_t size = answer_size(server);
    // Requests 200 ms apart keep the connection; then, left waiting, it is closed after idle.
    TlsClient busy(server.https_port);
    REQUIRE(busy.connected());
    for (int i = 1; i <= 6; ++i) {
      busy.send(get);
      INFO("request " << i);
      REQUIRE(busy.read(size, 5s).ends_with("\r\n\r\nok"));
      std::this_thread::sleep_for(200ms);
    }
    const auto left = Clock::now();
    CHECK(busy.read(1, 5s).empty());
    CHECK(busy.closed());
    CHECK(Clock::now() - left >= 200ms);
    CHECK(Clock::now() - left < 3s);
    // Half a head, inside TLS: closed after read_header.
    TlsClient slow(server.https_port);
    REQUIRE(slow.connected());
    const auto sent = Clock::now();
    slow.send("GET /a HTTP/1.1\r\n");
    CHECK(slow.read(1, 5s).empty());
    CHECK(slow.closed());
    CHECK(Clock::now() - sent < 3s);
  }
  SECTION("a client that stops reading, then reads on") {
    ProxyServer server("\treverse_proxy " + upstream.dial() + "\n", true);
    const std::size_t size = answer_size(server);
    TlsClient client(server.https_port);
    REQUIRE(client.connected());
    client.send("GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n");
    std::this_thread::sleep_for(1500ms);  // the server's writes wait for the socket meanwhile
    std::string answer = client.read(4096, 5s);  // the head is in the first 4 KiB
    const std::size_t body = answer.find("\r\n\r\n");
    REQUIRE(body != std::string::npos);
    answer += client.read(body + 4 + big.size() - answer.size(), 20s);
    CHECK(answer.starts_with("HTTP/1.1 200"));
    CHECK(answer.size() - body - 4 == big.size());
    CHECK((answer.substr(body + 4) == big));
    // The connection serves the next request.
    client.send(get);
    CHECK(client.read(size, 5s).ends_with("\r\n\r\nok"));
  }
}

// `nghttp -v` (HTTP/2 over TLS, certificates unchecked) fetching `url`: every frame and field
// it received, one per line.
std::string nghttp_frames(const std::string& url) {
  return run_command({"nghttp", "-v", "--timeout=15", url}, "", {}, 30s).out;
}

// The value of field `name` that nghttp -v shows received after the DATA frames (a trailer).
std::optional<std::string> trailer_seen(const std::string& frames, const std::string& name) {
  const std::size_t data = frames.find("recv DATA frame");
  if (data == std::string::npos) return std::nullopt;
  const std::string marker = ") " + name + ": ";
  const std::size_t at = frames.find(marker, data);
  if (at == std::string::npos) return std::nullopt;
  const std::size_t start = at + marker.size();
  return frames.substr(start, frames.find('\n', start) - start);
}

TEST_CASE("reverse_proxy relays the upstream's trailer fields, over HTTP/1.1 and HTTP/2", "[proxy][trailers]") {
  // An HTTP/1.1 upstream: a chunked body, then trailers; Content-Type is one Caddy (Go) never
  // relays as a trailer.
  TestUpstream upstream([](Exchange& e) {
    e.send_raw("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum, Content-Type\r\n\r\n"
               "5\r\nhello\r\n0\r\nX-Checksum: abc123\r\nContent-Type: text/evil\r\n\r\n");
  });
  ProxyServer plain("\treverse_proxy " + upstream.dial() + "\n");
  const std::string reply = plain.raw("GET /sum HTTP/1.1\r\nHost: " + plain.host() + "\r\nConnection: close\r\n\r\n");
  INFO(reply);
  CHECK(reply.find("\r\n\r\n5\r\nhello\r\n0\r\nX-Checksum: abc123\r\n\r\n") != std::string::npos);
  CHECK(reply.find("text/evil") == std::string::npos);

  ProxyServer tls("\treverse_proxy " + upstream.dial() + "\n", true);
  const std::string h1_frames = nghttp_frames(tls.url("/sum"));
  INFO(h1_frames);
  CHECK(trailer_seen(h1_frames, "x-checksum") == "abc123");
  CHECK_FALSE(trailer_seen(h1_frames, "content-type"));

  // An HTTP/2 upstream (nghttpd, h2c) ending its response with a trailer HEADERS frame, as gRPC
  // servers end theirs with grpc-status.
  TempDir www;
  acmetool::test::write_file(www.path() / "a.txt", "hello\n");
  const int h2c_port = acmetool::test::distinct_free_ports(1)[0];
  ChildProcess nghttpd = ChildProcess::start({"nghttpd", "--no-tls", "-d", www.path().string(), "--trailer",
                                              "grpc-status: 0", "--trailer", "content-type: text/evil",
                                              std::to_string(h2c_port)},
                                             www.path() / "nghttpd.log");
  REQUIRE(acmetool::test::wait_until(
      [&] {
        try {
          return static_cast<bool>(acmetool::test::connect_tcp(h2c_port));
        } catch (const std::exception&) {
          return false;
        }
      },
      10s));
  ProxyServer grpc("\treverse_proxy h2c://127.0.0.1:" + std::to_string(h2c_port) + "\n", true);
  const std::string h2_frames = nghttp_frames(grpc.url("/a.txt"));
  INFO(h2_frames);
  CHECK(trailer_seen(h2_frames, "grpc-status") == "0");
  CHECK_FALSE(trailer_seen(h2_frames, "content-type"));
  CHECK(h2_frames.find("RST_STREAM") == std::string::npos);
}

TEST_CASE("encode compresses relayed bodies as they stream, events flushed one by one", "[proxy][encode]") {
  const std::string page(20000, 'x');
  TestUpstream upstream([&](Exchange& e) {
    if (e.request().target == "/events") {
      e.send_raw("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n");
      e.send_raw("b\r\ndata: one\n\n\r\n");  // the first chunk only
      e.sleep_for(1500ms);
      e.send_raw("b\r\ndata: two\n\n\r\n0\r\n\r\n");
      return;
    }
    if (e.request().header("If-None-Match") == "\"v1\"") {
      return e.send_raw("HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Type: text/html\r\n\r\n");
    }
    e.respond(200, page, {{"Content-Type", "text/html"}, {"ETag", "\"v1\""}});
  });
  ProxyServer server("\tencode gzip\n\treverse_proxy " + upstream.dial() + "\n");
  CommandResult r = server.curl({"--http1.1", "-D", "-", "-H", "Accept-Encoding: gzip", "-o", "/dev/null", server.url("/page")});
  INFO(r.out << r.err);
  CHECK(response_field(r.out, "Content-Encoding") == "gzip");
  CHECK(response_field(r.out, "Vary") == "Accept-Encoding");
  CHECK(response_field(r.out, "ETag") == "\"v1-gzip\"");
  CHECK_FALSE(response_field(r.out, "Content-Length"));
  CHECK(server.curl({"--http1.1", "--compressed", server.url("/page")}).out == page);
  // Revalidation of the encoded page: the upstream sees its own tag and answers 304, which keeps
  // the encoded tag for the client.
  r = server.curl({"--http1.1", "-D", "-", "-o", "/dev/null", "-H", "Accept-Encoding: gzip", "-H",
                   "If-None-Match: \"v1-gzip\"", server.url("/page")});
  CHECK(r.out.starts_with("HTTP/1.1 304"));
  CHECK(response_field(r.out, "ETag") == "\"v1-gzip\"");
  CHECK(upstream.requests().back().header("If-None-Match") == "\"v1\"");
  // Without gzip accepted: as the upstream sent it, length included.
  r = server.curl({"--http1.1", "-D", "-", "-o", "/dev/null", server.url("/page")});
  CHECK_FALSE(response_field(r.out, "Content-Encoding"));
  CHECK(response_field(r.out, "Content-Length") == std::to_string(page.size()));
  // Server-sent events: the first event arrives, compressed, before the upstream sends the second.
  const auto start = Clock::now();
  r = server.curl({"--http1.1", "--compressed", "-N", "--max-time", "1", server.url("/events")});
  CHECK(r.out == "data: one\n\n");
  CHECK(Clock::now() - start < 1400ms);
}

namespace {

// An upstream answer that sends the head and a first piece of a chunked body, then nothing for
// 5 s (the rest comes after that, unless the proxy has gone).
void stall_mid_body(Exchange& e) {
  e.send_raw("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n9\r\npart one;\r\n");
  e.sleep_for(5s);
  e.send_raw("0\r\n\r\n");
}

// What a raw HTTP/1.1 client got within `limit`: the bytes, whether the server closed, and when.
struct Timed {
  std::string received;
  bool closed = false;
  Clock::duration took{};
};

// Sends `request` on a new connection and reads until the server closes it or `limit` passes.
Timed timed_exchange(const ProxyServer& server, const std::string& request, std::chrono::milliseconds limit) {
  const acmetool::pki::UniqueFd fd = acmetool::test::connect_tcp(server.http_port);
  Timed out;
  const auto sent = Clock::now();
  acmetool::test::send_all(fd.get(), request);
  out.received = acmetool::test::read_until_closed(fd.get(), limit, &out.closed);
  out.took = Clock::now() - sent;
  return out;
}

// A GET of `path`; with `close`, asking the server to close the connection after its answer.
std::string get_request(const ProxyServer& server, const std::string& path, bool close = false) {
  return "GET " + path + " HTTP/1.1\r\nHost: " + server.host() + (close ? "\r\nConnection: close" : "") + "\r\n\r\n";
}

// `reverse_proxy UPSTREAM { OPTIONS }` under `handle PREFIX*`, as a site block's lines.
std::string proxy_under(const std::string& prefix, const TestUpstream& upstream, const std::string& options) {
  return "\thandle " + prefix + "* {\n\t\treverse_proxy " + upstream.dial() + " {\n" + options + "\t\t}\n\t}\n";
}

}  // namespace

TEST_CASE("reverse_proxy's read_timeout cuts a body the upstream stalls and leaves others alone",
          "[proxy][timeout]") {
  TestUpstream stalling(stall_mid_body);
  TestUpstream healthy([](Exchange& e) { e.respond(200, "fine"); });
  const std::string read_timeout = "\t\t\ttransport http {\n\t\t\t\tread_timeout 300ms\n\t\t\t}\n";
  const std::string site = proxy_under("/cut", stalling, read_timeout) + proxy_under("/uncut", stalling, "") +
                           proxy_under("/ok", healthy, "");
  ProxyServer server(site);

  const Timed cut = timed_exchange(server, get_request(server, "/cut"), 5s);
  INFO(cut.received << acmetool::test::log_tail("serve", server.log));
  CHECK(cut.received.starts_with("HTTP/1.1 200 "));
  CHECK(cut.received.find("\r\n\r\n9\r\npart one;\r\n") != std::string::npos);
  // Cut: closed without the last chunk, 300 ms after the first piece, not after the upstream's 5 s.
  CHECK(cut.closed);
  CHECK_FALSE(cut.received.ends_with("0\r\n\r\n"));
  CHECK(cut.took >= 250ms);
  CHECK(cut.took < 1200ms);
  CHECK(acmetool::test::wait_until(
      [&] {
        return acmetool::test::read_text(server.log).find("reading response body from " + stalling.dial() +
                                                          ": read_timeout (300ms) passed") != std::string::npos;
      },
      5s));
  // The server serves on, on new connections.
  CHECK(server.status("/ok") == "200");

  // Without read_timeout the same stall is waited out.
  const Timed waited = timed_exchange(server, get_request(server, "/uncut"), 1500ms);
  CHECK(waited.received.find("part one;") != std::string::npos);
  CHECK_FALSE(waited.closed);

  // Over HTTP/2 the stream is reset (curl: exit 92, "stream ... was not closed cleanly").
  ProxyServer tls_server(site, /*use_tls=*/true);
  const auto started = Clock::now();
  const CommandResult h2 = tls_server.curl({"--http2", tls_server.url("/cut")});
  const auto took = Clock::now() - started;
  INFO(h2.err << acmetool::test::log_tail("serve", tls_server.log));
  CHECK(h2.exit_code == 92);
  CHECK(h2.out == "part one;");
  CHECK(took < 2s);
  CHECK(tls_server.status("/ok", {"--http2"}) == "200");
}

TEST_CASE("reverse_proxy's read_timeout answers 504 when the upstream's head does not come", "[proxy][timeout]") {
  TestUpstream silent([](Exchange& e) {
    e.sleep_for(5s);
    e.respond(200, "late");
  });
  ProxyServer server(proxy_under("/limited", silent, "\t\t\ttransport http {\n\t\t\t\tread_timeout 300ms\n\t\t\t}\n") +
                     proxy_under("/unlimited", silent, ""));
  const Timed limited = timed_exchange(server, get_request(server, "/limited", /*close=*/true), 5s);
  INFO(limited.received << acmetool::test::log_tail("serve", server.log));
  CHECK(limited.received.starts_with("HTTP/1.1 504 "));
  CHECK(limited.took >= 250ms);
  CHECK(limited.took < 1200ms);
  CHECK(acmetool::test::wait_until(
      [&] {
        return acmetool::test::read_text(server.log).find("read_timeout (300ms) passed awaiting response headers from " +
                                                          silent.dial() + " (504)") != std::string::npos;
      },
      5s));

  const Timed unlimited = timed_exchange(server, get_request(server, "/unlimited", /*close=*/true), 1500ms);
  CHECK(unlimited.received.empty());
  CHECK_FALSE(unlimited.closed);
}

TEST_CASE("reverse_proxy's stream_timeout closes a WebSocket tunnel on both sides", "[proxy][timeout][websocket]") {
  // Switches protocols, then echoes every message upper-cased until the peer leaves.
  std::atomic<bool> upstream_saw_close{false};
  TestUpstream upstream([&](Exchange& e) {
    e.send_raw("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhello;");
    for (int i = 0; i < 100; ++i) {
      std::string message = e.read_raw(5s);
      if (message.empty()) break;
      for (char& c : message) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      e.send_raw(message);
    }
    upstream_saw_close = true;
    e.close();
  });
  ProxyServer server(proxy_under("/limited", upstream, "\t\t\tstream_timeout 500ms\n") +
                     proxy_under("/unlimited", upstream, ""));
  const auto upgrade = [&](const std::string& path) {
    return "GET " + path + " HTTP/1.1\r\nHost: " + server.host() +
           "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           "Sec-WebSocket-Version: 13\r\n\r\nping;";
  };

  const Timed limited = timed_exchange(server, upgrade("/limited"), 5s);
  INFO(limited.received << acmetool::test::log_tail("serve", server.log));
  CHECK(limited.received.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
  CHECK(limited.received.ends_with("\r\n\r\nhello;PING;"));  // the tunnel worked until then
  CHECK(limited.closed);
  CHECK(limited.took >= 450ms);
  CHECK(limited.took < 1200ms);
  CHECK(acmetool::test::wait_until([&] { return upstream_saw_close.load(); }, 2s));  // not after its own 5 s
  CHECK(acmetool::test::read_text(server.log).find("reverse_proxy: tunnel closed after stream_timeout 500ms") !=
        std::string::npos);

  const Timed unlimited = timed_exchange(server, upgrade("/unlimited"), 1500ms);
  CHECK(unlimited.received.ends_with("\r\n\r\nhello;PING;"));
  CHECK_FALSE(unlimited.closed);
}

namespace {

// Caddy (/usr/bin/caddy) as an HTTP/2 upstream on free loopback ports, each site answering with
// the protocol it was asked in: `h2c_port` speaks h2c (and HTTP/1.1) in cleartext, `h2_port` h2
// (and HTTP/1.1) over TLS with Caddy's local CA, `h1_port` HTTP/1.1 only over TLS. Its access log
// records each request's client port, so tests can tell connections apart. With `relay_to`,
// `relay_port` (h2c) proxies to that address, passing each piece on at once. Stopped by PID.
struct CaddyUpstream {
  TempDir dir;
  int h2c_port = 0, h2_port = 0, h1_port = 0, relay_port = 0;
  fs::path log = dir.path() / "caddy.log";
  fs::path access_log = dir.path() / "access.log";
  std::optional<ChildProcess> process;

  explicit CaddyUpstream(const std::string& relay_to = "") {
    const std::vector<int> ports = acmetool::test::distinct_free_ports(5);
    h2c_port = ports[0];
    h2_port = ports[1];
    h1_port = ports[2];
    relay_port = ports[4];
    acmetool::test::write_file(dir.path() / "big.bin", random_bytes(3u << 20, 7));
    const std::string answer = "\trespond /echo \"{http.request.proto} {method} {http.request.body}\"\n"
                               "\trespond /who \"{http.request.proto} {method} {uri}\"\n"
                               "\troot * " + dir.path().string() + "\n\tfile_server\n"
                               "\tlog {\n\t\toutput file " + access_log.string() + "\n\t}\n";
    const std::string caddyfile =
        "{\n\tadmin off\n\tskip_install_trust\n\tauto_https disable_redirects\n\thttp_port " + std::to_string(ports[3]) +
        "\n\tservers :" + std::to_string(h2c_port) + " {\n\t\tprotocols h1 h2c\n\t}\n\tservers :" +
        std::to_string(relay_port) + " {\n\t\tprotocols h1 h2c\n\t}\n\tservers :" +
        std::to_string(h1_port) + " {\n\t\tprotocols h1\n\t}\n}\n" +
        "http://:" + std::to_string(h2c_port) + " {\n" + answer + "}\n" +
        "https://127.0.0.1:" + std::to_string(h2_port) + " {\n\ttls internal\n" + answer + "}\n" +
        "https://127.0.0.1:" + std::to_string(h1_port) + " {\n\ttls internal\n" + answer + "}\n" +
        (relay_to.empty() ? std::string()
                          : "http://:" + std::to_string(relay_port) + " {\n\treverse_proxy " + relay_to +
                                " {\n\t\tflush_interval -1\n\t}\n}\n");
    acmetool::test::write_file(dir.path() / "Caddyfile", caddyfile);
    const std::map<std::string, std::string> env = {{"XDG_DATA_HOME", (dir.path() / "data").string()},
                                                    {"XDG_CONFIG_HOME", (dir.path() / "config").string()},
                                                    {"HOME", dir.path().string()}};
    process.emplace(ChildProcess::start(
        {"caddy", "run", "--config", (dir.path() / "Caddyfile").string(), "--adapter", "caddyfile"}, log, env));
    const bool up = acmetool::test::wait_until(
        [&] {
          if (!fs::exists(root())) return false;
          for (const int port : {h2c_port, h2_port, h1_port}) {
            try {
              if (!acmetool::test::connect_tcp(port)) return false;
            } catch (const std::exception&) {
              return false;
            }
          }
          return true;
        },
        20s);
    INFO(acmetool::test::log_tail("caddy", log));
    REQUIRE(up);
  }
  fs::path root() const { return dir.path() / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"; }
  // The client ports of the requests in the access log whose Host was `host`.
  std::set<std::string> client_ports(const std::string& host) const {
    std::set<std::string> ports;
    std::istringstream lines(acmetool::test::read_text(access_log));
    for (std::string line; std::getline(lines, line);) {
      if (line.find("\"host\":\"" + host + "\"") == std::string::npos) continue;
      const std::size_t at = line.find("\"remote_port\":\"");
      if (at != std::string::npos) ports.insert(line.substr(at + 15, line.find('"', at + 15) - at - 15));
    }
    return ports;
  }
};

}  // namespace

TEST_CASE("reverse_proxy speaks HTTP/2 to h2c:// upstreams and over TLS when ALPN chooses h2", "[proxy][h2]") {
  CaddyUpstream caddy;
  const std::string tls = " {\n\t\t\ttransport http {\n\t\t\t\ttls_trusted_ca_certs " + caddy.root().string() +
                          "\n\t\t\t\tversions 1.1 2\n\t\t\t}\n\t\t}\n";
  ProxyServer server("\thandle /c/* {\n\t\turi strip_prefix /c\n\t\treverse_proxy h2c://127.0.0.1:" +
                     std::to_string(caddy.h2c_port) + "\n\t}\n" +
                     "\thandle /t/* {\n\t\turi strip_prefix /t\n\t\treverse_proxy https://127.0.0.1:" +
                     std::to_string(caddy.h2_port) + tls + "\t}\n" +
                     "\thandle /o/* {\n\t\turi strip_prefix /o\n\t\treverse_proxy https://127.0.0.1:" +
                     std::to_string(caddy.h1_port) + tls + "\t}\n" +
                     "\thandle /n/* {\n\t\treverse_proxy https://127.0.0.1:" + std::to_string(caddy.h1_port) +
                     " {\n\t\t\ttransport http {\n\t\t\t\ttls_trusted_ca_certs " + caddy.root().string() +
                     "\n\t\t\t\tversions 2\n\t\t\t}\n\t\t}\n\t}\n");
  INFO(acmetool::test::log_tail("serve", server.log) << acmetool::test::log_tail("caddy", caddy.log));

  const CommandResult h2c = server.curl({server.url("/c/who?x=1")});
  INFO(h2c.err);
  CHECK(h2c.out == "HTTP/2.0 GET /who?x=1");
  CHECK(server.curl({server.url("/t/who")}).out == "HTTP/2.0 GET /who");
  // An upstream whose ALPN answer is http/1.1 gets HTTP/1.1, as versions allows.
  CHECK(server.curl({server.url("/o/who")}).out == "HTTP/1.1 GET /who");
  // With versions 2 alone, an upstream that does not speak HTTP/2 cannot be used.
  CHECK(server.status("/n/who") == "502");

  // Requests at once share a connection (one per io thread: serve runs one per core); big
  // bodies arrive whole both ways (the windows open as they are read).
  const std::string big = random_bytes(3u << 20, 7);
  const fs::path upload = server.dir.path() / "upload.txt";
  acmetool::test::write_file(upload, std::string(600 * 1024, 'u'));
  std::vector<std::thread> clients;
  std::vector<CommandResult> results(12);
  for (std::size_t i = 0; i < results.size(); ++i) {
    clients.emplace_back([&, i] {
      const std::string base = i % 2 ? "/t" : "/c";
      results[i] = i < 8 ? server.curl({server.url(base + "/big.bin")})
                         : server.curl({"--data-binary", "@" + upload.string(), server.url(base + "/echo")});
    });
  }
  for (std::thread& client : clients) client.join();
  for (std::size_t i = 0; i < results.size(); ++i) {
    INFO("request " << i << ": " << results[i].err);
    CHECK(results[i].exit_code == 0);
    if (i < 8) {
      CHECK(results[i].out.size() == big.size());
      CHECK(results[i].out == big);
    } else {
      CHECK(results[i].out == "HTTP/2.0 POST " + std::string(600 * 1024, 'u'));
    }
  }
  const auto cores = static_cast<std::size_t>(std::max(1u, std::thread::hardware_concurrency()));
  const std::set<std::string> h2c_ports = caddy.client_ports(server.host());
  const std::set<std::string> h2_ports = caddy.client_ports("127.0.0.1:" + std::to_string(caddy.h2_port));
  // The HTTP/1.1 upstream's kept-alive connections are used again, not one new dial per request.
  for (int i = 0; i < 6; ++i) CHECK(server.curl({server.url("/o/who")}).out == "HTTP/1.1 GET /who");
  CHECK(caddy.client_ports("127.0.0.1:" + std::to_string(caddy.h1_port)).size() <= std::min<std::size_t>(cores, 6));
  CHECK(h2c_ports.size() >= 1);
  CHECK(h2c_ports.size() <= std::min<std::size_t>(cores, 6));  // HTTP/1.1 would need a connection per request
  CHECK(h2_ports.size() >= 1);
  CHECK(h2_ports.size() <= std::min<std::size_t>(cores, 6));
}

TEST_CASE("without versions, TLS upstreams get HTTP/2 when they choose it, as Caddy's default 1.1 2", "[proxy][h2]") {
  CaddyUpstream caddy;
  const std::string trust = " {\n\t\t\ttransport http {\n\t\t\t\ttls_trusted_ca_certs " + caddy.root().string() +
                            "\n\t\t\t}\n\t\t}\n";
  ProxyServer server("\thandle /d/* {\n\t\turi strip_prefix /d\n\t\treverse_proxy https://127.0.0.1:" +
                     std::to_string(caddy.h2_port) + trust + "\t}\n" +
                     "\thandle /e/* {\n\t\turi strip_prefix /e\n\t\treverse_proxy https://127.0.0.1:" +
                     std::to_string(caddy.h1_port) + trust + "\t}\n" +
                     "\thandle /p/* {\n\t\turi strip_prefix /p\n\t\treverse_proxy 127.0.0.1:" +
                     std::to_string(caddy.h2c_port) + "\n\t}\n");
  INFO(acmetool::test::log_tail("serve", server.log) << acmetool::test::log_tail("caddy", caddy.log));
  CHECK(server.curl({server.url("/d/who")}).out == "HTTP/2.0 GET /who");
  CHECK(server.curl({server.url("/e/who")}).out == "HTTP/1.1 GET /who");
  // Cleartext needs h2c written out: HTTP/1.1 here.
  CHECK(server.curl({server.url("/p/who")}).out == "HTTP/1.1 GET /who");
}

TEST_CASE("reverse_proxy's read_timeout applies to HTTP/2 upstreams: 504 before the head, a cut body after it",
          "[proxy][h2][timeout]") {
  // Caddy speaks h2c to the proxy and passes on what this upstream sends, as it sends it.
  TestUpstream stalling([](Exchange& e) {
    if (e.request().target == "/silent") {
      e.sleep_for(5s);
      return e.respond(200, "late");
    }
    stall_mid_body(e);
  });
  CaddyUpstream caddy(stalling.dial());
  ProxyServer server("\treverse_proxy h2c://127.0.0.1:" + std::to_string(caddy.relay_port) +
                     " {\n\t\ttransport http {\n\t\t\tread_timeout 300ms\n\t\t}\n\t}\n");
  INFO(acmetool::test::log_tail("serve", server.log) << acmetool::test::log_tail("caddy", caddy.log));

  const Timed cut = timed_exchange(server, get_request(server, "/stall"), 5s);
  INFO(cut.received);
  CHECK(cut.received.starts_with("HTTP/1.1 200 "));
  CHECK(cut.received.find("\r\npart one;\r\n") != std::string::npos);
  CHECK(cut.closed);
  CHECK_FALSE(cut.received.ends_with("0\r\n\r\n"));
  CHECK(cut.took >= 250ms);
  CHECK(cut.took < 1200ms);

  const Timed silent = timed_exchange(server, get_request(server, "/silent", /*close=*/true), 5s);
  INFO(silent.received);
  CHECK(silent.received.starts_with("HTTP/1.1 504 "));
  CHECK(silent.took >= 250ms);
  CHECK(silent.took < 1200ms);
  CHECK(acmetool::test::read_text(server.log).find("read_timeout (300ms) passed awaiting response headers from 127.0.0.1:" +
                                                   std::to_string(caddy.relay_port)) != std::string::npos);
  // The HTTP/2 connection serves on.
  CHECK(server.curl({server.url("/stall"), "--max-time", "3"}).out.starts_with("part one;"));
}
