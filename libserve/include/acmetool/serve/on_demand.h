// On-demand TLS (issue 7): the decisions taken before obtaining a certificate during a handshake
// that need no certificate — a per-name cooldown, the permission check (Caddy's `ask` endpoint,
// or `permission http`) and the deprecated global issuance budget — plus a sampled log for the
// scanner storms those decisions face. DESIGN.md §3 "On-demand TLS" gives the order they run in.
// Go-format durations (the Caddyfile's `cooldown 2m`) are parsed by caddyfile::parse_duration.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "acmetool/pki/ca.h"

namespace acmetool::serve {

/// How on-demand TLS decides. The defaults are Caddy's where Caddy has one.
struct OnDemandOptions {
  /// The permission endpoint (`ask <url>`, or `permission http <url>`): an absolute http:// or
  /// https:// URL, which may already hold a query. Empty means no permission check, which is
  /// allowed only with the local CA (the CertManager enforces that).
  std::string ask_url;
  /// Also send the client's address as `&ip=<address>` (issue 9).
  bool ask_include_ip = false;
  /// PEM roots to trust for an https ask_url; empty means the system store.
  std::filesystem::path ca_file;
  /// Limit on one ask call, connecting included; also the longest a caller waits for a slot.
  std::chrono::milliseconds ask_timeout{10000};
  /// How long an allow answer is remembered when the endpoint sends no Cache-Control max-age.
  std::chrono::seconds allow_ttl{3600};
  /// The same for denials. Transport errors are remembered for min(deny_ttl, 10 s).
  std::chrono::seconds deny_ttl{60};
  /// Ask calls in flight at once; 0 is taken as 1.
  std::size_t max_concurrent_asks = 16;
  /// Callers that may wait for a free slot; the next one gets Permission::QueueFull at once.
  std::size_t max_waiting_asks = 1024;
  /// Fairness (issue 9): asks one client address may have running or waiting at once; the next
  /// one from it gets Permission::QueueFull at once, so a scanner cycling through names cannot
  /// take every slot from other clients. 0 means max(1, max_concurrent_asks / 4).
  std::size_t max_asks_per_client = 0;
  /// Per-name cooldown after a denial or a failed issuance; 0 means none.
  std::chrono::nanoseconds cooldown{0};
  /// Deprecated global budget (Caddy 2.6 `interval`, `burst`): at most `burst` new issuances per
  /// `interval` across all names. 0 means unlimited.
  std::chrono::nanoseconds interval{0};
  /// See `interval`; <= 0 with a nonzero interval means 1.
  int burst = 0;
  /// Bound on the names remembered (answers and cooldowns together); past it the entry written
  /// longest ago is forgotten first. 0 means unbounded.
  std::size_t memory_capacity = 100000;
};

/// The verdict of OnDemandPolicy::ask().
enum class Permission {
  Allowed,    ///< the endpoint answered 2xx, or there is no endpoint
  Denied,     ///< the endpoint answered anything else, 3xx included
  Error,      ///< transport error, timeout or bad URL: deny, but log it as our problem
  QueueFull,  ///< too many callers waiting for an ask slot: deny at once, nothing cached
};

/// What ask() decided and why.
struct PermissionAnswer {
  Permission verdict = Permission::Denied;
  /// True when no call was made for this caller: a remembered answer, or another caller's call
  /// for the same name.
  bool cached = false;
  /// One line for the log: "ask https://auth.example/check?domain=a.example: 403", "ask ...:
  /// timed out"; for a remembered answer only "cached 403" or "cached error" (no allocation).
  std::string reason;
};

/// A snapshot of OnDemandPolicy's counters since construction.
struct OnDemandStats {
  std::uint64_t ask_calls = 0;            ///< HTTP calls made to the ask endpoint
  std::uint64_t ask_allowed = 0;          ///< calls answered 2xx
  std::uint64_t ask_denied = 0;           ///< calls answered with another status
  std::uint64_t ask_errors = 0;           ///< calls that got no answer
  std::uint64_t ask_cache_hits = 0;       ///< asks answered without a call of their own
  std::uint64_t ask_queue_full = 0;       ///< asks answered QueueFull (per-client limit included)
  std::uint64_t cooldown_rejections = 0;  ///< cooling_down() calls that returned a time
  std::uint64_t budget_rejections = 0;    ///< take_issuance_budget() calls that returned false
  std::uint64_t ask_client_limited = 0;   ///< asks refused by max_asks_per_client (also in ask_queue_full)
};

/// The decision stages of on-demand TLS that need no certificate: cooldown, permission, budget.
/// Names are compared ASCII lower-cased without one trailing dot. Every member is thread-safe;
/// the policy must outlive every call in progress.
class OnDemandPolicy {
 public:
  /// `clock` is the wall clock, injectable for tests; empty means system_clock::now.
  explicit OnDemandPolicy(OnDemandOptions options, pki::Clock clock = {});
  ~OnDemandPolicy();
  OnDemandPolicy(const OnDemandPolicy&) = delete;
  OnDemandPolicy& operator=(const OnDemandPolicy&) = delete;

