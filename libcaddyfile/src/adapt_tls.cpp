// Certificates: the `tls` directive, certificate issuers (shared with the cert_issuer option),
// DNS providers, and which issuer each site address gets (upstream httpcaddyfile/tlsapp.go).
#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "adapt_internal.h"

namespace acmetool::caddyfile::detail {
namespace {

DnsChallenge& dns_of(AcmeIssuer& acme) {
  if (!acme.dns) acme.dns.emplace();
  return *acme.dns;
}

std::string single(Dispenser& d) {
  std::string value = require_arg(d);
  expect_no_more_args(d);
  return value;
}

std::chrono::nanoseconds single_duration(Dispenser& d, std::string_view what) {
  require_arg(d);
  const auto value = duration_value(d, what);
  expect_no_more_args(d);
  return value;
}

// Subdirectives shared by `issuer acme { ... }` and the `tls` block. Returns false when `sub`
// is none of them.
bool acme_subdirective(Dispenser& d, const std::string& sub, AcmeIssuer& acme, std::string_view where) {
  const std::string what = std::string(where) + " " + sub;
  if (sub == "email") {
    acme.email = single(d);
  } else if (sub == "eab") {
    const std::vector<std::string> args = d.remaining_args();
    if (args.size() != 2) throw d.arg_error();
    acme.eab = Eab{args[0], args[1]};
  } else if (sub == "dns") {
    dns_of(acme).provider = parse_dns_provider(d);
  } else if (sub == "resolvers") {
    dns_of(acme).resolvers = d.remaining_args();
    if (acme.dns->resolvers.empty()) throw d.arg_error();
  } else if (sub == "propagation_delay") {
    dns_of(acme).propagation_delay = single_duration(d, what);
  } else if (sub == "propagation_timeout") {
    require_arg(d);
    dns_of(acme).propagation_timeout =
        d.val() == "-1" ? std::chrono::nanoseconds(-1) : duration_value(d, what);
    expect_no_more_args(d);
  } else if (sub == "dns_ttl") {
    dns_of(acme).ttl = single_duration(d, what);
  } else if (sub == "dns_challenge_override_domain") {
    dns_of(acme).override_domain = single(d);
  } else {
    return false;
  }
  return true;
}

AcmeIssuer parse_acme_issuer(Dispenser& d) {
  static constexpr std::string_view kKnown[] = {
      "dir",       "test_dir",          "email",       "timeout",      "disable_http_challenge",
      "disable_tlsalpn_challenge",      "alt_http_port", "alt_tlsalpn_port", "eab", "trusted_roots",
      "dns",       "propagation_delay", "propagation_timeout", "resolvers", "dns_ttl",
      "dns_challenge_override_domain"};
  AcmeIssuer acme;
  if (d.next_arg()) acme.directory = d.val();
  expect_no_more_args(d);
  for (int nesting = d.nesting(); d.next_block(nesting);) {
    const std::string sub = d.val();
    if (acme_subdirective(d, sub, acme, "issuer acme")) continue;
    if (sub == "dir") {
      if (acme.directory) throw d.error("issuer acme: directory is already specified");
      acme.directory = single(d);
    } else if (sub == "test_dir") {
      acme.test_directory = single(d);
    } else if (sub == "timeout") {
      acme.timeout = single_duration(d, "issuer acme timeout");
    } else if (sub == "disable_http_challenge") {
      expect_no_more_args(d);
      acme.disable_http_challenge = true;
    } else if (sub == "disable_tlsalpn_challenge") {
      expect_no_more_args(d);
      acme.disable_tlsalpn_challenge = true;
    } else if (sub == "alt_http_port" || sub == "alt_tlsalpn_port") {
      require_arg(d);
      (sub == "alt_http_port" ? acme.alt_http_port : acme.alt_tlsalpn_port) = int_value(d, "issuer acme " + sub, 1, 65535);
      expect_no_more_args(d);
    } else if (sub == "trusted_roots") {
      acme.trusted_roots = d.remaining_args();
      if (acme.trusted_roots.empty()) throw d.arg_error();
    } else {
      throw unknown_subdirective(d, "issuer acme", kKnown);
    }
  }
  return acme;
}

InternalIssuer parse_internal_issuer(Dispenser& d) {
  static constexpr std::string_view kKnown[] = {"ca", "lifetime", "sign_with_root"};
  InternalIssuer internal;
  expect_no_more_args(d);
  for (int nesting = d.nesting(); d.next_block(nesting);) {
    if (d.val() == "ca") {
      internal.ca = single(d);
    } else if (d.val() == "lifetime") {
      internal.lifetime = single_duration(d, "issuer internal lifetime");
    } else if (d.val() == "sign_with_root") {
      expect_no_more_args(d);
      internal.sign_with_root = true;
    } else {
      throw unknown_subdirective(d, "issuer internal", kKnown);
    }
  }
  return internal;
}

}  // namespace

DnsProvider parse_dns_provider(Dispenser& d) {
  DnsProvider provider;
  provider.name = require_arg(d);
  provider.args = d.remaining_args();
  for (int nesting = d.nesting(); d.next_block(nesting);) {
    std::string key = d.val();
    std::vector<std::string> values = d.remaining_args();
    if (d.next_block(d.nesting())) throw d.error("dns " + provider.name + ": nested blocks are not supported");
    provider.options.emplace_back(std::move(key), std::move(values));
  }
  return provider;
}

Issuer parse_issuer(Dispenser& d) {
  static constexpr std::string_view kModules[] = {"acme", "internal"};
  const std::string module = require_arg(d);
  if (module == "acme") return parse_acme_issuer(d);
  if (module == "internal") return parse_internal_issuer(d);
  throw d.error("unsupported certificate issuer '" + module + "' (acmetool has 'acme' and 'internal')" +
                did_you_mean(module, kModules));
}

TlsPolicy parse_tls(Dispenser& d) {
  static constexpr std::string_view kKnown[] = {
      "protocols", "ciphers",   "curves",  "alpn",      "load",     "ca",       "ca_root",
      "key_type",  "eab",       "issuer",  "dns",       "resolvers", "propagation_delay",
      "propagation_timeout",    "dns_ttl", "dns_challenge_override_domain", "on_demand",
      "reuse_private_keys",     "force_automate"};
  static constexpr std::string_view kProtocols[] = {"tls1.2", "tls1.3"};
  d.next();
  TlsPolicy tls;
  std::optional<AcmeIssuer> acme;
  const std::vector<std::string> first_line = d.remaining_args();
  if (first_line.size() == 1) {
    if (first_line[0] == "internal") {
      tls.internal = true;
    } else if (first_line[0] == "force_automate") {
      tls.force_automate = true;
    } else if (first_line[0].find('@') == std::string::npos) {
      throw d.error("single argument must either be 'internal', 'force_automate', or an email address");
    } else {
      acme.emplace().email = first_line[0];
    }
  } else if (first_line.size() == 2) {
    tls.cert_file = first_line[0];
    tls.key_file = first_line[1];
  } else if (first_line.size() > 2) {
    throw d.arg_error();
  }

  bool has_block = false;
  for (int nesting = d.nesting(); d.next_block(nesting);) {
    has_block = true;
    const std::string sub = d.val();
    AcmeIssuer scratch = acme.value_or(AcmeIssuer{});
    if (sub == "ca") {
      scratch.directory = single(d);
    } else if (sub == "ca_root") {
      scratch.trusted_roots.push_back(single(d));
    }
    if (sub == "ca" || sub == "ca_root" || acme_subdirective(d, sub, scratch, "tls")) {
      acme = std::move(scratch);
      continue;
    }
    if (sub == "protocols") {
      const std::vector<std::string> args = d.remaining_args();
      if (args.empty() || args.size() > 2) throw d.error("tls: protocols requires one or two arguments");
      for (const std::string& p : args) {
        if (std::find(std::begin(kProtocols), std::end(kProtocols), p) == std::end(kProtocols)) {
          throw d.error("tls: wrong protocol name or protocol not supported: '" + p + "'");
        }
      }
      tls.protocol_min = args[0];
      if (args.size() == 2) tls.protocol_max = args[1];
    } else if (sub == "ciphers" || sub == "curves" || sub == "alpn" || sub == "load") {
      std::vector<std::string> args = d.remaining_args();
      if (args.empty()) throw d.arg_error();
      (sub == "ciphers" ? tls.ciphers : sub == "curves" ? tls.curves : sub == "alpn" ? tls.alpn : tls.load) = std::move(args);
    } else if (sub == "key_type") {
      tls.key_type = single(d);
    } else if (sub == "issuer") {
      tls.issuers.push_back(parse_issuer(d));
    } else if (sub == "on_demand" || sub == "reuse_private_keys" || sub == "force_automate") {
      expect_no_more_args(d);
      (sub == "on_demand" ? tls.on_demand : sub == "reuse_private_keys" ? tls.reuse_private_keys : tls.force_automate) = true;
    } else {
      throw unknown_subdirective(d, "tls", kKnown);
    }
  }
  if (first_line.empty() && !has_block) throw d.arg_error();
  if (!tls.issuers.empty() && (acme || tls.internal)) {
    throw d.error("tls: cannot mix issuer subdirective (explicit issuers) with other issuer-specific subdirectives "
                  "(implicit issuers)");
  }
  if (acme && tls.internal) throw d.error("tls: cannot create both ACME and internal certificate issuers");
  if (acme) tls.issuers.push_back(std::move(*acme));
  if (tls.internal) tls.issuers.push_back(InternalIssuer{});
  return tls;
}

bool subject_qualifies_for_cert(std::string_view subject) {
  const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; };
  return !std::all_of(subject.begin(), subject.end(), blank) && !subject.starts_with('.') && !subject.ends_with('.') &&
         (subject.find('*') == std::string_view::npos || subject.starts_with("*.") || subject == "*") &&
         subject.find_first_of("()[]{}<> \t\n\"\\!@#$%^&|;'+=") == std::string_view::npos;
}

