// Metrics: the snapshot of the sharded counters and the Prometheus text format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/).
#include "acmetool/serve/metrics.h"

#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <optional>
#include <sstream>
#include <system_error>
#include <utility>
#include <vector>

#include "acmetool/serve/cert_manager.h"

namespace acmetool::serve {

namespace {

std::string_view to_string(Protocol protocol) noexcept {
  return protocol == Protocol::Http2 ? "h2" : "h1";
}

std::string_view to_string(Scheme scheme) noexcept {
  return scheme == Scheme::Https ? "https" : "http";
}

std::string_view to_string(HandshakeOutcome outcome) noexcept {
  static constexpr std::string_view kNames[MetricsSnapshot::kOutcomes] = {
      "ok", "resumed", "unrecognized_name", "no_certificate", "not_tls", "failed", "timeout"};
  return kNames[static_cast<std::size_t>(outcome)];
}

}  // namespace

// ---- counters ----

namespace {

// Which slots live threads hold. A slot is released with release order and claimed with acquire
// order, so a thread taking over a slot sees every count its previous holder stored.
std::array<std::atomic<bool>, kExclusiveMetricsSlots> slots_taken{};

struct SlotClaim {
  std::size_t slot = kExclusiveMetricsSlots;
  SlotClaim() noexcept {
    for (std::size_t i = 0; i < slots_taken.size(); ++i) {
      if (!slots_taken[i].exchange(true, std::memory_order_acquire)) {
        slot = i;
        return;
      }
    }
  }
  ~SlotClaim() {
    if (slot < kExclusiveMetricsSlots) slots_taken[slot].store(false, std::memory_order_release);
  }
};

}  // namespace

std::size_t this_thread_metrics_slot() noexcept {
  thread_local const SlotClaim claim;
  return claim.slot;
}

namespace {

std::int64_t unix_ns(std::chrono::system_clock::time_point at) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(at.time_since_epoch()).count();
}

}  // namespace

ServerMetrics::ServerMetrics()
    : last_reload_success_ns_(unix_ns(std::chrono::system_clock::now())) {}

void ServerMetrics::record_reload(bool succeeded,
                                  std::chrono::system_clock::time_point at) noexcept {
  (succeeded ? reloads_succeeded_ : reloads_failed_).fetch_add(1, std::memory_order_relaxed);
  if (succeeded) last_reload_success_ns_.store(unix_ns(at), std::memory_order_relaxed);
  last_reload_succeeded_.store(succeeded, std::memory_order_relaxed);
}

MetricsSnapshot ServerMetrics::snapshot() const noexcept {
  constexpr auto kRelaxed = std::memory_order_relaxed;
  MetricsSnapshot out;
  std::array<std::uint64_t, MetricsSnapshot::kSchemes> closed{};
  for (const Shard& s : shards_) {
    // Closes are read before accepts, so a connection that comes and goes meanwhile cannot
    // make open negative.
    for (std::size_t i = 0; i < closed.size(); ++i) closed[i] += s.closed[i].load(kRelaxed);
  }
  for (const Shard& s : shards_) {
    for (std::size_t i = 0; i < s.requests.size(); ++i) {
      out.requests[i / MetricsSnapshot::kSchemes][i % MetricsSnapshot::kSchemes] +=
          s.requests[i].load(kRelaxed);
    }
    for (std::size_t i = 0; i < s.responses.size(); ++i) {
      out.responses[i] += s.responses[i].load(kRelaxed);
    }
    for (std::size_t i = 0; i < s.buckets.size(); ++i) {
      out.duration_buckets[i] += s.buckets[i].load(kRelaxed);
    }
    out.duration_sum_ns += s.duration_sum_ns.load(kRelaxed);
    out.response_bytes += s.response_bytes.load(kRelaxed);
    for (std::size_t i = 0; i < s.accepted.size(); ++i) {
      out.connections_accepted[i] += s.accepted[i].load(kRelaxed);
    }
    for (std::size_t i = 0; i < s.handshakes.size(); ++i) {
      out.handshakes[i] += s.handshakes[i].load(kRelaxed);
    }
  }
  for (std::size_t i = 0; i < closed.size(); ++i) {
    out.connections_open[i] =
        out.connections_accepted[i] > closed[i] ? out.connections_accepted[i] - closed[i] : 0;
  }
  out.reloads_succeeded = reloads_succeeded_.load(kRelaxed);
  out.reloads_failed = reloads_failed_.load(kRelaxed);
  out.last_reload_succeeded = last_reload_succeeded_.load(kRelaxed);
  out.last_reload_success = std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::nanoseconds(last_reload_success_ns_.load(kRelaxed))));
  return out;
}

