// The global options block (upstream httpcaddyfile/options.go). Each option reads its segment
// with the cursor on the option name.
#include <arpa/inet.h>

#include <algorithm>

#include "adapt_internal.h"

namespace acmetool::caddyfile::detail {
namespace {

using OptionParser = void (*)(Dispenser&, GlobalOptions&, std::vector<Warning>&);

std::string single_string(Dispenser& d) {
  std::string value = require_arg(d);
  expect_no_more_args(d);
  return value;
}

void no_args(Dispenser& d) {
  expect_no_more_args(d);
  if (d.next_block(d.nesting())) throw d.error(d.tokens().front().text + ": takes no block");
}

int port_option(Dispenser& d) {
  const std::string name = d.val();
  require_arg(d);
  const int port = int_value(d, name, 1, 65535);
  expect_no_more_args(d);
  return port;
}

std::chrono::nanoseconds duration_option(Dispenser& d) {
  const std::string name = d.val();
  require_arg(d);
  const auto value = duration_value(d, name);
  expect_no_more_args(d);
  return value;
}

void opt_debug(Dispenser& d, GlobalOptions& g, std::vector<Warning>&) {
  no_args(d);
  g.debug = true;
}

void opt_local_certs(Dispenser& d, GlobalOptions& g, std::vector<Warning>&) {
  no_args(d);
  g.local_certs = true;
}

void opt_skip_install_trust(Dispenser& d, GlobalOptions& g, std::vector<Warning>&) {
  no_args(d);
  g.skip_install_trust = true;
}

void opt_email(Dispenser& d, GlobalOptions& g, std::vector<Warning>&) { g.email = single_string(d); }
void opt_acme_ca(Dispenser& d, GlobalOptions& g, std::vector<Warning>&) { g.acme_ca = single_string(d); }
void opt_acme_ca_root(Dispenser& d, GlobalOptions& g, std::vector<Warning>&) { g.acme_ca_root = single_string(d); }
void opt_http_port(Dispenser& d, GlobalOptions& g, std::vector<Warning>&) { g.http_port = port_option(d); }
void opt_https_port(Dispenser& d, GlobalOptions& g, std::vector<Warning>&) { g.https_port = port_option(d); }
void opt_renew_interval(Dispenser& d, GlobalOptions& g, std::vector<Warning>&) { g.renew_interval = duration_option(d); }
void opt_grace_period(Dispenser& d, GlobalOptions& g, std::vector<Warning>&) { g.grace_period = duration_option(d); }
void opt_shutdown_delay(Dispenser& d, GlobalOptions& g, std::vector<Warning>&) { g.shutdown_delay = duration_option(d); }

void opt_key_type(Dispenser& d, GlobalOptions& g, std::vector<Warning>&) {
  static constexpr std::string_view kTypes[] = {"ed25519", "p256", "p384", "rsa2048", "rsa4096"};
  std::string type = single_string(d);
  if (std::find(std::begin(kTypes), std::end(kTypes), type) == std::end(kTypes)) {
    throw d.error("key_type: unsupported key type '" + type + "' (expected ed25519, p256, p384, rsa2048 or rsa4096)");
  }
  g.key_type = std::move(type);
}

void opt_acme_eab(Dispenser& d, GlobalOptions& g, std::vector<Warning>&) {
  static constexpr std::string_view kKnown[] = {"key_id", "mac_key"};
  expect_no_more_args(d);
  Eab eab;
  for (int nesting = d.nesting(); d.next_block(nesting);) {
    if (d.val() == "key_id") {
      eab.key_id = single_string(d);
    } else if (d.val() == "mac_key") {
      eab.mac_key = single_string(d);
    } else {
      throw unknown_subdirective(d, "acme_eab", kKnown);
    }
  }
  if (eab.key_id.empty() || eab.mac_key.empty()) {
    throw error_at(d.tokens().front(), "acme_eab: both key_id and mac_key are required");
  }
  g.acme_eab = std::move(eab);
}

void opt_acme_dns(Dispenser& d, GlobalOptions& g, std::vector<Warning>&) { g.acme_dns = parse_dns_provider(d); }

void opt_auto_https(Dispenser& d, GlobalOptions& g, std::vector<Warning>&) {
  const std::vector<std::string> values = d.remaining_args();
  if (values.empty()) throw d.arg_error();
  for (const std::string& v : values) {
    if (v == "off") {
      g.auto_https.off = true;
    } else if (v == "disable_redirects") {
      g.auto_https.disable_redirects = true;
    } else if (v == "disable_certs") {
      g.auto_https.disable_certs = true;
    } else if (v == "ignore_loaded_certs") {
      g.auto_https.ignore_loaded_certs = true;
    } else if (v == "prefer_wildcard") {
      g.auto_https.prefer_wildcard = true;
    } else {
      throw d.error("auto_https must be one of 'off', 'disable_redirects', 'disable_certs', 'ignore_loaded_certs', "
                    "or 'prefer_wildcard'");
    }
  }
}

void opt_default_bind(Dispenser& d, GlobalOptions& g, std::vector<Warning>&) {
  static constexpr std::string_view kKnown[] = {"protocols"};
  std::vector<std::string> hosts = d.remaining_args();
  if (hosts.empty()) hosts.push_back("");
  for (int nesting = d.nesting(); d.next_block(nesting);) {
    if (d.val() != "protocols") throw unknown_subdirective(d, "default_bind", kKnown);
    if (d.remaining_args().empty()) throw d.error("default_bind: protocols requires one or more arguments");
  }
  g.default_bind.insert(g.default_bind.end(), hosts.begin(), hosts.end());
}

void opt_storage(Dispenser& d, GlobalOptions& g, std::vector<Warning>&) {
  static constexpr std::string_view kKnown[] = {"root"};
  const std::string module = require_arg(d);
  if (module != "file_system") {
    throw d.error("storage: module '" + module + "' is not supported (acmetool stores in 'file_system' only)");
  }
  std::optional<std::string> root;
  if (d.next_arg()) root = d.val();
  expect_no_more_args(d);
  for (int nesting = d.nesting(); d.next_block(nesting);) {
    if (d.val() != "root") throw unknown_subdirective(d, "storage file_system", kKnown);
    if (root) throw d.error("storage file_system: root already specified");
    root = single_string(d);
  }
  if (!root) throw d.error("storage file_system: a root path is required");
  g.storage_root = std::move(root);
}

// After `permission http`: the endpoint, given inline (`permission http <url>`, as Caddy reads it)
// or in Caddy 2.8's block form `permission http { endpoint <url> }`; exactly one either way.
void permission_http(Dispenser& d, OnDemandTls& ond) {
  static constexpr std::string_view kKnown[] = {"endpoint"};
  const Token module = d.token();
  for (int nesting = d.nesting(); d.next_block(nesting);) {
    if (d.val() != "endpoint") throw unknown_subdirective(d, "on_demand_tls permission http", kKnown);
    if (!ond.permission_args.empty()) throw d.error("on_demand_tls permission http: endpoint already specified");
    ond.permission_args.push_back(single_string(d));
  }
  if (ond.permission_args.size() != 1) {
    throw error_at(module, "on_demand_tls permission http: expected one endpoint URL");
  }
}

void opt_on_demand_tls(Dispenser& d, GlobalOptions& g, std::vector<Warning>& warnings) {
  static constexpr std::string_view kKnown[] = {"ask", "permission", "interval", "burst", "cooldown", "ask_include_ip"};
  expect_no_more_args(d);
  OnDemandTls ond;
  bool any = false;
  for (int nesting = d.nesting(); d.next_block(nesting);) {
    any = true;
    const std::string sub = d.val();
    if (sub == "ask" || sub == "permission") {
      if (ond.ask || ond.permission) throw d.error("on-demand TLS permission module (or 'ask') already specified");
      if (sub == "ask") {
        ond.ask = single_string(d);
      } else {
        ond.permission = require_arg(d);
        ond.permission_args = d.remaining_args();
        if (*ond.permission == "http") {
          permission_http(d, ond);
        } else if (const Token at = d.token(); d.next_block(d.nesting())) {
          throw error_at(at, "on_demand_tls: permission module options are not supported by acmetool yet");
        }
      }
    } else if (sub == "interval") {
      warn(warnings, d.token(), "on_demand_tls: 'interval' is deprecated (removed in Caddy 2.9); use 'ask' to limit issuance");
      require_arg(d);
      ond.interval = duration_value(d, "on_demand_tls interval");
      expect_no_more_args(d);
    } else if (sub == "burst") {
      warn(warnings, d.token(), "on_demand_tls: 'burst' is deprecated (removed in Caddy 2.9); use 'ask' to limit issuance");
      require_arg(d);
      ond.burst = int_value(d, "on_demand_tls burst", 1, 1000000000);
      expect_no_more_args(d);
    } else if (sub == "cooldown") {
      require_arg(d);
      ond.cooldown = duration_value(d, "on_demand_tls cooldown");
      if (*ond.cooldown < std::chrono::nanoseconds(0)) {
        throw d.error("on_demand_tls cooldown: negative duration '" + d.val() + "'");
      }
      expect_no_more_args(d);
    } else if (sub == "ask_include_ip") {
      expect_no_more_args(d);
      if (const Token at = d.token(); d.next_block(d.nesting())) {
        throw error_at(at, "on_demand_tls ask_include_ip: takes no block");
      }
      ond.ask_include_ip = true;
    } else {
      throw unknown_subdirective(d, "on_demand_tls", kKnown);
    }
  }
  if (!any) throw error_at(d.tokens().front(), "expected at least one config parameter for on_demand_tls");
  g.on_demand_tls = std::move(ond);
}

void opt_cert_issuer(Dispenser& d, GlobalOptions& g, std::vector<Warning>&) { g.cert_issuers.push_back(parse_issuer(d)); }

void opt_admin(Dispenser& d, GlobalOptions& g, std::vector<Warning>&) {
  static constexpr std::string_view kKnown[] = {"enforce_origin", "origins"};
  AdminOptions admin;
  if (d.next_arg()) {
    if (d.val() == "off") {
      admin.disabled = true;
      const Token off = d.token();
      if (d.next_arg() || d.next_block(d.nesting())) {
        throw error_at(off, "No more option is allowed after turning off admin config");
      }
    } else {
      admin.listen = d.val();
      expect_no_more_args(d);
    }
  }
  for (int nesting = d.nesting(); d.next_block(nesting);) {
    if (d.val() == "enforce_origin") {
      expect_no_more_args(d);
      admin.enforce_origin = true;
    } else if (d.val() == "origins") {
      admin.origins = d.remaining_args();
    } else {
      throw unknown_subdirective(d, "admin", kKnown);
    }
  }
  if (!admin.disabled && !admin.listen) admin.listen = "localhost:2019";
  g.admin = std::move(admin);
}

// "192.0.2.0/24", "2001:db8::/32" or a bare address, as Go's netip.ParsePrefix takes them.
bool valid_ip_range(const std::string& text) {
  const std::size_t slash = text.find('/');
  const std::string address = text.substr(0, slash);
  unsigned char bytes[16];
  const bool v4 = ::inet_pton(AF_INET, address.c_str(), bytes) == 1;
  if (!v4 && ::inet_pton(AF_INET6, address.c_str(), bytes) != 1) return false;
  if (slash == std::string::npos) return true;
  const std::string bits = text.substr(slash + 1);
  if (bits.empty() || bits.size() > 3 || bits.find_first_not_of("0123456789") != std::string::npos) return false;
  return std::stoi(bits) <= (v4 ? 32 : 128);
}

// `proxy_protocol { timeout <d>; allow <ranges...> }` inside listener_wrappers.
ServerBlockOptions::ProxyProtocol proxy_protocol_wrapper(Dispenser& d) {
  static constexpr std::string_view kKnown[] = {"timeout", "allow"};
  expect_no_more_args(d);
  ServerBlockOptions::ProxyProtocol pp;
  for (int nesting = d.nesting(); d.next_block(nesting);) {
    if (d.val() == "timeout") {
      require_arg(d);
      pp.timeout = duration_value(d, "proxy_protocol timeout");
      if (*pp.timeout < std::chrono::nanoseconds(0)) throw d.error("proxy_protocol timeout: negative duration '" + d.val() + "'");
      expect_no_more_args(d);
    } else if (d.val() == "allow") {
      const std::vector<std::string> ranges = ip_ranges(d);
      if (ranges.empty()) throw d.arg_error();
      for (const std::string& range : ranges) {
        if (!valid_ip_range(range)) throw d.error("proxy_protocol allow: invalid IP range '" + range + "'");
      }
      pp.allow.insert(pp.allow.end(), ranges.begin(), ranges.end());
    } else {
      throw unknown_subdirective(d, "proxy_protocol", kKnown);
    }
  }
  return pp;
}

// `timeouts { read_header <d>; idle <d> }` in a servers block; Caddy's read_body and write are
// accepted with a warning.
void server_timeouts(Dispenser& d, ServerBlockOptions& server, std::vector<Warning>& warnings) {
  static constexpr std::string_view kKnown[] = {"read_body", "read_header", "write", "idle"};
  expect_no_more_args(d);
  for (int nesting = d.nesting(); d.next_block(nesting);) {
    const std::string what = d.val();
    if (what == "read_header" || what == "idle") {
      require_arg(d);
      const std::chrono::nanoseconds value = duration_value(d, "timeouts " + what);
      if (value <= std::chrono::nanoseconds(0)) throw d.error("timeouts " + what + ": must be positive, not '" + d.val() + "'");
      expect_no_more_args(d);
      (what == "idle" ? server.idle_timeout : server.read_header_timeout) = value;
    } else if (what == "read_body" || what == "write") {
      warn(warnings, d.token(), "timeouts: '" + what + "' is not supported by acmetool yet; ignored");
      d.next_segment();
    } else {
      throw unknown_subdirective(d, "timeouts", kKnown);
    }
  }
}

// `servers [<address>] { ... }`: listener_wrappers and timeouts are read; Caddy's other server
// options are accepted with a warning.
void opt_servers(Dispenser& d, GlobalOptions& g, std::vector<Warning>& warnings) {
  static constexpr std::string_view kKnown[] = {
      "name", "listener_wrappers", "timeouts", "trusted_proxies", "client_ip_headers", "metrics", "max_header_size",
      "log_credentials", "protocols", "strict_sni_host", "keepalive_interval", "trusted_proxies_strict", "enable_full_duplex"};
  static constexpr std::string_view kWrappers[] = {"proxy_protocol", "tls", "http_redirect"};
  ServerBlockOptions server;
  if (d.next_arg()) server.address = d.val();
  expect_no_more_args(d);
  for (int nesting = d.nesting(); d.next_block(nesting);) {
    const std::string sub = d.val();
    if (sub == "timeouts") {
      server_timeouts(d, server, warnings);
      continue;
    }
    if (sub != "listener_wrappers") {
      if (std::find(std::begin(kKnown), std::end(kKnown), sub) == std::end(kKnown)) {
        throw unknown_subdirective(d, "servers", kKnown);
      }
      warn(warnings, d.token(), "servers: '" + sub + "' is not supported by acmetool yet; ignored");
      d.next_segment();
      continue;
    }
    expect_no_more_args(d);
    bool tls_seen = false;
    for (int inner = d.nesting(); d.next_block(inner);) {
      const std::string wrapper = d.val();
      if (wrapper == "proxy_protocol") {
        if (tls_seen) throw d.error("listener_wrappers: proxy_protocol must come before tls");
        if (server.proxy_protocol) throw d.error("listener_wrappers: proxy_protocol given twice");
        server.proxy_protocol = proxy_protocol_wrapper(d);
      } else if (wrapper == "tls") {
        tls_seen = true;
        expect_no_more_args(d);
      } else if (wrapper == "http_redirect") {
        warn(warnings, d.token(), "listener_wrappers: 'http_redirect' is not supported by acmetool yet; ignored");
        d.next_segment();
      } else {
        throw error_at(d.token(), "listener_wrappers: unrecognized listener wrapper: " + wrapper +
                                      did_you_mean(wrapper, kWrappers));
      }
    }
  }
  g.servers.push_back(std::move(server));
}

struct Option {
  std::string_view name;
  OptionParser parse;  // nullptr: known to Caddy, ignored here with a warning
};

constexpr Option kOptions[] = {
    {"debug", opt_debug},
    {"http_port", opt_http_port},
    {"https_port", opt_https_port},
    {"default_bind", opt_default_bind},
    {"grace_period", opt_grace_period},
    {"shutdown_delay", opt_shutdown_delay},
    {"storage", opt_storage},
    {"renew_interval", opt_renew_interval},
    {"acme_ca", opt_acme_ca},
    {"acme_ca_root", opt_acme_ca_root},
    {"acme_dns", opt_acme_dns},
    {"acme_eab", opt_acme_eab},
    {"cert_issuer", opt_cert_issuer},
    {"email", opt_email},
    {"admin", opt_admin},
    {"on_demand_tls", opt_on_demand_tls},
    {"local_certs", opt_local_certs},
    {"skip_install_trust", opt_skip_install_trust},
    {"key_type", opt_key_type},
    {"auto_https", opt_auto_https},
    {"servers", opt_servers},
    // Caddy options acmetool accepts but does not act on yet.
    {"order", nullptr},
    {"log", nullptr},
    {"persist_config", nullptr},
    {"ocsp_stapling", nullptr},
    {"ocsp_interval", nullptr},
    {"storage_check", nullptr},
    {"storage_clean_interval", nullptr},
    {"default_sni", nullptr},
    {"fallback_sni", nullptr},
    {"preferred_chains", nullptr},
    {"cert_lifetime", nullptr},
    {"metrics", nullptr},
    {"pki", nullptr},
    {"events", nullptr},
    {"filesystem", nullptr},
    {"renewal_window_ratio", nullptr},
};

std::vector<std::string_view> option_names() {
  std::vector<std::string_view> names;
  for (const Option& o : kOptions) names.push_back(o.name);
  return names;
}

}  // namespace

GlobalOptions adapt_global_options(const ServerBlock& block, std::vector<Warning>& warnings) {
  static const std::vector<std::string_view> kNames = option_names();
  GlobalOptions global;
  for (const Segment& segment : block.segments) {
    Dispenser d(segment);
    d.next();
    const std::string name = d.val();
    const Option* option = std::find_if(std::begin(kOptions), std::end(kOptions),
                                        [&](const Option& o) { return o.name == name; });
    if (option == std::end(kOptions)) {
      throw d.error("unrecognized global option: " + name + did_you_mean(name, kNames));
    }
    if (!option->parse) {
      warn(warnings, d.token(), "global option '" + name + "' is not supported by acmetool yet; ignored");
      continue;
    }
    option->parse(d, global, warnings);
    if (d.next()) throw d.error(name + ": unexpected '" + d.val() + "'");
  }
  if (global.local_certs && !global.cert_issuers.empty()) {
    throw error_at(block.segments.front().front(),
                   "global options are ambiguous: local_certs is confusing when combined with cert_issuer, because "
                   "local_certs is also a specific kind of issuer");
  }
  return global;
}

}  // namespace acmetool::caddyfile::detail
