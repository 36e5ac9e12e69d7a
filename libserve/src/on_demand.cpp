#include "acmetool/serve/on_demand.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <list>
#include <unordered_map>
#include <utility>
#include <vector>

#include "acmetool/acme/http.h"
#include "acmetool/serve/cert_cache.h"

namespace acmetool::serve {
namespace {

using std::chrono::nanoseconds;
using std::chrono::seconds;
using std::chrono::system_clock;
using TimePoint = system_clock::time_point;

// Caddy caps nothing, but an endpoint's max-age should not pin a decision for longer than an
// operator would wait for a changed allow list to apply.
constexpr seconds kMaxCacheLifetime{24 * 3600};
// A transport error says nothing about the name: retry soon, but not on every handshake.
constexpr seconds kMaxErrorLifetime{10};
constexpr TimePoint kNever = TimePoint::min();

// now + d, saturating: a cooldown of centuries must not wrap around into the past.
TimePoint later(TimePoint now, nanoseconds d) {
  const auto step = std::chrono::duration_cast<system_clock::duration>(d);
  return step > TimePoint::max() - now ? TimePoint::max() : now + step;
}

char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// <ask_url>?domain=<name>[&ip=<ip>]. A fragment is never sent, so the query goes before it.
std::string ask_request_url(std::string_view ask_url, std::string_view name, std::string_view ip) {
  std::string url(ask_url.substr(0, ask_url.find('#')));
  if (url.find('?') == std::string::npos) {
    url += '?';
  } else if (url.back() != '?' && url.back() != '&') {
    url += '&';
  }
  url += "domain=" + acme::url_query_value(name);
  if (!ip.empty()) url += "&ip=" + acme::url_query_value(ip);
  return url;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](char x, char y) { return ascii_lower(x) == ascii_lower(y); });
}

