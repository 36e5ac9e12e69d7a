// Owners for OpenSSL objects (STYLE.md §5). One deleter type frees every kind, so headers that
// hold these pointers need only <openssl/types.h>, not the OpenSSL headers that define the frees.
#pragma once

#include <openssl/types.h>

#include <memory>
#include <string>

// Types <openssl/types.h> does not declare, under their struct names.
struct stack_st_X509;            // STACK_OF(X509)
struct stack_st_X509_EXTENSION;  // STACK_OF(X509_EXTENSION)
struct X509_req_st;              // X509_REQ
struct X509_extension_st;        // X509_EXTENSION
struct PKCS12_st;                // PKCS12

namespace acmetool::pki {

/// Frees whatever OpenSSL object it is given, with the matching *_free function.
struct OsslFree {
  void operator()(EVP_PKEY* p) const noexcept;
  void operator()(EVP_PKEY_CTX* p) const noexcept;
  void operator()(X509* p) const noexcept;
  void operator()(X509_req_st* p) const noexcept;
  void operator()(X509_STORE* p) const noexcept;
  void operator()(X509_STORE_CTX* p) const noexcept;
  void operator()(X509_NAME* p) const noexcept;
  void operator()(X509_extension_st* p) const noexcept;
  void operator()(BIO* p) const noexcept;
  void operator()(BIGNUM* p) const noexcept;
  void operator()(ASN1_STRING* p) const noexcept;  ///< also ASN1_TIME, ASN1_OCTET_STRING...
  void operator()(PKCS12_st* p) const noexcept;
  void operator()(ASN1_OBJECT* p) const noexcept;
  void operator()(stack_st_X509* p) const noexcept;            ///< frees the certificates too
  void operator()(stack_st_X509_EXTENSION* p) const noexcept;  ///< frees the extensions too
};

template <class T>
using OsslPtr = std::unique_ptr<T, OsslFree>;

/// A deleter calling `Free`, for C objects OsslFree does not cover (STYLE.md §5):
/// `std::unique_ptr<SSL_CTX, CFree<&SSL_CTX_free>>` is as small as a raw pointer.
template <auto Free>
struct CFree {
  template <class T>
  void operator()(T* p) const noexcept {
    Free(p);
  }
};

using PkeyPtr = OsslPtr<EVP_PKEY>;
using X509Ptr = OsslPtr<X509>;

/// A string holding secret bytes (a PEM private key): cleared with OPENSSL_cleanse when destroyed.
class SecretString {
 public:
  SecretString() = default;
  explicit SecretString(std::string bytes) : bytes_(std::move(bytes)) {}
  SecretString(SecretString&& other) noexcept : bytes_(std::move(other.bytes_)) { other.bytes_.clear(); }
  SecretString& operator=(SecretString&& other) noexcept;
  SecretString(const SecretString&) = delete;
  SecretString& operator=(const SecretString&) = delete;
  ~SecretString();

  const std::string& str() const noexcept { return bytes_; }

 private:
  std::string bytes_;
};

}  // namespace acmetool::pki
