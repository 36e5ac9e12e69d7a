// tls-alpn-01 (RFC 8737, and RFC 8738 §6 for IP identifiers): our own TLS listener that completes
// one handshake per validation with a self-signed challenge certificate.
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "acmetool/acme/error.h"
#include "acmetool/acme/solver.h"
#include "acmetool/pki/error.h"
#include "acmetool/pki/key.h"
#include "acmetool/pki/ossl.h"
#include "listener_internal.h"

namespace acmetool::acme {
namespace {

constexpr std::string_view kChallengeType = "tls-alpn-01";
// RFC 8737 §6.2: the ALPN protocol name, and §6.1: id-pe-acmeIdentifier.
constexpr std::string_view kAcmeTlsProtocol = "acme-tls/1";
constexpr const char* kAcmeIdentifierOid = "1.3.6.1.5.5.7.1.31";

using pki::CFree;
using SslCtxPtr = std::unique_ptr<SSL_CTX, CFree<&SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, CFree<&SSL_free>>;

// Throws acme::Error with the drained OpenSSL error queue: "<what>: <reason>; <reason>".
[[noreturn]] void throw_crypto_error(const std::string& what) {
  throw Error(pki::CryptoError(what).what());
}

// What a validation ClientHello carries as SNI for an identifier, and how the certificate names it
// (OpenSSL's subjectAltName syntax; safe because both come from a checked DNS name or an IP
// address).
struct ChallengeName {
  std::string sni;
  std::string subject_alt_name;
};

std::string reverse_dns_name(const in_addr& address) {
  const auto* b = reinterpret_cast<const unsigned char*>(&address);
  return std::to_string(b[3]) + "." + std::to_string(b[2]) + "." + std::to_string(b[1]) + "." +
         std::to_string(b[0]) + ".in-addr.arpa";
}

std::string reverse_dns_name(const in6_addr& address) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string name;
  for (int i = 15; i >= 0; --i) {
    name += {kHex[address.s6_addr[i] & 0xf], '.', kHex[address.s6_addr[i] >> 4], '.'};
  }
  return name + "ip6.arpa";
}

bool is_dns_name(std::string_view name) {
  const auto allowed = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
  };
  return !name.empty() && name.size() <= 253 && name.front() != '.' && name.back() != '.' &&
         name.find("..") == std::string_view::npos &&
         std::all_of(name.begin(), name.end(), allowed);
}

std::string lower_case(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  return lower;
}

// RFC 8738 §6: an IP identifier is asked for by its reverse-DNS name and named by an iPAddress.
ChallengeName challenge_name(std::string_view identifier) {
  const std::string text(identifier);
  char canonical[INET6_ADDRSTRLEN];
  in_addr v4;
  in6_addr v6;
  if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) return {reverse_dns_name(v4), "IP:" + text};
  if (::inet_pton(AF_INET6, text.c_str(), &v6) == 1 &&
      ::inet_ntop(AF_INET6, &v6, canonical, sizeof canonical)) {
    return {reverse_dns_name(v6), "IP:" + std::string(canonical)};
  }
  std::string name = lower_case(identifier);
  if (!is_dns_name(name)) {
    throw Error("presenting tls-alpn-01 for '" + text.substr(0, 253) +
                "': not a DNS name or an IP address");
  }
  return {name, "DNS:" + name};
}

void add_acme_identifier(X509* cert, std::string_view key_authorization) {
  // RFC 8737 §3: extnValue is the DER of Authorization ::= OCTET STRING (SIZE (32)), the SHA-256
  // of the key authorization: tag 04, length 32, then the digest.
  unsigned char authorization[2 + 32] = {0x04, 0x20};
  unsigned int digest_length = 0;
  if (!EVP_Digest(key_authorization.data(), key_authorization.size(), authorization + 2,
                  &digest_length, EVP_sha256(), nullptr) ||
      digest_length != 32) {
    throw_crypto_error("hashing the tls-alpn-01 key authorization");
  }
  pki::OsslPtr<ASN1_OBJECT> oid(OBJ_txt2obj(kAcmeIdentifierOid, 1));
  pki::OsslPtr<ASN1_STRING> value(ASN1_OCTET_STRING_new());
  if (!oid || !value || !ASN1_OCTET_STRING_set(value.get(), authorization, sizeof authorization)) {
    throw_crypto_error("encoding the acmeIdentifier extension");
  }
  pki::OsslPtr<X509_EXTENSION> extension(
      X509_EXTENSION_create_by_OBJ(nullptr, oid.get(), 1, value.get()));
  if (!extension || !X509_add_ext(cert, extension.get(), -1)) {
    throw_crypto_error("adding the acmeIdentifier extension");
  }
}

