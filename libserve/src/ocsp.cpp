#include "acmetool/serve/ocsp.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <ctime>

#include "acmetool/acme/http.h"
#include "acmetool/pki/error.h"
#include "acmetool/pki/storage_keys.h"
#include "acmetool/serve/error.h"

namespace acmetool::serve {
namespace {

using std::chrono::system_clock;

using OcspRequestPtr = std::unique_ptr<OCSP_REQUEST, pki::CFree<&OCSP_REQUEST_free>>;
using OcspResponsePtr = std::unique_ptr<OCSP_RESPONSE, pki::CFree<&OCSP_RESPONSE_free>>;
using OcspBasicPtr = std::unique_ptr<OCSP_BASICRESP, pki::CFree<&OCSP_BASICRESP_free>>;
using OcspCertIdPtr = std::unique_ptr<OCSP_CERTID, pki::CFree<&OCSP_CERTID_free>>;
using StringStackPtr = std::unique_ptr<STACK_OF(OPENSSL_STRING), pki::CFree<&X509_email_free>>;

constexpr std::chrono::seconds kRequestTimeout{10};
// RFC 6960 §4.2.2.1 leaves the tolerance to the client; OpenSSL's `ocsp -validity_period`
// defaults to 5 minutes too.
constexpr std::chrono::minutes kClockSkew{5};
constexpr std::chrono::days kValidityWithoutNextUpdate{7};

// The reasons OpenSSL queued, with the detail it attaches ("certificate verify error (Verify
// error: self-signed certificate)"), which pki::CryptoError leaves out. Empties the queue.
std::string drain_openssl_reasons() {
  std::string reasons;
  const char* data = nullptr;
  int flags = 0;
  while (const unsigned long code = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags)) {
    const char* reason = ERR_reason_error_string(code);
    if (!reasons.empty()) reasons += "; ";
    reasons += reason ? reason : "unknown OpenSSL error";
    if (data && *data && (flags & ERR_TXT_STRING)) reasons += std::string(" (") + data + ")";
  }
  return reasons;
}

[[noreturn]] void fail_openssl(const std::string& what) {
  const std::string reasons = drain_openssl_reasons();
  throw Error(reasons.empty() ? what : what + ": " + reasons);
}

std::string format_utc(system_clock::time_point t) {
  const std::time_t seconds = system_clock::to_time_t(t);
  std::tm parts{};
  char text[32];
  gmtime_r(&seconds, &parts);
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text;
}

// RFC 6960 §4.2.1 OCSPResponseStatus, spelt as the ASN.1 module does.
std::string response_status_name(int status) {
  switch (status) {
    case OCSP_RESPONSE_STATUS_MALFORMEDREQUEST:
      return "malformedRequest";
    case OCSP_RESPONSE_STATUS_INTERNALERROR:
      return "internalError";
    case OCSP_RESPONSE_STATUS_TRYLATER:
      return "tryLater";
    case OCSP_RESPONSE_STATUS_SIGREQUIRED:
      return "sigRequired";
    case OCSP_RESPONSE_STATUS_UNAUTHORIZED:
      return "unauthorized";
    default:
      return "status " + std::to_string(status);
  }
}

// The leaf's CertID as RFC 6960 §4.1.1 defines it, with SHA-1: responders (Let's Encrypt's
// among them) index their answers by SHA-1 CertIDs only.
OcspCertIdPtr leaf_cert_id(const pki::CertificateChain& chain) {
  if (chain.size() < 2) throw Error("the chain has no issuer certificate after the leaf");
  if (X509_check_issued(chain[1].get(), chain[0].get()) != X509_V_OK) {
    throw Error("the chain's second certificate did not issue the leaf");
  }
  OcspCertIdPtr id(OCSP_cert_to_id(EVP_sha1(), chain[0].get(), chain[1].get()));
  if (!id) fail_openssl("computing the leaf's OCSP CertID");
  return id;
}

std::string encode_request(const OCSP_CERTID& id) {
  OcspRequestPtr request(OCSP_REQUEST_new());
  OcspCertIdPtr request_id(OCSP_CERTID_dup(&id));
  if (!request || !request_id || !OCSP_request_add0_id(request.get(), request_id.get())) {
    fail_openssl("building an OCSP request");
  }
  request_id.release();  // the request owns it now
  unsigned char* der = nullptr;
  const int length = i2d_OCSP_REQUEST(request.get(), &der);
  if (length < 0) fail_openssl("encoding an OCSP request");
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(length));
  OPENSSL_free(der);
  return out;
}

