#include "acmetool/acme/jws.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "acmetool/acme/error.h"
#include "acmetool/pki/key.h"
#include "acmetool/pki/ossl.h"
#include "process.h"

namespace acme = acmetool::acme;
namespace pki = acmetool::pki;
using Json = nlohmann::json;

namespace {

using acmetool::pki::CFree;
using ParamBuilderPtr = std::unique_ptr<OSSL_PARAM_BLD, CFree<&OSSL_PARAM_BLD_free>>;
using ParamsPtr = std::unique_ptr<OSSL_PARAM, CFree<&OSSL_PARAM_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, CFree<&EVP_MD_CTX_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, CFree<&ECDSA_SIG_free>>;

// RFC 7638 §3.1: an RSA public key and its thumbprint.
constexpr const char* kRfc7638N =
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc"
    "_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQ"
    "R0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bF"
    "TWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
constexpr const char* kRfc7638Thumbprint = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

// RFC 7515 Appendix A.3: a P-256 public key.
constexpr const char* kRfc7515X = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
constexpr const char* kRfc7515Y = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

// RFC 8037 Appendix A.2: an Ed25519 public key; A.3 gives its thumbprint.
constexpr const char* kRfc8037X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

// RFC 8555 §8.3's example token.
constexpr const char* kToken = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA";

// Pebble's EAB key "kid-1" (see the pebble fixture's configuration).
constexpr const char* kEabHmacKey = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";

// A shell pipeline that prints the unpadded base64url SHA-256 of its stdin.
constexpr const char* kOpensslSha256 = "openssl dgst -sha256 -binary | basenc --base64url | tr -d '=\\n'";

const unsigned char* bytes_of(std::string_view text) { return reinterpret_cast<const unsigned char*>(text.data()); }

std::string decoded(std::string_view text) {
  const std::optional<std::string> bytes = acme::base64url_decode(text);
  REQUIRE(bytes.has_value());
  return *bytes;
}

// Runs `script` with sh and returns its stdout; fails the test when it exits non-zero.
std::string shell(const std::string& script, const std::string& input,
                  const std::map<std::string, std::string>& env = {}) {
  const acmetool::test::CommandResult result = acmetool::test::run_command({"sh", "-c", script}, input, env);
  INFO(script << "\n" << result.err);
  REQUIRE(result.exit_code == 0);
  return result.out;
}

pki::PkeyPtr key_from_params(const char* type, OSSL_PARAM_BLD* builder) {
  const ParamsPtr params(OSSL_PARAM_BLD_to_param(builder));
  REQUIRE(params);
  const pki::OsslPtr<EVP_PKEY_CTX> context(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  REQUIRE(context);
  REQUIRE(EVP_PKEY_fromdata_init(context.get()) == 1);
  EVP_PKEY* key = nullptr;
  REQUIRE(EVP_PKEY_fromdata(context.get(), &key, EVP_PKEY_PUBLIC_KEY, params.get()) == 1);
  return pki::PkeyPtr(key);
}

// The RSA public key whose JWK members are `n` and `e`.
pki::PkeyPtr rsa_public_key(std::string_view n_b64, std::string_view e_b64) {
  const std::string n = decoded(n_b64);
  const std::string e = decoded(e_b64);
  const pki::OsslPtr<BIGNUM> n_number(BN_bin2bn(bytes_of(n), static_cast<int>(n.size()), nullptr));
  const pki::OsslPtr<BIGNUM> e_number(BN_bin2bn(bytes_of(e), static_cast<int>(e.size()), nullptr));
  const ParamBuilderPtr builder(OSSL_PARAM_BLD_new());
  REQUIRE((n_number && e_number && builder));
  REQUIRE(OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_N, n_number.get()) == 1);
  REQUIRE(OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_E, e_number.get()) == 1);
  return key_from_params("RSA", builder.get());
}

// The P-256 public key whose JWK members are `x` and `y`.
pki::PkeyPtr p256_public_key(std::string_view x_b64, std::string_view y_b64) {
  const std::string point = "\x04" + decoded(x_b64) + decoded(y_b64);
  const ParamBuilderPtr builder(OSSL_PARAM_BLD_new());
  REQUIRE(builder);
  REQUIRE(OSSL_PARAM_BLD_push_utf8_string(builder.get(), OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0) == 1);
  REQUIRE(OSSL_PARAM_BLD_push_octet_string(builder.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) == 1);
  return key_from_params("EC", builder.get());
}

