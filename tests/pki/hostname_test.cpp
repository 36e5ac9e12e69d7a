#include "acmetool/pki/hostname.h"

#include <catch2/catch.hpp>
#include <string>

using acmetool::pki::NameClass;
using acmetool::pki::NameQualification;
namespace pki = acmetool::pki;

namespace {

constexpr NameClass kPublic = NameClass::Public;
constexpr NameClass kInternal = NameClass::Internal;
constexpr NameClass kIp = NameClass::Ip;
constexpr NameClass kInvalid = NameClass::Invalid;

struct Row {
  std::string input;
  NameClass name_class;
  std::string name;    // expected normalised form
  std::string reason;  // expected substring of the reason ("" when any reason will do)
};

std::string repeat(char c, size_t n) { return std::string(n, c); }

// `label` and a dot, `n` times.
std::string repeat_label(const std::string& label, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += label + ".";
  return out;
}

// "aaa...a" labels joined by dots, `total` characters in all.
std::string name_of_length(size_t total) {
  std::string out;
  while (out.size() < total) {
    if (!out.empty()) out += '.';
    out += repeat('a', std::min<size_t>(63, total - out.size()));
  }
  return out;
}

void check_rows(const std::vector<Row>& rows) {
  for (const Row& row : rows) {
    const NameQualification q = pki::qualify_name(row.input);
    INFO("input: '" << row.input << "' -> " << pki::to_string(q.name_class) << " '" << q.name << "': " << q.reason);
    CHECK(q.input == row.input);
    CHECK(q.name_class == row.name_class);
    CHECK(q.name == row.name);
    CHECK(q.reason.find(row.reason) != std::string::npos);
    CHECK_FALSE(q.reason.empty());
    CHECK(q.reason.find('\n') == std::string::npos);
    const char* issuer = row.name_class == kPublic ? "acme" : row.name_class == kInvalid ? "" : "local";
    CHECK(q.issuer == issuer);
  }
}

}  // namespace

TEST_CASE("public DNS names qualify for a public certificate in lower-case A-label form", "[pki][hostname]") {
  check_rows({
      {"example.com", kPublic, "example.com", "public DNS name"},
      {"Example.COM", kPublic, "example.com", "public DNS name"},
      {"  www.example.com\t", kPublic, "www.example.com", "public DNS name"},
      {"a.b.c.d.example.org", kPublic, "a.b.c.d.example.org", ""},
      {"x1-y2.example.net", kPublic, "x1-y2.example.net", ""},
      {"1.example.com", kPublic, "1.example.com", ""},
      {"123.example", kPublic, "123.example", ""},
      {"example.com1", kPublic, "example.com1", ""},
      {"a-b-c.example", kPublic, "a-b-c.example", ""},
      {"a.io", kPublic, "a.io", ""},
      {"test.example", kPublic, "test.example", ""},  // special-use TLDs other than ours are the CA's call
      {"localhost.example.com", kPublic, "localhost.example.com", ""},
      {"local.example.com", kPublic, "local.example.com", ""},
      {"example.internal.com", kPublic, "example.internal.com", ""},
      {"arpa.example", kPublic, "arpa.example", ""},
      {"notlocal", kInternal, "notlocal", "single-label"},
  });
}

TEST_CASE("wildcards are valid only as a whole left-most label", "[pki][hostname]") {
  check_rows({
      {"*.example.com", kPublic, "*.example.com", "wildcard"},
      {"*.EXAMPLE.com", kPublic, "*.example.com", "DNS-01"},
      {"*.a.b.example.com", kPublic, "*.a.b.example.com", ""},
      {"*.com", kInternal, "*.com", "no public CA issues '*.com'"},
      {"*.localhost", kInternal, "*.localhost", "under .localhost"},
      {"*.local", kInternal, "*.local", "under .local"},
      {"*.home.arpa", kInternal, "*.home.arpa", "home.arpa"},
      {"*", kInvalid, "*", "a lone '*'"},
      {"*.", kInvalid, "*.", "ends with a dot"},
      {"a*.example.com", kInvalid, "a*.example.com", "label 'a*' mixes '*'"},
      {"*a.example.com", kInvalid, "*a.example.com", "mixes '*'"},
      {"**.example.com", kInvalid, "**.example.com", "mixes '*'"},
      {"x.*.example.com", kInvalid, "x.*.example.com", "below the left-most label"},
      {"*.*.example.com", kInvalid, "*.*.example.com", "below the left-most label"},
      {"example.*", kInvalid, "example.*", "below the left-most label"},
  });
}

