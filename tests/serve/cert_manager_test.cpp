// The certificate manager against a real pebble, with the fault proxy in front where pebble
// cannot misbehave by itself (a CA that is down, orders that fail) and where orders are counted.
#include <catch2/catch.hpp>

#include <atomic>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <csignal>
#include <sys/wait.h>

#include "acmetool/pki/ca.h"
#include "acmetool/pki/cert_storage.h"
#include "acmetool/pki/key.h"
#include "acmetool/pki/storage.h"
#include "acmetool/pki/storage_keys.h"
#include "acmetool/pki/x509.h"
#include "acmetool/serve/cert_manager.h"
#include "fault_proxy.h"
#include "fixture_util.h"
#include "ocsp_responder.h"
#include "pebble.h"
#include "process.h"
#include "tiny_http_server.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using acmetool::pki::FileStorage;
using acmetool::serve::CertificateAnswer;
using acmetool::serve::CertManager;
using acmetool::serve::CertManagerOptions;
using acmetool::serve::IssuerPolicy;
using acmetool::serve::ManagedName;
using acmetool::test::ChildProcess;
using acmetool::test::FaultProxy;
using acmetool::test::PebbleOptions;
using acmetool::test::PebbleServer;
using acmetool::test::RequestKind;
using acmetool::test::run_command;
using acmetool::test::TempDir;
using Outcome = CertificateAnswer::Outcome;

namespace {

// A pebble that marks every authorization valid without dialling anyone: for tests about
// orders and storage rather than challenges, where several processes could not all listen on
// pebble's one HTTP-01 port.
PebbleServer& always_valid_pebble() {
  static PebbleServer pebble([] {
    PebbleOptions options;
    options.env = {{"PEBBLE_VA_ALWAYS_VALID", "1"}};
    return options;
  }());
  return pebble;
}

// A clock the test moves: real time plus an offset.
struct TestClock {
  std::atomic<std::int64_t> offset_seconds{0};
  std::chrono::system_clock::time_point operator()() const {
    return std::chrono::system_clock::now() + std::chrono::seconds(offset_seconds.load());
  }
  void advance(std::chrono::seconds by) { offset_seconds += by.count(); }
};

CertManagerOptions options_for(const std::string& directory_url, const fs::path& ca_root, int http_port) {
  CertManagerOptions options;
  options.acme.directory_urls = {directory_url};
  options.acme.ca_root = ca_root;
  options.acme.challenges = {"http-01"};
  options.acme.listen_address = "127.0.0.1";
  options.acme.http_port = http_port;
  // The manager logs from its own threads, and Catch's macros are not thread-safe: stderr, one
  // line at a time (ctest shows it when a test fails).
  options.log = [](std::string_view line) {
    static std::mutex mu;
    std::lock_guard lock(mu);
    std::cerr << line << '\n';
  };
  return options;
}

std::vector<ManagedName> managed(const std::vector<std::string>& names) {
  std::vector<ManagedName> out;
  for (const auto& n : names) out.push_back({n});
  return out;
}

// Verifies a served certificate with `openssl verify` against `root`, for `name`.
bool verifies(const acmetool::serve::CachedCertificate& cert, const fs::path& root, const std::string& name,
              const TempDir& dir) {
  const fs::path chain = dir.path() / (name + "-chain.pem");
  std::ofstream(chain) << acmetool::pki::chain_to_pem(cert.chain);
  const auto r = run_command({"openssl", "verify", "-CAfile", root.string(), "-untrusted", chain.string(),
                              "-verify_hostname", name, chain.string()});
  return r.exit_code == 0;
}

std::string issuer_dir_of(const std::string& directory_url) {
  return acmetool::pki::keys::safe(acmetool::pki::keys::acme_issuer_key(directory_url));
}

}  // namespace

