// ACME Renewal Information (RFC 9773) and profiles: the pure decisions, then the Obtainer against
// the real pebble behind a FaultProxy that plays a CA offering ARI and profiles (pebble 2.4 has
// neither): the window decides renewal, it is fetched no more often than Retry-After allows and
// stored with the certificate, a renewal names the certificate it replaces, and a CA without ARI,
// or whose ARI fails, leaves the lifetime rule to decide.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "acmetool/acme/ari.h"
#include "acmetool/acme/error.h"
#include "acmetool/acme/obtainer.h"
#include "acmetool/pki/cert_storage.h"
#include "acmetool/pki/rfc3339.h"
#include "acmetool/pki/storage.h"
#include "acmetool/pki/storage_keys.h"
#include "acmetool/pki/x509.h"
#include "fault_proxy.h"
#include "pebble.h"
#include "process.h"

namespace acme = acmetool::acme;
namespace pki = acmetool::pki;
using acmetool::test::CannedAnswer;
using acmetool::test::FaultProxy;
using acmetool::test::PebbleServer;
using acmetool::test::RequestKind;
using acmetool::test::TempDir;
using acmetool::test::run_command;
using Clock = std::chrono::system_clock;
using namespace std::chrono_literals;

namespace {

acme::RenewalInfo window(Clock::time_point start, Clock::time_point end) {
  acme::RenewalInfo info;
  info.window_start = start;
  info.window_end = end;
  return info;
}

// A RenewalInfo body for the window [now + from, now + to].
std::string window_json(Clock::duration from, Clock::duration to) {
  const auto now = Clock::now();
  return nlohmann::json{{"suggestedWindow",
                         {{"start", pki::format_rfc3339(now + from)}, {"end", pki::format_rfc3339(now + to)}}},
                        {"explanationURL", "https://ca.example/why"}}
      .dump();
}

// The leaf of a PEM chain.
pki::X509Ptr leaf_of(const std::string& chain_pem) {
  return std::move(pki::certificates_from_pem(chain_pem, "chain").front());
}

// A self-signed P-256 certificate from `openssl req -x509` with `extra` arguments, as PEM.
std::string self_signed(std::vector<std::string> extra) {
  TempDir dir;
  const std::string cert = (dir.path() / "c.pem").string();
  std::vector<std::string> argv = {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                                   "-nodes", "-keyout", (dir.path() / "k.pem").string(), "-out", cert,
                                   "-subj", "/CN=x", "-days", "1"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  const auto r = run_command(argv);
  REQUIRE(r.exit_code == 0);
  return acmetool::test::read_text(cert);
}

// An Obtainer for pebble behind a proxy, answering http-01 on pebble's port, and its storage.
struct AriHarness {
  AriHarness() : proxy(pebble.directory_url(), pebble.listener_ca_file()), storage(dir.path()) {}

  acme::Obtainer obtainer(bool force = false, std::string profile = {}) {
    acme::ObtainSettings settings;
    settings.directory_urls = {proxy.directory_url()};
    settings.ca_root = proxy.ca_file();
    settings.challenges = {"http-01"};
    settings.listen_address = "127.0.0.1";
    settings.http_port = pebble.http01_port();
    settings.force = force;
    settings.profile = std::move(profile);
    settings.progress = [this](std::string_view line) { notes.emplace_back(line); };
    return acme::Obtainer(storage, settings);
  }

  // Obtains `name`, failing the test with the story when it does not work.
  void obtain(const std::string& name, bool force = false, std::string profile = {}) {
    const acme::ObtainOutcome outcome = obtainer(force, std::move(profile)).obtain({name});
    INFO(report());
    REQUIRE(outcome.status == acme::ObtainOutcome::Status::Obtained);
  }

  pki::StoredCertificate stored(const std::string& name) const {
    auto cert = pki::load_certificate(storage, pki::keys::acme_issuer_key(proxy.directory_url()), name);
    REQUIRE(cert);
    return std::move(*cert);
  }

  std::string report() const {
    std::string text = "--- proxy log ---\n";
    for (const std::string& line : proxy.log()) text += line + "\n";
    text += "--- progress ---\n";
    for (const std::string& line : notes) text += line + "\n";
    return text;
  }

  PebbleServer& pebble = PebbleServer::shared();
  FaultProxy proxy;
  TempDir dir;
  pki::FileStorage storage;
  std::vector<std::string> notes;
};

}  // namespace

TEST_CASE("the ARI certificate identifier is RFC 9773's example, the serial keeping its sign byte", "[acme][ari]") {
  // RFC 9773 §4.1: keyIdentifier 69:88:5B:..:D4 and serial 0x0087654321 give this identifier.
  const std::string pem = self_signed({"-set_serial", "0x87654321", "-addext",
                                       "2.5.29.35=DER:3016801469885B6B87464041E1B37B847BA0AE2CDE01C8D4"});
  CHECK(acme::ari_certificate_id(*leaf_of(pem)) == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
}

TEST_CASE("a certificate without an authority key identifier has no ARI identifier", "[acme][ari]") {
  // A self-signed certificate from `openssl req -x509` carries an AKI unless told not to.
  const std::string pem =
      self_signed({"-addext", "authorityKeyIdentifier=none", "-addext", "subjectKeyIdentifier=none"});
  CHECK(acme::ari_certificate_id(*leaf_of(pem)) == std::nullopt);
}

TEST_CASE("the renewal time is picked inside the window and kept while the window holds it", "[acme][ari]") {
  std::mt19937_64 rng(42);
  const auto start = Clock::now() + 24h, end = start + 48h;
  acme::RenewalInfo info = window(start, end);
  for (int i = 0; i < 200; ++i) {
    const auto t = acme::pick_renewal_time(info, rng);
    REQUIRE(t >= start);
    REQUIRE(t <= end);
  }
  info.selected_time = start + 1h;
  // The same window again: the earlier pick stays, or every check would roll the dice anew.
  CHECK(acme::merge_renewal_info(window(start, end), info, rng).selected_time == start + 1h);
  // A window moved earlier (a CA revoking soon): a new pick inside it.
  const auto moved = acme::merge_renewal_info(window(start - 20h, start - 10h), info, rng);
  CHECK(moved.selected_time >= start - 20h);
  CHECK(moved.selected_time <= start - 10h);
}

TEST_CASE("ARI says due once the picked time has come, or when it falls before the next check", "[acme][ari]") {
  const auto now = Clock::now();
  acme::RenewalInfo info = window(now - 1h, now + 1h);
  info.selected_time = now + 30min;
  CHECK_FALSE(acme::ari_due(info, now, now));
  CHECK(acme::ari_due(info, now + 31min, now + 31min));
  CHECK(acme::ari_due(info, now, now + 1h));  // a client that looks again only in an hour renews now
}

TEST_CASE("renewal information answers are checked and Retry-After bounded", "[acme][ari]") {
  const auto now = Clock::now();
  const auto info = acme::parse_renewal_info(window_json(1h, 2h), std::nullopt, now);
  CHECK(info.window_end - info.window_start == 1h);
  CHECK(info.explanation_url == "https://ca.example/why");
  CHECK(info.next_update == now + 6h);  // no Retry-After: six hours
  CHECK(acme::parse_renewal_info(window_json(1h, 2h), 10s, now).next_update == now + 1min);
  CHECK(acme::parse_renewal_info(window_json(1h, 2h), 72h, now).next_update == now + 24h);
  CHECK(acme::parse_renewal_info(window_json(1h, 2h), 3h, now).next_update == now + 3h);
  // RFC 9773 §4.2: a window whose end does not follow its start is no answer at all.
  CHECK_THROWS_AS(acme::parse_renewal_info(window_json(2h, 1h), std::nullopt, now), acme::Error);
  CHECK_THROWS_AS(acme::parse_renewal_info(window_json(1h, 1h), std::nullopt, now), acme::Error);
  CHECK_THROWS_AS(acme::parse_renewal_info(R"({"suggestedWindow":{"start":"soon"}})", std::nullopt, now), acme::Error);
  CHECK_THROWS_AS(acme::parse_renewal_info("not json", std::nullopt, now), acme::Error);
}

TEST_CASE("stored renewal information round-trips in acmez's field names", "[acme][ari]") {
  acme::RenewalInfo info = window(Clock::time_point(1700000000s), Clock::time_point(1700086400s));
  info.explanation_url = "https://ca.example/why";
  info.next_update = Clock::time_point(1700021600s);
  info.selected_time = Clock::time_point(1700050000s);
  const std::string text = acme::renewal_info_to_json(info);
  const auto doc = nlohmann::json::parse(text);
  CHECK(pki::parse_rfc3339(doc["suggestedWindow"]["start"].get<std::string>()) == info.window_start);
  CHECK(doc.contains("_retryAfter"));
  CHECK(doc.contains("_selectedTime"));
  const auto back = acme::renewal_info_from_json(text);
  REQUIRE(back);
  CHECK(back->window_start == info.window_start);
  CHECK(back->window_end == info.window_end);
  CHECK(back->selected_time == info.selected_time);
  CHECK(back->next_update == info.next_update);
  CHECK(back->explanation_url == info.explanation_url);
  CHECK_FALSE(acme::renewal_info_from_json(R"({"suggestedWindow":{}})"));
}

TEST_CASE("a CA's ARI window that has begun makes a fresh certificate due, and the renewal names it in replaces",
          "[acme][ari][pebble]") {
  AriHarness h;
  std::vector<std::string> asked;
  h.proxy.offer_renewal_info([&](const std::string& id) {
    asked.push_back(id);
    return CannedAnswer{200, window_json(-1h, -1min), "3600"};
  });
  h.obtain("ari-due.example.test");
  const std::string old_id = *acme::ari_certificate_id(*leaf_of(h.stored("ari-due.example.test").chain_pem));

  const acme::RenewalCheck check = h.obtainer().check_renewal({"ari-due.example.test"});
  INFO(h.report());
  CHECK(check.status == acme::RenewalCheck::Status::Due);
  CHECK(check.reason.find("renewal window") != std::string::npos);
  CHECK(asked == std::vector<std::string>{old_id});
  // Window, pick and next look are stored with the certificate, as acmez stores them.
  const auto meta = nlohmann::json::parse(h.stored("ari-due.example.test").issuer_data_json);
  REQUIRE(meta.contains("renewal_info"));
  CHECK(meta["renewal_info"].contains("_selectedTime"));
  // The plain obtain path now reads the stored pick and no longer reuses the certificate.
  const int orders_before = h.proxy.count(RequestKind::NewOrder);
  h.obtain("ari-due.example.test");
  const auto payloads = h.proxy.payloads(RequestKind::NewOrder);
  REQUIRE(static_cast<int>(payloads.size()) == orders_before + 1);
  CHECK(payloads.back().value("replaces", "") == old_id);
  CHECK(payloads.front().contains("replaces") == false);  // the first certificate replaced nothing
}

TEST_CASE("an ARI window in the future keeps the certificate, and is not asked again before its Retry-After",
          "[acme][ari][pebble]") {
  AriHarness h;
  h.proxy.offer_renewal_info([](const std::string&) { return CannedAnswer{200, window_json(10 * 24h, 11 * 24h), "7200"}; });
  h.obtain("ari-later.example.test");
  for (int i = 0; i < 3; ++i) {
    const acme::RenewalCheck check = h.obtainer().check_renewal({"ari-later.example.test"});
    INFO(h.report());
    CHECK(check.status == acme::RenewalCheck::Status::NotDue);
    REQUIRE(check.ari);
    CHECK(check.ari->selected_time >= check.ari->window_start);
    CHECK(check.ari->selected_time <= check.ari->window_end);
  }
  CHECK(h.proxy.count(RequestKind::RenewalInfo) == 1);  // then stored until now + 2 h
  const int orders = h.proxy.count(RequestKind::NewOrder);
  const acme::ObtainOutcome again = h.obtainer().obtain({"ari-later.example.test"});
  CHECK(again.status == acme::ObtainOutcome::Status::Reused);
  CHECK(h.proxy.count(RequestKind::NewOrder) == orders);
}

TEST_CASE("without ARI in the directory, or when it fails, the lifetime rule decides and nothing is sent",
          "[acme][ari][pebble]") {
  AriHarness h;
  h.obtain("no-ari.example.test");
  acme::RenewalCheck check = h.obtainer().check_renewal({"no-ari.example.test"});
  CHECK(check.status == acme::RenewalCheck::Status::NotDue);
  CHECK_FALSE(check.ari);
  CHECK(check.reason.find("third") != std::string::npos);
  CHECK(h.proxy.count(RequestKind::RenewalInfo) == 0);
  h.obtain("no-ari.example.test", /*force=*/true);
  for (const auto& payload : h.proxy.payloads(RequestKind::NewOrder)) CHECK_FALSE(payload.contains("replaces"));

  // A CA whose renewalInfo answers with an invalid window: noted, and the lifetime decides.
  AriHarness broken;
  broken.proxy.offer_renewal_info([](const std::string&) { return CannedAnswer{200, window_json(2h, 1h), ""}; });
  broken.obtain("bad-ari.example.test");
  check = broken.obtainer().check_renewal({"bad-ari.example.test"});
  INFO(broken.report());
  CHECK(check.status == acme::RenewalCheck::Status::NotDue);
  CHECK_FALSE(check.ari);
  CHECK(broken.proxy.count(RequestKind::RenewalInfo) == 1);
  bool noted = false;
  for (const std::string& line : broken.notes) noted |= line.find("renewal information") != std::string::npos;
  CHECK(noted);
}

TEST_CASE("a CA refusing replaces still gets the order, without it", "[acme][ari][pebble]") {
  AriHarness h;
  h.proxy.offer_renewal_info([](const std::string&) { return CannedAnswer{200, window_json(-2h, -1h), "60"}; });
  h.obtain("replaced.example.test");
  acmetool::test::Fault refused;
  refused.status = 409;
  refused.problem_type = "urn:ietf:params:acme:error:alreadyReplaced";
  h.proxy.fail(RequestKind::NewOrder, 1, refused);
  h.obtain("replaced.example.test", /*force=*/true);
  const auto payloads = h.proxy.payloads(RequestKind::NewOrder);
  REQUIRE(payloads.size() == 3);
  CHECK(payloads[1].contains("replaces"));
  CHECK_FALSE(payloads[2].contains("replaces"));
}

TEST_CASE("a profile is sent only when the directory offers it", "[acme][ari][pebble]") {
  AriHarness h;
  h.proxy.patch_directory([](nlohmann::json& dir) {
    dir["meta"]["profiles"] = {{"shortlived", "6-day certificates"}, {"classic", "90 days"}};
  });
  h.obtain("profile.example.test", false, "shortlived");
  h.obtain("profile.example.test", true, "unknown-profile");
  const auto payloads = h.proxy.payloads(RequestKind::NewOrder);
  REQUIRE(payloads.size() == 2);
  CHECK(payloads[0].value("profile", "") == "shortlived");
  CHECK_FALSE(payloads[1].contains("profile"));
  const auto meta = nlohmann::json::parse(h.stored("profile.example.test").issuer_data_json);
  CHECK(meta.value("profile", "") == "unknown-profile");  // recorded for renew, whatever the CA offers
}
