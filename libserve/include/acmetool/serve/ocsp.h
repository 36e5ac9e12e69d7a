// OCSP stapling (issue 7): asking the issuer's responder whether a certificate is still good
// (RFC 6960), checking the answer, deciding when to ask again, and where to keep it. Every
// function is safe to call from several threads at once, given a separate HttpClient each.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "acmetool/pki/ossl.h"
#include "acmetool/pki/x509.h"

namespace acmetool::acme {
class HttpClient;
}  // namespace acmetool::acme

namespace acmetool::serve {

/// An OCSP response for one certificate, checked: successful, signed by the certificate's issuer
/// or by a responder the issuer delegated, about this certificate, and current when it was checked.
struct OcspStaple {
  enum class Status { Good, Revoked, Unknown };
  Status status = Status::Unknown;
  std::string der;  ///< the whole DER OCSPResponse, as stapled
  /// thisUpdate of the single response: when the responder knew the status to be correct.
  std::chrono::system_clock::time_point this_update;
  /// nextUpdate of the single response. A response without one (RFC 6960 allows it; the CA/B
  /// Forum's Baseline Requirements do not) is given this_update + 7 days, a typical validity of
  /// a CA's responses, so that it is refreshed after 3.5 days. When a delegated responder's
  /// certificate expires before next_update, its notAfter instead: a client cannot check the
  /// staple once its signer has expired.
  std::chrono::system_clock::time_point next_update;
  std::optional<std::chrono::system_clock::time_point> revoked_at;  ///< set when Revoked
  /// Where the response came from: the URL asked, or for parse_ocsp_staple() the leaf's first OCSP
  /// URL (empty when it has none), since a stored response does not record it.
  std::string responder_url;
};

/// The OCSP responder URLs in the leaf's Authority Information Access extension, in order. Empty
/// when it has none (as today's Let's Encrypt certificates): then there is nothing to staple.
std::vector<std::string> ocsp_responder_urls(const X509& leaf);

/// Asks the leaf's first responder about the leaf. `chain` is leaf first, then its issuer (the
/// issuer is required; further certificates are ignored). Builds an OCSP request with a SHA-1
/// CertID (what responders index by), without a nonce, sends it by HTTP POST (Content-Type
/// application/ocsp-request, 10 s timeout), and checks the answer as parse_ocsp_staple() does.
/// A Revoked or Unknown answer is returned, not thrown. Throws serve::Error with a one-line reason
/// on any failure: "certificate has no OCSP responder", "OCSP http://...: responder said
/// tryLater", "OCSP http://...: signature does not verify: ...", and for a transport failure
/// (acme::HttpError) "OCSP POST http://...: <curl's reason>".
OcspStaple fetch_ocsp_staple(const pki::CertificateChain& chain, acme::HttpClient& http,
                             std::chrono::system_clock::time_point now);

/// Checks a DER OCSPResponse (e.g. loaded from storage at start-up) against `chain` (leaf, then
/// issuer), like fetch_ocsp_staple() without the network: responseStatus successful; a basic
/// response whose signature verifies with the issuer's key, or with a responder certificate the
/// issuer signed that has the OCSPSigning extended key usage (RFC 6960 §4.2.2.2), valid at `now`;
/// a single response for the leaf's CertID; thisUpdate at most 5 minutes after `now` (clock skew);
/// nextUpdate not before `now`. An expired response therefore throws here rather than parsing
/// into a staple that ocsp_stapleable() refuses. Throws serve::Error ("OCSP response: <reason>").
OcspStaple parse_ocsp_staple(std::string_view der, const pki::CertificateChain& chain,
                             std::chrono::system_clock::time_point now);

/// When to fetch a fresh response: halfway between this_update and next_update (CertMagic's rule).
std::chrono::system_clock::time_point ocsp_refresh_at(const OcspStaple& staple);

/// Whether `staple` may be stapled at `now`: status Good and now < next_update. A Revoked or
/// Unknown response is never stapled.
bool ocsp_stapleable(const OcspStaple& staple, std::chrono::system_clock::time_point now);

/// The storage key for the cached response of a certificate served under `name`, in CertMagic's
/// "ocsp/" directory: "ocsp/<safe(name)>-<hex of the first 8 bytes of SHA-256 of the leaf's DER>",
/// e.g. "ocsp/wildcard_.example.com-0123456789abcdef"; "ocsp/<hex>" when `name` is empty. A new
/// certificate gets a new key, so a staple is never served for a certificate it does not cover.
/// Throws serve::Error when the leaf cannot be encoded.
std::string ocsp_storage_key(std::string_view name, const X509& leaf);

}  // namespace acmetool::serve