std::uint64_t MetricsSnapshot::request_count(Protocol protocol, Scheme scheme) const noexcept {
  return requests[static_cast<std::size_t>(protocol)][static_cast<std::size_t>(scheme)];
}

std::uint64_t MetricsSnapshot::response_count(int status_class) const noexcept {
  return status_class >= 1 && status_class <= 5
             ? responses[static_cast<std::size_t>(status_class - 1)]
             : 0;
}

std::uint64_t MetricsSnapshot::handshake_count(HandshakeOutcome outcome) const noexcept {
  return handshakes[static_cast<std::size_t>(outcome)];
}

std::uint64_t MetricsSnapshot::duration_count() const noexcept {
  std::uint64_t count = 0;
  for (const std::uint64_t n : duration_buckets) count += n;
  return count;
}

// ---- the text format ----

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

// The shortest decimal that reads back as `value` ("0.005", "10", "1.5e-07"), as Go's client
// writes floats.
std::string format_double(double value) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

double seconds(std::uint64_t ns) { return static_cast<double>(ns) / 1e9; }

double unix_seconds(std::chrono::system_clock::time_point at) {
  return std::chrono::duration<double>(at.time_since_epoch()).count();
}

// One label pair, name="value", escaped.
std::string label(std::string_view name, std::string_view value) {
  return std::string(name) + "=\"" + escape_label_value(value) + "\"";
}

// The exposition text, a family at a time. HELP texts are ours and need no escaping.
class Exposition {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    text_ += "# HELP " + std::string(name) + " " + std::string(help) + "\n";
    text_ += "# TYPE " + std::string(name) + " " + std::string(type) + "\n";
  }
  void sample(std::string_view name, const std::string& labels, const std::string& value) {
    text_ += name;
    if (!labels.empty()) text_ += "{" + labels + "}";
    text_ += " " + value + "\n";
  }
  void sample(std::string_view name, const std::string& labels, std::uint64_t value) {
    sample(name, labels, std::to_string(value));
  }
  // A family with one unlabelled sample.
  void single(std::string_view name, std::string_view type, std::string_view help,
              const std::string& value) {
    family(name, type, help);
    sample(name, "", value);
  }
  void single(std::string_view name, std::string_view type, std::string_view help,
              std::uint64_t value) {
    single(name, type, help, std::to_string(value));
  }
  // A family with one label whose values are given with their samples.
  void by_label(std::string_view name, std::string_view type, std::string_view help,
                std::string_view label_name,
                std::initializer_list<std::pair<std::string_view, std::uint64_t>> samples) {
    family(name, type, help);
    for (const auto& [value, count] : samples) sample(name, label(label_name, value), count);
  }
  std::string take() { return std::move(text_); }

 private:
  std::string text_;
};

void render_requests(Exposition& out, const MetricsSnapshot& m) {
  constexpr std::string_view kName = "acmetool_http_requests_total";
  out.family(kName, "counter", "HTTP requests answered, by protocol and scheme.");
  for (const Protocol protocol : {Protocol::Http1, Protocol::Http2}) {
    for (const Scheme scheme : {Scheme::Http, Scheme::Https}) {
      out.sample(kName,
                 label("proto", to_string(protocol)) + "," + label("scheme", to_string(scheme)),
                 m.request_count(protocol, scheme));
    }
  }
  out.by_label("acmetool_http_responses_total", "counter", "HTTP responses sent, by status class.",
               "code_class",
               {{"1xx", m.responses[0]},
                {"2xx", m.responses[1]},
                {"3xx", m.responses[2]},
                {"4xx", m.responses[3]},
                {"5xx", m.responses[4]}});
}