void add_subject_alt_name(X509* cert, const std::string& subject_alt_name) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  pki::OsslPtr<X509_EXTENSION> extension(
      X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, subject_alt_name.c_str()));
  if (!extension || !X509_add_ext(cert, extension.get(), -1)) {
    throw_crypto_error("adding " + subject_alt_name);
  }
}

// A self-signed certificate for `key` that proves `key_authorization` for `name` (RFC 8737 §3).
pki::X509Ptr make_challenge_certificate(EVP_PKEY& key, const ChallengeName& name,
                                        std::string_view key_authorization) {
  pki::X509Ptr cert(X509_new());
  std::uint64_t serial = 0;
  if (!cert || !X509_set_version(cert.get(), X509_VERSION_3) ||
      RAND_bytes(reinterpret_cast<unsigned char*>(&serial), sizeof serial) != 1 ||
      !ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert.get()), serial >> 1)) {
    throw_crypto_error("allocating a tls-alpn-01 certificate");
  }
  // Valid from an hour ago, for validators whose clock is behind, for a week.
  X509_NAME* subject = X509_get_subject_name(cert.get());
  const auto* common_name =
      reinterpret_cast<const unsigned char*>("acmetool tls-alpn-01 challenge");
  if (!X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60 * 60) ||
      !X509_gmtime_adj(X509_getm_notAfter(cert.get()), 7 * 24 * 60 * 60) ||
      !X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_UTF8, common_name, -1, -1, 0) ||
      !X509_set_issuer_name(cert.get(), subject) || !X509_set_pubkey(cert.get(), &key)) {
    throw_crypto_error("filling in a tls-alpn-01 certificate");
  }
  add_subject_alt_name(cert.get(), name.subject_alt_name);
  add_acme_identifier(cert.get(), key_authorization);
  if (!X509_sign(cert.get(), &key, EVP_sha256())) {
    throw_crypto_error("signing a tls-alpn-01 certificate");
  }
  return cert;
}

// The acme-tls/1 entry in a wire-format protocol list (RFC 7301 §3.1: names with a one-byte
// length), or nullptr.
const unsigned char* find_acme_tls(const unsigned char* list, std::size_t size) {
  for (std::size_t i = 0; i < size;) {
    const std::size_t length = list[i];
    if (i + 1 + length > size) return nullptr;
    const std::string_view protocol(reinterpret_cast<const char*>(list + i + 1), length);
    if (protocol == kAcmeTlsProtocol) return list + i + 1;
    i += 1 + length;
  }
  return nullptr;
}

// The host_name of a server_name extension (RFC 6066 §3), lower-cased, or "" when there is none.
std::string sni_host_name(const unsigned char* data, std::size_t size) {
  if (size < 2 || static_cast<std::size_t>(data[0] << 8 | data[1]) + 2 != size) return {};
  for (std::size_t i = 2; i + 3 <= size;) {
    const unsigned type = data[i];
    const std::size_t length = static_cast<std::size_t>(data[i + 1] << 8 | data[i + 2]);
    if (i + 3 + length > size) return {};
    if (type == TLSEXT_NAMETYPE_host_name) {
      return lower_case({reinterpret_cast<const char*>(data + i + 3), length});
    }
    i += 3 + length;
  }
  return {};
}