// The basic response inside a successful OCSPResponse (RFC 6960 §4.2.1).
OcspBasicPtr basic_response(std::string_view der) {
  const auto* begin = reinterpret_cast<const unsigned char*>(der.data());
  const unsigned char* end = begin;
  OcspResponsePtr response(d2i_OCSP_RESPONSE(nullptr, &end, static_cast<long>(der.size())));
  if (!response || end != begin + der.size()) fail_openssl("not a DER OCSP response");
  const int status = OCSP_response_status(response.get());
  if (status != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
    throw Error("responder said " + response_status_name(status));
  }
  OcspBasicPtr basic(OCSP_response_get1_basic(response.get()));
  if (!basic) fail_openssl("not a basic OCSP response");
  return basic;
}

// RFC 6960 §4.2.2.2: the signer must be the issuer itself, or a certificate the issuer signed
// with the id-kp-OCSPSigning extended key usage. The issuer (usually an intermediate) is the only
// trust anchor, hence PARTIAL_CHAIN. OCSP_NOEXPLICIT stops OpenSSL from also accepting any signer
// whose chain ends in a self-signed root it considers trusted for OCSP signing by default.
void verify_signature(OCSP_BASICRESP& basic, const X509& issuer, system_clock::time_point now) {
  pki::OsslPtr<X509_STORE> store(X509_STORE_new());
  pki::OsslPtr<stack_st_X509> signer_candidates(sk_X509_new_null());
  if (!store || !signer_candidates ||
      !X509_STORE_add_cert(store.get(), const_cast<X509*>(&issuer))) {
    fail_openssl("building the OCSP trust store");
  }
  // A response signed by the issuer need not carry the issuer's certificate.
  if (!sk_X509_push(signer_candidates.get(), pki::share_certificate(issuer).release())) {
    fail_openssl("building the OCSP trust store");
  }
  X509_VERIFY_PARAM* param = X509_STORE_get0_param(store.get());
  X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
  X509_VERIFY_PARAM_set_time(param, system_clock::to_time_t(now));
  if (OCSP_basic_verify(&basic, signer_candidates.get(), store.get(), OCSP_NOEXPLICIT) != 1) {
    fail_openssl("signature does not verify");
  }
}

// The notAfter of a delegated responder's certificate; nullopt when the issuer signed itself.
std::optional<system_clock::time_point> delegated_signer_expiry(OCSP_BASICRESP& basic,
                                                                const X509& issuer) {
  X509* signer = nullptr;
  if (OCSP_resp_get0_signer(&basic, &signer, nullptr) != 1 || !signer) return std::nullopt;
  if (X509_cmp(signer, &issuer) == 0) return std::nullopt;
  return pki::from_asn1_time(*X509_get0_notAfter(signer));
}

OcspStaple::Status to_status(int cert_status) {
  switch (cert_status) {
    case V_OCSP_CERTSTATUS_GOOD:
      return OcspStaple::Status::Good;
    case V_OCSP_CERTSTATUS_REVOKED:
      return OcspStaple::Status::Revoked;
    default:
      return OcspStaple::Status::Unknown;
  }
}

// The single response about `id`, its times checked against `now`.
OcspStaple single_response(OCSP_BASICRESP& basic, OCSP_CERTID& id, system_clock::time_point now) {
  int cert_status = 0;
  ASN1_GENERALIZEDTIME* revoked_at = nullptr;
  ASN1_GENERALIZEDTIME* this_update = nullptr;
  ASN1_GENERALIZEDTIME* next_update = nullptr;
  if (OCSP_resp_find_status(&basic, &id, &cert_status, nullptr, &revoked_at, &this_update,
                            &next_update) != 1) {
    throw Error("no status for this certificate");
  }
  OcspStaple staple;
  staple.status = to_status(cert_status);
  staple.this_update = pki::from_asn1_time(*this_update);
  staple.next_update = next_update ? pki::from_asn1_time(*next_update)
                                   : staple.this_update + kValidityWithoutNextUpdate;
  if (staple.status == OcspStaple::Status::Revoked && revoked_at) {
    staple.revoked_at = pki::from_asn1_time(*revoked_at);
  }
  if (staple.this_update > now + kClockSkew) {
    throw Error("not valid yet (thisUpdate " + format_utc(staple.this_update) + ")");
  }
  if (staple.next_update < now) {
    throw Error("expired (nextUpdate " + format_utc(staple.next_update) + ")");
  }
  return staple;
}

