#include "acmetool/serve/ocsp.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cctype>

#include "acmetool/acme/http.h"
#include "acmetool/pki/ca.h"
#include "acmetool/pki/storage.h"
#include "acmetool/serve/error.h"
#include "fixture_util.h"
#include "ocsp_responder.h"
#include "process.h"
#include "tiny_http_server.h"

namespace acme = acmetool::acme;
namespace pki = acmetool::pki;
namespace serve = acmetool::serve;
using acmetool::test::OcspResponder;
using acmetool::test::OcspResponderOptions;
using acmetool::test::OcspSigner;
using acmetool::test::TempDir;
using Catch::Matchers::Contains;
using Status = serve::OcspStaple::Status;
using namespace std::chrono_literals;
using std::chrono::system_clock;

namespace {

system_clock::time_point now() { return system_clock::now(); }

serve::OcspStaple fetch(const pki::CertificateChain& chain, system_clock::time_point at = now()) {
  const std::unique_ptr<acme::HttpClient> http = acme::make_http_client();
  return serve::fetch_ocsp_staple(chain, *http, at);
}

// The message fetch_ocsp_staple throws, or "" when it returns.
std::string fetch_error(const pki::CertificateChain& chain, system_clock::time_point at = now()) {
  try {
    fetch(chain, at);
  } catch (const serve::Error& e) {
    return e.what();
  }
  return "";
}

std::string parse_error(std::string_view der, const pki::CertificateChain& chain,
                        system_clock::time_point at) {
  try {
    serve::parse_ocsp_staple(der, chain, at);
  } catch (const serve::Error& e) {
    return e.what();
  }
  return "";
}

// What `openssl ocsp` itself makes of `der` for `leaf`, trusting only `ca`: e.g. "leaf.crt: good".
std::string openssl_verdict(const std::string& der, const OcspResponder& responder,
                            const std::string& leaf) {
  TempDir dir("acmetool-ocsp-der");
  acmetool::test::write_file(dir.path() / "response.der", der);
  const auto result = acmetool::test::run_command(
      {"openssl", "ocsp", "-respin", dir.path() / "response.der", "-issuer", responder.ca_file(),
       "-cert", responder.leaf_file(leaf), "-CAfile", responder.ca_file(), "-no_nonce"});
  return result.out + result.err;
}

}  // namespace

TEST_CASE("a good certificate's response is stapleable until nextUpdate and refreshed halfway",
          "[serve][ocsp]") {
  OcspResponder responder;
  const pki::CertificateChain chain = responder.chain("good.test");
  CHECK(serve::ocsp_responder_urls(*chain[0]) == std::vector<std::string>{responder.url()});

  const system_clock::time_point before = now();
  const serve::OcspStaple staple = fetch(chain);
  INFO(responder.log_tail());
  CHECK(staple.status == Status::Good);
  CHECK_FALSE(staple.der.empty());
  CHECK(staple.responder_url == responder.url());
  CHECK_FALSE(staple.revoked_at);
  // The responder stamps whole seconds from its own clock, then adds -nmin 60.
  CHECK(staple.this_update >= before - 1s);
  CHECK(staple.this_update <= now());
  CHECK(staple.next_update - staple.this_update >= 60min);
  CHECK(staple.next_update - staple.this_update <= 60min + 1s);

  const system_clock::time_point refresh = serve::ocsp_refresh_at(staple);
  CHECK(refresh - staple.this_update == staple.next_update - refresh);
  CHECK(refresh - staple.this_update >= 30min);
  CHECK(serve::ocsp_stapleable(staple, now()));
  CHECK(serve::ocsp_stapleable(staple, staple.next_update - 1s));
  CHECK_FALSE(serve::ocsp_stapleable(staple, staple.next_update));
  CHECK_THAT(openssl_verdict(staple.der, responder, "good.test"), Contains(": good"));
}

TEST_CASE("a revoked certificate's response says when it was revoked and is never stapled",
          "[serve][ocsp]") {
  const system_clock::time_point before = now();
  OcspResponder responder;
  const system_clock::time_point after = now();
  const serve::OcspStaple staple = fetch(responder.chain("revoked.test"));
  CHECK(staple.status == Status::Revoked);
  CHECK_FALSE(staple.der.empty());
  REQUIRE(staple.revoked_at);
  // `openssl ca -revoke` ran while the fixture was built and records whole seconds.
  CHECK(*staple.revoked_at >= before - 1s);
  CHECK(*staple.revoked_at <= after);
  CHECK_FALSE(serve::ocsp_stapleable(staple, now()));
  CHECK_THAT(openssl_verdict(staple.der, responder, "revoked.test"), Contains(": revoked"));
}