pki::PkeyPtr ed25519_public_key(std::string_view x_b64) {
  const std::string x = decoded(x_b64);
  pki::PkeyPtr key(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, bytes_of(x), x.size()));
  REQUIRE(key);
  return key;
}

// A JWS R||S signature as the DER ECDSA-Sig-Value that EVP_DigestVerify takes.
std::string ecdsa_raw_to_der(std::string_view raw) {
  REQUIRE(raw.size() % 2 == 0);
  const int half = static_cast<int>(raw.size() / 2);
  pki::OsslPtr<BIGNUM> r(BN_bin2bn(bytes_of(raw), half, nullptr));
  pki::OsslPtr<BIGNUM> s(BN_bin2bn(bytes_of(raw) + half, half, nullptr));
  const EcdsaSigPtr signature(ECDSA_SIG_new());
  REQUIRE((r && s && signature));
  REQUIRE(ECDSA_SIG_set0(signature.get(), r.get(), s.get()) == 1);
  (void)r.release();  // ECDSA_SIG_set0 took them
  (void)s.release();
  unsigned char* der = nullptr;
  const int size = i2d_ECDSA_SIG(signature.get(), &der);
  REQUIRE(size > 0);
  std::string out(reinterpret_cast<const char*>(der), static_cast<size_t>(size));
  OPENSSL_free(der);
  return out;
}

// True when `signature`, as a JWS with `alg` carries it, is `key`'s signature over `input`.
bool verifies(const EVP_PKEY& key, std::string_view alg, std::string_view input, std::string signature) {
  const char* digest = alg == "ES384" ? "SHA384" : alg == "EdDSA" ? nullptr : "SHA256";
  if (alg.starts_with("ES")) signature = ecdsa_raw_to_der(signature);
  const MdCtxPtr context(EVP_MD_CTX_new());
  REQUIRE(context);
  REQUIRE(EVP_DigestVerifyInit_ex(context.get(), nullptr, digest, nullptr, nullptr, const_cast<EVP_PKEY*>(&key),
                                  nullptr) == 1);
  const bool ok =
      EVP_DigestVerify(context.get(), bytes_of(signature), signature.size(), bytes_of(input), input.size()) == 1;
  ERR_clear_error();
  return ok;
}

// A flattened JWS taken apart.
struct ParsedJws {
  std::string protected_b64;
  std::string payload_b64;
  Json header;
  std::string payload;
  std::string signature;

  std::string signing_input() const { return protected_b64 + "." + payload_b64; }
};

ParsedJws parse_jws(const std::string& text) {
  const Json outer = Json::parse(text);
  INFO(text);
  REQUIRE(outer.is_object());
  REQUIRE(outer.size() == 3);
  ParsedJws jws;
  jws.protected_b64 = outer.at("protected").get<std::string>();
  jws.payload_b64 = outer.at("payload").get<std::string>();
  jws.header = Json::parse(decoded(jws.protected_b64));
  jws.payload = decoded(jws.payload_b64);
  jws.signature = decoded(outer.at("signature").get<std::string>());
  return jws;
}

// The encoded public point 04||x||y of an EC key, read without going through the JWK code.
std::string ec_point(const EVP_PKEY& key) {
  unsigned char point[1 + 2 * 66];
  size_t size = 0;
  REQUIRE(EVP_PKEY_get_octet_string_param(&key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point, sizeof point, &size) == 1);
  return std::string(reinterpret_cast<const char*>(point), size);
}

}  // namespace

TEST_CASE("base64url encodes the RFC 4648 test vectors without padding and decodes them back", "[acme][jws]") {
  struct Vector {
    std::string bytes;
    std::string text;
  };
  const Vector vector = GENERATE(values<Vector>({
      {"", ""},
      {"f", "Zg"},
      {"fo", "Zm8"},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg"},
      {"fooba", "Zm9vYmE"},
      {"foobar", "Zm9vYmFy"},
  }));
  CHECK(acme::base64url_encode(vector.bytes) == vector.text);
  CHECK(acme::base64url_decode(vector.text) == vector.bytes);
}

