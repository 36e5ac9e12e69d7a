// The DNS providers, one file each (dns_<name>.cpp); make_dns_provider (dns_provider.cpp) picks
// one by name. Each reads its options with option_or_env and throws acme::Error for a setting
// that cannot work.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "acmetool/acme/dns_provider.h"

namespace acmetool::acme::detail {

/// The --dns-opt `key` of `settings`, else the environment variable `env_name` (when not empty),
/// else nullopt. Empty values count as unset.
std::optional<std::string> option_or_env(const DnsProviderSettings& settings, std::string_view key,
                                         std::string_view env_name);

/// RFC 2136 dynamic update with TSIG, via ldns (dns_rfc2136.cpp).
std::unique_ptr<DnsProvider> make_rfc2136_provider(const DnsProviderSettings& settings);
/// lego's `exec` convention (dns_exec.cpp).
std::unique_ptr<DnsProvider> make_exec_provider(const DnsProviderSettings& settings);
/// lego's `httpreq` JSON API (dns_httpreq.cpp).
std::unique_ptr<DnsProvider> make_httpreq_provider(const DnsProviderSettings& settings);
/// acme-dns's /update API (dns_acmedns.cpp).
std::unique_ptr<DnsProvider> make_acmedns_provider(const DnsProviderSettings& settings);
/// PowerDNS Authoritative HTTP API (dns_pdns.cpp).
std::unique_ptr<DnsProvider> make_pdns_provider(const DnsProviderSettings& settings);
/// Cloudflare v4 API (dns_cloudflare.cpp).
std::unique_ptr<DnsProvider> make_cloudflare_provider(const DnsProviderSettings& settings);

}  // namespace acmetool::acme::detail
