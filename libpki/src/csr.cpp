#include "acmetool/pki/csr.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acmetool/pki/error.h"
#include "san_internal.h"

namespace acmetool::pki {

namespace {

// RFC 7633 TLS Feature extension with status_request (5): DER SEQUENCE { INTEGER 5 }.
OsslPtr<X509_EXTENSION> make_must_staple() {
  static const unsigned char kStatusRequest[] = {0x30, 0x03, 0x02, 0x01, 0x05};
  OsslPtr<ASN1_OCTET_STRING> value(ASN1_OCTET_STRING_new());
  if (!value || !ASN1_OCTET_STRING_set(value.get(), kStatusRequest, sizeof kStatusRequest)) {
    throw CryptoError("encoding the TLS Feature extension");
  }
  OsslPtr<X509_EXTENSION> extension(X509_EXTENSION_create_by_NID(nullptr, NID_tlsfeature, 0, value.get()));
  if (!extension) throw CryptoError("encoding the TLS Feature extension");
  return extension;
}

const EVP_MD* digest_for(const EVP_PKEY& key) {
  // Ed25519 signs the message itself; every other key type signs a SHA-256 digest.
  return EVP_PKEY_get_base_id(&key) == EVP_PKEY_ED25519 ? nullptr : EVP_sha256();
}

}  // namespace

std::string create_csr_der(const EVP_PKEY& key, const CsrRequest& request) {
  OsslPtr<X509_REQ> csr(X509_REQ_new());
  if (!csr || !X509_REQ_set_version(csr.get(), X509_REQ_VERSION_1) ||
      !X509_REQ_set_pubkey(csr.get(), const_cast<EVP_PKEY*>(&key))) {
    throw CryptoError("creating a CSR");
  }
  OsslPtr<stack_st_X509_EXTENSION> extensions(sk_X509_EXTENSION_new_null());
  if (!extensions) throw CryptoError("creating a CSR");
  auto add = [&](OsslPtr<X509_EXTENSION> extension) {
    if (!sk_X509_EXTENSION_push(extensions.get(), extension.get())) throw CryptoError("creating a CSR");
    extension.release();
  };
  add(make_subject_alt_name(request.names, false));
  if (request.must_staple) add(make_must_staple());
  if (!X509_REQ_add_extensions(csr.get(), extensions.get())) throw CryptoError("adding extensions to a CSR");
  if (X509_REQ_sign(csr.get(), const_cast<EVP_PKEY*>(&key), digest_for(key)) <= 0) {
    throw CryptoError("signing a CSR for " + request.names.front());
  }
  unsigned char* der = nullptr;
  const int length = i2d_X509_REQ(csr.get(), &der);
  if (length < 0) throw CryptoError("encoding a CSR");
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(length));
  OPENSSL_free(der);
  return out;
}

std::vector<std::string> csr_names(const std::string& der) {
  const unsigned char* cursor = reinterpret_cast<const unsigned char*>(der.data());
  OsslPtr<X509_REQ> csr(d2i_X509_REQ(nullptr, &cursor, static_cast<long>(der.size())));
  if (!csr) throw CryptoError("reading a CSR");
  EVP_PKEY* key = X509_REQ_get0_pubkey(csr.get());
  if (!key || X509_REQ_verify(csr.get(), key) != 1) throw CryptoError("checking a CSR's signature");

  std::vector<std::string> dns_names, ip_addresses;
  OsslPtr<stack_st_X509_EXTENSION> extensions(X509_REQ_get_extensions(csr.get()));
  if (extensions) {
    if (auto* san = static_cast<GENERAL_NAMES*>(
            X509V3_get_d2i(extensions.get(), NID_subject_alt_name, nullptr, nullptr))) {
      split_subject_alt_names(san, dns_names, ip_addresses);
      GENERAL_NAMES_free(san);
    }
  }
  dns_names.insert(dns_names.end(), ip_addresses.begin(), ip_addresses.end());
  return dns_names;
}

}  // namespace acmetool::pki
