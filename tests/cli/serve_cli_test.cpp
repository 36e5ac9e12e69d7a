// `acmetool serve` end to end, as a user runs it: the binary serves a directory over HTTPS and
// curl fetches from it, trusting the local CA's root (or pebble's, for a public name).
#include <catch2/catch.hpp>

#include <csignal>
#include <sys/wait.h>

#include "fixture_util.h"
#include "pebble.h"
#include "process.h"

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
};

}  // namespace

TEST_CASE("serve --domain localhost serves a directory over HTTPS trusted through the local CA",
          "[serve][cli]") {
  QuickServer server("localhost");
  CommandResult r;
  const bool up = acmetool::test::wait_until(
      [&] {
        if (!fs::exists(server.local_root())) return false;
        r = server.curl({server.https("/")}, server.local_root());
        return r.exit_code == 0;
      },
      20s);
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
  r = server.curl({"-I", server.https("/sub/file.txt")}, server.local_root());
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
  const bool up = acmetool::test::wait_until(
      [&] {
        r = server.curl({server.https("/")}, pebble.root_file());
        return r.exit_code == 0;
      },
      30s);
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
                            "\n\tfile_server\n\theader X-Served-By acmetool\n}\n"
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
  CHECK(r.out.find("X-Served-By: acmetool") != std::string::npos);
  REQUIRE(acmetool::test::wait_until([&] { return curl({"https://app.localhost:" + https + "/x?y=1"}).exit_code == 0; },
                                     20s));
  r = curl({"-w", " %{http_code}", "https://app.localhost:" + https + "/x?y=1"});
  CHECK(r.out == "app app.localhost /x?y=1 201");
  CHECK(curl({"http://plain.localhost:" + http + "/"}).out == "plain");
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
  write_file(caddyfile, "localhost {\n\treverse_proxy 127.0.0.1:9\n}\n");
  const CommandResult r = run_command(
      {ACMETOOL_BINARY, "--storage", (dir.path() / "storage").string(), "serve", "-c", caddyfile.string()}, "", {},
      20s);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find(caddyfile.string() + ":2") != std::string::npos);
  CHECK(r.err.find("reverse_proxy") != std::string::npos);
}
