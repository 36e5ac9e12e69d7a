// DNS-01 (RFC 8555 §8.4): the providers that put a TXT record into a zone and take it out again,
// and the solver that uses them (CNAME delegation, zone discovery, propagation check).
//
// A provider only changes records. Everything DNS-aware — which name the record goes under after
// following `_acme-challenge` CNAMEs, which zone holds it, when every authoritative nameserver
// serves it — is the solver's (acme/dns_lookup.h), so each provider stays a thin API client.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "acmetool/acme/dns_lookup.h"
#include "acmetool/acme/solver.h"

namespace acmetool::acme {

/// One TXT record as a provider adds or removes it.
struct TxtRecord {
  std::string fqdn;   ///< "_acme-challenge.www.example.com." — absolute, lower case, trailing dot
  std::string zone;   ///< "example.com." — the zone the record belongs to, trailing dot
  std::string value;  ///< the TXT value: base64url(SHA-256(key authorization)), 43 characters
  std::chrono::seconds ttl{60};
};

/// Puts TXT records into a DNS zone through some API. Implementations are thread-safe: several
/// orders may present and clean up records concurrently, also at the same name (example.com and
/// *.example.com share `_acme-challenge.example.com.` with two different values).
class DnsProvider {
 public:
  virtual ~DnsProvider() = default;

  /// The provider's name as --dns spells it: "rfc2136", "exec", "httpreq", "acme-dns", "pdns",
  /// "cloudflare".
  virtual std::string_view name() const = 0;

  /// Adds `record`, keeping other TXT values already at that name. Throws DnsError (provider,
  /// zone, one-line reason) when the API refuses or cannot be reached.
  virtual void present(const TxtRecord& record) = 0;

  /// Removes exactly `record`'s value at that name; other values stay. A record that is not there
  /// is not an error. Throws DnsError when the API refuses or cannot be reached.
  virtual void cleanup(const TxtRecord& record) = 0;

  /// How long to wait after present() before checking propagation, for APIs that apply changes
  /// later than they answer (default none). --dns-propagation-delay overrides it.
  virtual std::chrono::milliseconds propagation_delay() const { return {}; }
};

/// Options of a provider: --dns-opt key=value pairs (keys lower case, e.g. "nameserver",
/// "tsig_key"), with the environment variables lego reads as fallbacks (RFC2136_NAMESERVER,
/// EXEC_PATH, HTTPREQ_ENDPOINT, ACME_DNS_API_BASE, PDNS_API_URL, CF_DNS_API_TOKEN, ...).
struct DnsProviderSettings {
  std::string name;                              ///< "rfc2136", "exec", ...
  std::map<std::string, std::string> options;    ///< from --dns-opt and the Caddyfile
  /// Reads an environment variable; returns nullptr when unset. Defaults to ::getenv. Tests pass
  /// their own so they never touch the process environment.
  std::function<const char*(const char*)> getenv;
};

/// Makes the provider `settings.name`. Throws acme::Error naming the provider and the missing or
/// malformed option (with the --dns-opt key and the environment variable that would set it) for
/// a configuration that cannot work, and for an unknown provider name ("did you mean" included).
std::unique_ptr<DnsProvider> make_dns_provider(const DnsProviderSettings& settings);

/// Names of every provider make_dns_provider knows, sorted.
std::vector<std::string> dns_provider_names();

/// How the dns-01 solver finds where the record goes and when it is visible.
struct Dns01Options {
  DnsLookupOptions lookup;                        ///< resolvers, timeouts (acme/dns_lookup.h)
  std::string zone;                               ///< --dns-zone: skip zone discovery; "" = discover
  std::string override_domain;                    ///< --dns-override-domain: CNAME target given explicitly
  std::chrono::seconds ttl{60};                   ///< TTL of the TXT records
  std::chrono::milliseconds propagation_timeout{std::chrono::minutes(2)};
  std::chrono::milliseconds propagation_interval{std::chrono::seconds(2)};
  std::chrono::milliseconds propagation_delay{-1};  ///< < 0: the provider's own delay
  bool skip_propagation = false;                  ///< --dns-skip-propagation
  /// Progress notes ("dns-01: waiting for ns1.example.com. (192.0.2.1:53) to serve ..."); may be
  /// empty. Called from the solver's threads too, one call at a time; what it throws is ignored.
  std::function<void(std::string_view)> progress;
};

/// dns-01 through `provider`. present() works out the record's name — `_acme-challenge.` + the
/// identifier without a leading "*.", then the override domain or the end of its CNAME chain —
/// and its zone (Dns01Options::zone or SOA discovery), then adds it; it throws acme::Error for an
/// IP identifier (RFC 8738 §7), a token that is not base64url or a name outside the given zone,
/// and what the lookups and the provider throw. wait_presented() waits until every authoritative
/// nameserver of every presented record's zone serves it (all records in parallel, at most
/// min(timeout, propagation_timeout) after the propagation delay), throwing DnsError naming the
/// nameserver still behind at the timeout. cleanup() removes the record; it never throws (a
/// failure goes to progress). Throws acme::Error for a null provider.
std::unique_ptr<Solver> make_dns01_solver(std::shared_ptr<DnsProvider> provider, Dns01Options options);

}  // namespace acmetool::acme
