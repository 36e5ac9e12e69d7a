// The typed configuration a Caddyfile adapts to (`acmetool adapt` prints it as JSON; `serve`
// runs it). Plain values with defaults: std::optional means "not set, use the default",
// durations are std::chrono. Built by adapt() (adapt.h); nothing here does I/O.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "acmetool/caddyfile/address.h"
#include "acmetool/caddyfile/config_routes.h"

namespace acmetool::caddyfile {

/// External account binding for an ACME CA (RFC 8555 §7.3.4).
struct Eab {
  std::string key_id;
  std::string mac_key;  ///< base64url HMAC key; never log it
};

/// A DNS provider for the DNS-01 challenge: `acme_dns cloudflare {env.TOKEN}` or with a block of
/// `key value...` lines. acmetool's libacme maps the name to a provider.
struct DnsProvider {
  std::string name;
  std::vector<std::string> args;
  std::vector<std::pair<std::string, std::vector<std::string>>> options;
};

/// DNS-01 settings of an ACME issuer.
struct DnsChallenge {
  std::optional<DnsProvider> provider;  ///< absent: the global acme_dns provider
  std::vector<std::string> resolvers;
  std::optional<std::chrono::nanoseconds> propagation_delay;
  std::optional<std::chrono::nanoseconds> propagation_timeout;  ///< negative: do not check
  std::optional<std::chrono::nanoseconds> ttl;
  std::optional<std::string> override_domain;
};

/// `issuer acme { ... }` / `cert_issuer acme`, or an ACME issuer implied by tls options.
struct AcmeIssuer {
  std::optional<std::string> directory;     ///< CA directory URL; absent: the global acme_ca or Let's Encrypt
  std::optional<std::string> test_directory;
  std::optional<std::string> email;
  std::optional<Eab> eab;
  std::optional<DnsChallenge> dns;          ///< set: DNS-01 replaces HTTP-01 and TLS-ALPN-01
  std::vector<std::string> trusted_roots;   ///< PEM files trusted for the CA's TLS
  std::optional<std::chrono::nanoseconds> timeout;
  bool disable_http_challenge = false;
  bool disable_tlsalpn_challenge = false;
  std::optional<int> alt_http_port;
  std::optional<int> alt_tlsalpn_port;
};

/// `issuer internal { ... }` / `tls internal` / `local_certs`: the local CA.
struct InternalIssuer {
  std::string ca = "local";
  std::optional<std::chrono::nanoseconds> lifetime;
  bool sign_with_root = false;
};

using Issuer = std::variant<AcmeIssuer, InternalIssuer>;

/// `on_demand_tls { ... }`.
struct OnDemandTls {
  std::optional<std::string> ask;  ///< URL consulted with ?domain=<name>
  /// `permission <module> [args...]` (e.g. "http" with an endpoint); mutually exclusive with ask.
  /// `permission http { endpoint <url> }` (Caddy 2.8+) is stored as "http" with args {url}.
  std::optional<std::string> permission;
  std::vector<std::string> permission_args;
  /// Deprecated rate limit (Caddy 2.6): accepted with a warning.
  std::optional<std::chrono::nanoseconds> interval;
  std::optional<int> burst;
  /// acmetool extension `cooldown <duration>`: per-name wait after a denial or failed issuance.
  std::optional<std::chrono::nanoseconds> cooldown;
  /// acmetool extension `ask_include_ip`: the permission check also gets &ip=<client address>.
  bool ask_include_ip = false;
};

struct AdminOptions {
  bool disabled = false;           ///< `admin off`
  std::optional<std::string> listen;
  bool enforce_origin = false;
  std::vector<std::string> origins;
};

/// `servers [<listener address>] { listener_wrappers { proxy_protocol { ... } tls } }`: options
/// of the HTTP servers; acmetool reads the PROXY protocol listener wrapper and ignores (with a
/// warning) the other server options.
struct ServerBlockOptions {
  std::string address;  ///< "" for every listener, else as written (":443", "0.0.0.0:8443")
  /// `proxy_protocol { timeout <d>; allow <ranges...> }`: the listener expects a PROXY header
  /// from the `allow` ranges (every source when empty) within `timeout` (5 s; 0 for none).
  struct ProxyProtocol {
    std::optional<std::chrono::nanoseconds> timeout;
    std::vector<std::string> allow;
  };
  std::optional<ProxyProtocol> proxy_protocol;
  /// `timeouts { read_header <d>; idle <d> }`: how long a request head may take to arrive, and a
  /// kept-alive connection may wait for its next request (read_body and write are not read).
  std::optional<std::chrono::nanoseconds> read_header_timeout, idle_timeout;
};

/// The global options block. Fields not set in the Caddyfile stay at their defaults.
struct GlobalOptions {
  bool debug = false;
  std::optional<std::string> email;
  std::optional<std::string> acme_ca;
  std::optional<std::string> acme_ca_root;  ///< PEM file trusted for the ACME CA's TLS
  std::optional<Eab> acme_eab;
  std::optional<DnsProvider> acme_dns;
  bool local_certs = false;  ///< every managed name gets a local-CA certificate
  bool skip_install_trust = false;  ///< never put the local CA's root into the trust stores
  struct AutoHttps {
    bool off = false;
    bool disable_redirects = false;
    bool disable_certs = false;
    bool ignore_loaded_certs = false;
    bool prefer_wildcard = false;
  } auto_https;
  std::optional<int> http_port;   ///< default 80
  std::optional<int> https_port;  ///< default 443
  std::vector<std::string> default_bind;  ///< hosts sites listen on unless they `bind`
  std::optional<std::string> storage_root;  ///< `storage file_system <path>`
  std::optional<OnDemandTls> on_demand_tls;
  std::vector<Issuer> cert_issuers;  ///< default issuers, in order
  std::optional<std::string> key_type;  ///< ed25519, p256, p384, rsa2048, rsa4096
  std::optional<std::chrono::nanoseconds> renew_interval;
  std::optional<std::chrono::nanoseconds> grace_period;
  std::optional<std::chrono::nanoseconds> shutdown_delay;
  AdminOptions admin;
  std::vector<ServerBlockOptions> servers;  ///< in the order written

