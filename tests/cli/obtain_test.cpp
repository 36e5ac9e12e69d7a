// `acmetool obtain` against a real ACME CA: pebble and challtestsrv on loopback. Certificates must
// verify with openssl against pebble's issuing root; faults pebble can produce are switched on
// with its environment knobs.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "fault_proxy.h"
#include "pebble.h"
#include "process.h"
#include "run_acmetool.h"

namespace fs = std::filesystem;
using acmetool::test::ChildProcess;
using acmetool::test::CommandResult;
using acmetool::test::FaultProxy;
using acmetool::test::free_port;
using acmetool::test::PebbleOptions;
using acmetool::test::PebbleServer;
using acmetool::test::read_text;
using acmetool::test::run_acmetool;
using acmetool::test::run_command;
using acmetool::test::TempDir;
using namespace std::chrono_literals;

namespace {

// `acmetool --storage S obtain ...` against `pebble`, answering challenges on pebble's ports.
CommandResult obtain(const PebbleServer& pebble, const TempDir& storage, std::vector<std::string> args) {
  std::vector<std::string> argv = {"--storage", storage.path().string(), "obtain", "--ca", pebble.directory_url(),
                                   "--ca-root", pebble.listener_ca_file().string(),
                                   "--http-port", std::to_string(pebble.http01_port()),
                                   "--tls-port", std::to_string(pebble.tlsalpn01_port())};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_acmetool(argv);
}

fs::path stored_cert(const PebbleServer& pebble, const TempDir& storage, const std::string& name) {
  std::string issuer = pebble.directory_url().substr(8);  // host:port/dir
  for (char& c : issuer) c = c == ':' || c == '/' ? '-' : c;
  return storage.path() / "certificates" / issuer / name / (name + ".crt");
}

// openssl verify of the leaf in `chain_file` (leaf first, then intermediates) against pebble's root.
bool verifies(const PebbleServer& pebble, const fs::path& chain_file) {
  const CommandResult r = run_command({"openssl", "verify", "-CAfile", pebble.root_file().string(), "-untrusted",
                                       chain_file.string(), chain_file.string()});
  INFO(r.out << r.err);
  return r.exit_code == 0 && r.out.find(": OK") != std::string::npos;
}

std::string san_of(const fs::path& chain_file) {
  return run_command({"openssl", "x509", "-in", chain_file.string(), "-noout", "-ext", "subjectAltName"}).out;
}

}  // namespace

TEST_CASE("obtain with http-01 stores a certificate that verifies against pebble's root", "[acme][pebble]") {
  PebbleServer& pebble = PebbleServer::shared();
  TempDir storage;
  const CommandResult r = obtain(pebble, storage, {"--challenge", "http-01", "web.example.test"});
  INFO(r.err << pebble.logs());
  REQUIRE(r.exit_code == 0);
  const fs::path crt = stored_cert(pebble, storage, "web.example.test");
  CHECK(r.out == "obtained\tweb.example.test\t" + crt.string() + "\n");
  CHECK(verifies(pebble, crt));
  CHECK(san_of(crt).find("DNS:web.example.test") != std::string::npos);
  // The key is private and belongs to the certificate.
  CHECK((fs::status(crt.parent_path() / "web.example.test.key").permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write));
}

TEST_CASE("obtain with tls-alpn-01 works, and a multi-name and an IP certificate come out right",
          "[acme][pebble]") {
  PebbleServer& pebble = PebbleServer::shared();
  TempDir storage;
  const CommandResult r = obtain(pebble, storage, {"--challenge", "tls-alpn-01", "a.example.test,b.example.test", "127.0.0.1"});
  INFO(r.err << pebble.logs());
  REQUIRE(r.exit_code == 0);
  const fs::path multi = stored_cert(pebble, storage, "a.example.testb.example.test");
  CHECK(verifies(pebble, multi));
  CHECK(san_of(multi).find("DNS:a.example.test, DNS:b.example.test") != std::string::npos);
  const fs::path ip = stored_cert(pebble, storage, "127.0.0.1");
  CHECK(verifies(pebble, ip));
  CHECK(san_of(ip).find("IP Address:127.0.0.1") != std::string::npos);
}

TEST_CASE("obtain with --webroot writes the token for a web server that serves the directory", "[acme][pebble]") {
  PebbleServer& pebble = PebbleServer::shared();
  TempDir storage, webroot;
  ChildProcess httpd = ChildProcess::start({"busybox", "httpd", "-f", "-p",
                                            "127.0.0.1:" + std::to_string(pebble.http01_port()), "-h",
                                            webroot.path().string()});
  const CommandResult r = obtain(pebble, storage, {"--challenge", "http-01", "--webroot", webroot.path().string(),
                                                   "static.example.test"});
  INFO(r.err << pebble.logs());
  REQUIRE(r.exit_code == 0);
  CHECK(verifies(pebble, stored_cert(pebble, storage, "static.example.test")));
  // The token file is cleaned up afterwards.
  CHECK(fs::is_empty(webroot.path() / ".well-known/acme-challenge"));
}

