// Certificate signing requests, as ACME's finalize step (RFC 8555 §7.4) wants them.
#pragma once

#include <string>
#include <vector>

#include "acmetool/pki/ossl.h"

namespace acmetool::pki {

struct CsrRequest {
  /// DNS names and IP addresses ("example.com", "*.example.com", "192.0.2.1", "2001:db8::1"), as
  /// A-labels. An entry that parses as an IP address becomes an iPAddress SAN, the rest dNSName.
  std::vector<std::string> names;
  /// Adds the TLS Feature extension asking for OCSP stapling (RFC 7633).
  bool must_staple = false;
};

/// A CSR signed by `key`, DER-encoded. The subject is empty (RFC 8555 puts the names in the
/// subjectAltName only); the SAN extension holds every name. Throws pki::Error for an empty name
/// list and CryptoError when OpenSSL fails.
std::string create_csr_der(const EVP_PKEY& key, const CsrRequest& request);

/// The names (DNS then IP, as strings) a DER CSR asks for, after checking its self-signature.
/// Throws CryptoError for a malformed or badly signed CSR.
std::vector<std::string> csr_names(const std::string& der);

}  // namespace acmetool::pki