// The challenge certificates presented on one solver, by SNI; shared with the handshakes.
class ChallengeCertificates {
 public:
  void add(const std::string& sni, std::string_view token, pki::PkeyPtr key, pki::X509Ptr cert) {
    std::lock_guard lock(mutex_);
    std::vector<Entry>& entries = by_sni_[sni];
    std::erase_if(entries, [&](const Entry& entry) { return entry.token == token; });
    entries.push_back({std::string(token), std::move(key), std::move(cert)});
  }

  void remove(const std::string& sni, std::string_view token) noexcept {
    std::lock_guard lock(mutex_);
    auto it = by_sni_.find(sni);
    if (it == by_sni_.end()) return;
    std::erase_if(it->second, [&](const Entry& entry) { return entry.token == token; });
    if (it->second.empty()) by_sni_.erase(it);
  }

  void clear() noexcept {
    std::lock_guard lock(mutex_);
    by_sni_.clear();
  }

  // Gives `ssl` the latest certificate presented for `sni`; false when there is none.
  bool use_for(SSL* ssl, std::string_view sni) const {
    std::lock_guard lock(mutex_);
    auto it = by_sni_.find(sni);
    if (it == by_sni_.end()) return false;
    const Entry& latest = it->second.back();
    return SSL_use_certificate(ssl, latest.cert.get()) == 1 &&
           SSL_use_PrivateKey(ssl, latest.key.get()) == 1;
  }

 private:
  struct Entry {
    std::string token;
    pki::PkeyPtr key;
    pki::X509Ptr cert;
  };
  mutable std::mutex mutex_;
  std::map<std::string, std::vector<Entry>, std::less<>> by_sni_;
};

// present() of both tls-alpn-01 solvers: a fresh key and challenge certificate for `identifier`.
void present_challenge(ChallengeCertificates& certificates, std::string_view identifier,
                       std::string_view token, std::string_view key_authorization) {
  require_token(kChallengeType, token);
  const ChallengeName name = challenge_name(identifier);
  try {
    pki::PkeyPtr key = pki::generate_key(pki::KeyType::P256);
    pki::X509Ptr cert = make_challenge_certificate(*key, name, key_authorization);
    certificates.add(name.sni, token, std::move(key), std::move(cert));
  } catch (const pki::Error& e) {
    throw Error("presenting tls-alpn-01 for " + std::string(identifier) + ": " + e.what());
  }
}

// cleanup() of both solvers.
void cleanup_challenge(ChallengeCertificates& certificates, std::string_view identifier,
                       std::string_view token) noexcept {
  try {
    certificates.remove(challenge_name(identifier).sni, token);
  } catch (...) {
    // Not an identifier present() accepts (or out of memory): nothing to undo.
  }
}

// Runs before anything else in the handshake: refuses ClientHellos that are not a validation for a
// presented identifier, and gives the others their certificate.
int on_client_hello(SSL* ssl, int* alert, void* certificates) {
  const unsigned char* data = nullptr;
  std::size_t size = 0;
  if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &data,
                                 &size) ||
      size < 2 || !find_acme_tls(data + 2, size - 2)) {
    *alert = SSL_AD_NO_APPLICATION_PROTOCOL;
    return SSL_CLIENT_HELLO_ERROR;
  }
  try {
    const std::string sni = SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &data, &size)
                                ? sni_host_name(data, size)
                                : std::string();
    if (sni.empty() ||
        !static_cast<const ChallengeCertificates*>(certificates)->use_for(ssl, sni)) {
      *alert = SSL_AD_UNRECOGNIZED_NAME;
      return SSL_CLIENT_HELLO_ERROR;
    }
  } catch (...) {
    *alert = SSL_AD_INTERNAL_ERROR;
    return SSL_CLIENT_HELLO_ERROR;
  }
  return SSL_CLIENT_HELLO_SUCCESS;
}

// on_client_hello() made sure the client offers acme-tls/1; this picks it.
int select_acme_tls(SSL*, const unsigned char** out, unsigned char* out_length,
                    const unsigned char* in, unsigned int in_length, void*) {
  const unsigned char* protocol = find_acme_tls(in, in_length);
  if (!protocol) return SSL_TLSEXT_ERR_ALERT_FATAL;
  *out = protocol;
  *out_length = static_cast<unsigned char>(kAcmeTlsProtocol.size());
  return SSL_TLSEXT_ERR_OK;
}