void render_duration(Exposition& out, const MetricsSnapshot& m) {
  constexpr std::string_view kName = "acmetool_http_request_duration_seconds";
  out.family(kName, "histogram", "Time from a request's arrival until its response was written.");
  // Buckets are cumulative, and _count is the +Inf bucket, so the two always agree.
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < kDurationBucketsSeconds.size(); ++i) {
    cumulative += m.duration_buckets[i];
    out.sample("acmetool_http_request_duration_seconds_bucket",
               label("le", format_double(kDurationBucketsSeconds[i])), cumulative);
  }
  cumulative += m.duration_buckets.back();
  out.sample("acmetool_http_request_duration_seconds_bucket", label("le", "+Inf"), cumulative);
  out.sample("acmetool_http_request_duration_seconds_sum", "",
             format_double(seconds(m.duration_sum_ns)));
  out.sample("acmetool_http_request_duration_seconds_count", "", cumulative);
  out.single("acmetool_http_response_bytes_total", "counter", "HTTP response body bytes written.",
             m.response_bytes);
}

void render_connections(Exposition& out, const MetricsSnapshot& m) {
  out.by_label("acmetool_connections_accepted_total", "counter",
               "Connections accepted, by listener.", "listener",
               {{"http", m.connections_accepted[0]}, {"https", m.connections_accepted[1]}});
  out.by_label("acmetool_connections_open", "gauge", "Connections open now, by listener.",
               "listener", {{"http", m.connections_open[0]}, {"https", m.connections_open[1]}});
  constexpr std::string_view kName = "acmetool_tls_handshakes_total";
  out.family(kName, "counter", "TLS connections by how their handshake ended.");
  for (std::size_t i = 0; i < MetricsSnapshot::kOutcomes; ++i) {
    out.sample(kName, label("outcome", to_string(static_cast<HandshakeOutcome>(i))),
               m.handshakes[i]);
  }
}

void render_reloads(Exposition& out, const MetricsSnapshot& m) {
  out.by_label("acmetool_config_reloads_total", "counter", "Configuration reloads, by result.",
               "result", {{"succeeded", m.reloads_succeeded}, {"failed", m.reloads_failed}});
  out.single("acmetool_config_last_reload_successful", "gauge",
             "1 when the last configuration load or reload succeeded, else 0.",
             std::uint64_t{m.last_reload_succeeded ? 1u : 0u});
  out.single("acmetool_config_last_reload_success_timestamp_seconds", "gauge",
             "Unix time of the last successful configuration load.",
             format_double(unix_seconds(m.last_reload_success)));
}

void render_certificates(Exposition& out, const CertManagerStats& c) {
  out.single("acmetool_certificates_cached", "gauge", "Certificates in the cache.", c.cache_size);
  out.by_label(
      "acmetool_tls_certificate_lookups_total", "counter",
      "Certificate lookups for TLS handshakes, by result (rejected: unknown, invalid, denied, "
      "cooling down or over budget; failed: the issuance waited for failed).",
      "result",
      {{"cached", c.handshakes_cached},
       {"loaded", c.handshakes_loaded},
       {"obtained", c.handshakes_obtained},
       {"rejected", c.handshakes_rejected},
       {"failed", c.handshakes_failed}});
  out.single("acmetool_acme_orders_started_total", "counter",
             "Certificate issuances started (ACME orders and local CA issuances).",
             c.orders_started);
  out.by_label("acmetool_acme_orders_total", "counter",
               "Certificate issuances finished (ACME orders and local CA issuances), by result.",
               "result", {{"succeeded", c.orders_succeeded}, {"failed", c.orders_failed}});
  out.single("acmetool_certificate_renewals_total", "counter",
             "Cached certificates replaced by a renewal.", c.renewals);
  out.single("acmetool_ocsp_fetches_total", "counter",
             "OCSP responses fetched for stapling, failed or not.", c.ocsp_fetches);
  out.single("acmetool_ocsp_fetch_failures_total", "counter", "OCSP fetches that failed.",
             c.ocsp_failures);
}

