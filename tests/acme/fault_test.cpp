// The ACME client against failures pebble 2.4 never produces (429 with Retry-After, 503, 500, a
// dropped connection), injected by a FaultProxy in front of the real pebble. Each issuance must
// still end in a certificate that verifies against pebble's root, and the proxy's request counts
// must show the client retried exactly as ClientOptions promises: never more requests than allowed,
// and never a sleep on a Retry-After that is for the caller to schedule.
#include <catch2/catch.hpp>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "acmetool/acme/client.h"
#include "acmetool/acme/error.h"
#include "acmetool/acme/issuance.h"
#include "acmetool/acme/solver.h"
#include "acmetool/pki/storage.h"
#include "acmetool/pki/x509.h"
#include "fault_proxy.h"
#include "pebble.h"
#include "process.h"

namespace acme = acmetool::acme;
namespace pki = acmetool::pki;
using acmetool::test::Fault;
using acmetool::test::FaultProxy;
using acmetool::test::PebbleServer;
using acmetool::test::read_text;
using acmetool::test::RequestKind;
using acmetool::test::TempDir;
using namespace std::chrono_literals;

namespace {

constexpr char kRateLimited[] = "urn:ietf:params:acme:error:rateLimited";
constexpr char kServerInternal[] = "urn:ietf:params:acme:error:serverInternal";

// Aborts the test process when a test case runs past `limit`: a client that slept on an hour's
// Retry-After would otherwise hang the suite instead of failing it.
class Watchdog {
 public:
  explicit Watchdog(std::chrono::seconds limit)
      : thread_([this, limit] {
          std::unique_lock lock(mu_);
          if (!stopped_cv_.wait_for(lock, limit, [this] { return stopped_; })) {
            std::fprintf(stderr, "fault_test: a test case still runs after %lld s; aborting\n",
                         static_cast<long long>(limit.count()));
            std::abort();
          }
        }) {}
  ~Watchdog() {
    {
      std::lock_guard lock(mu_);
      stopped_ = true;
    }
    stopped_cv_.notify_one();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable stopped_cv_;
  bool stopped_ = false;
  std::thread thread_;  // last: starts once the members it uses exist
};

// A client talking to pebble through a fault proxy, with storage for its account and a record of
// its progress notes (which say how long it waits before each retry).
struct Harness {
  explicit Harness(int max_attempts = 4)
      : proxy(pebble.directory_url(), pebble.listener_ca_file()), storage(storage_dir.path()) {
    acme::ClientOptions options;
    options.directory_url = proxy.directory_url();
    options.http.ca_file = proxy.ca_file();
    options.request_timeout = 15s;
    options.max_attempts = max_attempts;
    options.progress = [this](std::string_view line) { progress.emplace_back(line); };
    client = std::make_unique<acme::AcmeClient>(std::move(options));
  }

  std::string ensure_account() { return acme::ensure_account(*client, storage, "fault-proxy", {}); }

  // One http-01 order for `name`, answered on the port pebble's VA dials.
  acme::IssuedCertificate issue(const std::string& name) {
    const auto solver = acme::make_http01_standalone("127.0.0.1", pebble.http01_port());
    acme::CertificateOrder order;
    order.names = {name};
    order.solvers = {solver.get()};
    order.validation_timeout = 30s;
    order.finalize_timeout = 30s;
    return acme::issue_certificate(*client, order);
  }

  // The progress notes announcing a retry, in order.
  std::vector<std::string> retries() const {
    std::vector<std::string> lines;
    for (const std::string& line : progress) {
      if (line.find("retrying") != std::string::npos) lines.push_back(line);
    }
    return lines;
  }

  // The proxy's log lines for paths starting with `prefix`, e.g. "POST /authZ/x -> 200".
  std::vector<std::string> requests(const std::string& prefix) const {
    std::vector<std::string> lines;
    for (const std::string& line : proxy.log()) {
      if (line.find(" " + prefix) != std::string::npos) lines.push_back(line);
    }
    return lines;
  }

