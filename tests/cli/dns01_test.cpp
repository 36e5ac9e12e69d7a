// `acmetool obtain --dns` end to end (issue 6): every provider that can run on loopback (exec,
// httpreq, acme-dns, pdns) against pebble, with real BIND 9 or PowerDNS holding the records, and
// the faults a real zone has: a dead nameserver, a CNAME loop, a delegation only an override
// names. Certificates must verify against pebble's root and no record may be left behind.
#include <sys/wait.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bind9.h"
#include "dns01_helpers.h"
#include "pdns.h"
#include "pebble.h"
#include "process.h"
#include "run_acmetool.h"
#include "tiny_http_server.h"

namespace fs = std::filesystem;
using acmetool::test::Bind9Options;
using acmetool::test::Bind9Server;
using acmetool::test::CannedResponse;
using acmetool::test::ChildProcess;
using acmetool::test::CommandResult;
using acmetool::test::dns_lookup_flags;
using acmetool::test::fill_template;
using acmetool::test::free_port;
using acmetool::test::nsupdate;
using acmetool::test::PdnsServer;
using acmetool::test::PebbleOptions;
using acmetool::test::PebbleServer;
using acmetool::test::random_label;
using acmetool::test::read_text;
using acmetool::test::RecordedRequest;
using acmetool::test::records_left;
using acmetool::test::run_acmetool;
using acmetool::test::run_command;
using acmetool::test::ScopedRecords;
using acmetool::test::TempDir;
using acmetool::test::TinyHttpServer;
using acmetool::test::txt_records_containing;
using acmetool::test::TxtRecordLine;
using acmetool::test::zone_txt_records;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

// `acmetool --storage S obtain --ca PEBBLE ARGS...`: dns-01 only, since every case passes --dns.
CommandResult obtain(const PebbleServer& pebble, const TempDir& storage,
                     const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"--storage", storage.path().string(), "obtain"};
  argv.insert(argv.end(), {"--ca", pebble.directory_url(), "--ca-root",
                           pebble.listener_ca_file().string()});
  argv.insert(argv.end(), args.begin(), args.end());
  return run_acmetool(argv);
}

// The certificate path of an "obtained\tNAMES\tPATH\n" line, or "" for any other output.
fs::path obtained_path(const std::string& out) {
  if (!out.starts_with("obtained\t") || !out.ends_with("\n")) return {};
  const size_t tab = out.rfind('\t');
  return out.substr(tab + 1, out.size() - tab - 2);
}

// openssl verify of the leaf in `chain_file` (leaf, then intermediates) against pebble's root.
bool verifies(const PebbleServer& pebble, const fs::path& chain_file) {
  const CommandResult r = run_command({"openssl", "verify", "-CAfile", pebble.root_file().string(),
                                       "-untrusted", chain_file.string(), chain_file.string()});
  INFO(r.out << r.err);
  return r.exit_code == 0 && r.out == chain_file.string() + ": OK\n";
}

std::string san_of(const fs::path& chain_file) {
  const std::string crt = chain_file.string();
  return run_command({"openssl", "x509", "-in", crt, "-noout", "-ext", "subjectAltName"}).out;
}

// The lines of `text` that contain `needle`, in order.
std::vector<std::string> lines_with(const std::string& text, const std::string& needle) {
  std::vector<std::string> found;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.find(needle) != std::string::npos) found.push_back(line);
  }
  return found;
}

// pebble's VA asks the resolver in front of `bind`: it chases CNAMEs across the two zones.
PebbleOptions validating_through(const Bind9Server& bind) {
  PebbleOptions options;
  options.dns_server = bind.resolver();
  return options;
}

// acmetool's own lookups go to BIND's authoritative face, never to the resolver pebble's VA asks:
// an NXDOMAIN from acmetool's zone walk would sit in that resolver's negative cache when the VA
// asks, as it would not at a real CA. The NS records point at 127.0.0.1, checked on BIND's port.
std::vector<std::string> bind_lookup_flags(const Bind9Server& bind) {
  return dns_lookup_flags(bind.server(), bind.port());
}

