#include "acmetool/pki/x509.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>

#include "acmetool/pki/error.h"
#include "acmetool/pki/key.h"
#include "bio_internal.h"
#include "san_internal.h"

namespace acmetool::pki {
namespace {

std::string to_hex(const unsigned char* bytes, size_t size) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    out += kHex[bytes[i] >> 4];
    out += kHex[bytes[i] & 0xf];
  }
  return out;
}

std::string common_name(const X509_NAME* name) {
  const int index = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (index < 0) return "";
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  unsigned char* utf8 = nullptr;
  const int length = ASN1_STRING_to_UTF8(&utf8, data);
  if (length < 0) return "";
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(length));
  OPENSSL_free(utf8);
  return out;
}

}  // namespace

std::chrono::system_clock::time_point from_asn1_time(const ASN1_TIME& t) {
  struct tm parts {};
  if (!ASN1_TIME_to_tm(&t, &parts)) throw CryptoError("reading a certificate time");
  return std::chrono::system_clock::from_time_t(timegm(&parts));
}

CertificateChain certificates_from_pem(std::string_view pem, std::string_view what) {
  ReadOnlyBio bio(pem);
  CertificateChain chain;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) chain.emplace_back(cert);
  // Reading stops with "no start line" at the end of the text; anything else is damage.
  const unsigned long last = ERR_peek_last_error();
  if (chain.empty() || (last != 0 && ERR_GET_REASON(last) != PEM_R_NO_START_LINE)) {
    throw CryptoError(std::string(what) + ": not a PEM certificate");
  }
  ERR_clear_error();
  return chain;
}

std::string certificate_to_pem(const X509& cert) {
  MemoryBio bio;
  if (!PEM_write_bio_X509(bio.get(), &cert)) throw CryptoError("encoding a certificate as PEM");
  return bio.take_contents();
}

std::string chain_to_pem(const CertificateChain& chain) {
  std::string out;
  for (const X509Ptr& cert : chain) out += certificate_to_pem(*cert);
  return out;
}

std::string certificate_to_der(const X509& cert) {
  unsigned char* der = nullptr;
  const int length = i2d_X509(&cert, &der);
  if (length < 0) throw CryptoError("encoding a certificate as DER");
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(length));
  OPENSSL_free(der);
  return out;
}

X509Ptr share_certificate(const X509& cert) {
  X509* mutable_cert = const_cast<X509*>(&cert);  // up_ref changes only the reference count
  if (!X509_up_ref(mutable_cert)) throw CryptoError("sharing a certificate");
  return X509Ptr(mutable_cert);
}

CertificateInfo describe_certificate(const X509& cert) {
  CertificateInfo info;
  info.subject_cn = common_name(X509_get_subject_name(&cert));
  info.issuer_cn = common_name(X509_get_issuer_name(&cert));
  if (auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(&cert, NID_subject_alt_name, nullptr, nullptr))) {
    split_subject_alt_names(names, info.dns_names, info.ip_addresses);
    GENERAL_NAMES_free(names);
  }

  OsslPtr<BIGNUM> serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(&cert), nullptr));
  if (!serial) throw CryptoError("reading a certificate serial number");
  char* hex = BN_bn2hex(serial.get());
  info.serial_hex = hex;
  OPENSSL_free(hex);
  for (char& c : info.serial_hex) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  // BN_bn2hex writes whole bytes ("07ab"); the header promises no leading zeros, as CAs print it.
  info.serial_hex.erase(0, std::min(info.serial_hex.find_first_not_of('0'), info.serial_hex.size() - 1));

  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_length = 0;
  if (!X509_digest(&cert, EVP_sha256(), digest, &digest_length)) throw CryptoError("fingerprinting a certificate");
  info.sha256_fingerprint = to_hex(digest, digest_length);

  info.not_before = from_asn1_time(*X509_get0_notBefore(&cert));
  info.not_after = from_asn1_time(*X509_get0_notAfter(&cert));
  info.is_ca = X509_check_ca(const_cast<X509*>(&cert)) > 0;
  const EVP_PKEY* key = X509_get0_pubkey(&cert);
  const auto type = key ? key_type_of(*key) : std::nullopt;
  info.key_type = type ? std::string(to_string(*type)) : "unknown";
  return info;
}

