#include "acmetool/pki/key.h"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cctype>

#include "acmetool/pki/error.h"
#include "bio_internal.h"

namespace acmetool::pki {
namespace {

struct KeyTypeName {
  KeyType type;
  std::string_view name;
};
constexpr KeyTypeName kKeyTypeNames[] = {
    {KeyType::P256, "p256"},       {KeyType::P384, "p384"},       {KeyType::Rsa2048, "rsa2048"},
    {KeyType::Rsa3072, "rsa3072"}, {KeyType::Rsa4096, "rsa4096"}, {KeyType::Ed25519, "ed25519"},
};

PkeyPtr checked(EVP_PKEY* key, KeyType type) {
  if (!key) throw CryptoError("generating a " + std::string(to_string(type)) + " key");
  return PkeyPtr(key);
}

}  // namespace

std::string_view to_string(KeyType type) {
  for (const auto& entry : kKeyTypeNames) {
    if (entry.type == type) return entry.name;
  }
  return "unknown";
}

std::optional<KeyType> parse_key_type(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const auto& entry : kKeyTypeNames) {
    if (entry.name == lower) return entry.type;
  }
  return std::nullopt;
}

PkeyPtr generate_key(KeyType type) {
  switch (type) {
    case KeyType::P256: return checked(EVP_EC_gen("P-256"), type);
    case KeyType::P384: return checked(EVP_EC_gen("P-384"), type);
    case KeyType::Rsa2048: return checked(EVP_RSA_gen(2048), type);
    case KeyType::Rsa3072: return checked(EVP_RSA_gen(3072), type);
    case KeyType::Rsa4096: return checked(EVP_RSA_gen(4096), type);
    case KeyType::Ed25519: return checked(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"), type);
  }
  throw Error("generating a key: unknown key type");
}

PkeyPtr share_key(const EVP_PKEY& key) {
  EVP_PKEY* mutable_key = const_cast<EVP_PKEY*>(&key);  // up_ref changes only the reference count
  if (!EVP_PKEY_up_ref(mutable_key)) throw CryptoError("sharing a key");
  return PkeyPtr(mutable_key);
}

std::optional<KeyType> key_type_of(const EVP_PKEY& key) {
  switch (EVP_PKEY_get_base_id(&key)) {
    case EVP_PKEY_ED25519: return KeyType::Ed25519;
    case EVP_PKEY_RSA:
      switch (EVP_PKEY_get_bits(&key)) {
        case 2048: return KeyType::Rsa2048;
        case 3072: return KeyType::Rsa3072;
        case 4096: return KeyType::Rsa4096;
        default: return std::nullopt;
      }
    case EVP_PKEY_EC: {
      char group[64] = {};
      size_t length = 0;
      if (!EVP_PKEY_get_utf8_string_param(&key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &length)) {
        return std::nullopt;
      }
      const std::string_view name(group, length);
      if (name == "prime256v1" || name == "P-256") return KeyType::P256;
      if (name == "secp384r1" || name == "P-384") return KeyType::P384;
      return std::nullopt;
    }
    default: return std::nullopt;
  }
}

SecretString private_key_to_pem(const EVP_PKEY& key) {
  MemoryBio bio;
  if (!PEM_write_bio_PrivateKey(bio.get(), &key, nullptr, nullptr, 0, nullptr, nullptr)) {
    throw CryptoError("encoding a private key as PEM");
  }
  return SecretString(bio.take_contents());
}

PkeyPtr private_key_from_pem(std::string_view pem, std::string_view what) {
  ReadOnlyBio bio(pem);
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) throw CryptoError(std::string(what) + ": not a PEM private key");
  return key;
}

std::string public_key_to_pem(const EVP_PKEY& key) {
  MemoryBio bio;
  if (!PEM_write_bio_PUBKEY(bio.get(), &key)) throw CryptoError("encoding a public key as PEM");
  return bio.take_contents();
}

bool same_public_key(const EVP_PKEY& a, const EVP_PKEY& b) { return EVP_PKEY_eq(&a, &b) == 1; }

}  // namespace acmetool::pki
