// The DNS questions dns-01 asks, through ldns: which zone holds a name (SOA walk), where an
// `_acme-challenge` CNAME chain ends, which servers are authoritative for a zone, and whether
// each of them already serves a TXT value (asked directly: no recursion, no cache).
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace acmetool::acme {

struct DnsLookupOptions {
  /// Recursive resolvers for SOA, CNAME, NS and address questions, as "IP" or "IP:PORT"
  /// ("127.0.0.1:5353", "[::1]:5353"), asked in order until one answers. Empty: the nameservers
  /// of /etc/resolv.conf. A malformed address makes every function below throw acme::Error.
  std::vector<std::string> resolvers;
  /// Port the authoritative nameservers are asked on by the propagation check (default 53; tests
  /// run their nameservers on a free high port).
  int authoritative_port = 53;
  /// Per question, per server; a question is tried over UDP, then TCP when truncated.
  std::chrono::milliseconds query_timeout{std::chrono::seconds(5)};
};

/// `name` as the DNS code spells names: ASCII lower case, with one trailing dot
/// ("Example.COM" → "example.com.").
std::string absolute_name(std::string_view name);

/// The zone holding `fqdn` ("example.com." for "_acme-challenge.www.example.com."): walks up the
/// labels asking for SOA and takes the first owner of a SOA in an answer, following CNAMEs as a
/// resolver reports them (a name whose CNAME target is in another zone still belongs to the zone
/// of its owner, and an NXDOMAIN that comes with a CNAME is not "no such name"). Names in and out
/// are absolute, lower case, with a trailing dot. Throws DnsError when no resolver answers, one
/// answers with an error other than NXDOMAIN, or no label below the root has a SOA (the root is
/// never the zone: a name under a TLD that does not exist has none).
std::string find_zone(std::string_view fqdn, const DnsLookupOptions& options);

/// Where the CNAME chain starting at `fqdn` ends: `fqdn` itself when it has no CNAME. At most 10
/// links; a loop or a longer chain throws DnsError naming the chain.
std::string follow_cname(std::string_view fqdn, const DnsLookupOptions& options);

/// One authoritative nameserver of a zone.
struct Nameserver {
  std::string name;     ///< "ns1.example.com."
  std::string address;  ///< "192.0.2.1:53" or "[2001:db8::1]:53" (port from authoritative_port)
};

/// The zone's NS records and every A/AAAA address of each, through the resolvers. Throws
/// DnsError when the zone has no NS or none of them has an address.
std::vector<Nameserver> authoritative_nameservers(std::string_view zone, const DnsLookupOptions& options);

/// The TXT values at `fqdn` as `server` ("IP:PORT"; a bare "IP" means authoritative_port) serves
/// them, asked with RD=0; the character-strings of one record are joined into one value. Throws
/// DnsError when the server does not answer or answers with an error other than NXDOMAIN
/// (NXDOMAIN and no data are an empty list).
std::vector<std::string> query_txt(std::string_view fqdn, std::string_view server, const DnsLookupOptions& options);

}  // namespace acmetool::acme