TEST_CASE("loopback and special-use names are internal, bare zones included", "[pki][hostname]") {
  check_rows({
      {"localhost", kInternal, "localhost", "loopback name"},
      {"LocalHost", kInternal, "localhost", "loopback name"},
      {"app.localhost", kInternal, "app.localhost", "under .localhost"},
      {"a.b.localhost", kInternal, "a.b.localhost", "under .localhost"},
      {"printer.local", kInternal, "printer.local", "multicast DNS"},
      {"local", kInternal, "local", "local: the multicast DNS domain"},
      {"db.internal", kInternal, "db.internal", "under .internal"},
      {"internal", kInternal, "internal", "internal: reserved"},
      {"nas.home.arpa", kInternal, "nas.home.arpa", "RFC 8375"},
      {"home.arpa", kInternal, "home.arpa", "home.arpa: reserved"},
      {"myhost", kInternal, "myhost", "single-label name: no public CA"},
      {"MyHost ", kInternal, "myhost", "single-label"},
      {"a", kInternal, "a", "single-label"},
      {"x-1", kInternal, "x-1", "single-label"},
  });
}

TEST_CASE("IPv4 addresses are class ip, and only the special ranges are called internal", "[pki][hostname]") {
  check_rows({
      {"127.0.0.1", kIp, "127.0.0.1", "127.0.0.0/8: loopback"},
      {"127.255.255.254", kIp, "127.255.255.254", "loopback"},
      {"10.0.0.5", kIp, "10.0.0.5", "IP address in 10.0.0.0/8: private"},
      {"172.16.0.1", kIp, "172.16.0.1", "172.16.0.0/12: private"},
      {"172.31.255.255", kIp, "172.31.255.255", "172.16.0.0/12"},
      {"172.32.0.1", kIp, "172.32.0.1", "public IP address"},
      {"172.15.255.255", kIp, "172.15.255.255", "public IP address"},
      {"192.168.1.1", kIp, "192.168.1.1", "192.168.0.0/16: private"},
      {"169.254.10.20", kIp, "169.254.10.20", "169.254.0.0/16: link-local"},
      {"0.0.0.0", kIp, "0.0.0.0", "0.0.0.0/8: this network"},
      {"0.1.0.0", kIp, "0.1.0.0", "0.0.0.0/8"},
      {"8.8.8.8", kIp, "8.8.8.8", "public CAs issue IP certificates only on request"},
      {"100.64.0.1", kIp, "100.64.0.1", "public IP address"},  // CGNAT, as in CertMagic
      {"192.0.2.1", kIp, "192.0.2.1", "public IP address"},    // documentation range
      {"255.255.255.255", kIp, "255.255.255.255", "public IP address"},
      {" 10.1.2.3 ", kIp, "10.1.2.3", "private"},
      {"01.2.3.4", kInvalid, "01.2.3.4", "is not an IP address"},
      {"1.2.3.04", kInvalid, "1.2.3.04", "without leading zeros"},
      {"256.1.1.1", kInvalid, "256.1.1.1", "is not an IP address"},
      {"1.2.3", kInvalid, "1.2.3", "is not an IP address"},
      {"0x7f.0.0.1", kInvalid, "0x7f.0.0.1", "last label '1' is all digits"},
      {"example.123", kInvalid, "example.123", "last label '123' is all digits"},
      {"1.2.3.4.", kInvalid, "1.2.3.4.", "ends with a dot"},
      {"[1.2.3.4]", kInvalid, "[1.2.3.4]", "only an IPv6 address may have"},
      {"1.2.3.4:443", kInvalid, "1.2.3.4:443", "remove ':443'"},
  });
}

