// What the ldns users (dns_lookup.cpp, dns_rfc2136.cpp) share: ldns included safely, owning
// pointers for its objects, and the one parser of DNS server addresses.
#pragma once

// stdbool.h must come first, or ldns/common.h defines the macros bool, true and false, which
// break the C++ standard headers.
// clang-format off
#include <stdbool.h>
#include <ldns/ldns.h>
// clang-format on

#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "acmetool/pki/ossl.h"

namespace acmetool::acme::detail {

using LdnsPacketPtr = std::unique_ptr<ldns_pkt, pki::CFree<&ldns_pkt_free>>;
using LdnsRdfPtr = std::unique_ptr<ldns_rdf, pki::CFree<&ldns_rdf_deep_free>>;

/// A DNS server to ask or to send updates to: an IPv4 or IPv6 address literal and a port.
struct DnsServerAddress {
  std::string ip;
  bool v6 = false;
  int port = 53;

  /// "127.0.0.1:53", "[::1]:53".
  std::string text() const { return (v6 ? "[" + ip + "]" : ip) + ":" + std::to_string(port); }
};

/// "IP", "IP:PORT", "[IPv6]", "[IPv6]:PORT" or a bare IPv6 address; `default_port` when none is
/// given. Throws acme::Error "DNS server address 'TEXT': WHY (expected IP, IP:PORT or
/// [IPv6]:PORT)".
DnsServerAddress parse_dns_server(std::string_view text, int default_port);

}  // namespace acmetool::acme::detail
