// Builds and signs X.509 certificates: the local CA's root, intermediates and leaves.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "acmetool/pki/ossl.h"

namespace acmetool::pki {

struct CertificateSpec {
  std::string subject_cn;                   ///< empty: empty subject (then the SAN is critical)
  std::vector<std::string> names;           ///< subjectAltName entries; none for CA certificates
  bool is_ca = false;
  int path_length = -1;                     ///< basicConstraints pathlen for CAs; -1 leaves it out
  std::chrono::system_clock::time_point not_before;
  std::chrono::system_clock::time_point not_after;
};

/// A v3 certificate for `subject_key`, signed by `signing_key` on behalf of `issuer` (nullptr:
/// self-signed). CAs get critical basicConstraints and keyUsage keyCertSign+cRLSign; leaves get
/// keyUsage digitalSignature (plus keyEncipherment for RSA) and extendedKeyUsage serverAuth and
/// clientAuth. Every certificate gets a 128-bit random serial, subjectKeyIdentifier and (when
/// issued by another) authorityKeyIdentifier. Throws CryptoError.
X509Ptr build_certificate(const CertificateSpec& spec, const EVP_PKEY& subject_key, const X509* issuer,
                          const EVP_PKEY& signing_key);

}  // namespace acmetool::pki