std::vector<std::string> rfc2136_flags(const Bind9Server& bind) {
  std::vector<std::string> flags = {"--dns",     "rfc2136",
                                    "--dns-opt", "nameserver=" + bind.server(),
                                    "--dns-opt", "tsig_key=" + bind.tsig_name(),
                                    "--dns-opt", "tsig_secret=" + bind.tsig_secret(),
                                    "--dns-opt", "tsig_algorithm=" + bind.tsig_algorithm()};
  for (std::string& flag : bind_lookup_flags(bind)) flags.push_back(std::move(flag));
  return flags;
}

// An exec hook as lego's exec provider calls it, `HOOK present|cleanup FQDN VALUE`: logs its
// arguments as one line to `log` and applies the change to `bind` with nsupdate, in the zone the
// FQDN ends in.
fs::path write_nsupdate_hook(const TempDir& dir, const Bind9Server& bind, const fs::path& log) {
  constexpr char kHook[] = R"(#!/bin/sh
set -e
printf '%s %s %s\n' "$1" "$2" "$3" >> '@LOG@'
case "$2" in
  *.acme-delegate.test.) zone=acme-delegate.test ;;
  *.example.test.) zone=example.test ;;
  *) echo "no zone of ours holds $2" >&2; exit 1 ;;
esac
case "$1" in
  present) update="update add $2 1 TXT \"$3\"" ;;
  cleanup) update="update delete $2 TXT \"$3\"" ;;
  *) echo "unknown action $1" >&2; exit 1 ;;
esac
printf 'server 127.0.0.1 @PORT@\nzone %s\n%s\nsend\n' "$zone" "$update" | nsupdate -k '@KEY@'
)";
  const fs::path hook = dir.path() / "dns-hook";
  acmetool::test::write_executable(hook,
                                   fill_template(kHook, {{"LOG", log.string()},
                                                         {"PORT", std::to_string(bind.port())},
                                                         {"KEY", bind.tsig_key_file().string()}}));
  return hook;
}

}  // namespace

TEST_CASE(
    "obtain --dns exec gets a name and its wildcard through a hook script that updates BIND 9",
    "[acme][pebble][dns]") {
  Bind9Server& bind = Bind9Server::shared();
  PebbleServer pebble(validating_through(bind));
  TempDir storage, dir;
  const std::string label = random_label();
  const std::string name = "x-" + label + ".example.test";
  const fs::path log = dir.path() / "hook.log";
  std::vector<std::string> args = {"--dns", "exec", "--dns-opt",
                                   "path=" + write_nsupdate_hook(dir, bind, log).string()};
  for (std::string& flag : bind_lookup_flags(bind)) args.push_back(std::move(flag));
  args.push_back(name + ",*." + name);

  const CommandResult r = obtain(pebble, storage, args);
  INFO(r.out << r.err << read_text(log) << bind.logs());
  REQUIRE(r.exit_code == 0);
  const fs::path crt = obtained_path(r.out);
  CHECK(r.out == "obtained\t" + name + ",*." + name + "\t" + crt.string() + "\n");
  CHECK(verifies(pebble, crt));
  CHECK(san_of(crt).find("DNS:" + name + ", DNS:*." + name) != std::string::npos);
  // The name and its wildcard share one TXT name with two values: two presents, two cleanups.
  const std::string fqdn = "_acme-challenge." + name + ".";
  const std::string calls = read_text(log);
  CHECK(lines_with(calls, "present " + fqdn + " ").size() == 2);
  CHECK(lines_with(calls, "cleanup " + fqdn + " ").size() == 2);
  CHECK(lines_with(calls, " ").size() == 4);
  CHECK(records_left(bind, label) == "");
}

