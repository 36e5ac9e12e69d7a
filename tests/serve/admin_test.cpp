// Metrics and the admin endpoint (issue 8): the server's counters, their Prometheus text (parsed
// back line by line), Caddy's admin listen addresses, and the endpoint itself on 127.0.0.1 and
// a Unix socket, spoken to with raw sockets.
#include "acmetool/serve/admin.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <latch>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "acmetool/pki/unique_fd.h"
#include "acmetool/serve/cert_manager.h"
#include "acmetool/serve/error.h"
#include "acmetool/serve/metrics.h"
#include "process.h"
#include "raw_socket.h"

namespace serve = acmetool::serve;
using acmetool::pki::UniqueFd;
using acmetool::test::connect_tcp;
using acmetool::test::connect_unix;
using acmetool::test::read_until_closed;
using acmetool::test::send_all;
using serve::AdminAddress;
using serve::AdminServer;
using serve::AdminServerOptions;
using serve::HandshakeOutcome;
using serve::Protocol;
using serve::Scheme;
using serve::ServerMetrics;
using namespace std::chrono_literals;

namespace {

// ---- the exposition text, parsed back ----

// One sample line: name{labels} value.
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  std::string value;
};

// Reads a quoted label value at `text[i]` (just after the opening quote), undoing the escapes.
std::string read_label_value(const std::string& text, std::size_t& i) {
  std::string value;
  for (; i < text.size() && text[i] != '"'; ++i) {
    if (text[i] != '\\') {
      value += text[i];
      continue;
    }
    const char next = text.at(++i);
    value += next == 'n' ? '\n' : next;
  }
  REQUIRE(i < text.size());
  ++i;  // the closing quote
  return value;
}

Sample parse_sample(const std::string& line) {
  Sample sample;
  std::size_t i = line.find_first_of("{ ");
  REQUIRE(i != std::string::npos);
  sample.name = line.substr(0, i);
  if (line[i] == '{') {
    ++i;
    while (line.at(i) != '}') {
      const std::size_t eq = line.find("=\"", i);
      REQUIRE(eq != std::string::npos);
      const std::string name = line.substr(i, eq - i);
      i = eq + 2;
      sample.labels[name] = read_label_value(line, i);
      if (line.at(i) == ',') ++i;
    }
    ++i;
  }
  REQUIRE(line.at(i) == ' ');
  sample.value = line.substr(i + 1);
  return sample;
}

// The text as families: checks the format's rules on the way (HELP then TYPE before any sample
// of a family, families not repeated, counters named _total, a newline at the end).
struct Exposition {
  std::map<std::string, std::string> types;  // family -> counter, gauge, histogram
  std::vector<Sample> samples;

  // The value of the one sample named `name` with exactly `labels`.
  std::string value(const std::string& name,
                    const std::map<std::string, std::string>& labels = {}) const {
    for (const Sample& s : samples) {
      if (s.name == name && s.labels == labels) return s.value;
    }
    FAIL("no sample " << name);
    return "";
  }
  std::uint64_t count(const std::string& name,
                      const std::map<std::string, std::string>& labels = {}) const {
    return std::stoull(value(name, labels));
  }
};

std::string family_of(const std::string& sample, const std::map<std::string, std::string>& types) {
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string s = suffix;
    if (sample.size() > s.size() && sample.ends_with(s)) {
      const std::string base = sample.substr(0, sample.size() - s.size());
      if (types.count(base) && types.at(base) == "histogram") return base;
    }
  }
  return sample;
}

Exposition parse_exposition(const std::string& text) {
  REQUIRE(text.ends_with("\n"));
  Exposition out;
  std::istringstream in(text);
  std::string line, current, pending_help;
  while (std::getline(in, line)) {
    if (line.starts_with("# HELP ")) {
      pending_help = line.substr(7, line.find(' ', 7) - 7);
      REQUIRE(line.size() > 7 + pending_help.size() + 1);  // some help text
    } else if (line.starts_with("# TYPE ")) {
      std::istringstream fields(line.substr(7));
      std::string name, type;
      fields >> name >> type;
      INFO(line);
      REQUIRE(name == pending_help);
      REQUIRE(out.types.count(name) == 0);
      REQUIRE((type == "counter" || type == "gauge" || type == "histogram"));
      if (type == "counter") REQUIRE(name.ends_with("_total"));
      out.types[name] = type;
      current = name;
    } else {
      INFO(line);
      Sample sample = parse_sample(line);
      REQUIRE(family_of(sample.name, out.types) == current);
      out.samples.push_back(std::move(sample));
    }
  }
  return out;
}