// How long the response's Cache-Control fields (RFC 9111 §5.2.2) let us remember it: nullopt
// when they say nothing, 0 for no-store or no-cache, else max-age capped at a day. An invalid
// max-age counts as stale (RFC 9111 §4.2.1).
std::optional<seconds> cache_lifetime(const acme::HttpResponse& response) {
  std::optional<seconds> lifetime;
  for (const std::string& field : response.headers_named("cache-control")) {
    std::string_view rest = field;
    while (!rest.empty()) {
      const std::size_t comma = rest.find(',');
      const std::string_view directive = trim(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      const std::size_t equals = directive.find('=');
      const std::string_view key = trim(directive.substr(0, equals));
      if (iequals(key, "no-store") || iequals(key, "no-cache")) return seconds(0);
      if (!iequals(key, "max-age") || lifetime) continue;
      std::string_view value =
          equals == std::string_view::npos ? "" : trim(directive.substr(equals + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
        value = value.substr(1, value.size() - 2);
      long long n = 0;
      bool valid = !value.empty();
      for (const char c : value) {
        if (c < '0' || c > '9') valid = false;
        if (valid && n <= kMaxCacheLifetime.count()) n = n * 10 + (c - '0');
      }
      lifetime = valid ? std::min(seconds(n), kMaxCacheLifetime) : seconds(0);
    }
  }
  return lifetime;
}

// What is remembered about one name.
struct Memory {
  std::optional<Permission> verdict;  // none: no remembered answer
  long status = 0;                    // the endpoint's status; 0 for Error
  TimePoint answer_expires = kNever;
  TimePoint cooldown_until = kNever;
  std::list<const std::string*>::iterator age;  // position in Impl::ages
};

// What one call to the ask endpoint brought.
struct CallResult {
  PermissionAnswer answer;
  long status = 0;                  // 0 when no response came
  std::optional<seconds> lifetime;  // from Cache-Control
};

// One ask call in progress; callers asking for the same name wait for its answer.
struct Flight {
  std::condition_variable finished;
  bool done = false;
  PermissionAnswer answer;
};

}  // namespace

struct OnDemandPolicy::Impl {
  struct Counters {
    std::atomic<std::uint64_t> ask_calls{0}, ask_allowed{0}, ask_denied{0}, ask_errors{0},
        ask_cache_hits{0}, ask_queue_full{0}, cooldown_rejections{0}, budget_rejections{0}, ask_client_limited{0};
  };

  OnDemandOptions options;
  pki::Clock clock;
  Counters counters;

  std::mutex mutex;  // guards everything below up to the budget
  std::unordered_map<std::string, Memory> memory;
  // The keys of `memory`, written longest ago first (node keys stay put when the map rehashes).
  std::list<const std::string*> ages;
  std::unordered_map<std::string, std::shared_ptr<Flight>> flights;
  std::size_t in_flight = 0;
  std::size_t waiting = 0;
  std::unordered_map<std::string, std::size_t> per_client;  // asks running or waiting, by client address
  std::condition_variable slot_freed;
  std::vector<std::unique_ptr<acme::HttpClient>> idle_clients;  // at most max_concurrent_asks

  std::mutex budget_mutex;  // the issuance budget has its own lock: it is taken on another path
  nanoseconds budget_credit{0};
  TimePoint budget_updated;

  Impl(OnDemandOptions o, pki::Clock c) : options(std::move(o)), clock(std::move(c)) {
    if (!clock) clock = [] { return system_clock::now(); };
    options.max_concurrent_asks = std::max<std::size_t>(options.max_concurrent_asks, 1);
    if (options.max_asks_per_client == 0) {
      options.max_asks_per_client = std::max<std::size_t>(1, options.max_concurrent_asks / 4);
    }
    budget_credit = budget_capacity();
    budget_updated = clock();
  }

  // The budget in time units: one token is worth interval / burst of waiting.
  nanoseconds token_cost() const {
    return std::max(options.interval / std::max(options.burst, 1), nanoseconds(1));
  }
  nanoseconds budget_capacity() const { return token_cost() * std::max(options.burst, 1); }

  // The entry for `key`, created (and the oldest forgotten past capacity) if need be, and marked
  // as the one written last.
  Memory& remember_locked(const std::string& key) {
    auto [it, inserted] = memory.try_emplace(key);
    if (inserted) {
      it->second.age = ages.insert(ages.end(), &it->first);
    } else {
      ages.splice(ages.end(), ages, it->second.age);
    }
    while (options.memory_capacity != 0 && memory.size() > options.memory_capacity) {
      const std::string* oldest = ages.front();
      ages.pop_front();
      memory.erase(*oldest);
    }
    return it->second;
  }

  // Drops the entry when it no longer holds a fresh answer or a running cooldown.
  void drop_if_stale_locked(std::unordered_map<std::string, Memory>::iterator it, TimePoint now) {
    Memory& m = it->second;
    if (m.verdict && now >= m.answer_expires) m.verdict.reset();
    if (m.verdict || now < m.cooldown_until) return;
    ages.erase(m.age);
    memory.erase(it);
  }

  std::optional<PermissionAnswer> remembered_locked(const std::string& key, TimePoint now) {
    const auto it = memory.find(key);
    if (it == memory.end() || !it->second.verdict) return std::nullopt;
    if (now >= it->second.answer_expires) {
      drop_if_stale_locked(it, now);
      return std::nullopt;
    }
    const Memory& m = it->second;
    // Short enough for the small-string buffer: the hit path allocates nothing.
    return PermissionAnswer{
        *m.verdict, true,
        m.status == 0 ? std::string("cached error") : "cached " + std::to_string(m.status)};
  }

  // Takes an ask slot, waiting up to ask_timeout behind at most max_waiting_asks others.
  bool acquire_slot_locked(std::unique_lock<std::mutex>& lock) {
    const auto free = [this] { return in_flight < options.max_concurrent_asks; };
    if (!free()) {
      if (waiting >= options.max_waiting_asks) return false;
      ++waiting;
      const bool got = slot_freed.wait_for(lock, options.ask_timeout, free);
      --waiting;
      if (!got) return false;
    }
    ++in_flight;
    return true;
  }

  // Waits for another caller's call for the same name and shares its answer.
  PermissionAnswer join_locked(std::unique_lock<std::mutex>& lock, std::shared_ptr<Flight> flight) {
    flight->finished.wait(lock, [&] { return flight->done; });
    PermissionAnswer shared = flight->answer;
    shared.cached = true;
    auto& counter =
        shared.verdict == Permission::QueueFull ? counters.ask_queue_full : counters.ask_cache_hits;
    counter.fetch_add(1, std::memory_order_relaxed);
    return shared;
  }

  CallResult call(const std::string& name, std::string_view client_ip,
                  std::unique_ptr<acme::HttpClient>& client);
  void record_locked(const std::string& key, const CallResult& result);
};

// One GET to the ask endpoint. Leaves `client` null when it failed, so that it is not reused.
CallResult OnDemandPolicy::Impl::call(const std::string& name, std::string_view client_ip,
                                      std::unique_ptr<acme::HttpClient>& client) {
  const std::string url =
      ask_request_url(options.ask_url, name, options.ask_include_ip ? client_ip : "");
  counters.ask_calls.fetch_add(1, std::memory_order_relaxed);
  try {
    if (!client) {
      acme::HttpOptions http_options;
      http_options.ca_file = options.ca_file;
      http_options.connect_timeout = options.ask_timeout;
      client = acme::make_http_client(http_options);
    }
    acme::HttpRequest request;
    request.url = url;
    request.timeout = options.ask_timeout;
    const acme::HttpResponse response = client->send(request);
    const bool allowed = response.status >= 200 && response.status < 300;
    return {{allowed ? Permission::Allowed : Permission::Denied, false,
             "ask " + url + ": " + std::to_string(response.status)},
            response.status,
            cache_lifetime(response)};
  } catch (const acme::HttpError& e) {
    client.reset();
    // what() repeats "GET <url>: "; keep only the detail.
    std::string_view detail = e.what();
    if (const std::size_t at = detail.find(url + ": "); at != std::string_view::npos) {
      detail.remove_prefix(at + url.size() + 2);
    }
    return {{Permission::Error, false,
             "ask " + url + ": " + (e.timed_out() ? "timed out" : std::string(detail))}};
  } catch (const std::exception& e) {
    client.reset();
    return {{Permission::Error, false, "ask " + url + ": " + e.what()}};
  }
}

// Counts the call, remembers its answer and starts the cooldown after a denial or error.
void OnDemandPolicy::Impl::record_locked(const std::string& key, const CallResult& result) {
  const TimePoint now = clock();
  const Permission verdict = result.answer.verdict;
  seconds ttl{0};
  switch (verdict) {
    case Permission::Allowed:
      counters.ask_allowed.fetch_add(1, std::memory_order_relaxed);
      ttl = result.lifetime.value_or(options.allow_ttl);
      break;
    case Permission::Denied:
      counters.ask_denied.fetch_add(1, std::memory_order_relaxed);
      ttl = result.lifetime.value_or(options.deny_ttl);
      break;
    default:
      counters.ask_errors.fetch_add(1, std::memory_order_relaxed);
      ttl = std::min(options.deny_ttl, kMaxErrorLifetime);
      break;
  }
  if (ttl > seconds(0)) {
    Memory& m = remember_locked(key);
    m.verdict = verdict;
    m.status = result.status;
    m.answer_expires = later(now, ttl);
  }
  if (verdict != Permission::Allowed && options.cooldown > nanoseconds(0)) {
    remember_locked(key).cooldown_until = later(now, options.cooldown);
  }
}

OnDemandPolicy::OnDemandPolicy(OnDemandOptions options, pki::Clock clock)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(clock))) {}

