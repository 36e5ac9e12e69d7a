// reverse_proxy's request path (see proxy_internal.h): Caddy's proxyLoopIteration as a loop of
// select → round trip → retry decision, over this thread's keep-alive connections.
#include "proxy_internal.h"

#include <algorithm>
#include <charconv>
#include <regex>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "acmetool/serve/dynamic_upstreams.h"
#include "acmetool/serve/error.h"
#include "encode_internal.h"
#include "routes_internal.h"

namespace acmetool::serve {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using asio::awaitable;

namespace {

std::chrono::milliseconds to_ms(std::chrono::nanoseconds d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d);
}

std::string host_of(std::string_view dial) {
  if (dial.starts_with('[')) return std::string(dial.substr(1, dial.find(']') - 1));
  return std::string(dial.substr(0, dial.rfind(':')));
}

std::string port_of(std::string_view dial) {
  const std::size_t colon = dial.rfind(':');
  return colon == std::string_view::npos || dial.ends_with(']') ? "" : std::string(dial.substr(colon + 1));
}

// Caddy's {http.reverse_proxy.upstream.*} placeholders for the chosen upstream, then the
// request's own (unknown ones kept, as Caddy's header handlers do).
std::string expand_for_upstream(std::string_view text, const RouteRequest& request, const std::string& dial) {
  std::string out(text);
  if (out.find("{http.reverse_proxy.upstream.") != std::string::npos) {
    const std::pair<std::string_view, std::string> known[] = {
        {"{http.reverse_proxy.upstream.hostport}", dial},
        {"{http.reverse_proxy.upstream.host}", host_of(dial)},
        {"{http.reverse_proxy.upstream.port}", port_of(dial)},
        {"{http.reverse_proxy.upstream.address}", dial},
    };
    for (const auto& [name, value] : known) {
      for (std::size_t at = out.find(name); at != std::string::npos; at = out.find(name, at + value.size())) {
        out.replace(at, name.size(), value);
      }
    }
  }
  return expand_placeholders(out, request, UnknownPlaceholder::Keep);
}

}  // namespace

void ReverseProxy::choose_response_handler(ProxyOutcome& outcome, const std::string& reason,
                                           const RouteRequest& request) const {
  EncodeResponse response;  // what the response matchers look at
  response.status = outcome.status;
  for (const auto& [name, value] : outcome.fields) response.headers.emplace_back(name, value);
  for (const caddyfile::ResponseHandler& handler : handler_.handle_response) {
    if (handler.match && !encode_detail::matches_response(*handler.match, response)) continue;
    if (!handler.status) {
      auto facts = std::make_shared<UpstreamResponseFacts>();
      facts->status = outcome.status;
      facts->status_text = std::to_string(outcome.status) + (reason.empty() ? "" : " " + reason);
      facts->headers = outcome.fields;
      apply_response_headers(facts->headers, outcome.status, ProxyHeaderOptions{});  // hop-by-hop only
      outcome.response_routes = &handler;
      outcome.upstream_response = std::move(facts);
      return;
    }
    const std::string code = expand_placeholders(*handler.status, request);
    int replaced = 0;
    const auto [end, ec] = std::from_chars(code.data(), code.data() + code.size(), replaced);
    if (ec == std::errc() && end == code.data() + code.size() && replaced >= 100 && replaced <= 999) {
      outcome.status = replaced;
    } else if (log_) {
      log_("reverse_proxy: replace_status " + *handler.status + ": not a status code");
    }
    return;
  }
}

namespace {

// Whether `versions` lists `version`; absent, it is Caddy's default "1.1 2" (HTTP/2 only ever
// over TLS, by ALPN: a cleartext upstream needs h2c written out).
bool lists_version(const caddyfile::HttpTransport& transport, std::string_view version) {
  if (transport.versions.empty()) return version == "1.1" || version == "2";
  return std::find(transport.versions.begin(), transport.versions.end(), version) != transport.versions.end();
}

// HTTP/1.1 may be used: `versions` lists it (or is absent), or lists no HTTP/2 this connection
// could speak (h2c with TLS, 2 without).
bool allows_http1(const caddyfile::HttpTransport& transport, bool http2) {
  return lists_version(transport, "1.1") || !http2;
}

}  // namespace