// Checks the histogram `name`: buckets in increasing le order, cumulative counts never falling,
// +Inf last and equal to _count. Returns the cumulative counts by le.
std::vector<std::pair<std::string, std::uint64_t>> check_histogram(const Exposition& e,
                                                                   const std::string& name) {
  std::vector<std::pair<std::string, std::uint64_t>> buckets;
  for (const Sample& s : e.samples) {
    if (s.name == name + "_bucket") buckets.emplace_back(s.labels.at("le"), std::stoull(s.value));
  }
  REQUIRE(buckets.size() == serve::kDurationBucketsSeconds.size() + 1);
  for (std::size_t i = 0; i + 1 < buckets.size(); ++i) {
    CHECK(std::stod(buckets[i].first) == serve::kDurationBucketsSeconds[i]);
    CHECK(buckets[i].second <= buckets[i + 1].second);
  }
  CHECK(buckets.back().first == "+Inf");
  CHECK(buckets.back().second == e.count(name + "_count"));
  return buckets;
}

serve::CertManagerStats numbered_stats() {
  serve::CertManagerStats s;
  s.handshakes_cached = 101, s.handshakes_loaded = 102, s.handshakes_obtained = 103;
  s.handshakes_rejected = 104, s.handshakes_failed = 105;
  s.orders_started = 106, s.orders_succeeded = 107, s.orders_failed = 108, s.renewals = 109;
  s.ocsp_fetches = 110, s.ocsp_failures = 111, s.cache_size = 112;
  s.on_demand.ask_calls = 113, s.on_demand.ask_allowed = 114, s.on_demand.ask_denied = 115;
  s.on_demand.ask_errors = 116, s.on_demand.ask_cache_hits = 117, s.on_demand.ask_queue_full = 118;
  s.on_demand.cooldown_rejections = 119, s.on_demand.budget_rejections = 120;
  return s;
}

// ---- raw HTTP over TCP and Unix sockets ----

struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

Response parse_response(const std::string& raw) {
  Response r;
  const std::size_t end = raw.find("\r\n\r\n");
  INFO(raw);
  REQUIRE(end != std::string::npos);
  std::istringstream head(raw.substr(0, end));
  std::string line;
  std::getline(head, line);
  REQUIRE(line.starts_with("HTTP/1.1 "));
  r.status = std::stoi(line.substr(9, 3));
  while (std::getline(head, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::size_t colon = line.find(':');
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
  }
  r.body = raw.substr(end + 4);
  return r;
}

Response exchange(UniqueFd fd, const std::string& request) {
  send_all(fd.get(), request);
  return parse_response(read_until_closed(fd.get(), 10s));
}

// A request for `target` with the given head lines ("Host: x\r\n" and such).
std::string request(const std::string& method, const std::string& target,
                    const std::string& lines) {
  return method + " " + target + " HTTP/1.1\r\n" + lines + "\r\n";
}

Response get(int port, const std::string& target, const std::string& host = "127.0.0.1",
             const std::string& extra = "") {
  return exchange(connect_tcp(port), request("GET", target, "Host: " + host + "\r\n" + extra));
}

// The message of the serve::Error that `f` throws.
template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const serve::Error& e) {
    return e.what();
  }
  FAIL("no serve::Error thrown");
  return "";
}

AdminServerOptions test_options(const std::string& listen = "127.0.0.1:0") {
  AdminServerOptions options;
  options.listen = listen;
  options.metrics = [] { return std::string("acmetool_test_total 7\n"); };
  options.healthy = [] { return true; };
  return options;
}

}  // namespace

// ---- counters ----

TEST_CASE("record_request counts requests by protocol and scheme and responses by status class",
          "[metrics]") {
  ServerMetrics metrics;
  metrics.record_request(Protocol::Http2, Scheme::Https, 200, 3ms, 1000);
  metrics.record_request(Protocol::Http2, Scheme::Https, 304, 1ms, 0);
  metrics.record_request(Protocol::Http1, Scheme::Http, 308, 1ms, 24);
  metrics.record_request(Protocol::Http1, Scheme::Https, 404, 1ms, 9);
  metrics.record_request(Protocol::Http1, Scheme::Https, 503, 1ms, 0);
  metrics.record_request(Protocol::Http1, Scheme::Https, 0, 1ms, 0);  // no response was sent
  const serve::MetricsSnapshot s = metrics.snapshot();
  CHECK(s.request_count(Protocol::Http2, Scheme::Https) == 2);
  CHECK(s.request_count(Protocol::Http2, Scheme::Http) == 0);
  CHECK(s.request_count(Protocol::Http1, Scheme::Http) == 1);
  CHECK(s.request_count(Protocol::Http1, Scheme::Https) == 3);
  CHECK(s.response_count(1) == 0);
  CHECK(s.response_count(2) == 1);
  CHECK(s.response_count(3) == 2);
  CHECK(s.response_count(4) == 1);
  CHECK(s.response_count(5) == 1);
  CHECK(s.response_bytes == 1033);
  CHECK(s.duration_count() == 6);
  CHECK(s.duration_sum_ns == 8'000'000);
}

