// `reverse_proxy` and its `transport http` block (upstream
// modules/caddyhttp/reverseproxy/caddyfile.go).
#include <algorithm>
#include <charconv>
#include <map>

#include "adapt_internal.h"

namespace acmetool::caddyfile::detail {
namespace {

constexpr std::string_view kProxyKnown[] = {
    "to",           "dynamic",        "lb_policy",       "lb_retries",       "lb_try_duration", "lb_try_interval",
    "health_uri",   "health_path",    "health_port",     "health_interval",  "health_passes",   "health_fails",
    "health_timeout", "health_status", "health_body",    "health_method",    "health_headers",  "fail_duration",
    "max_fails",    "unhealthy_request_count", "max_conns", "unhealthy_status", "unhealthy_latency",
    "flush_interval", "request_buffers", "response_buffers", "stream_timeout", "stream_close_delay",
    "trusted_proxies", "header_up",   "header_down",     "method",           "transport", "handle_response",
    "replace_status"};

constexpr std::string_view kTransportKnown[] = {
    "read_buffer",  "write_buffer",   "max_response_header", "dial_timeout",   "dial_fallback_delay",
    "response_header_timeout",        "expect_continue_timeout", "read_timeout", "write_timeout",
    "resolvers",    "tls",            "tls_client_auth",  "tls_insecure_skip_verify", "tls_timeout",
    "tls_trusted_ca_certs",           "tls_server_name",  "keepalive",        "keepalive_interval",
    "keepalive_idle_conns",           "keepalive_idle_conns_per_host", "versions", "compression",
    "max_conns_per_host"};

constexpr std::string_view kPolicies[] = {"random",       "round_robin",    "least_conn",          "first",
                                          "ip_hash",      "client_ip_hash", "uri_hash",            "header",
                                          "cookie",       "query",          "random_choose",       "weighted_round_robin"};

std::chrono::nanoseconds one_duration(Dispenser& d, const std::string& what) {
  require_arg(d);
  const auto value = duration_value(d, what);
  expect_no_more_args(d);
  return value;
}

int one_int(Dispenser& d, const std::string& what, long long min, long long max) {
  require_arg(d);
  const int value = int_value(d, what, min, max);
  expect_no_more_args(d);
  return value;
}

// "4096", "4KB", "1MiB", "unlimited" (-1), as go-humanize's ParseBytes reads common sizes.
int one_size(Dispenser& d, const std::string& what) {
  const std::string text = require_arg(d);
  expect_no_more_args(d);
  if (text == "unlimited") return -1;
  long long value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  std::string unit(end, text.data() + text.size());
  for (char& c : unit) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  static constexpr std::pair<std::string_view, long long> kUnits[] = {
      {"", 1},          {"b", 1},          {"k", 1000},       {"kb", 1000},   {"kib", 1024}, {"m", 1000000},
      {"mb", 1000000},  {"mib", 1 << 20},  {"g", 1000000000}, {"gb", 1000000000}, {"gib", 1 << 30}};
  const auto unit_it = std::find_if(std::begin(kUnits), std::end(kUnits), [&](const auto& u) { return u.first == unit; });
  if (ec != std::errc() || end == text.data() || unit_it == std::end(kUnits) || value * unit_it->second > (1LL << 31) - 1) {
    throw d.error(what + ": invalid size '" + text + "'");
  }
  return static_cast<int>(value * unit_it->second);
}

// One upstream address as upstream parseUpstreamDialAddress normalises it. `scheme` is the
// scheme shared by all upstreams so far (they must agree).
std::string dial_address(const Dispenser& d, const std::string& address, std::string& scheme) {
  std::string found_scheme;
  std::string dial;
  if (const std::size_t sep = address.find("://"); sep != std::string::npos) {
    found_scheme = address.substr(0, sep);
    if (found_scheme != "http" && found_scheme != "https" && found_scheme != "h2c") {
      throw d.error("reverse_proxy: unsupported URL scheme " + found_scheme + ":// in upstream " + address);
    }
    std::string rest = address.substr(sep + 3);
    if (rest.find_first_of("/?#") != std::string::npos) {
      throw d.error("reverse_proxy: for now, URLs for proxy upstreams only support scheme, host, and port components");
    }
    Address parsed;
    try {
      parsed = parse_address(rest);
    } catch (const AddressError& e) {
      throw d.error("reverse_proxy: upstream " + address + ": " + e.what());
    }
    if (found_scheme == "http" && parsed.port == "443") {
      throw d.error("reverse_proxy: upstream address has conflicting scheme (http://) and port (:443, the HTTPS port)");
    }
    if (found_scheme == "https" && parsed.port == "80") {
      throw d.error("reverse_proxy: upstream address has conflicting scheme (https://) and port (:80, the HTTP port)");
    }
    if (parsed.port.empty()) parsed.port = found_scheme == "https" ? "443" : "80";
    dial = join_host_port(parsed.host, parsed.port);
  } else if (address.starts_with("unix/") || address.find('/') != std::string::npos) {
    dial = address;  // "unix//run/app.sock", "tcp4/127.0.0.1:8080"
  } else {
    Address parsed;
    try {
      parsed = parse_address(address);
    } catch (const AddressError& e) {
      throw d.error("reverse_proxy: upstream " + address + ": " + e.what());
    }
    if (parsed.port.empty() && parsed.host.find('{') == std::string::npos) parsed.port = "80";
    dial = parsed.port.empty() ? parsed.host : join_host_port(parsed.host, parsed.port);
    if (parsed.port == "443") found_scheme = "https";
  }
  if (found_scheme.empty()) found_scheme = "http";
  if (!scheme.empty() && scheme != found_scheme) {
    throw d.error("reverse_proxy: for now, all proxy upstreams must use the same scheme (transport protocol); expecting '" +
                  scheme + "://' but got '" + found_scheme + "://'");
  }
  scheme = found_scheme;
  return dial;
}

DynamicUpstreams parse_dynamic(Dispenser& d) {
  static constexpr std::string_view kKnown[] = {"name", "port", "service", "proto", "refresh", "resolvers"};
  DynamicUpstreams dynamic;
  dynamic.source = require_arg(d);
  if (dynamic.source != "a" && dynamic.source != "srv") {
    throw d.error("reverse_proxy: dynamic upstream source '" + dynamic.source + "' is not supported (expected a or srv)");
  }
  if (d.next_arg()) dynamic.name = d.val();
  if (dynamic.source == "a" && d.next_arg()) dynamic.port = d.val();
  expect_no_more_args(d);
  std::string service, proto;
  for (int nesting = d.nesting(); d.next_block(nesting);) {
    const std::string sub = d.val();
    if (sub == "name" || sub == "port" || sub == "service" || sub == "proto") {
      std::string value = require_arg(d);
      expect_no_more_args(d);
      (sub == "name" ? dynamic.name : sub == "port" ? dynamic.port : sub == "service" ? service : proto) = std::move(value);
    } else if (sub == "refresh") {
      dynamic.refresh = one_duration(d, "dynamic refresh");
    } else if (sub == "resolvers") {
      dynamic.resolvers = d.remaining_args();
    } else {
      throw unknown_subdirective(d, "reverse_proxy dynamic", kKnown);
    }
  }
  if (!service.empty() || !proto.empty()) dynamic.name = "_" + service + "._" + proto + "." + dynamic.name;
  if (dynamic.name.empty()) throw d.error("reverse_proxy: dynamic " + dynamic.source + " requires a name");
  if (dynamic.source == "a" && dynamic.port.empty()) throw d.error("reverse_proxy: dynamic a requires a port");
  return dynamic;
}

void parse_transport(Dispenser& d, HttpTransport& t) {
  const std::string name = require_arg(d);
  if (name != "http") throw d.error("reverse_proxy: transport '" + name + "' is not supported (acmetool has http)");
  expect_no_more_args(d);
  for (int nesting = d.nesting(); d.next_block(nesting);) {
    const std::string sub = d.val();
    const std::string what = "transport http " + sub;
    if (sub == "read_buffer" || sub == "write_buffer" || sub == "max_response_header") {
      (sub == "read_buffer" ? t.read_buffer : sub == "write_buffer" ? t.write_buffer : t.max_response_header) =
          one_size(d, what);
    } else if (sub == "dial_timeout") {
      t.dial_timeout = one_duration(d, what);
    } else if (sub == "dial_fallback_delay") {
      t.dial_fallback_delay = one_duration(d, what);
    } else if (sub == "response_header_timeout") {
      t.response_header_timeout = one_duration(d, what);
    } else if (sub == "expect_continue_timeout") {
      t.expect_continue_timeout = one_duration(d, what);
    } else if (sub == "read_timeout") {
      t.read_timeout = one_duration(d, what);
    } else if (sub == "write_timeout") {
      t.write_timeout = one_duration(d, what);
    } else if (sub == "tls_timeout") {
      t.tls_timeout = one_duration(d, what);
      t.tls = true;
    } else if (sub == "keepalive_interval") {
      t.keepalive_interval = one_duration(d, what);
    } else if (sub == "resolvers") {
      t.resolvers = d.remaining_args();
      if (t.resolvers.empty()) throw d.arg_error();
    } else if (sub == "tls" || sub == "tls_insecure_skip_verify") {
      expect_no_more_args(d);
      t.tls = true;
      if (sub == "tls_insecure_skip_verify") t.tls_insecure_skip_verify = true;
    } else if (sub == "tls_client_auth") {
      t.tls_client_auth = d.remaining_args();
      if (t.tls_client_auth.size() != 2) throw d.error("reverse_proxy: tls_client_auth needs a certificate and a key file");
      t.tls = true;
    } else if (sub == "tls_trusted_ca_certs") {
      t.tls_trusted_ca_certs = d.remaining_args();
      if (t.tls_trusted_ca_certs.empty()) throw d.arg_error();
      t.tls = true;
    } else if (sub == "tls_server_name") {
      t.tls_server_name = require_arg(d);
      expect_no_more_args(d);
      t.tls = true;
    } else if (sub == "keepalive") {
      require_arg(d);
      if (d.val() == "off") {
        t.keepalive_off = true;
      } else {
        t.keepalive = duration_value(d, what);
      }
      expect_no_more_args(d);
    } else if (sub == "keepalive_idle_conns" || sub == "keepalive_idle_conns_per_host" || sub == "max_conns_per_host") {
      (sub == "keepalive_idle_conns" ? t.keepalive_idle_conns
       : sub == "max_conns_per_host" ? t.max_conns_per_host
                                     : t.keepalive_idle_conns_per_host) = one_int(d, what, 0, 1 << 30);
    } else if (sub == "versions") {
      t.versions = d.remaining_args();
      if (t.versions.empty()) throw d.arg_error();
      for (const std::string& v : t.versions) {
        if (v != "1.1" && v != "2" && v != "h2c" && v != "3") {
          throw d.error("reverse_proxy: unsupported HTTP version '" + v + "' (expected 1.1, 2, h2c or 3)");
        }
      }
    } else if (sub == "compression") {
      if (require_arg(d) != "off") throw d.error("reverse_proxy: compression accepts only 'off'");
      expect_no_more_args(d);
      t.compression_off = true;
    } else {
      throw unknown_subdirective(d, "reverse_proxy transport http", kTransportKnown);
    }
  }
}

ActiveHealthCheck& active(ReverseProxyHandler& rp) { return rp.active_health ? *rp.active_health : rp.active_health.emplace(); }
PassiveHealthCheck& passive(ReverseProxyHandler& rp) {
  return rp.passive_health ? *rp.passive_health : rp.passive_health.emplace();
}

// "2xx" -> 2, "503" -> 503.
int status_class(const Dispenser& d, const std::string& what) {
  const std::string& v = d.val();
  if (v.size() == 3 && v.ends_with("xx") && v[0] >= '1' && v[0] <= '5') return v[0] - '0';
  return int_value(d, what, 100, 599);
}

// The health_* and passive health subdirectives; false when `sub` is none of them.
bool health_subdirective(Dispenser& d, const std::string& sub, ReverseProxyHandler& rp) {
  const std::string what = "reverse_proxy " + sub;
  if (sub == "health_uri" || sub == "health_path" || sub == "health_body" || sub == "health_method") {
    std::string value = require_arg(d);
    expect_no_more_args(d);
    ActiveHealthCheck& a = active(rp);
    if (sub == "health_body") {
      a.expect_body = std::move(value);
    } else if (sub == "health_method") {
      a.method = std::move(value);
    } else {
      a.uri = std::move(value);
    }
  } else if (sub == "health_port") {
    active(rp).port = one_int(d, what, 1, 65535);
  } else if (sub == "health_interval") {
    active(rp).interval = one_duration(d, what);
  } else if (sub == "health_timeout") {
    active(rp).timeout = one_duration(d, what);
  } else if (sub == "health_passes" || sub == "health_fails") {
    (sub == "health_passes" ? active(rp).passes : active(rp).fails) = one_int(d, what, 1, 1 << 30);
  } else if (sub == "health_status") {
    require_arg(d);
    active(rp).expect_status = status_class(d, what);
    expect_no_more_args(d);
  } else if (sub == "health_headers") {
    expect_no_more_args(d);
    for (int nesting = d.nesting(); d.next_block(nesting);) {
      std::string field = d.val();
      active(rp).headers.emplace_back(std::move(field), require_arg(d));
      expect_no_more_args(d);
    }
  } else if (sub == "fail_duration") {
    passive(rp).fail_duration = one_duration(d, what);
  } else if (sub == "unhealthy_latency") {
    passive(rp).unhealthy_latency = one_duration(d, what);
  } else if (sub == "max_fails") {
    passive(rp).max_fails = one_int(d, what, 1, 1 << 30);
  } else if (sub == "unhealthy_request_count" || sub == "max_conns") {
    passive(rp).unhealthy_request_count = one_int(d, what, 1, 1 << 30);
  } else if (sub == "unhealthy_status") {
    if (!d.next_arg()) throw d.arg_error();
    do {
      passive(rp).unhealthy_status.push_back(status_class(d, what));
    } while (d.next_arg());
  } else {
    return false;
  }
  return true;
}

void parse_lb_policy(Dispenser& d, LoadBalancing& lb) {
  lb.policy = require_arg(d);
  if (std::find(std::begin(kPolicies), std::end(kPolicies), lb.policy) == std::end(kPolicies)) {
    throw d.error("reverse_proxy: unknown load balancing policy '" + lb.policy + "'" + did_you_mean(lb.policy, kPolicies));
  }
  lb.policy_args = d.remaining_args();
  const std::size_t n = lb.policy_args.size();
  const bool ok = (lb.policy == "header" || lb.policy == "query" || lb.policy == "random_choose") ? n == 1
                  : lb.policy == "cookie"                                                        ? n <= 2
                  : lb.policy == "weighted_round_robin"                                          ? n >= 1
                                                                                                 : n == 0;
  if (!ok) throw d.arg_error();
  const Token at = d.token();
  if (d.next_block(d.nesting())) throw UnsupportedError(at, "reverse_proxy: lb_policy option blocks");
}

}  // namespace

ResponseMatcher parse_response_matcher(Dispenser& d, std::string_view context) {
  static constexpr std::string_view kKnown[] = {"status", "header"};
  ResponseMatcher m;
  for (int nesting = d.nesting(); d.next_arg() || d.next_block(nesting);) {
    if (d.val() == "status") {
      if (!d.next_arg()) throw d.arg_error();
      do {
        m.status.push_back(status_class(d, std::string(context) + ": response matcher status"));
      } while (d.next_arg());
    } else if (d.val() == "header") {
      std::string field = require_arg(d);
      auto it = std::find_if(m.header.begin(), m.header.end(), [&](const auto& h) { return h.first == field; });
      if (it == m.header.end()) it = m.header.insert(m.header.end(), {field, {}});
      if (d.next_arg()) it->second.push_back(d.val());
      expect_no_more_args(d);
    } else {
      throw d.error(std::string(context) + ": unrecognized response matcher " + d.val() +
                    did_you_mean(d.val(), kKnown));
    }
  }
  return m;
}

ReverseProxyHandler parse_reverse_proxy(Dispenser& d, const MatcherDefs& defs, AdaptContext& ctx) {
  d.next();
  ReverseProxyHandler rp;
  std::string scheme;
  for (const std::string& up : d.remaining_args()) rp.upstreams.push_back({dial_address(d, up, scheme)});
  std::map<std::string, ResponseMatcher> response_matchers;
  std::vector<Token> response_matcher_uses;
  for (int nesting = d.nesting(); d.next_block(nesting);) {
    const std::string sub = d.val();
    const std::string what = "reverse_proxy " + sub;
    if (health_subdirective(d, sub, rp)) continue;
    if (sub.starts_with('@')) {
      if (response_matchers.contains(sub)) throw d.error("matcher is defined more than once: " + sub);
      response_matchers[sub] = parse_response_matcher(d, "reverse_proxy");
    } else if (sub == "handle_response" || sub == "replace_status") {
      ResponseHandler handler;
      if (d.next_arg()) {
        if (d.val().starts_with('@')) {
          handler.matcher_name = d.val();
          response_matcher_uses.push_back(d.token());
        } else {
          d.prev();
        }
      }
      if (sub == "replace_status") {
        handler.status = require_arg(d);
        if (handler.status->size() != 3 || !std::all_of(handler.status->begin(), handler.status->end(), [](char c) { return c >= '0' && c <= '9'; })) {
          if (!handler.status->starts_with('{')) throw d.error("reverse_proxy: invalid status code '" + *handler.status + "'");
        }
        expect_no_more_args(d);
      } else {
        handler.routes = parse_nested_routes(d, defs, ctx, true);
      }
      rp.handle_response.push_back(std::move(handler));
    } else if (sub == "to") {
      const std::vector<std::string> args = d.remaining_args();
      if (args.empty()) throw d.arg_error();
      for (const std::string& up : args) rp.upstreams.push_back({dial_address(d, up, scheme)});
    } else if (sub == "dynamic") {
      rp.dynamic = parse_dynamic(d);
    } else if (sub == "lb_policy") {
      parse_lb_policy(d, rp.load_balancing);
    } else if (sub == "lb_retries") {
      rp.load_balancing.retries = one_int(d, what, 0, 1 << 30);
    } else if (sub == "lb_try_duration") {
      rp.load_balancing.try_duration = one_duration(d, what);
    } else if (sub == "lb_try_interval") {
      rp.load_balancing.try_interval = one_duration(d, what);
    } else if (sub == "flush_interval") {
      require_arg(d);
      rp.flush_interval = d.val() == "-1" ? std::chrono::nanoseconds(-1) : duration_value(d, what);
      expect_no_more_args(d);
    } else if (sub == "request_buffers" || sub == "response_buffers") {
      (sub == "request_buffers" ? rp.request_buffers : rp.response_buffers) = one_size(d, what);
    } else if (sub == "stream_timeout") {
      rp.stream_timeout = one_duration(d, what);
    } else if (sub == "stream_close_delay") {
      rp.stream_close_delay = one_duration(d, what);
    } else if (sub == "trusted_proxies") {
      rp.trusted_proxies = ip_ranges(d);
      if (rp.trusted_proxies.empty()) throw d.arg_error();
    } else if (sub == "header_up" || sub == "header_down") {
      const std::vector<std::string> args = d.remaining_args();
      if (args.empty() || args.size() > 3) throw d.arg_error();
      HeaderOp op = header_op(d, args[0], std::vector<std::string>(args.begin() + 1, args.end()), sub == "header_down");
      (sub == "header_up" ? rp.header_up : rp.header_down).push_back(std::move(op));
    } else if (sub == "method") {
      rp.method = require_arg(d);
      expect_no_more_args(d);
    } else if (sub == "transport") {
      parse_transport(d, rp.transport);
    } else {
      throw unknown_subdirective(d, "reverse_proxy", kProxyKnown);
    }
  }
  for (std::size_t i = 0, used = 0; i < rp.handle_response.size(); ++i) {
    ResponseHandler& handler = rp.handle_response[i];
    if (handler.matcher_name.empty()) continue;
    const auto it = response_matchers.find(handler.matcher_name);
    if (it == response_matchers.end()) {
      throw error_at(response_matcher_uses[used], "reverse_proxy: unrecognized response matcher name: " + handler.matcher_name);
    }
    handler.match = it->second;
    ++used;
  }
  if (rp.upstreams.empty() && !rp.dynamic) {
    throw error_at(d.tokens().front(), "reverse_proxy: no upstreams: give at least one address or 'dynamic'");
  }
  if (scheme == "https") rp.transport.tls = true;
  if (scheme == "h2c" && rp.transport.versions.empty()) rp.transport.versions = {"h2c", "2"};
  return rp;
}

}  // namespace acmetool::caddyfile::detail
