// The PROXY protocol (HAProxy's, versions 1 and 2): a load balancer that passes TCP through (AWS
// NLB, HAProxy in TCP mode, ...) sends one header before the client's bytes naming the client's
// address, which the server then uses wherever it would use the TCP peer: logs, X-Forwarded-For,
// remote_ip matchers and on-demand TLS's per-client ask limit. Pure functions over bytes, fuzzed
// by tests/fuzz/proxy_protocol_fuzz.cpp.
//
// Spec: https://www.haproxy.org/download/2.8/doc/proxy-protocol.txt. Choices where it leaves room:
//  - Version 1: at most 107 bytes with the CRLF; TCP4/TCP6 addresses must be valid for their
//    family and ports decimal 0..65535; "UNKNOWN" (the balancer's own health checks) may carry
//    anything up to the CRLF.
//  - Version 2: the command PROXY with TCP or UDP over IPv4/IPv6 gives the source; LOCAL (health
//    checks) and other families (UNIX, UNSPEC) are accepted with no address. TLVs are skipped
//    unread. A header over kMaxProxyHeader bytes is refused.
//  - An IPv4-mapped IPv6 source is given as the IPv4 address it is.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace acmetool::serve {

/// The longest header accepted: version 2's 16 fixed bytes and room for TLVs.
inline constexpr std::size_t kMaxProxyHeader = 4096;

enum class ProxyHeaderStatus {
  NeedMore,  ///< a prefix of a header, or too few bytes to tell: read more
  Complete,  ///< a whole header of `length` bytes; the connection's own bytes follow it
  Absent,    ///< the bytes do not start with either version's signature
  Invalid,   ///< a signature, then something malformed (`error` says what)
};

struct ProxyHeaderResult {
  ProxyHeaderStatus status = ProxyHeaderStatus::NeedMore;
  std::size_t length = 0;        ///< Complete: the header's size
  std::size_t bytes_wanted = 0;  ///< NeedMore: at least this many more bytes
  /// Complete with a TCP/UDP source: "203.0.113.9" or "2001:db8::1"; empty for UNKNOWN, LOCAL
  /// and other families (the TCP peer stands).
  std::string source_ip;
  int source_port = 0;
  std::string error;  ///< Invalid: one line
};

/// Looks at the first bytes of a connection.
ProxyHeaderResult parse_proxy_header(std::span<const std::uint8_t> data);

}  // namespace acmetool::serve