TEST_CASE("request durations fall into Prometheus' default buckets, a bound counting as inside",
          "[metrics]") {
  struct Case {
    std::chrono::nanoseconds duration;
    std::size_t bucket;
  };
  const Case c = GENERATE(Case{0ns, 0}, Case{-5ns, 0}, Case{5ms, 0}, Case{5ms + 1ns, 1},
                          Case{100ms, 4}, Case{999ms, 7}, Case{1s, 7}, Case{2500ms, 8},
                          Case{10s, 10}, Case{10s + 1ns, 11}, Case{1h, 11});
  ServerMetrics metrics;
  metrics.record_request(Protocol::Http1, Scheme::Http, 200, c.duration, 0);
  const auto buckets = metrics.snapshot().duration_buckets;
  INFO("duration " << c.duration.count() << " ns");
  for (std::size_t i = 0; i < buckets.size(); ++i) CHECK(buckets[i] == (i == c.bucket ? 1u : 0u));
}

TEST_CASE("connections, handshakes and reloads are counted", "[metrics]") {
  ServerMetrics metrics;
  const auto made = std::chrono::system_clock::now();
  {
    const serve::ConnectionMetric first(metrics, Scheme::Https);
    const serve::ConnectionMetric second(metrics, Scheme::Https);
    metrics.record_connection_opened(Scheme::Http);
    CHECK(metrics.snapshot().connections_open[1] == 2);
    CHECK(metrics.snapshot().connections_open[0] == 1);
  }
  metrics.record_handshake(HandshakeOutcome::Ok);
  metrics.record_handshake(HandshakeOutcome::Ok);
  metrics.record_handshake(HandshakeOutcome::Resumed);
  metrics.record_handshake(HandshakeOutcome::UnrecognizedName);
  metrics.record_handshake(HandshakeOutcome::Timeout);
  const auto reloaded = std::chrono::system_clock::time_point(1'700'000'000s);
  metrics.record_reload(true, reloaded);
  metrics.record_reload(false);

  const serve::MetricsSnapshot s = metrics.snapshot();
  CHECK(s.connections_accepted[1] == 2);
  CHECK(s.connections_open[1] == 0);
  CHECK(s.connections_accepted[0] == 1);
  CHECK(s.connections_open[0] == 1);
  CHECK(s.handshake_count(HandshakeOutcome::Ok) == 2);
  CHECK(s.handshake_count(HandshakeOutcome::Resumed) == 1);
  CHECK(s.handshake_count(HandshakeOutcome::UnrecognizedName) == 1);
  CHECK(s.handshake_count(HandshakeOutcome::NoCertificate) == 0);
  CHECK(s.handshake_count(HandshakeOutcome::Timeout) == 1);
  CHECK(s.reloads_succeeded == 1);
  CHECK(s.reloads_failed == 1);
  CHECK_FALSE(s.last_reload_succeeded);
  CHECK(s.last_reload_success == reloaded);
  CHECK(ServerMetrics().snapshot().last_reload_success >= made);
}

TEST_CASE("four threads recording at once lose no count", "[metrics]") {
  ServerMetrics metrics;
  constexpr int kPerThread = 100'000;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&metrics, t] {
      const Protocol protocol = t % 2 ? Protocol::Http2 : Protocol::Http1;
      for (int i = 0; i < kPerThread; ++i) {
        metrics.record_request(protocol, Scheme::Https, 200 + (i % 2) * 200, 1ms, 3);
        metrics.record_handshake(HandshakeOutcome::Ok);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  const serve::MetricsSnapshot s = metrics.snapshot();
  CHECK(s.request_count(Protocol::Http1, Scheme::Https) == 2 * kPerThread);
  CHECK(s.request_count(Protocol::Http2, Scheme::Https) == 2 * kPerThread);
  CHECK(s.response_count(2) == 2 * kPerThread);
  CHECK(s.response_count(4) == 2 * kPerThread);
  CHECK(s.duration_buckets[0] == 4 * kPerThread);
  CHECK(s.duration_sum_ns == 4ull * kPerThread * 1'000'000);
  CHECK(s.response_bytes == 12ull * kPerThread);
  CHECK(s.handshake_count(HandshakeOutcome::Ok) == 4 * kPerThread);
}

TEST_CASE("threads beyond the exclusive slots share a shard and lose no count either",
          "[metrics]") {
  ServerMetrics metrics;
  constexpr std::size_t kThreads = serve::kExclusiveMetricsSlots + 16;
  constexpr int kPerThread = 10'000;
  // Every thread claims its slot before any finishes, so 16 of them must share.
  std::latch all_recording(kThreads);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      metrics.record_connection_opened(Scheme::Http);
      all_recording.arrive_and_wait();
      for (int i = 1; i < kPerThread; ++i) metrics.record_connection_opened(Scheme::Http);
      for (int i = 0; i < kPerThread - 1; ++i) metrics.record_connection_closed(Scheme::Http);
    });
  }
  for (std::thread& thread : threads) thread.join();
  const serve::MetricsSnapshot s = metrics.snapshot();
  CHECK(s.connections_accepted[0] == kThreads * kPerThread);
  CHECK(s.connections_open[0] == kThreads);
  // The slots were released: a new thread gets an exclusive one again.
  std::size_t slot = 0;
  std::thread([&slot] { slot = serve::this_thread_metrics_slot(); }).join();
  CHECK(slot < serve::kExclusiveMetricsSlots);
}

