#include "acmetool/acme/jws.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>

#include "acmetool/acme/error.h"
#include "acmetool/pki/error.h"
#include "acmetool/pki/key.h"
#include "acmetool/pki/ossl.h"

namespace acmetool::acme {
namespace {

using Json = nlohmann::json;

// Owners for the OpenSSL objects pki::OsslFree does not cover (STYLE.md §5).
using pki::CFree;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, CFree<&EVP_MD_CTX_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, CFree<&ECDSA_SIG_free>>;

constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// The value of one base64url character, or -1 for any other character.
int sextet(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

const unsigned char* bytes_of(std::string_view text) { return reinterpret_cast<const unsigned char*>(text.data()); }

std::string sha256_base64url(std::string_view bytes) {
  const std::array<unsigned char, 32> digest = sha256(bytes);
  return base64url_encode(std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
}

// What JWS and JWK need to know about one kind of key.
struct KeyProfile {
  std::string_view alg;     // RFC 7518 §3.1, RFC 8037 §3.1
  std::string_view kty;     // RFC 7518 §6.1, RFC 8037 §2
  std::string_view crv;     // EC and OKP only
  const char* digest;       // nullptr for Ed25519, which hashes the message itself (RFC 8032 §5.1.6)
  size_t coordinate_bytes;  // EC only: the size of x, y, R and S (RFC 7518 §3.4, §6.2.1.2)
};

constexpr KeyProfile kP256{"ES256", "EC", "P-256", "SHA256", 32};
constexpr KeyProfile kP384{"ES384", "EC", "P-384", "SHA384", 48};
constexpr KeyProfile kRsa{"RS256", "RSA", "", "SHA256", 0};
constexpr KeyProfile kEd25519{"EdDSA", "OKP", "Ed25519", nullptr, 0};

const KeyProfile& profile_of(const EVP_PKEY& key) {
  // Any RSA size signs RS256; pki::KeyType knows only the sizes acmetool generates.
  if (EVP_PKEY_get_base_id(&key) == EVP_PKEY_RSA) return kRsa;
  const std::optional<pki::KeyType> type = pki::key_type_of(key);
  if (type == pki::KeyType::P256) return kP256;
  if (type == pki::KeyType::P384) return kP384;
  if (type == pki::KeyType::Ed25519) return kEd25519;
  const char* name = EVP_PKEY_get0_type_name(&key);
  throw Error(std::string("choosing a JWS algorithm for a ") + (name ? name : "unknown") +
              " key: ACME accounts here use P-256, P-384, RSA or Ed25519 keys");
}

// `number` big-endian, left-padded with zeros to `width` bytes, or in as few bytes as it needs
// when `width` is 0.
std::string big_endian(const BIGNUM& number, size_t width) {
  const int size = width ? static_cast<int>(width) : BN_num_bytes(&number);
  std::string out(static_cast<size_t>(size), '\0');
  auto* buffer = reinterpret_cast<unsigned char*>(out.data());
  const int written = width ? BN_bn2binpad(&number, buffer, size) : BN_bn2bin(&number, buffer);
  if (written != size) throw pki::CryptoError("encoding a number in " + std::to_string(size) + " bytes");
  return out;
}

// The public-key parameter `name` (OSSL_PKEY_PARAM_RSA_N, ...) as base64url of big_endian().
std::string number_param(const EVP_PKEY& key, const char* name, size_t width) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(&key, name, &raw) != 1) {
    throw pki::CryptoError(std::string("reading the public key's ") + name + " parameter");
  }
  const pki::OsslPtr<BIGNUM> number(raw);
  return base64url_encode(big_endian(*number, width));
}

Json jwk_object(const EVP_PKEY& key) {
  const KeyProfile& profile = profile_of(key);
  Json jwk = Json::object();  // a std::map: members come out sorted, as RFC 7638 §3.3 wants
  jwk["kty"] = profile.kty;
  if (profile.kty == "RSA") {
    jwk["n"] = number_param(key, OSSL_PKEY_PARAM_RSA_N, 0);
    jwk["e"] = number_param(key, OSSL_PKEY_PARAM_RSA_E, 0);
    return jwk;
  }
  jwk["crv"] = profile.crv;
  if (profile.kty == "EC") {
    jwk["x"] = number_param(key, OSSL_PKEY_PARAM_EC_PUB_X, profile.coordinate_bytes);
    jwk["y"] = number_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, profile.coordinate_bytes);
    return jwk;
  }
  unsigned char public_key[32];
  size_t size = 0;
  if (EVP_PKEY_get_octet_string_param(&key, OSSL_PKEY_PARAM_PUB_KEY, public_key, sizeof public_key, &size) != 1 ||
      size != sizeof public_key) {
    throw pki::CryptoError("reading an Ed25519 public key");
  }
  jwk["x"] = base64url_encode(std::string_view(reinterpret_cast<const char*>(public_key), size));
  return jwk;
}

// A DER ECDSA-Sig-Value as the R||S that JWS carries (RFC 7518 §3.4).
std::string ecdsa_der_to_raw(std::string_view der, size_t coordinate_bytes) {
  const unsigned char* cursor = bytes_of(der);
  const EcdsaSigPtr signature(d2i_ECDSA_SIG(nullptr, &cursor, static_cast<long>(der.size())));
  if (!signature) throw pki::CryptoError("decoding an ECDSA signature");
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(signature.get(), &r, &s);
  return big_endian(*r, coordinate_bytes) + big_endian(*s, coordinate_bytes);
}

std::string sign_bytes(const EVP_PKEY& key, const KeyProfile& profile, std::string_view input) {
  const MdCtxPtr context(EVP_MD_CTX_new());
  if (!context) throw pki::CryptoError("allocating a signing context");
  const std::string what = "signing a JWS with " + std::string(profile.alg);
  // EVP_DigestSignInit_ex takes a non-const key, but signing only reads it.
  if (EVP_DigestSignInit_ex(context.get(), nullptr, profile.digest, nullptr, nullptr, const_cast<EVP_PKEY*>(&key),
                            nullptr) != 1) {
    throw pki::CryptoError(what);
  }
  size_t size = 0;
  if (EVP_DigestSign(context.get(), nullptr, &size, bytes_of(input), input.size()) != 1) throw pki::CryptoError(what);
  std::string signature(size, '\0');
  if (EVP_DigestSign(context.get(), reinterpret_cast<unsigned char*>(signature.data()), &size, bytes_of(input),
                     input.size()) != 1) {
    throw pki::CryptoError(what);
  }
  signature.resize(size);
  return profile.coordinate_bytes ? ecdsa_der_to_raw(signature, profile.coordinate_bytes) : signature;
}

std::string hmac_sha256(std::string_view hmac_key, std::string_view input) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (!HMAC(EVP_sha256(), hmac_key.data(), static_cast<int>(hmac_key.size()), bytes_of(input), input.size(), mac,
            &size)) {
    throw pki::CryptoError("computing an HMAC-SHA256 for external account binding");
  }
  return std::string(reinterpret_cast<const char*>(mac), size);
}

