// reverse_proxy's request path (issue 9), between the routes and the server's writers: one
// ReverseProxy per `reverse_proxy` handler of the loaded configuration holds its upstream pool,
// header rules, retry policy and, per io thread, its keep-alive connections; forward() picks an
// upstream, sends the request, retries as Caddy does and returns the response head with its body
// still to be read. Private to libserve (includes Asio).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <functional>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/fields.hpp>

#include "acmetool/caddyfile/config.h"
#include "acmetool/serve/proxy_headers.h"
#include "acmetool/serve/routes.h"
#include "acmetool/serve/upstream_client.h"
#include "acmetool/serve/upstreams.h"

namespace acmetool::serve {

/// A request on its way upstream: what the routes decided and what the client sent.
struct ProxyCall {
  RouteRequest request;  ///< as the client sent it (placeholders, selection, client fields)
  std::string target;    ///< path and query after the routes' rewrites
  std::string body;      ///< the request body, whole (HTTP/2; the server's body limit applies)
  /// Or the body as the client sends it (HTTP/1.1 uploads), with its length when known.
  std::shared_ptr<UpstreamBodySource> body_source;
  std::optional<std::uint64_t> body_length;
};

/// The answer for the client: the upstream's head and body, or a status of our own (502, 503,
/// 504) with `error` saying why.
struct ProxyOutcome {
  int status = 502;
  /// For the client: hop-by-hop removed, header_down applied (the upstream's own fields, moved
  /// along rather than copied).
  HeaderFields fields;
  UpstreamBody body;    ///< the upstream's body, still to be read (empty for our own statuses)
  std::unique_ptr<UpstreamTunnel> tunnel;  ///< 101 Switching Protocols: the upgraded connection
  /// With `tunnel`: how long it may stay open (stream_timeout), after which both sides are
  /// closed; zero: as long as both sides keep it.
  std::chrono::milliseconds stream_timeout{0};
  std::string error;    ///< one line, set when the status is ours
  std::string request_line;  ///< with `error`, for the log: the method and target ("GET /a?b")
  std::string upstream; ///< the dial address that answered, or the last one tried
  /// `dynamic` upstreams: keeps the pool `lease` counts in alive (a lookup may replace it);
  /// a fixed pool lives as long as its proxy.
  std::shared_ptr<UpstreamPool> pool;
  std::optional<RequestLease> lease;          ///< the request counted in flight until the body ends
  /// The `handle_response` block of routes that matched the upstream's response, and that
  /// response as its routes see it: the server runs them instead of relaying (the body unread).
  const caddyfile::ResponseHandler* response_routes = nullptr;
  std::shared_ptr<const UpstreamResponseFacts> upstream_response;
};

/// One reverse_proxy handler of the loaded configuration. Built when a configuration is loaded;
/// thread-safe: forward() may run on every io thread at once, each using its own connections.
class ReverseProxy : public std::enable_shared_from_this<ReverseProxy> {
 public:
  /// `executors`: one per io thread, in the server's thread order. Throws serve::Error for an
  /// invalid lb_policy, trusted_proxies range or header_up/down expression.
  ReverseProxy(const caddyfile::ReverseProxyHandler& handler,
               const std::vector<boost::asio::any_io_executor>& executors,
               std::function<void(std::string_view)> log = {});
  /// Starts the background work, on the first io thread, while this proxy lives: active health
  /// checks (health_uri: at once, then every health_interval, 30 s), and for `dynamic` upstreams
  /// a first lookup now (at most 5 s; failures are logged and retried) and one every `refresh`
  /// (1 minute).
  void start();
  /// Each thread's connections are closed on their own thread.
  ~ReverseProxy();
  ReverseProxy(const ReverseProxy&) = delete;
  ReverseProxy& operator=(const ReverseProxy&) = delete;