// ---- the text ----

TEST_CASE("render_prometheus writes every family with HELP and TYPE and a consistent histogram",
          "[metrics]") {
  ServerMetrics metrics;
  metrics.record_request(Protocol::Http2, Scheme::Https, 200, 3ms, 1500);
  metrics.record_request(Protocol::Http2, Scheme::Https, 200, 30ms, 500);
  metrics.record_request(Protocol::Http1, Scheme::Http, 308, 700ms, 0);
  metrics.record_request(Protocol::Http1, Scheme::Https, 502, 12s, 0);
  metrics.record_connection_opened(Scheme::Https);
  metrics.record_handshake(HandshakeOutcome::NoCertificate);
  metrics.record_reload(false);

  const Exposition e = parse_exposition(serve::render_prometheus(metrics, {}));
  CHECK(e.count("acmetool_http_requests_total", {{"proto", "h2"}, {"scheme", "https"}}) == 2);
  CHECK(e.count("acmetool_http_requests_total", {{"proto", "h1"}, {"scheme", "http"}}) == 1);
  CHECK(e.count("acmetool_http_requests_total", {{"proto", "h2"}, {"scheme", "http"}}) == 0);
  CHECK(e.count("acmetool_http_responses_total", {{"code_class", "2xx"}}) == 2);
  CHECK(e.count("acmetool_http_responses_total", {{"code_class", "5xx"}}) == 1);
  CHECK(e.count("acmetool_http_response_bytes_total") == 2000);
  CHECK(e.count("acmetool_connections_accepted_total", {{"listener", "https"}}) == 1);
  CHECK(e.count("acmetool_connections_open", {{"listener", "https"}}) == 1);
  CHECK(e.count("acmetool_tls_handshakes_total", {{"outcome", "no_certificate"}}) == 1);
  CHECK(e.count("acmetool_tls_handshakes_total", {{"outcome", "resumed"}}) == 0);
  CHECK(e.count("acmetool_config_reloads_total", {{"result", "failed"}}) == 1);
  CHECK(e.count("acmetool_config_last_reload_successful") == 0);
  CHECK(e.types.at("acmetool_http_request_duration_seconds") == "histogram");
  CHECK(e.types.at("acmetool_connections_open") == "gauge");

  const auto buckets = check_histogram(e, "acmetool_http_request_duration_seconds");
  CHECK(buckets[0] == std::pair<std::string, std::uint64_t>{"0.005", 1});
  CHECK(buckets[3] == std::pair<std::string, std::uint64_t>{"0.05", 2});
  CHECK(buckets[7] == std::pair<std::string, std::uint64_t>{"1", 3});
  CHECK(buckets[10] == std::pair<std::string, std::uint64_t>{"10", 3});
  CHECK(buckets[11] == std::pair<std::string, std::uint64_t>{"+Inf", 4});
  CHECK(std::stod(e.value("acmetool_http_request_duration_seconds_sum")) == Approx(12.733));
}

TEST_CASE("render_prometheus exposes every field of the certificate manager's stats", "[metrics]") {
  const Exposition e =
      parse_exposition(serve::render_prometheus(ServerMetrics(), numbered_stats()));
  const std::string lookups = "acmetool_tls_certificate_lookups_total";
  CHECK(e.count(lookups, {{"result", "cached"}}) == 101);
  CHECK(e.count(lookups, {{"result", "loaded"}}) == 102);
  CHECK(e.count(lookups, {{"result", "obtained"}}) == 103);
  CHECK(e.count(lookups, {{"result", "rejected"}}) == 104);
  CHECK(e.count(lookups, {{"result", "failed"}}) == 105);
  CHECK(e.count("acmetool_acme_orders_started_total") == 106);
  CHECK(e.count("acmetool_acme_orders_total", {{"result", "succeeded"}}) == 107);
  CHECK(e.count("acmetool_acme_orders_total", {{"result", "failed"}}) == 108);
  CHECK(e.count("acmetool_certificate_renewals_total") == 109);
  CHECK(e.count("acmetool_ocsp_fetches_total") == 110);
  CHECK(e.count("acmetool_ocsp_fetch_failures_total") == 111);
  CHECK(e.count("acmetool_certificates_cached") == 112);
  CHECK(e.types.at("acmetool_certificates_cached") == "gauge");
  // ask_calls (113) is the sum of the three answers, so it is not a family of its own.
  CHECK(e.count("acmetool_on_demand_ask_requests_total", {{"result", "allowed"}}) == 114);
  CHECK(e.count("acmetool_on_demand_ask_requests_total", {{"result", "denied"}}) == 115);
  CHECK(e.count("acmetool_on_demand_ask_requests_total", {{"result", "error"}}) == 116);
  CHECK(e.count("acmetool_on_demand_ask_cache_hits_total") == 117);
  CHECK(e.count("acmetool_on_demand_ask_queue_full_total") == 118);
  CHECK(e.count("acmetool_on_demand_cooldown_rejections_total") == 119);
  CHECK(e.count("acmetool_on_demand_budget_rejections_total") == 120);
}

