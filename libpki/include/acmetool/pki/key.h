// Private keys: generation, PKCS#8 PEM encoding, and key types by their CLI names.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "acmetool/pki/ossl.h"

namespace acmetool::pki {

/// The key types acmetool generates, named as Caddy's `key_type` and our `--key-type` spell them.
enum class KeyType { P256, P384, Rsa2048, Rsa3072, Rsa4096, Ed25519 };

/// "p256", "p384", "rsa2048", "rsa3072", "rsa4096", "ed25519".
std::string_view to_string(KeyType type);
/// The KeyType a name denotes (case-insensitive), or nullopt.
std::optional<KeyType> parse_key_type(std::string_view name);

/// A fresh key from the OS's CSPRNG. Throws CryptoError.
PkeyPtr generate_key(KeyType type);

/// A new reference to the same key (EVP_PKEY_up_ref).
PkeyPtr share_key(const EVP_PKEY& key);

/// The key type of `key`, or nullopt for a kind acmetool does not generate (an RSA 1024 key, say).
std::optional<KeyType> key_type_of(const EVP_PKEY& key);

/// PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----"), unencrypted. Throws CryptoError.
SecretString private_key_to_pem(const EVP_PKEY& key);

/// Reads a PEM private key (PKCS#8, or the traditional EC/RSA forms). `what` names the source for
/// the error message ("reading /srv/x.key"). Throws CryptoError when it is not a key.
PkeyPtr private_key_from_pem(std::string_view pem, std::string_view what);

/// The public half as a PEM SubjectPublicKeyInfo ("-----BEGIN PUBLIC KEY-----").
std::string public_key_to_pem(const EVP_PKEY& key);

/// True when both hold the same public key (a certificate's key and a private key, say).
bool same_public_key(const EVP_PKEY& a, const EVP_PKEY& b);

}  // namespace acmetool::pki