TEST_CASE("every key type gets a certificate", "[acme][pebble]") {
  PebbleServer& pebble = PebbleServer::shared();
  const std::string type = GENERATE("p256", "p384", "rsa2048", "rsa3072", "ed25519");
  TempDir storage, out;
  const std::string name = type + ".keys.example.test";
  const CommandResult r = obtain(pebble, storage, {"--key-type", type, "--out", out.path().string(), name});
  INFO(type << ": " << r.err);
  REQUIRE(r.exit_code == 0);
  const fs::path crt = out.path() / (name + ".crt");
  CHECK(verifies(pebble, crt));
  const auto cert_key = run_command({"openssl", "x509", "-in", crt.string(), "-noout", "-pubkey"});
  const auto private_key = run_command({"openssl", "pkey", "-in", (out.path() / (name + ".key")).string(), "-pubout"});
  CHECK(cert_key.out == private_key.out);
  CHECK(nlohmann::json::parse(read_text(out.path() / (name + ".json")))["sans"][0] == name);
}

TEST_CASE("a stored certificate with life left is reused unless --force", "[acme][pebble]") {
  PebbleServer& pebble = PebbleServer::shared();
  TempDir storage;
  REQUIRE(obtain(pebble, storage, {"again.example.test"}).exit_code == 0);
  const fs::path crt = stored_cert(pebble, storage, "again.example.test");
  const std::string first = read_text(crt);
  CommandResult r = obtain(pebble, storage, {"again.example.test"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.starts_with("reused\tagain.example.test\t"));
  CHECK(read_text(crt) == first);
  // A reused certificate is copied to --out too, and needs no challenge listener: the ports are busy.
  TempDir out;
  ChildProcess squatter = ChildProcess::start({"busybox", "httpd", "-f", "-p",
                                               "127.0.0.1:" + std::to_string(pebble.http01_port())});
  r = obtain(pebble, storage, {"--out", out.path().string(), "again.example.test"});
  CHECK(r.exit_code == 0);
  CHECK(read_text(out.path() / "again.example.test.crt") == first);
  squatter.stop();
  r = obtain(pebble, storage, {"--force", "again.example.test"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.starts_with("obtained\t"));
  CHECK(read_text(crt) != first);
}

TEST_CASE("--reuse-key keeps the stored key and renewal follows the recorded choice", "[acme][pebble]") {
  PebbleServer& pebble = PebbleServer::shared();
  TempDir storage;
  REQUIRE(obtain(pebble, storage, {"keep.example.test"}).exit_code == 0);
  const fs::path key = stored_cert(pebble, storage, "keep.example.test").parent_path() / "keep.example.test.key";
  const std::string first = read_text(key);
  REQUIRE(obtain(pebble, storage, {"--force", "--reuse-key", "keep.example.test"}).exit_code == 0);
  CHECK(read_text(key) == first);
  CHECK(verifies(pebble, stored_cert(pebble, storage, "keep.example.test")));
  REQUIRE(obtain(pebble, storage, {"--force", "keep.example.test"}).exit_code == 0);
  CHECK(read_text(key) != first);
}

TEST_CASE("obtain registers again when the CA no longer knows the stored account", "[acme][pebble]") {
  PebbleServer& pebble = PebbleServer::shared();
  TempDir storage;
  REQUIRE(obtain(pebble, storage, {"first.example.test"}).exit_code == 0);
  // Point the stored registration at an account URL pebble has never issued, as a restarted
  // pebble (which forgets every account) would see it.
  const fs::path users = storage.path() / "acme";
  fs::path registration;
  for (const auto& entry : fs::recursive_directory_iterator(users)) {
    if (entry.path().extension() == ".json") registration = entry.path();
  }
  REQUIRE_FALSE(registration.empty());
  auto doc = nlohmann::json::parse(read_text(registration));
  const std::string old_url = doc["location"];
  doc["location"] = old_url.substr(0, old_url.rfind('/') + 1) + "999999";
  std::ofstream(registration) << doc.dump();

  const CommandResult r = obtain(pebble, storage, {"second.example.test"});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.err.find("registering again") != std::string::npos);
  CHECK(nlohmann::json::parse(read_text(registration))["location"] != doc["location"]);
}

TEST_CASE("after pebble restarts (forgetting every account) obtain registers again by itself", "[acme][pebble]") {
  auto before = std::make_unique<PebbleServer>();
  // The proxy keeps the CA's URL (and so the stored account's issuer key) across the restart.
  FaultProxy proxy(before->directory_url(), before->listener_ca_file());
  TempDir storage;
  auto obtain_via_proxy = [&](const PebbleServer& pebble, const std::string& name) {
    return run_acmetool({"--storage", storage.path().string(), "obtain", "--ca", proxy.directory_url(), "--ca-root",
                         proxy.ca_file().string(), "--challenge", "http-01", "--http-port",
                         std::to_string(pebble.http01_port()), name});
  };
  CommandResult r = obtain_via_proxy(*before, "before.example.test");
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("registering again") == std::string::npos);
  before.reset();  // stopped: its accounts are gone

  PebbleServer after;
  proxy.set_upstream(after.directory_url(), after.listener_ca_file());
  r = obtain_via_proxy(after, "after.example.test");
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.err.find("registering again") != std::string::npos);
  std::string issuer = proxy.directory_url().substr(8);
  for (char& c : issuer) c = c == ':' || c == '/' ? '-' : c;
  const fs::path crt = storage.path() / "certificates" / issuer / "after.example.test" / "after.example.test.crt";
  CHECK(verifies(after, crt));
}