// The TLS side of `transport http`: TLS 1.2 or later, ALPN http/1.1 (and h2 first when
// `versions` lists 2), the roots of tls_trusted_ca_certs (else the system's), tls_client_auth's
// certificate and key.
UpstreamTls upstream_tls(const caddyfile::HttpTransport& transport) {
  UpstreamTls tls;
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  SSL_CTX* ctx = context->native_handle();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  std::string alpn;
  const bool h2 = lists_version(transport, "2");
  if (h2) alpn.append("\x02h2", 3);
  if (allows_http1(transport, h2)) alpn.append("\x08http/1.1", 9);
  SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(alpn.data()), static_cast<unsigned>(alpn.size()));
  const auto load = [](const std::string& what, const std::string& file, auto&& action) {
    boost::system::error_code ec;
    action(file, ec);
    if (ec) throw Error("reverse_proxy " + what + " " + file + ": " + ec.message());
  };
  if (transport.tls_trusted_ca_certs.empty()) {
    context->set_default_verify_paths();
  }
  for (const std::string& file : transport.tls_trusted_ca_certs) {
    load("tls_trusted_ca_certs", file, [&](const std::string& f, auto& ec) { context->load_verify_file(f, ec); });
  }
  if (transport.tls_client_auth.size() >= 2) {
    load("tls_client_auth", transport.tls_client_auth[0],
         [&](const std::string& f, auto& ec) { context->use_certificate_chain_file(f, ec); });
    load("tls_client_auth", transport.tls_client_auth[1],
         [&](const std::string& f, auto& ec) { context->use_private_key_file(f, asio::ssl::context::pem, ec); });
  }
  tls.context = std::move(context);
  tls.server_name = transport.tls_server_name.value_or("");
  tls.verify = !transport.tls_insecure_skip_verify;
  if (transport.tls_timeout) tls.handshake_timeout = to_ms(*transport.tls_timeout);
  return tls;
}

UpstreamClientOptions upstream_client_options(const caddyfile::HttpTransport& transport) {
  UpstreamClientOptions options;
  options.dial_timeout = to_ms(transport.dial_timeout.value_or(std::chrono::seconds(3)));
  if (transport.response_header_timeout) options.response_header_timeout = to_ms(*transport.response_header_timeout);
  if (transport.read_timeout) options.read_timeout = to_ms(*transport.read_timeout);
  if (transport.write_timeout) options.write_timeout = to_ms(*transport.write_timeout);
  if (transport.max_response_header) options.max_response_header_bytes = static_cast<std::size_t>(*transport.max_response_header);
  options.idle_timeout = to_ms(transport.keepalive.value_or(std::chrono::minutes(2)));
  // Per io thread (Caddy keeps 32 per upstream for the whole process): a thread with more
  // clients than its pool holds would close and reopen upstream connections on every request.
  options.max_idle_per_upstream = static_cast<std::size_t>(transport.keepalive_idle_conns_per_host.value_or(128));
  if (transport.keepalive_off) options.max_idle_per_upstream = 0;
  if (transport.tls) options.tls = upstream_tls(transport);
  options.http2 = lists_version(transport, transport.tls ? "2" : "h2c");
  options.http1 = allows_http1(transport, options.http2);
  return options;
}

ReverseProxy::ReverseProxy(const caddyfile::ReverseProxyHandler& handler,
                           const std::vector<asio::any_io_executor>& executors,
                           std::function<void(std::string_view)> log)
    : handler_(handler),
      pool_(handler.dynamic ? std::make_shared<UpstreamPool>(std::vector<std::string>{}, handler.load_balancing,
                                                             handler.passive_health, handler.active_health)
                            : std::make_shared<UpstreamPool>(handler)),
      lookups_(handler.dynamic ? std::make_unique<asio::thread_pool>(1) : nullptr),
      headers_(proxy_header_options(handler)),
      retry_(RetryPolicy::from(handler.load_balancing)),
      executors_(executors),
      log_(std::move(log)) {
  const UpstreamClientOptions options = upstream_client_options(handler.transport);
  upstream_http2_ = options.http2;
  for (const auto& executor : executors_) connections_.push_back(std::make_unique<UpstreamConnections>(executor, options));
  if (handler.active_health && !executors_.empty()) {
    UpstreamClientOptions probe = options;
    probe.dial_timeout = probe.response_header_timeout = to_ms(handler.active_health->timeout.value_or(std::chrono::seconds(5)));
    probe.max_idle_per_upstream = 0;  // a fresh connection per check, as a new client would make
    health_connections_ = std::make_unique<UpstreamConnections>(executors_.front(), probe);
    if (const auto& body = handler.active_health->expect_body) {
      try {
        health_body_.emplace(*body);
      } catch (const std::regex_error& e) {
        throw Error("reverse_proxy health_body " + *body + ": " + e.what());
      }
    }
  }
}