  /// Sends `call` (which the caller keeps until the outcome is back) upstream from io thread
  /// `thread` (the index of the executor it runs on), into a fresh `outcome`:
  /// selects an upstream by lb_policy, retries dial failures (any method) and other failures
  /// (GET only) within lb_retries / lb_try_duration, waiting lb_try_interval between tries, and
  /// records passive health. Never throws for upstream failures: they come back as 502 (503
  /// when no upstream is available, 504 when response_header_timeout passed). The caller keeps
  /// this proxy alive until the outcome is gone (its body and lease refer to it).
  boost::asio::awaitable<void> forward(const ProxyCall& call, ProxyOutcome& outcome, std::size_t thread);

  /// The upstreams now: fixed, or the last answer for `dynamic`.
  std::shared_ptr<UpstreamPool> pool() const;

  /// Whatever owns the handler this proxy was built from (the loaded site), kept while the proxy
  /// lives: a response still being relayed after a reload holds the proxy, and through it the
  /// configuration it reads.
  void keep_alive(std::shared_ptr<const void> owner) { owner_ = std::move(owner); }

 private:
  static boost::asio::awaitable<void> check_health(std::weak_ptr<ReverseProxy> self);
  boost::asio::awaitable<void> check_upstream(UpstreamPool& pool, std::size_t index);
  static boost::asio::awaitable<void> refresh_dynamic(std::weak_ptr<ReverseProxy> self);
  // Caddy's handle_response choice, on the upstream's status and fields as received: the first
  // entry whose matcher matches decides. A `replace_status` sets outcome.status; a block of routes
  // is left in outcome.response_routes with outcome.upstream_response.
  void choose_response_handler(ProxyOutcome& outcome, const std::string& reason, const RouteRequest& request) const;
  // forward's steps between its waits (see there):
  // the upstream for this attempt, by lb_policy;
  std::optional<Selection> choose(UpstreamPool& upstreams, const RouteRequest& request) const;
  // header_up's and header_down's placeholders for this request to `dial` (empty without them);
  std::function<std::string(std::string_view)> expander(const RouteRequest& request, const std::string& dial) const;
  // the request to send `dial`: header_up, X-Forwarded-*, hop-by-hop fields removed;
  UpstreamRequest upstream_request(const ProxyCall& call, const std::string& dial) const;
  // the round trip to `dial`;
  boost::asio::awaitable<UpstreamResult> attempt(UpstreamConnections& connections, const ProxyCall& call,
                                                 const std::string& dial) const;
  // a response into `outcome`: handle_response, header_down, the sticky cookie.
  void take_response(UpstreamResult& result, const Selection& chosen, const ProxyCall& call, const std::string& dial,
                     ProxyOutcome& outcome) const;
  // Makes `dials` the upstreams, unless they already are (keeping their health and counters).
  void use_dials(const std::vector<std::string>& dials);

  std::shared_ptr<const void> owner_;  ///< see keep_alive; declared first, destroyed last
  const caddyfile::ReverseProxyHandler& handler_;
  mutable std::mutex pool_mu_;
  std::shared_ptr<UpstreamPool> pool_;  ///< guarded by pool_mu_ (swapped by dynamic lookups)
  /// `dynamic` only: the thread its DNS lookups block (c-ares, driven synchronously).
  std::unique_ptr<boost::asio::thread_pool> lookups_;
  ProxyHeaderOptions headers_;
  bool upstream_http2_ = false;  ///< the transport may speak HTTP/2 to the upstreams
  RetryPolicy retry_;
  std::vector<boost::asio::any_io_executor> executors_;
  std::vector<std::unique_ptr<UpstreamConnections>> connections_;  ///< one per io thread
  std::unique_ptr<UpstreamConnections> health_connections_;        ///< on the first io thread
  std::optional<std::regex> health_body_;                          ///< health_body, compiled
  std::function<void(std::string_view)> log_;
};

/// The TLS client settings of a `transport http` block with tls; throws serve::Error naming a
/// tls_trusted_ca_certs or tls_client_auth file that cannot be loaded.
UpstreamTls upstream_tls(const caddyfile::HttpTransport& transport);

/// The client options reverse_proxy's `transport http` block asks for (Caddy's defaults: 3 s
/// dial timeout, 2 min keep-alive, 32 idle connections per upstream); throws as upstream_tls.
UpstreamClientOptions upstream_client_options(const caddyfile::HttpTransport& transport);

}  // namespace acmetool::serve