void render_on_demand(Exposition& out, const OnDemandStats& d) {
  out.by_label("acmetool_on_demand_ask_requests_total", "counter",
               "Calls to the on-demand ask endpoint, by answer (error: no answer).", "result",
               {{"allowed", d.ask_allowed}, {"denied", d.ask_denied}, {"error", d.ask_errors}});
  out.single("acmetool_on_demand_ask_cache_hits_total", "counter",
             "On-demand permission checks answered without a call of their own.", d.ask_cache_hits);
  out.single("acmetool_on_demand_ask_queue_full_total", "counter",
             "On-demand permission checks refused because too many asks were waiting.",
             d.ask_queue_full);
  out.single("acmetool_on_demand_ask_client_limited_total", "counter",
             "On-demand permission checks refused because their client address had its share of asks.",
             d.ask_client_limited);
  out.single("acmetool_on_demand_cooldown_rejections_total", "counter",
             "On-demand names refused while cooling down after a denial or failure.",
             d.cooldown_rejections);
  out.single("acmetool_on_demand_budget_rejections_total", "counter",
             "On-demand issuances refused by the issuance budget.", d.budget_rejections);
}

// ---- process facts, from /proc ----

std::optional<std::string> read_line(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  return line;
}

// The fields of /proc/self/stat after "(comm)", which may itself hold spaces and parentheses;
// fields[0] is field 3 of proc(5), "state".
std::vector<std::string> self_stat_fields() {
  const auto line = read_line("/proc/self/stat");
  if (!line) return {};
  const std::size_t close = line->rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream in(line->substr(close + 1));
  std::vector<std::string> fields;
  for (std::string field; in >> field;) fields.push_back(field);
  return fields;
}

std::optional<std::uint64_t> to_number(std::string_view text) {
  std::uint64_t value = 0;
  const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
  if (result.ec != std::errc() || result.ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<std::uint64_t> boot_time_seconds() {
  std::ifstream in("/proc/stat");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("btime ")) return to_number(std::string_view(line).substr(6));
  }
  return std::nullopt;
}

void render_process_times(Exposition& out) {
  const std::vector<std::string> fields = self_stat_fields();
  const long ticks = ::sysconf(_SC_CLK_TCK);
  if (fields.size() < 20 || ticks <= 0) return;
  // proc(5): utime is field 14, stime 15, starttime 22 (clock ticks after boot).
  const auto utime = to_number(fields[14 - 3]), stime = to_number(fields[15 - 3]),
             start = to_number(fields[22 - 3]);
  const auto boot = boot_time_seconds();
  const double per_tick = 1.0 / static_cast<double>(ticks);
  if (utime && stime) {
    out.single("process_cpu_seconds_total", "counter",
               "User and system CPU time spent, in seconds.",
               format_double(static_cast<double>(*utime + *stime) * per_tick));
  }
  if (start && boot) {
    out.single("process_start_time_seconds", "gauge",
               "Start time of the process since the Unix epoch, in seconds.",
               format_double(static_cast<double>(*boot) + static_cast<double>(*start) * per_tick));
  }
}

void render_process_memory(Exposition& out) {
  // statm: size resident shared text lib data dt, in pages.
  const auto line = read_line("/proc/self/statm");
  if (!line) return;
  std::istringstream in(*line);
  std::uint64_t size = 0, resident = 0;
  if (!(in >> size >> resident)) return;
  const long page = ::sysconf(_SC_PAGESIZE);
  out.single("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
             resident * static_cast<std::uint64_t>(page > 0 ? page : 4096));
}

void render_process_fds(Exposition& out) {
  std::error_code ec;
  std::filesystem::directory_iterator it("/proc/self/fd", ec);
  if (ec) return;
  std::uint64_t count = 0;
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (ec) return;
    ++count;
  }
  // The listing includes the descriptor it was read through.
  out.single("process_open_fds", "gauge", "Number of open file descriptors.",
             count > 0 ? count - 1 : 0);
}

}  // namespace

std::string render_prometheus(const ServerMetrics& server, const CertManagerStats& certificates) {
  const MetricsSnapshot m = server.snapshot();
  Exposition out;
  render_requests(out, m);
  render_duration(out, m);
  render_connections(out, m);
  render_reloads(out, m);
  render_certificates(out, certificates);
  render_on_demand(out, certificates.on_demand);
  render_process_times(out);
  render_process_memory(out);
  render_process_fds(out);
  return out.take();
}

}  // namespace acmetool::serve