TEST_CASE("obtain fails with exit 1 and a one-line reason when no challenge can succeed", "[acme][pebble]") {
  PebbleServer& pebble = PebbleServer::shared();
  TempDir storage, empty_webroot;
  // A webroot nobody serves: pebble's VA finds nothing listening for http-01.
  const CommandResult r = obtain(pebble, storage, {"--challenge", "http-01", "--webroot",
                                                   empty_webroot.path().string(), "nobody.example.test"});
  CHECK(r.exit_code == 1);
  CHECK(r.out.starts_with("failed\tnobody.example.test\t"));
  CHECK(r.out.find("http-01") != std::string::npos);
}

TEST_CASE("after a failure obtain backs off without asking the CA, and --force tries at once", "[acme][pebble]") {
  PebbleServer& pebble = PebbleServer::shared();
  TempDir storage, empty_webroot;
  const std::vector<std::string> args = {"--challenge", "http-01", "--webroot", empty_webroot.path().string(),
                                         "backoff.example.test"};
  CommandResult r = obtain(pebble, storage, args);
  REQUIRE(r.exit_code == 1);
  // The failure is remembered with the storage, as one failed validation.
  const fs::path record = storage.path() / "acmetool" / "failures" /
                          stored_cert(pebble, storage, "x").parent_path().parent_path().filename() /
                          "backoff.example.test.json";
  REQUIRE(fs::exists(record));
  const auto doc = nlohmann::json::parse(read_text(record));
  CHECK(doc["consecutive"] == 1);
  CHECK(doc["failed_validations"].size() == 1);

  const auto started = std::chrono::steady_clock::now();
  r = obtain(pebble, storage, args);
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("backing off until ") != std::string::npos);
  CHECK(r.out.find("--force tries now") != std::string::npos);
  CHECK(r.err.find("newOrder") == std::string::npos);
  CHECK(std::chrono::steady_clock::now() - started < 2s);  // no order, no validation wait
  CHECK(nlohmann::json::parse(read_text(record))["consecutive"] == 1);  // a skipped attempt is no failure

  r = obtain(pebble, storage, {"--force", "--challenge", "http-01", "--webroot", empty_webroot.path().string(),
                               "backoff.example.test"});
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("backing off") == std::string::npos);
  CHECK(nlohmann::json::parse(read_text(record))["consecutive"] == 2);

  // A success forgets the failures.
  r = obtain(pebble, storage, {"--force", "backoff.example.test"});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK_FALSE(fs::exists(record));
}