TEST_CASE("IPv6 addresses are class ip in RFC 5952 form, mapped IPv4 judged as IPv4", "[pki][hostname]") {
  check_rows({
      {"::1", kIp, "::1", "::1/128: loopback"},
      {"[::1]", kIp, "::1", "loopback"},
      {"0:0:0:0:0:0:0:1", kIp, "::1", "loopback"},
      {"::", kIp, "::", "unspecified"},
      {"fe80::1", kIp, "fe80::1", "fe80::/10: link-local"},
      {"FEBF::1", kIp, "febf::1", "link-local"},
      {"fec0::1", kIp, "fec0::1", "public IP address"},
      {"fd12:3456::1", kIp, "fd12:3456::1", "fc00::/7: unique local"},
      {"fc00::", kIp, "fc00::", "unique local"},
      {"2001:4860:0:0:0:0:0:8888", kIp, "2001:4860::8888", "only on request"},
      {"[2001:DB8::1]", kIp, "2001:db8::1", "public IP address"},
      {"64:ff9b::1.2.3.4", kIp, "64:ff9b::102:304", "public IP address"},  // NAT64; CertMagic: internal
      {"::ffff:10.0.0.1", kIp, "::ffff:10.0.0.1", "IPv4-mapped IP address in 10.0.0.0/8: private"},
      {"::FFFF:127.0.0.1", kIp, "::ffff:127.0.0.1", "127.0.0.0/8"},
      {"::ffff:8.8.8.8", kIp, "::ffff:8.8.8.8", "public IP address"},
      {"::ffff:0a00:0001", kIp, "::ffff:10.0.0.1", "private"},
      {"fe80::1%eth0", kInvalid, "fe80::1%eth0", "remove '%eth0'"},
      {"[fe80::1%eth0]", kInvalid, "[fe80::1%eth0]", "has a zone"},
      {"[::1]:8443", kInvalid, "[::1]:8443", "has a port: remove ':8443'"},
      {"1::2::3", kInvalid, "1::2::3", "not a valid IPv6 address"},
      {"::ffff:01.2.3.4", kInvalid, "::ffff:01.2.3.4", "not a valid IPv6 address"},
      {"[example.com]", kInvalid, "[example.com]", "only an IPv6 address may have"},
  });
}

TEST_CASE("names with a port, path, scheme or a forbidden character are invalid with a fix", "[pki][hostname]") {
  check_rows({
      {"", kInvalid, "", "empty name"},
      {"   ", kInvalid, "", "empty name"},
      {"localhost:8080", kInvalid, "localhost:8080", "has a port: remove ':8080'"},
      {"example.com:", kInvalid, "example.com:", "remove ':'"},
      {"https://example.com", kInvalid, "https://example.com", "remove the scheme 'https://'"},
      {"example.com/path", kInvalid, "example.com/path", "has a path: remove '/path'"},
      {"user@example.com", kInvalid, "user@example.com", "remove 'user@'"},
      {"a_b.example.com", kInvalid, "a_b.example.com", "contains '_'"},
      {"_acme-challenge.example.com", kInvalid, "_acme-challenge.example.com", "use '-'"},
      {"a b.example.com", kInvalid, "a b.example.com", "contains whitespace"},
      {"a\tb", kInvalid, "a\\x09b", "whitespace"},
      {"exa!mple.com", kInvalid, "exa!mple.com", "contains '!'"},
      {"a,b.example", kInvalid, "a,b.example", "contains ','"},
      {"a+b.example", kInvalid, "a+b.example", "contains '+'"},
      {std::string("a\x01"
                   "b.example"),
       kInvalid, "a\\x01b.example", "contains '\\x01'"},
      {std::string("a\0b.example", 11), kInvalid, "a\\x00b.example", "contains '\\x00'"},
      {".example.com", kInvalid, ".example.com", "starts with a dot"},
      {"example.com.", kInvalid, "example.com.", "ends with a dot"},
      {".", kInvalid, ".", "starts with a dot"},
      {"a..b", kInvalid, "a..b", "empty label"},
      {"example..com", kInvalid, "example..com", "remove the extra dot"},
  });
}

