// The metrics of `acmetool serve` (issue 8): counters the server bumps on its hot path, and their
// rendering in Prometheus' text exposition format 0.0.4 for the admin endpoint's /metrics (as
// Caddy serves caddy_http_requests_total and friends there). Names start with `acmetool_`.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace acmetool::serve {

struct CertManagerStats;  // cert_manager.h

/// The HTTP version a request came in on; label proto="h1" or "h2".
enum class Protocol { Http1, Http2 };
/// The kind of listener (and so of request): label scheme="http" or "https".
enum class Scheme { Http, Https };
/// How a TLS connection's handshake ended; label outcome="ok", "resumed", ...
enum class HandshakeOutcome {
  Ok,                ///< a full handshake completed
  Resumed,           ///< completed by resuming a session (ticket)
  UnrecognizedName,  ///< the name is unknown, invalid, denied or cooling down
  NoCertificate,     ///< the name is allowed but its certificate could not be had (issuance failed)
  NotTls,            ///< the client spoke plain HTTP (or garbage) to the TLS port
  Failed,            ///< OpenSSL or the ClientHello parser refused it, or the peer went away
  Timeout,           ///< the ClientHello or the handshake did not finish within the header timeout
};

/// Upper bounds of the request-duration histogram's buckets, in seconds: Prometheus' (and
/// Caddy's) default buckets. Observations above the last fall in the +Inf bucket only.
inline constexpr std::array<double, 11> kDurationBucketsSeconds = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

/// Every counter at one moment, summed over the recording threads. Values read while others
/// record may be a few requests apart from one another; all are exact once recording stops.
struct MetricsSnapshot {
  static constexpr std::size_t kProtocols = 2, kSchemes = 2, kClasses = 5, kOutcomes = 7;
  static constexpr std::size_t kBuckets = kDurationBucketsSeconds.size() + 1;  ///< + the +Inf one

  std::array<std::array<std::uint64_t, kSchemes>, kProtocols> requests{};  ///< [Protocol][Scheme]
  std::array<std::uint64_t, kClasses> responses{};                         ///< [0] 1xx ... [4] 5xx
  /// Requests whose duration fell in each bucket (not cumulative); the last is above 10 s.
  std::array<std::uint64_t, kBuckets> duration_buckets{};
  std::uint64_t duration_sum_ns = 0;
  std::uint64_t response_bytes = 0;
  std::array<std::uint64_t, kSchemes> connections_accepted{};  ///< [Scheme of the listener]
  std::array<std::uint64_t, kSchemes> connections_open{};
  std::array<std::uint64_t, kOutcomes> handshakes{};  ///< [HandshakeOutcome]
  std::uint64_t reloads_succeeded = 0;
  std::uint64_t reloads_failed = 0;
  bool last_reload_succeeded = true;
  std::chrono::system_clock::time_point last_reload_success;

  std::uint64_t request_count(Protocol protocol, Scheme scheme) const noexcept;
  std::uint64_t response_count(int status_class) const noexcept;  ///< 1 to 5; 0 otherwise
  std::uint64_t handshake_count(HandshakeOutcome outcome) const noexcept;
  /// Requests observed by the histogram: the sum of duration_buckets.
  std::uint64_t duration_count() const noexcept;
};

/// The recording slot of the calling thread: a number below kExclusiveMetricsSlots that no other
/// live thread holds, or kExclusiveMetricsSlots (shared) when all are taken. Claimed on a thread's
/// first recording, released when it exits. Used by ServerMetrics' inline recording methods.
inline constexpr std::size_t kExclusiveMetricsSlots = 32;
std::size_t this_thread_metrics_slot() noexcept;

/// The server's counters. Recording is lock-free and allocation-free, and costs a few
/// nanoseconds: each thread adds to a cache-line-aligned shard of its own (its slot) with relaxed
/// atomic loads and stores, no read-modify-write, since it is the shard's only writer; threads
/// beyond kExclusiveMetricsSlots share one shard with relaxed fetch_add. Every method is
/// thread-safe; the object must outlive every thread recording into it.
class ServerMetrics {
 public:
  /// Counts the configuration in force now as the last successful load: make it at the first.
  ServerMetrics();
  ServerMetrics(const ServerMetrics&) = delete;
  ServerMetrics& operator=(const ServerMetrics&) = delete;

  /// One answered request: its version, scheme, status (outside 100–599: no response class), the
  /// time from its arrival until its response was written, and the body bytes written.
  void record_request(Protocol protocol, Scheme scheme, int status,
                      std::chrono::nanoseconds duration, std::uint64_t bytes) noexcept;
  /// A connection accepted on an HTTP or HTTPS listener; pair each with record_connection_closed.
  void record_connection_opened(Scheme listener) noexcept { add(&Shard::accepted, listener); }
  /// That connection is gone (whatever the reason).
  void record_connection_closed(Scheme listener) noexcept { add(&Shard::closed, listener); }
  void record_handshake(HandshakeOutcome outcome) noexcept { add(&Shard::handshakes, outcome); }
  /// A configuration reload that succeeded (the new one is in force from `at`) or failed.
  void record_reload(bool succeeded, std::chrono::system_clock::time_point at =
                                         std::chrono::system_clock::now()) noexcept;

