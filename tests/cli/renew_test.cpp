// `acmetool renew` against a real pebble and the local CA.
#include <catch2/catch.hpp>
#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>

#include "acmetool/pki/rfc3339.h"
#include "fault_proxy.h"

#include "pebble.h"
#include "process.h"
#include "run_acmetool.h"

namespace fs = std::filesystem;
using acmetool::test::CommandResult;
using acmetool::test::PebbleOptions;
using acmetool::test::PebbleServer;
using acmetool::test::read_text;
using acmetool::test::run_acmetool;
using acmetool::test::run_command;
using acmetool::test::TempDir;

namespace {

// Flags that let acmetool reach `pebble` and answer its challenges.
std::vector<std::string> pebble_flags(const PebbleServer& pebble) {
  return {"--ca-root", pebble.listener_ca_file().string(), "--http-port", std::to_string(pebble.http01_port()),
          "--tls-port", std::to_string(pebble.tlsalpn01_port())};
}

CommandResult run(const TempDir& storage, const std::string& command, const PebbleServer& pebble,
                  std::vector<std::string> args) {
  std::vector<std::string> argv = {"--storage", storage.path().string(), command};
  if (command == "obtain") argv.insert(argv.end(), {"--ca", pebble.directory_url()});
  for (const std::string& flag : pebble_flags(pebble)) argv.push_back(flag);
  argv.insert(argv.end(), args.begin(), args.end());
  return run_acmetool(argv);
}

fs::path stored(const PebbleServer& pebble, const TempDir& storage, const std::string& name) {
  std::string issuer = pebble.directory_url().substr(8);
  for (char& c : issuer) c = c == ':' || c == '/' ? '-' : c;
  return storage.path() / "certificates" / issuer / name / (name + ".crt");
}

}  // namespace

TEST_CASE("renew leaves certificates that are not due alone and renews them with --force", "[acme][pebble][renew]") {
  PebbleServer& pebble = PebbleServer::shared();
  TempDir storage;
  REQUIRE(run(storage, "obtain", pebble, {"--challenge", "tls-alpn-01", "renew.example.test"}).exit_code == 0);
  const fs::path crt = stored(pebble, storage, "renew.example.test");
  const std::string first = read_text(crt);

  CommandResult r = run(storage, "renew", pebble, {"--all"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "not-due\trenew.example.test\t" + crt.string() + "\n");
  CHECK(read_text(crt) == first);

  r = run(storage, "renew", pebble, {"--force", "renew.example.test"});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "renewed\trenew.example.test\t" + crt.string() + "\n");
  CHECK(read_text(crt) != first);
  CHECK(run_command({"openssl", "verify", "-CAfile", pebble.root_file().string(), "-untrusted", crt.string(),
                     crt.string()}).exit_code == 0);
  // The recorded challenge (tls-alpn-01) was used again.
  CHECK(read_text(crt.parent_path() / "renew.example.test.json").find("\"challenge\": \"tls-alpn-01\"") !=
        std::string::npos);
}

TEST_CASE("renew --days renews certificates with fewer days left", "[acme][pebble][renew]") {
  PebbleOptions options;
  options.certificate_validity = std::chrono::hours(30);  // a day and a quarter
  PebbleServer pebble(options);
  TempDir storage;
  REQUIRE(run(storage, "obtain", pebble, {"short.example.test"}).exit_code == 0);
  const fs::path crt = stored(pebble, storage, "short.example.test");
  const std::string first = read_text(crt);

  CommandResult r = run(storage, "renew", pebble, {"--all", "--days", "1"});
  CHECK(r.out.starts_with("not-due\t"));  // 30 h left
  r = run(storage, "renew", pebble, {"--all", "--days", "2"});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out.starts_with("renewed\tshort.example.test\t"));
  CHECK(read_text(crt) != first);
}

