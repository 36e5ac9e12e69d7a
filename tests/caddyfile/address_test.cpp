// Site addresses: upstream ParseAddress's test table, normalisation, and every row of the
// seed's address table (Caddyfile Concepts, "Addresses") with the HTTP/HTTPS decision it implies.
#include "acmetool/caddyfile/address.h"

#include <catch2/catch.hpp>

#include "adapt_helpers.h"

using namespace acmetool::caddyfile;
using acmetool::caddyfile::test::adapt_error;
using acmetool::caddyfile::test::adapt_text;

TEST_CASE("addresses split into scheme, host, port and path as upstream ParseAddress", "[caddyfile][address]") {
  struct Row {
    const char* input;
    const char* scheme;
    const char* host;
    const char* port;
    const char* path;
  };
  const Row rows[] = {
      {"", "", "", "", ""},
      {"localhost", "", "localhost", "", ""},
      {"localhost:1234", "", "localhost", "1234", ""},
      {"localhost:", "", "localhost", "", ""},
      {"0.0.0.0", "", "0.0.0.0", "", ""},
      {"127.0.0.1:1234", "", "127.0.0.1", "1234", ""},
      {":1234", "", "", "1234", ""},
      {"[::1]", "", "::1", "", ""},
      {"[::1]:1234", "", "::1", "1234", ""},
      {":", "", "", "", ""},
      {"http://localhost:443", "http", "localhost", "443", ""},
      {"https://localhost:80", "https", "localhost", "80", ""},
      {"http://localhost", "http", "localhost", "", ""},
      {"https://localhost", "https", "localhost", "", ""},
      {"http://{env.APP_DOMAIN}", "http", "{env.APP_DOMAIN}", "", ""},
      {"{env.APP_DOMAIN}:80", "", "{env.APP_DOMAIN}", "80", ""},
      {"{env.APP_DOMAIN}/path", "", "{env.APP_DOMAIN}", "", "/path"},
      {"example.com/{env.APP_PATH}", "", "example.com", "", "/{env.APP_PATH}"},
      {"http://127.0.0.1", "http", "127.0.0.1", "", ""},
      {"http://[::1]", "http", "::1", "", ""},
      {"http://localhost:1234", "http", "localhost", "1234", ""},
      {"https://127.0.0.1:1234", "https", "127.0.0.1", "1234", ""},
      {"http://[::1]:1234", "http", "::1", "1234", ""},
      {"::1", "", "::1", "", ""},
      {"localhost::", "", "localhost::", "", ""},
      {"#$%@", "", "#$%@", "", ""},
      {"host/path", "", "host", "", "/path"},
      {"http://host/", "http", "host", "", "/"},
      {"//asdf", "", "", "", "//asdf"},
      {":1234/asdf", "", "", "1234", "/asdf"},
      {"http://host/path", "http", "host", "", "/path"},
      {"https://host:443/path/foo", "https", "host", "443", "/path/foo"},
      {"host:80/path", "", "host", "80", "/path"},
      {"/path", "", "", "", "/path"},
      {"http://", "http", "", "", ""},
      {"https://", "https", "", "", ""},
      {"*.example.com", "", "*.example.com", "", ""},
      {"[::1]:0", "", "::1", "0", ""},
      {":65535", "", "", "65535", ""},
  };
  for (const Row& row : rows) {
    INFO(row.input);
    const Address a = parse_address(row.input);
    CHECK(a.original == row.input);
    CHECK(a.scheme == row.scheme);
    CHECK(a.host == row.host);
    CHECK(a.port == row.port);
    CHECK(a.path == row.path);
  }
}

TEST_CASE("addresses are trimmed and cut at 4096 bytes", "[caddyfile][address]") {
  CHECK(parse_address("  example.com\t").original == "example.com");
  const std::string long_host(5000, 'a');
  CHECK(parse_address(long_host).host.size() == 4096);
}

TEST_CASE("ports must be decimal numbers in 0..65535, and service names are rejected", "[caddyfile][address]") {
  struct Row {
    const char* input;
    const char* error;
  };
  const Row rows[] = {
      {":http", "invalid port 'http': not a number"},
      {":https", "invalid port 'https': not a number"},
      {"localhost:http", "invalid port 'http': not a number"},
      {"localhost:https", "invalid port 'https': not a number"},
      {"http://localhost:https", "invalid port 'https': not a number"},
      {"http://localhost:http", "invalid port 'http': not a number"},
      {"host:https/path", "invalid port 'https': not a number"},
      {":70000", "port 70000 is out of range"},
      {":-1", "port -1 is out of range"},
      {":99999999999", "invalid port '99999999999': value out of range"},
      {"[::1]:8a", "invalid port '8a': not a number"},
  };
  for (const Row& row : rows) {
    INFO(row.input);
    try {
      parse_address(row.input);
      FAIL("no error");
    } catch (const AddressError& e) {
      CHECK(std::string(e.what()) == row.error);
    }
  }
}