TEST_CASE("base64url uses '-' and '_' where base64 has '+' and '/', and round-trips every byte", "[acme][jws]") {
  struct Vector {
    std::string bytes;
    std::string text;
  };
  for (const Vector& vector : std::initializer_list<Vector>{
           {"\xfb\xff", "-_8"},  // base64 "+/8="
           {"\xfb\xef\xbe", "----"},
           {"\xff\xff\xff", "____"},
           {std::string("\x00\x10\x83", 3), "ABCD"},
       }) {
    CHECK(acme::base64url_encode(vector.bytes) == vector.text);
    CHECK(acme::base64url_decode(vector.text) == vector.bytes);
  }
  std::string every_byte;
  for (int b = 0; b < 256; ++b) every_byte += static_cast<char>(b);
  for (size_t length = 0; length <= every_byte.size(); length += 37) {
    const std::string bytes = every_byte.substr(every_byte.size() - length);
    CHECK(acme::base64url_decode(acme::base64url_encode(bytes)) == bytes);
  }
  CHECK(acme::base64url_decode(acme::base64url_encode(every_byte)) == every_byte);
}

TEST_CASE("base64url decoding refuses standard base64, padding, whitespace and impossible lengths", "[acme][jws]") {
  const std::string text = GENERATE(as<std::string>{}, "Zm+v", "Zm/v", "Zg==", "Zm8=", "Zm 9", "Zm9v\n", "Zm.v",
                                    "Zm\xc3\xa9", std::string("Zm\0v", 4), "Z", "Zm9vY", "Zm9vYmFyZ");
  INFO(text);
  CHECK_FALSE(acme::base64url_decode(text).has_value());
}

TEST_CASE("base64url decoding ignores unused low bits of the last character, as Go and josepy do", "[acme][jws]") {
  // "Zg" is the canonical encoding of "f"; "Zh" differs only in bits that carry nothing.
  CHECK(acme::base64url_decode("Zh") == "f");
  CHECK(acme::base64url_decode("Zm9") == "fo");
}

TEST_CASE("is_base64url accepts only non-empty text in the URL-safe alphabet", "[acme][jws]") {
  struct Case {
    std::string text;
    bool expected;
  };
  const Case c = GENERATE(values<Case>({
      {kToken, true},
      {"a", true},
      {"-_", true},
      {"AZaz09", true},
      {"", false},
      {"../etc/passwd", false},
      {"abc/def", false},
      {"abc.def", false},
      {"abc=", false},
      {"abc+", false},
      {"abc def", false},
      {"abc\n", false},
      {"tok%2e%2e", false},
      {std::string("abc\0", 4), false},
  }));
  INFO(c.text);
  CHECK(acme::is_base64url(c.text) == c.expected);
}

