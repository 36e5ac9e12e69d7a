// Smoke tests of the real-server fixtures: each proves one thing later integration tests rely on.
#include <curl/curl.h>
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "bind9.h"
#include "http.h"
#include "pebble.h"
#include "process.h"

namespace fs = std::filesystem;
using namespace acmetool::test;

namespace {

// A value no earlier run or other test can have left behind.
std::string unique_value(const std::string& label) {
  static int counter = 0;
  return label + "-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

// `dig +short` output for one query at 127.0.0.1:port: one line per answer RR.
std::string dig_short(int port, const std::string& type, const std::string& name) {
  const CommandResult dig =
      run_command({"dig", "-b", "127.0.0.1", "@127.0.0.1", "-p", std::to_string(port), "+short",
                   "+time=2", "+tries=2", type, name},
                  "", {}, std::chrono::seconds(15));
  INFO(dig.err);
  REQUIRE(dig.exit_code == 0);
  return dig.out;
}

// Runs nsupdate against the authoritative server; `key_args` chooses the TSIG key (or none).
// Naming the server and the zone keeps nsupdate from asking the system resolver for the SOA, and
// `local` keeps its socket on 127.0.0.1.
CommandResult nsupdate(const Bind9Server& bind, const std::vector<std::string>& key_args,
                       const std::string& zone, const std::string& update) {
  std::vector<std::string> argv = {"nsupdate", "-t", "5"};
  argv.insert(argv.end(), key_args.begin(), key_args.end());
  const std::string script = "local 127.0.0.1\nserver 127.0.0.1 " + std::to_string(bind.port()) +
                             "\nzone " + zone + "\n" + update + "\nsend\n";
  return run_command(argv, script, {}, std::chrono::seconds(30));
}

std::vector<std::string> signed_with(const Bind9Server& bind) {
  return {"-y", bind.tsig_algorithm() + ":" + bind.tsig_name() + ":" + bind.tsig_secret()};
}

// The CURLcode a GET fails with, or CURLE_OK when it gets an answer.
int get_failure(const std::string& url, const fs::path& ca_file) {
  try {
    https_get(url, ca_file);
    return CURLE_OK;
  } catch (const HttpError& e) {
    UNSCOPED_INFO(e.what());  // shown with the next assertion
    return e.curl_code();
  }
}

bool process_gone(pid_t pid) { return ::kill(pid, 0) == -1 && errno == ESRCH; }

nlohmann::json fetch_directory(const PebbleServer& pebble) {
  const HttpResponse response = https_get(pebble.directory_url(), pebble.listener_ca_file());
  REQUIRE(response.status == 200);
  return nlohmann::json::parse(response.body);
}

}  // namespace

TEST_CASE("pebble serves its ACME directory over HTTPS signed by the generated listener CA",
          "[fixture][pebble]") {
  PebbleServer& pebble = PebbleServer::shared();
  INFO(pebble.logs());
  const std::string url = pebble.directory_url();
  REQUIRE(url.rfind("https://127.0.0.1:", 0) == 0);
  REQUIRE(url.substr(url.size() - 4) == "/dir");
  const std::string origin = url.substr(0, url.size() - 4) + "/";

  const nlohmann::json directory = fetch_directory(pebble);
  for (const char* field : {"newNonce", "newAccount", "newOrder"}) {
    CAPTURE(field, directory.dump());
    REQUIRE(directory.at(field).get<std::string>().rfind(origin, 0) == 0);
  }
  CHECK(directory.at("meta").value("externalAccountRequired", true) == false);
}

TEST_CASE("pebble's directory fetch fails certificate verification without the listener CA",
          "[fixture][pebble]") {
  PebbleServer& pebble = PebbleServer::shared();
  INFO(pebble.logs());
  CHECK(get_failure(pebble.directory_url(), {}) == CURLE_PEER_FAILED_VERIFICATION);
  // The issuing root is a real CA too, but not the one the listener's certificate chains to.
  CHECK(get_failure(pebble.directory_url(), pebble.root_file()) == CURLE_PEER_FAILED_VERIFICATION);
  CHECK(get_failure(pebble.directory_url(), pebble.listener_ca_file()) == CURLE_OK);
}

TEST_CASE("pebble's issuing root is a CA certificate other than the listener CA",
          "[fixture][pebble]") {
  PebbleServer& pebble = PebbleServer::shared();
  INFO(pebble.logs());
  const CommandResult text =
      run_command({"openssl", "x509", "-in", pebble.root_file(), "-noout", "-text"});
  REQUIRE(text.exit_code == 0);
  CHECK(text.out.find("CA:TRUE") != std::string::npos);
  CHECK(text.out.find("Pebble Root CA") != std::string::npos);

  const auto fingerprint = [](const fs::path& pem) {
    return run_command({"openssl", "x509", "-in", pem, "-noout", "-fingerprint", "-sha256"}).out;
  };
  REQUIRE(fingerprint(pebble.root_file()).rfind("sha256 Fingerprint=", 0) == 0);
  CHECK(fingerprint(pebble.root_file()) != fingerprint(pebble.listener_ca_file()));

  // The intermediate chains to the issuing root, not to the listener CA.
  const auto verify = [&](const fs::path& ca) {
    return run_command({"openssl", "verify", "-CAfile", ca, pebble.intermediate_file()}).exit_code;
  };
  CHECK(verify(pebble.root_file()) == 0);
  CHECK(verify(pebble.listener_ca_file()) != 0);
}

TEST_CASE("challtestsrv serves a TXT record set through its API until it is cleared",
          "[fixture][pebble]") {
  PebbleServer& pebble = PebbleServer::shared();
  const std::string host = "_acme-challenge.smoke.example.test.";
  const std::string value = unique_value("smoke");
  const int dns_port = pebble.challtestsrv_dns_port();
  REQUIRE(pebble.challtestsrv_dns() == "127.0.0.1:" + std::to_string(dns_port));
  REQUIRE(dig_short(dns_port, "TXT", host) == "");

  const HttpResponse set = http_post(pebble.challtestsrv_url() + "/set-txt",
                                     nlohmann::json{{"host", host}, {"value", value}}.dump());
  INFO(pebble.logs());
  REQUIRE(set.status == 200);
  CHECK(dig_short(dns_port, "TXT", host) == "\"" + value + "\"\n");

  const HttpResponse clear =
      http_post(pebble.challtestsrv_url() + "/clear-txt", nlohmann::json{{"host", host}}.dump());
  REQUIRE(clear.status == 200);
  CHECK(dig_short(dns_port, "TXT", host) == "");
}

TEST_CASE("pebble applies its options: EAB, DNS server, validity and environment",
          "[fixture][pebble]") {
  const std::string dns_server = "127.0.0.1:" + std::to_string(free_port());
  PebbleServer pebble({.dns_server = dns_server,
                       .require_eab = true,
                       .certificate_validity = std::chrono::hours(1),
                       .env = {{"PEBBLE_WFE_NONCEREJECT", "50"}}});
  INFO(pebble.logs());
  CHECK(fetch_directory(pebble).at("meta").at("externalAccountRequired") == true);
  CHECK(PebbleServer::eab_keys().count("kid-1") == 1);
  CHECK(pebble.dns_server() == dns_server);
  const std::string log = pebble.logs();
  CHECK(log.find("Using custom DNS resolver for ACME challenges: " + dns_server + "\n") !=
        std::string::npos);
  CHECK(log.find("Using certificate validity period of 3600 seconds") != std::string::npos);
  CHECK(log.find("Configured to reject 50% of good nonces") != std::string::npos);
  // The default that options.env did not override is still set.
  CHECK(log.find("Disabling random VA sleeps") != std::string::npos);
}

TEST_CASE("a destroyed pebble leaves no process and no temp dir behind", "[fixture][pebble]") {
  std::vector<pid_t> pids;
  fs::path work_dir;
  {
    PebbleServer pebble;
    INFO(pebble.logs());
    pids = pebble.pids();
    work_dir = pebble.work_dir();
    REQUIRE(pids.size() == 2);
    for (pid_t pid : pids) REQUIRE(::kill(pid, 0) == 0);
    REQUIRE(fs::exists(work_dir / "pebble-config.json"));
  }
  for (pid_t pid : pids) {
    CAPTURE(pid);
    CHECK(process_gone(pid));
  }
  CHECK_FALSE(fs::exists(work_dir));
}

TEST_CASE("bind9 applies a TSIG-signed dynamic update and serves the new TXT record",
          "[fixture][bind9]") {
  Bind9Server& bind = Bind9Server::shared();
  REQUIRE(bind.server() == "127.0.0.1:" + std::to_string(bind.port()));
  REQUIRE(bind.tsig_name() == "acmetool-test-key");
  const std::string name = "signed.example.test.";
  const std::string value = unique_value("signed");
  const CommandResult update = nsupdate(bind, signed_with(bind), "example.test",
                                        "update add " + name + " 1 IN TXT \"" + value + "\"");
  INFO(update.err << bind.logs());
  REQUIRE(update.exit_code == 0);
  CHECK(dig_short(bind.port(), "TXT", name) == "\"" + value + "\"\n");

  // The key file works too (nsupdate -k), replacing the record.
  const std::string replacement = unique_value("keyfile");
  const CommandResult by_file = nsupdate(
      bind, {"-k", bind.tsig_key_file()}, "example.test",
      "update delete " + name + " TXT\nupdate add " + name + " 1 IN TXT \"" + replacement + "\"");
  INFO(by_file.err);
  REQUIRE(by_file.exit_code == 0);
  CHECK(dig_short(bind.port(), "TXT", name) == "\"" + replacement + "\"\n");
}

TEST_CASE("bind9 refuses a dynamic update signed with the wrong secret", "[fixture][bind9]") {
  Bind9Server& bind = Bind9Server::shared();
  const std::string name = "wrong-secret.example.test.";
  const std::string wrong_secret = "c2VjcmV0IHRoYXQgaXMgbm90IHRoZSBzZXJ2ZXIncyBrZXk=";
  REQUIRE(wrong_secret != bind.tsig_secret());
  const CommandResult update = nsupdate(
      bind, {"-y", bind.tsig_algorithm() + ":" + bind.tsig_name() + ":" + wrong_secret},
      "example.test", "update add " + name + " 1 IN TXT \"" + unique_value("wrong") + "\"");
  INFO(update.err << bind.logs());
  CHECK(update.exit_code != 0);
  CHECK(update.err.find("BADSIG") != std::string::npos);
  CHECK(dig_short(bind.port(), "TXT", name) == "");
}

TEST_CASE("bind9 refuses an unsigned dynamic update", "[fixture][bind9]") {
  Bind9Server& bind = Bind9Server::shared();
  const std::string name = "unsigned.example.test.";
  const CommandResult update =
      nsupdate(bind, {}, "example.test",
               "update add " + name + " 1 IN TXT \"" + unique_value("unsigned") + "\"");
  INFO(update.err << bind.logs());
  CHECK(update.exit_code != 0);
  CHECK(update.err.find("REFUSED") != std::string::npos);
  CHECK(dig_short(bind.port(), "TXT", name) == "");
}

TEST_CASE("the bind9 resolver follows the _acme-challenge CNAME into acme-delegate.test",
          "[fixture][bind9]") {
  Bind9Server& bind = Bind9Server::shared();
  REQUIRE(bind.resolver() == "127.0.0.1:" + std::to_string(bind.resolver_port()));
  const std::string target = "_acme-challenge.delegated-name.acme-delegate.test.";
  const std::string alias = "_acme-challenge.delegated-name.example.test.";
  const std::string value = unique_value("delegated");
  const CommandResult update = nsupdate(bind, signed_with(bind), "acme-delegate.test",
                                        "update add " + target + " 1 IN TXT \"" + value + "\"");
  INFO(update.err << bind.logs());
  REQUIRE(update.exit_code == 0);

  CHECK(dig_short(bind.resolver_port(), "TXT", alias) == target + "\n\"" + value + "\"\n");
  // The authoritative server alone answers a cross-zone CNAME with the CNAME only: the resolver
  // is what makes this work for pebble's VA.
  CHECK(dig_short(bind.port(), "TXT", alias) == target + "\n");

  const CommandResult cleanup =
      nsupdate(bind, signed_with(bind), "acme-delegate.test", "update delete " + target + " TXT");
  CHECK(cleanup.exit_code == 0);
}

TEST_CASE("bind9 started without a resolver runs only the authoritative named",
          "[fixture][bind9]") {
  Bind9Server bind({.resolver = false});
  INFO(bind.logs());
  CHECK(bind.pids().size() == 1);
  CHECK(bind.resolver() == "");
  CHECK(bind.resolver_port() == 0);
  CHECK(dig_short(bind.port(), "TXT", "_fixture-ready.example.test.") ==
        "\"" + bind.work_dir().string() + "\"\n");
}

TEST_CASE("a destroyed bind9 leaves no process and no temp dir behind", "[fixture][bind9]") {
  std::vector<pid_t> pids;
  fs::path work_dir;
  {
    Bind9Server bind;
    INFO(bind.logs());
    pids = bind.pids();
    work_dir = bind.work_dir();
    REQUIRE(pids.size() == 2);
    for (pid_t pid : pids) REQUIRE(::kill(pid, 0) == 0);
    REQUIRE(fs::exists(work_dir / "named.conf"));
  }
  for (pid_t pid : pids) {
    CAPTURE(pid);
    CHECK(process_gone(pid));
  }
  CHECK_FALSE(fs::exists(work_dir));
}