TEST_CASE("normalising lower-cases scheme and host except placeholders and canonicalises IPv6",
          "[caddyfile][address]") {
  struct Row {
    const char* input;
    const char* scheme;
    const char* host;
    const char* path;
  };
  const Row rows[] = {
      {"HTTP://A/ABCDEF", "http", "a", "/ABCDEF"},
      {"A:2015/Path", "", "a", "/Path"},
      {"[::]", "", "::", ""},
      {"[0:0::1]:8443", "", "::1", ""},
      {"[2001:DB8:0:0:1:0:0:1]", "", "2001:db8::1:0:0:1", ""},
      {"[2001:db8:0:1:1:1:1:1]", "", "2001:db8:0:1:1:1:1:1", ""},
      {"[fe80::0:1%eth0]", "", "fe80::1%eth0", ""},
      {"[::FFFF:1.2.3.4]", "", "::ffff:1.2.3.4", ""},
      {"WWW.Example.COM", "", "www.example.com", ""},
      {"{env.SITE_Name}.EXAMPLE.com", "", "{env.SITE_Name}.example.com", ""},
      {"\\{A}.B", "", "\\{a}.b", ""},
      {"127.0.0.1", "", "127.0.0.1", ""},
  };
  for (const Row& row : rows) {
    INFO(row.input);
    const Address a = normalize_address(parse_address(row.input));
    CHECK(a.scheme == row.scheme);
    CHECK(a.host == row.host);
    CHECK(a.path == row.path);
    CHECK(a.original == row.input);
  }
  CHECK(lower_except_placeholders("ABC{Def}GHI{jKl") == "abc{Def}ghi{jKl");
}

TEST_CASE("addresses print as Caddy's Address.String", "[caddyfile][address]") {
  struct Row {
    Address address;
    const char* text;
  };
  const Row rows[] = {
      {{"", "http", "host", "1234", "/path"}, "http://host:1234/path"},
      {{"", "", "host", "", ""}, "http://host"},
      {{"", "", "host", "80", ""}, "http://host"},
      {{"", "", "host", "443", ""}, "https://host"},
      {{"", "https", "host", "443", ""}, "https://host"},
      {{"", "https", "host", "", ""}, "https://host"},
      {{"", "", "host", "80", "/path"}, "http://host/path"},
      {{"", "http", "", "1234", ""}, "http://:1234"},
      {{"", "", "", "", ""}, ""},
      {{"", "https", "::1", "8443", ""}, "https://[::1]:8443"},
  };
  for (const Row& row : rows) CHECK(row.address.to_string() == row.text);
}

TEST_CASE("every address of the seed's table implies its scheme, port, Host matcher and issuer",
          "[caddyfile][address][seed]") {
  struct Row {
    const char* address;
    const char* scheme;
    int port;
    bool host_matcher;
    bool automatic_https;
    CertSource source;
  };
  // Caddyfile Concepts, "Addresses": one row per line of the table, in order.
  const Row rows[] = {
      {"example.com", "https", 443, true, true, CertSource::Acme},          // publicly-trusted certificate
      {"*.example.com", "https", 443, true, true, CertSource::Acme},        // wildcard public certificate
      {"localhost", "https", 443, true, true, CertSource::Internal},        // locally-trusted certificate
      {"http://", "http", 80, false, false, CertSource::None},              // HTTP catch-all
      {"https://", "https", 443, false, false, CertSource::None},           // HTTPS catch-all
      {"http://example.com", "http", 80, true, false, CertSource::None},    // HTTP explicitly, Host matcher
      {"example.com:443", "https", 443, true, true, CertSource::Acme},      // HTTPS: the https_port default
      {":443", "https", 443, false, false, CertSource::None},               // HTTPS catch-all
      {":8080", "http", 8080, false, false, CertSource::None},              // HTTP on a non-standard port
      {"localhost:8080", "https", 8080, true, true, CertSource::Internal},  // HTTPS: has a valid domain
      {"https://example.com:443", "https", 443, true, true, CertSource::Acme},  // redundant but HTTPS
      {"127.0.0.1", "https", 443, true, true, CertSource::Internal},        // locally-trusted IP certificate
      {"http://127.0.0.1", "http", 80, true, false, CertSource::None},      // HTTP, IP Host matcher
  };
  for (const Row& row : rows) {
    INFO(row.address);
    const ImpliedAddress implied = imply_address(normalize_address(parse_address(row.address)));
    CHECK(implied.scheme == row.scheme);
    CHECK(implied.port == row.port);
    CHECK(implied.host_matcher == row.host_matcher);
    CHECK(implied.automatic_https == row.automatic_https);

    const Config config = adapt_text(std::string(row.address) + " {\n\trespond ok\n}\n");
    REQUIRE(config.sites.size() == 1);
    const SiteAddress& a = config.sites[0].addresses.at(0);
    CHECK(a.scheme == row.scheme);
    CHECK(a.port == row.port);
    CHECK(a.host_matcher == row.host_matcher);
    CHECK(a.automatic_https == row.automatic_https);
    CHECK(a.cert_source == row.source);
    CHECK(a.redirect_http == row.automatic_https);
    CHECK(a.listeners == std::vector<std::string>{":" + std::to_string(row.port)});
  }
}

