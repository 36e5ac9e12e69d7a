// reverse_proxy's header rules (issue 9), without sockets: which field lines the upstream request
// carries, and which of the upstream response's field lines reach the client. Mirrors Caddy
// 2.6-2.8 (modules/caddyhttp/reverseproxy/reverseproxy.go: prepareRequest, addForwardedHeaders,
// removeConnectionHeaders, hopHeaders, upgradeType; modules/caddyhttp/headers/headers.go).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/beast/http/fields.hpp>

#include "acmetool/caddyfile/config_proxy.h"
#include "acmetool/serve/header_fields.h"

namespace acmetool::serve {

/// An IP range of trusted_proxies. IPv4 is held IPv4-mapped (::ffff:a.b.c.d) with 96 added to
/// its prefix length, so an IPv4 range also contains the same addresses written IPv4-mapped.
struct Cidr {
  std::array<std::uint8_t, 16> address{};
  int prefix_bits = 128;  ///< over the 128-bit form
};

/// Parses "192.0.2.0/24", "2001:db8::/32", "::ffff:10.0.0.0/104" or a bare address (a /32 or
/// /128). Host bits past the prefix are allowed and ignored, as Go's netip.ParsePrefix does.
/// Returns nullopt for anything else (zones, brackets, ports, out-of-range lengths).
std::optional<Cidr> parse_cidr(std::string_view text);

/// Every entry of `texts` parsed; throws serve::Error naming the first invalid one.
std::vector<Cidr> parse_trusted_proxies(const std::vector<std::string>& texts);

/// Whether `ip` (IPv4, IPv6 or IPv4-mapped IPv6, an IPv6 zone "%eth0" ignored) lies in any of
/// `ranges`. An unparsable `ip` is in none.
bool contains(const std::vector<Cidr>& ranges, std::string_view ip);

/// What the proxy knows of the client's request besides its field lines.
struct ClientRequestFacts {
  std::string remote_ip;  ///< the TCP peer, no port; empty when unknown
  bool tls = false;       ///< whether the client spoke TLS to us
  std::string host;       ///< Host (or :authority) as received, port included when sent
};

/// reverse_proxy's header settings for one upstream.
struct ProxyHeaderOptions {
  std::vector<Cidr> trusted_proxies;
  std::vector<caddyfile::HeaderOp> header_up;
  std::vector<caddyfile::HeaderOp> header_down;
  /// Replaces placeholders in header op field names, values, replacements and plain-text search
  /// strings (not in regular expressions, which Caddy compiles once). Empty: text is literal.
  std::function<std::string(std::string_view)> expand;
  bool upstream_tls = false;  ///< the transport speaks TLS to the upstream
  std::string upstream_host;  ///< the chosen upstream's "host:port"
};

/// Options from the adapted `reverse_proxy` block; upstream_host is left for the caller, who
/// picks the upstream. Throws serve::Error naming an invalid trusted_proxies range or an invalid
/// regular expression in a header_up/header_down replace.
ProxyHeaderOptions proxy_header_options(const caddyfile::ReverseProxyHandler& handler);

/// Whether an upstream's trailer field goes on to the client: not one that Go's net/http (and so
/// Caddy) refuses in trailers, the fields RFC 9110 §6.5.1 keeps out of them (framing, routing,
/// authentication, content metadata, caching) and the hop-by-hop ones.
bool relayable_trailer(std::string_view name);

/// The protocol a request (or a 101 response) upgrades to, lowercased ("websocket"), when a
/// Connection field lists "upgrade"; empty otherwise. Caddy's upgradeType.
std::string upgrade_protocol(const HeaderFields& fields);

/// The field lines of the request to send upstream, in order, a "Host" line first:
/// - Host fields in `client_fields` are ignored; `client.host` is the client's Host.
/// - hop-by-hop fields go (Alt-Svc, Connection, Proxy-Connection, Keep-Alive, Proxy-Authenticate,
///   Proxy-Authorization, Te, Trailer, Transfer-Encoding, Upgrade; RFC 9110 §7.6.1) and so does
///   every field a Connection line names; "Te: trailers" stays when the client offered trailers;
///   an upgrade keeps "Connection: Upgrade" and "Upgrade: <protocol>".
/// - X-Forwarded-For becomes the client IP, appended to the prior values when the client is a
///   trusted proxy; X-Forwarded-Proto ("http"/"https") and X-Forwarded-Host (client.host) keep a
///   trusted proxy's prior value. With no remote_ip all three are removed.
/// - header_up runs last (Caddy's order: delete "*", add, set, delete, replace; then defaults).
///   Host is the client's unless header_up sets it, or the upstream's for a TLS upstream (the
///   Caddyfile adapter's implicit `header_up Host {upstream_hostport}`); deleted, it is the
///   upstream's.
/// CR, LF and NUL in any value become spaces. Throws serve::Error for a non-empty remote_ip that
/// is not an IP address.
HeaderFields upstream_request_headers(const HeaderFields& client_fields,
                                      const ClientRequestFacts& client,
                                      const ProxyHeaderOptions& options);

/// The same with `upstream_host` and `expand` given apart from the rules in `rules` (whose own
/// upstream_host and expand are not used): the proxy's rules are not copied for each request.
HeaderFields upstream_request_headers(const HeaderFields& client_fields, const ClientRequestFacts& client,
                                      const ProxyHeaderOptions& rules, const std::string& upstream_host,
                                      const std::function<std::string(std::string_view)>& expand);

/// upstream_request_headers for the usual request, written at once as HTTP/1.1 field lines
/// ("Name: value" CRLF each, the Host line first) at the end of `out`, without building the
/// lines first: when `rules` has no header_up, the client is a valid remote_ip, and its fields
/// hold no X-Forwarded-*, Upgrade or Te and none longer than 64 KiB. The framing fields
/// (Content-Length, Transfer-Encoding) are left out: the request head's writer adds its own.
/// Returns false, leaving `out` as it was, for any other request.
bool write_upstream_request_fields(std::string& out, const HeaderFields& client_fields,
                                   const ClientRequestFacts& client, const ProxyHeaderOptions& rules,
                                   const std::string& upstream_host);

/// Edits the upstream response's field lines into what the client receives: hop-by-hop and
/// Connection-named fields removed (a 101 keeps "Connection: Upgrade" and its Upgrade), then
/// header_down. With header_down, CR, LF and NUL in any value become spaces (the upstream's own
/// fields have passed the response parser, which refuses them).
void apply_response_headers(HeaderFields& upstream_response, int status,
                            const ProxyHeaderOptions& options);
/// The same with `expand` given apart from the rules in `options`.
void apply_response_headers(HeaderFields& upstream_response, int status, const ProxyHeaderOptions& options,
                            const std::function<std::string(std::string_view)>& expand);

}  // namespace acmetool::serve