TEST_CASE("managed names are obtained in the background and served, and a restart serves storage without ordering",
          "[certmanager][pebble]") {
  PebbleServer& pebble = PebbleServer::shared();
  FaultProxy proxy(pebble.directory_url(), pebble.listener_ca_file());
  TempDir dir;
  FileStorage storage(dir.path() / "storage");
  const std::vector<std::string> names = {"a.cm.test", "b.cm.test", "c.cm.test"};
  {
    CertManager manager(storage, options_for(proxy.directory_url(), proxy.ca_file(), pebble.http01_port()));
    manager.manage(managed(names));  // returns before the orders finish
    REQUIRE(manager.wait_idle(60s));
    for (const auto& name : names) {
      const CertificateAnswer answer = manager.certificate_for(name);
      REQUIRE(answer.outcome == Outcome::Cached);
      CHECK(verifies(*answer.certificate, pebble.root_file(), name, dir));
    }
    CHECK(manager.stats().orders_succeeded == 3);
    // Not a managed name, and on-demand is off.
    CHECK(manager.certificate_for("other.cm.test").outcome == Outcome::Unknown);
  }
  const int orders = proxy.count(RequestKind::NewOrder, "POST");
  CHECK(orders == 3);
  CertManager again(storage, options_for(proxy.directory_url(), proxy.ca_file(), pebble.http01_port()));
  again.manage(managed(names));
  for (const auto& name : names) CHECK(again.certificate_for(name).outcome == Outcome::Cached);  // at once
  REQUIRE(again.wait_idle(30s));
  CHECK(proxy.count(RequestKind::NewOrder, "POST") == orders);
}

TEST_CASE("internal names get local-CA certificates that verify against the local root", "[certmanager]") {
  TempDir dir;
  FileStorage storage(dir.path() / "storage");
  CertManagerOptions options;
  CertManager manager(storage, options);
  manager.manage({{"app.internal", IssuerPolicy::Internal}, {"127.0.0.1", IssuerPolicy::Internal}});
  REQUIRE(manager.wait_idle(30s));
  const fs::path root = dir.path() / "storage" / "pki" / "authorities" / "local" / "root.crt";
  const CertificateAnswer answer = manager.certificate_for("app.internal");
  REQUIRE(answer.outcome == Outcome::Cached);
  CHECK(verifies(*answer.certificate, root, "app.internal", dir));
  CHECK(manager.certificate_for("127.0.0.1").outcome == Outcome::Cached);
}

TEST_CASE("two processes sharing storage order each of 20 names exactly once", "[certmanager][pebble][processes]") {
  PebbleServer& pebble = always_valid_pebble();
  FaultProxy proxy(pebble.directory_url(), pebble.listener_ca_file());
  TempDir dir;
  std::vector<std::string> argv = {CERTMANAGER_DRIVER, "--storage", (dir.path() / "storage").string(),
                                   "--ca", proxy.directory_url(), "--ca-root", proxy.ca_file().string(),
                                   "--wait", "150"};
  std::vector<std::string> names;
  for (int i = 0; i < 20; ++i) names.push_back("n" + std::to_string(i) + ".shared.test");
  argv.insert(argv.end(), names.begin(), names.end());
  // Both start at the same moment.
  // Each listens on a port of its own for HTTP-01 (pebble does not dial it here).
  const std::vector<int> ports = acmetool::test::distinct_free_ports(2);
  auto with_port = [&](int port) {
    std::vector<std::string> v = argv;
    v.insert(v.begin() + 1, {"--http-port", std::to_string(port)});
    return v;
  };
  ChildProcess first = ChildProcess::start(with_port(ports[0]), dir.path() / "first.log");
  ChildProcess second = ChildProcess::start(with_port(ports[1]), dir.path() / "second.log");
  const auto a = first.wait(180s), b = second.wait(180s);
  INFO(acmetool::test::log_tail("first", dir.path() / "first.log", 40));
  INFO(acmetool::test::log_tail("second", dir.path() / "second.log", 40));
  REQUIRE(a);
  REQUIRE(b);
  CHECK(WIFEXITED(*a));
  CHECK(WEXITSTATUS(*a) == 0);
  CHECK(WIFEXITED(*b));
  CHECK(WEXITSTATUS(*b) == 0);
  CHECK(proxy.count(RequestKind::NewOrder, "POST") == 20);
}

