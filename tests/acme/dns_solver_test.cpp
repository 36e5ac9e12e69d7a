// The dns-01 solver (make_dns01_solver) against the real BIND 9 of tests/support/bind9.h: record
// names and zones come from real CNAME and SOA lookups, propagation is checked against the real
// authoritative server. Providers are the real rfc2136 one, or a fake that only records calls
// when a case needs a provider that never gets a record into DNS.
#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <mutex>
#include <random>

#include "acmetool/acme/dns_provider.h"
#include "acmetool/acme/error.h"
#include "acmetool/acme/jws.h"
#include "bind9.h"
#include "dns_test_util.h"
#include "dns_providers_internal.h"

namespace acme = acmetool::acme;
using acmetool::test::Bind9Server;
using acmetool::test::dns::bind9;
using acmetool::test::dns::lookup_options;
using acmetool::test::dns::served_txt;
using acmetool::test::dns::unique_label;
using Catch::Matchers::Contains;
using namespace std::chrono_literals;

namespace {

// Solver options for the fixture: quick polling, and progress notes kept for the assertions.
acme::Dns01Options solver_options(std::vector<std::string>* notes = nullptr) {
  acme::Dns01Options options;
  options.lookup = lookup_options();
  options.ttl = 1s;
  options.propagation_interval = 100ms;
  options.propagation_timeout = 20s;
  options.propagation_delay = 0ms;
  if (notes) options.progress = [notes](std::string_view note) { notes->emplace_back(note); };
  return options;
}

// A fresh base64url token and a key authorization for it: values differ between cases.
struct Challenge {
  std::string token = unique_label("tok");
  std::string key_authorization = token + ".thumbprint";
  std::string txt_value() const { return acme::dns01_txt_value(key_authorization); }
};

std::shared_ptr<acme::DnsProvider> rfc2136() {
  return acme::detail::make_rfc2136_provider(acmetool::test::dns::rfc2136_settings());
}

// A provider that records what it is asked and changes no zone.
class RecordingProvider final : public acme::DnsProvider {
 public:
  std::string_view name() const override { return "fake"; }
  void present(const acme::TxtRecord& record) override {
    std::lock_guard lock(mutex_);
    presented.push_back(record);
  }
  void cleanup(const acme::TxtRecord& record) override {
    std::lock_guard lock(mutex_);
    cleaned.push_back(record);
    if (fail_cleanup) throw acme::DnsError("fake", record.zone, "cleanup refused");
  }

  std::vector<acme::TxtRecord> presented, cleaned;
  bool fail_cleanup = false;

 private:
  std::mutex mutex_;
};

template <class Exception>
std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Exception& e) {
    return e.what();
  }
  FAIL("no exception was thrown");
  return "";
}

}  // namespace

TEST_CASE("dns-01 puts the record at the end of the _acme-challenge CNAME, in the target's zone",
          "[dns]") {
  const auto solver = acme::make_dns01_solver(rfc2136(), solver_options());
  CHECK(solver->type() == "dns-01");
  const Challenge challenge;
  const std::string target = "_acme-challenge.delegated-name.acme-delegate.test.";
  solver->present("delegated-name.example.test", challenge.token, challenge.key_authorization);
  const std::vector<std::string> values = served_txt(target);
  CHECK(std::find(values.begin(), values.end(), challenge.txt_value()) != values.end());
  solver->wait_presented(10s);
  solver->cleanup("delegated-name.example.test", challenge.token);
  const std::vector<std::string> after = served_txt(target);
  CHECK(std::find(after.begin(), after.end(), challenge.txt_value()) == after.end());
}

TEST_CASE("dns-01 names the record after the base name of a wildcard, lower case", "[dns]") {
  const auto provider = std::make_shared<RecordingProvider>();
  const auto solver = acme::make_dns01_solver(provider, solver_options());
  const std::string label = unique_label("wild");
  const Challenge challenge;
  solver->present("*." + label + ".Example.TEST", challenge.token, challenge.key_authorization);
  REQUIRE(provider->presented.size() == 1);
  const acme::TxtRecord& record = provider->presented[0];
  CHECK(record.fqdn == "_acme-challenge." + label + ".example.test.");
  CHECK(record.zone == "example.test.");
  CHECK(record.value == challenge.txt_value());
  CHECK(record.value.size() == 43);
  CHECK(record.ttl == 1s);
}

TEST_CASE("dns-01 with an override domain puts the record there, and a given zone skips discovery",
          "[dns]") {
  const auto provider = std::make_shared<RecordingProvider>();
  acme::Dns01Options options = solver_options();
  const std::string label = unique_label("override");
  options.override_domain = "Validation." + label + ".acme-delegate.test";
  const Challenge challenge;
  // The override replaces the whole _acme-challenge name, and no CNAME is followed from it.
  acme::make_dns01_solver(provider, options)
      ->present("delegated-name.example.test", challenge.token, challenge.key_authorization);
  REQUIRE(provider->presented.size() == 1);
  CHECK(provider->presented[0].fqdn == "validation." + label + ".acme-delegate.test.");
  CHECK(provider->presented[0].zone == "acme-delegate.test.");

  options.override_domain.clear();
  options.zone = label + ".example.test";  // not a zone in DNS: taken as given
  acme::make_dns01_solver(provider, options)
      ->present("www." + label + ".example.test", challenge.token, challenge.key_authorization);
  REQUIRE(provider->presented.size() == 2);
  CHECK(provider->presented[1].fqdn == "_acme-challenge.www." + label + ".example.test.");
  CHECK(provider->presented[1].zone == label + ".example.test.");

  options.zone = "acme-delegate.test";
  CHECK_THAT(error_of<acme::Error>([&] {
               acme::make_dns01_solver(provider, options)
                   ->present("www.example.test", challenge.token, challenge.key_authorization);
             }),
             Contains("_acme-challenge.www.example.test. is not in zone acme-delegate.test."));
  CHECK(provider->presented.size() == 2);
}