  // What happened, for failure messages.
  std::string report() const {
    std::string text = "--- proxy log ---\n";
    for (const std::string& line : proxy.log()) text += line + "\n";
    text += "--- client progress ---\n";
    for (const std::string& line : progress) text += line + "\n";
    return text + pebble.logs();
  }

  Watchdog watchdog{120s};
  PebbleServer& pebble = PebbleServer::shared();
  FaultProxy proxy;
  TempDir storage_dir;
  pki::FileStorage storage;
  std::vector<std::string> progress;  // before client, whose callback appends to it
  std::unique_ptr<acme::AcmeClient> client;
};

// Runs `step` (registering, issuing); fails the test with the whole story when it throws.
template <class Step>
auto or_fail(const Harness& h, Step step) {
  try {
    return step();
  } catch (const std::exception& e) {
    FAIL(e.what() << "\n" << h.report());
    throw;
  }
}

// Registers an account and issues a certificate for `name`.
acme::IssuedCertificate issue_or_fail(Harness& h, const std::string& name) {
  or_fail(h, [&] { return h.ensure_account(); });
  return or_fail(h, [&] { return h.issue(name); });
}

// Registers and issues a certificate for `name`, which must come leaf first, for `name` alone,
// and verify against pebble's issuing root.
void issue_and_check(Harness& h, const std::string& name) {
  const acme::IssuedCertificate issued = issue_or_fail(h, name);
  INFO(h.report());
  pki::CertificateChain chain = pki::certificates_from_pem(issued.chain_pem, "issued chain");
  REQUIRE(chain.size() >= 2);
  const pki::X509Ptr leaf = std::move(chain.front());
  chain.erase(chain.begin());
  const pki::CertificateChain roots =
      pki::certificates_from_pem(read_text(h.pebble.root_file()), "pebble root");
  CHECK(pki::verify_chain(*leaf, chain, roots, std::chrono::system_clock::now()) == std::nullopt);
  CHECK(pki::describe_certificate(*leaf).dns_names == std::vector<std::string>{name});
}

// The client's only retry note; fails the test unless it wrote exactly one.
std::string only_retry(const Harness& h) {
  const std::vector<std::string> retries = h.retries();
  INFO(h.report());
  REQUIRE(retries.size() == 1);
  return retries[0];
}

std::string retry_note(const std::string& url, int status, int wait_ms) {
  return "CA answered " + std::to_string(status) + " to " + url + "; retrying in " +
         std::to_string(wait_ms) + " ms";
}

}  // namespace

TEST_CASE("two 429s with Retry-After: 1 on newOrder are waited out and the third order succeeds",
          "[acme][fault]") {
  Harness h;
  h.proxy.fail(RequestKind::NewOrder, 2, Fault{429, "1", kRateLimited, false});
  issue_and_check(h, "rate-limited.example.test");
  INFO(h.report());
  CHECK(h.proxy.count(RequestKind::NewOrder) == 3);
  CHECK(h.proxy.pending_faults(RequestKind::NewOrder) == 0);
  // Each wait is the Retry-After's second, not the 250 ms backoff the client uses without one.
  const std::string new_order = h.proxy.origin() + "/order-plz";
  CHECK(h.retries() == std::vector<std::string>{retry_note(new_order, 429, 1000),
                                                retry_note(new_order, 429, 1000)});
}

TEST_CASE("a 503 without Retry-After on the authorization fetch is retried once after backoff",
          "[acme][fault]") {
  Harness h;
  // As a load balancer answers: no problem document and no nonce.
  h.proxy.fail(RequestKind::Authz, 1, Fault{503, "", "", false});
  issue_and_check(h, "unavailable.example.test");
  INFO(h.report());
  const std::vector<std::string> authz = h.requests("/authZ/");
  REQUIRE(authz.size() >= 2);
  CHECK(authz[0].ends_with(" -> 503 (injected)"));
  CHECK(authz[1].ends_with(" -> 200"));
  const std::string retry = only_retry(h);
  CHECK(retry.starts_with("CA answered 503 to " + h.proxy.origin() + "/authZ/"));
  CHECK(retry.ends_with("; retrying in 250 ms"));
}

TEST_CASE("a 500 on finalize is retried once and the certificate is issued", "[acme][fault]") {
  Harness h;
  h.proxy.fail(RequestKind::Finalize, 1, Fault{500, "", kServerInternal, false});
  issue_and_check(h, "finalize-500.example.test");
  INFO(h.report());
  CHECK(h.proxy.count(RequestKind::Finalize) == 2);
  CHECK(h.proxy.count(RequestKind::NewOrder) == 1);
  const std::string retry = only_retry(h);
  CHECK(retry.starts_with("CA answered 500 to " + h.proxy.origin() + "/finalize-order/"));
  CHECK(retry.ends_with("; retrying in 250 ms"));
}

TEST_CASE("a connection dropped on newAccount is retried once and the account is registered",
          "[acme][fault]") {
  Harness h;
  h.proxy.fail(RequestKind::NewAccount, 1, Fault{0, "", "", true});
  issue_and_check(h, "dropped.example.test");
  INFO(h.report());
  CHECK(h.proxy.count(RequestKind::NewAccount) == 2);
  // The account URL came through the proxy's origin: the client never learnt pebble's.
  CHECK(h.client->account_url().starts_with(h.proxy.origin() + "/my-account/"));
  const std::string retry = only_retry(h);
  CHECK(retry.starts_with("retrying POST " + h.proxy.origin() + "/sign-me-up after: "));
}

TEST_CASE("a 503 and a dropped connection on newNonce are retried like any other request",
          "[acme][fault]") {
  Harness h;
  // The nonce pool is empty before the first POST, so newAccount starts with a HEAD of newNonce.
  h.proxy.fail(RequestKind::NewNonce, 1, Fault{503, "", "", false});
  h.proxy.fail(RequestKind::NewNonce, 1, Fault{0, "", "", true});
  issue_and_check(h, "nonce.example.test");
  INFO(h.report());
  CHECK(h.proxy.count(RequestKind::NewNonce) == 3);
  CHECK(h.proxy.count(RequestKind::NewAccount) == 1);
  const std::vector<std::string> retries = h.retries();
  REQUIRE(retries.size() == 2);
  CHECK(retries[0] == retry_note(h.proxy.origin() + "/nonce-plz", 503, 250));
  CHECK(retries[1].starts_with("retrying HEAD " + h.proxy.origin() + "/nonce-plz after: "));
}

TEST_CASE("a 429 with Retry-After: 3600 on newOrder fails at once for the caller to schedule",
          "[acme][fault]") {
  Harness h;
  or_fail(h, [&] { return h.ensure_account(); });
  h.proxy.fail(RequestKind::NewOrder, 1, Fault{429, "3600", kRateLimited, false});
  try {
    h.issue("hour.example.test");
    FAIL("issued despite the rate limit\n" << h.report());
  } catch (const acme::ProblemError& e) {
    INFO(e.what() << "\n" << h.report());
    CHECK(e.type() == kRateLimited);
    CHECK(e.http_status() == 429);
    REQUIRE(e.retry_after().has_value());
    CHECK(e.retry_after()->count() == 3600);
  }
  CHECK(h.proxy.count(RequestKind::NewOrder) == 1);
  CHECK(h.proxy.count(RequestKind::Authz) == 0);
  CHECK(h.retries().empty());
}

TEST_CASE("503s on newOrder beyond max_attempts fail after exactly max_attempts requests",
          "[acme][fault]") {
  Harness h(/*max_attempts=*/3);
  or_fail(h, [&] { return h.ensure_account(); });
  h.proxy.fail(RequestKind::NewOrder, 5, Fault{503, "", kServerInternal, false});
  try {
    h.issue("overloaded.example.test");
    FAIL("issued through five 503s\n" << h.report());
  } catch (const acme::ProblemError& e) {
    INFO(e.what() << "\n" << h.report());
    CHECK(e.http_status() == 503);
    CHECK(e.type() == kServerInternal);
  }
  CHECK(h.proxy.count(RequestKind::NewOrder) == 3);
  CHECK(h.proxy.pending_faults(RequestKind::NewOrder) == 2);
  // Backoff doubles from 250 ms; no wait follows the last attempt.
  const std::string new_order = h.proxy.origin() + "/order-plz";
  CHECK(h.retries() ==
        std::vector<std::string>{retry_note(new_order, 503, 250), retry_note(new_order, 503, 500)});
}

TEST_CASE("an http:// directory URL is refused before any request", "[acme][fault]") {
  Harness h;
  acme::ClientOptions options;
  options.directory_url =
      "http://" + h.proxy.origin().substr(std::string_view("https://").size()) + "/dir";
  options.http.ca_file = h.proxy.ca_file();
  CHECK_THROWS_MATCHES(acme::AcmeClient(options), acme::Error,
                       Catch::Matchers::Message("ACME directory " + options.directory_url +
                                                ": only https:// CA URLs are allowed"));
  CHECK(h.proxy.total() == 0);
}

namespace {

// Milliseconds between two request times.
long long ms_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count();
}

}  // namespace