// Everything parse_ocsp_staple() promises, with bare reasons; callers add the context.
OcspStaple check_response(std::string_view der, const pki::CertificateChain& chain,
                          system_clock::time_point now) {
  const OcspCertIdPtr id = leaf_cert_id(chain);
  const OcspBasicPtr basic = basic_response(der);
  verify_signature(*basic, *chain[1], now);
  OcspStaple staple = single_response(*basic, *id, now);
  if (const auto signer_expiry = delegated_signer_expiry(*basic, *chain[1])) {
    staple.next_update = std::min(staple.next_update, *signer_expiry);
  }
  staple.der = der;
  return staple;
}

}  // namespace

std::vector<std::string> ocsp_responder_urls(const X509& leaf) {
  std::vector<std::string> urls;
  // X509_get1_ocsp only reads the certificate; it is not const-correct.
  const StringStackPtr list(X509_get1_ocsp(const_cast<X509*>(&leaf)));
  for (int i = 0; list && i < sk_OPENSSL_STRING_num(list.get()); ++i) {
    urls.emplace_back(sk_OPENSSL_STRING_value(list.get(), i));
  }
  return urls;
}

OcspStaple fetch_ocsp_staple(const pki::CertificateChain& chain, acme::HttpClient& http,
                             system_clock::time_point now) {
  if (chain.empty()) throw Error("fetching an OCSP response: the chain is empty");
  const std::vector<std::string> urls = ocsp_responder_urls(*chain[0]);
  if (urls.empty()) throw Error("certificate has no OCSP responder");
  const std::string& url = urls.front();
  try {
    const OcspCertIdPtr id = leaf_cert_id(chain);
    // RFC 6960 Appendix A.1: a POST carries the DER request with this media type.
    const acme::HttpResponse response = http.send(acme::HttpRequest{
        .method = "POST",
        .url = url,
        .headers = {{"content-type", "application/ocsp-request"},
                    {"accept", "application/ocsp-response"}},
        .body = encode_request(*id),
        .timeout = kRequestTimeout,
    });
    if (response.status != 200) {
      throw Error("responder answered HTTP " + std::to_string(response.status));
    }
    OcspStaple staple = check_response(response.body, chain, now);
    staple.responder_url = url;
    return staple;
  } catch (const acme::Error& e) {
    // HttpError's text already names the method and URL.
    throw Error(std::string("OCSP ") + e.what());
  } catch (const Error& e) {
    throw Error("OCSP " + url + ": " + e.what());
  } catch (const pki::Error& e) {
    throw Error("OCSP " + url + ": " + e.what());
  }
}

OcspStaple parse_ocsp_staple(std::string_view der, const pki::CertificateChain& chain,
                             system_clock::time_point now) {
  try {
    OcspStaple staple = check_response(der, chain, now);
    const std::vector<std::string> urls = ocsp_responder_urls(*chain[0]);
    if (!urls.empty()) staple.responder_url = urls.front();
    return staple;
  } catch (const Error& e) {
    throw Error(std::string("OCSP response: ") + e.what());
  } catch (const pki::Error& e) {
    throw Error(std::string("OCSP response: ") + e.what());
  }
}

system_clock::time_point ocsp_refresh_at(const OcspStaple& staple) {
  return staple.this_update + (staple.next_update - staple.this_update) / 2;
}

bool ocsp_stapleable(const OcspStaple& staple, system_clock::time_point now) {
  return staple.status == OcspStaple::Status::Good && now < staple.next_update;
}

std::string ocsp_storage_key(std::string_view name, const X509& leaf) {
  static const char kHex[] = "0123456789abcdef";
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_length = 0;
  if (!X509_digest(&leaf, EVP_sha256(), digest, &digest_length)) {
    fail_openssl("hashing a certificate");
  }
  std::string hash;
  for (unsigned int i = 0; i < 8; ++i) {
    hash += kHex[digest[i] >> 4];
    hash += kHex[digest[i] & 0xf];
  }
  const std::string safe_name = pki::keys::safe(name);
  return safe_name.empty() ? "ocsp/" + hash : "ocsp/" + safe_name + "-" + hash;
}

}  // namespace acmetool::serve