  MetricsSnapshot snapshot() const noexcept;

 private:
  using Counter = std::atomic<std::uint64_t>;
  struct alignas(64) Shard {
    std::array<Counter, MetricsSnapshot::kProtocols * MetricsSnapshot::kSchemes> requests{};
    std::array<Counter, MetricsSnapshot::kClasses> responses{};
    std::array<Counter, MetricsSnapshot::kBuckets> buckets{};
    Counter duration_sum_ns{0};
    Counter response_bytes{0};
    std::array<Counter, MetricsSnapshot::kSchemes> accepted{}, closed{};
    std::array<Counter, MetricsSnapshot::kOutcomes> handshakes{};
  };
  // The calling thread's shard and how to add to it.
  struct Writer {
    Shard& shard;
    bool exclusive;
    void add(Counter& counter, std::uint64_t n = 1) const noexcept {
      if (exclusive) {
        counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
      } else {
        counter.fetch_add(n, std::memory_order_relaxed);
      }
    }
  };

  template <class Enum>
  static constexpr std::size_t index(Enum value) noexcept {
    return static_cast<std::size_t>(value);
  }
  // Which bucket `ns` falls in: the first whose bound it does not exceed (Prometheus' "le").
  static std::size_t bucket_of(std::int64_t ns) noexcept;
  Writer writer() noexcept {
    const std::size_t slot = this_thread_metrics_slot();
    return {shards_[slot], slot < kExclusiveMetricsSlots};
  }
  template <class Array, class Enum>
  void add(Array Shard::*array, Enum value) noexcept {
    const Writer w = writer();
    w.add((w.shard.*array)[index(value)]);
  }

  std::array<Shard, kExclusiveMetricsSlots + 1> shards_;  // the last one is shared
  Counter reloads_succeeded_{0}, reloads_failed_{0};
  std::atomic<bool> last_reload_succeeded_{true};
  std::atomic<std::int64_t> last_reload_success_ns_{0};  // since the Unix epoch
};

// Inline so that recording costs a few relaxed additions at the call site.
inline std::size_t ServerMetrics::bucket_of(std::int64_t ns) noexcept {
  static constexpr std::array<std::int64_t, kDurationBucketsSeconds.size()> kBoundsNs = {
      5'000'000,   10'000'000,    25'000'000,    50'000'000,    100'000'000,   250'000'000,
      500'000'000, 1'000'000'000, 2'500'000'000, 5'000'000'000, 10'000'000'000};
  std::size_t i = 0;
  while (i < kBoundsNs.size() && ns > kBoundsNs[i]) ++i;
  return i;
}

inline void ServerMetrics::record_request(Protocol protocol, Scheme scheme, int status,
                                          std::chrono::nanoseconds duration,
                                          std::uint64_t bytes) noexcept {
  const Writer w = writer();
  w.add(w.shard.requests[index(protocol) * MetricsSnapshot::kSchemes + index(scheme)]);
  if (status >= 100 && status <= 599) {
    w.add(w.shard.responses[static_cast<std::size_t>(status / 100 - 1)]);
  }
  const std::int64_t ns = duration.count() > 0 ? static_cast<std::int64_t>(duration.count()) : 0;
  w.add(w.shard.buckets[bucket_of(ns)]);
  w.add(w.shard.duration_sum_ns, static_cast<std::uint64_t>(ns));
  w.add(w.shard.response_bytes, bytes);
}

/// Counts a connection's life: opened on construction, closed on destruction. Lives in the
/// connection's coroutine frame, so every exit path closes it exactly once.
class ConnectionMetric {
 public:
  ConnectionMetric(ServerMetrics& metrics, Scheme listener) noexcept
      : metrics_(metrics), listener_(listener) {
    metrics_.record_connection_opened(listener_);
  }
  ~ConnectionMetric() { metrics_.record_connection_closed(listener_); }
  ConnectionMetric(const ConnectionMetric&) = delete;
  ConnectionMetric& operator=(const ConnectionMetric&) = delete;

 private:
  ServerMetrics& metrics_;
  Scheme listener_;
};

/// The Content-Type of render_prometheus()'s text.
inline constexpr std::string_view kPrometheusContentType =
    "text/plain; version=0.0.4; charset=utf-8";

/// Every metric of `server` and `certificates`, plus the process' own (process_start_time_seconds,
/// process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds, read from /proc;
/// one that cannot be read is left out), in the text exposition format 0.0.4: for each family a
/// # HELP and a # TYPE line, then its samples; histogram buckets cumulative with le="+Inf" equal
/// to _count. Allocates; meant for a scrape every few seconds, not the hot path.
std::string render_prometheus(const ServerMetrics& server, const CertManagerStats& certificates);

/// `value` escaped for a label value between double quotes: backslash, double quote and line
/// feed become \\, \" and \n (the format's only escapes).
std::string escape_label_value(std::string_view value);

}  // namespace acmetool::serve