TEST_CASE("an authorization the CA keeps pending is polled again after its Retry-After", "[acme][fault]") {
  Harness h;
  or_fail(h, [&] { return h.ensure_account(); });
  // The authorization fetch before responding, then two polls, say "pending, look again in 1 s".
  h.proxy.hold(RequestKind::Authz, 3, "pending", "1");
  issue_and_check(h, "held-authz.example.test");
  const auto t = h.proxy.times(RequestKind::Authz, "POST");
  INFO(h.report());
  REQUIRE(t.size() == 4);  // fetch, two held polls, the poll that saw it valid
  CHECK(ms_between(t[1], t[2]) >= 950);
  CHECK(ms_between(t[2], t[3]) >= 950);
  CHECK(ms_between(t[1], t[3]) < 4000);
}

TEST_CASE("without Retry-After an authorization is polled after 200 ms, then backing off", "[acme][fault]") {
  Harness h;
  or_fail(h, [&] { return h.ensure_account(); });
  h.proxy.hold(RequestKind::Authz, 4, "pending", "");
  issue_and_check(h, "held-backoff.example.test");
  const auto t = h.proxy.times(RequestKind::Authz, "POST");
  INFO(h.report());
  REQUIRE(t.size() == 5);
  CHECK(ms_between(t[1], t[2]) >= 180);  // 200 ms
  CHECK(ms_between(t[1], t[2]) < 800);
  CHECK(ms_between(t[2], t[3]) >= 380);  // 400 ms
  CHECK(ms_between(t[3], t[4]) >= 780);  // 800 ms
  CHECK(ms_between(t[1], t[4]) < 3500);  // never a fixed multi-second sleep
}

TEST_CASE("an order still processing after finalize is polled after the finalize answer's Retry-After",
          "[acme][fault]") {
  Harness h;
  or_fail(h, [&] { return h.ensure_account(); });
  h.proxy.hold(RequestKind::Finalize, 1, "processing", "1");
  issue_and_check(h, "held-finalize.example.test");
  const auto finalized = h.proxy.times(RequestKind::Finalize, "POST");
  INFO(h.report());
  REQUIRE(finalized.size() == 1);
  std::vector<std::chrono::steady_clock::time_point> after;
  for (const auto& t : h.proxy.times(RequestKind::Order, "POST")) {
    if (t > finalized[0]) after.push_back(t);
  }
  REQUIRE(after.size() == 1);  // one poll, which found it valid
  CHECK(ms_between(finalized[0], after[0]) >= 950);
  CHECK(ms_between(finalized[0], after[0]) < 3000);
}