TEST_CASE("processes killed at random points leave storage loadable, and a restart finishes the job",
          "[certmanager][pebble][processes]") {
  PebbleServer& pebble = always_valid_pebble();
  TempDir dir;
  const fs::path root = dir.path() / "storage";
  std::vector<std::string> names;
  for (int i = 0; i < 50; ++i) names.push_back("k" + std::to_string(i) + ".kill.test");
  std::vector<std::string> argv = {CERTMANAGER_DRIVER, "--storage", root.string(), "--ca", pebble.directory_url(),
                                   "--ca-root", pebble.listener_ca_file().string(), "--wait", "150",
                                   "--http-port", std::to_string(pebble.http01_port())};
  argv.insert(argv.end(), names.begin(), names.end());
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> delay_ms(200, 2500);
  for (int round = 0; round < 8; ++round) {  // bounded: 8 kills
    ChildProcess child = ChildProcess::start(argv, dir.path() / "killed.log");
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    child.kill(SIGKILL);
    child.wait(10s);
  }
  ChildProcess last = ChildProcess::start(argv, dir.path() / "last.log");
  const auto status = last.wait(180s);
  INFO(acmetool::test::log_tail("last run", dir.path() / "last.log", 40));
  REQUIRE(status);
  CHECK(WEXITSTATUS(*status) == 0);

  // Every file in storage parses: nothing truncated.
  FileStorage storage(root);
  const auto locations = acmetool::pki::list_certificates(storage);
  CHECK(locations.size() == 50);
  for (const auto& location : locations) {
    INFO(location.name);
    auto stored = acmetool::pki::load_certificate(storage, location.issuer_key, location.name);
    REQUIRE(stored);
    CHECK_NOTHROW(acmetool::serve::make_cached_certificate(stored->chain_pem, stored->private_key_pem.str(), "",
                                                           acmetool::serve::CachedCertificate::Origin::Configured));
  }
  // No lock is still held: a killed holder's flock went with it, whatever lock files remain.
  for (const std::string& key : storage.list("locks", false)) {
    const std::string lock = key.substr(key.rfind('/') + 1);
    if (!lock.ends_with(".lock")) continue;
    const std::string name = lock.substr(0, lock.size() - 5);
    INFO(name);
    CHECK(storage.try_lock(name));
    storage.unlock(name);
  }
}

TEST_CASE("with the CA down, certificates keep being served and renewal backs off until the CA returns",
          "[certmanager][pebble]") {
  // A pebble of this test's own, stopped and started again (as a new pebble, which forgets every
  // account: the manager registers again). Behind the proxy its URL, and so the issuer's storage
  // key, stays the same. It validates without dialling, since the new pebble's HTTP-01 port differs.
  const auto pebble_options = [] {
    PebbleOptions o;
    o.env = {{"PEBBLE_VA_ALWAYS_VALID", "1"}};
    return o;
  };
  auto pebble = std::make_unique<PebbleServer>(pebble_options());
  FaultProxy proxy(pebble->directory_url(), pebble->listener_ca_file());
  TempDir dir;
  FileStorage storage(dir.path() / "storage");
  TestClock clock;
  CertManagerOptions options = options_for(proxy.directory_url(), proxy.ca_file(), acmetool::test::free_port());
  options.clock = [&clock] { return clock(); };
  CertManager manager(storage, options);
  const std::string name = "down.cm.test";
  manager.manage(managed({name}));
  REQUIRE(manager.wait_idle(60s));
  const auto first = manager.certificate_for(name).certificate;
  REQUIRE(first);

  pebble.reset();  // the CA stops (by PID)
  // Move to where a third of the certificate's life is left: renewal is due.
  const auto lifetime = first->not_after - first->not_before;
  clock.advance(std::chrono::duration_cast<std::chrono::seconds>(
      (first->not_before + lifetime * 7 / 10) - std::chrono::system_clock::now()));

  auto attempt = [&] {
    const int before = proxy.total();
    const auto report = manager.maintain();
    CHECK(report.items.size() == 1);
    return proxy.total() > before;
  };
  CHECK(attempt());              // tries, fails: backs off 1 min
  CHECK(manager.certificate_for(name).certificate == first);  // still served
  clock.advance(30s);
  CHECK_FALSE(attempt());        // inside the 1 min backoff: not even a request
  clock.advance(40s);
  CHECK(attempt());              // 70 s later: tries again, fails: 10 min
  clock.advance(5min);
  CHECK_FALSE(attempt());
  clock.advance(6min);
  CHECK(attempt());              // fails again: 100 min
  CHECK(manager.certificate_for(name).certificate == first);
  CHECK(manager.stats().orders_succeeded == 1);

  // The CA returns; the next attempt after the backoff renews.
  pebble = std::make_unique<PebbleServer>(pebble_options());
  proxy.set_upstream(pebble->directory_url(), pebble->listener_ca_file());
  clock.advance(60min);
  CHECK_FALSE(attempt());
  clock.advance(50min);
  const auto report = manager.maintain();
  CHECK(report.count(acmetool::serve::MaintenanceReport::Item::Status::Renewed) == 1);
  const auto renewed = manager.certificate_for(name).certificate;
  REQUIRE(renewed);
  CHECK(renewed != first);
  CHECK(renewed->not_after > first->not_after);
  CHECK(verifies(*renewed, pebble->root_file(), name, dir));
}

