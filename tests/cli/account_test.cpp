// `acmetool revoke` and `acmetool account` against a real pebble: what the CA says afterwards
// (its management API for revocation, the account object for accounts) and what storage holds.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "pebble.h"
#include "process.h"
#include "run_acmetool.h"

namespace fs = std::filesystem;
using acmetool::test::CommandResult;
using acmetool::test::PebbleServer;
using acmetool::test::read_text;
using acmetool::test::run_acmetool;
using acmetool::test::run_command;
using acmetool::test::TempDir;
using nlohmann::json;

namespace {

std::string issuer_of(const PebbleServer& pebble) {
  std::string issuer = pebble.directory_url().substr(8);  // host:port/dir
  for (char& c : issuer) c = c == ':' || c == '/' ? '-' : c;
  return issuer;
}

// `acmetool --storage S COMMAND --ca-root <pebble's> ARGS...`; `with_ca` adds --ca <pebble>.
CommandResult run(const PebbleServer& pebble, const TempDir& storage, const std::string& command,
                  std::vector<std::string> args, bool with_ca = true) {
  std::vector<std::string> argv = {"--storage", storage.path().string(), command, "--ca-root",
                                   pebble.listener_ca_file().string()};
  if (with_ca) argv.insert(argv.end(), {"--ca", pebble.directory_url()});
  if (command == "obtain") {
    argv.insert(argv.end(), {"--http-port", std::to_string(pebble.http01_port()), "--tls-port",
                             std::to_string(pebble.tlsalpn01_port())});
  }
  argv.insert(argv.end(), args.begin(), args.end());
  return run_acmetool(argv);
}

CommandResult account(const PebbleServer& pebble, const TempDir& storage,
                      std::vector<std::string> args) {
  return run(pebble, storage, "account", std::move(args));
}

fs::path site_dir(const PebbleServer& pebble, const TempDir& storage, const std::string& name) {
  return storage.path() / "certificates" / issuer_of(pebble) / name;
}

fs::path account_key(const PebbleServer& pebble, const TempDir& storage, const std::string& email) {
  return storage.path() / "acme" / issuer_of(pebble) / "users" / email /
         (email.substr(0, email.find('@')) + ".key");
}

// The serial as openssl prints it, in lower case: whole bytes in hex.
std::string serial_of(const fs::path& crt) {
  std::string serial =
      run_command({"openssl", "x509", "-in", crt.string(), "-noout", "-serial"}).out;
  serial = serial.substr(serial.find('=') + 1);
  serial = serial.substr(0, serial.find('\n'));
  for (char& c : serial) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  // openssl prints whole bytes ("07ab"); acmetool and pebble print no leading zeros.
  serial.erase(0, std::min(serial.find_first_not_of('0'), serial.size() - 1));
  return serial;
}

// pebble's record of a certificate: {"Status": "Valid"|"Revoked", "Reason": code, ...}.
json cert_status(const PebbleServer& pebble, const std::string& serial) {
  // pebble spells serials without leading zeros.
  const std::string number =
      serial.substr(std::min(serial.find_first_not_of('0'), serial.size() - 1));
  const CommandResult r =
      run_command({"curl", "-sf", "--cacert", pebble.listener_ca_file().string(),
                   pebble.management_url() + "/cert-status-by-serial/" + number});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return json::parse(r.out);
}

bool one_line(const std::string& text) {
  return !text.empty() && text.find('\n') == text.size() - 1;
}

std::string field(const std::string& out, const std::string& name) {
  const size_t at = out.find(name + "\t");
  if (at == std::string::npos) return "";
  const size_t start = at + name.size() + 1;
  return out.substr(start, out.find('\n', start) - start);
}

}  // namespace