std::optional<std::string> verify_chain(const X509& leaf, const CertificateChain& intermediates,
                                        const CertificateChain& roots, std::chrono::system_clock::time_point at) {
  OsslPtr<X509_STORE> store(X509_STORE_new());
  OsslPtr<stack_st_X509> untrusted(sk_X509_new_null());
  OsslPtr<X509_STORE_CTX> ctx(X509_STORE_CTX_new());
  if (!store || !untrusted || !ctx) throw CryptoError("allocating a certificate verifier");
  for (const X509Ptr& root : roots) {
    if (!X509_STORE_add_cert(store.get(), root.get())) throw CryptoError("adding a trusted root");
  }
  for (const X509Ptr& cert : intermediates) {
    if (!sk_X509_push(untrusted.get(), share_certificate(*cert).release())) throw CryptoError("building a chain");
  }
  if (!X509_STORE_CTX_init(ctx.get(), store.get(), const_cast<X509*>(&leaf), untrusted.get())) {
    throw CryptoError("starting certificate verification");
  }
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER);
  X509_STORE_CTX_set_time(ctx.get(), 0, std::chrono::system_clock::to_time_t(at));
  if (X509_verify_cert(ctx.get()) == 1) return std::nullopt;
  ERR_clear_error();
  return X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
}

std::string certificates_to_pkcs12(const CertificateChain& certs, const std::string& friendly_name,
                                   const std::string& password) {
  // Java's keystore loads a certificate without a key only when its bag carries Oracle's
  // trusted-key-usage attribute (OpenSSL 3.2's `pkcs12 -jdktrust`), so the bags are built by hand.
  constexpr const char* kOracleTrustedKeyUsage = "2.16.840.1.113894.746875.1.1";
  OsslPtr<ASN1_OBJECT> any_usage(OBJ_txt2obj("2.5.29.37.0", 1));  // anyExtendedKeyUsage
  if (!any_usage) throw CryptoError("creating a PKCS#12 file");

  STACK_OF(PKCS12_SAFEBAG)* bags = nullptr;
  STACK_OF(PKCS7)* safes = nullptr;
  struct Free {
    STACK_OF(PKCS12_SAFEBAG)** bags;
    STACK_OF(PKCS7)** safes;
    ~Free() {
      sk_PKCS12_SAFEBAG_pop_free(*bags, PKCS12_SAFEBAG_free);
      sk_PKCS7_pop_free(*safes, PKCS7_free);
    }
  } owner{&bags, &safes};

  for (const X509Ptr& cert : certs) {
    PKCS12_SAFEBAG* bag = PKCS12_add_cert(&bags, cert.get());
    if (!bag || !PKCS12_add_friendlyname(bag, friendly_name.c_str(), -1) ||
        !PKCS12_add1_attr_by_txt(bag, kOracleTrustedKeyUsage, V_ASN1_OBJECT,
                                 reinterpret_cast<const unsigned char*>(any_usage.get()), -1)) {
      throw CryptoError("adding a certificate to a PKCS#12 file");
    }
  }
  // Certificates are public: the bags are not encrypted, only integrity-protected by the MAC.
  if (!PKCS12_add_safe(&safes, bags, -1, PKCS12_DEFAULT_ITER, password.c_str())) {
    throw CryptoError("creating a PKCS#12 file");
  }
  OsslPtr<PKCS12> p12(PKCS12_add_safes(safes, 0));
  if (!p12 || !PKCS12_set_mac(p12.get(), password.c_str(), -1, nullptr, 0, PKCS12_DEFAULT_ITER, EVP_sha256())) {
    throw CryptoError("creating a PKCS#12 file");
  }
  MemoryBio bio;
  if (!i2d_PKCS12_bio(bio.get(), p12.get())) throw CryptoError("encoding a PKCS#12 file");
  return bio.take_contents();
}

}  // namespace acmetool::pki