// The protected header and payload of a JWS, encoded, before it is signed.
struct UnsignedJws {
  std::string protected_b64;
  std::string payload_b64;

  // The bytes the signature covers (RFC 7515 §5.1 step 8).
  std::string signing_input() const { return protected_b64 + "." + payload_b64; }
  // The flattened JSON serialization (RFC 7515 §7.2.2).
  std::string with_signature(std::string_view signature) const {
    return Json{{"protected", protected_b64}, {"payload", payload_b64}, {"signature", base64url_encode(signature)}}
        .dump();
  }
};

UnsignedJws prepare(const Json& header, std::string_view payload) {
  try {
    return {base64url_encode(header.dump()), base64url_encode(payload)};
  } catch (const Json::exception& e) {
    // dump() refuses strings that are not UTF-8: a CA's nonce or URL, or a kid from the command line.
    throw Error(std::string("building a JWS header: ") + e.what());
  }
}

}  // namespace

std::string base64url_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    // Each group of up to three bytes becomes one character more than it has bytes.
    const size_t count = std::min<size_t>(3, bytes.size() - i);
    uint32_t group = 0;
    for (size_t j = 0; j < 3; ++j) group = group << 8 | (j < count ? static_cast<unsigned char>(bytes[i + j]) : 0);
    for (size_t j = 0; j <= count; ++j) out += kAlphabet[(group >> (18 - 6 * j)) & 0x3f];
  }
  return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  // One character carries 6 bits, less than a byte: no encoding ends with a lone character.
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t bits = 0;
  int pending = 0;  // how many low bits of `bits` are not yet in `out`
  for (const char c : text) {
    const int value = sextet(c);
    if (value < 0) return std::nullopt;
    bits = (bits << 6 | static_cast<uint32_t>(value)) & 0xfff;
    pending += 6;
    if (pending >= 8) {
      pending -= 8;
      out += static_cast<char>((bits >> pending) & 0xff);
    }
  }
  return out;
}