OnDemandPolicy::~OnDemandPolicy() = default;

const OnDemandOptions& OnDemandPolicy::options() const { return impl_->options; }

std::optional<system_clock::time_point> OnDemandPolicy::cooling_down(std::string_view name) {
  if (impl_->options.cooldown <= nanoseconds(0)) return std::nullopt;
  const std::string key = normalise_server_name(name);
  const TimePoint now = impl_->clock();
  std::lock_guard lock(impl_->mutex);
  const auto it = impl_->memory.find(key);
  if (it == impl_->memory.end()) return std::nullopt;
  const TimePoint until = it->second.cooldown_until;
  if (now < until) {
    impl_->counters.cooldown_rejections.fetch_add(1, std::memory_order_relaxed);
    return until;
  }
  impl_->drop_if_stale_locked(it, now);
  return std::nullopt;
}

void OnDemandPolicy::start_cooldown(std::string_view name) {
  if (impl_->options.cooldown <= nanoseconds(0)) return;
  const std::string key = normalise_server_name(name);
  const TimePoint until = later(impl_->clock(), impl_->options.cooldown);
  std::lock_guard lock(impl_->mutex);
  impl_->remember_locked(key).cooldown_until = until;
}

void OnDemandPolicy::cool_down_until(std::string_view name, TimePoint until) {
  if (until <= impl_->clock()) return;
  const std::string key = normalise_server_name(name);
  std::lock_guard lock(impl_->mutex);
  Memory& entry = impl_->remember_locked(key);
  entry.cooldown_until = std::max(entry.cooldown_until, until);
}

void OnDemandPolicy::clear_cooldown(std::string_view name) {
  const std::string key = normalise_server_name(name);
  const TimePoint now = impl_->clock();
  std::lock_guard lock(impl_->mutex);
  const auto it = impl_->memory.find(key);
  if (it == impl_->memory.end()) return;
  it->second.cooldown_until = kNever;
  impl_->drop_if_stale_locked(it, now);
}

