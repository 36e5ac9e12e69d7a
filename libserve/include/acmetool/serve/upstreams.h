// The upstream pool of `reverse_proxy` (issue 9): which upstream serves a request, the passive and
// active health state that decides it, and whether a failed attempt is tried again. Pure logic
// with an injectable clock; no sockets. Mirrors Caddy 2.6-2.8 modules/caddyhttp/reverseproxy
// (selectionpolicies.go, hosts.go, healthchecks.go, reverseproxy.go).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "acmetool/caddyfile/config_proxy.h"

namespace acmetool::serve {

/// What a selection policy may look at. Every field is optional; a missing callback reads as
/// "absent". Views must stay valid for the duration of select().
struct SelectionRequest {
  std::string_view remote_ip;    ///< ip_hash: the connection's peer address, without port
  std::string_view client_ip;    ///< client_ip_hash: the client after trusted_proxies
  std::string_view request_uri;  ///< uri_hash: the request target as received ("/a?b=c")
  std::string_view host;         ///< `header Host` hashes this (Go keeps Host out of headers)
  /// The first value of a header field, or nullopt when the field is absent.
  std::function<std::optional<std::string>(std::string_view field)> header;
  /// The value of a request cookie, or nullopt when there is none of that name.
  std::function<std::optional<std::string>(std::string_view name)> cookie;
  /// Every value of a query parameter, in order; empty when absent.
  std::function<std::vector<std::string>(std::string_view key)> query;
};

/// The sticky-session cookie the `cookie` policy asks the caller to set on the response.
struct StickyCookie {
  std::string name;   ///< the policy's cookie name ("lb" by default)
  std::string value;  ///< cookie_hash(secret, dial) of the chosen upstream
};

/// The Set-Cookie header value Caddy writes for `cookie`: Path=/, HttpOnly, and SameSite=Lax;
/// with `secure` (TLS, or a trusted proxy's X-Forwarded-Proto https) Secure and SameSite=None.
std::string sticky_cookie_header(const StickyCookie& cookie, bool secure);

/// The outcome of UpstreamPool::select().
struct Selection {
  std::size_t index = 0;                   ///< into the pool's upstreams, as configured
  std::optional<StickyCookie> set_cookie;  ///< `cookie` policy picked a new upstream
};

/// XXH64 with seed 0, as github.com/cespare/xxhash computes it: the hash behind Caddy's
/// hash policies (key = upstream dial address followed by the request's key).
std::uint64_t xxhash64(std::string_view data);

/// The `cookie` policy's value for an upstream: lowercase hex HMAC-SHA256 of the dial address,
/// keyed with `secret` (the empty key when there is no secret, as Caddy's hashCookie).
std::string cookie_hash(std::string_view secret, std::string_view dial);

/// Active health check counters for one upstream (Caddy's Host activePasses/activeFails).
struct ActiveHealthTally {
  int passes = 0;
  int fails = 0;
};

/// Applies one active health check result and returns the new health. A check counts towards
/// its own side only; reaching `passes_needed` (or `fails_needed`) flips the state if it differs
/// and then resets both counters, exactly as healthchecks.go's markHealthy/markUnhealthy. So the
/// counts are cumulative between transitions rather than strictly consecutive.
bool apply_active_check(ActiveHealthTally& tally, bool healthy, bool check_passed,
                        int passes_needed, int fails_needed);

/// Why an attempt at proxying failed, which decides whether it may be retried.
enum class AttemptFailure {
  NoUpstream,  ///< select() found no available upstream (Caddy's errNoUpstream)
  Dial,        ///< the connection could not be established: nothing was sent
  RoundTrip,   ///< failed after connecting: the upstream may have seen the request
};

/// lb_retries / lb_try_duration / lb_try_interval, as reverseproxy.go's tryAgain applies them.
struct RetryPolicy {
  int retries = 0;                           ///< 0: unlimited while try_duration lasts
  std::chrono::nanoseconds try_duration{0};  ///< 0: unlimited while retries last
  std::chrono::nanoseconds try_interval{0};  ///< wait between attempts (the caller sleeps)

  /// From the config; try_interval defaults to 250 ms when try_duration is set, else 0.
  static RetryPolicy from(const caddyfile::LoadBalancing& lb);