bool is_base64url(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return sextet(c) >= 0; });
}

std::string jws_algorithm(const EVP_PKEY& key) { return std::string(profile_of(key).alg); }

std::string jwk_json(const EVP_PKEY& key) { return jwk_object(key).dump(); }

std::string jwk_thumbprint(const EVP_PKEY& key) { return sha256_base64url(jwk_json(key)); }

std::string sign_jws(const EVP_PKEY& key, std::string_view payload, std::string_view url, std::string_view nonce,
                     std::string_view kid) {
  const KeyProfile& profile = profile_of(key);
  Json header{{"alg", profile.alg}, {"url", url}};
  // Every request carries a nonce; only key rollover's inner JWS has none (RFC 8555 §7.3.5).
  if (!nonce.empty()) header["nonce"] = nonce;
  // RFC 8555 §6.2: "kid" and "jwk" are mutually exclusive.
  if (kid.empty()) {
    header["jwk"] = jwk_object(key);
  } else {
    header["kid"] = kid;
  }
  const UnsignedJws jws = prepare(header, payload);
  return jws.with_signature(sign_bytes(key, profile, jws.signing_input()));
}

std::string sign_eab(std::string_view eab_kid, std::string_view hmac_key_b64url, const EVP_PKEY& account_key,
                     std::string_view url) {
  std::optional<std::string> decoded = base64url_decode(hmac_key_b64url);
  if (!is_base64url(hmac_key_b64url) || !decoded) {
    // The key itself stays out of the message (STYLE.md §8).
    throw Error("signing the external account binding for key ID " + std::string(eab_kid) +
                ": the HMAC key is not base64url");
  }
  const pki::SecretString hmac_key(std::move(*decoded));
  // RFC 8555 §7.3.4: no nonce, and the payload is the account key's JWK.
  const Json header{{"alg", "HS256"}, {"kid", eab_kid}, {"url", url}};
  const UnsignedJws jws = prepare(header, jwk_json(account_key));
  return jws.with_signature(hmac_sha256(hmac_key.str(), jws.signing_input()));
}

std::string key_authorization(std::string_view token, const EVP_PKEY& account_key) {
  return std::string(token) + "." + jwk_thumbprint(account_key);
}

std::string dns01_txt_value(std::string_view key_authorization) { return sha256_base64url(key_authorization); }

std::array<unsigned char, 32> sha256(std::string_view bytes) {
  std::array<unsigned char, 32> digest{};
  unsigned int size = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest.data(), &size, EVP_sha256(), nullptr) != 1 ||
      size != digest.size()) {
    throw pki::CryptoError("hashing with SHA-256");
  }
  return digest;
}

}  // namespace acmetool::acme
