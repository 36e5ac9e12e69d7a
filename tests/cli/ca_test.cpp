// `acmetool ca` as a user runs it: files on disk, openssl's view of them, exit codes and messages.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "process.h"
#include "run_acmetool.h"

namespace fs = std::filesystem;
using acmetool::test::ChildProcess;
using acmetool::test::CommandResult;
using acmetool::test::read_text;
using acmetool::test::run_acmetool;
using acmetool::test::run_command;
using acmetool::test::TempDir;
using namespace std::chrono_literals;

namespace {

CommandResult ca(const TempDir& storage, std::vector<std::string> args) {
  args.insert(args.begin(), {"--storage", storage.path().string(), "ca"});
  return run_acmetool(args);
}

fs::path authority(const TempDir& storage, const char* file) {
  return storage.path() / "pki/authorities/local" / file;
}

}  // namespace

TEST_CASE("ca init creates the CA once and reports it", "[cli][ca]") {
  TempDir storage;
  CommandResult r = ca(storage, {"init"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("root\tacmetool Local Authority - ") != std::string::npos);
  CHECK(r.out.find("intermediate\tacmetool Local Authority - ECC Intermediate") != std::string::npos);
  const std::string root = read_text(authority(storage, "root.crt"));
  REQUIRE(root.starts_with("-----BEGIN CERTIFICATE-----"));

  r = run_command({ACMETOOL_BINARY, "--storage", storage.path().string(), "--json", "ca", "init"});
  CHECK(r.exit_code == 0);
  const auto doc = nlohmann::json::parse(r.out);
  CHECK(doc["created"] == false);
  CHECK(doc["root"]["path"] == authority(storage, "root.crt").string());
  CHECK(doc["intermediate"]["days_left"] == 6);
  CHECK(read_text(authority(storage, "root.crt")) == root);
}

TEST_CASE("ca init --cn names the root", "[cli][ca]") {
  TempDir storage;
  CHECK(ca(storage, {"init", "--cn", "Dev Team CA"}).exit_code == 0);
  const auto r = run_command({"openssl", "x509", "-in", authority(storage, "root.crt").string(), "-noout", "-subject"});
  CHECK(r.out.find("Dev Team CA - ") != std::string::npos);
}

TEST_CASE("two ca init processes at once make one root", "[cli][ca]") {
  TempDir storage;
  std::vector<ChildProcess> runs;
  for (int i = 0; i < 2; ++i) {
    runs.push_back(ChildProcess::start({ACMETOOL_BINARY, "--storage", storage.path().string(), "--json", "ca", "init"},
                                       storage.path() / ("init" + std::to_string(i) + ".log")));
  }
  for (auto& run : runs) {
    const auto status = run.wait(30s);
    REQUIRE(status.has_value());
    CHECK(WEXITSTATUS(*status) == 0);
  }
  const auto a = nlohmann::json::parse(read_text(storage.path() / "init0.log"));
  const auto b = nlohmann::json::parse(read_text(storage.path() / "init1.log"));
  CHECK(a["root"]["sha256"] == b["root"]["sha256"]);
  CHECK(a["created"] != b["created"]);
}

TEST_CASE("ca issue --out writes a chain and a private key that openssl accepts", "[cli][ca]") {
  TempDir storage, out;
  const CommandResult r = ca(storage, {"issue", "localhost", "127.0.0.1", "--out", out.path().string()});
  REQUIRE(r.exit_code == 0);
  const fs::path crt = out.path() / "localhost.crt", key = out.path() / "localhost.key";
  CHECK(r.out == crt.string() + "\n" + key.string() + "\n");
  CHECK((fs::status(key).permissions() & fs::perms::all) == (fs::perms::owner_read | fs::perms::owner_write));

  const auto verify = run_command({"openssl", "verify", "-CAfile", authority(storage, "root.crt").string(), "-untrusted",
                                   authority(storage, "intermediate.crt").string(), crt.string()});
  CHECK(verify.exit_code == 0);
  const auto text = run_command({"openssl", "x509", "-in", crt.string(), "-noout", "-ext", "subjectAltName"});
  CHECK(text.out.find("DNS:localhost, IP Address:127.0.0.1") != std::string::npos);
  // The key belongs to the certificate.
  const auto cert_key = run_command({"openssl", "x509", "-in", crt.string(), "-noout", "-pubkey"});
  const auto private_key = run_command({"openssl", "pkey", "-in", key.string(), "-pubout"});
  CHECK(cert_key.out == private_key.out);
  // The chain holds the leaf and the intermediate.
  const std::string chain = read_text(crt);
  CHECK(chain.find("-----BEGIN CERTIFICATE-----", 1) != std::string::npos);
}

TEST_CASE("ca issue without --out stores the certificate where Caddy keeps internal ones", "[cli][ca]") {
  TempDir storage;
  const CommandResult r = ca(storage, {"issue", "app.internal", "--lifetime", "90m"});
  REQUIRE(r.exit_code == 0);
  const fs::path dir = storage.path() / "certificates/local/app.internal";
  CHECK(fs::exists(dir / "app.internal.crt"));
  CHECK(fs::exists(dir / "app.internal.key"));
  CHECK(nlohmann::json::parse(read_text(dir / "app.internal.json"))["sans"] == nlohmann::json::array({"app.internal"}));
  const auto dates = run_command({"openssl", "x509", "-in", (dir / "app.internal.crt").string(), "-noout", "-dates"});
  CHECK(dates.exit_code == 0);
  const auto listed = run_command({ACMETOOL_BINARY, "--storage", storage.path().string(), "certs"});
  CHECK(listed.out.starts_with("app.internal\tlocal\t"));
  CHECK(listed.out.find("\tvalid\t" + (dir / "app.internal.crt").string()) != std::string::npos);
}

TEST_CASE("ca issue rejects a lifetime that is not a duration", "[cli][ca]") {
  TempDir storage;
  const CommandResult r = ca(storage, {"issue", "localhost", "--lifetime", "forever"});
  CHECK(r.exit_code == 2);
  CHECK(r.err == "acmetool: ca issue: --lifetime forever: expected a duration of at least 1m, like 12h or 90m\n");
}

TEST_CASE("ca issue refuses an invalid name and normalises the others", "[cli][ca]") {
  TempDir storage, out;
  CommandResult r = ca(storage, {"issue", "localhost:8443"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.starts_with("acmetool: ca issue: localhost:8443: "));
  CHECK(r.err.find("port") != std::string::npos);
  CHECK_FALSE(fs::exists(storage.path() / "certificates"));

  r = ca(storage, {"issue", "Bücher.Internal", "*.Dev.localhost", "--out", out.path().string()});
  REQUIRE(r.exit_code == 0);
  const auto san = run_command({"openssl", "x509", "-in", (out.path() / "xn--bcher-kva.internal.crt").string(), "-noout",
                                "-ext", "subjectAltName"});
  CHECK(san.out.find("DNS:xn--bcher-kva.internal, DNS:*.dev.localhost") != std::string::npos);
}

TEST_CASE("ca status, rotate and export need an existing CA", "[cli][ca]") {
  TempDir storage;
  for (const char* action : {"status", "rotate", "export"}) {
    INFO(action);
    const CommandResult r = ca(storage, {action});
    CHECK(r.exit_code == 1);
    CHECK(r.err == "acmetool: no local CA \"local\" in " + storage.path().string() + ": run 'acmetool ca init' first\n");
  }
  CHECK_FALSE(fs::exists(authority(storage, "root.crt")));
}

TEST_CASE("ca rotate replaces the intermediate, and --root the root too", "[cli][ca]") {
  TempDir storage;
  REQUIRE(ca(storage, {"init"}).exit_code == 0);
  const std::string root = read_text(authority(storage, "root.crt"));
  const std::string intermediate = read_text(authority(storage, "intermediate.crt"));

  CHECK(ca(storage, {"rotate"}).exit_code == 0);
  CHECK(read_text(authority(storage, "root.crt")) == root);
  CHECK(read_text(authority(storage, "intermediate.crt")) != intermediate);

  const CommandResult r = ca(storage, {"rotate", "--root"});
  CHECK(r.exit_code == 0);
  CHECK(r.err.find("run 'acmetool trust'") != std::string::npos);
  CHECK(read_text(authority(storage, "root.crt")) != root);
  CHECK(r.out.find("previous root\t") != std::string::npos);
}

TEST_CASE("ca export writes the root as PEM, DER or PKCS#12", "[cli][ca]") {
  TempDir storage, out;
  REQUIRE(ca(storage, {"init"}).exit_code == 0);
  CommandResult r = ca(storage, {"export"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == read_text(authority(storage, "root.crt")));

  const fs::path der = out.path() / "root.der";
  REQUIRE(ca(storage, {"export", "--format", "der", "--out", der.string()}).exit_code == 0);
  r = run_command({"openssl", "x509", "-inform", "DER", "-in", der.string()});
  CHECK(r.out == read_text(authority(storage, "root.crt")));

  const fs::path p12 = out.path() / "root.p12";
  REQUIRE(ca(storage, {"export", "--format", "p12", "--out", p12.string()}).exit_code == 0);
  r = run_command({"openssl", "pkcs12", "-in", p12.string(), "-passin", "pass:changeit", "-nokeys"});
  CHECK(r.out.find(read_text(authority(storage, "root.crt"))) != std::string::npos);
}