TEST_CASE("obtain --dns exec hands the hook the CNAME target of a delegated _acme-challenge name",
          "[acme][pebble][dns]") {
  Bind9Server& bind = Bind9Server::shared();
  PebbleServer pebble(validating_through(bind));
  TempDir storage, dir;
  const fs::path log = dir.path() / "hook.log";
  std::vector<std::string> args = {"--dns", "exec", "--dns-opt",
                                   "path=" + write_nsupdate_hook(dir, bind, log).string()};
  for (std::string& flag : bind_lookup_flags(bind)) args.push_back(std::move(flag));
  args.push_back("delegated-name.example.test");

  const CommandResult r = obtain(pebble, storage, args);
  INFO(r.out << r.err << read_text(log) << bind.logs());
  REQUIRE(r.exit_code == 0);
  CHECK(verifies(pebble, obtained_path(r.out)));
  const std::vector<std::string> calls = lines_with(read_text(log), " ");
  REQUIRE(calls.size() == 2);
  CHECK(calls[0].starts_with("present _acme-challenge.delegated-name.acme-delegate.test. "));
  CHECK(calls[1].starts_with("cleanup _acme-challenge.delegated-name.acme-delegate.test. "));
  // The same value comes back for the cleanup.
  CHECK(calls[0].substr(calls[0].rfind(' ')) == calls[1].substr(calls[1].rfind(' ')));
  CHECK(records_left(bind, "delegated-name") == "");
}

namespace {

// An httpreq endpoint of lego's default mode (POST {"fqdn","value"} to /present and /cleanup)
// that applies the change to `bind`.
TinyHttpServer::Handler httpreq_endpoint(const Bind9Server& bind) {
  return [&bind](const RecordedRequest& request) -> CannedResponse {
    const json body = json::parse(request.body);
    const std::string fqdn = body.at("fqdn"), value = body.at("value");
    if (request.path() == "/hook/present") {
      nsupdate(bind, "update add " + fqdn + " 1 TXT \"" + value + "\"\n");
    } else if (request.path() == "/hook/cleanup") {
      nsupdate(bind, "update delete " + fqdn + " TXT \"" + value + "\"\n");
    } else {
      return {404, R"({"error": "no such endpoint"})"};
    }
    return {200, "{}"};
  };
}

}  // namespace

TEST_CASE(
    "obtain --dns httpreq posts to an endpoint with basic auth and gets a wildcard certificate",
    "[acme][pebble][dns]") {
  // Started on this thread first: the endpoint's thread calls nsupdate.
  Bind9Server& bind = Bind9Server::shared();
  PebbleServer pebble(validating_through(bind));
  TinyHttpServer endpoint(httpreq_endpoint(bind));
  TempDir storage;
  const std::string label = random_label();
  const std::string name = "h-" + label + ".example.test";
  std::vector<std::string> args = {"--dns",     "httpreq",
                                   "--dns-opt", "endpoint=" + endpoint.url() + "/hook",
                                   "--dns-opt", "username=acme-hook",
                                   "--dns-opt", "password=pa:ss word"};
  for (std::string& flag : bind_lookup_flags(bind)) args.push_back(std::move(flag));
  args.push_back("*." + name + "," + name);

  const CommandResult r = obtain(pebble, storage, args);
  INFO(r.out << r.err << bind.logs());
  REQUIRE(r.exit_code == 0);
  const fs::path crt = obtained_path(r.out);
  CHECK(verifies(pebble, crt));
  CHECK(san_of(crt).find("DNS:*." + name) != std::string::npos);
  CHECK(san_of(crt).find("DNS:" + name) != std::string::npos);

  const std::vector<RecordedRequest> requests = endpoint.requests();
  REQUIRE(requests.size() == 4);
  int presents = 0, cleanups = 0;
  for (const RecordedRequest& request : requests) {
    CHECK(request.method == "POST");
    // base64 of "acme-hook:pa:ss word".
    CHECK(request.header("authorization") == "Basic YWNtZS1ob29rOnBhOnNzIHdvcmQ=");
    CHECK(json::parse(request.body).at("fqdn") == "_acme-challenge." + name + ".");
    presents += request.target == "/hook/present";
    cleanups += request.target == "/hook/cleanup";
  }
  CHECK(presents == 2);
  CHECK(cleanups == 2);
  CHECK(records_left(bind, label) == "");
}