TEST_CASE("a stored response parses again to the same staple", "[serve][ocsp]") {
  OcspResponder responder;
  const pki::CertificateChain chain = responder.chain("good.test");
  const serve::OcspStaple fetched = fetch(chain);
  const serve::OcspStaple parsed = serve::parse_ocsp_staple(fetched.der, chain, now() + 10min);
  CHECK(parsed.status == Status::Good);
  CHECK(parsed.der == fetched.der);
  CHECK(parsed.this_update == fetched.this_update);
  CHECK(parsed.next_update == fetched.next_update);
  CHECK_FALSE(parsed.revoked_at);
  CHECK(parsed.responder_url == responder.url());  // the leaf's, as the response does not say

  // The same CA's answer about another of its certificates.
  CHECK(parse_error(fetched.der, responder.chain("revoked.test"), now()) ==
        "OCSP response: no status for this certificate");

  CHECK_THAT(parse_error("", chain, now()), Contains("not a DER OCSP response"));
  CHECK_THAT(parse_error(fetched.der.substr(0, fetched.der.size() - 1), chain, now()),
             Contains("not a DER OCSP response"));
}

TEST_CASE("a response past nextUpdate or too far in the future does not parse", "[serve][ocsp]") {
  OcspResponder responder;
  const pki::CertificateChain chain = responder.chain("good.test");
  const serve::OcspStaple staple = fetch(chain);

  // At nextUpdate itself the response still parses, but is no longer stapled.
  const serve::OcspStaple last_moment =
      serve::parse_ocsp_staple(staple.der, chain, staple.next_update);
  CHECK_FALSE(serve::ocsp_stapleable(last_moment, staple.next_update));
  CHECK_THAT(parse_error(staple.der, chain, staple.next_update + 1s),
             Contains("OCSP response: expired (nextUpdate "));
  // Five minutes of clock skew are allowed; the CA is valid from a day ago, so only thisUpdate
  // decides.
  CHECK(parse_error(staple.der, chain, staple.this_update - 4min).empty());
  CHECK_THAT(parse_error(staple.der, chain, staple.this_update - 6min),
             Contains("OCSP response: not valid yet (thisUpdate "));
}

TEST_CASE("a response is refused when the chain's issuer is another CA", "[serve][ocsp]") {
  OcspResponder responder;
  const serve::OcspStaple staple = fetch(responder.chain("good.test"));

  TempDir dir;
  pki::FileStorage storage{dir.path()};
  const pki::LocalCa other_ca = pki::LocalCa::open(storage, pki::CaOptions{});
  pki::CertificateChain wrong_chain = responder.chain("good.test");
  wrong_chain[1] = pki::share_certificate(other_ca.intermediate());
  CHECK_THAT(parse_error(staple.der, wrong_chain, now()), Contains("did not issue the leaf"));
  CHECK_THAT(fetch_error(wrong_chain), Contains("did not issue the leaf"));

  pki::CertificateChain leaf_only = responder.chain("good.test");
  leaf_only.pop_back();
  CHECK_THAT(parse_error(staple.der, leaf_only, now()), Contains("no issuer certificate"));
}

TEST_CASE("responses signed by neither the issuer nor a responder it delegated are refused",
          "[serve][ocsp]") {
  const OcspSigner signer = GENERATE(OcspSigner::OtherCa, OcspSigner::Undelegated);
  OcspResponderOptions options;
  options.signer = signer;
  OcspResponder responder(options);
  const std::string error = fetch_error(responder.chain("good.test"));
  CHECK_THAT(error, Contains("OCSP " + responder.url() + ": signature does not verify"));
  if (signer == OcspSigner::Undelegated) CHECK_THAT(error, Contains("missing ocspsigning usage"));
}

TEST_CASE("a delegated responder's response is stapled no longer than its certificate lives",
          "[serve][ocsp]") {
  OcspResponderOptions options;
  options.signer = OcspSigner::Delegated;
  options.signer_lifetime = std::chrono::days(1);
  options.next_update = 3 * 24h;
  OcspResponder responder(options);
  const serve::OcspStaple staple = fetch(responder.chain("good.test"));
  CHECK(staple.status == Status::Good);
  const pki::CertificateChain signer = pki::certificates_from_pem(
      acmetool::test::read_text(responder.signer_file()), "responder certificate");
  CHECK(staple.next_update == pki::describe_certificate(*signer[0]).not_after);
  CHECK(staple.next_update - staple.this_update < 25h);
}

TEST_CASE("a response without nextUpdate is taken to be valid for 7 days", "[serve][ocsp]") {
  OcspResponderOptions options;
  options.next_update = 0min;
  OcspResponder responder(options);
  const serve::OcspStaple staple = fetch(responder.chain("good.test"));
  CHECK(staple.status == Status::Good);
  CHECK(staple.next_update == staple.this_update + std::chrono::days(7));
  CHECK(serve::ocsp_refresh_at(staple) == staple.this_update + 84h);
}

TEST_CASE("a certificate without an OCSP URL has nothing to staple", "[serve][ocsp]") {
  OcspResponderOptions options;
  options.leaves = {{.name = "no-aia.test", .with_ocsp_url = false}};
  OcspResponder responder(options);
  const pki::CertificateChain chain = responder.chain("no-aia.test");
  CHECK(serve::ocsp_responder_urls(*chain[0]).empty());
  CHECK(fetch_error(chain) == "certificate has no OCSP responder");
}