TEST_CASE("dns-01 waits until the authoritative server serves every record, then returns",
          "[dns]") {
  std::vector<std::string> notes;
  const auto solver = acme::make_dns01_solver(rfc2136(), solver_options(&notes));
  const std::string label = unique_label("wait");
  const Challenge base, wildcard;
  solver->present(label + ".example.test", base.token, base.key_authorization);
  solver->present("*." + label + ".example.test", wildcard.token, wildcard.key_authorization);
  const auto start = std::chrono::steady_clock::now();
  solver->wait_presented(30s);
  // Served at once by BIND: one round of checks, no 20 s propagation timeout.
  CHECK(std::chrono::steady_clock::now() - start < 2s);
  const std::string name = "_acme-challenge." + label + ".example.test.";
  std::vector<std::string> values = served_txt(name);
  std::sort(values.begin(), values.end());
  std::vector<std::string> expected = {base.txt_value(), wildcard.txt_value()};
  std::sort(expected.begin(), expected.end());
  CHECK(values == expected);

  solver->cleanup(label + ".example.test", base.token);
  CHECK(served_txt(name) == std::vector<std::string>{wildcard.txt_value()});
  solver->cleanup("*." + label + ".example.test", wildcard.token);
  CHECK(served_txt(name).empty());
  CHECK_THAT(notes.front(),
             Contains("dns-01: adding TXT " + name + " in zone example.test. via rfc2136"));
}

TEST_CASE("dns-01 gives up at the propagation timeout naming the nameserver that is behind",
          "[dns]") {
  const auto provider = std::make_shared<RecordingProvider>();  // records nothing in DNS
  acme::Dns01Options options = solver_options();
  options.propagation_timeout = 500ms;
  const auto solver = acme::make_dns01_solver(provider, options);
  const Challenge challenge;
  const std::string label = unique_label("late");
  solver->present(label + ".example.test", challenge.token, challenge.key_authorization);
  const std::string message = error_of<acme::DnsError>([&] { solver->wait_presented(60s); });
  CHECK_THAT(
      message,
      Contains("fake (zone example.test.)") &&
          Contains("TXT _acme-challenge." + label + ".example.test. \"" + challenge.txt_value()) &&
          Contains("ns1.example.test. (127.0.0.1:" + std::to_string(bind9().port()) +
                   ") does not serve it yet after 0.5 s"));

  // The caller's timeout bounds the wait too; skipping the check returns at once.
  CHECK_THAT(error_of<acme::DnsError>([&] { solver->wait_presented(200ms); }),
             Contains("after 0.2 s"));
  options.skip_propagation = true;
  const auto skipping = acme::make_dns01_solver(provider, options);
  skipping->present(label + ".example.test", challenge.token, challenge.key_authorization);
  skipping->wait_presented(60s);
}

TEST_CASE("dns-01 cleanup removes exactly the presented record and never throws", "[dns]") {
  const auto provider = std::make_shared<RecordingProvider>();
  std::vector<std::string> notes;
  const auto solver = acme::make_dns01_solver(provider, solver_options(&notes));
  const Challenge challenge;
  solver->cleanup("www.example.test", challenge.token);  // nothing presented: nothing to do
  CHECK(provider->cleaned.empty());

  solver->present("www.example.test", challenge.token, challenge.key_authorization);
  provider->fail_cleanup = true;
  solver->cleanup("www.example.test", challenge.token);
  REQUIRE(provider->cleaned.size() == 1);
  CHECK(provider->cleaned[0].fqdn == provider->presented[0].fqdn);
  CHECK(provider->cleaned[0].value == provider->presented[0].value);
  CHECK_THAT(notes.back(), Contains("removing TXT _acme-challenge.www.example.test. failed") &&
                               Contains("cleanup refused"));
  solver->cleanup("www.example.test", challenge.token);  // already cleaned up
  CHECK(provider->cleaned.size() == 1);
}

TEST_CASE("dns-01 refuses tokens that are not base64url and identifiers that are not DNS names",
          "[dns]") {
  const auto provider = std::make_shared<RecordingProvider>();
  const auto solver = acme::make_dns01_solver(provider, solver_options());
  for (const std::string token :
       {"../x", "a/b", "", "a b", "../../etc/passwd", "a.b", "tok=", "a\nb"}) {
    INFO(token);
    CHECK_THAT(error_of<acme::Error>([&] { solver->present("www.example.test", token, "k"); }),
               Contains("not base64url"));
  }
  for (const std::string identifier : {"127.0.0.1", "::1", "[2001:db8::1]"}) {
    INFO(identifier);
    CHECK_THAT(error_of<acme::Error>([&] { solver->present(identifier, "token", "k"); }),
               Contains("dns-01 cannot validate the IP address") && Contains("RFC 8738"));
  }
  for (const std::string identifier :
       {"", "*.", "a..example.test", "www/../example.test", "a b.example.test"}) {
    INFO(identifier);
    CHECK_THAT(error_of<acme::Error>([&] { solver->present(identifier, "token", "k"); }),
               Contains("not a DNS name"));
  }
  CHECK(provider->presented.empty());
}
