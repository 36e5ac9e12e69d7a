// Config -> JSON for `acmetool adapt` (schema: man/acmetool-adapt.1). Unset optionals, false
// booleans and empty lists are omitted so the output shows what the Caddyfile said.
#include "acmetool/caddyfile/config_json.h"

#include <cstdint>

namespace acmetool::caddyfile {
namespace {

using nlohmann::json;
using std::chrono::nanoseconds;

template <class T>
void put(json& j, const char* key, const std::optional<T>& value) {
  if (value) j[key] = *value;
}
void put(json& j, const char* key, const std::optional<nanoseconds>& value) {
  if (value) j[key] = format_duration(*value);
}
void put(json& j, const char* key, const std::vector<std::string>& value) {
  if (!value.empty()) j[key] = value;
}
void put(json& j, const char* key, bool value) {
  if (value) j[key] = true;
}
void put(json& j, const char* key, const std::string& value) {
  if (!value.empty()) j[key] = value;
}

json pairs_object(const std::vector<std::pair<std::string, std::vector<std::string>>>& pairs) {
  json out = json::object();
  for (const auto& [key, values] : pairs) out[key] = values;
  return out;
}

json dns_provider_json(const DnsProvider& p) {
  json j{{"name", p.name}};
  put(j, "args", p.args);
  if (!p.options.empty()) j["options"] = pairs_object(p.options);
  return j;
}

json issuer_json(const Issuer& issuer) {
  if (const auto* internal = std::get_if<InternalIssuer>(&issuer)) {
    json j{{"module", "internal"}, {"ca", internal->ca}};
    put(j, "lifetime", internal->lifetime);
    put(j, "sign_with_root", internal->sign_with_root);
    return j;
  }
  const AcmeIssuer& acme = std::get<AcmeIssuer>(issuer);
  json j{{"module", "acme"}};
  put(j, "directory", acme.directory);
  put(j, "test_directory", acme.test_directory);
  put(j, "email", acme.email);
  if (acme.eab) j["eab"] = {{"key_id", acme.eab->key_id}, {"mac_key", acme.eab->mac_key}};
  if (acme.dns) {
    json dns = json::object();
    if (acme.dns->provider) dns["provider"] = dns_provider_json(*acme.dns->provider);
    put(dns, "resolvers", acme.dns->resolvers);
    put(dns, "propagation_delay", acme.dns->propagation_delay);
    put(dns, "propagation_timeout", acme.dns->propagation_timeout);
    put(dns, "ttl", acme.dns->ttl);
    put(dns, "override_domain", acme.dns->override_domain);
    j["dns"] = dns;
  }
  put(j, "trusted_roots", acme.trusted_roots);
  put(j, "timeout", acme.timeout);
  put(j, "disable_http_challenge", acme.disable_http_challenge);
  put(j, "disable_tlsalpn_challenge", acme.disable_tlsalpn_challenge);
  put(j, "alt_http_port", acme.alt_http_port);
  put(j, "alt_tlsalpn_port", acme.alt_tlsalpn_port);
  return j;
}

json issuers_json(const std::vector<Issuer>& issuers) {
  json out = json::array();
  for (const Issuer& i : issuers) out.push_back(issuer_json(i));
  return out;
}

json global_json(const GlobalOptions& g) {
  json j = json::object();
  put(j, "debug", g.debug);
  put(j, "email", g.email);
  put(j, "acme_ca", g.acme_ca);
  put(j, "acme_ca_root", g.acme_ca_root);
  if (g.acme_eab) j["acme_eab"] = {{"key_id", g.acme_eab->key_id}, {"mac_key", g.acme_eab->mac_key}};
  if (g.acme_dns) j["acme_dns"] = dns_provider_json(*g.acme_dns);
  put(j, "local_certs", g.local_certs);
  put(j, "skip_install_trust", g.skip_install_trust);
  std::vector<std::string> auto_https;
  if (g.auto_https.off) auto_https.push_back("off");
  if (g.auto_https.disable_redirects) auto_https.push_back("disable_redirects");
  if (g.auto_https.disable_certs) auto_https.push_back("disable_certs");
  if (g.auto_https.ignore_loaded_certs) auto_https.push_back("ignore_loaded_certs");
  if (g.auto_https.prefer_wildcard) auto_https.push_back("prefer_wildcard");
  put(j, "auto_https", auto_https);
  put(j, "http_port", g.http_port);
  put(j, "https_port", g.https_port);
  put(j, "default_bind", g.default_bind);
  if (g.storage_root) j["storage"] = {{"module", "file_system"}, {"root", *g.storage_root}};
  if (g.on_demand_tls) {
    json o = json::object();
    put(o, "ask", g.on_demand_tls->ask);
    put(o, "permission", g.on_demand_tls->permission);
    put(o, "permission_args", g.on_demand_tls->permission_args);
    put(o, "interval", g.on_demand_tls->interval);
    put(o, "burst", g.on_demand_tls->burst);
    put(o, "cooldown", g.on_demand_tls->cooldown);
    put(o, "ask_include_ip", g.on_demand_tls->ask_include_ip);
    j["on_demand_tls"] = o;
  }
  if (!g.cert_issuers.empty()) j["cert_issuers"] = issuers_json(g.cert_issuers);
  put(j, "key_type", g.key_type);
  put(j, "renew_interval", g.renew_interval);
  put(j, "grace_period", g.grace_period);
  put(j, "shutdown_delay", g.shutdown_delay);
  json admin = json::object();
  put(admin, "disabled", g.admin.disabled);
  put(admin, "listen", g.admin.listen);
  put(admin, "enforce_origin", g.admin.enforce_origin);
  put(admin, "origins", g.admin.origins);
  if (!admin.empty()) j["admin"] = admin;
  for (const ServerBlockOptions& server : g.servers) {
    json o = json::object();
    put(o, "address", server.address);
    if (server.proxy_protocol) {
      json pp = json::object();
      put(pp, "timeout", server.proxy_protocol->timeout);
      put(pp, "allow", server.proxy_protocol->allow);
      o["proxy_protocol"] = pp;
    }
    j["servers"].push_back(o);
  }
  return j;
}

json matcher_json(const MatcherSet& m) {
  json j = json::object();
  put(j, "path", m.path);
  put(j, "host", m.host);
  put(j, "method", m.method);
  if (!m.header.empty()) j["header"] = pairs_object(m.header);
  if (!m.query.empty()) j["query"] = pairs_object(m.query);
  put(j, "protocol", m.protocol);
  put(j, "remote_ip", m.remote_ip);
  put(j, "client_ip", m.client_ip);
  put(j, "expression", m.expression);
  put(j, "unsupported", m.unsupported);
  if (!m.not_.empty()) {
    json nots = json::array();
    for (const MatcherSet& n : m.not_) nots.push_back(matcher_json(n));
    j["not"] = nots;
  }
  return j;
}

json header_ops_json(const std::vector<HeaderOp>& ops) {
  static constexpr const char* kKinds[] = {"set", "add", "delete", "default", "replace"};
  json out = json::array();
  for (const HeaderOp& op : ops) {
    json j{{"op", kKinds[static_cast<int>(op.kind)]}, {"field", op.field}};
    if (op.kind != HeaderOp::Kind::Delete) j["value"] = op.value;
    if (op.kind == HeaderOp::Kind::Replace) {
      j["replacement"] = op.replacement;
      j["regexp"] = op.regexp;
    }
    out.push_back(j);
  }
  return out;
}

json routes_json(const std::vector<Route>& routes);

json response_matcher_json(const ResponseMatcher& match) {
  json m = json::object();
  if (!match.status.empty()) m["status"] = match.status;
  if (!match.header.empty()) m["header"] = pairs_object(match.header);
  return m;
}

json response_handlers_json(const std::vector<ResponseHandler>& handlers) {
  json out = json::array();
  for (const ResponseHandler& h : handlers) {
    json j = json::object();
    put(j, "matcher", h.matcher_name);
    if (h.match) j["match"] = response_matcher_json(*h.match);
    put(j, "status", h.status);
    if (!h.status) j["routes"] = routes_json(h.routes);
    out.push_back(std::move(j));
  }
  return out;
}

json transport_json(const HttpTransport& t) {
  json j{{"protocol", "http"}};
  put(j, "tls", t.tls);
  put(j, "tls_insecure_skip_verify", t.tls_insecure_skip_verify);
  put(j, "tls_server_name", t.tls_server_name);
  put(j, "tls_trusted_ca_certs", t.tls_trusted_ca_certs);
  put(j, "tls_client_auth", t.tls_client_auth);
  put(j, "tls_timeout", t.tls_timeout);
  put(j, "versions", t.versions);
  put(j, "dial_timeout", t.dial_timeout);
  put(j, "dial_fallback_delay", t.dial_fallback_delay);
  put(j, "response_header_timeout", t.response_header_timeout);
  put(j, "expect_continue_timeout", t.expect_continue_timeout);
  put(j, "read_timeout", t.read_timeout);
  put(j, "write_timeout", t.write_timeout);
  put(j, "keepalive_off", t.keepalive_off);
  put(j, "keepalive", t.keepalive);
  put(j, "keepalive_interval", t.keepalive_interval);
  put(j, "keepalive_idle_conns", t.keepalive_idle_conns);
  put(j, "keepalive_idle_conns_per_host", t.keepalive_idle_conns_per_host);
  put(j, "max_conns_per_host", t.max_conns_per_host);
  put(j, "read_buffer", t.read_buffer);
  put(j, "write_buffer", t.write_buffer);
  put(j, "max_response_header", t.max_response_header);
  put(j, "compression_off", t.compression_off);
  put(j, "resolvers", t.resolvers);
  return j;
}

json proxy_json(const ReverseProxyHandler& rp) {
  json j{{"handler", "reverse_proxy"}};
  json ups = json::array();
  for (const Upstream& u : rp.upstreams) ups.push_back(u.dial);
  j["upstreams"] = ups;
  if (rp.dynamic) {
    json d{{"source", rp.dynamic->source}, {"name", rp.dynamic->name}};
    put(d, "port", rp.dynamic->port);
    put(d, "refresh", rp.dynamic->refresh);
    put(d, "resolvers", rp.dynamic->resolvers);
    j["dynamic"] = d;
  }
  json lb{{"policy", rp.load_balancing.policy}};
  put(lb, "policy_args", rp.load_balancing.policy_args);
  put(lb, "retries", rp.load_balancing.retries);
  put(lb, "try_duration", rp.load_balancing.try_duration);
  put(lb, "try_interval", rp.load_balancing.try_interval);
  j["load_balancing"] = lb;
  if (rp.active_health) {
    const ActiveHealthCheck& a = *rp.active_health;
    json h = json::object();
    put(h, "uri", a.uri);
    put(h, "port", a.port);
    put(h, "interval", a.interval);
    put(h, "timeout", a.timeout);
    put(h, "expect_status", a.expect_status);
    put(h, "expect_body", a.expect_body);
    put(h, "method", a.method);
    if (!a.headers.empty()) {
      json headers = json::object();
      for (const auto& [k, v] : a.headers) headers[k] = v;
      h["headers"] = headers;
    }
    put(h, "passes", a.passes);
    put(h, "fails", a.fails);
    j["health_checks"]["active"] = h;
  }
  if (rp.passive_health) {
    const PassiveHealthCheck& p = *rp.passive_health;
    json h = json::object();
    put(h, "fail_duration", p.fail_duration);
    put(h, "max_fails", p.max_fails);
    put(h, "unhealthy_request_count", p.unhealthy_request_count);
    if (!p.unhealthy_status.empty()) h["unhealthy_status"] = p.unhealthy_status;
    put(h, "unhealthy_latency", p.unhealthy_latency);
    j["health_checks"]["passive"] = h;
  }
  put(j, "flush_interval", rp.flush_interval);
  put(j, "trusted_proxies", rp.trusted_proxies);
  if (!rp.header_up.empty()) j["header_up"] = header_ops_json(rp.header_up);
  if (!rp.header_down.empty()) j["header_down"] = header_ops_json(rp.header_down);
  put(j, "method", rp.method);
  put(j, "request_buffers", rp.request_buffers);
  put(j, "response_buffers", rp.response_buffers);
  put(j, "stream_timeout", rp.stream_timeout);
  put(j, "stream_close_delay", rp.stream_close_delay);
  j["transport"] = transport_json(rp.transport);
  if (!rp.handle_response.empty()) j["handle_response"] = response_handlers_json(rp.handle_response);
  return j;
}

struct HandlerJson {
  json operator()(const RootHandler& h) const { return {{"handler", "root"}, {"path", h.path}}; }
  json operator()(const FileServerHandler& h) const {
    json j{{"handler", "file_server"}, {"index", h.index}};
    put(j, "root", h.root);
    put(j, "hide", h.hide);
    put(j, "browse", h.browse);
    put(j, "browse_template", h.browse_template);
    put(j, "precompressed", h.precompressed);
    put(j, "status", h.status);
    put(j, "pass_thru", h.pass_thru);
    put(j, "disable_canonical_uris", h.disable_canonical_uris);
    return j;
  }
  json operator()(const Boxed<ReverseProxyHandler>& h) const { return proxy_json(*h); }
  json operator()(const RedirHandler& h) const { return {{"handler", "redir"}, {"to", h.to}, {"code", h.code}}; }
  json operator()(const RespondHandler& h) const {
    json j{{"handler", "respond"}, {"body", h.body}};
    put(j, "status", h.status);
    put(j, "close", h.close);
    return j;
  }
  json operator()(const HeaderHandler& h) const {
    json j{{"handler", "header"}, {"ops", header_ops_json(h.ops)}};
    put(j, "deferred", h.deferred);
    return j;
  }
  json operator()(const EncodeHandler& h) const {
    json j{{"handler", "encode"}, {"formats", h.formats}};
    if (!h.levels.empty()) {
      json levels = json::object();
      for (const auto& [format, level] : h.levels) levels[format] = level;
      j["levels"] = levels;
    }
    put(j, "minimum_length", h.minimum_length);
    if (h.match) j["match"] = response_matcher_json(*h.match);
    return j;
  }
  json operator()(const UriHandler& h) const {
    static constexpr const char* kOps[] = {"strip_prefix", "strip_suffix", "replace", "path_regexp"};
    json j{{"handler", "uri"}, {"op", kOps[static_cast<int>(h.op)]}, {"target", h.target}};
    if (h.op == UriHandler::Op::Replace || h.op == UriHandler::Op::PathRegexp) j["replacement"] = h.replacement;
    if (h.limit != 0) j["limit"] = h.limit;
    return j;
  }
  json operator()(const BasicAuthHandler& h) const {
    json accounts = json::array();
    for (const auto& [user, hash] : h.accounts) accounts.push_back({{"username", user}, {"password_hash", hash}});
    return {{"handler", "basic_auth"}, {"hash_algorithm", h.hash_algorithm}, {"realm", h.realm}, {"accounts", accounts}};
  }
  json operator()(const InvokeHandler& h) const { return {{"handler", "invoke"}, {"name", h.name}}; }
  json operator()(const RewriteHandler& h) const { return {{"handler", "rewrite"}, {"uri", h.uri}}; }
  json operator()(const TryFilesHandler& h) const {
    return {{"handler", "try_files"}, {"files", h.files}, {"policy", h.policy}};
  }
  json operator()(const CopyResponseHandler& h) const {
    json j{{"handler", "copy_response"}};
    put(j, "status_code", h.status);
    return j;
  }
  json operator()(const CopyResponseHeadersHandler& h) const {
    json j{{"handler", "copy_response_headers"}};
    put(j, "include", h.include);
    put(j, "exclude", h.exclude);
    return j;
  }
  json operator()(const UnsupportedHandler& h) const { return {{"handler", "unsupported"}, {"tokens", h.tokens}}; }
  json operator()(const Subroute& h) const {
    static constexpr const char* kKinds[] = {"handle", "handle_path", "route"};
    json j{{"handler", kKinds[static_cast<int>(h.kind)]}};
    put(j, "strip_prefix", h.strip_prefix);
    j["routes"] = routes_json(h.routes);
    return j;
  }
};

json routes_json(const std::vector<Route>& routes) {
  json out = json::array();
  for (const Route& r : routes) {
    json j{{"directive", r.directive}};
    put(j, "matcher", r.matcher_token);
    if (r.matcher) j["match"] = matcher_json(*r.matcher);
    put(j, "group", r.group);
    j["handler"] = std::visit(HandlerJson{}, r.handler);
    j["file"] = r.file;
    j["line"] = r.line;
    out.push_back(std::move(j));
  }
  return out;
}

json tls_json(const TlsPolicy& t) {
  json j = json::object();
  put(j, "internal", t.internal);
  put(j, "cert_file", t.cert_file);
  put(j, "key_file", t.key_file);
  put(j, "load", t.load);
  put(j, "on_demand", t.on_demand);
  put(j, "reuse_private_keys", t.reuse_private_keys);
  put(j, "force_automate", t.force_automate);
  if (!t.issuers.empty()) j["issuers"] = issuers_json(t.issuers);
  put(j, "key_type", t.key_type);
  put(j, "protocol_min", t.protocol_min);
  put(j, "protocol_max", t.protocol_max);
  put(j, "ciphers", t.ciphers);
  put(j, "curves", t.curves);
  put(j, "alpn", t.alpn);
  return j;
}

json log_json(const LogConfig& l) {
  json j{{"output", l.output}, {"format", l.format}};
  put(j, "name", l.name);
  put(j, "file_path", l.file_path);
  if (!l.file_options.empty()) j["file_options"] = pairs_object(l.file_options);
  put(j, "level", l.level);
  put(j, "hostnames", l.hostnames);
  put(j, "no_hostname", l.no_hostname);
  return j;
}

json address_json(const SiteAddress& a) {
  static constexpr const char* kSources[] = {"none", "acme", "internal", "manual"};
  json j{{"address", a.address.original}, {"scheme", a.scheme},  {"host", a.address.host},
         {"port", a.port},                 {"listeners", a.listeners}, {"cert_source", kSources[static_cast<int>(a.cert_source)]}};
  put(j, "path", a.address.path);
  put(j, "host_matcher", a.host_matcher);
  put(j, "automatic_https", a.automatic_https);
  put(j, "redirect_http", a.redirect_http);
  put(j, "on_demand", a.on_demand);
  j["file"] = a.file;
  j["line"] = a.line;
  return j;
}

json site_json(const Site& s) {
  json addresses = json::array();
  for (const SiteAddress& a : s.addresses) addresses.push_back(address_json(a));
  json j{{"addresses", addresses}};
  if (s.tls) j["tls"] = tls_json(*s.tls);
  put(j, "bind", s.bind);
  put(j, "bind_protocols", s.bind_protocols);
  if (!s.logs.empty()) {
    json logs = json::array();
    for (const LogConfig& l : s.logs) logs.push_back(log_json(l));
    j["logs"] = logs;
  }
  if (!s.named_matchers.empty()) {
    json matchers = json::object();
    for (const auto& [name, set] : s.named_matchers) matchers[name] = matcher_json(*set);
    j["matchers"] = matchers;
  }
  j["routes"] = routes_json(s.routes);
  if (!s.error_routes.empty()) {
    json errors = json::array();
    for (const ErrorRoutes& e : s.error_routes) {
      json entry{{"routes", routes_json(e.routes)}, {"file", e.file}, {"line", e.line}};
      put(entry, "status", e.status);
      errors.push_back(std::move(entry));
    }
    j["error_routes"] = errors;
  }
  j["file"] = s.file;
  j["line"] = s.line;
  return j;
}

// Go's fmtFrac: ".5" for 5/10, nothing for a zero fraction, trailing zeros dropped.
std::string fraction(std::uint64_t& value, int precision) {
  std::string digits;
  bool printed = false;
  for (int i = 0; i < precision; ++i) {
    const auto digit = static_cast<char>('0' + value % 10);
    printed = printed || digit != '0';
    if (printed) digits.insert(digits.begin(), digit);
    value /= 10;
  }
  return printed ? "." + digits : "";
}

}  // namespace

std::string format_duration(nanoseconds duration) {
  const std::int64_t count = duration.count();
  std::uint64_t u = count < 0 ? -static_cast<std::uint64_t>(count) : static_cast<std::uint64_t>(count);
  const std::string sign = count < 0 ? "-" : "";
  if (u == 0) return "0s";
  if (u < 1'000'000'000) {
    const int precision = u < 1000 ? 0 : u < 1'000'000 ? 3 : 6;
    const char* unit = u < 1000 ? "ns" : u < 1'000'000 ? "\xc2\xb5s" : "ms";
    const std::string frac = fraction(u, precision);
    return sign + std::to_string(u) + frac + unit;
  }
  const std::string frac = fraction(u, 9);
  std::string out = std::to_string(u % 60) + frac + "s";
  u /= 60;
  if (u > 0) {
    out = std::to_string(u % 60) + "m" + out;
    u /= 60;
    if (u > 0) out = std::to_string(u) + "h" + out;
  }
  return sign + out;
}

nlohmann::json to_json(const Config& config) {
  json sites = json::array();
  for (const Site& s : config.sites) sites.push_back(site_json(s));
  json named = json::object();
  for (const auto& [name, routes] : config.named_routes) named[name] = routes_json(routes);
  json j{{"global", global_json(config.global)}, {"sites", sites}};
  if (!named.empty()) j["named_routes"] = named;
  return j;
}

}  // namespace acmetool::caddyfile