PermissionAnswer OnDemandPolicy::ask(std::string_view name, std::string_view client_ip) {
  Impl& impl = *impl_;
  if (impl.options.ask_url.empty()) return {Permission::Allowed, false, "no ask endpoint"};
  const std::string key = normalise_server_name(name);
  const TimePoint now = impl.clock();
  std::unique_lock lock(impl.mutex);
  if (auto remembered = impl.remembered_locked(key, now)) {
    impl.counters.ask_cache_hits.fetch_add(1, std::memory_order_relaxed);
    return std::move(*remembered);
  }
  if (const auto it = impl.flights.find(key); it != impl.flights.end()) {
    return impl.join_locked(lock, it->second);
  }
  // Fairness: a client address with its share of asks already running or waiting gets no more.
  const std::string client_address(client_ip);
  if (!client_address.empty()) {
    std::size_t& mine = impl.per_client[client_address];
    if (mine >= impl.options.max_asks_per_client) {
      impl.counters.ask_queue_full.fetch_add(1, std::memory_order_relaxed);
      impl.counters.ask_client_limited.fetch_add(1, std::memory_order_relaxed);
      return {Permission::QueueFull, false, "ask limit for client " + client_address};
    }
    ++mine;
  }
  const auto flight = std::make_shared<Flight>();
  impl.flights.emplace(key, flight);
  const auto finish = [&](PermissionAnswer answer) {
    if (!client_address.empty()) {
      if (const auto it = impl.per_client.find(client_address); it != impl.per_client.end() && --it->second == 0) {
        impl.per_client.erase(it);
      }
    }
    impl.flights.erase(key);
    flight->answer = answer;
    flight->done = true;
    flight->finished.notify_all();
    return answer;
  };
  if (!impl.acquire_slot_locked(lock)) {
    impl.counters.ask_queue_full.fetch_add(1, std::memory_order_relaxed);
    return finish({Permission::QueueFull, false, "ask queue full"});
  }
  std::unique_ptr<acme::HttpClient> client;
  if (!impl.idle_clients.empty()) {
    client = std::move(impl.idle_clients.back());
    impl.idle_clients.pop_back();
  }
  lock.unlock();

  CallResult result = impl.call(key, client_ip, client);

  lock.lock();
  --impl.in_flight;
  impl.slot_freed.notify_one();
  if (client) impl.idle_clients.push_back(std::move(client));
  impl.record_locked(key, result);
  return finish(std::move(result.answer));
}

void OnDemandPolicy::forget(std::string_view name) {
  const std::string key = normalise_server_name(name);
  const TimePoint now = impl_->clock();
  std::lock_guard lock(impl_->mutex);
  const auto it = impl_->memory.find(key);
  if (it == impl_->memory.end()) return;
  it->second.verdict.reset();
  impl_->drop_if_stale_locked(it, now);
}

bool OnDemandPolicy::take_issuance_budget() {
  Impl& impl = *impl_;
  if (impl.options.interval <= nanoseconds(0)) return true;
  const TimePoint now = impl.clock();
  std::lock_guard lock(impl.budget_mutex);
  // A clock that steps back refills nothing.
  if (now > impl.budget_updated) {
    const auto elapsed = std::chrono::duration_cast<nanoseconds>(now - impl.budget_updated);
    impl.budget_credit = std::min(impl.budget_credit + elapsed, impl.budget_capacity());
    impl.budget_updated = now;
  }
  if (impl.budget_credit < impl.token_cost()) {
    impl.counters.budget_rejections.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  impl.budget_credit -= impl.token_cost();
  return true;
}

OnDemandStats OnDemandPolicy::stats() const {
  const Impl::Counters& c = impl_->counters;
  constexpr auto kRelaxed = std::memory_order_relaxed;
  return {c.ask_calls.load(kRelaxed),           c.ask_allowed.load(kRelaxed),
          c.ask_denied.load(kRelaxed),          c.ask_errors.load(kRelaxed),
          c.ask_cache_hits.load(kRelaxed),      c.ask_queue_full.load(kRelaxed),
          c.cooldown_rejections.load(kRelaxed), c.budget_rejections.load(kRelaxed),
          c.ask_client_limited.load(kRelaxed)};
}

SampledLog::SampledLog(std::function<void(std::string_view)> sink, std::size_t per_window,
                       std::chrono::milliseconds window, pki::Clock clock)
    : sink_(std::move(sink)), per_window_(per_window), window_(window), clock_(std::move(clock)) {
  if (!clock_) clock_ = [] { return system_clock::now(); };
}

void SampledLog::operator()(std::string_view line) {
  const TimePoint now = clock_();
  std::uint64_t noted = 0;
  {
    std::lock_guard lock(mutex_);
    if (!window_start_ || now < *window_start_ || now - *window_start_ >= window_) {
      window_start_ = now;
      passed_in_window_ = 0;
    }
    if (passed_in_window_ >= per_window_) {
      ++pending_;
      ++suppressed_;
      return;
    }
    ++passed_in_window_;
    noted = std::exchange(pending_, 0);
  }
  if (noted == 0) {
    sink_(line);
  } else {
    sink_("(" + std::to_string(noted) + " similar messages suppressed) " + std::string(line));
  }
}

std::uint64_t SampledLog::suppressed() const {
  std::lock_guard lock(mutex_);
  return suppressed_;
}

}  // namespace acmetool::serve