TEST_CASE("a damaged .crt, .key or .json is moved aside and re-obtained while the other names keep serving",
          "[certmanager][pebble]") {
  PebbleServer& pebble = PebbleServer::shared();
  TempDir dir;
  const fs::path root = dir.path() / "storage";
  FileStorage storage(root);
  const std::vector<std::string> names = {"crt.bad.test", "key.bad.test", "json.bad.test", "good.bad.test"};
  const auto options = options_for(pebble.directory_url(), pebble.listener_ca_file(), pebble.http01_port());
  {
    CertManager manager(storage, options);
    manager.manage(managed(names));
    REQUIRE(manager.wait_idle(60s));
  }
  const fs::path issuer = root / "certificates" / issuer_dir_of(pebble.directory_url());
  const std::string good_before = acmetool::test::read_text(issuer / "good.bad.test" / "good.bad.test.crt");
  acmetool::test::write_file(issuer / "crt.bad.test" / "crt.bad.test.crt", "-----BEGIN CERTIFICATE-----\ngarbage");
  acmetool::test::write_file(issuer / "key.bad.test" / "key.bad.test.key", "");
  acmetool::test::write_file(issuer / "json.bad.test" / "json.bad.test.json", "{\"sans\": [");

  CertManager manager(storage, options);
  manager.manage(managed(names));
  CHECK(manager.certificate_for("good.bad.test").outcome == Outcome::Cached);  // at once
  REQUIRE(manager.wait_idle(60s));
  for (const auto& name : names) {
    INFO(name);
    const CertificateAnswer answer = manager.certificate_for(name);
    REQUIRE(answer.outcome == Outcome::Cached);
    CHECK(verifies(*answer.certificate, pebble.root_file(), name, dir));
  }
  CHECK(acmetool::test::read_text(issuer / "good.bad.test" / "good.bad.test.crt") == good_before);
  for (const std::string bad : {"crt.bad.test", "key.bad.test", "json.bad.test"}) {
    int aside = 0;
    for (const auto& entry : fs::directory_iterator(issuer / bad)) {
      aside += entry.path().filename().string().find(".corrupt-") != std::string::npos;
    }
    INFO(bad);
    CHECK(aside >= 1);
  }
}