TEST_CASE("obtain refuses an http:// CA and an invalid name as usage errors", "[acme]") {
  TempDir storage;
  CommandResult r = run_acmetool({"--storage", storage.path().string(), "obtain", "--ca", "http://127.0.0.1:1/dir", "a.test"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("https://") != std::string::npos);
  r = run_acmetool({"--storage", storage.path().string(), "obtain", "bad_name.example"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.starts_with("acmetool: obtain: bad_name.example: "));
  r = run_acmetool({"--storage", storage.path().string(), "obtain", "*.example.com"});
  CHECK(r.exit_code == 2);
  CHECK(r.err == "acmetool: obtain: *.example.com: a wildcard needs the dns-01 challenge (--dns PROVIDER)\n");
}

TEST_CASE("20 of 20 issuances succeed while pebble rejects half the nonces", "[acme][pebble]") {
  PebbleOptions options;
  options.env = {{"PEBBLE_WFE_NONCEREJECT", "50"}};
  PebbleServer pebble(options);
  TempDir storage;
  std::vector<std::string> names;
  for (int i = 0; i < 20; ++i) names.push_back("n" + std::to_string(i) + ".nonce.example.test");
  const CommandResult r = obtain(pebble, storage, names);
  INFO(r.err);
  CHECK(r.exit_code == 0);
  for (const std::string& name : names) CHECK(verifies(pebble, stored_cert(pebble, storage, name)));
}

TEST_CASE("--preferred-chain picks the chain of the named root", "[acme][pebble]") {
  PebbleOptions options;
  options.env = {{"PEBBLE_ALTERNATE_ROOTS", "1"}};
  PebbleServer pebble(options);
  const CommandResult roots = run_command({"curl", "-s", "--cacert", pebble.listener_ca_file().string(),
                                           pebble.management_url() + "/roots/1"});
  TempDir dir;
  std::ofstream(dir.path() / "root1.pem") << roots.out;
  std::string cn = run_command({"openssl", "x509", "-in", (dir.path() / "root1.pem").string(), "-noout", "-subject",
                                "-nameopt", "RFC2253"}).out;
  cn = cn.substr(cn.find("CN=") + 3);
  cn = cn.substr(0, cn.find_first_of(",\n"));
  INFO("alternate root CN: '" << cn << "'");
  TempDir storage;
  const CommandResult r = obtain(pebble, storage, {"--preferred-chain", cn, "alt.example.test"});
  REQUIRE(r.exit_code == 0);
  const fs::path crt = stored_cert(pebble, storage, "alt.example.test");
  const CommandResult verify = run_command({"openssl", "verify", "-CAfile", (dir.path() / "root1.pem").string(),
                                            "-untrusted", crt.string(), crt.string()});
  CHECK(verify.exit_code == 0);
  CHECK_FALSE(verifies(pebble, crt));  // not the default root's chain
}

TEST_CASE("--preferred-chain picks among three roots with longer chains", "[acme][pebble]") {
  PebbleOptions options;
  options.env = {{"PEBBLE_ALTERNATE_ROOTS", "2"}, {"PEBBLE_CHAIN_LENGTH", "4"}};
  PebbleServer pebble(options);
  TempDir dir;
  // Root 2's common name, from pebble's management API.
  const CommandResult root = run_command({"curl", "-s", "--cacert", pebble.listener_ca_file().string(),
                                          pebble.management_url() + "/roots/2"});
  std::ofstream(dir.path() / "root2.pem") << root.out;
  std::string cn = run_command({"openssl", "x509", "-in", (dir.path() / "root2.pem").string(), "-noout", "-subject",
                                "-nameopt", "RFC2253"}).out;
  cn = cn.substr(cn.find("CN=") + 3);
  cn = cn.substr(0, cn.find_first_of(",\n"));
  TempDir storage;
  const CommandResult r = obtain(pebble, storage, {"--preferred-chain", cn, "long.example.test"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const fs::path crt = stored_cert(pebble, storage, "long.example.test");
  const std::string chain = read_text(crt);
  size_t certs = 0;
  for (size_t at = 0; (at = chain.find("-----BEGIN CERTIFICATE-----", at)) != std::string::npos; ++at) ++certs;
  CHECK(certs == 5);  // the leaf and PEBBLE_CHAIN_LENGTH intermediates; the root is not sent
  CHECK(run_command({"openssl", "verify", "-CAfile", (dir.path() / "root2.pem").string(), "-untrusted", crt.string(),
                     crt.string()}).exit_code == 0);
  CHECK_FALSE(verifies(pebble, crt));
  // Without the option the default chain, to root 0, is kept.
  TempDir plain;
  REQUIRE(obtain(pebble, plain, {"long.example.test"}).exit_code == 0);
  CHECK(verifies(pebble, stored_cert(pebble, plain, "long.example.test")));
}

TEST_CASE("obtain with EAB works with the right MAC key and fails clearly with a wrong one", "[acme][pebble]") {
  PebbleOptions options;
  options.require_eab = true;
  PebbleServer pebble(options);
  const auto& [kid, hmac] = *PebbleServer::eab_keys().begin();
  TempDir good, bad;
  CommandResult r = obtain(pebble, good, {"--eab-kid", kid, "--eab-hmac", hmac, "eab.example.test"});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  r = obtain(pebble, bad, {"--eab-kid", kid, "--eab-hmac", "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk", "eab2.example.test"});
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("failed\teab2.example.test") != std::string::npos);
  CHECK(r.out.find("xternal") != std::string::npos);  // "External account binding ..." in pebble's detail
}