namespace {

// certmagic's privateNets; IPv4-mapped IPv6 addresses are judged as IPv4, as Go does.
bool is_internal_ip(const std::string& host) {
  unsigned char b[16];
  if (inet_pton(AF_INET, host.c_str(), b) != 1) {
    if (inet_pton(AF_INET6, host.c_str(), b) != 1) return false;
    const bool mapped = std::all_of(b, b + 10, [](unsigned char c) { return c == 0; }) && b[10] == 0xff && b[11] == 0xff;
    if (!mapped) {
      return (b[0] & 0xfe) == 0x00 ||                      // ::/7 (upstream writes ::1/7)
             (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) ||    // fe80::/10
             (b[0] & 0xfe) == 0xfc;                        // fc00::/7
    }
    std::memmove(b, b + 12, 4);
  }
  return b[0] == 127 || (b[0] == 0 && b[1] == 0) || b[0] == 10 || (b[0] == 172 && (b[1] & 0xf0) == 16) ||
         (b[0] == 192 && b[1] == 168) || (b[0] == 169 && b[1] == 254);
}

std::size_t count_wildcard_labels(std::string_view host) {
  std::size_t count = 0;
  for (std::size_t at = host.find("*."); at != std::string_view::npos; at = host.find("*.", at + 2)) ++count;
  return count;
}

CertSource issuer_source(const Issuer& issuer) {
  return std::holds_alternative<InternalIssuer>(issuer) ? CertSource::Internal : CertSource::Acme;
}

// Which issuer a managed name gets: explicit issuers first, then local_certs and cert_issuer,
// else the adapter's own rule: IPs, internal names and multi-wildcards go to the local CA.
CertSource decide_issuer(std::string_view host, const Site& site, const GlobalOptions& global, bool on_demand) {
  if (site.tls && !site.tls->issuers.empty()) return issuer_source(site.tls->issuers.front());
  if (global.local_certs) return CertSource::Internal;
  if (!global.cert_issuers.empty()) return issuer_source(global.cert_issuers.front());
  if (host.empty()) return CertSource::Acme;  // on-demand catch-all: decided per name at handshake
  if (is_ip_literal(host) || subject_is_internal(host) || (count_wildcard_labels(host) >= 2 && !on_demand)) {
    return CertSource::Internal;
  }
  return CertSource::Acme;
}

}  // namespace