SslCtxPtr make_tls_context(ChallengeCertificates& certificates) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  // RFC 8737 §4: TLS 1.2 or later. No tickets or session cache: every handshake is a full one.
  if (!ctx || !SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION) ||
      !SSL_CTX_set_num_tickets(ctx.get(), 0)) {
    throw_crypto_error("setting up the tls-alpn-01 TLS context");
  }
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_client_hello_cb(ctx.get(), on_client_hello, &certificates);
  SSL_CTX_set_alpn_select_cb(ctx.get(), select_acme_tls, nullptr);
  return ctx;
}

// One validation handshake on a non-blocking socket, then close_notify and drain() (RFC 8737 §3:
// nothing follows the handshake).
class TlsHandshake final : public Connection {
 public:
  TlsHandshake(int fd, SSL_CTX* ctx) : fd_(fd), ssl_(SSL_new(ctx)) {
    if (!ssl_ || !SSL_set_fd(ssl_.get(), fd)) {
      throw_crypto_error("accepting a tls-alpn-01 connection");
    }
    SSL_set_accept_state(ssl_.get());
  }

  Want advance() override {
    if (done_) return drain(fd_);
    ERR_clear_error();
    const int result = SSL_do_handshake(ssl_.get());
    const int error = SSL_get_error(ssl_.get(), result);
    ERR_clear_error();  // the queue is per thread: leave nothing for the next connection
    if (result == 1) {
      done_ = true;
      SSL_shutdown(ssl_.get());
      ERR_clear_error();
      ::shutdown(fd_, SHUT_WR);
      return drain(fd_);
    }
    if (error == SSL_ERROR_WANT_READ) return Want::Read;
    if (error == SSL_ERROR_WANT_WRITE) return Want::Write;
    return Want::Close;  // refused (the alert is sent) or broken
  }

 private:
  int fd_;
  SslPtr ssl_;
  bool done_ = false;
};

class TlsAlpn01Standalone final : public Solver {
 public:
  TlsAlpn01Standalone(std::string_view address, int port)
      : ctx_(make_tls_context(certificates_)),
        listener_(address, port, kChallengeType,
                  [this](int fd) { return std::make_unique<TlsHandshake>(fd, ctx_.get()); }) {}

  std::string_view type() const override { return kChallengeType; }

  void present(std::string_view identifier, std::string_view token,
               std::string_view key_authorization) override {
    present_challenge(certificates_, identifier, token, key_authorization);
  }

  void cleanup(std::string_view identifier, std::string_view token) noexcept override {
    cleanup_challenge(certificates_, identifier, token);
  }

 private:
  ChallengeCertificates certificates_;
  SslCtxPtr ctx_;
  Listener listener_;  // last: its connections use ctx_ and certificates_
};

}  // namespace

std::unique_ptr<Solver> make_tlsalpn01_standalone(std::string address, int port) {
  return std::make_unique<TlsAlpn01Standalone>(address, port);
}

struct TlsAlpn01Responder::Impl {
  ChallengeCertificates certificates;
};

TlsAlpn01Responder::TlsAlpn01Responder() : impl_(std::make_unique<Impl>()) {}
TlsAlpn01Responder::~TlsAlpn01Responder() = default;

std::string_view TlsAlpn01Responder::type() const { return kChallengeType; }

void TlsAlpn01Responder::present(std::string_view identifier, std::string_view token,
                                 std::string_view key_authorization) {
  present_challenge(impl_->certificates, identifier, token, key_authorization);
}

void TlsAlpn01Responder::cleanup(std::string_view identifier, std::string_view token) noexcept {
  cleanup_challenge(impl_->certificates, identifier, token);
}

void TlsAlpn01Responder::withdraw_all() noexcept { impl_->certificates.clear(); }

bool TlsAlpn01Responder::use_for(ssl_st* ssl, std::string_view server_name) const {
  return impl_->certificates.use_for(ssl, server_name);
}

}  // namespace acmetool::acme