std::shared_ptr<UpstreamPool> ReverseProxy::pool() const {
  std::lock_guard lock(pool_mu_);
  return pool_;
}

void ReverseProxy::use_dials(const std::vector<std::string>& dials) {
  const std::shared_ptr<UpstreamPool> now = pool();
  bool same = now->size() == dials.size();
  for (std::size_t i = 0; same && i < dials.size(); ++i) same = now->dial(i) == dials[i];
  if (same) return;
  auto next = std::make_shared<UpstreamPool>(dials, handler_.load_balancing, handler_.passive_health,
                                             handler_.active_health);
  {
    std::lock_guard lock(pool_mu_);
    pool_ = std::move(next);
  }
  if (log_) {
    std::string list;
    for (const std::string& dial : dials) list += (list.empty() ? "" : ", ") + dial;
    log_("reverse_proxy: dynamic " + handler_.dynamic->source + " " + handler_.dynamic->name + ": upstreams " + list);
  }
}

void ReverseProxy::start() {
  if (handler_.dynamic && !executors_.empty()) {
    try {
      use_dials(resolve_dynamic_upstreams(*handler_.dynamic));
    } catch (const std::exception& e) {
      if (log_) log_(std::string("reverse_proxy: ") + e.what() + " (asking again in a while)");
    }
    asio::co_spawn(executors_.front(), refresh_dynamic(weak_from_this()), asio::detached);
  }
  if (!health_connections_) return;
  asio::co_spawn(executors_.front(), check_health(weak_from_this()), asio::detached);
}

namespace {
awaitable<std::vector<std::string>> lookup(caddyfile::DynamicUpstreams dynamic) {
  co_return resolve_dynamic_upstreams(dynamic);
}
}  // namespace

// Looks the upstreams up again every `refresh` on the blocking pool; a failed lookup keeps the
// upstreams of the last good one. Holds the proxy only while looking.
awaitable<void> ReverseProxy::refresh_dynamic(std::weak_ptr<ReverseProxy> weak) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    std::chrono::nanoseconds every{std::chrono::minutes(1)};
    if (const auto self = weak.lock()) {
      every = self->handler_.dynamic->refresh.value_or(every);
    } else {
      co_return;
    }
    timer.expires_after(every);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    const std::shared_ptr<ReverseProxy> self = weak.lock();
    if (!self) co_return;
    std::string error;
    std::vector<std::string> dials;
    try {
      dials = co_await asio::co_spawn(self->lookups_->get_executor(), lookup(*self->handler_.dynamic),
                                      asio::use_awaitable);
    } catch (const std::exception& e) {
      error = e.what();
    }
    if (error.empty()) {
      self->use_dials(dials);
    } else if (self->log_) {
      self->log_("reverse_proxy: " + error + " (keeping " + std::to_string(self->pool()->size()) + " upstreams)");
    }
  }
}

