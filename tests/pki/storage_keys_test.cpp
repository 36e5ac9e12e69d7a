#include "acmetool/pki/storage_keys.h"

#include <catch2/catch.hpp>

namespace keys = acmetool::pki::keys;

TEST_CASE("storage key components are made safe exactly as CertMagic's KeyBuilder.Safe", "[pki][storage]") {
  struct Row {
    const char* input;
    const char* expected;
  };
  // Expected values follow certmagic's Safe(): lower, trim, ' '->'_', '+'->'_plus_', '*'->'wildcard_',
  // ':'->'-', '..' removed, then everything outside [A-Za-z0-9_@.-] removed.
  const Row rows[] = {
      {"example.com", "example.com"},
      {"Example.COM", "example.com"},
      {"*.example.com", "wildcard_.example.com"},
      {"  spaced name ", "spaced_name"},
      {"a+b@example.com", "a_plus_b@example.com"},
      {"127.0.0.1:8443", "127.0.0.1-8443"},
      {"[::1]:443", "--1-443"},
      {"../../etc/passwd", "etcpasswd"},
      {"...", "."},
      {"a/b\\c", "abc"},
      {"xn--bcher-kva.example", "xn--bcher-kva.example"},
      {"bücher.example", "bcher.example"},
      {"issue_cert_example.com", "issue_cert_example.com"},
  };
  for (const Row& row : rows) {
    INFO(row.input);
    CHECK(keys::safe(row.input) == row.expected);
  }
}

TEST_CASE("ACME issuer keys are the directory URL's host and path", "[pki][storage]") {
  CHECK(keys::acme_issuer_key("https://acme-v02.api.letsencrypt.org/directory") ==
        "acme-v02.api.letsencrypt.org-directory");
  CHECK(keys::acme_issuer_key("https://acme-staging-v02.api.letsencrypt.org/directory") ==
        "acme-staging-v02.api.letsencrypt.org-directory");
  CHECK(keys::acme_issuer_key("https://acme.zerossl.com/v2/DV90") == "acme.zerossl.com-v2-DV90");
  CHECK(keys::acme_issuer_key("https://127.0.0.1:14000/dir") == "127.0.0.1:14000-dir");
  CHECK(keys::acme_issuer_key("https://ca.example/") == "ca.example");
  CHECK(keys::acme_issuer_key("https://ca.example") == "ca.example");
}

TEST_CASE("certificate keys follow Caddy's storage layout", "[pki][storage]") {
  const std::string issuer = keys::acme_issuer_key("https://acme-v02.api.letsencrypt.org/directory");
  CHECK(keys::cert_file(issuer, "example.com") ==
        "certificates/acme-v02.api.letsencrypt.org-directory/example.com/example.com.crt");
  CHECK(keys::cert_key_file(issuer, "*.example.com") ==
        "certificates/acme-v02.api.letsencrypt.org-directory/wildcard_.example.com/wildcard_.example.com.key");
  CHECK(keys::cert_meta_file("local", "localhost") == "certificates/local/localhost/localhost.json");
  CHECK(keys::cert_file("127.0.0.1:14000-dir", "a.test") == "certificates/127.0.0.1-14000-dir/a.test/a.test.crt");
  CHECK(keys::ca_prefix("local") == "pki/authorities/local");
  CHECK(keys::issue_lock_name("example.com") == "issue_cert_example.com");
}