TEST_CASE("revoke NAME revokes the stored certificate with its reason and removes it from storage",
          "[acme][pebble][revoke]") {
  PebbleServer& pebble = PebbleServer::shared();
  TempDir storage;
  REQUIRE(run(pebble, storage, "obtain", {"--email", "rev@example.test", "revoked.example.test"})
              .exit_code == 0);
  const fs::path site = site_dir(pebble, storage, "revoked.example.test");
  const std::string serial = serial_of(site / "revoked.example.test.crt");
  CHECK(cert_status(pebble, serial)["Status"] == "Valid");

  // No --ca: the name is looked up under every issuer.
  CommandResult r =
      run(pebble, storage, "revoke", {"--reason", "keyCompromise", "revoked.example.test"}, false);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out == "revoked\trevoked.example.test\t" + serial + "\n");
  const json status = cert_status(pebble, serial);
  CHECK(status["Status"] == "Revoked");
  CHECK(status["Reason"] == 1);
  CHECK_FALSE(fs::exists(site));

  r = run(pebble, storage, "revoke", {"revoked.example.test"}, false);
  CHECK(r.exit_code == 1);
  CHECK(r.err == "acmetool: revoke: no certificate for revoked.example.test in " +
                     storage.path().string() + "\n");
}

TEST_CASE("revoke --cert --key revokes a certificate obtained under another storage, once",
          "[acme][pebble][revoke]") {
  PebbleServer& pebble = PebbleServer::shared();
  TempDir obtained, out, empty;
  REQUIRE(run(pebble, obtained, "obtain", {"--out", out.path().string(), "elsewhere.example.test"})
              .exit_code == 0);
  const std::string crt = (out.path() / "elsewhere.example.test.crt").string();
  const std::string key = (out.path() / "elsewhere.example.test.key").string();
  const std::string serial = serial_of(crt);

  // Without --key, `empty` has no account to sign with.
  CommandResult r = run(pebble, empty, "revoke", {"--cert", crt});
  CHECK(r.exit_code == 1);
  CHECK(one_line(r.err));
  CHECK(r.err.find("no account stored for the default account") != std::string::npos);
  CHECK(cert_status(pebble, serial)["Status"] == "Valid");

  r = run(pebble, empty, "revoke", {"--cert", crt, "--key", key, "--reason", "superseded"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out == "revoked\t" + crt + "\t" + serial + "\n");
  const json status = cert_status(pebble, serial);
  CHECK(status["Status"] == "Revoked");
  CHECK(status["Reason"] == 4);

  r = run(pebble, empty, "revoke", {"-q", "--cert", crt, "--key", key});
  CHECK(r.exit_code == 1);
  CHECK(one_line(r.err));
  CHECK(
      r.err.starts_with("acmetool: revoke " + crt + ": urn:ietf:params:acme:error:alreadyRevoked"));
}

TEST_CASE("revoke NAME of a certificate the CA already revoked fails and removes it from storage",
          "[acme][pebble][revoke]") {
  PebbleServer& pebble = PebbleServer::shared();
  TempDir storage;
  REQUIRE(run(pebble, storage, "obtain", {"twice.example.test"}).exit_code == 0);
  const fs::path site = site_dir(pebble, storage, "twice.example.test");
  REQUIRE(run(pebble, storage, "revoke",
              {"--cert", (site / "twice.example.test.crt").string(), "--key",
               (site / "twice.example.test.key").string()})
              .exit_code == 0);

  const CommandResult r = run(pebble, storage, "revoke", {"-q", "twice.example.test"});
  CHECK(r.exit_code == 1);
  CHECK(one_line(r.err));
  CHECK(r.err.find("alreadyRevoked") != std::string::npos);
  CHECK(r.err.ends_with("(removed it from storage)\n"));
  CHECK_FALSE(fs::exists(site));
}

TEST_CASE("revoke NAME,NAME signs with the certificate's key when its account is not stored",
          "[acme][pebble][revoke]") {
  PebbleServer& pebble = PebbleServer::shared();
  TempDir storage;
  REQUIRE(
      run(pebble, storage, "obtain", {"orphan.example.test,www.orphan.example.test"}).exit_code ==
      0);
  const std::string site = "orphan.example.testwww.orphan.example.test";
  const std::string serial = serial_of(site_dir(pebble, storage, site) / (site + ".crt"));
  fs::remove_all(storage.path() / "acme");

  // The names in any order and case, as for obtain.
  const CommandResult r =
      run(pebble, storage, "revoke", {"WWW.orphan.example.test,orphan.example.test"});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "revoked\twww.orphan.example.test,orphan.example.test\t" + serial + "\n");
  CHECK(r.err.find("signing with the certificate's key") != std::string::npos);
  CHECK(cert_status(pebble, serial)["Status"] == "Revoked");
}

