// JSON Web Signatures for ACME (RFC 8555 §6.2, RFC 7515, RFC 7518), JWK thumbprints (RFC 7638),
// base64url (RFC 4648 §5), and the challenge values built from them (RFC 8555 §8).
//
// Keys are borrowed: no function here keeps a pointer to the EVP_PKEY it is given. There is no shared
// state, so every function may run on several threads at once; a key they share is only read.
#pragma once

#include <openssl/types.h>

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace acmetool::acme {

/// `bytes` in the URL-safe alphabet ('-' and '_' for '+' and '/'), without '=' padding
/// (RFC 4648 §5, as RFC 7515 §2 requires). "" encodes as "".
std::string base64url_encode(std::string_view bytes);

/// The bytes `text` encodes, or nullopt when it holds a character outside [A-Za-z0-9_-] (padding
/// '=', whitespace and the '+' '/' of standard base64 included) or has a length no encoding has
/// (length % 4 == 1). "" decodes to "". Unused low bits of the last character are ignored, as Go's
/// RawURLEncoding and josepy do, so an EAB key from any CA decodes.
std::optional<std::string> base64url_decode(std::string_view text);

/// True when `text` is non-empty and holds only [A-Za-z0-9_-]. ACME tokens must pass this before they
/// become part of a file path or URL route (RFC 8555 §8.3; a token of "../x" is a path traversal).
bool is_base64url(std::string_view text);

/// The JWS "alg" for `key` (RFC 7518 §3.1, RFC 8037 §3.1): "ES256" for P-256, "ES384" for P-384,
/// "RS256" for RSA, "EdDSA" for Ed25519. Throws acme::Error for any other kind of key.
std::string jws_algorithm(const EVP_PKEY& key);

/// The public JWK of `key` with exactly the required members, in lexicographic order, without
/// whitespace (RFC 7638 §3.2), i.e. the input of the thumbprint:
///   EC:      {"crv":"P-256","kty":"EC","x":...,"y":...}  (x and y left-padded to the field size)
///   RSA:     {"e":...,"kty":"RSA","n":...}               (minimal big-endian, no leading zeros)
///   Ed25519: {"crv":"Ed25519","kty":"OKP","x":...}
/// Throws acme::Error for an unsupported kind of key, pki::CryptoError when OpenSSL fails.
std::string jwk_json(const EVP_PKEY& key);

/// base64url(SHA-256(jwk_json(key))): the JWK thumbprint of RFC 7638 §3. Throws as jwk_json().
std::string jwk_thumbprint(const EVP_PKEY& key);

/// A JWS in the flattened JSON serialization ACME uses (RFC 8555 §6.2):
///   {"payload":b64(payload),"protected":b64(header),"signature":b64(signature)}
/// with header {"alg":jws_algorithm(key),"nonce":nonce,"url":url} plus "kid":kid when `kid` (the
/// account URL) is non-empty, else "jwk":<the jwk_json() object> (newAccount, revokeCert by
/// certificate key). `payload` is the JSON text to sign; an empty `payload` signs a POST-as-GET
/// request, whose payload member is "" (§6.3). ECDSA signatures are the fixed-size R||S of RFC 7518
/// §3.4, not DER. RSA signs with PKCS #1 v1.5 and SHA-256, Ed25519 with PureEdDSA (RFC 8037).
/// Throws acme::Error for an unsupported key or a header string that is not UTF-8,
/// pki::CryptoError when signing fails.
std::string sign_jws(const EVP_PKEY& key, std::string_view payload, std::string_view url, std::string_view nonce,
                     std::string_view kid);

/// The externalAccountBinding member of a newAccount payload (RFC 8555 §7.3.4): a flattened JWS with
/// header {"alg":"HS256","kid":eab_kid,"url":url} (no nonce) and payload jwk_json(account_key),
/// MACed with HMAC-SHA256 under the key that `hmac_key_b64url` (as the CA hands it out) encodes.
/// The decoded HMAC key is cleared from memory before returning. Throws acme::Error when
/// `hmac_key_b64url` is empty or not base64url, or for an unsupported account key;
/// pki::CryptoError when OpenSSL fails.
std::string sign_eab(std::string_view eab_kid, std::string_view hmac_key_b64url, const EVP_PKEY& account_key,
                     std::string_view url);

/// token + "." + jwk_thumbprint(account_key): the key authorization of RFC 8555 §8.1, served as-is
/// for http-01 and hashed for dns-01 and tls-alpn-01. Does not validate `token`; callers check it
/// with is_base64url() first. Throws as jwk_json().
std::string key_authorization(std::string_view token, const EVP_PKEY& account_key);

/// base64url(SHA-256(key_authorization)): the TXT record value for _acme-challenge (RFC 8555 §8.4).
std::string dns01_txt_value(std::string_view key_authorization);

/// SHA-256 of `bytes`. tls-alpn-01's acmeIdentifier extension holds SHA-256(key authorization)
/// (RFC 8737 §3). Throws pki::CryptoError when OpenSSL fails.
std::array<unsigned char, 32> sha256(std::string_view bytes);

}  // namespace acmetool::acme