TEST_CASE("renew re-issues local-CA certificates from the local CA", "[renew]") {
  TempDir storage;
  const std::string s = storage.path().string();
  REQUIRE(run_acmetool({"--storage", s, "ca", "issue", "app.internal"}).exit_code == 0);
  const fs::path crt = storage.path() / "certificates/local/app.internal/app.internal.crt";
  const std::string first = read_text(crt);
  CommandResult r = run_acmetool({"--storage", s, "renew", "--all"});
  CHECK(r.out == "not-due\tapp.internal\t" + crt.string() + "\n");
  r = run_acmetool({"--storage", s, "renew", "--force", "app.internal"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "renewed\tapp.internal\t" + crt.string() + "\n");
  CHECK(read_text(crt) != first);
  const fs::path authority = storage.path() / "pki/authorities/local";
  CHECK(run_command({"openssl", "verify", "-CAfile", (authority / "root.crt").string(), "-untrusted", crt.string(),
                     crt.string()}).exit_code == 0);
}

TEST_CASE("renew needs names or --all, and names it cannot find are an error", "[renew]") {
  TempDir storage;
  CommandResult r = run_acmetool({"--storage", storage.path().string(), "renew"});
  CHECK(r.exit_code == 2);
  CHECK(r.err == "acmetool: renew: name a certificate or pass --all\n");
  r = run_acmetool({"--storage", storage.path().string(), "renew", "nothing.example"});
  CHECK(r.exit_code == 1);
  CHECK(r.err == "acmetool: renew: no stored certificate for the names given\n");
  r = run_acmetool({"--storage", storage.path().string(), "renew", "--all"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.empty());
}

TEST_CASE("renew follows the CA's ARI window: not due before it, renewed inside it with replaces",
          "[acme][pebble][renew]") {
  PebbleServer& pebble = PebbleServer::shared();
  acmetool::test::FaultProxy proxy(pebble.directory_url(), pebble.listener_ca_file());
  std::atomic<bool> window_open{false};
  proxy.offer_renewal_info([&](const std::string&) {
    const auto now = std::chrono::system_clock::now();
    const auto start = window_open ? now - std::chrono::hours(2) : now + std::chrono::hours(24 * 20);
    nlohmann::json body = {{"suggestedWindow",
                            {{"start", acmetool::pki::format_rfc3339(start)},
                             {"end", acmetool::pki::format_rfc3339(start + std::chrono::hours(1))}}}};
    return acmetool::test::CannedAnswer{200, body.dump(), "21600"};
  });
  TempDir storage;
  const std::vector<std::string> flags = {"--ca-root", proxy.ca_file().string(), "--http-port",
                                          std::to_string(pebble.http01_port()), "--challenge", "http-01"};
  std::vector<std::string> argv = {"--storage", storage.path().string(), "obtain", "--ca", proxy.directory_url()};
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.push_back("ari.example.test");
  REQUIRE(run_acmetool(argv).exit_code == 0);

  argv = {"--storage", storage.path().string(), "--json", "renew", "--all"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  CommandResult r = run_acmetool(argv);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto rows = nlohmann::json::parse(r.out);
  CHECK(rows[0]["status"] == "not-due");
  CHECK(rows[0]["reason"].get<std::string>().find("the CA's window") != std::string::npos);
  CHECK(proxy.count(acmetool::test::RequestKind::RenewalInfo) == 1);

  // Six hours later (the stored Retry-After has passed) the CA has opened the window.
  std::string issuer = proxy.directory_url().substr(8);
  for (char& c : issuer) c = c == ':' || c == '/' ? '-' : c;
  const fs::path meta = storage.path() / "certificates" / issuer / "ari.example.test" / "ari.example.test.json";
  auto doc = nlohmann::json::parse(read_text(meta));
  REQUIRE(doc["issuer_data"].contains("renewal_info"));
  CHECK(nlohmann::json::parse(run_acmetool({"--storage", storage.path().string(), "--json", "certs"}).out)[0]["state"] ==
        "valid");
  doc["issuer_data"]["renewal_info"]["_retryAfter"] = "2000-01-01T00:00:00Z";
  doc["issuer_data"]["renewal_info"]["_selectedTime"] = "2000-01-01T00:00:00Z";
  std::ofstream(meta, std::ios::trunc) << doc.dump();
  window_open = true;
  // `certs` reads the stored pick: due, though two thirds of its life are left.
  CHECK(nlohmann::json::parse(run_acmetool({"--storage", storage.path().string(), "--json", "certs"}).out)[0]["state"] ==
        "due");

  r = run_acmetool(argv);
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  rows = nlohmann::json::parse(r.out);
  CHECK(rows[0]["status"] == "renewed");
  CHECK(rows[0]["reason"].get<std::string>().find("renewal window") != std::string::npos);
  CHECK(proxy.count(acmetool::test::RequestKind::RenewalInfo) == 2);
  const auto orders = proxy.payloads(acmetool::test::RequestKind::NewOrder);
  REQUIRE(orders.size() == 2);
  CHECK(orders[1].contains("replaces"));
}
