// `reverse_proxy` as the adapter reads it: upstreams, load balancing, health checks, header
// manipulation and the HTTP transport. Durations are std::chrono; absent means "default".
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace acmetool::caddyfile {

/// One header operation, as `header` and `header_up`/`header_down` write them.
struct HeaderOp {
  enum class Kind { Set, Add, Delete, Default, Replace };
  Kind kind = Kind::Set;
  std::string field;        ///< for Delete may end in '*' (prefix) or start with '*' (suffix)
  std::string value;        ///< Set/Add/Default: the value; Replace: the search text
  std::string replacement;  ///< Replace only
  bool regexp = false;      ///< Replace with a regular expression (header_up/down with 3 args)
};

struct Route;

/// A response matcher: reverse_proxy's `@name status 5xx 404` or `@name { header X v }`, and
/// encode's `match { ... }`. All present conditions must hold; any status, any value may match.
struct ResponseMatcher {
  std::vector<int> status;  ///< a class "5xx" is written 5, else the code
  /// Field -> accepted values; an empty list means the field must be present with any value.
  std::vector<std::pair<std::string, std::vector<std::string>>> header;
};

/// `handle_response [<@name>] { routes }` or `replace_status [<@name>] <code>`: what to do with
/// an upstream response that matches (every response when there is no matcher).
struct ResponseHandler {
  std::string matcher_name;              ///< "@name" as written, "" for none
  std::optional<ResponseMatcher> match;  ///< the definition of matcher_name
  std::optional<std::string> status;     ///< replace_status: the new status code
  std::vector<Route> routes;             ///< handle_response: run instead of copying the response
};

/// One upstream as written after normalisation: a dial address "host:port" (port inferred from
/// an explicit http:// or https:// scheme: 80 or 443), or a Unix socket "unix//path".
struct Upstream {
  std::string dial;
};

/// `dynamic a <name> <port>` / `dynamic srv <service>`: upstreams looked up in DNS.
struct DynamicUpstreams {
  std::string source;  ///< "a" or "srv"
  std::string name;
  std::string port;    ///< "a" only
  std::optional<std::chrono::nanoseconds> refresh;
  std::vector<std::string> resolvers;
};

/// `lb_policy <name> [<options...>]`: random, round_robin, least_conn, first, ip_hash,
/// client_ip_hash, uri_hash, header <field>, cookie [<name> [<secret>]], query <key>,
/// random_choose <n>, weighted_round_robin <weights...>.
struct LoadBalancing {
  std::string policy = "random";
  std::vector<std::string> policy_args;
  std::optional<int> retries;
  std::optional<std::chrono::nanoseconds> try_duration;
  std::optional<std::chrono::nanoseconds> try_interval;
};

struct ActiveHealthCheck {
  std::string uri;   ///< health_uri (or health_path, deprecated)
  std::optional<int> port;
  std::optional<std::chrono::nanoseconds> interval;
  std::optional<std::chrono::nanoseconds> timeout;
  std::optional<int> expect_status;  ///< 2 for "2xx", else the code
  std::optional<std::string> expect_body;
  std::optional<std::string> method;
  std::vector<std::pair<std::string, std::string>> headers;
  std::optional<int> passes;
  std::optional<int> fails;
};

struct PassiveHealthCheck {
  std::optional<std::chrono::nanoseconds> fail_duration;
  std::optional<int> max_fails;
  std::optional<int> unhealthy_request_count;
  std::vector<int> unhealthy_status;  ///< 5 for "5xx", else the code
  std::optional<std::chrono::nanoseconds> unhealthy_latency;
};

/// `transport http { ... }`.
struct HttpTransport {
  bool tls = false;  ///< also implied by an https:// upstream or any tls_* option
  bool tls_insecure_skip_verify = false;
  std::optional<std::string> tls_server_name;
  std::vector<std::string> tls_trusted_ca_certs;  ///< PEM files
  std::vector<std::string> tls_client_auth;       ///< cert and key files
  std::optional<std::chrono::nanoseconds> tls_timeout;
  std::vector<std::string> versions;  ///< "1.1", "2", "h2c", "3"; empty: 1.1 and 2
  std::optional<std::chrono::nanoseconds> dial_timeout;
  std::optional<std::chrono::nanoseconds> dial_fallback_delay;
  std::optional<std::chrono::nanoseconds> response_header_timeout;
  std::optional<std::chrono::nanoseconds> expect_continue_timeout;
  std::optional<std::chrono::nanoseconds> read_timeout;
  std::optional<std::chrono::nanoseconds> write_timeout;
  bool keepalive_off = false;
  std::optional<std::chrono::nanoseconds> keepalive;  ///< idle connection timeout
  std::optional<std::chrono::nanoseconds> keepalive_interval;
  std::optional<int> keepalive_idle_conns;
  std::optional<int> keepalive_idle_conns_per_host;
  std::optional<int> max_conns_per_host;
  std::optional<int> read_buffer;            ///< bytes
  std::optional<int> write_buffer;           ///< bytes
  std::optional<int> max_response_header;    ///< bytes
  bool compression_off = false;
  std::vector<std::string> resolvers;
};

/// `reverse_proxy [<matcher>] [<upstreams...>] { ... }`.
struct ReverseProxyHandler {
  std::vector<Upstream> upstreams;
  std::optional<DynamicUpstreams> dynamic;
  LoadBalancing load_balancing;
  std::optional<ActiveHealthCheck> active_health;
  std::optional<PassiveHealthCheck> passive_health;
  /// Response streaming: absent = default buffering rules, negative = flush immediately.
  std::optional<std::chrono::nanoseconds> flush_interval;
  std::vector<std::string> trusted_proxies;  ///< CIDRs; "private_ranges" already expanded
  std::vector<HeaderOp> header_up;
  std::vector<HeaderOp> header_down;
  std::optional<std::string> method;  ///< rewrite the upstream request's method
  std::optional<int> request_buffers;   ///< bytes
  std::optional<int> response_buffers;  ///< bytes
  std::optional<std::chrono::nanoseconds> stream_timeout;
  std::optional<std::chrono::nanoseconds> stream_close_delay;
  HttpTransport transport;
  std::vector<ResponseHandler> handle_response;  ///< in the order written
};

}  // namespace acmetool::caddyfile