TEST_CASE("labels obey RFC 1123 hyphen rules and the 63 and 253 octet limits", "[pki][hostname]") {
  const std::string label63 = repeat('a', 63);
  const std::string label64 = repeat('a', 64);
  check_rows({
      {"-example.com", kInvalid, "-example.com", "label '-example' starts with a hyphen"},
      {"example-.com", kInvalid, "example-.com", "label 'example-' ends with a hyphen"},
      {"a-.example", kInvalid, "a-.example", "label 'a-' ends with a hyphen"},
      {"www.-a.example", kInvalid, "www.-a.example", "starts with a hyphen"},
      {"example.com-", kInvalid, "example.com-", "ends with a hyphen"},
      {"-", kInvalid, "-", "starts with a hyphen"},
      {"ab--cd.example", kInvalid, "ab--cd.example", "'--' in positions 3-4"},
      {"a--b.example", kPublic, "a--b.example", "public DNS name"},
      {"abc--d.example", kPublic, "abc--d.example", "public DNS name"},
      {label63 + ".example", kPublic, label63 + ".example", "public DNS name"},
      {label64 + ".example", kInvalid, label64 + ".example", "is 64 characters long; the limit is 63"},
      {name_of_length(253), kPublic, name_of_length(253), "public DNS name"},
      {name_of_length(254), kInvalid, name_of_length(254), "is 254 characters long; the limit is 253"},
  });
}

TEST_CASE("internationalised names become A-labels and bad ones are rejected", "[pki][hostname]") {
  check_rows({
      {"bücher.example", kPublic, "xn--bcher-kva.example", "public DNS name"},
      {"BÜCHER.example", kPublic, "xn--bcher-kva.example", ""},
      {"Straße.de", kPublic, "xn--strae-oqa.de", ""},  // IDNA2008 keeps ß; transitional would say strasse.de
      {"café.example", kPublic, "xn--caf-dma.example", ""},
      {"cafe\xcc\x81.example", kPublic, "xn--caf-dma.example", ""},  // decomposed é is normalised (NFC)
      {"*.bücher.example", kPublic, "*.xn--bcher-kva.example", "wildcard"},
      {"bücher。example", kPublic, "xn--bcher-kva.example", ""},  // ideographic full stop
      {"ＥＸＡＭＰＬＥ.com", kPublic, "example.com", ""},
      {"שלום.example", kPublic, "xn--9dbne9b.example", ""},
      {"пример.рф", kPublic, "xn--e1afmkfd.xn--p1ai", ""},
      {"ü", kInternal, "xn--tda", "single-label"},
      {"drucker.bücher.local", kInternal, "drucker.xn--bcher-kva.local", "under .local"},
      {"xn--bcher-kva.example", kPublic, "xn--bcher-kva.example", "public DNS name"},
      {"XN--BCHER-KVA.example", kPublic, "xn--bcher-kva.example", ""},
      {"😀.example", kPublic, "xn--e28h.example", "IDNA2008 disallows it"},
      {"xn--ls8h.la", kPublic, "xn--ls8h.la", "transitional"},
      {"xn--zz.example", kInvalid, "xn--zz.example", "label 'xn--zz' is not a valid A-label"},
      {"xn--.example", kInvalid, "xn--.example", "label 'xn--' ends with a hyphen"},
      {"xn--a.example", kInvalid, "xn--a.example", "is not a valid A-label"},
      {"xn--bcher-jua.example", kPublic, "xn--bcher-jua.example", "public DNS name"},  // böcher
      {"xn--bcher-2pa.example", kInvalid, "xn--bcher-2pa.example", "'xn--bcher-2pa' is not a valid A-label"},
      {"-bücher.example", kInvalid, "-bücher.example", "starts with a hyphen"},
      {"bücher example", kInvalid, "bücher example", "whitespace"},
      {"bücher.example:8080", kInvalid, "bücher.example:8080", "remove ':8080'"},
      {"bücher＿x.example", kInvalid, "xn--bcher_x-n2a.example", "contains '_'"},
      {"bü--x.example", kInvalid, "bü--x.example", "not a valid internationalised name"},
      {"\xff.example", kInvalid, "\xff.example", "not a valid internationalised name: the name is not valid UTF-8"},
      {repeat('a', 55) + "ü.example", kPublic, "xn--" + repeat('a', 55) + "-8yf.example", ""},  // 63 octets
      {repeat('a', 56) + "ü.example", kInvalid, repeat('a', 56) + "ü.example",
       "a label is over 63 characters in A-label form"},
      {repeat_label("ü", 31) + "com", kPublic, repeat_label("xn--tda", 31) + "com", ""},      // 251 octets
      {repeat_label("ü", 31) + "abcde", kPublic, repeat_label("xn--tda", 31) + "abcde", ""},  // 253 octets
      {repeat_label("ü", 31) + "abcdef", kInvalid, repeat_label("ü", 31) + "abcdef", "over 253 characters in A-label"},
      {repeat_label("ü", 32) + "com", kInvalid, repeat_label("ü", 32) + "com", "over 253 characters in A-label form"},
  });
}