TEST_CASE("RFC 7638's example RSA key has the RFC's JWK and thumbprint", "[acme][jws]") {
  const pki::PkeyPtr key = rsa_public_key(kRfc7638N, "AQAB");
  CHECK(acme::jws_algorithm(*key) == "RS256");
  CHECK(acme::jwk_json(*key) == std::string(R"({"e":"AQAB","kty":"RSA","n":")") + kRfc7638N + R"("})");
  CHECK(acme::jwk_thumbprint(*key) == kRfc7638Thumbprint);
}

TEST_CASE("the RFC example P-256 and Ed25519 keys give the canonical JWK and its thumbprint", "[acme][jws]") {
  struct Case {
    std::function<pki::PkeyPtr()> make_key;
    std::string alg;
    std::string jwk;
    std::string thumbprint;
  };
  const Case c = GENERATE(values<Case>({
      // Thumbprint from `printf %s "$jwk" | openssl dgst -sha256 -binary | basenc --base64url`.
      {[] { return p256_public_key(kRfc7515X, kRfc7515Y); }, "ES256",
       std::string(R"({"crv":"P-256","kty":"EC","x":")") + kRfc7515X + R"(","y":")" + kRfc7515Y + R"("})",
       "oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U"},
      // Thumbprint from RFC 8037 Appendix A.3.
      {[] { return ed25519_public_key(kRfc8037X); }, "EdDSA",
       std::string(R"({"crv":"Ed25519","kty":"OKP","x":")") + kRfc8037X + R"("})",
       "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"},
  }));
  const pki::PkeyPtr key = c.make_key();
  CHECK(acme::jws_algorithm(*key) == c.alg);
  CHECK(acme::jwk_json(*key) == c.jwk);
  CHECK(acme::jwk_thumbprint(*key) == c.thumbprint);
  CHECK(shell(kOpensslSha256, c.jwk) == c.thumbprint);
}

TEST_CASE("EC JWK coordinates are the public point, left-padded to the field size", "[acme][jws]") {
  struct Curve {
    pki::KeyType type;
    std::string crv;
    size_t coordinate_bytes;
  };
  const Curve curve = GENERATE(values<Curve>({{pki::KeyType::P256, "P-256", 32}, {pki::KeyType::P384, "P-384", 48}}));
  // A coordinate starts with a zero byte once in 128 keys; keep generating until one does, so the
  // padding is exercised, not just hoped for.
  bool saw_leading_zero = false;
  for (int attempt = 0; attempt < 4096 && !saw_leading_zero; ++attempt) {
    const pki::PkeyPtr key = pki::generate_key(curve.type);
    const std::string jwk_text = acme::jwk_json(*key);
    const Json jwk = Json::parse(jwk_text);
    REQUIRE(jwk.dump() == jwk_text);  // sorted members, no whitespace
    REQUIRE(jwk.size() == 4);
    REQUIRE(jwk.at("kty") == "EC");
    REQUIRE(jwk.at("crv") == curve.crv);
    const std::string x = decoded(jwk.at("x").get<std::string>());
    const std::string y = decoded(jwk.at("y").get<std::string>());
    REQUIRE(x.size() == curve.coordinate_bytes);
    REQUIRE(y.size() == curve.coordinate_bytes);
    REQUIRE("\x04" + x + y == ec_point(*key));
    saw_leading_zero = x[0] == '\0' || y[0] == '\0';
  }
  CHECK(saw_leading_zero);
}

TEST_CASE("jws_algorithm names the JWS algorithm of each key type", "[acme][jws]") {
  struct Case {
    pki::KeyType type;
    std::string alg;
  };
  const Case c = GENERATE(values<Case>({
      {pki::KeyType::P256, "ES256"},
      {pki::KeyType::P384, "ES384"},
      {pki::KeyType::Rsa2048, "RS256"},
      {pki::KeyType::Rsa3072, "RS256"},
      {pki::KeyType::Rsa4096, "RS256"},
      {pki::KeyType::Ed25519, "EdDSA"},
  }));
  INFO(pki::to_string(c.type));
  CHECK(acme::jws_algorithm(*pki::generate_key(c.type)) == c.alg);
}

TEST_CASE("an RSA key of a size acmetool does not generate still signs RS256", "[acme][jws]") {
  const pki::PkeyPtr key(EVP_RSA_gen(1024));
  REQUIRE(key);
  CHECK(acme::jws_algorithm(*key) == "RS256");
  const ParsedJws jws = parse_jws(acme::sign_jws(*key, "{}", "https://ca.example/new-order", "n1", "acct"));
  CHECK(verifies(*key, "RS256", jws.signing_input(), jws.signature));
}

TEST_CASE("keys without an ACME JWS algorithm are refused with acme::Error", "[acme][jws]") {
  struct Case {
    const char* name;
    std::function<EVP_PKEY*()> make_key;
  };
  const Case c = GENERATE(values<Case>({
      {"ED448", [] { return EVP_PKEY_Q_keygen(nullptr, nullptr, "ED448"); }},
      {"X25519", [] { return EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519"); }},
      {"EC", [] { return EVP_EC_gen("P-521"); }},
  }));
  const pki::PkeyPtr key(c.make_key());
  REQUIRE(key);
  const std::string expected = std::string("choosing a JWS algorithm for a ") + c.name + " key";
  CHECK_THROWS_WITH(acme::jws_algorithm(*key), Catch::StartsWith(expected));
  CHECK_THROWS_AS(acme::jwk_json(*key), acme::Error);
  CHECK_THROWS_AS(acme::sign_jws(*key, "{}", "https://ca.example/x", "n", ""), acme::Error);
  CHECK_THROWS_AS(acme::key_authorization(kToken, *key), acme::Error);
}

TEST_CASE("sign_jws makes a flattened JWS that verifies with the key, with kid or jwk", "[acme][jws]") {
  const pki::KeyType type =
      GENERATE(pki::KeyType::P256, pki::KeyType::P384, pki::KeyType::Rsa2048, pki::KeyType::Ed25519);
  const std::string kid = GENERATE(as<std::string>{}, "", "https://ca.example/acme/acct/17");
  INFO(pki::to_string(type) << " kid=" << kid);
  const pki::PkeyPtr key = pki::generate_key(type);
  const std::string payload = R"({"identifiers":[{"type":"dns","value":"example.com"}]})";
  const std::string url = "https://ca.example/acme/new-order";
  const std::string nonce = "oFvnlFP1wIhRlYS2jTaXbA";

  const ParsedJws jws = parse_jws(acme::sign_jws(*key, payload, url, nonce, kid));
  CHECK(jws.payload == payload);
  CHECK(jws.header.size() == 4);
  CHECK(jws.header.at("alg") == acme::jws_algorithm(*key));
  CHECK(jws.header.at("nonce") == nonce);
  CHECK(jws.header.at("url") == url);
  if (kid.empty()) {
    CHECK(jws.header.at("jwk").dump() == acme::jwk_json(*key));
  } else {
    CHECK(jws.header.at("kid") == kid);
  }
  const size_t expected_size = type == pki::KeyType::P256      ? 64   // R||S, 32 bytes each
                               : type == pki::KeyType::P384    ? 96   // R||S, 48 bytes each
                               : type == pki::KeyType::Rsa2048 ? 256  // the modulus size
                                                               : 64;  // Ed25519
  CHECK(jws.signature.size() == expected_size);

  const std::string alg = jws.header.at("alg").get<std::string>();
  CHECK(verifies(*key, alg, jws.signing_input(), jws.signature));
  // A verifier that accepts anything would pass the line above; it must refuse a changed payload.
  std::string tampered = jws.signing_input();
  tampered.back() ^= 0x01;
  CHECK_FALSE(verifies(*key, alg, tampered, jws.signature));
}

TEST_CASE("a POST-as-GET JWS has an empty payload member and is signed over \"protected.\"", "[acme][jws]") {
  const pki::KeyType type = GENERATE(pki::KeyType::P256, pki::KeyType::Ed25519);
  const pki::PkeyPtr key = pki::generate_key(type);
  const std::string text = acme::sign_jws(*key, "", "https://ca.example/acme/order/1", "nonce-1", "acct-1");
  CHECK(Json::parse(text).at("payload") == "");
  const ParsedJws jws = parse_jws(text);
  CHECK(jws.signing_input() == jws.protected_b64 + ".");
  CHECK(verifies(*key, acme::jws_algorithm(*key), jws.signing_input(), jws.signature));
}

TEST_CASE("RSA and Ed25519 JWS signatures equal the openssl command line's over the same input", "[acme][jws]") {
  // PKCS #1 v1.5 and Ed25519 are deterministic, so an independent signer must give the same bytes.
  struct Case {
    pki::KeyType type;
    std::string command;
  };
  const Case c = GENERATE(values<Case>({
      {pki::KeyType::Rsa2048, "openssl dgst -sha256 -sign \"$DIR/key.pem\" -binary \"$DIR/input\""},
      {pki::KeyType::Ed25519, "openssl pkeyutl -sign -rawin -inkey \"$DIR/key.pem\" -in \"$DIR/input\""},
  }));
  const pki::PkeyPtr key = pki::generate_key(c.type);
  const acmetool::test::TempDir dir;
  std::ofstream(dir.path() / "key.pem") << pki::private_key_to_pem(*key).str();

  const std::string text = acme::sign_jws(*key, R"({"status":"deactivated"})", "https://ca.example/acct/1", "n",
                                          "https://ca.example/acct/1");
  const std::string expected = shell("cat > \"$DIR/input\" && " + c.command + " | basenc --base64url | tr -d '=\\n'",
                                     parse_jws(text).signing_input(), {{"DIR", dir.path().string()}});
  CHECK(Json::parse(text).at("signature") == expected);
}

TEST_CASE("sign_eab MACs the account key's JWK with the decoded HMAC key and sends no nonce", "[acme][jws]") {
  const pki::PkeyPtr account_key = pki::generate_key(pki::KeyType::P256);
  const std::string url = "https://ca.example/acme/new-account";
  const ParsedJws jws = parse_jws(acme::sign_eab("kid-1", kEabHmacKey, *account_key, url));

  CHECK(jws.header == Json{{"alg", "HS256"}, {"kid", "kid-1"}, {"url", url}});
  CHECK(jws.payload == acme::jwk_json(*account_key));
  // HMAC computed by openssl with the key decoded by basenc, not by our base64url_decode.
  const std::string expected = shell(
      "key=$(printf %s \"$EAB_KEY\" | basenc --base64url -d | od -An -v -tx1 | tr -d ' \\n') && "
      "openssl dgst -sha256 -mac HMAC -macopt \"hexkey:$key\" -binary | basenc --base64url | tr -d '=\\n'",
      jws.signing_input(), {{"EAB_KEY", kEabHmacKey}});
  CHECK(acme::base64url_encode(jws.signature) == expected);
  CHECK(jws.signature.size() == 32);
}

TEST_CASE("sign_eab refuses an HMAC key that is not base64url and keeps it out of the message", "[acme][jws]") {
  const pki::PkeyPtr account_key = pki::generate_key(pki::KeyType::P256);
  const std::string hmac_key = GENERATE(as<std::string>{}, "", "c2VjcmV0=", "c2Vj+cmV0", "c2Vj/cmV0", "c2Vj cmV0", "c");
  INFO(hmac_key);
  try {
    acme::sign_eab("kid-7", hmac_key, *account_key, "https://ca.example/acme/new-account");
    FAIL("no exception");
  } catch (const acme::Error& e) {
    const std::string message = e.what();
    CHECK(message == "signing the external account binding for key ID kid-7: the HMAC key is not base64url");
  }
}

TEST_CASE("key_authorization and dns01_txt_value match RFC 8555's token with RFC 7638's key", "[acme][jws]") {
  const pki::PkeyPtr key = rsa_public_key(kRfc7638N, "AQAB");
  const std::string key_authorization = acme::key_authorization(kToken, *key);
  CHECK(key_authorization == std::string(kToken) + "." + kRfc7638Thumbprint);
  // From `printf %s "$key_authorization" | openssl dgst -sha256 -binary | basenc --base64url`.
  CHECK(acme::dns01_txt_value(key_authorization) == "ZTRx1Ckl1-tM05o5zaizTTA0yUy5AGereMgSNWC6Ll8");
}

TEST_CASE("dns01_txt_value and the thumbprint agree with openssl for every key type", "[acme][jws]") {
  const pki::KeyType type =
      GENERATE(pki::KeyType::P256, pki::KeyType::P384, pki::KeyType::Rsa2048, pki::KeyType::Ed25519);
  INFO(pki::to_string(type));
  const pki::PkeyPtr key = pki::generate_key(type);
  const std::string thumbprint = shell(kOpensslSha256, acme::jwk_json(*key));
  CHECK(thumbprint.size() == 43);
  const std::string key_authorization = acme::key_authorization(kToken, *key);
  CHECK(key_authorization == std::string(kToken) + "." + thumbprint);
  CHECK(acme::dns01_txt_value(key_authorization) == shell(kOpensslSha256, key_authorization));
}

TEST_CASE("sha256 gives the FIPS 180-2 digests", "[acme][jws]") {
  struct Vector {
    std::string input;
    std::string hex;
  };
  const Vector vector = GENERATE(values<Vector>({
      {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
      {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
  }));
  std::string hex;
  for (const unsigned char byte : acme::sha256(vector.input)) {
    constexpr std::string_view kDigits = "0123456789abcdef";
    hex += kDigits[byte >> 4];
    hex += kDigits[byte & 0x0f];
  }
  CHECK(hex == vector.hex);
}
