#include "acmetool/pki/key.h"

#include <catch2/catch.hpp>

#include "acmetool/pki/error.h"

namespace pki = acmetool::pki;

TEST_CASE("every key type generates, encodes as PKCS#8 PEM and reads back as the same key", "[pki][key]") {
  const auto type = GENERATE(pki::KeyType::P256, pki::KeyType::P384, pki::KeyType::Rsa2048, pki::KeyType::Rsa3072,
                             pki::KeyType::Rsa4096, pki::KeyType::Ed25519);
  INFO(pki::to_string(type));
  const pki::PkeyPtr key = pki::generate_key(type);
  REQUIRE(key);
  CHECK(pki::key_type_of(*key) == type);

  const pki::SecretString pem = pki::private_key_to_pem(*key);
  CHECK(pem.str().starts_with("-----BEGIN PRIVATE KEY-----\n"));
  const pki::PkeyPtr back = pki::private_key_from_pem(pem.str(), "test");
  CHECK(pki::same_public_key(*key, *back));
  CHECK(pki::key_type_of(*back) == type);
  CHECK(pki::public_key_to_pem(*back) == pki::public_key_to_pem(*key));
}

TEST_CASE("two generated keys differ", "[pki][key]") {
  const pki::PkeyPtr a = pki::generate_key(pki::KeyType::P256);
  const pki::PkeyPtr b = pki::generate_key(pki::KeyType::P256);
  CHECK_FALSE(pki::same_public_key(*a, *b));
}

TEST_CASE("key types parse from their CLI names", "[pki][key]") {
  CHECK(pki::parse_key_type("p256") == pki::KeyType::P256);
  CHECK(pki::parse_key_type("P384") == pki::KeyType::P384);
  CHECK(pki::parse_key_type("rsa2048") == pki::KeyType::Rsa2048);
  CHECK(pki::parse_key_type("rsa3072") == pki::KeyType::Rsa3072);
  CHECK(pki::parse_key_type("RSA4096") == pki::KeyType::Rsa4096);
  CHECK(pki::parse_key_type("ed25519") == pki::KeyType::Ed25519);
  CHECK_FALSE(pki::parse_key_type("rsa1024").has_value());
  CHECK_FALSE(pki::parse_key_type("").has_value());
  for (auto type : {pki::KeyType::P256, pki::KeyType::Rsa4096, pki::KeyType::Ed25519}) {
    CHECK(pki::parse_key_type(pki::to_string(type)) == type);
  }
}

TEST_CASE("text that is not a private key fails with a message naming its source", "[pki][key]") {
  const char* bad = GENERATE("", "hello", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
  try {
    pki::private_key_from_pem(bad, "reading /srv/site.key");
    FAIL("no exception");
  } catch (const pki::CryptoError& e) {
    CHECK(std::string(e.what()).starts_with("reading /srv/site.key: not a PEM private key"));
  }
}
