// The PROXY protocol header parser; see proxy_protocol.h.
#include "acmetool/serve/proxy_protocol.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <string_view>

namespace acmetool::serve {
namespace {

using Bytes = std::span<const std::uint8_t>;

constexpr std::string_view kV1Signature = "PROXY ";
constexpr std::array<std::uint8_t, 12> kV2Signature = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                       0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr std::size_t kV1Max = 107;
constexpr std::size_t kV2Fixed = 16;

ProxyHeaderResult need(std::size_t more) {
  ProxyHeaderResult r;
  r.bytes_wanted = std::max<std::size_t>(more, 1);
  return r;
}

ProxyHeaderResult invalid(std::string error) {
  ProxyHeaderResult r;
  r.status = ProxyHeaderStatus::Invalid;
  r.error = "PROXY protocol: " + std::move(error);
  return r;
}

// How many leading bytes of `data` match `signature` before they run out (or a mismatch: -1).
int prefix_match(Bytes data, Bytes signature) {
  const std::size_t n = std::min(data.size(), signature.size());
  return std::equal(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(n), signature.begin())
             ? static_cast<int>(n)
             : -1;
}

// The text of a binary address, IPv4-mapped IPv6 given as IPv4.
std::string address_text(int family, const std::uint8_t* bytes) {
  char text[INET6_ADDRSTRLEN] = {};
  static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (family == AF_INET6 && std::equal(kMapped, kMapped + 12, bytes)) {
    family = AF_INET;
    bytes += 12;
  }
  ::inet_ntop(family, bytes, text, sizeof text);
  return text;
}

// A decimal port: 1 to 5 digits, at most 65535.
bool parse_port(std::string_view text, int& port) {
  if (text.empty() || text.size() > 5) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  return ec == std::errc() && end == text.data() + text.size() && port >= 0 && port <= 65535;
}

ProxyHeaderResult parse_v1(Bytes data) {
  const std::string_view text(reinterpret_cast<const char*>(data.data()), std::min(data.size(), kV1Max));
  const std::size_t crlf = text.find("\r\n");
  if (crlf == std::string_view::npos) {
    if (data.size() >= kV1Max) return invalid("version 1 header without CRLF in 107 bytes");
    return need(1);
  }
  ProxyHeaderResult r;
  r.status = ProxyHeaderStatus::Complete;
  r.length = crlf + 2;
  std::string_view rest = text.substr(kV1Signature.size(), crlf - kV1Signature.size());
  // Five fields separated by single spaces: protocol, source, destination, ports.
  std::string_view fields[5];
  std::size_t count = 0;
  while (!rest.empty() && count < 5) {
    const std::size_t space = rest.find(' ');
    fields[count++] = rest.substr(0, space);
    rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
  }
  if (count >= 1 && fields[0] == "UNKNOWN") return r;
  if (count != 5 || !rest.empty()) return invalid("version 1 header is not 'PROXY TCP4|TCP6 SRC DST SPORT DPORT'");
  const int family = fields[0] == "TCP4" ? AF_INET : fields[0] == "TCP6" ? AF_INET6 : 0;
  if (family == 0) return invalid("version 1 protocol is not TCP4, TCP6 or UNKNOWN");  // raw bytes stay out of logs
  std::uint8_t source[16], destination[16];
  if (::inet_pton(family, std::string(fields[1]).c_str(), source) != 1 ||
      ::inet_pton(family, std::string(fields[2]).c_str(), destination) != 1) {
    return invalid("version 1 address is not " + std::string(fields[0]));
  }
  int destination_port = 0;
  if (!parse_port(fields[3], r.source_port) || !parse_port(fields[4], destination_port)) {
    return invalid("version 1 port is not 0..65535");
  }
  r.source_ip = address_text(family, source);
  return r;
}

ProxyHeaderResult parse_v2(Bytes data) {
  if (data.size() < kV2Fixed) return need(kV2Fixed - data.size());
  const std::uint8_t version_command = data[12], family_protocol = data[13];
  const std::size_t length = kV2Fixed + (std::size_t{data[14]} << 8 | data[15]);
  if (version_command >> 4 != 2) return invalid("version 2 header with version " + std::to_string(version_command >> 4));
  const int command = version_command & 0x0f;
  if (command > 1) return invalid("version 2 command " + std::to_string(command) + " is neither LOCAL nor PROXY");
  if (length > kMaxProxyHeader) return invalid("version 2 header of " + std::to_string(length) + " bytes");
  if (data.size() < length) return need(length - data.size());
  ProxyHeaderResult r;
  r.status = ProxyHeaderStatus::Complete;
  r.length = length;
  const int family = family_protocol >> 4, transport = family_protocol & 0x0f;
  if (family > 3 || transport > 2) return invalid("version 2 address family/protocol byte " + std::to_string(family_protocol));
  if (command == 0 || transport == 0) return r;  // LOCAL, or UNSPEC: the TCP peer stands
  const std::size_t addresses = length - kV2Fixed;
  const Bytes body = data.subspan(kV2Fixed);
  if (family == 1) {  // IPv4: source, destination, source port, destination port
    if (addresses < 12) return invalid("version 2 IPv4 addresses in " + std::to_string(addresses) + " bytes");
    r.source_ip = address_text(AF_INET, body.data());
    r.source_port = body[8] << 8 | body[9];
  } else if (family == 2) {
    if (addresses < 36) return invalid("version 2 IPv6 addresses in " + std::to_string(addresses) + " bytes");
    r.source_ip = address_text(AF_INET6, body.data());
    r.source_port = body[32] << 8 | body[33];
  } else if (family == 3 && addresses < 216) {
    return invalid("version 2 UNIX addresses in " + std::to_string(addresses) + " bytes");
  }
  return r;
}

}  // namespace

ProxyHeaderResult parse_proxy_header(Bytes data) {
  const Bytes v1(reinterpret_cast<const std::uint8_t*>(kV1Signature.data()), kV1Signature.size());
  const int v1_match = prefix_match(data, v1);
  const int v2_match = prefix_match(data, kV2Signature);
  if (v1_match == static_cast<int>(v1.size())) return parse_v1(data);
  if (v2_match == static_cast<int>(kV2Signature.size())) return parse_v2(data);
  if (v1_match < 0 && v2_match < 0) {
    ProxyHeaderResult r;
    r.status = ProxyHeaderStatus::Absent;
    return r;
  }
  // A prefix of a signature so far.
  const std::size_t signature = v1_match >= 0 ? v1.size() : kV2Signature.size();
  return need(signature - data.size());
}

}  // namespace acmetool::serve
