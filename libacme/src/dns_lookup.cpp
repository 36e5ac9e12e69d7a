// The DNS questions of dns-01 (acme/dns_lookup.h), asked through ldns.
//
// Every question gets a fresh ldns_resolver holding one server: ldns marks a server that timed out
// as unreachable for the rest of a resolver's life and keeps per-send state (its TCP fallback flips
// a flag on the resolver), so nothing is shared between questions or threads. ldns does not match
// an answer's ID to the question's; ask() does.
#include "acmetool/acme/dns_lookup.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>

#include "acmetool/acme/error.h"
#include "acmetool/pki/ossl.h"
#include "dns_wire_internal.h"

namespace acmetool::acme {
namespace {

using std::chrono::milliseconds;
using ResolverPtr = std::unique_ptr<ldns_resolver, pki::CFree<&ldns_resolver_deep_free>>;
using PacketPtr = detail::LdnsPacketPtr;
using RdfPtr = detail::LdnsRdfPtr;
using CharPtr = std::unique_ptr<char, pki::CFree<&std::free>>;

// DnsError's "provider" for lookups, which belong to no provider.
constexpr const char* kLookup = "dns";
// RFC 8555 §8.4 does not bound CNAME chains; lego and certbot stop after a handful of links.
constexpr std::size_t kMaxCnameLinks = 10;

using Server = detail::DnsServerAddress;

// The resolvers to ask: DnsLookupOptions::resolvers, else the nameservers of /etc/resolv.conf.
std::vector<Server> resolvers_of(const DnsLookupOptions& options) {
  std::vector<Server> servers;
  for (const std::string& text : options.resolvers) servers.push_back(detail::parse_dns_server(text, 53));
  if (!servers.empty()) return servers;
  ldns_resolver* raw = nullptr;
  const ldns_status status = ldns_resolver_new_frm_file(&raw, nullptr);
  const ResolverPtr system(raw);
  if (status != LDNS_STATUS_OK) {
    throw DnsError(kLookup, "",
                   std::string("reading /etc/resolv.conf: ") + ldns_get_errorstr_by_id(status));
  }
  for (std::size_t i = 0; i < ldns_resolver_nameserver_count(system.get()); ++i) {
    const CharPtr text(ldns_rdf2str(ldns_resolver_nameservers(system.get())[i]));
    if (text) servers.push_back(detail::parse_dns_server(text.get(), 53));
  }
  if (servers.empty()) {
    throw DnsError(kLookup, "", "no nameserver in /etc/resolv.conf and no resolver given");
  }
  return servers;
}

// `rdf` (a name or an address) as text; names absolute and lower case.
std::string text_of(const ldns_rdf* rdf) {
  const CharPtr text(ldns_rdf2str(rdf));
  std::string result = text ? text.get() : "";
  std::transform(result.begin(), result.end(), result.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return result;
}

RdfPtr parse_name(const std::string& name) {
  RdfPtr rdf(ldns_dname_new_frm_str(name.c_str()));
  if (!rdf) throw DnsError(kLookup, "", "'" + name + "' is not a DNS name");
  return rdf;
}

// `name` as ldns prints it: absolute, lower case, special characters escaped the one way ldns
// does, so that names from answers and from callers compare as strings.
std::string canonical_name(std::string_view name) {
  std::string text(name);
  if (!text.ends_with('.')) text += '.';
  return text_of(parse_name(text).get());
}

// "a.example.com." -> "example.com."; the root for a single label.
std::string parent_of(const std::string& name) {
  const RdfPtr parent(ldns_dname_left_chop(parse_name(name).get()));
  return parent ? text_of(parent.get()) : ".";
}

bool is_at_or_below(const std::string& name, const std::string& zone) {
  return zone == "." || name == zone || name.ends_with("." + zone);
}

std::string type_name(ldns_rr_type type) {
  const CharPtr text(ldns_rr_type2str(type));
  return text ? text.get() : "?";
}

std::string rcode_name(const ldns_pkt& answer) {
  const CharPtr text(ldns_pkt_rcode2str(ldns_pkt_get_rcode(&answer)));
  return text ? text.get() : "?";
}

// The `type` RRs of one section of an answer, borrowed from it.
std::vector<const ldns_rr*> records(const ldns_rr_list* section, ldns_rr_type type) {
  std::vector<const ldns_rr*> found;
  for (std::size_t i = 0; section && i < ldns_rr_list_rr_count(section); ++i) {
    const ldns_rr* rr = ldns_rr_list_rr(section, i);
    if (ldns_rr_get_type(rr) == type) found.push_back(rr);
  }
  return found;
}

std::string owner_of(const ldns_rr* rr) { return text_of(ldns_rr_owner(rr)); }

// Why a send got no answer. ldns reports a timeout as a "network error" and a refused TCP
// connection as a "general error"; errno has the details of the latter.
std::string failure_text(ldns_status status, int send_errno, long ms) {
  if (status == LDNS_STATUS_NETWORK_ERR || status == LDNS_STATUS_RES_NO_NS) {
    return "no answer within " + std::to_string(ms) + " ms";
  }
  std::string text = ldns_get_errorstr_by_id(status);
  if (send_errno != 0) text += std::string(" (") + std::strerror(send_errno) + ")";
  return text;
}

// One question to one server, over UDP and again over TCP when the answer is truncated; nullptr
// with `error` set when the server does not answer within `timeout` (per transport).
PacketPtr ask(const Server& server, const std::string& name, ldns_rr_type type, bool recursive,
              milliseconds timeout, std::string& error) {
  const ResolverPtr resolver(ldns_resolver_new());
  const RdfPtr address(
      ldns_rdf_new_frm_str(server.v6 ? LDNS_RDF_TYPE_AAAA : LDNS_RDF_TYPE_A, server.ip.c_str()));
  if (!resolver || !address ||
      ldns_resolver_push_nameserver(resolver.get(), address.get()) != LDNS_STATUS_OK) {
    throw DnsError(kLookup, "", "setting up a query to " + server.text());
  }
  ldns_resolver_set_port(resolver.get(), static_cast<uint16_t>(server.port));
  const long ms = std::max<long>(1, static_cast<long>(timeout.count()));
  ldns_resolver_set_timeout(resolver.get(), timeval{ms / 1000, (ms % 1000) * 1000});
  ldns_resolver_set_retry(resolver.get(), 1);    // one try per transport: the caller polls
  ldns_resolver_set_retrans(resolver.get(), 0);  // never sleep between tries
  ldns_resolver_set_fallback(resolver.get(), true);
  PacketPtr query(ldns_pkt_query_new(parse_name(name).release(), type, LDNS_RR_CLASS_IN,
                                     recursive ? LDNS_RD : 0));
  if (!query) throw DnsError(kLookup, "", "building a " + type_name(type) + " query");
  ldns_pkt_set_random_id(query.get());
  ldns_pkt* raw = nullptr;
  errno = 0;
  const ldns_status status = ldns_resolver_send_pkt(&raw, resolver.get(), query.get());
  const int send_errno = errno;
  PacketPtr answer(raw);
  if (status != LDNS_STATUS_OK || !answer) {
    error = failure_text(status, send_errno, ms);
    return nullptr;
  }
  if (ldns_pkt_id(answer.get()) != ldns_pkt_id(query.get())) {
    error = "an answer to another question (ID mismatch)";
    return nullptr;
  }
  return answer;
}

// Asks the resolvers in turn until one answers; throws DnsError naming each failure when none does.
PacketPtr ask_resolvers(const std::string& name, ldns_rr_type type,
                        const DnsLookupOptions& options) {
  std::string errors;
  for (const Server& resolver : resolvers_of(options)) {
    std::string error;
    if (PacketPtr answer =
            ask(resolver, name, type, /*recursive=*/true, options.query_timeout, error)) {
      return answer;
    }
    errors += (errors.empty() ? "" : "; ") + resolver.text() + ": " + error;
  }
  throw DnsError(kLookup, "", "asking " + type_name(type) + " " + name + ": " + errors);
}

// NOERROR and NXDOMAIN are answers; any other rcode (SERVFAIL, REFUSED, ...) is an error.
void expect_answer(const ldns_pkt& answer, const std::string& name, ldns_rr_type type) {
  const ldns_pkt_rcode rcode = ldns_pkt_get_rcode(&answer);
  if (rcode != LDNS_RCODE_NOERROR && rcode != LDNS_RCODE_NXDOMAIN) {
    throw DnsError(kLookup, "",
                   "asking " + type_name(type) + " " + name + ": " + rcode_name(answer));
  }
}

// The target of the CNAME owned by `name` in the answer section, if there is one.
std::optional<std::string> cname_of(const ldns_pkt& answer, const std::string& name) {
  for (const ldns_rr* rr : records(ldns_pkt_answer(&answer), LDNS_RR_TYPE_CNAME)) {
    if (owner_of(rr) == name && ldns_rr_rd_count(rr) > 0) return text_of(ldns_rr_rdf(rr, 0));
  }
  return std::nullopt;
}

// The zone an answer to "SOA of `name`?" names: the owner of a SOA in the answer (`name` is an
// apex), else of the SOA in the authority section that comes with NXDOMAIN and no-data answers
// (RFC 2308 §2-3). A CNAME at `name` says nothing about its zone: a resolver reports the SOA and
// even the rcode of the CNAME's target (notes/dns01.md, gotcha 3), so the walk goes on above it.
// The root is nobody's zone for dns-01: a name under a TLD that does not exist ends there.
std::optional<std::string> zone_in(const ldns_pkt& answer, const std::string& name) {
  if (cname_of(answer, name)) return std::nullopt;
  expect_answer(answer, name, LDNS_RR_TYPE_SOA);
  for (const ldns_rr* rr : records(ldns_pkt_answer(&answer), LDNS_RR_TYPE_SOA)) {
    if (owner_of(rr) != ".") return owner_of(rr);
  }
  for (const ldns_rr* rr : records(ldns_pkt_authority(&answer), LDNS_RR_TYPE_SOA)) {
    const std::string zone = owner_of(rr);
    if (zone != "." && is_at_or_below(name, zone)) return zone;
  }
  return std::nullopt;
}

std::string join(const std::vector<std::string>& names, std::string_view separator) {
  std::string text;
  for (const std::string& name : names) text += (text.empty() ? "" : std::string(separator)) + name;
  return text;
}

// The addresses of one nameserver name (A, then AAAA), as "IP:port" for `port`.
std::vector<std::string> addresses_of(const std::string& host, int port,
                                      const DnsLookupOptions& options) {
  std::vector<std::string> addresses;
  for (const ldns_rr_type type : {LDNS_RR_TYPE_A, LDNS_RR_TYPE_AAAA}) {
    const PacketPtr answer = ask_resolvers(host, type, options);
    expect_answer(*answer, host, type);
    for (const ldns_rr* rr : records(ldns_pkt_answer(answer.get()), type)) {
      if (ldns_rr_rd_count(rr) == 0) continue;
      const Server server{text_of(ldns_rr_rdf(rr, 0)), type == LDNS_RR_TYPE_AAAA, port};
      addresses.push_back(server.text());
    }
  }
  return addresses;
}

// The value of one TXT RR: its character-strings concatenated (RFC 7208 §3.3 reads long values so).
std::string txt_value(const ldns_rr* rr) {
  std::string value;
  for (std::size_t i = 0; i < ldns_rr_rd_count(rr); ++i) {
    const ldns_rdf* part = ldns_rr_rdf(rr, i);
    const uint8_t* data = ldns_rdf_data(part);
    // A character-string on the wire: one length byte, then that many bytes.
    if (ldns_rdf_size(part) > 0 && data[0] + 1u <= ldns_rdf_size(part)) {
      value.append(reinterpret_cast<const char*>(data) + 1, data[0]);
    }
  }
  return value;
}

}  // namespace

std::string find_zone(std::string_view fqdn, const DnsLookupOptions& options) {
  const std::string start = canonical_name(fqdn);
  for (std::string name = start; name != "."; name = parent_of(name)) {
    const PacketPtr answer = ask_resolvers(name, LDNS_RR_TYPE_SOA, options);
    if (auto zone = zone_in(*answer, name)) return *zone;
  }
  throw DnsError(kLookup, "",
                 "no zone holds " + start + ": no SOA at it or above it below the root");
}

std::string follow_cname(std::string_view fqdn, const DnsLookupOptions& options) {
  std::vector<std::string> chain{canonical_name(fqdn)};
  for (;;) {
    const PacketPtr answer = ask_resolvers(chain.back(), LDNS_RR_TYPE_CNAME, options);
    expect_answer(*answer, chain.back(), LDNS_RR_TYPE_CNAME);
    const std::optional<std::string> target = cname_of(*answer, chain.back());
    if (!target) return chain.back();
    const bool loop = std::find(chain.begin(), chain.end(), *target) != chain.end();
    chain.push_back(*target);
    if (loop) throw DnsError(kLookup, "", "CNAME loop: " + join(chain, " -> "));
    if (chain.size() > kMaxCnameLinks + 1) {
      throw DnsError(kLookup, "",
                     "CNAME chain longer than " + std::to_string(kMaxCnameLinks) +
                         " links: " + join(chain, " -> "));
    }
  }
}

std::vector<Nameserver> authoritative_nameservers(std::string_view zone,
                                                  const DnsLookupOptions& options) {
  const std::string apex = canonical_name(zone);
  const PacketPtr answer = ask_resolvers(apex, LDNS_RR_TYPE_NS, options);
  expect_answer(*answer, apex, LDNS_RR_TYPE_NS);
  std::vector<std::string> hosts;
  for (const ldns_rr* rr : records(ldns_pkt_answer(answer.get()), LDNS_RR_TYPE_NS)) {
    if (owner_of(rr) == apex && ldns_rr_rd_count(rr) > 0) {
      hosts.push_back(text_of(ldns_rr_rdf(rr, 0)));
    }
  }
  if (hosts.empty()) {
    throw DnsError(kLookup, apex, "no NS records for " + apex + " (" + rcode_name(*answer) + ")");
  }
  std::sort(hosts.begin(), hosts.end());
  hosts.erase(std::unique(hosts.begin(), hosts.end()), hosts.end());
  // A nameserver whose address cannot be found is left out, as long as another one is left.
  std::vector<Nameserver> nameservers;
  std::vector<std::string> failures;
  for (const std::string& host : hosts) {
    try {
      for (std::string& address : addresses_of(host, options.authoritative_port, options)) {
        nameservers.push_back({host, std::move(address)});
      }
    } catch (const DnsError& e) {
      failures.push_back(e.what());
    }
  }
  if (nameservers.empty()) {
    throw DnsError(kLookup, apex,
                   "no nameserver of " + apex + " has an address: " + join(hosts, ", ") +
                       (failures.empty() ? "" : " (" + join(failures, "; ") + ")"));
  }
  return nameservers;
}

std::vector<std::string> query_txt(std::string_view fqdn, std::string_view server,
                                   const DnsLookupOptions& options) {
  const std::string name = canonical_name(fqdn);
  const Server target = detail::parse_dns_server(server, options.authoritative_port);
  std::string error;
  const PacketPtr answer =
      ask(target, name, LDNS_RR_TYPE_TXT, /*recursive=*/false, options.query_timeout, error);
  if (!answer) {
    throw DnsError(kLookup, "", "asking " + target.text() + " for TXT " + name + ": " + error);
  }
  if (ldns_pkt_get_rcode(answer.get()) == LDNS_RCODE_NXDOMAIN) return {};
  if (ldns_pkt_get_rcode(answer.get()) != LDNS_RCODE_NOERROR) {
    throw DnsError(kLookup, "",
                   "asking " + target.text() + " for TXT " + name + ": " + rcode_name(*answer));
  }
  std::vector<std::string> values;
  for (const ldns_rr* rr : records(ldns_pkt_answer(answer.get()), LDNS_RR_TYPE_TXT)) {
    if (owner_of(rr) == name) values.push_back(txt_value(rr));
  }
  return values;
}

std::string absolute_name(std::string_view name) {
  std::string result(name);
  std::transform(result.begin(), result.end(), result.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (!result.ends_with('.')) result += '.';
  return result;
}

namespace detail {

DnsServerAddress parse_dns_server(std::string_view text, int default_port) {
  const auto bad = [&](std::string_view why) {
    return Error("DNS server address '" + std::string(text) + "': " + std::string(why) +
                 " (expected IP, IP:PORT or [IPv6]:PORT)");
  };
  std::string ip(text), port;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos) throw bad("no closing ']'");
    ip = text.substr(1, close - 1);
    if (close + 1 < text.size()) {
      if (text[close + 1] != ':') throw bad("junk after ']'");
      port = text.substr(close + 2);
    }
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    ip = text.substr(0, text.find(':'));
    port = text.substr(text.find(':') + 1);
  }
  DnsServerAddress server{ip, ip.find(':') != std::string::npos, default_port};
  unsigned char buffer[16];
  if (inet_pton(server.v6 ? AF_INET6 : AF_INET, ip.c_str(), buffer) != 1) {
    throw bad("not an IP address");
  }
  if (!port.empty() || text.ends_with(':')) {
    const bool digits =
        !port.empty() && port.size() <= 5 &&
        std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
    server.port = digits ? std::stoi(port) : 0;
    if (server.port < 1 || server.port > 65535) throw bad("bad port");
  }
  return server;
}

}  // namespace detail
}  // namespace acmetool::acme