// Caddy's activeHealthChecker: every upstream checked once per interval. Holds the proxy only
// while checking, so a configuration that was replaced stops being checked within an interval.
awaitable<void> ReverseProxy::check_health(std::weak_ptr<ReverseProxy> weak) {
  std::chrono::nanoseconds interval{std::chrono::seconds(30)};
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    {
      const std::shared_ptr<ReverseProxy> self = weak.lock();
      if (!self) co_return;
      interval = self->handler_.active_health->interval.value_or(std::chrono::seconds(30));
      const std::shared_ptr<UpstreamPool> pool = self->pool();
      for (std::size_t i = 0; i < pool->size(); ++i) co_await self->check_upstream(*pool, i);
    }
    timer.expires_after(interval);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

// One check: health_method (GET) of health_uri on the upstream (health_port replacing its port),
// passing on a 2xx (or health_status) whose body matches health_body, within health_timeout.
awaitable<void> ReverseProxy::check_upstream(UpstreamPool& upstreams, std::size_t index) {
  const caddyfile::ActiveHealthCheck& check = *handler_.active_health;
  std::string dial = upstreams.dial(index);
  if (check.port && !dial.starts_with("unix/")) dial = dial.substr(0, dial.rfind(':') + 1) + std::to_string(*check.port);
  UpstreamRequest request;
  request.method = check.method.value_or("GET");
  request.target = check.uri.empty() ? "/" : check.uri;
  for (const auto& [name, value] : check.headers) request.fields.emplace_back(name, value);
  std::string failure;
  UpstreamResult result = co_await health_connections_->round_trip(dial, std::move(request));
  if (!result.ok()) {
    failure = result.error->reason;
  } else {
    const int status = static_cast<int>(result.head.status);
    const bool status_ok = !check.expect_status         ? status >= 200 && status < 300
                           : *check.expect_status < 10 ? status / 100 == *check.expect_status
                                                       : status == *check.expect_status;
    std::string body;
    while (health_body_ && body.size() < 1024 * 1024) {
      std::optional<std::string> piece = co_await result.body.next_chunk();
      if (!piece) break;
      body += *piece;
    }
    if (!status_ok) {
      failure = "status " + std::to_string(status);
    } else if (health_body_ && !std::regex_search(body, *health_body_)) {
      failure = "body does not match " + *check.expect_body;
    }
  }
  const bool was_healthy = upstreams.healthy(index);
  const bool healthy = upstreams.record_active_check(index, failure.empty());
  if (log_ && healthy != was_healthy) {
    log_("reverse_proxy: upstream " + upstreams.dial(index) +
         (healthy ? " is healthy again" : " is unhealthy: " + failure));
  }
}

ReverseProxy::~ReverseProxy() {
  // A connection's sockets belong to its thread's io_context: closed there, never from here.
  for (std::size_t i = 0; i < connections_.size(); ++i) {
    asio::post(executors_[i], [connections = std::shared_ptr<UpstreamConnections>(std::move(connections_[i]))] {});
  }
}

std::optional<Selection> ReverseProxy::choose(UpstreamPool& upstreams, const RouteRequest& request) const {
  SelectionRequest selection;
  selection.remote_ip = request.remote_ip;
  selection.client_ip = request.remote_ip;
  selection.request_uri = request.target;
  selection.host = request.host;
  selection.header = [&](std::string_view field) -> std::optional<std::string> {
    if (const auto value = routes_detail::first_header(request, field)) return std::string(*value);
    return std::nullopt;
  };
  selection.cookie = [&](std::string_view name) -> std::optional<std::string> {
    std::optional<std::string_view> value = routes_detail::find_cookie(request, name);
    if (!value) return std::nullopt;
    // Go's Request.Cookie takes the quotes off a quoted value.
    if (value->size() >= 2 && value->front() == '"' && value->back() == '"') *value = value->substr(1, value->size() - 2);
    return std::string(*value);
  };
  selection.query = [&](std::string_view key) {
    std::vector<std::string> values;
    const std::size_t q = request.target.find('?');
    std::vector<std::pair<std::string, std::string>> pairs;
    if (q != std::string::npos) routes_detail::parse_query(std::string_view(request.target).substr(q + 1), pairs);
    for (auto& [k, v] : pairs) {
      if (k == key) values.push_back(std::move(v));
    }
    return values;
  };
  return upstreams.select(selection);
}

std::function<std::string(std::string_view)> ReverseProxy::expander(const RouteRequest& request,
                                                                    const std::string& dial) const {
  if (headers_.header_up.empty() && headers_.header_down.empty()) return {};  // nothing to expand
  return [&request, &dial](std::string_view text) { return expand_for_upstream(text, request, dial); };
}

UpstreamRequest ReverseProxy::upstream_request(const ProxyCall& call, const std::string& dial) const {
  const RouteRequest& request = call.request;
  ClientRequestFacts client;
  client.remote_ip = request.remote_ip;
  client.tls = request.scheme == "https";
  client.host = std::string(routes_detail::first_header(request, "host").value_or(request.host));
  UpstreamRequest up;
  up.method = handler_.method.value_or(request.method);
  up.target = call.target;
  // The usual request to an HTTP/1.1 upstream has its field lines written at once; any other
  // gets them built first, for header_up, HTTP/2 or an upgrade.
  if (upstream_http2_ || !write_upstream_request_fields(up.field_lines, request.headers, client, headers_, dial)) {
    up.fields = upstream_request_headers(request.headers, client, headers_, dial, expander(request, dial));
  }
  up.body = call.body;
  up.body_source = call.body_source;
  up.body_length = call.body_length;
  return up;
}

void ReverseProxy::take_response(UpstreamResult& result, const Selection& chosen, const ProxyCall& call,
                                 const std::string& dial, ProxyOutcome& outcome) const {
  const int status = static_cast<int>(result.head.status);
  outcome.status = status;
  outcome.fields = std::move(result.head.fields);
  if (!handler_.handle_response.empty()) choose_response_handler(outcome, result.head.reason, call.request);
  apply_response_headers(outcome.fields, status, headers_, expander(call.request, dial));
  if (chosen.set_cookie) {
    outcome.fields.emplace_back("Set-Cookie", sticky_cookie_header(*chosen.set_cookie, call.request.scheme == "https"));
  }
  outcome.body = std::move(result.body);
  outcome.tunnel = std::move(result.tunnel);
  if (outcome.tunnel && handler_.stream_timeout) outcome.stream_timeout = to_ms(*handler_.stream_timeout);
  outcome.error.clear();
}

// Not a coroutine: the request is built here and moved into the round trip's frame. (In
// forward, a temporary in the co_await expression would be destroyed twice by g++ 12, and a
// named one would make forward's frame too large to recycle.)
awaitable<UpstreamResult> ReverseProxy::attempt(UpstreamConnections& connections, const ProxyCall& call,
                                                const std::string& dial) const {
  return connections.round_trip(dial, upstream_request(call, dial));
}

// A coroutine whose frame Asio recycles only while it is at most 1020 bytes: the work between
// the waits is done by the functions above, whose locals live on the stack, not in the frame.
awaitable<void> ReverseProxy::forward(const ProxyCall& call, ProxyOutcome& outcome, std::size_t thread) {
  UpstreamConnections& connections = *connections_.at(thread);
  // A fixed pool is never replaced: used without the lock and the reference count (a cache line
  // every io thread would otherwise write on every request).
  const std::shared_ptr<UpstreamPool> current = handler_.dynamic ? pool() : nullptr;
  UpstreamPool& upstreams = current ? *current : *pool_;
  const RouteRequest& request = call.request;
  const bool upgrade = request.version == 11 && !upgrade_protocol(request.headers).empty();
  std::chrono::steady_clock::time_point started;  // the first attempt (lb_try_duration counts from it)
  for (int retries = 0;; ++retries) {
    AttemptFailure failure = AttemptFailure::NoUpstream;
    const std::optional<Selection> chosen = choose(upstreams, request);
    if (!chosen) {
      outcome.status = 503;
      outcome.error = "no upstreams available";
    } else {
      const std::string& dial = upstreams.dial(chosen->index);
      outcome.upstream = dial;
      std::optional<RequestLease> lease;
      lease.emplace(upstreams, chosen->index);
      const auto sent = std::chrono::steady_clock::now();
      if (retries == 0) started = sent;
      UpstreamResult result = co_await attempt(connections, call, dial);
      const auto latency = std::chrono::steady_clock::now() - sent;
      if (result.ok() && result.head.status == 101 && (!upgrade || !result.tunnel)) {
        // A 101 the client did not ask for cannot be relayed (Caddy answers 502 too).
        result.error = UpstreamError{UpstreamFailure::Failed, "upstream " + dial + " switched protocols unasked"};
      }
      if (result.ok()) {
        upstreams.record_result(chosen->index, static_cast<int>(result.head.status), latency, false);
        take_response(result, *chosen, call, dial, outcome);
        outcome.pool = current;
        outcome.lease = std::move(lease);
        co_return;
      }
      upstreams.record_result(chosen->index, 0, latency, true);
      const UpstreamError& error = *result.error;
      failure = error.failure == UpstreamFailure::Dial ? AttemptFailure::Dial : AttemptFailure::RoundTrip;
      outcome.status = error.failure == UpstreamFailure::HeaderTimeout || error.reason.find("i/o timeout") != std::string::npos
                           ? 504
                           : 502;
      outcome.error = error.reason;
    }
    const auto now = std::chrono::steady_clock::now();
    if (retries == 0 && !chosen) started = now;
    // A streamed body that reached an upstream cannot be sent again.
    if (call.body_source && failure == AttemptFailure::RoundTrip) break;
    if (!retry_.should_retry(retries, started, now, failure, handler_.method.value_or(request.method))) break;
    if (retry_.try_interval.count() > 0) {
      asio::steady_timer pause(co_await asio::this_coro::executor, retry_.try_interval);
      co_await pause.async_wait(asio::use_awaitable);
    }
  }
  outcome.request_line = request.method + " " + call.target;
}

}  // namespace acmetool::serve