TEST_CASE("http_port and https_port move the catch-alls and the convention check", "[caddyfile][address][seed]") {
  const PortConfig ports{8080, 8443};
  CHECK(imply_address(parse_address("http://"), ports).port == 8080);
  CHECK(imply_address(parse_address("https://"), ports).port == 8443);
  CHECK(imply_address(parse_address("example.com"), ports).port == 8443);
  CHECK(imply_address(parse_address(":8080"), ports).scheme == "http");
  CHECK(imply_address(parse_address(":8443"), ports).scheme == "https");
  // With other ports, 80 and 443 are just ports: a host makes it HTTPS, a catch-all HTTP.
  CHECK(imply_address(parse_address("example.com:80"), ports).scheme == "https");
  CHECK(imply_address(parse_address(":443"), ports).scheme == "http");
  CHECK_NOTHROW(imply_address(parse_address("http://x:443"), ports));
  CHECK_THROWS_WITH(imply_address(parse_address("http://x:8443"), ports),
                    "[http://x:8443] scheme and port violate convention");

  const Config config = adapt_text("{\n\thttp_port 8080\n\thttps_port 8443\n}\nhttp:// {\n\trespond a\n}\n"
                                   "https:// {\n\trespond b\n}\n");
  CHECK(config.sites[0].addresses[0].listeners == std::vector<std::string>{":8080"});
  CHECK(config.sites[1].addresses[0].listeners == std::vector<std::string>{":8443"});
}

TEST_CASE("unsupported schemes and unconventional ports are errors at the address", "[caddyfile][address]") {
  CHECK(adapt_error("ws://example.com {\n\trespond a\n}\n") ==
        "Caddyfile:1: invalid site address 'ws://example.com': the scheme ws:// is only supported in browsers; "
        "use http:// instead");
  CHECK(adapt_error("wss://example.com {\n\trespond a\n}\n") ==
        "Caddyfile:1: invalid site address 'wss://example.com': the scheme wss:// is only supported in browsers; "
        "use https:// instead");
  CHECK(adapt_error("ftp://example.com {\n\trespond a\n}\n") ==
        "Caddyfile:1: invalid site address 'ftp://example.com': unsupported URL scheme ftp://");
  CHECK(adapt_error("a.example {\n}\nhttp://localhost:443 {\n\trespond a\n}\n") ==
        "Caddyfile:3: invalid site address 'http://localhost:443': [http://localhost:443] scheme and port violate "
        "convention");
  CHECK(adapt_error("https://localhost:80 {\n\trespond a\n}\n") ==
        "Caddyfile:1: invalid site address 'https://localhost:80': [https://localhost:80] scheme and port violate "
        "convention");
  CHECK(adapt_error("localhost:http {\n\trespond a\n}\n") ==
        "Caddyfile:1: invalid site address 'localhost:http': invalid port 'http': not a number");
}

TEST_CASE("environment variables and IPv6 literals work as site addresses", "[caddyfile][address][seed]") {
  Config config = adapt_text("{$DOMAIN:localhost} {\n\trespond a\n}\n");
  CHECK(config.sites[0].addresses[0].address.host == "localhost");
  CHECK(config.sites[0].addresses[0].cert_source == CertSource::Internal);
  config = adapt_text("{$DOMAIN:localhost} {\n\trespond a\n}\n", nullptr, {{"DOMAIN", "Example.COM"}});
  CHECK(config.sites[0].addresses[0].address.host == "example.com");
  CHECK(config.sites[0].addresses[0].address.original == "Example.COM");
  CHECK(config.sites[0].addresses[0].cert_source == CertSource::Acme);

  config = adapt_text("[::1]:8443, http://[2001:DB8::1] {\n\trespond a\n}\n");
  const SiteAddress& v6 = config.sites[0].addresses[0];
  CHECK(v6.address.host == "::1");
  CHECK(v6.scheme == "https");
  CHECK(v6.listeners == std::vector<std::string>{":8443"});
  CHECK(v6.cert_source == CertSource::Internal);
  CHECK(config.sites[0].addresses[1].address.host == "2001:db8::1");
  CHECK(config.sites[0].addresses[1].scheme == "http");
}

TEST_CASE("join_host_port brackets IPv6 and is_ip_literal follows net.ParseIP", "[caddyfile][address]") {
  CHECK(join_host_port("::1", "443") == "[::1]:443");
  CHECK(join_host_port("", "80") == ":80");
  CHECK(join_host_port("example.com", "8080") == "example.com:8080");
  CHECK(is_ip_literal("127.0.0.1"));
  CHECK(is_ip_literal("::1"));
  CHECK(is_ip_literal("::ffff:10.0.0.1"));
  CHECK_FALSE(is_ip_literal("01.2.3.4"));
  CHECK_FALSE(is_ip_literal("[::1]"));
  CHECK_FALSE(is_ip_literal("fe80::1%eth0"));
  CHECK_FALSE(is_ip_literal("localhost"));
}
