// DNS-01 settings from a Caddyfile (`acme_dns NAME ...`, `tls { dns NAME ... }`, the
// `dns_challenge_override_domain`, `propagation_timeout`... lines) as libacme takes them. Caddy's
// DNS modules (github.com/caddy-dns/*) have their own names and field names; the ones acmetool
// has a provider for are mapped, so a Caddyfile written for Caddy works as it is.
#pragma once

#include "acmetool/acme/dns_provider.h"
#include "acmetool/caddyfile/config.h"

namespace acmetool::serve {

/// The provider settings for `provider`:
///   rfc2136 { key_name K; key_alg A; key S; server H:P }  → rfc2136 tsig_key, tsig_algorithm,
///                                                           tsig_secret, nameserver
///   cloudflare TOKEN | { api_token T; zone_token Z }       → cloudflare api_token, zone_token
///   powerdns URL TOKEN | { server_url; api_token; server_id } → pdns api_url, api_key, server_name
///   acmedns { username; password; subdomain; server_url }  → acme-dns with that one account
/// Other names (acmetool's own: exec, httpreq, pdns, acme-dns...) keep their block's `key value`
/// lines as options. The environment still supplies what the Caddyfile leaves out. Never throws;
/// make_dns_provider() judges the result.
acme::DnsProviderSettings dns_provider_settings(const caddyfile::DnsProvider& provider);

/// The solver options of an issuer's DNS settings: resolvers (port 53 unless given), propagation
/// delay and timeout (a negative timeout skips the check, as in Caddy), TTL, override domain.
acme::Dns01Options dns01_options(const caddyfile::DnsChallenge& challenge);

}  // namespace acmetool::serve