namespace {

// acme-dns's API in front of `bind`: /update, with the account's X-Api-User and X-Api-Key, keeps
// the two latest values of the subdomain's TXT under acme-delegate.test, as acme-dns does. It
// cannot delete.
class FakeAcmeDns {
 public:
  FakeAcmeDns(const Bind9Server& bind, std::string subdomain)
      : bind_(bind), subdomain_(std::move(subdomain)) {}

  CannedResponse operator()(const RecordedRequest& request) {
    if (request.path() != "/update") return {404, R"({"error": "not found"})"};
    if (request.header("x-api-user") != kUser || request.header("x-api-key") != kKey) {
      return {401, R"({"error": "forbidden"})"};
    }
    const json body = json::parse(request.body);
    if (body.at("subdomain") != subdomain_) return {400, R"({"error": "bad_subdomain"})"};
    std::lock_guard lock(mutex_);
    latest_.push_back(body.at("txt").get<std::string>());
    if (latest_.size() > 2) latest_.pop_front();
    std::string commands = "update delete " + fulldomain() + ". TXT\n";
    for (const std::string& value : latest_) {
      commands += "update add " + fulldomain() + ". 1 TXT \"" + value + "\"\n";
    }
    nsupdate(bind_, commands);
    return {200, json{{"txt", body.at("txt")}}.dump()};
  }

  std::string fulldomain() const { return subdomain_ + ".acme-delegate.test"; }
  static constexpr const char* kUser = "4bd1f3c9-acme-dns-user";
  static constexpr const char* kKey = "htB9mR5DTBV1DnoDvXs0rpGaKGL3rTS4JIeVxHhM";

 private:
  const Bind9Server& bind_;
  const std::string subdomain_;
  std::mutex mutex_;
  std::deque<std::string> latest_;
};

}  // namespace

TEST_CASE("obtain --dns acme-dns updates the subdomain the _acme-challenge CNAME points at",
          "[acme][pebble][dns]") {
  // Started on this thread first: the endpoint's thread calls nsupdate.
  Bind9Server& bind = Bind9Server::shared();
  PebbleServer pebble(validating_through(bind));
  const std::string label = random_label();
  const std::string name = "a-" + label + ".example.test";
  FakeAcmeDns fake(bind, "d-" + label);
  TinyHttpServer server(std::ref(fake));
  // The CNAME the acme-dns user creates once, by hand; the TXT the fake wrote goes with it.
  const ScopedRecords cname(
      bind, "update add _acme-challenge." + name + ". 60 CNAME " + fake.fulldomain() + ".\n",
      "update delete _acme-challenge." + name + ".\nupdate delete " + fake.fulldomain() + ".\n");
  TempDir storage;
  std::vector<std::string> args = {"--dns",     "acme-dns",
                                   "--dns-opt", "api_base=" + server.url(),
                                   "--dns-opt", std::string("username=") + FakeAcmeDns::kUser,
                                   "--dns-opt", std::string("password=") + FakeAcmeDns::kKey,
                                   "--dns-opt", "subdomain=d-" + label};
  for (std::string& flag : bind_lookup_flags(bind)) args.push_back(std::move(flag));
  args.push_back(name);

  const CommandResult r = obtain(pebble, storage, args);
  INFO(r.out << r.err << bind.logs());
  REQUIRE(r.exit_code == 0);
  CHECK(verifies(pebble, obtained_path(r.out)));
  const std::vector<RecordedRequest> requests = server.requests();
  REQUIRE(requests.size() == 1);  // one name, one update; cleanup sends nothing
  CHECK(json::parse(requests[0].body).at("subdomain") == "d-" + label);
  // acme-dns keeps its latest value, at the subdomain only: no _acme-challenge TXT anywhere.
  std::vector<TxtRecordLine> kept;
  for (TxtRecordLine& record : zone_txt_records(bind.port(), "acme-delegate.test")) {
    if (record.owner.find(label) != std::string::npos) kept.push_back(std::move(record));
  }
  REQUIRE(kept.size() == 1);
  CHECK(kept[0].owner == fake.fulldomain() + ".");
  const std::string value = json::parse(requests[0].body).at("txt");
  CHECK(kept[0].line.ends_with("\"" + value + "\""));
  CHECK(txt_records_containing(bind.port(), "example.test", label) == "");
  CHECK(records_left(bind, "") == "");
}