TEST_CASE("on-demand TLS: allowed names are obtained at the first handshake, denied ones never ordered",
          "[certmanager][pebble][ondemand]") {
  PebbleServer& pebble = PebbleServer::shared();
  FaultProxy proxy(pebble.directory_url(), pebble.listener_ca_file());
  const std::set<std::string> allowed = {"yes1.od.test", "yes2.od.test"};
  std::atomic<int> asks{0};
  acmetool::test::TinyHttpServer ask([&](const acmetool::test::RecordedRequest& request) {
    ++asks;
    const std::string target = request.target;
    const auto at = target.find("domain=");
    const std::string domain = at == std::string::npos ? "" : target.substr(at + 7, target.find('&', at) - at - 7);
    return acmetool::test::CannedResponse{allowed.count(domain) ? 200 : 403, "", "text/plain"};
  });
  TempDir dir;
  FileStorage storage(dir.path() / "storage");
  CertManagerOptions options = options_for(proxy.directory_url(), proxy.ca_file(), pebble.http01_port());
  options.on_demand.emplace();
  options.on_demand->ask_url = ask.url() + "/check";
  CertManager manager(storage, options);

  for (const auto& name : allowed) {
    const CertificateAnswer answer = manager.certificate_for(name, "192.0.2.1");
    REQUIRE(answer.outcome == Outcome::Obtained);
    CHECK(verifies(*answer.certificate, pebble.root_file(), name, dir));
    CHECK(manager.certificate_for(name).outcome == Outcome::Cached);
  }
  CHECK(proxy.count(RequestKind::NewOrder, "POST") == 2);

  // A storm of 1,000 distinct names the endpoint denies: no order, at most one ask each.
  const int asks_before = asks;
  for (int i = 0; i < 1000; ++i) {
    CHECK(manager.certificate_for("scan" + std::to_string(i) + ".od.test").outcome == Outcome::Denied);
  }
  CHECK(asks - asks_before <= 1000);
  CHECK(proxy.count(RequestKind::NewOrder, "POST") == 2);
  // Asked again at once, a denied name is rejected from memory.
  const int asks_after = asks;
  const auto again = manager.certificate_for("scan1.od.test").outcome;
  CHECK((again == Outcome::Denied || again == Outcome::CoolingDown));
  CHECK(asks == asks_after);
  // Invalid names never reach the endpoint.
  CHECK(manager.certificate_for("bad..name").outcome == Outcome::Invalid);
  CHECK(manager.certificate_for("*.od.test").outcome == Outcome::Invalid);
  CHECK(manager.certificate_for("localhost").outcome == Outcome::Invalid);  // not for a public CA
  CHECK(asks == asks_after);
  const auto stats = manager.stats();
  CHECK(stats.handshakes_obtained == 2);
  CHECK(stats.on_demand.ask_denied >= 1000);
}

TEST_CASE("on-demand TLS: the ask endpoint down denies quickly while cached names keep working",
          "[certmanager][pebble][ondemand]") {
  PebbleServer& pebble = PebbleServer::shared();
  TempDir dir;
  FileStorage storage(dir.path() / "storage");
  CertManagerOptions options = options_for(pebble.directory_url(), pebble.listener_ca_file(), pebble.http01_port());
  options.on_demand.emplace();
  auto ask = std::make_unique<acmetool::test::TinyHttpServer>(
      [](const acmetool::test::RecordedRequest&) { return acmetool::test::CannedResponse{200, "", "text/plain"}; });
  options.on_demand->ask_url = ask->url();
  CertManager manager(storage, options);
  REQUIRE(manager.certificate_for("kept.od.test").outcome == Outcome::Obtained);
  ask.reset();  // the endpoint goes away
  const auto start = std::chrono::steady_clock::now();
  const CertificateAnswer denied = manager.certificate_for("new.od.test");
  CHECK(denied.outcome == Outcome::Denied);
  CHECK(std::chrono::steady_clock::now() - start < 2s);
  CHECK(manager.certificate_for("kept.od.test").outcome == Outcome::Cached);
  CHECK(manager.stats().on_demand.ask_errors == 1);
}

TEST_CASE("on-demand TLS: a failing name costs at most one order per cooldown window", "[certmanager][pebble][ondemand]") {
  PebbleServer& pebble = PebbleServer::shared();
  FaultProxy proxy(pebble.directory_url(), pebble.listener_ca_file());
  // Every order fails as a CA refusing the name would.
  acmetool::test::Fault refuse;
  refuse.status = 400;
  refuse.problem_type = "urn:ietf:params:acme:error:rejectedIdentifier";
  proxy.fail(RequestKind::NewOrder, 1000, refuse);
  acmetool::test::TinyHttpServer ask(
      [](const acmetool::test::RecordedRequest&) { return acmetool::test::CannedResponse{200, "", "text/plain"}; });
  TempDir dir;
  FileStorage storage(dir.path() / "storage");
  TestClock clock;
  CertManagerOptions options = options_for(proxy.directory_url(), proxy.ca_file(), pebble.http01_port());
  options.clock = [&clock] { return clock(); };
  options.on_demand.emplace();
  options.on_demand->ask_url = ask.url();  // a misconfigured endpoint that allows everything
  options.on_demand->cooldown = 2min;
  CertManager manager(storage, options);
  int failed = 0;
  for (int step = 0; step < 30; ++step) {  // 30 handshakes, 20 s apart: 10 minutes
    const Outcome outcome = manager.certificate_for("fails.od.test").outcome;
    failed += outcome == Outcome::Failed;
    CHECK((outcome == Outcome::Failed || outcome == Outcome::CoolingDown));
    clock.advance(20s);
  }
  const int orders = proxy.count(RequestKind::NewOrder, "POST");
  CHECK(orders >= 1);
  CHECK(orders <= 5);  // at most one per 2-minute window over 10 minutes
  CHECK(failed >= orders);  // the CA's own backoff (1 min, 10 min) skips some attempts without an order
}

