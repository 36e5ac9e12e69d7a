#include "acmetool/pki/ossl.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

namespace acmetool::pki {

void OsslFree::operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
void OsslFree::operator()(EVP_PKEY_CTX* p) const noexcept { EVP_PKEY_CTX_free(p); }
void OsslFree::operator()(X509* p) const noexcept { X509_free(p); }
void OsslFree::operator()(X509_REQ* p) const noexcept { X509_REQ_free(p); }
void OsslFree::operator()(X509_STORE* p) const noexcept { X509_STORE_free(p); }
void OsslFree::operator()(X509_STORE_CTX* p) const noexcept { X509_STORE_CTX_free(p); }
void OsslFree::operator()(X509_NAME* p) const noexcept { X509_NAME_free(p); }
void OsslFree::operator()(X509_EXTENSION* p) const noexcept { X509_EXTENSION_free(p); }
void OsslFree::operator()(BIO* p) const noexcept { BIO_free_all(p); }
void OsslFree::operator()(BIGNUM* p) const noexcept { BN_free(p); }
void OsslFree::operator()(ASN1_STRING* p) const noexcept { ASN1_STRING_free(p); }
void OsslFree::operator()(ASN1_OBJECT* p) const noexcept { ASN1_OBJECT_free(p); }
void OsslFree::operator()(PKCS12* p) const noexcept { PKCS12_free(p); }
void OsslFree::operator()(stack_st_X509* p) const noexcept { sk_X509_pop_free(p, X509_free); }
void OsslFree::operator()(stack_st_X509_EXTENSION* p) const noexcept {
  sk_X509_EXTENSION_pop_free(p, X509_EXTENSION_free);
}

SecretString& SecretString::operator=(SecretString&& other) noexcept {
  if (this != &other) {
    OPENSSL_cleanse(bytes_.data(), bytes_.size());
    bytes_ = std::move(other.bytes_);
    other.bytes_.clear();
  }
  return *this;
}

SecretString::~SecretString() { OPENSSL_cleanse(bytes_.data(), bytes_.size()); }

}  // namespace acmetool::pki
