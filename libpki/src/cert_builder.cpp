#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acmetool/pki/error.h"
#include "cert_builder_internal.h"
#include "san_internal.h"

namespace acmetool::pki {
namespace {

void set_random_serial(X509* cert) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) throw CryptoError("generating a serial number");
  bytes[0] &= 0x7f;  // positive, as RFC 5280 §4.1.2.2 requires
  bytes[0] |= 0x40;  // and a full 16 bytes long
  OsslPtr<BIGNUM> serial(BN_bin2bn(bytes, sizeof bytes, nullptr));
  if (!serial || !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert))) {
    throw CryptoError("setting a serial number");
  }
}

void set_validity(X509* cert, std::chrono::system_clock::time_point from, std::chrono::system_clock::time_point to) {
  using std::chrono::system_clock;
  if (!ASN1_TIME_set(X509_getm_notBefore(cert), system_clock::to_time_t(from)) ||
      !ASN1_TIME_set(X509_getm_notAfter(cert), system_clock::to_time_t(to))) {
    throw CryptoError("setting a validity period");
  }
}

void set_subject(X509* cert, const std::string& common_name) {
  X509_NAME* name = X509_get_subject_name(cert);
  if (!common_name.empty() &&
      !X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                  reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0)) {
    throw CryptoError("setting the subject " + common_name);
  }
}

// Adds an extension written in OpenSSL's config syntax ("critical,CA:TRUE"); the values are ours,
// never user input.
void add_conf_extension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  OsslPtr<X509_EXTENSION> extension(X509V3_EXT_conf_nid(nullptr, ctx, nid, value));
  if (!extension || !X509_add_ext(cert, extension.get(), -1)) {
    throw CryptoError(std::string("adding extension ") + OBJ_nid2sn(nid));
  }
}

const EVP_MD* digest_for(const EVP_PKEY& key) {
  return EVP_PKEY_get_base_id(&key) == EVP_PKEY_ED25519 ? nullptr : EVP_sha256();
}

}  // namespace

X509Ptr build_certificate(const CertificateSpec& spec, const EVP_PKEY& subject_key, const X509* issuer,
                          const EVP_PKEY& signing_key) {
  X509Ptr cert(X509_new());
  if (!cert || !X509_set_version(cert.get(), X509_VERSION_3)) throw CryptoError("allocating a certificate");
  set_random_serial(cert.get());
  set_validity(cert.get(), spec.not_before, spec.not_after);
  set_subject(cert.get(), spec.subject_cn);
  const X509_NAME* issuer_name = issuer ? X509_get_subject_name(issuer) : X509_get_subject_name(cert.get());
  if (!X509_set_issuer_name(cert.get(), issuer_name) ||
      !X509_set_pubkey(cert.get(), const_cast<EVP_PKEY*>(&subject_key))) {
    throw CryptoError("setting issuer and key");
  }

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer ? const_cast<X509*>(issuer) : cert.get(), cert.get(), nullptr, nullptr, 0);
  if (spec.is_ca) {
    const std::string constraints =
        "critical,CA:TRUE" + (spec.path_length >= 0 ? ",pathlen:" + std::to_string(spec.path_length) : "");
    add_conf_extension(cert.get(), &ctx, NID_basic_constraints, constraints.c_str());
    add_conf_extension(cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_conf_extension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE");
    const bool rsa = EVP_PKEY_get_base_id(&subject_key) == EVP_PKEY_RSA;
    add_conf_extension(cert.get(), &ctx, NID_key_usage,
                       rsa ? "critical,digitalSignature,keyEncipherment" : "critical,digitalSignature");
    add_conf_extension(cert.get(), &ctx, NID_ext_key_usage, "serverAuth,clientAuth");
    // RFC 5280 §4.2.1.6: with an empty subject the SAN must be critical.
    OsslPtr<X509_EXTENSION> san = make_subject_alt_name(spec.names, spec.subject_cn.empty());
    if (!X509_add_ext(cert.get(), san.get(), -1)) throw CryptoError("adding subjectAltName");
  }
  add_conf_extension(cert.get(), &ctx, NID_subject_key_identifier, "hash");
  if (issuer) add_conf_extension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always");

  if (X509_sign(cert.get(), const_cast<EVP_PKEY*>(&signing_key), digest_for(signing_key)) <= 0) {
    throw CryptoError("signing the certificate for " + (spec.subject_cn.empty() ? spec.names.front() : spec.subject_cn));
  }
  return cert;
}

}  // namespace acmetool::pki