TEST_CASE("on-demand with a public CA and no ask endpoint is a configuration error", "[certmanager]") {
  TempDir dir;
  FileStorage storage(dir.path() / "storage");
  CertManagerOptions options;
  options.acme.directory_urls = {"https://127.0.0.1:1/dir"};
  options.on_demand.emplace();
  CHECK_THROWS_WITH(CertManager(storage, options), Catch::Contains("needs an 'ask' endpoint"));
  options.on_demand_policy = IssuerPolicy::Internal;
  CHECK_NOTHROW(CertManager(storage, options));
}

TEST_CASE("maintenance removes expired certificates no longer managed, at most once a day", "[certmanager]") {
  TempDir dir;
  const fs::path root = dir.path() / "storage";
  FileStorage storage(root);
  TestClock clock;
  CertManagerOptions options;
  options.clock = [&clock] { return clock(); };
  options.internal_lifetime = std::chrono::hours(1);
  CertManager manager(storage, options);
  manager.manage({{"old.internal", IssuerPolicy::Internal}, {"kept.internal", IssuerPolicy::Internal}});
  REQUIRE(manager.wait_idle(30s));
  const fs::path old_dir = root / "certificates" / "local" / "old.internal";
  REQUIRE(fs::exists(old_dir / "old.internal.crt"));

  manager.manage({{"kept.internal", IssuerPolicy::Internal}});  // old.internal is dropped from the config
  CHECK(manager.certificate_for("old.internal").outcome == Outcome::Unknown);
  manager.maintain();
  CHECK(fs::exists(old_dir / "old.internal.crt"));  // not expired yet: kept

  clock.advance(std::chrono::hours(1) + std::chrono::hours(24) + 1min);  // expired for a day
  manager.maintain();  // also renews kept.internal, which expired meanwhile
  CHECK_FALSE(fs::exists(old_dir));
  CHECK(fs::exists(root / "certificates" / "local" / "kept.internal" / "kept.internal.crt"));
  CHECK(fs::exists(root / "last_clean.json"));
  CHECK(manager.certificate_for("kept.internal").outcome == Outcome::Cached);
}

TEST_CASE("on-demand certificates from the local CA renew at a handshake after a third of their life",
          "[certmanager][ondemand]") {
  TempDir dir;
  FileStorage storage(dir.path() / "storage");
  TestClock clock;
  CertManagerOptions options;
  options.clock = [&clock] { return clock(); };
  options.on_demand.emplace();  // no ask: allowed for the local CA only
  options.on_demand_policy = IssuerPolicy::Internal;
  options.internal_lifetime = std::chrono::hours(3);
  CertManager manager(storage, options);

  const CertificateAnswer first = manager.certificate_for("dev.localhost");
  REQUIRE(first.outcome == Outcome::Obtained);
  CHECK(manager.certificate_for("dev.localhost").certificate == first.certificate);

  clock.advance(2h + 10min);  // under a third left: served at once, renewed in the background
  const CertificateAnswer due = manager.certificate_for("dev.localhost");
  CHECK(due.outcome == Outcome::Cached);
  CHECK(due.certificate == first.certificate);
  REQUIRE(manager.wait_idle(30s));
  const CertificateAnswer renewed = manager.certificate_for("dev.localhost");
  REQUIRE(renewed.certificate);
  CHECK(renewed.certificate->not_after > first.certificate->not_after);

  clock.advance(4h);  // expired: the handshake waits for the renewal
  const CertificateAnswer after_expiry = manager.certificate_for("dev.localhost");
  REQUIRE(after_expiry.certificate);
  CHECK(after_expiry.certificate->not_after > clock());
  CHECK(manager.stats().handshakes_obtained >= 2);
}