bool subject_is_internal(std::string_view subject) {
  std::string host(subject);
  if (host.starts_with('[')) {
    const std::size_t end = host.find(']');
    host = host.substr(1, end == std::string::npos ? std::string::npos : end - 1);
  } else if (std::count(host.begin(), host.end(), ':') == 1) {
    host = host.substr(0, host.find(':'));
  }
  if (host.ends_with('.')) host.pop_back();
  for (char& c : host) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return host == "localhost" || host.ends_with(".localhost") || host.ends_with(".local") ||
         host.ends_with(".internal") || host.ends_with(".home.arpa") || is_internal_ip(host);
}

void assign_cert_sources(Site& site, const GlobalOptions& global, const std::vector<Token>& keys) {
  const bool on_demand = site.tls && site.tls->on_demand;
  const bool manual = site.tls && site.tls->cert_file;
  const GlobalOptions::AutoHttps& auto_https = global.auto_https;
  for (std::size_t k = 0; k < site.addresses.size(); ++k) {
    SiteAddress& a = site.addresses[k];
    const std::string& host = a.address.host;
    if (a.scheme != "https") continue;
    a.on_demand = on_demand;
    if (manual) a.cert_source = CertSource::Manual;
    if (auto_https.off && !(site.tls && site.tls->force_automate)) continue;
    if (host.empty() && !on_demand) continue;
    a.redirect_http = !auto_https.off && !auto_https.disable_redirects;
    if (manual || auto_https.disable_certs) continue;
    if (!host.empty() && !subject_qualifies_for_cert(host)) {
      throw error_at(keys[k], "subject does not qualify for certificate: '" + host + "'");
    }
    a.cert_source = decide_issuer(host, site, global, on_demand);
    a.automatic_https = true;
  }
}

}  // namespace acmetool::caddyfile::detail