  /// The options in force: as given, with max_concurrent_asks raised to at least 1.
  const OnDemandOptions& options() const;

  /// Until when `name` cools down (after a denial or a failed issuance), if it does now. Memory
  /// only, microseconds: safe on the handshake path. Counts cooldown_rejections when it returns
  /// a time.
  std::optional<std::chrono::system_clock::time_point> cooling_down(std::string_view name);
  /// Starts (or restarts) the cooldown of `name` now; a no-op when options().cooldown is 0.
  void start_cooldown(std::string_view name);
  /// Makes `name` cool down until `until` (a cooldown another instance recorded in shared
  /// storage); a no-op when it already cools down longer, or `until` has passed.
  void cool_down_until(std::string_view name, std::chrono::system_clock::time_point until);
  /// Ends the cooldown of `name`, e.g. after it got a certificate.
  void clear_cooldown(std::string_view name);

  /// Whether `name` may get a certificate. Without ask_url: Allowed, not counted as an ask.
  /// Otherwise a remembered answer while fresh, else a blocking GET
  /// <ask_url>?domain=<name>[&ip=<client_ip>] ('&' when ask_url holds a query; values
  /// percent-encoded; ip only with ask_include_ip and a non-empty `client_ip`). 2xx allows, any
  /// other status denies (redirects are not followed), a transport error, timeout or bad URL is
  /// Error. The answer is remembered for `Cache-Control: max-age=N` (capped at 1 day), not at all
  /// for no-store or no-cache, else for allow_ttl, deny_ttl or min(deny_ttl, 10 s). At most
  /// max_concurrent_asks calls run at once; other callers wait up to ask_timeout for a slot, and
  /// when max_waiting_asks already wait, get QueueFull at once; so does a `client_ip` that
  /// already has max_asks_per_client asks of its own running or waiting. Concurrent asks for one
  /// name share one call. A Denied or Error answer from a call starts the cooldown. Never throws.
  PermissionAnswer ask(std::string_view name, std::string_view client_ip = {});
  /// Forgets the remembered answer for `name` (renewals re-ask); its cooldown stays.
  void forget(std::string_view name);

  /// Takes one token from the global issuance budget, a token bucket holding `burst` tokens that
  /// starts full and refills at burst per interval. False (counted as budget_rejections) when it
  /// is empty; always true when options().interval is 0.
  bool take_issuance_budget();

  /// The counters now; each is read atomically, not all at one instant.
  OnDemandStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Rate-limits repetitive log lines so that a storm cannot flood the log: at most `per_window`
/// lines pass per `window` (a window opens with the first line after the previous one ended).
/// The first line passed after suppressed ones is prefixed "(N similar messages suppressed) ".
/// Thread-safe; the sink is called outside the lock, and whatever it throws propagates.
class SampledLog {
 public:
  /// `clock` as for OnDemandPolicy; empty means system_clock::now.
  SampledLog(std::function<void(std::string_view)> sink, std::size_t per_window = 10,
             std::chrono::milliseconds window = std::chrono::seconds(1), pki::Clock clock = {});

  /// Passes `line` to the sink, or counts it as suppressed.
  void operator()(std::string_view line);
  /// How many lines were suppressed so far, in total.
  std::uint64_t suppressed() const;

 private:
  std::function<void(std::string_view)> sink_;
  const std::size_t per_window_;
  const std::chrono::milliseconds window_;
  pki::Clock clock_;
  mutable std::mutex mutex_;
  /// When the current window opened; none before the first line.
  std::optional<std::chrono::system_clock::time_point> window_start_;
  std::size_t passed_in_window_ = 0;
  std::uint64_t pending_ = 0;  ///< suppressed since the last line passed
  std::uint64_t suppressed_ = 0;
};

}  // namespace acmetool::serve