TEST_CASE("obtain --dns pdns gets a wildcard certificate through PowerDNS's API",
          "[acme][pebble][dns]") {
  PdnsServer& pdns = PdnsServer::shared();
  const std::string pdns_dns = "127.0.0.1:" + std::to_string(pdns.dns_port());
  // pdns is authoritative and answers the VA itself: no CNAME to chase here.
  PebbleOptions options;
  options.dns_server = pdns_dns;
  PebbleServer pebble(options);
  TempDir storage;
  const std::string label = random_label();
  const std::string name = "w-" + label + ".pdns.test";
  std::vector<std::string> args = {"--dns",     "pdns",
                                   "--dns-opt", "api_url=" + pdns.api_url(),
                                   "--dns-opt", "api_key=" + pdns.api_key()};
  for (std::string& flag : dns_lookup_flags(pdns_dns, pdns.dns_port())) {
    args.push_back(std::move(flag));
  }
  args.push_back(name + ",*." + name);

  const CommandResult r = obtain(pebble, storage, args);
  INFO(r.out << r.err << pdns.logs());
  REQUIRE(r.exit_code == 0);
  const fs::path crt = obtained_path(r.out);
  CHECK(verifies(pebble, crt));
  CHECK(san_of(crt).find("DNS:" + name + ", DNS:*." + name) != std::string::npos);
  CHECK(r.err.find("adding TXT _acme-challenge." + name + ". in zone pdns.test. via pdns") !=
        std::string::npos);
  CHECK(txt_records_containing(pdns.dns_port(), "pdns.test", "_acme-challenge") == "");
  CHECK(txt_records_containing(pdns.dns_port(), "pdns.test", label) == "");
}

// ---- Faults -------------------------------------------------------------------------------------

TEST_CASE(
    "obtain --dns names the nameserver that never serves the record and takes the record back",
    "[acme][pebble][dns]") {
  // A server of this test's own: the second NS would break every other test's propagation check.
  Bind9Server bind{Bind9Options{}};
  // ns2 has an address where nothing listens (named listens on 127.0.0.1 only).
  nsupdate(bind, "update add ns2.example.test. 60 A 127.0.0.2\n"
                 "update add example.test. 60 NS ns2.example.test.\n");
  PebbleServer pebble(validating_through(bind));
  TempDir storage;
  const std::string label = random_label();
  const std::string name = "slow-" + label + ".example.test";
  std::vector<std::string> args = rfc2136_flags(bind);
  args.insert(args.end(), {"--dns-propagation-timeout", "3s", name});

  const auto started = std::chrono::steady_clock::now();
  const CommandResult r = obtain(pebble, storage, args);
  const auto took = std::chrono::steady_clock::now() - started;
  INFO(r.out << r.err << bind.logs());
  CHECK(r.exit_code == 1);
  REQUIRE(r.out.starts_with("failed\t" + name + "\t"));
  CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 1);  // one line
  CHECK(r.out.find("ns2.example.test. (127.0.0.2:" + std::to_string(bind.port()) + ")") !=
        std::string::npos);
  CHECK(r.out.find("not serve it yet after 3 s") != std::string::npos);
  CHECK(r.out.find("ns1.example.test") == std::string::npos);  // the live nameserver served it
  // The whole budget was waited for, and no longer: each question to the dead address is cut to
  // the time left (its own timeout is 5 s). The rest is the account, the order and the cleanup.
  CHECK(took >= 3s);
  CHECK(took < 4800ms);
  CHECK(r.err.find("removing TXT _acme-challenge." + name + ". from zone example.test.") !=
        std::string::npos);
  CHECK(records_left(bind, label) == "");
}

