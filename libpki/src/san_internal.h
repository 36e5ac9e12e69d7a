// subjectAltName construction shared by CSRs and certificates.
#pragma once

#include <string>
#include <vector>

#include "acmetool/pki/ossl.h"

namespace acmetool::pki {

/// A subjectAltName extension with an iPAddress entry for each name that parses as an IP address
/// and a dNSName entry for the rest. Throws pki::Error when `names` is empty.
OsslPtr<X509_EXTENSION> make_subject_alt_name(const std::vector<std::string>& names, bool critical);

/// Appends the dNSName and iPAddress entries of a decoded subjectAltName (a GENERAL_NAMES, passed
/// as void* to keep <openssl/x509v3.h> out of this header) to `dns_names` and `ip_addresses`.
void split_subject_alt_names(const void* general_names, std::vector<std::string>& dns_names,
                             std::vector<std::string>& ip_addresses);

}  // namespace acmetool::pki