TEST_CASE("render_prometheus reports the process from /proc", "[metrics]") {
  const ServerMetrics metrics;
  const Exposition before = parse_exposition(serve::render_prometheus(metrics, {}));
  int pipes[2][2];
  REQUIRE(::pipe(pipes[0]) == 0);
  REQUIRE(::pipe(pipes[1]) == 0);
  const Exposition after = parse_exposition(serve::render_prometheus(metrics, {}));
  for (auto& p : pipes) ::close(p[0]), ::close(p[1]);

  CHECK(after.count("process_open_fds") == before.count("process_open_fds") + 4);
  CHECK(after.count("process_resident_memory_bytes") > 1024 * 1024);
  const double started = std::stod(after.value("process_start_time_seconds"));
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  CHECK(started <= now + 1);
  CHECK(started > now - 24 * 3600);
  CHECK(std::stod(after.value("process_cpu_seconds_total")) >= 0);
  CHECK(after.types.at("process_cpu_seconds_total") == "counter");
}

TEST_CASE("label values escape backslashes, double quotes and line feeds", "[metrics]") {
  struct Case {
    std::string raw, escaped;
  };
  const Case c = GENERATE(Case{"h2", "h2"}, Case{R"(say "hi")", R"(say \"hi\")"},
                          Case{R"(C:\dir)", R"(C:\\dir)"}, Case{"two\nlines", R"(two\nlines)"},
                          Case{"\\n", R"(\\n)"}, Case{"é ✓", "é ✓"});
  const std::string escaped = serve::escape_label_value(c.raw);
  CHECK(escaped == c.escaped);
  const Sample back = parse_sample("m{v=\"" + escaped + "\"} 1");
  CHECK(back.labels.at("v") == c.raw);
}

// ---- admin listen addresses ----

TEST_CASE("parse_admin_address reads Caddy's listen addresses", "[admin]") {
  using Network = AdminAddress::Network;
  struct Case {
    std::string text;
    Network network;
    std::string host;
    int port;
    std::string path, canonical;
  };
  const Case c = GENERATE(
      Case{"localhost:2019", Network::Tcp, "localhost", 2019, "", "localhost:2019"},
      Case{"127.0.0.1:2019", Network::Tcp, "127.0.0.1", 2019, "", "127.0.0.1:2019"},
      Case{"[::1]:2019", Network::Tcp, "::1", 2019, "", "[::1]:2019"},
      Case{":2019", Network::Tcp, "", 2019, "", ":2019"},
      Case{"LocalHost:0", Network::Tcp, "localhost", 0, "", "localhost:0"},
      Case{"tcp/127.0.0.1:80", Network::Tcp, "127.0.0.1", 80, "", "127.0.0.1:80"},
      Case{"tcp4/:2019", Network::Tcp4, "", 2019, "", "tcp4/:2019"},
      Case{"tcp6/[::]:2019", Network::Tcp6, "::", 2019, "", "tcp6/[::]:2019"},
      Case{"[0:0::1]:65535", Network::Tcp, "::1", 65535, "", "[::1]:65535"},
      Case{"unix//run/admin.sock", Network::Unix, "", 0, "/run/admin.sock", "unix//run/admin.sock"},
      Case{"unix/admin.sock", Network::Unix, "", 0, "admin.sock", "unix/admin.sock"});
  const AdminAddress a = serve::parse_admin_address(c.text);
  INFO(c.text);
  CHECK(a.network == c.network);
  CHECK(a.host == c.host);
  CHECK(a.port == c.port);
  CHECK(a.path == c.path);
  CHECK(a.to_string() == c.canonical);
  CHECK_FALSE(a.mode.has_value());
}

