// X.509 certificates: PEM bundles, what a certificate says, chain verification, PKCS#12.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "acmetool/pki/ossl.h"

namespace acmetool::pki {

/// A chain as stored and served: leaf first, then intermediates (roots usually omitted).
using CertificateChain = std::vector<X509Ptr>;

/// What a certificate says, in plain values.
struct CertificateInfo {
  std::string subject_cn;                   ///< empty when the subject has no CN
  std::string issuer_cn;
  std::vector<std::string> dns_names;       ///< subjectAltName dNSName entries, in order
  std::vector<std::string> ip_addresses;    ///< subjectAltName iPAddress entries ("10.0.0.1", "::1")
  std::string serial_hex;                   ///< lower-case hex, no leading zeros
  std::string sha256_fingerprint;           ///< lower-case hex of SHA-256 over the DER, 64 digits
  std::chrono::system_clock::time_point not_before;
  std::chrono::system_clock::time_point not_after;
  bool is_ca = false;                       ///< basicConstraints CA:TRUE
  std::string key_type;                     ///< "p256", "rsa2048"... or "unknown"
};

/// Every certificate in a PEM bundle, in order. `what` names the source for errors. Throws
/// CryptoError when the text holds no certificate or a damaged one.
CertificateChain certificates_from_pem(std::string_view pem, std::string_view what);

/// PEM of one certificate, and of a chain (concatenated, in order).
std::string certificate_to_pem(const X509& cert);
std::string chain_to_pem(const CertificateChain& chain);

/// DER encoding (for ACME, PKCS#12 and `ca export --format der`).
std::string certificate_to_der(const X509& cert);

/// Decodes the certificate's fields. Throws CryptoError on a malformed certificate.
CertificateInfo describe_certificate(const X509& cert);

/// A new reference to the same certificate (X509_up_ref).
X509Ptr share_certificate(const X509& cert);

/// Checks that `leaf` chains through `intermediates` to one of `roots` at time `at`, for TLS server
/// use. Returns nullopt when it does, else the verifier's one-line reason ("certificate has expired").
std::optional<std::string> verify_chain(const X509& leaf, const CertificateChain& intermediates,
                                        const CertificateChain& roots,
                                        std::chrono::system_clock::time_point at);

/// A PKCS#12 file holding only `certs` as trusted certificates (no key), protected with `password`
/// (Java's keytool wants one; "changeit" is its convention). Throws CryptoError.
std::string certificates_to_pkcs12(const CertificateChain& certs, const std::string& friendly_name,
                                   const std::string& password);

/// Seconds since the epoch as X.509 uses them (whole seconds, UTC).
std::chrono::system_clock::time_point from_asn1_time(const ASN1_TIME& t);

}  // namespace acmetool::pki