TEST_CASE("manual certificate files are served and reloaded when they change", "[certmanager]") {
  TempDir dir;
  FileStorage storage(dir.path() / "storage");
  // Two certificates for the same name from a local CA of the test's own, written as files.
  FileStorage other(dir.path() / "other");
  const auto ca = acmetool::pki::LocalCa::open(other, {});
  auto write_pair = [&](std::chrono::seconds lifetime) {
    const auto leaf = ca.issue({{"files.example.test"}, lifetime});
    acmetool::test::write_file(dir.path() / "site.crt", acmetool::pki::chain_to_pem(leaf.chain));
    acmetool::test::write_file(dir.path() / "site.key", acmetool::pki::private_key_to_pem(*leaf.key).str());
  };
  write_pair(std::chrono::hours(5));
  CertManagerOptions options;
  CertManager manager(storage, options);
  ManagedName files{"files.example.test", IssuerPolicy::Manual, {}, dir.path() / "site.crt", dir.path() / "site.key"};
  manager.manage({files});
  const auto first = manager.certificate_for("files.example.test");
  REQUIRE(first.outcome == Outcome::Cached);
  CHECK(first.certificate->origin == acmetool::serve::CachedCertificate::Origin::Manual);

  std::this_thread::sleep_for(20ms);  // a distinct modification time
  write_pair(std::chrono::hours(8));
  manager.maintain();
  const auto second = manager.certificate_for("files.example.test");
  REQUIRE(second.certificate);
  CHECK(second.certificate->not_after > first.certificate->not_after);
  // A manual file that cannot be read fails manage() with the file's name.
  ManagedName missing{"gone.example.test", IssuerPolicy::Manual, {}, dir.path() / "gone.crt", dir.path() / "gone.key"};
  CHECK_THROWS_WITH(manager.manage({missing}), Catch::Contains("gone.crt"));
}

TEST_CASE("on-demand TLS: a concurrent storm of unknown names is answered, bounded, without an order",
          "[certmanager][pebble][ondemand]") {
  PebbleServer& pebble = PebbleServer::shared();
  FaultProxy proxy(pebble.directory_url(), pebble.listener_ca_file());
  std::atomic<int> asks{0};
  acmetool::test::TinyHttpServer ask([&](const acmetool::test::RecordedRequest&) {
    ++asks;
    return acmetool::test::CannedResponse{403, "", "text/plain"};
  });
  TempDir dir;
  FileStorage storage(dir.path() / "storage");
  CertManagerOptions options = options_for(proxy.directory_url(), proxy.ca_file(), pebble.http01_port());
  options.on_demand.emplace();
  options.on_demand->ask_url = ask.url();
  options.on_demand->max_concurrent_asks = 4;
  options.on_demand->max_waiting_asks = 32;  // a small queue, so the storm overflows it
  CertManager manager(storage, options);

  std::atomic<int> answered{0}, denied{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      for (int i = 0; i < 250; ++i) {
        manager.certificate_for("storm" + std::to_string(t) + "-" + std::to_string(i) + ".od.test", "198.51.100.7",
                                [&](CertificateAnswer answer) {
                                  denied += answer.outcome == Outcome::Denied;
                                  ++answered;
                                });
      }
    });
  }
  for (auto& c : clients) c.join();
  REQUIRE(acmetool::test::wait_until([&] { return answered == 1000; }, 60s));
  CHECK(denied == 1000);
  CHECK(asks <= 1000);
  CHECK(proxy.count(RequestKind::NewOrder, "POST") == 0);
  REQUIRE(manager.wait_idle(10s));
  CHECK(manager.stats().handshakes_rejected == 1000);
}