TEST_CASE("parse_admin_address tells local, wildcard and socket modes apart", "[admin]") {
  CHECK(serve::parse_admin_address("localhost:2019").is_local());
  CHECK(serve::parse_admin_address("127.0.0.9:2019").is_local());
  CHECK(serve::parse_admin_address("[::1]:2019").is_local());
  CHECK(serve::parse_admin_address("unix//run/a.sock").is_local());
  CHECK_FALSE(serve::parse_admin_address("192.0.2.1:2019").is_local());
  CHECK_FALSE(serve::parse_admin_address(":2019").is_local());
  CHECK(serve::parse_admin_address(":2019").is_wildcard());
  CHECK(serve::parse_admin_address("0.0.0.0:2019").is_wildcard());
  CHECK_FALSE(serve::parse_admin_address("localhost:2019").is_wildcard());
  const AdminAddress with_mode = serve::parse_admin_address("unix//run/admin.sock|0660");
  CHECK(with_mode.path == "/run/admin.sock");
  REQUIRE(with_mode.mode.has_value());
  CHECK(*with_mode.mode ==
        (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
         std::filesystem::perms::group_read | std::filesystem::perms::group_write));
}

TEST_CASE("parse_admin_address names what is wrong with an address", "[admin]") {
  struct Case {
    std::string text, message;
  };
  const Case c = GENERATE(
      Case{"", "admin address: empty (for example localhost:2019)"},
      Case{"localhost", "admin address \"localhost\": missing port, as in localhost:2019"},
      Case{"[::1]", "admin address \"[::1]\": missing port, as in [::1]:2019"},
      Case{"::1:2019",
           "admin address \"::1:2019\": an IPv6 address needs brackets, as in [::1]:2019"},
      Case{"localhost:2019-2020",
           "a port range is not allowed: the admin endpoint listens on one port"},
      Case{"localhost:65536", "admin address \"localhost:65536\": bad port \"65536\" (0 to 65535)"},
      Case{"localhost:http", "bad port \"http\""}, Case{"localhost:", "bad port \"\""},
      Case{"admin.example:2019", "host \"admin.example\" is neither an IP address nor localhost"},
      Case{"[127.0.0.1]:2019", "brackets are for IPv6 addresses"},
      Case{"tcp4/[::1]:2019", "the address is of the other IP family than the network"},
      Case{"tcp6/127.0.0.1:2019", "the address is of the other IP family than the network"},
      Case{"udp/:2019", "unknown network \"udp\" (tcp, tcp4, tcp6 or unix)"},
      Case{"unix/", "no socket path"},
      Case{"unix//run/a.sock|rw", "bad socket mode \"rw\" (octal, like 0660)"},
      Case{"unix//run/a.sock|08", "bad socket mode \"08\""});
  INFO(c.text);
  CHECK_THAT(error_of([&] { serve::parse_admin_address(c.text); }),
             Catch::Matchers::Contains(c.message));
}

// ---- the endpoint ----

