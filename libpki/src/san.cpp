#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "acmetool/pki/error.h"
#include "san_internal.h"

namespace acmetool::pki {
namespace {

std::string ip_to_string(const ASN1_OCTET_STRING* ip) {
  char text[INET6_ADDRSTRLEN] = {};
  const int length = ASN1_STRING_length(ip);
  const int family = length == 4 ? AF_INET : length == 16 ? AF_INET6 : -1;
  if (family < 0 || !inet_ntop(family, ASN1_STRING_get0_data(ip), text, sizeof text)) return "";
  return text;
}

}  // namespace

OsslPtr<X509_EXTENSION> make_subject_alt_name(const std::vector<std::string>& names, bool critical) {
  if (names.empty()) throw Error("a certificate needs at least one name");
  GENERAL_NAMES* general_names = sk_GENERAL_NAME_new_null();
  if (!general_names) throw CryptoError("allocating subjectAltName");
  struct Free {
    GENERAL_NAMES* p;
    ~Free() { GENERAL_NAMES_free(p); }
  } owner{general_names};

  for (const std::string& name : names) {
    GENERAL_NAME* entry = nullptr;
    if (ASN1_OCTET_STRING* ip = a2i_IPADDRESS(name.c_str())) {
      entry = GENERAL_NAME_new();
      if (entry) GENERAL_NAME_set0_value(entry, GEN_IPADD, ip);
      else ASN1_OCTET_STRING_free(ip);
    } else {
      ERR_clear_error();  // "not an IP address" is an answer, not a failure
      ASN1_IA5STRING* dns = ASN1_IA5STRING_new();
      if (dns && ASN1_STRING_set(dns, name.data(), static_cast<int>(name.size()))) {
        entry = GENERAL_NAME_new();
        if (entry) GENERAL_NAME_set0_value(entry, GEN_DNS, dns);
      }
      if (!entry) ASN1_IA5STRING_free(dns);
    }
    if (!entry || !sk_GENERAL_NAME_push(general_names, entry)) {
      GENERAL_NAME_free(entry);
      throw CryptoError("adding " + name + " to subjectAltName");
    }
  }
  OsslPtr<X509_EXTENSION> extension(X509V3_EXT_i2d(NID_subject_alt_name, critical ? 1 : 0, general_names));
  if (!extension) throw CryptoError("encoding subjectAltName");
  return extension;
}

void split_subject_alt_names(const void* general_names, std::vector<std::string>& dns_names,
                             std::vector<std::string>& ip_addresses) {
  const auto* names = static_cast<const GENERAL_NAMES*>(general_names);
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type == GEN_DNS) {
      const ASN1_IA5STRING* dns = name->d.dNSName;
      dns_names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                             static_cast<size_t>(ASN1_STRING_length(dns)));
    } else if (name->type == GEN_IPADD) {
      ip_addresses.push_back(ip_to_string(name->d.iPAddress));
    }
  }
}

}  // namespace acmetool::pki
