// The PROXY protocol header parser (proxy_protocol.h), on headers as HAProxy and AWS NLB send them.
#include "acmetool/serve/proxy_protocol.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace serve = acmetool::serve;
using Status = serve::ProxyHeaderStatus;

namespace {

serve::ProxyHeaderResult parse(const std::string& bytes) {
  return serve::parse_proxy_header({reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()});
}

const std::string kV2Signature("\r\n\r\n\0\r\nQUIT\n", 12);

// A version 2 header: command byte, family/protocol byte, then `body` (addresses and TLVs).
std::string v2(unsigned char command, unsigned char family, const std::string& body) {
  std::string out = kV2Signature;
  out += static_cast<char>(command);
  out += static_cast<char>(family);
  out += static_cast<char>(body.size() >> 8);
  out += static_cast<char>(body.size() & 0xff);
  return out + body;
}

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (const int v : values) out += static_cast<char>(v);
  return out;
}

}  // namespace

TEST_CASE("PROXY version 1 headers give the source address and their length", "[proxy_protocol]") {
  const std::string header = "PROXY TCP4 203.0.113.9 192.0.2.1 56324 443\r\n";
  serve::ProxyHeaderResult r = parse(header + "\x16\x03\x01");
  REQUIRE(r.status == Status::Complete);
  CHECK(r.length == header.size());
  CHECK(r.source_ip == "203.0.113.9");
  CHECK(r.source_port == 56324);

  r = parse("PROXY TCP6 2001:db8::1 2001:db8::2 65535 80\r\nGET / HTTP/1.1\r\n");
  REQUIRE(r.status == Status::Complete);
  CHECK(r.source_ip == "2001:db8::1");
  CHECK(r.source_port == 65535);
  r = parse("PROXY TCP6 ::ffff:198.51.100.4 ::1 1 2\r\n");
  CHECK(r.source_ip == "198.51.100.4");

  // UNKNOWN: complete, the TCP peer stands.
  r = parse("PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n");
  REQUIRE(r.status == Status::Complete);
  CHECK(r.source_ip.empty());
  CHECK(parse("PROXY UNKNOWN\r\n").status == Status::Complete);

  // Every prefix asks for more.
  for (std::size_t n = 0; n < header.size(); ++n) {
    INFO(n);
    CHECK(parse(header.substr(0, n)).status == Status::NeedMore);
  }
}

TEST_CASE("malformed version 1 headers are invalid, other bytes absent", "[proxy_protocol]") {
  for (const std::string bad : {"PROXY TCP4 203.0.113.9 192.0.2.1 56324\r\n", "PROXY TCP4 203.0.113.9 192.0.2.1 1 2 3\r\n",
                                "PROXY TCP4 2001:db8::1 192.0.2.1 1 2\r\n", "PROXY TCP6 203.0.113.9 ::1 1 2\r\n",
                                "PROXY TCP4 203.0.113.9 192.0.2.1 65536 443\r\n", "PROXY TCP4 203.0.113.9 192.0.2.1 -1 443\r\n",
                                "PROXY TCP4  203.0.113.9 192.0.2.1 1 443\r\n", "PROXY UDP4 203.0.113.9 192.0.2.1 1 2\r\n",
                                "PROXY TCP4 203.0.113.9 192.0.2.1 1 2\n"}) {
    INFO(bad);
    const serve::ProxyHeaderResult r = parse(bad);
    CHECK((r.status == Status::Invalid || (r.status == Status::NeedMore && bad.find("\r\n") == std::string::npos)));
  }
  CHECK(parse("PROXY " + std::string(101, 'x')).status == Status::Invalid);  // no CRLF in 107 bytes
  CHECK(parse("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n").error.empty());
  CHECK(parse("PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n").error.starts_with("PROXY protocol: version 1 port"));
  for (const std::string other : {"GET / HTTP/1.1\r\n", "PROPFIND / HTTP/1.1\r\n", "\x16\x03\x01\x02\x00", "proxy TCP4"}) {
    INFO(other);
    CHECK(parse(other).status == Status::Absent);
  }
}

TEST_CASE("PROXY version 2 headers: PROXY with addresses, LOCAL, TLVs skipped", "[proxy_protocol]") {
  // TCP over IPv4: 203.0.113.9:56324 -> 192.0.2.1:443, then a TLV the parser skips (AWS's VPC endpoint).
  const std::string addresses = bytes({203, 0, 113, 9, 192, 0, 2, 1, 0xdc, 0x04, 0x01, 0xbb});
  const std::string tlv = bytes({0xea, 0x00, 0x05}) + "\x01vpce";
  const std::string header = v2(0x21, 0x11, addresses + tlv);
  serve::ProxyHeaderResult r = parse(header + "\x16\x03\x01");
  REQUIRE(r.status == Status::Complete);
  CHECK(r.length == header.size());
  CHECK(r.source_ip == "203.0.113.9");
  CHECK(r.source_port == 56324);
  for (std::size_t n = 0; n < header.size(); ++n) {
    INFO(n);
    CHECK(parse(header.substr(0, n)).status == Status::NeedMore);
  }

  // TCP over IPv6.
  std::string six(16, '\0');
  six[0] = 0x20, six[1] = 0x01, six[2] = 0x0d, six[3] = static_cast<char>(0xb8), six[15] = 1;
  r = parse(v2(0x21, 0x21, six + std::string(16, '\0') + bytes({0x30, 0x39, 0, 80})));
  REQUIRE(r.status == Status::Complete);
  CHECK(r.source_ip == "2001:db8::1");
  CHECK(r.source_port == 12345);

  // LOCAL (a balancer's health check) and UNSPEC: complete, no source.
  r = parse(v2(0x20, 0x00, ""));
  REQUIRE(r.status == Status::Complete);
  CHECK(r.source_ip.empty());
  CHECK(parse(v2(0x20, 0x11, addresses)).source_ip.empty());
  CHECK(parse(v2(0x21, 0x00, "")).source_ip.empty());

  CHECK(parse(v2(0x11, 0x11, addresses)).status == Status::Invalid);  // version 1 in a v2 header
  CHECK(parse(v2(0x22, 0x11, addresses)).status == Status::Invalid);  // command 2
  CHECK(parse(v2(0x21, 0x11, addresses.substr(0, 11))).status == Status::Invalid);  // short addresses
  CHECK(parse(v2(0x21, 0x41, addresses)).status == Status::Invalid);  // family 4
  CHECK(parse(v2(0x21, 0x11, std::string(serve::kMaxProxyHeader, 'x'))).status == Status::Invalid);
}