TEST_CASE("obtain --dns refuses a CNAME loop at _acme-challenge with a one-line error",
          "[acme][pebble][dns]") {
  Bind9Server& bind = Bind9Server::shared();
  PebbleServer pebble(validating_through(bind));
  const std::string label = random_label();
  const std::string name = "loop-" + label + ".example.test";
  const std::string challenge = "_acme-challenge." + name + ".",
                    hop = "a-" + label + ".example.test.";
  const ScopedRecords loop(bind,
                           "update add " + challenge + " 60 CNAME " + hop + "\nupdate add " + hop +
                               " 60 CNAME " + challenge + "\n",
                           "update delete " + challenge + "\nupdate delete " + hop + "\n");
  TempDir storage;
  std::vector<std::string> args = rfc2136_flags(bind);
  args.push_back(name);

  const CommandResult r = obtain(pebble, storage, args);
  INFO(r.out << r.err << bind.logs());
  CHECK(r.exit_code == 1);
  CHECK(r.out.starts_with("failed\t" + name + "\t"));
  CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 1);
  CHECK(r.out.find("CNAME loop: " + challenge + " -> " + hop + " -> " + challenge + "\n") !=
        std::string::npos);
  // No record was added anywhere, so none was left.
  CHECK(bind.logs().find("adding an RR at '_acme-challenge." + name + "' TXT") ==
        std::string::npos);
  CHECK(records_left(bind, label) == "");
}

TEST_CASE(
    "obtain --dns-override-domain puts the record at the named target without following CNAMEs",
    "[acme][pebble][dns]") {
  Bind9Server& bind = Bind9Server::shared();
  PebbleServer pebble(validating_through(bind));
  const std::string label = random_label();
  const std::string name = "o-" + label + ".example.test",
                    target = "target-" + label + ".acme-delegate.test";
  // pebble's VA asks _acme-challenge.NAME, so the override only works with this CNAME in place.
  const ScopedRecords cname(bind,
                            "update add _acme-challenge." + name + ". 60 CNAME " + target + ".\n",
                            "update delete _acme-challenge." + name + ".\n");
  TempDir storage;
  std::vector<std::string> args = rfc2136_flags(bind);
  args.insert(args.end(), {"--dns-override-domain", target, name});

  const CommandResult r = obtain(pebble, storage, args);
  INFO(r.out << r.err << bind.logs());
  REQUIRE(r.exit_code == 0);
  CHECK(verifies(pebble, obtained_path(r.out)));
  CHECK(bind.logs().find("adding an RR at '" + target + "' TXT") != std::string::npos);
  CHECK(r.err.find("adding TXT " + target + ". in zone acme-delegate.test. via rfc2136") !=
        std::string::npos);
  // The target came from the flag: acmetool never looked the CNAME up.
  CHECK(r.err.find("is a CNAME for") == std::string::npos);
  CHECK(bind.logs().find("_acme-challenge." + name + " IN CNAME") == std::string::npos);
  CHECK(records_left(bind, label) == "");
}

TEST_CASE("obtain --dns rfc2136 gets a wildcard certificate through BIND 9 and leaves no record behind",
          "[acme][pebble][dns]") {
  Bind9Server& bind = Bind9Server::shared();
  PebbleServer pebble(validating_through(bind));
  TempDir storage;
  std::vector<std::string> args = rfc2136_flags(bind);
  args.push_back("example.test,*.example.test");
  const CommandResult r = obtain(pebble, storage, args);
  INFO(r.out << r.err << bind.logs());
  REQUIRE(r.exit_code == 0);
  const fs::path crt = obtained_path(r.out);
  CHECK(verifies(pebble, crt));
  const std::string san = san_of(crt);
  CHECK(san.find("DNS:example.test") != std::string::npos);
  CHECK(san.find("DNS:*.example.test") != std::string::npos);
  CHECK(txt_records_containing(bind.port(), "example.test", "_acme-challenge").empty());
  // The provider is recorded (not its secret), for renew.
  const std::string meta = read_text(fs::path(crt).replace_extension(".json"));
  CHECK(meta.find("\"dns_provider\": \"rfc2136\"") != std::string::npos);
  CHECK(meta.find(bind.tsig_secret()) == std::string::npos);
}

