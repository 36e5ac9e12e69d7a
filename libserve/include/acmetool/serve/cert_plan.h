// What a Caddyfile asks of the certificate manager (issue 7, "Managed names: from config, each with
// an issuer policy"): the names automatic HTTPS manages, each with the issuer Caddy would give it,
// and the manager's options — ACME CAs and challenges, the local CA, on-demand TLS — from the
// global options and the sites' `tls` directives. Caddy keeps one automation policy per site; the
// CertManager has one ACME setup, one local CA and one on-demand policy, so where sites ask for
// different ones the global settings win and a warning says so.
#pragma once

#include <string>
#include <vector>

#include "acmetool/caddyfile/config.h"
#include "acmetool/serve/cert_manager.h"

namespace acmetool::serve {

/// What a config asks of the certificate manager.
struct CertificatePlan {
  /// Everything except clock and log, which the caller sets. options.acme.directory_urls stays
  /// empty when no site needs an ACME CA, so the manager makes no ACME client; options.on_demand
  /// is set only when a site uses on-demand TLS.
  CertManagerOptions options;
  /// One per distinct host to manage, sorted by name, no duplicates. Hosts of on-demand sites are
  /// not here: their certificates are obtained at the first handshake.
  std::vector<ManagedName> names;
  /// Settings acmetool does not honour as written, one line each with the file:line of the site
  /// they concern: "Caddyfile:12: ...". Deprecations the adapter already reported are not repeated.
  std::vector<std::string> warnings;
};

/// Builds the plan from an adapted Config (caddyfile::adapt), following Caddy's automatic HTTPS:
///  - each https site address with a host that automatic HTTPS manages becomes a ManagedName with
///    the address' cert_source (Acme or Internal; the adapter already applied `tls internal`,
///    `local_certs`, `cert_issuer` and the internal-name rule); `tls <cert> <key>` makes a Manual
///    name with the paths as written, even under `auto_https off`. Hosts are normalised as
///    pki::qualify_name does (A-labels, lower case). When two sites name one host, the first
///    wins; a different policy (or other files) in a later one is a warning naming both lines.
///  - ACME: the sites' own ACME issuers when every ACME site has the same settings, else the
///    global ones (`cert_issuer acme` lines in order, else `acme_ca`, else Let's Encrypt), with
///    email, EAB, `acme_ca_root` or trusted_roots, `key_type`, and DNS-01 through the provider of
///    `acme_dns` or `tls { dns ... }` (made here by acme::make_dns_provider), or else HTTP-01 and
///    TLS-ALPN-01 on the http_port and https_port (or the issuer's alt ports) less disabled ones.
///  - the local CA from the internal issuer (`ca`, `lifetime`); `renew_interval` as the
///    maintenance interval; on-demand TLS from the `on_demand_tls` option (`ask`, `permission
///    http`, cooldown, ask_include_ip, the deprecated interval and burst).
/// Throws serve::Error, one line "FILE:LINE: ..." naming the site concerned, for configurations
/// that cannot work: a wildcard ACME name without a DNS provider, on-demand TLS from a public CA
/// without `ask` or `permission`, a permission module other than http, an ask URL that is not
/// http(s), a bad `tls key_type`, every challenge disabled, a DNS provider make_dns_provider
/// refuses, a host no certificate can name. Reads no files (the DNS provider may read the
/// environment for what the Caddyfile leaves out); thread-safe.
CertificatePlan plan_certificates(const caddyfile::Config& config);

}  // namespace acmetool::serve