TEST_CASE("OCSP responses are stapled, refreshed, kept when the responder fails, and never for a revoked certificate",
          "[certmanager][ocsp]") {
  acmetool::test::OcspResponder responder;  // good.test and revoked.test, answers valid for 60 min
  TempDir dir;
  FileStorage storage(dir.path() / "storage");
  auto manual = [&](const std::string& name) {
    // The certificate file holds the chain (leaf, then CA), as a server would serve it.
    const fs::path chain = dir.path() / (name + ".pem");
    acmetool::test::write_file(chain, acmetool::test::read_text(responder.leaf_file(name)) +
                                          acmetool::test::read_text(responder.ca_file()));
    return ManagedName{name, IssuerPolicy::Manual, {}, chain, responder.leaf_file(name).parent_path() / (name + ".key")};
  };
  TestClock clock;
  std::vector<std::string> lines;
  std::mutex lines_mu;
  CertManagerOptions options;
  options.clock = [&clock] { return clock(); };
  options.log = [&](std::string_view line) {
    std::lock_guard lock(lines_mu);
    lines.emplace_back(line);
  };
  CertManager manager(storage, options);
  manager.manage({manual("good.test"), manual("revoked.test")});
  CHECK(manager.certificate_for("good.test").certificate->ocsp_response.empty());  // nothing fetched yet

  manager.maintain();
  const auto stapled = manager.certificate_for("good.test").certificate;
  REQUIRE(stapled);
  CHECK_FALSE(stapled->ocsp_response.empty());
  CHECK(manager.certificate_for("revoked.test").certificate->ocsp_response.empty());
  {
    std::lock_guard lock(lines_mu);
    CHECK(std::any_of(lines.begin(), lines.end(), [](const std::string& l) {
      return l.find("revoked.test is revoked") != std::string::npos;
    }));
  }
  CHECK(manager.stats().ocsp_fetches == 2);

  manager.maintain();  // not yet halfway through the response's validity: no fetch
  CHECK(manager.stats().ocsp_fetches == 3);  // only revoked.test, which has no good staple, is asked again

  responder.stop();
  clock.advance(40min);  // past halfway: a refresh is due, and the responder is down
  manager.maintain();
  CHECK(manager.stats().ocsp_failures >= 1);
  CHECK(manager.certificate_for("good.test").certificate->ocsp_response == stapled->ocsp_response);  // kept
}

TEST_CASE("the maintenance loop runs a pass at start and renews what is due by itself", "[certmanager]") {
  TempDir dir;
  FileStorage storage(dir.path() / "storage");
  TestClock clock;
  CertManagerOptions options;
  options.clock = [&clock] { return clock(); };
  options.internal_lifetime = std::chrono::hours(3);
  options.maintenance_interval = std::chrono::hours(1);  // only the first pass can run in this test
  CertManager manager(storage, options);
  manager.manage({{"loop.internal", IssuerPolicy::Internal}});
  REQUIRE(manager.wait_idle(30s));
  const auto first = manager.certificate_for("loop.internal").certificate;
  REQUIRE(first);
  clock.advance(2h + 10min);
  manager.start();
  CHECK(acmetool::test::wait_until(
      [&] {
        const auto now = manager.certificate_for("loop.internal").certificate;
        return now && now->not_after > first->not_after;
      },
      20s));
}

TEST_CASE("on-demand TLS obtains only for the names and patterns of on-demand sites", "[certmanager][ondemand]") {
  TempDir dir;
  FileStorage storage(dir.path() / "storage");
  CertManagerOptions options;
  options.on_demand.emplace();
  options.on_demand_policy = IssuerPolicy::Internal;
  options.on_demand_hosts = {"app.localhost", "*.dev.localhost"};
  CertManager manager(storage, options);
  CHECK(manager.certificate_for("app.localhost").outcome == Outcome::Obtained);
  CHECK(manager.certificate_for("a.dev.localhost").outcome == Outcome::Obtained);
  CHECK(manager.certificate_for("a.b.dev.localhost").outcome == Outcome::Unknown);  // one label only
  CHECK(manager.certificate_for("other.localhost").outcome == Outcome::Unknown);
  CHECK(manager.stats().orders_started == 2);
}