TEST_CASE("the admin endpoint serves /metrics and /health on 127.0.0.1", "[admin]") {
  std::atomic<bool> healthy{true};
  AdminServerOptions options = test_options();
  options.healthy = [&healthy] { return healthy.load(); };
  std::vector<std::string> logged;
  options.log = [&logged](std::string_view line) { logged.emplace_back(line); };
  AdminServer admin(options);
  admin.start();
  const int port = admin.port();
  REQUIRE(port > 0);
  CHECK(admin.address() == "127.0.0.1:" + std::to_string(port));
  CHECK(logged ==
        std::vector<std::string>{"admin endpoint listening on 127.0.0.1:" + std::to_string(port)});

  const Response metrics = get(port, "/metrics");
  CHECK(metrics.status == 200);
  CHECK(metrics.headers.at("content-type") == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(metrics.headers.at("connection") == "close");
  CHECK(metrics.body == "acmetool_test_total 7\n");
  CHECK(get(port, "/metrics?name[]=x").status == 200);

  const Response ok = get(port, "/health");
  CHECK(ok.status == 200);
  CHECK(ok.headers.at("content-type") == "application/json");
  CHECK(ok.body == R"({"status":"ok"})");
  healthy = false;
  const Response down = get(port, "/health");
  CHECK(down.status == 503);
  CHECK(down.body == R"({"status":"unavailable"})");

  const Response head =
      exchange(connect_tcp(port), request("HEAD", "/metrics", "Host: 127.0.0.1\r\n"));
  CHECK(head.status == 200);
  CHECK(head.headers.at("content-length") == "22");
  CHECK(head.body.empty());

  const Response missing = get(port, "/config/");
  CHECK(missing.status == 404);
  CHECK(missing.body == "{\"error\":\"not found: /config/\"}\n");
  const Response post =
      exchange(connect_tcp(port),
               request("POST", "/metrics", "Host: 127.0.0.1\r\nContent-Length: 2\r\n") + "{}");
  CHECK(post.status == 405);
  CHECK(post.headers.at("allow") == "GET, HEAD");
}

TEST_CASE("the admin endpoint answers 500 when collecting metrics fails", "[admin]") {
  AdminServerOptions options = test_options();
  options.metrics = []() -> std::string { throw std::runtime_error("no stats"); };
  options.healthy = nullptr;
  AdminServer admin(options);
  admin.start();
  const Response r = get(admin.port(), "/metrics");
  CHECK(r.status == 500);
  CHECK(r.body == "{\"error\":\"collecting metrics: no stats\"}\n");
  CHECK(get(admin.port(), "/health").status == 503);  // no health function: not healthy
}

TEST_CASE("the admin endpoint on a loopback address refuses foreign Host headers", "[admin]") {
  AdminServer admin(test_options());
  admin.start();
  const int port = admin.port();
  const std::string p = std::to_string(port);
  for (const std::string& host :
       std::vector<std::string>{"127.0.0.1", "127.0.0.1:" + p, "localhost", "LOCALHOST:" + p,
                                "[::1]:" + p, "::1", "localhost:1"}) {
    INFO("Host: " << host);
    CHECK(get(port, "/health", host).status == 200);
  }
  // DNS rebinding: a page at evil.example whose name now points at 127.0.0.1.
  for (const std::string& host : std::vector<std::string>{"evil.example", "evil.example:" + p,
                                                          "127.0.0.1.nip.io", "localhost:x", ""}) {
    INFO("Host: " << host);
    const Response r = get(port, "/metrics", host);
    CHECK(r.status == 403);
    CHECK(r.body.find("host not allowed") != std::string::npos);
  }
  CHECK(exchange(connect_tcp(port), "GET /health HTTP/1.0\r\n\r\n").status ==
        403);  // no Host at all
}

TEST_CASE("enforce_origin admits only the listed origins", "[admin]") {
  AdminServerOptions options = test_options();
  options.enforce_origin = true;
  options.origins = {"http://dashboard.example:8080", "localhost:3000"};
  AdminServer admin(options);
  admin.start();
  const int port = admin.port();

  const Response allowed =
      get(port, "/metrics", "127.0.0.1", "Origin: http://dashboard.example:8080\r\n");
  CHECK(allowed.status == 200);
  CHECK(allowed.headers.at("access-control-allow-origin") == "http://dashboard.example:8080");
  CHECK(get(port, "/metrics", "127.0.0.1", "Origin: https://localhost:3000\r\n").status ==
        200);  // any scheme
  CHECK(get(port, "/metrics", "127.0.0.1", "Referer: http://dashboard.example:8080/graphs?x=1\r\n")
            .status == 200);
  // The listed origins' hosts may also be named in Host (a dashboard proxying to us).
  CHECK(get(port, "/metrics", "dashboard.example:8080", "Origin: http://dashboard.example:8080\r\n")
            .status == 200);

  for (const std::string origin :
       {"Origin: https://dashboard.example:8080\r\n", "Origin: http://dashboard.example\r\n",
        "Origin: http://evil.example\r\n", "Origin: null\r\n", ""}) {
    INFO(origin);
    const Response r = get(port, "/metrics", "127.0.0.1", origin);
    CHECK(r.status == 403);
    CHECK(r.headers.count("access-control-allow-origin") == 0);
  }
}

TEST_CASE("enforce_origin without origins admits the listen address' own", "[admin]") {
  AdminServerOptions options = test_options();
  options.enforce_origin = true;
  AdminServer admin(options);
  admin.start();
  const int port = admin.port();
  const std::string p = std::to_string(port);
  CHECK(get(port, "/health", "127.0.0.1", "Origin: http://localhost:" + p + "\r\n").status == 200);
  CHECK(get(port, "/health", "127.0.0.1", "Origin: http://127.0.0.1:" + p + "\r\n").status == 200);
  CHECK(get(port, "/health", "127.0.0.1", "Origin: http://[::1]:" + p + "\r\n").status == 200);
  CHECK(get(port, "/health", "127.0.0.1", "Origin: http://localhost:1\r\n").status == 403);
  CHECK(get(port, "/health", "127.0.0.1").status == 403);
}

TEST_CASE("the admin endpoint on localhost listens on 127.0.0.1 and ::1", "[admin]") {
  AdminServer admin(test_options("localhost:0"));
  admin.start();
  const int port = admin.port();
  CHECK(admin.address() == "localhost:" + std::to_string(port));
  CHECK(exchange(connect_tcp(port, "127.0.0.1"), request("GET", "/health", "Host: localhost\r\n"))
            .status == 200);
  if (UniqueFd probe(::socket(AF_INET6, SOCK_STREAM, 0)); probe.get() >= 0) {
    CHECK(exchange(connect_tcp(port, "::1"), request("GET", "/health", "Host: [::1]\r\n")).status ==
          200);
  }
}

TEST_CASE("the admin endpoint listens on a Unix socket, replacing a stale socket file", "[admin]") {
  acmetool::test::TempDir dir;
  const std::string path = (dir.path() / "admin.sock").string();
  {
    // A socket file left behind by a process that died: bound, never unlinked.
    const UniqueFd stale(::socket(AF_UNIX, SOCK_STREAM, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    REQUIRE(::bind(stale.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  }
  AdminServer admin(test_options("unix/" + path + "|0600"));
  admin.start();
  CHECK(admin.port() == 0);
  CHECK(admin.address() == "unix/" + path);
  struct stat info {};
  REQUIRE(::stat(path.c_str(), &info) == 0);
  CHECK((info.st_mode & 0777) == 0600);
  // No Host check: a browser cannot reach a Unix socket, and curl --unix-socket sends any name.
  const Response r = exchange(connect_unix(path), request("GET", "/metrics", "Host: anything\r\n"));
  CHECK(r.status == 200);
  CHECK(r.body == "acmetool_test_total 7\n");

  AdminServer second(test_options("unix/" + path));
  CHECK(error_of([&] { second.start(); }) ==
        "admin endpoint: listening on unix/" + path + ": a server is already accepting on it");
  admin.stop();
  CHECK_FALSE(std::filesystem::exists(path));
}

TEST_CASE("an admin endpoint on a taken port fails naming the address", "[admin]") {
  AdminServer first(test_options());
  first.start();
  const std::string taken = "127.0.0.1:" + std::to_string(first.port());
  AdminServer second(test_options(taken));
  CHECK(error_of([&] { second.start(); }) ==
        "admin endpoint: listening on " + taken + ": Address already in use");
  CHECK(second.port() == 0);
  CHECK(get(first.port(), "/health").status == 200);  // the first one is unharmed
  CHECK_THROWS_AS(first.start(), serve::Error);       // and cannot be started twice
}

TEST_CASE("stop() returns promptly while a client holds an idle connection", "[admin]") {
  AdminServer admin(test_options());
  admin.start();
  const UniqueFd idle = connect_tcp(admin.port());
  send_all(idle.get(), "GET /metrics HTTP/1.1\r\n");  // half a head: the server waits for more
  const UniqueFd silent = connect_tcp(admin.port());
  // Both connections are accepted once a full request on a third is answered after them.
  CHECK(get(admin.port(), "/health").status == 200);

  const auto begin = std::chrono::steady_clock::now();
  admin.stop();
  const auto took = std::chrono::steady_clock::now() - begin;
  // The header timeout is 10 s: a stop that waited for it would take that long.
  CHECK(took < 2s);
  bool closed = false;
  CHECK(read_until_closed(idle.get(), 5s, &closed).empty());
  CHECK(closed);
  admin.stop();  // again: nothing to do
}

TEST_CASE("the admin endpoint bounds the request head, its time and the connections", "[admin]") {
  AdminServerOptions options = test_options();
  options.header_timeout = 300ms;
  options.max_connections = 2;
  AdminServer admin(options);
  admin.start();
  const int port = admin.port();

  SECTION("a head over 8 KiB is answered 431") {
    const std::string big = "Host: 127.0.0.1\r\nX-Filler: " + std::string(9000, 'a') + "\r\n";
    CHECK(exchange(connect_tcp(port), request("GET", "/metrics", big)).status == 431);
  }
  SECTION("a head not complete within the header timeout gets the connection closed") {
    const UniqueFd slow = connect_tcp(port);
    send_all(slow.get(), "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    bool closed = false;
    CHECK(read_until_closed(slow.get(), 10s, &closed).empty());
    CHECK(closed);
  }
  SECTION("connections beyond the limit are closed at once") {
    options.header_timeout = 10s;
    AdminServer roomy(options);
    roomy.start();
    UniqueFd first = connect_tcp(roomy.port());
    const UniqueFd second = connect_tcp(roomy.port());
    send_all(first.get(), "GET / HTTP/1.1\r\n");
    send_all(second.get(), "GET / HTTP/1.1\r\n");
    // The third is accepted and closed unanswered while both others wait.
    const UniqueFd third = connect_tcp(roomy.port());
    bool closed = false;
    CHECK(read_until_closed(third.get(), 5s, &closed).empty());
    CHECK(closed);
    first = UniqueFd();  // a slot frees once the server sees this close
    CHECK(acmetool::test::wait_until(
        [&] {
          UniqueFd fd = connect_tcp(roomy.port());
          send_all(fd.get(), request("GET", "/health", "Host: 127.0.0.1\r\n"));
          return read_until_closed(fd.get(), 5s).starts_with("HTTP/1.1 200");
        },
        5s));
  }
}