TEST_CASE("revoke refuses bad flag combinations as usage errors", "[revoke]") {
  TempDir storage;
  const std::string s = storage.path().string();
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--storage", s, "revoke"},
           {"--storage", s, "revoke", "a.example", "--cert", "a.pem"},
           {"--storage", s, "revoke", "a.example", "--key", "a.key"},
           {"--storage", s, "revoke", "--cert", "a.pem", "--ca", "http://127.0.0.1:1/dir"},
           {"--storage", s, "revoke", "bad_name.example"},
           {"--storage", s, "revoke", "a.example", "--reason", "aACompromise"}}) {
    const CommandResult r = run_acmetool(args);
    INFO(args.back() << ": " << r.err);
    CHECK(r.exit_code == 2);
    CHECK(one_line(r.err));
  }
}

TEST_CASE("account register then show report the account as the CA has it",
          "[acme][pebble][account]") {
  PebbleServer& pebble = PebbleServer::shared();
  TempDir storage;
  CommandResult r = account(pebble, storage, {"register", "--email", "reg@example.test"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const std::string url = field(r.out, "url");
  CHECK(url.starts_with(pebble.directory_url().substr(0, pebble.directory_url().rfind('/')) +
                        "/my-account/"));
  const fs::path key = account_key(pebble, storage, "reg@example.test");
  CHECK(r.out == "url\t" + url + "\nstatus\tvalid\ncontact\tmailto:reg@example.test\nkey\t" +
                     key.string() + "\nkey_type\tp256\n");
  const std::string key_pem = read_text(key);

  // Registering again finds the same account and keeps the key.
  r = account(pebble, storage, {"register", "--email", "reg@example.test"});
  CHECK(r.exit_code == 0);
  CHECK(field(r.out, "url") == url);
  CHECK(read_text(key) == key_pem);

  r = run_acmetool({"--storage", storage.path().string(), "--json", "account", "show", "--ca",
                    pebble.directory_url(), "--ca-root", pebble.listener_ca_file().string(),
                    "--email", "reg@example.test"});
  REQUIRE(r.exit_code == 0);
  const json shown = json::parse(r.out);
  CHECK(shown["url"] == url);
  CHECK(shown["status"] == "valid");
  CHECK(shown["contact"] == json::array({"mailto:reg@example.test"}));
  CHECK(shown["key"] == key.string());

  // Another email is another account.
  r = account(pebble, storage, {"register", "--email", "other@example.test"});
  CHECK(r.exit_code == 0);
  CHECK(field(r.out, "url") != url);
}

TEST_CASE("account update replaces the contacts at the CA and show reflects it",
          "[acme][pebble][account]") {
  PebbleServer& pebble = PebbleServer::shared();
  TempDir storage;
  REQUIRE(account(pebble, storage, {"register", "--email", "upd@example.test"}).exit_code == 0);
  CommandResult r = account(pebble, storage,
                            {"--email", "upd@example.test", "update", "--contact",
                             "new@example.test", "--contact", "mailto:ops@example.test"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("contact\tmailto:new@example.test\ncontact\tmailto:ops@example.test\n") !=
        std::string::npos);

  r = account(pebble, storage, {"show", "--email", "upd@example.test"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("contact\tmailto:new@example.test\ncontact\tmailto:ops@example.test\n") !=
        std::string::npos);
  CHECK(field(r.out, "key") ==
        account_key(pebble, storage, "upd@example.test").string());  // same folder
  const json stored = json::parse(read_text(storage.path() / "acme" / issuer_of(pebble) / "users" /
                                            "upd@example.test" / "upd.json"));
  CHECK(stored["contact"] == json::array({"mailto:new@example.test", "mailto:ops@example.test"}));

  r = account(pebble, storage, {"update", "--email", "upd@example.test"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("--contact") != std::string::npos);
}

TEST_CASE("account rollover replaces the key at the CA and in storage, and obtain goes on with it",
          "[acme][pebble][account]") {
  PebbleServer& pebble = PebbleServer::shared();
  TempDir storage;
  REQUIRE(
      run(pebble, storage, "obtain", {"--email", "roll@example.test", "before.roll.example.test"})
          .exit_code == 0);
  const fs::path key = account_key(pebble, storage, "roll@example.test");
  const std::string old_key = read_text(key);
  const std::string url =
      field(account(pebble, storage, {"show", "--email", "roll@example.test"}).out, "url");
  REQUIRE_FALSE(url.empty());

  // pebble 2.4 takes no EdDSA account keys: a refused key change leaves the stored key as it was.
  CommandResult r = account(
      pebble, storage, {"-q", "rollover", "--email", "roll@example.test", "--key-type", "ed25519"});
  CHECK(r.exit_code == 1);
  CHECK(r.err.starts_with("acmetool: account rollover: urn:ietf:params:acme:error:badPublicKey"));
  CHECK(read_text(key) == old_key);

  r = account(pebble, storage, {"rollover", "--email", "roll@example.test", "--key-type", "p384"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(field(r.out, "url") == url);
  CHECK(field(r.out, "key_type") == "p384");
  CHECK(read_text(key) != old_key);
  CHECK(
      run_command({"openssl", "pkey", "-in", key.string(), "-noout", "-text"}).out.find("P-384") !=
      std::string::npos);

  // The CA knows the account by its new key: no new registration, a new certificate.
  r = run(pebble, storage, "obtain", {"--email", "roll@example.test", "after.roll.example.test"});
  CHECK(r.exit_code == 0);
  CHECK(r.err.find("registering") == std::string::npos);
  const json meta = json::parse(read_text(site_dir(pebble, storage, "after.roll.example.test") /
                                          "after.roll.example.test.json"));
  CHECK(meta["issuer_data"]["account"] == url);
  CHECK(field(account(pebble, storage, {"show", "--email", "roll@example.test"}).out, "status") ==
        "valid");
}

TEST_CASE("account deactivate is final: show says so and obtain fails with a clear message",
          "[acme][pebble][account]") {
  PebbleServer& pebble = PebbleServer::shared();
  TempDir storage;
  CommandResult r = account(pebble, storage, {"register", "--email", "gone@example.test"});
  REQUIRE(r.exit_code == 0);
  const std::string url = field(r.out, "url");

  r = account(pebble, storage, {"deactivate", "--email", "gone@example.test"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(field(r.out, "status") == "deactivated");
  r = account(pebble, storage, {"show", "--email", "gone@example.test"});
  CHECK(r.exit_code == 0);
  CHECK(field(r.out, "url") == url);
  CHECK(field(r.out, "status") == "deactivated");

  r = run(pebble, storage, "obtain", {"--email", "gone@example.test", "gone.example.test"});
  CHECK(r.exit_code == 1);
  CHECK(r.out.starts_with("failed\tgone.example.test\t"));
  CHECK(r.out.find("the stored account " + url + " is deactivated") != std::string::npos);

  r = account(pebble, storage, {"deactivate", "--email", "gone@example.test"});
  CHECK(r.exit_code == 1);
  CHECK(r.err == "acmetool: account: the account " + url + " is deactivated\n");

  // register replaces it with a new account under a new key.
  r = account(pebble, storage, {"register", "--email", "gone@example.test"});
  CHECK(r.exit_code == 0);
  CHECK(field(r.out, "status") == "valid");
  CHECK(field(r.out, "url") != url);
}

TEST_CASE("account commands fail with one line when no account is stored", "[account]") {
  TempDir storage;
  for (const char* action : {"show", "rollover", "deactivate"}) {
    const CommandResult r =
        run_acmetool({"--storage", storage.path().string(), "account", action, "--ca",
                      "https://127.0.0.1:1/dir", "--email", "none@example.test"});
    INFO(action);
    CHECK(r.exit_code == 1);
    CHECK(r.err ==
          "acmetool: account: no account stored for none@example.test at https://127.0.0.1:1/dir "
          "in " +
              storage.path().string() + "; see 'acmetool account register'\n");
  }
  const CommandResult r = run_acmetool(
      {"--storage", storage.path().string(), "account", "show", "--ca", "http://127.0.0.1:1/dir"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("https://") != std::string::npos);
}
