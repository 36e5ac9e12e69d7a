// plan_certificates: an adapted Caddyfile as the CertManager's input (issue 7). The adapter has
// already decided each site address' certificate source (caddyfile/adapt_tls.cpp); this file
// collects the names and turns the issuer settings into one ACME setup, one local CA and one
// on-demand policy.
#include "acmetool/serve/cert_plan.h"

#include <algorithm>
#include <map>
#include <optional>
#include <tuple>
#include <utility>

#include "acmetool/acme/error.h"
#include "acmetool/acme/issuance.h"
#include "acmetool/pki/hostname.h"
#include "acmetool/pki/key.h"
#include "acmetool/serve/dns_config.h"
#include "acmetool/serve/error.h"

namespace acmetool::serve {
namespace {

using caddyfile::AcmeIssuer;
using caddyfile::CertSource;
using caddyfile::Config;
using caddyfile::GlobalOptions;
using caddyfile::InternalIssuer;
using caddyfile::Site;
using caddyfile::SiteAddress;

std::string where(const std::string& file, int line) { return file + ":" + std::to_string(line); }
std::string where(const Site& site) { return where(site.file, site.line); }
std::string where(const SiteAddress& address) { return where(address.file, address.line); }

// An address whose certificate automatic HTTPS obtains, at start-up or on demand.
bool automated(const SiteAddress& address) {
  return address.automatic_https &&
         (address.cert_source == CertSource::Acme || address.cert_source == CertSource::Internal);
}

bool uses(const Site& site, CertSource source) {
  return std::any_of(site.addresses.begin(), site.addresses.end(),
                     [&](const SiteAddress& a) { return automated(a) && a.cert_source == source; });
}

// ---- names ----

struct NamedAt {
  ManagedName name;
  std::string where;  // the first site address naming it
};
using NameMap = std::map<std::string, NamedAt>;

std::string describe(const ManagedName& name) {
  switch (name.policy) {
    case IssuerPolicy::Acme:
      return "the ACME CA";
    case IssuerPolicy::Internal:
      return "the local CA";
    case IssuerPolicy::Manual:
      break;
  }
  return "the files " + name.cert_file.string() + " and " + name.key_file.string();
}

void add_name(NameMap& names, ManagedName name, const std::string& at,
              std::vector<std::string>& warnings) {
  const auto [it, inserted] = names.try_emplace(name.name, NamedAt{name, at});
  if (inserted) return;
  const ManagedName& first = it->second.name;
  if (first.policy != name.policy || first.cert_file != name.cert_file ||
      first.key_file != name.key_file) {
    warnings.push_back(at + ": " + name.name + " gets its certificate from " + describe(first) +
                       " as " + it->second.where + " says, not from " + describe(name));
  }
}

// The host as a certificate names it: A-labels, lower case. The adapter lower-cases and rejects
// trailing dots already; pki's rules (DESIGN.md §3, implemented once) are stricter than Caddy's.
std::string certificate_name(const SiteAddress& address) {
  const pki::NameQualification q = pki::qualify_name(address.address.host);
  if (q.name_class == pki::NameClass::Invalid) {
    throw Error(where(address) + ": " + address.address.host +
                " cannot have a certificate: " + q.reason);
  }
  return q.name;
}

void collect_names(const Config& config, NameMap& names, std::vector<std::string>& warnings) {
  for (const Site& site : config.sites) {
    if (site.tls && !site.tls->load.empty()) {
      warnings.push_back(where(site) +
                         ": tls load is not supported yet; those certificates are not loaded");
    }
    for (const SiteAddress& a : site.addresses) {
      if (a.cert_source == CertSource::Manual) {
        if (a.address.host.empty()) {
          warnings.push_back(
              where(a) +
              ": certificate files of a site without a host are not loaded yet; name its hosts");
          continue;
        }
        // The files decide which names they serve, so a host pki would refuse stays as written.
        const pki::NameQualification q = pki::qualify_name(a.address.host);
        ManagedName manual{q.name_class == pki::NameClass::Invalid ? a.address.host : q.name,
                           IssuerPolicy::Manual,
                           {},
                           *site.tls->cert_file,
                           *site.tls->key_file};
        add_name(names, std::move(manual), where(a), warnings);
      } else if (automated(a) && !a.on_demand && !a.address.host.empty()) {
        const IssuerPolicy policy =
            a.cert_source == CertSource::Acme ? IssuerPolicy::Acme : IssuerPolicy::Internal;
        add_name(names, ManagedName{certificate_name(a), policy, {}, {}, {}}, where(a), warnings);
      }
    }
  }
}

// ---- ACME ----

// Everything about ACME that ends up in ObtainSettings, comparable across sites.
struct AcmeChoice {
  std::vector<std::string> directory_urls;
  std::string email;
  std::string eab_kid;
  std::string eab_hmac_key;
  std::string ca_root;
  std::optional<caddyfile::DnsProvider> dns_provider;
  caddyfile::DnsChallenge dns;  // solver settings; used only with a provider
  bool disable_http = false;
  bool disable_tlsalpn = false;
  std::optional<int> alt_http_port;
  std::optional<int> alt_tlsalpn_port;
  pki::KeyType key_type = pki::KeyType::P256;
};

bool same(const AcmeChoice& a, const AcmeChoice& b) {
  const auto fields = [](const AcmeChoice& c) {
    return std::tie(c.directory_urls, c.email, c.eab_kid, c.eab_hmac_key, c.ca_root, c.disable_http,
                    c.disable_tlsalpn, c.alt_http_port, c.alt_tlsalpn_port, c.key_type,
                    c.dns.resolvers, c.dns.propagation_delay, c.dns.propagation_timeout, c.dns.ttl,
                    c.dns.override_domain);
  };
  const auto provider = [](const AcmeChoice& c) {
    return c.dns_provider ? std::optional(std::tie(c.dns_provider->name, c.dns_provider->args,
                                                   c.dns_provider->options))
                          : std::nullopt;
  };
  return fields(a) == fields(b) && provider(a) == provider(b);
}

// Caddy's default issuers are Let's Encrypt, then ZeroSSL with an EAB it fetches through ZeroSSL's
// API for the configured email. acmetool cannot fetch that EAB yet, so Let's Encrypt is the only
// default CA; a Caddyfile that wants ZeroSSL names it with acme_ca or cert_issuer.
std::string default_directory(const GlobalOptions& global) {
  return global.acme_ca.value_or(acme::directory_url_for("letsencrypt"));
}

pki::KeyType key_type_of(const std::optional<std::string>& name, const std::string& option) {
  if (!name) return pki::KeyType::P256;
  if (const auto type = pki::parse_key_type(*name)) return *type;
  throw Error(option + ": unsupported key type '" + *name +
              "' (expected p256, p384, rsa2048, rsa3072, rsa4096 or ed25519)");
}

// The settings of an issuer chain (the ACME issuers of a site or of cert_issuer, in order; empty
// for the implicit default issuer), with the global options filling what the first one leaves out.
AcmeChoice acme_choice(const std::vector<const AcmeIssuer*>& issuers, pki::KeyType key_type,
                       const GlobalOptions& global, const std::string& at,
                       std::vector<std::string>& warnings) {
  static const AcmeIssuer kImplicit;
  const AcmeIssuer& first = issuers.empty() ? kImplicit : *issuers.front();
  AcmeChoice c;
  for (const AcmeIssuer* issuer : issuers) {
    const std::string url = issuer->directory.value_or(default_directory(global));
    if (std::find(c.directory_urls.begin(), c.directory_urls.end(), url) ==
        c.directory_urls.end()) {
      c.directory_urls.push_back(url);
    }
    if (issuer->test_directory || issuer->timeout) {
      warnings.push_back(at + ": issuer acme test_dir and timeout are not supported yet; ignored");
    }
  }
  if (issuers.empty()) c.directory_urls.push_back(default_directory(global));
  c.email = first.email.value_or(global.email.value_or(""));
  if (const std::optional<caddyfile::Eab>& eab = first.eab ? first.eab : global.acme_eab) {
    c.eab_kid = eab->key_id;
    c.eab_hmac_key = eab->mac_key;
  }
  c.ca_root =
      first.trusted_roots.empty() ? global.acme_ca_root.value_or("") : first.trusted_roots.front();
  if (first.trusted_roots.size() > 1) {
    warnings.push_back(at + ": only the first trusted_roots file (" + c.ca_root +
                       ") is trusted for the CA yet");
  }
  if (first.dns) c.dns = *first.dns;
  c.dns_provider = first.dns && first.dns->provider ? first.dns->provider : global.acme_dns;
  if (first.dns && !c.dns_provider) {
    warnings.push_back(at +
                       ": DNS challenge settings without a DNS provider are ignored; set acme_dns "
                       "or tls { dns ... }");
  }
  c.disable_http = first.disable_http_challenge;
  c.disable_tlsalpn = first.disable_tlsalpn_challenge;
  c.alt_http_port = first.alt_http_port;
  c.alt_tlsalpn_port = first.alt_tlsalpn_port;
  c.key_type = key_type;
  return c;
}

std::vector<const AcmeIssuer*> acme_issuers(const std::vector<caddyfile::Issuer>& issuers) {
  std::vector<const AcmeIssuer*> out;
  for (const caddyfile::Issuer& issuer : issuers) {
    if (const auto* acme_issuer = std::get_if<AcmeIssuer>(&issuer)) out.push_back(acme_issuer);
  }
  return out;
}

acme::ObtainSettings obtain_settings(const AcmeChoice& c, const GlobalOptions& global,
                                     const std::string& at) {
  acme::ObtainSettings s;
  s.directory_urls = c.directory_urls;
  s.ca_root = c.ca_root;
  s.account.email = c.email;
  s.account.eab_kid = c.eab_kid;
  s.account.eab_hmac_key = c.eab_hmac_key;
  s.key_type = c.key_type;
  s.http_port = c.alt_http_port.value_or(global.effective_http_port());
  s.tls_port = c.alt_tlsalpn_port.value_or(global.effective_https_port());
  if (c.dns_provider) {
    // With a DNS provider, Caddy disables the other challenges (Automatic HTTPS, "DNS challenge").
    s.challenges = {"dns-01"};
    try {
      s.dns_provider = acme::make_dns_provider(dns_provider_settings(*c.dns_provider));
    } catch (const acme::Error& e) {
      throw Error(at + ": " + e.what());
    }
    s.dns = dns01_options(c.dns);
    return s;
  }
  s.challenges.clear();
  if (!c.disable_http) s.challenges.push_back("http-01");
  if (!c.disable_tlsalpn) s.challenges.push_back("tls-alpn-01");
  if (s.challenges.empty()) {
    throw Error(at + ": every ACME challenge is disabled and no DNS provider is set");
  }
  return s;
}

// One ACME setup for every site: the sites' own when they all agree, else the global one.
void plan_acme(const Config& config, CertificatePlan& plan) {
  const GlobalOptions& global = config.global;
  std::vector<const Site*> sites;
  for (const Site& site : config.sites) {
    if (uses(site, CertSource::Acme)) sites.push_back(&site);
  }
  if (sites.empty()) return;  // no ACME client at all: nothing listens for challenges
  const pki::KeyType global_key_type = key_type_of(global.key_type, "key_type");
  std::vector<std::string> global_warnings;  // reported only when the global issuer is used
  const AcmeChoice global_choice = acme_choice(acme_issuers(global.cert_issuers), global_key_type,
                                               global, where(*sites.front()), global_warnings);
  std::vector<AcmeChoice> choices;
  bool global_used = false;
  for (const Site* site : sites) {
    if (!site->tls || (site->tls->issuers.empty() && !site->tls->key_type)) {
      choices.push_back(global_choice);
      global_used = true;
      continue;
    }
    const std::vector<caddyfile::Issuer>& issuers =
        site->tls->issuers.empty() ? global.cert_issuers : site->tls->issuers;
    const pki::KeyType key_type =
        site->tls->key_type ? key_type_of(site->tls->key_type, where(*site) + ": tls key_type")
                            : global_key_type;
    choices.push_back(
        acme_choice(acme_issuers(issuers), key_type, global, where(*site), plan.warnings));
  }
  const bool agree = std::all_of(choices.begin(), choices.end(),
                                 [&](const AcmeChoice& c) { return same(c, choices[0]); });
  if (global_used || !agree) {
    plan.warnings.insert(plan.warnings.end(), global_warnings.begin(), global_warnings.end());
  }
  if (!agree) {
    for (std::size_t i = 0; i < sites.size(); ++i) {
      if (same(choices[i], global_choice)) continue;
      plan.warnings.push_back(
          where(*sites[i]) +
          ": per-site ACME issuers are not supported yet; this site uses the global issuer");
    }
  }
  plan.options.acme =
      obtain_settings(agree ? choices[0] : global_choice, global, where(*sites.front()));
}

// A wildcard can only be validated through DNS (RFC 8555 §7.1.3, Let's Encrypt's rule).
void check_wildcards(const NameMap& names, const CertificatePlan& plan) {
  const std::vector<std::string>& challenges = plan.options.acme.challenges;
  const bool dns = std::find(challenges.begin(), challenges.end(), "dns-01") != challenges.end();
  for (const auto& [name, at] : names) {
    if (at.name.policy != IssuerPolicy::Acme || !name.starts_with("*.") || dns) continue;
    throw Error(at.where + ": " + name +
                " needs the DNS challenge: set acme_dns or tls { dns ... }");
  }
}

// ---- the local CA ----

struct InternalChoice {
  std::string ca = "local";
  std::optional<std::chrono::nanoseconds> lifetime;
  bool operator==(const InternalChoice&) const = default;
};

InternalChoice internal_choice(const InternalIssuer* issuer, const std::string& at,
                               std::vector<std::string>& warnings) {
  if (!issuer) return {};
  if (issuer->sign_with_root) {
    warnings.push_back(at + ": issuer internal sign_with_root is not supported yet; ignored");
  }
  return {issuer->ca, issuer->lifetime};
}

// The internal issuer an Internal site address got: the site's first issuer, or with local_certs
// the default one, or the first cert_issuer, or the default one for internal names.
const InternalIssuer* internal_issuer_of(const Site& site, const GlobalOptions& global) {
  if (site.tls && !site.tls->issuers.empty()) {
    return std::get_if<InternalIssuer>(&site.tls->issuers.front());
  }
  if (global.local_certs || global.cert_issuers.empty()) return nullptr;
  return std::get_if<InternalIssuer>(&global.cert_issuers.front());
}

void plan_local_ca(const Config& config, CertificatePlan& plan) {
  const GlobalOptions& global = config.global;
  const InternalIssuer* global_issuer = nullptr;
  for (const caddyfile::Issuer& issuer : global.cert_issuers) {
    if (!global_issuer) global_issuer = std::get_if<InternalIssuer>(&issuer);
  }
  std::vector<std::pair<const Site*, InternalChoice>> choices;
  for (const Site& site : config.sites) {
    if (uses(site, CertSource::Internal)) {
      choices.emplace_back(
          &site, internal_choice(internal_issuer_of(site, global), where(site), plan.warnings));
    }
  }
  if (choices.empty()) return;
  const InternalChoice global_choice =
      global_issuer ? InternalChoice{global_issuer->ca, global_issuer->lifetime} : InternalChoice{};
  const bool agree = std::all_of(choices.begin(), choices.end(), [&](const auto& entry) {
    return entry.second == choices.front().second;
  });
  const InternalChoice chosen = agree ? choices.front().second : global_choice;
  for (const auto& [site, choice] : choices) {
    if (agree || choice == global_choice) continue;
    plan.warnings.push_back(
        where(*site) + ": per-site internal issuers are not supported yet; this site uses the " +
        global_choice.ca + " CA");
  }
  plan.options.local_ca.name = chosen.ca;
  if (chosen.lifetime) {
    plan.options.internal_lifetime =
        std::chrono::duration_cast<std::chrono::seconds>(*chosen.lifetime);
  }
}

// ---- on-demand TLS ----

// The permission endpoint: `ask URL`, or `permission http URL` (Caddy 2.8's successor of ask).
std::string ask_url(const caddyfile::OnDemandTls& on_demand, const std::string& at) {
  std::string url;
  if (on_demand.ask) {
    url = *on_demand.ask;
  } else if (on_demand.permission) {
    if (*on_demand.permission != "http") {
      throw Error(at + ": on_demand_tls: permission module '" + *on_demand.permission +
                  "' is not supported (acmetool has 'http')");
    }
    if (on_demand.permission_args.size() != 1) {
      throw Error(at + ": on_demand_tls: permission http needs exactly one endpoint URL");
    }
    url = on_demand.permission_args.front();
  }
  if (!url.empty() && !url.starts_with("http://") && !url.starts_with("https://")) {
    throw Error(at + ": on_demand_tls: the permission endpoint '" + url +
                "' is not an http:// or https:// URL");
  }
  return url;
}

void plan_on_demand(const Config& config, CertificatePlan& plan) {
  std::vector<const SiteAddress*> addresses;
  for (const Site& site : config.sites) {
    for (const SiteAddress& a : site.addresses) {
      if (automated(a) && a.on_demand) addresses.push_back(&a);
    }
  }
  if (addresses.empty()) return;
  const SiteAddress& first = *addresses.front();
  const caddyfile::OnDemandTls settings =
      config.global.on_demand_tls.value_or(caddyfile::OnDemandTls{});
  OnDemandOptions on_demand;
  on_demand.ask_url = ask_url(settings, where(first));
  on_demand.ask_include_ip = settings.ask_include_ip;
  if (settings.cooldown) on_demand.cooldown = *settings.cooldown;
  // The adapter has already warned that interval and burst are deprecated.
  if (settings.interval) on_demand.interval = *settings.interval;
  if (settings.burst) on_demand.burst = *settings.burst;
  for (const SiteAddress* a : addresses) {
    // "On-demand TLS must be both enabled and restricted to prevent abuse" (Automatic HTTPS,
    // "On-Demand TLS"; DESIGN.md §3): a public CA would otherwise order for any name a scanner
    // sends.
    if (a->cert_source == CertSource::Acme && on_demand.ask_url.empty()) {
      throw Error(where(*a) +
                  ": on-demand TLS with a public CA needs 'ask' or 'permission' in the "
                  "on_demand_tls global option");
    }
    if (a->cert_source != first.cert_source) {
      plan.warnings.push_back(
          where(*a) +
          ": on-demand TLS has one issuer for every site yet; this site gets its "
          "certificates from the " +
          (first.cert_source == CertSource::Acme ? "ACME" : "local") + " CA as " + where(first) +
          " says");
    }
  }
  // Names on-demand TLS may obtain for: the on-demand sites' hosts (patterns such as
  // "*.example.com" included), or any name when one of them has no host (`https://`).
  for (const SiteAddress* a : addresses) {
    if (a->address.host.empty()) {
      plan.options.on_demand_hosts.clear();
      break;
    }
    plan.options.on_demand_hosts.push_back(pki::qualify_name(a->address.host).name);
  }
  plan.options.on_demand = std::move(on_demand);
  plan.options.on_demand_policy =
      first.cert_source == CertSource::Internal ? IssuerPolicy::Internal : IssuerPolicy::Acme;
}

void check_key_types(const Config& config) {
  for (const Site& site : config.sites) {
    if (site.tls && site.tls->key_type) {
      key_type_of(site.tls->key_type, where(site) + ": tls key_type");
    }
  }
}

}  // namespace

CertificatePlan plan_certificates(const Config& config) {
  CertificatePlan plan;
  check_key_types(config);
  NameMap names;
  collect_names(config, names, plan.warnings);
  plan_acme(config, plan);
  check_wildcards(names, plan);
  plan_local_ca(config, plan);
  plan_on_demand(config, plan);
  if (config.global.renew_interval) {
    plan.options.maintenance_interval =
        std::chrono::duration_cast<std::chrono::milliseconds>(*config.global.renew_interval);
  }
  for (auto& [name, at] : names) plan.names.push_back(std::move(at.name));
  return plan;
}

}  // namespace acmetool::serve