TEST_CASE("obtain --dns follows the _acme-challenge CNAME into the delegated zone", "[acme][pebble][dns]") {
  Bind9Server& bind = Bind9Server::shared();
  PebbleServer pebble(validating_through(bind));
  TempDir storage;
  std::vector<std::string> args = rfc2136_flags(bind);
  args.push_back("delegated-name.example.test");
  const CommandResult r = obtain(pebble, storage, args);
  INFO(r.out << r.err << bind.logs());
  REQUIRE(r.exit_code == 0);
  CHECK(verifies(pebble, obtained_path(r.out)));
  // named logged the update in the delegate zone, and nothing is left in either zone.
  CHECK(bind.logs().find("_acme-challenge.delegated-name.acme-delegate.test") != std::string::npos);
  CHECK(txt_records_containing(bind.port(), "acme-delegate.test", "_acme-challenge").empty());
  CHECK(txt_records_containing(bind.port(), "example.test", "_acme-challenge").empty());
}

TEST_CASE("obtain --dns with a wrong TSIG secret fails with the server's refusal", "[acme][pebble][dns]") {
  Bind9Server& bind = Bind9Server::shared();
  PebbleServer pebble(validating_through(bind));
  TempDir storage;
  std::vector<std::string> args = rfc2136_flags(bind);
  for (std::string& arg : args) {
    if (arg.starts_with("tsig_secret=")) arg = "tsig_secret=d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZyE=";
  }
  args.push_back("wrong-key.example.test");
  const CommandResult r = obtain(pebble, storage, args);
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);
  CHECK(r.out.starts_with("failed\twrong-key.example.test\t"));
  CHECK(r.out.find("rfc2136") != std::string::npos);
}

TEST_CASE("obtain --dns refuses a bad provider or option before ordering", "[acme][dns]") {
  TempDir storage;
  CommandResult r = run_acmetool({"--storage", storage.path().string(), "obtain", "--dns", "rfc2316", "a.example.test"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("rfc2136") != std::string::npos);  // did you mean
  r = run_acmetool({"--storage", storage.path().string(), "obtain", "--dns", "rfc2136", "a.example.test"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("nameserver") != std::string::npos);
  r = run_acmetool({"--storage", storage.path().string(), "obtain", "--dns", "exec", "--dns-opt", "novalue",
                    "a.example.test"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("--dns-opt novalue: expected KEY=VALUE") != std::string::npos);
  r = run_acmetool({"--storage", storage.path().string(), "obtain", "--dns", "exec", "--dns-opt", "path=/bin/true",
                    "--dns-propagation-timeout", "soon", "a.example.test"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("--dns-propagation-timeout soon") != std::string::npos);
}

TEST_CASE("obtain interrupted by SIGINT while waiting for propagation takes its TXT record back", "[acme][pebble][dns]") {
  Bind9Server& bind = Bind9Server::shared();
  PebbleServer pebble(validating_through(bind));
  TempDir storage;
  std::vector<std::string> argv = {ACMETOOL_BINARY, "--storage", storage.path().string(), "obtain", "--ca",
                                   pebble.directory_url(), "--ca-root", pebble.listener_ca_file().string()};
  for (std::string& flag : rfc2136_flags(bind)) argv.push_back(flag);
  // Propagation is checked on a port where no nameserver answers: it waits until interrupted.
  const auto port = std::find(argv.begin(), argv.end(), "--dns-nameserver-port");
  *(port + 1) = std::to_string(free_port());
  argv.insert(argv.end(), {"--dns-propagation-timeout", "60s", "interrupted.example.test"});
  const fs::path log = storage.path() / "obtain.log";
  ChildProcess child = ChildProcess::start(argv, log);

  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (txt_records_containing(bind.port(), "example.test", "_acme-challenge").empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
  }
  INFO(read_text(log));
  REQUIRE_FALSE(txt_records_containing(bind.port(), "example.test", "_acme-challenge").empty());
  child.kill(SIGINT);
  const std::optional<int> status = child.wait(10s);
  REQUIRE(status);
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 130);
  CHECK(read_text(log).find("interrupted") != std::string::npos);
  CHECK(txt_records_containing(bind.port(), "example.test", "_acme-challenge").empty());
}