TEST_CASE("to_string spells each class as the CLI prints it", "[pki][hostname]") {
  CHECK(pki::to_string(kPublic) == "public");
  CHECK(pki::to_string(kInternal) == "internal");
  CHECK(pki::to_string(kIp) == "ip");
  CHECK(pki::to_string(kInvalid) == "invalid");
}

TEST_CASE("the predicates agree with qualify_name", "[pki][hostname]") {
  CHECK(pki::is_ip_address("10.0.0.1"));
  CHECK(pki::is_ip_address("2001:db8::1"));
  CHECK(pki::is_ip_address("::ffff:1.2.3.4"));
  CHECK_FALSE(pki::is_ip_address("[::1]"));
  CHECK_FALSE(pki::is_ip_address("fe80::1%eth0"));
  CHECK_FALSE(pki::is_ip_address("01.2.3.4"));
  CHECK_FALSE(pki::is_ip_address(" 1.2.3.4"));
  CHECK_FALSE(pki::is_ip_address(std::string("1.2.3.4\0x", 9)));
  CHECK_FALSE(pki::is_ip_address("example.com"));

  CHECK(pki::is_internal_name("localhost"));
  CHECK(pki::is_internal_name("a.home.arpa"));
  CHECK(pki::is_internal_name("myhost"));
  CHECK(pki::is_internal_name("192.168.0.1"));
  CHECK(pki::is_internal_name("[fd00::1]"));
  CHECK_FALSE(pki::is_internal_name("8.8.8.8"));
  CHECK_FALSE(pki::is_internal_name("example.com"));
  CHECK_FALSE(pki::is_internal_name("localhost:80"));

  CHECK(pki::qualifies_for_public_cert("example.com"));
  CHECK(pki::qualifies_for_public_cert("*.example.com"));
  CHECK(pki::qualifies_for_public_cert("bücher.example"));
  CHECK_FALSE(pki::qualifies_for_public_cert("*.com"));
  CHECK_FALSE(pki::qualifies_for_public_cert("localhost"));
  CHECK_FALSE(pki::qualifies_for_public_cert("8.8.8.8"));
  CHECK_FALSE(pki::qualifies_for_public_cert("a..b"));
}

TEST_CASE("match_wildcard matches one left-most label, case-insensitively", "[pki][hostname]") {
  struct MatchRow {
    const char* name;
    const char* pattern;
    bool matches;
  };
  const MatchRow rows[] = {
      {"a.example.com", "*.example.com", true},
      {"A.Example.COM", "*.example.com", true},
      {"a.example.com", "*.EXAMPLE.com", true},
      {"xn--bcher-kva.example.com", "*.example.com", true},
      {"example.com", "*.example.com", false},
      {"a.b.example.com", "*.example.com", false},
      {".example.com", "*.example.com", false},
      {"aexample.com", "*.example.com", false},
      {"a.example.org", "*.example.com", false},
      {"*.example.com", "*.example.com", true},
      {"example.com", "example.com", true},
      {"Example.com", "example.COM", true},
      {"a.example.com", "example.com", false},
      {"a.b.example.com", "*.*.example.com", false},
      {"ab.example.com", "a*.example.com", false},
      {"example.com", "*", false},
      {"a", "*.", false},
      {"a.", "*.", false},
      {"", "*.example.com", false},
  };
  for (const MatchRow& row : rows) {
    INFO(row.name << " vs " << row.pattern);
    CHECK(pki::match_wildcard(row.name, row.pattern) == row.matches);
  }
}