  int effective_http_port() const noexcept { return http_port.value_or(80); }
  int effective_https_port() const noexcept { return https_port.value_or(443); }
};

/// What the `tls` directive of a site says. Absent fields defer to the global options.
struct TlsPolicy {
  bool internal = false;                  ///< `tls internal`
  std::optional<std::string> cert_file;   ///< `tls <cert> <key>`: a certificate managed by the user
  std::optional<std::string> key_file;
  std::vector<std::string> load;          ///< `load <dirs...>`: folders of PEM bundles
  bool on_demand = false;
  bool reuse_private_keys = false;
  bool force_automate = false;
  std::vector<Issuer> issuers;            ///< explicit `issuer` lines, or implied by email/ca/dns/eab
  std::optional<std::string> key_type;
  std::optional<std::string> protocol_min;  ///< "tls1.2" or "tls1.3"
  std::optional<std::string> protocol_max;
  std::vector<std::string> ciphers;
  std::vector<std::string> curves;
  std::vector<std::string> alpn;
};

/// Which certificate source serves a site address.
enum class CertSource {
  None,      ///< plain HTTP, or a catch-all without on-demand: nothing to manage
  Acme,      ///< a public ACME CA
  Internal,  ///< the local CA
  Manual,    ///< the certificate files of `tls <cert> <key>`
};

/// One site address with everything it implies.
struct SiteAddress {
  Address address;  ///< normalised
  std::string scheme;  ///< "http" or "https", after the tls directive and the listener are considered
  int port = 0;
  bool host_matcher = false;
  /// Certificates for the host are managed automatically (obtained and renewed).
  bool automatic_https = false;
  /// HTTP requests for this host are redirected to HTTPS (308).
  bool redirect_http = false;
  CertSource cert_source = CertSource::None;
  /// The certificate is obtained at the first handshake for a name (on-demand TLS).
  bool on_demand = false;
  /// Listener addresses: "host:port" for each bind host (":443" when none), or a "unix/..." path.
  std::vector<std::string> listeners;
  std::string file;
  int line = 0;
};

/// `log [<name>] { output ...; format ...; level ...; hostnames ... }`: the site's access log.
struct LogConfig {
  std::optional<std::string> name;
  std::string output = "stderr";          ///< "stdout", "stderr", "discard" or "file"
  std::optional<std::string> file_path;   ///< output file <path>
  std::vector<std::pair<std::string, std::vector<std::string>>> file_options;  ///< roll_size, roll_keep...
  std::string format = "json";            ///< "json" or "console"
  std::optional<std::string> level;
  std::vector<std::string> hostnames;
  bool no_hostname = false;
};

/// `handle_errors [<status...>] { routes }`: what to run when a handler fails with an HTTP error.
struct ErrorRoutes {
  std::vector<std::string> status;  ///< "404", "5xx"; empty: any error
  std::vector<Route> routes;        ///< sorted by the directive order
  std::string file;
  int line = 0;
};

/// One site block.
struct Site {
  std::vector<SiteAddress> addresses;
  std::optional<TlsPolicy> tls;
  std::vector<std::string> bind;            ///< `bind` hosts (may include "network/" prefixes)
  std::vector<std::string> bind_protocols;  ///< `bind { protocols h1 h2 }`
  std::vector<LogConfig> logs;
  /// "@name" -> definition, shared with the routes that use it.
  std::map<std::string, std::shared_ptr<const MatcherSet>> named_matchers;
  std::vector<Route> routes;  ///< in evaluation order (directive order applied)
  /// Error handlers; those naming status codes come before a catch-all.
  std::vector<ErrorRoutes> error_routes;
  std::string file;
  int line = 0;
};

struct Config {
  GlobalOptions global;
  std::vector<Site> sites;  ///< in file order; serve picks the most specific match per request
  std::map<std::string, std::vector<Route>> named_routes;  ///< `&(name) { ... }` for `invoke`
};

}  // namespace acmetool::caddyfile