TEST_CASE("a responder that is down fails the fetch with the transport's reason", "[serve][ocsp]") {
  OcspResponder responder;
  const pki::CertificateChain chain = responder.chain("good.test");
  responder.stop();
  const std::string error = fetch_error(chain);
  CHECK_THAT(error, Contains("OCSP POST " + responder.url()));
  CHECK_THAT(error, Contains("Couldn't connect to server"));
}

TEST_CASE("requests are POSTed with a SHA-1 CertID and no nonce, and refusals name the reason",
          "[serve][ocsp]") {
  // tryLater (RFC 6960 §4.2.1): OCSPResponse { responseStatus 3 } with no responseBytes.
  const std::string try_later("\x30\x03\x0a\x01\x03", 5);
  std::vector<acmetool::test::CannedResponse> answers = {
      {200, try_later, "application/ocsp-response"},
      {500, "oops", "text/plain"},
      {200, "<html>not OCSP</html>", "text/html"},
  };
  size_t served = 0;  // touched only by the server's thread
  acmetool::test::TinyHttpServer fake_responder(
      [&](const acmetool::test::RecordedRequest&) { return answers.at(served++); });
  OcspResponderOptions options;
  options.leaves = {{.name = "elsewhere.test", .ocsp_url = fake_responder.url() + "/ocsp"}};
  OcspResponder responder(options);
  const pki::CertificateChain chain = responder.chain("elsewhere.test");
  const std::string url = fake_responder.url() + "/ocsp";

  CHECK(fetch_error(chain) == "OCSP " + url + ": responder said tryLater");
  CHECK(fetch_error(chain) == "OCSP " + url + ": responder answered HTTP 500");
  CHECK_THAT(fetch_error(chain), Contains("OCSP " + url + ": not a DER OCSP response"));

  const acmetool::test::RecordedRequest request = fake_responder.requests().at(0);
  CHECK(request.method == "POST");
  CHECK(request.target == "/ocsp");
  CHECK(request.header("content-type") == "application/ocsp-request");
  TempDir dir("acmetool-ocsp-request");
  acmetool::test::write_file(dir.path() / "request.der", request.body);
  const auto text = acmetool::test::run_command(
      {"openssl", "ocsp", "-reqin", dir.path() / "request.der", "-req_text"});
  std::string serial = pki::describe_certificate(*chain[0]).serial_hex;
  std::transform(serial.begin(), serial.end(), serial.begin(),
                 [](unsigned char c) { return std::toupper(c); });
  CHECK_THAT(text.out, Contains("Hash Algorithm: sha1"));
  CHECK_THAT(text.out, Contains("Serial Number: " + serial));
  CHECK_THAT(text.out, !Contains("Nonce"));
}

TEST_CASE("staples are stapleable only while good and before nextUpdate", "[serve][ocsp]") {
  const system_clock::time_point t0 = system_clock::from_time_t(1'800'000'000);
  struct Case {
    Status status;
    system_clock::duration at;  // after this_update
    bool stapleable;
  };
  const Case cases[] = {
      {Status::Good, 0s, true},    {Status::Good, 95h, true},    {Status::Good, 96h, false},
      {Status::Good, 200h, false}, {Status::Revoked, 1h, false}, {Status::Unknown, 1h, false},
  };
  for (const Case& c : cases) {
    serve::OcspStaple staple;
    staple.status = c.status;
    staple.this_update = t0;
    staple.next_update = t0 + 96h;
    INFO("status " << static_cast<int>(c.status) << " at +"
                   << std::chrono::duration_cast<std::chrono::hours>(c.at).count() << "h");
    CHECK(serve::ocsp_stapleable(staple, t0 + c.at) == c.stapleable);
    CHECK(serve::ocsp_refresh_at(staple) == t0 + 48h);
  }
}

TEST_CASE("the storage key is ocsp/<safe name>-<leaf hash> and changes with the certificate",
          "[serve][ocsp]") {
  TempDir dir;
  pki::FileStorage storage{dir.path()};
  const pki::LocalCa ca = pki::LocalCa::open(storage, pki::CaOptions{});
  const pki::IssuedLeaf first = ca.issue({.names = {"example.com"}});
  const pki::IssuedLeaf renewed = ca.issue({.names = {"example.com"}});
  const std::string hash =
      pki::describe_certificate(*first.chain[0]).sha256_fingerprint.substr(0, 16);
  const struct {
    const char* name;
    std::string key;
  } cases[] = {
      {"example.com", "ocsp/example.com-" + hash},
      {"*.Example.COM", "ocsp/wildcard_.example.com-" + hash},
      {"", "ocsp/" + hash},
  };
  for (const auto& c : cases) CHECK(serve::ocsp_storage_key(c.name, *first.chain[0]) == c.key);
  CHECK(serve::ocsp_storage_key("example.com", *renewed.chain[0]) !=
        serve::ocsp_storage_key("example.com", *first.chain[0]));
}