  /// Whether to try again after a failed attempt. `retries_done` counts earlier retries (0 after
  /// the first attempt fails). No retries when both retries and try_duration are 0; stop once
  /// now - started_at >= try_duration or retries_done >= retries. A RoundTrip failure is retried
  /// only for GET (Caddy's default without retry_match); Dial and NoUpstream for any method.
  bool should_retry(int retries_done, std::chrono::steady_clock::time_point started_at,
                    std::chrono::steady_clock::time_point now, AttemptFailure failure,
                    std::string_view method) const;
};

/// The upstreams of one reverse_proxy handler and their state. Every member function is
/// thread-safe (one internal mutex); the pool is neither copyable nor movable.
class UpstreamPool {
 public:
  /// Called with the pool's mutex held, possibly from several threads at once.
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  /// `dials` in configured order. Throws serve::Error for an unknown lb_policy or bad policy
  /// arguments (random_choose < 2, weights not non-negative integers or all zero). An empty
  /// `clock` means steady_clock::now; `seed` fixes the random policies (0: random_device).
  UpstreamPool(std::vector<std::string> dials, const caddyfile::LoadBalancing& lb,
               std::optional<caddyfile::PassiveHealthCheck> passive,
               std::optional<caddyfile::ActiveHealthCheck> active, Clock clock = {},
               std::uint64_t seed = 0);
  /// The static upstreams and options of a parsed handler.
  explicit UpstreamPool(const caddyfile::ReverseProxyHandler& handler, Clock clock = {},
                        std::uint64_t seed = 0);
  ~UpstreamPool();
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  std::size_t size() const;
  const std::string& dial(std::size_t index) const;

  /// Picks an available upstream by the lb_policy; nullopt when none is available. Does not
  /// count the request: call begin_request() (or hold a RequestLease) for the one used.
  std::optional<Selection> select(const SelectionRequest& request);

  /// Counts a request in flight to `index`, when anything reads the count (least_conn,
  /// random_choose, unhealthy_request_count); else does nothing, and in_flight() stays 0.
  void begin_request(std::size_t index);
  /// Ends a request counted by begin_request(); never goes below zero.
  void end_request(std::size_t index);
  std::size_t in_flight(std::size_t index) const;

  /// Passive health: the result of one round trip. A transport error counts one failure; else
  /// each unhealthy_status entry matching `status` counts one, and latency >= unhealthy_latency
  /// counts one. Failures count only when passive checks are configured with fail_duration > 0,
  /// and each expires fail_duration after it was recorded.
  void record_result(std::size_t index, int status, std::chrono::nanoseconds latency,
                     bool transport_error);
  /// Unexpired passive failures of `index`.
  int fails(std::size_t index) const;

  /// Active health: sets the flag directly (true at start).
  void set_healthy(std::size_t index, bool healthy);
  /// Active health: applies one check result with the health_passes / health_fails thresholds
  /// (default 1 each) and returns the new health.
  bool record_active_check(std::size_t index, bool passed);
  bool healthy(std::size_t index) const;

  /// Healthy (active flag, fails < max_fails when passive checks are configured) and not full
  /// (fewer than unhealthy_request_count requests in flight, when set): Caddy's Available().
  bool available(std::size_t index) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Counts one request in flight for its lifetime. Move-only; the pool must outlive it.
class RequestLease {
 public:
  RequestLease(UpstreamPool& pool, std::size_t index) : pool_(&pool), index_(index) {
    pool.begin_request(index);
  }
  RequestLease(RequestLease&& other) noexcept : pool_(other.pool_), index_(other.index_) {
    other.pool_ = nullptr;
  }
  RequestLease& operator=(RequestLease&& other) noexcept {
    if (this != &other) {
      if (pool_ != nullptr) pool_->end_request(index_);
      pool_ = other.pool_;
      index_ = other.index_;
      other.pool_ = nullptr;
    }
    return *this;
  }
  RequestLease(const RequestLease&) = delete;
  RequestLease& operator=(const RequestLease&) = delete;
  ~RequestLease() {
    if (pool_ != nullptr) pool_->end_request(index_);
  }

 private:
  UpstreamPool* pool_;
  std::size_t index_;
};

}  // namespace acmetool::serve
