// The upstream pool of reverse_proxy (issue 9). Behaviour follows Caddy's
// modules/caddyhttp/reverseproxy: selectionpolicies.go (policies), hosts.go (Available, Healthy,
// Full), healthchecks.go (countFailure, markHealthy/markUnhealthy) and reverseproxy.go
// (provisioning defaults, passive strikes, tryAgain).
#include "acmetool/serve/upstreams.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <deque>
#include <mutex>
#include <random>

#include "acmetool/caddyfile/config_routes.h"
#include "acmetool/serve/error.h"

namespace acmetool::serve {

namespace {

using TimePoint = std::chrono::steady_clock::time_point;

enum class Policy {
  Random,
  RandomChoose,
  RoundRobin,
  WeightedRoundRobin,
  LeastConn,
  First,
  IpHash,
  ClientIpHash,
  UriHash,
  Header,
  Query,
  Cookie
};

std::optional<Policy> policy_named(std::string_view name) {
  static const std::pair<std::string_view, Policy> kPolicies[] = {
      {"random", Policy::Random},
      {"random_choose", Policy::RandomChoose},
      {"round_robin", Policy::RoundRobin},
      {"weighted_round_robin", Policy::WeightedRoundRobin},
      {"least_conn", Policy::LeastConn},
      {"first", Policy::First},
      {"ip_hash", Policy::IpHash},
      {"client_ip_hash", Policy::ClientIpHash},
      {"uri_hash", Policy::UriHash},
      {"header", Policy::Header},
      {"query", Policy::Query},
      {"cookie", Policy::Cookie}};
  for (const auto& [policy_name, policy] : kPolicies) {
    if (policy_name == name) return policy;
  }
  return std::nullopt;
}

std::optional<int> parse_int(std::string_view text) {
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// caddyhttp.StatusCodeMatches: a one-digit entry is a class ("5xx" is stored as 5).
bool status_matches(int status, int wanted) {
  if (wanted < 100) return status >= wanted * 100 && status < (wanted + 1) * 100;
  return status == wanted;
}

// Per-upstream state: Caddy's Host plus the Upstream's active flag.
struct HostState {
  std::size_t in_flight = 0;
  std::deque<TimePoint> fail_expiries;  // ascending: each failure is forgotten at its time
  std::atomic<bool> healthy{true};      // written under the mutex, read without it by select()'s fast path
  ActiveHealthTally tally;
};

constexpr std::uint64_t kPrime1 = 0x9E3779B185EBCA87ULL;
constexpr std::uint64_t kPrime2 = 0xC2B2AE3D27D4EB4FULL;
constexpr std::uint64_t kPrime3 = 0x165667B19E3779F9ULL;
constexpr std::uint64_t kPrime4 = 0x85EBCA77C2B2AE63ULL;
constexpr std::uint64_t kPrime5 = 0x27D4EB2F165667C5ULL;

std::uint64_t rotl(std::uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

std::uint64_t read_le(const unsigned char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::uint64_t xxh_round(std::uint64_t acc, std::uint64_t input) {
  acc += input * kPrime2;
  return rotl(acc, 31) * kPrime1;
}

std::uint64_t xxh_merge(std::uint64_t acc, std::uint64_t value) {
  acc ^= xxh_round(0, value);
  return acc * kPrime1 + kPrime4;
}

}  // namespace

std::uint64_t xxhash64(std::string_view data) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const auto* end = p + data.size();
  std::uint64_t h = 0;
  if (data.size() >= 32) {
    std::uint64_t v[4] = {kPrime1 + kPrime2, kPrime2, 0, 0 - kPrime1};
    for (; end - p >= 32; p += 32) {
      for (int lane = 0; lane < 4; ++lane) v[lane] = xxh_round(v[lane], read_le(p + 8 * lane, 8));
    }
    h = rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18);
    for (std::uint64_t lane : v) h = xxh_merge(h, lane);
  } else {
    h = kPrime5;
  }
  h += data.size();
  for (; end - p >= 8; p += 8) h = rotl(h ^ xxh_round(0, read_le(p, 8)), 27) * kPrime1 + kPrime4;
  if (end - p >= 4) {
    h = rotl(h ^ (read_le(p, 4) * kPrime1), 23) * kPrime2 + kPrime3;
    p += 4;
  }
  for (; p < end; ++p) h = rotl(h ^ (*p * kPrime5), 11) * kPrime1;
  h ^= h >> 33;
  h *= kPrime2;
  h ^= h >> 29;
  h *= kPrime3;
  h ^= h >> 32;
  return h;
}

std::string cookie_hash(std::string_view secret, std::string_view dial) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  // A non-null key pointer even for the empty secret: HMAC() treats a null key specially.
  static const unsigned char kEmpty = 0;
  const void* key = secret.empty() ? static_cast<const void*>(&kEmpty) : secret.data();
  if (HMAC(EVP_sha256(), key, static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(dial.data()), dial.size(), mac,
           &mac_len) == nullptr) {
    throw Error("hashing sticky cookie for upstream " + std::string(dial));
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < mac_len; ++i) {
    hex += kHex[mac[i] >> 4];
    hex += kHex[mac[i] & 0xF];
  }
  return hex;
}

std::string sticky_cookie_header(const StickyCookie& cookie, bool secure) {
  std::string header = cookie.name + "=" + cookie.value + "; Path=/; HttpOnly";
  header += secure ? "; Secure; SameSite=None" : "; SameSite=Lax";
  return header;
}

bool apply_active_check(ActiveHealthTally& tally, bool healthy, bool check_passed,
                        int passes_needed, int fails_needed) {
  int& count = check_passed ? tally.passes : tally.fails;
  ++count;
  const int needed = check_passed ? passes_needed : fails_needed;
  if (count >= needed && healthy != check_passed) {
    tally = ActiveHealthTally{};
    return check_passed;
  }
  return healthy;
}

RetryPolicy RetryPolicy::from(const caddyfile::LoadBalancing& lb) {
  RetryPolicy policy;
  policy.retries = lb.retries.value_or(0);
  policy.try_duration = lb.try_duration.value_or(std::chrono::nanoseconds{0});
  policy.try_interval = lb.try_interval.value_or(std::chrono::nanoseconds{0});
  // reverseproxy.go Provision: a try_duration without an interval would spin the CPU.
  if (policy.try_duration.count() > 0 && policy.try_interval.count() == 0) {
    policy.try_interval = std::chrono::milliseconds(250);
  }
  return policy;
}

bool RetryPolicy::should_retry(int retries_done, TimePoint started_at, TimePoint now,
                               AttemptFailure failure, std::string_view method) const {
  if (try_duration.count() == 0 && retries == 0) return false;
  if (try_duration.count() > 0 && now - started_at >= try_duration) return false;
  if (retries > 0 && retries_done >= retries) return false;
  // After a connection was made the upstream may have acted on the request; without
  // retry_match Caddy retries only GET then. No connection means nothing was sent.
  if (failure == AttemptFailure::RoundTrip && method != "GET") return false;
  return true;
}

struct UpstreamPool::Impl {
  std::vector<std::string> dials;
  Policy policy = Policy::Random;
  std::string key;     // header field, query key or cookie name
  std::string secret;  // cookie secret
  std::size_t choose = 2;
  std::vector<int> weights;
  int total_weight = 0;

  bool passive_enabled = false;
  std::chrono::nanoseconds fail_duration{0};
  int max_fails = 1;
  std::size_t max_requests = 0;
  std::vector<int> unhealthy_status;
  std::chrono::nanoseconds unhealthy_latency{0};
  int active_passes = 1;
  int active_fails = 1;
  // Fixed at construction: whether anything reads the requests in flight (least_conn,
  // random_choose, unhealthy_request_count); without, they are not counted.
  bool counts_requests = false;
  // One upstream whose availability is its active health flag alone, and no sticky cookie to
  // set: every policy picks it when healthy, so select() needs no lock.
  bool lock_free = false;

  Clock clock;
  mutable std::mutex mutex;
  std::mt19937_64 rng;
  std::uint32_t robin = 0;
  std::uint32_t weighted_index = 0;
  std::vector<HostState> hosts;

  void configure_policy(const caddyfile::LoadBalancing& lb);
  void count_failure(HostState& host);
  int fails_locked(std::size_t index) const;
  bool available_locked(std::size_t index) const;
  HostState& host(std::size_t index);
  const HostState& host(std::size_t index) const;

  std::size_t random_below(std::size_t n) {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng);
  }
  std::optional<std::size_t> pick(const SelectionRequest& request,
                                  std::optional<StickyCookie>* set_cookie);
  std::optional<std::size_t> pick_random(const std::vector<bool>& up);
  std::optional<std::size_t> pick_random_choose(const std::vector<bool>& up);
  std::optional<std::size_t> pick_least_conn(const std::vector<bool>& up);
  std::optional<std::size_t> pick_round_robin(const std::vector<bool>& up);
  std::optional<std::size_t> pick_weighted(const std::vector<bool>& up);
  std::optional<std::size_t> pick_cookie(const std::vector<bool>& up,
                                         const SelectionRequest& request,
                                         std::optional<StickyCookie>* set_cookie);
  std::optional<std::size_t> pick_by_hash(const std::vector<bool>& up, std::string_view s) const;
};

void UpstreamPool::Impl::configure_policy(const caddyfile::LoadBalancing& lb) {
  const auto found = policy_named(lb.policy);
  if (!found) throw Error("reverse_proxy: unknown lb_policy " + lb.policy);
  policy = *found;
  const auto& args = lb.policy_args;
  const auto need_args = [&](std::size_t min_args, std::size_t max_args) {
    if (args.size() < min_args || args.size() > max_args) {
      throw Error("reverse_proxy: wrong number of arguments to lb_policy " + lb.policy);
    }
  };
  switch (policy) {
    case Policy::RandomChoose: {
      need_args(0, 1);
      const auto n = args.empty() ? std::optional<int>(2) : parse_int(args[0]);
      if (!n || *n < 2) throw Error("reverse_proxy: random_choose must be at least 2");
      choose = static_cast<std::size_t>(*n);
      break;
    }
    case Policy::WeightedRoundRobin:
      need_args(1, args.size());
      for (const auto& arg : args) {
        const auto weight = parse_int(arg);
        if (!weight || *weight < 0) throw Error("reverse_proxy: invalid weight " + arg);
        weights.push_back(*weight);
        total_weight += *weight;
      }
      if (total_weight <= 0) throw Error("reverse_proxy: weighted_round_robin needs a weight");
      break;
    case Policy::Header:
    case Policy::Query:
      need_args(1, 1);
      key = args[0];
      break;
    case Policy::Cookie:
      need_args(0, 2);
      key = args.empty() ? "lb" : args[0];
      if (args.size() == 2) secret = args[1];
      break;
    default:
      need_args(0, 0);
  }
}

HostState& UpstreamPool::Impl::host(std::size_t index) {
  if (index >= hosts.size()) throw Error("upstream index out of range");
  return hosts[index];
}

const HostState& UpstreamPool::Impl::host(std::size_t index) const {
  if (index >= hosts.size()) throw Error("upstream index out of range");
  return hosts[index];
}

void UpstreamPool::Impl::count_failure(HostState& state) {
  // healthchecks.go countFailure: a no-op without passive checks or with a zero fail_duration.
  if (!passive_enabled || fail_duration.count() <= 0) return;
  state.fail_expiries.push_back(clock() + fail_duration);
}

int UpstreamPool::Impl::fails_locked(std::size_t index) const {
  const auto& expiries = host(index).fail_expiries;
  const TimePoint now = clock();
  // Caddy forgets each failure with a timer; counting the unexpired ones is the same answer.
  return static_cast<int>(expiries.end() - std::upper_bound(expiries.begin(), expiries.end(), now));
}

bool UpstreamPool::Impl::available_locked(std::size_t index) const {
  const HostState& state = host(index);
  if (!state.healthy) return false;
  if (passive_enabled && fails_locked(index) >= max_fails) return false;
  return max_requests == 0 || state.in_flight < max_requests;
}

std::optional<std::size_t> UpstreamPool::Impl::pick_random(const std::vector<bool>& up) {
  // Reservoir sampling, as selectRandomHost: one pass, uniform over the available ones.
  std::optional<std::size_t> chosen;
  std::size_t count = 0;
  for (std::size_t i = 0; i < up.size(); ++i) {
    if (!up[i]) continue;
    ++count;
    if (random_below(count) == 0) chosen = i;
  }
  return chosen;
}

std::optional<std::size_t> UpstreamPool::Impl::pick_random_choose(const std::vector<bool>& up) {
  // Algorithm R over the available upstreams fills `choose` slots, then leastRequests picks:
  // the first idle one, else a random one among the least loaded.
  const std::size_t k = std::min(choose, up.size());
  std::vector<std::size_t> choices;
  std::size_t seen = 0;
  for (std::size_t i = 0; i < up.size(); ++i) {
    if (!up[i]) continue;
    ++seen;
    if (choices.size() < k) {
      choices.push_back(i);
    } else if (const std::size_t j = random_below(seen); j < k) {
      choices[j] = i;
    }
  }
  std::vector<std::size_t> best;
  for (std::size_t i : choices) {
    const std::size_t load = hosts[i].in_flight;
    if (load == 0) return i;
    if (best.empty() || load < hosts[best[0]].in_flight)
      best.assign(1, i);
    else if (load == hosts[best[0]].in_flight)
      best.push_back(i);
  }
  if (best.empty()) return std::nullopt;
  return best[random_below(best.size())];
}

std::optional<std::size_t> UpstreamPool::Impl::pick_least_conn(const std::vector<bool>& up) {
  // Fewest requests in flight; ties broken by reservoir sampling, as LeastConnSelection.
  std::optional<std::size_t> best;
  std::size_t ties = 0;
  for (std::size_t i = 0; i < up.size(); ++i) {
    if (!up[i]) continue;
    const std::size_t load = hosts[i].in_flight;
    if (!best || load < hosts[*best].in_flight) {
      best = i;
      ties = 1;
    } else if (load == hosts[*best].in_flight && random_below(++ties) == 0) {
      best = i;
    }
  }
  return best;
}

std::optional<std::size_t> UpstreamPool::Impl::pick_round_robin(const std::vector<bool>& up) {
  // The counter is incremented before use, so the first request goes to the second upstream.
  for (std::size_t tries = 0; tries < up.size(); ++tries) {
    const std::size_t i = ++robin % up.size();
    if (up[i]) return i;
  }
  return std::nullopt;
}

std::optional<std::size_t> UpstreamPool::Impl::pick_weighted(const std::vector<bool>& up) {
  // WeightedRoundRobinSelection: the counter selects a slot among the positive weights, which
  // then names the slot-th available upstream with a positive weight (modulo their number).
  if (weights.size() < 2)
    return up.empty() || !up[0] ? std::nullopt : std::optional<std::size_t>(0);
  const int current = static_cast<int>(++weighted_index % static_cast<std::uint32_t>(total_weight));
  std::size_t slot = 0;
  int running = 0;
  for (int weight : weights) {
    if (weight <= 0) continue;
    running += weight;
    if (current < running) break;
    ++slot;
  }
  std::vector<std::size_t> candidates;
  for (std::size_t i = 0; i < up.size() && i < weights.size(); ++i) {
    if (up[i] && weights[i] > 0) candidates.push_back(i);
  }
  if (candidates.empty()) return std::nullopt;
  return candidates[slot % candidates.size()];
}

std::optional<std::size_t> UpstreamPool::Impl::pick_by_hash(const std::vector<bool>& up,
                                                            std::string_view s) const {
  // Rendezvous (highest random weight) hashing: hash(dial + key) per available upstream, the
  // highest wins, so removing one upstream moves only the keys it held.
  std::optional<std::size_t> chosen;
  std::uint64_t highest = 0;
  for (std::size_t i = 0; i < up.size(); ++i) {
    if (!up[i]) continue;
    const std::uint64_t h = xxhash64(dials[i] + std::string(s));
    if (h > highest) {
      highest = h;
      chosen = i;
    }
  }
  return chosen;
}

std::optional<std::size_t> UpstreamPool::Impl::pick_cookie(
    const std::vector<bool>& up, const SelectionRequest& request,
    std::optional<StickyCookie>* set_cookie) {
  if (const auto value = request.cookie ? request.cookie(key) : std::nullopt) {
    for (std::size_t i = 0; i < up.size(); ++i) {
      if (!up[i]) continue;
      const std::string expected = cookie_hash(secret, dials[i]);
      if (expected.size() == value->size() &&
          CRYPTO_memcmp(expected.data(), value->data(), expected.size()) == 0) {
        return i;
      }
    }
  }
  const auto chosen = pick_random(up);
  if (chosen) *set_cookie = StickyCookie{key, cookie_hash(secret, dials[*chosen])};
  return chosen;
}

std::optional<std::size_t> UpstreamPool::Impl::pick(const SelectionRequest& request,
                                                    std::optional<StickyCookie>* set_cookie) {
  std::vector<bool> up(hosts.size());
  for (std::size_t i = 0; i < up.size(); ++i) up[i] = available_locked(i);
  switch (policy) {
    case Policy::Random:
      return pick_random(up);
    case Policy::RandomChoose:
      return pick_random_choose(up);
    case Policy::RoundRobin:
      return pick_round_robin(up);
    case Policy::WeightedRoundRobin:
      return pick_weighted(up);
    case Policy::LeastConn:
      return pick_least_conn(up);
    case Policy::First: {
      const auto it = std::find(up.begin(), up.end(), true);
      if (it == up.end()) return std::nullopt;
      return static_cast<std::size_t>(it - up.begin());
    }
    case Policy::IpHash:
      return pick_by_hash(up, request.remote_ip);
    case Policy::ClientIpHash:
      return pick_by_hash(up, request.client_ip);
    case Policy::UriHash:
      return pick_by_hash(up, request.request_uri);
    case Policy::Header: {
      // Go keeps Host out of the header map, so Caddy hashes req.Host for `header Host`.
      std::optional<std::string> value;
      if (key == "Host" && !request.host.empty())
        value = std::string(request.host);
      else if (request.header)
        value = request.header(key);
      if (!value || value->empty()) return pick_random(up);
      return pick_by_hash(up, *value);
    }
    case Policy::Query: {
      // All values joined, so a client cannot steer by repeating the key.
      std::string joined;
      for (const auto& value : request.query ? request.query(key) : std::vector<std::string>{}) {
        joined += (joined.empty() ? "" : ",") + value;
      }
      if (joined.empty()) return pick_random(up);
      return pick_by_hash(up, joined);
    }
    case Policy::Cookie:
      return pick_cookie(up, request, set_cookie);
  }
  return std::nullopt;
}

UpstreamPool::UpstreamPool(std::vector<std::string> dials, const caddyfile::LoadBalancing& lb,
                           std::optional<caddyfile::PassiveHealthCheck> passive,
                           std::optional<caddyfile::ActiveHealthCheck> active, Clock clock,
                           std::uint64_t seed)
    : impl_(std::make_unique<Impl>()) {
  Impl& impl = *impl_;
  impl.dials = std::move(dials);
  impl.hosts = std::vector<HostState>(impl.dials.size());
  impl.configure_policy(lb);
  if (passive) {
    impl.passive_enabled = true;
    impl.fail_duration = passive->fail_duration.value_or(std::chrono::nanoseconds{0});
    // reverseproxy.go Provision: max_fails defaults to 1 once passive checks exist.
    impl.max_fails = passive->max_fails.value_or(0) > 0 ? *passive->max_fails : 1;
    impl.max_requests =
        static_cast<std::size_t>(std::max(0, passive->unhealthy_request_count.value_or(0)));
    impl.unhealthy_status = passive->unhealthy_status;
    impl.unhealthy_latency = passive->unhealthy_latency.value_or(std::chrono::nanoseconds{0});
  }
  if (active) {
    impl.active_passes = std::max(1, active->passes.value_or(1));
    impl.active_fails = std::max(1, active->fails.value_or(1));
  }
  impl.counts_requests = impl.policy == Policy::LeastConn || impl.policy == Policy::RandomChoose || impl.max_requests > 0;
  impl.lock_free = impl.hosts.size() == 1 && !impl.passive_enabled && !impl.counts_requests && impl.policy != Policy::Cookie;
  impl.clock = clock ? std::move(clock) : Clock([] { return std::chrono::steady_clock::now(); });
  impl.rng.seed(seed != 0 ? seed
                          : (std::uint64_t{std::random_device{}()} << 32) ^ std::random_device{}());
}

UpstreamPool::UpstreamPool(const caddyfile::ReverseProxyHandler& handler, Clock clock,
                           std::uint64_t seed)
    : UpstreamPool(
          [&] {
            std::vector<std::string> dials;
            for (const auto& upstream : handler.upstreams) dials.push_back(upstream.dial);
            return dials;
          }(),
          handler.load_balancing, handler.passive_health, handler.active_health, std::move(clock),
          seed) {}

UpstreamPool::~UpstreamPool() = default;

std::size_t UpstreamPool::size() const { return impl_->dials.size(); }

const std::string& UpstreamPool::dial(std::size_t index) const {
  if (index >= impl_->dials.size()) throw Error("upstream index out of range");
  return impl_->dials[index];
}

std::optional<Selection> UpstreamPool::select(const SelectionRequest& request) {
  // The common `reverse_proxy app:8080`: no lock, so the io threads share no written cache line.
  if (impl_->lock_free) return impl_->hosts[0].healthy ? std::optional<Selection>(Selection{}) : std::nullopt;
  std::lock_guard lock(impl_->mutex);
  Selection selection;
  const auto index = impl_->pick(request, &selection.set_cookie);
  if (!index) return std::nullopt;
  selection.index = *index;
  return selection;
}

void UpstreamPool::begin_request(std::size_t index) {
  if (!impl_->counts_requests) return;
  std::lock_guard lock(impl_->mutex);
  ++impl_->host(index).in_flight;
}

void UpstreamPool::end_request(std::size_t index) {
  if (!impl_->counts_requests) return;
  std::lock_guard lock(impl_->mutex);
  auto& in_flight = impl_->host(index).in_flight;
  if (in_flight > 0) --in_flight;
}

std::size_t UpstreamPool::in_flight(std::size_t index) const {
  std::lock_guard lock(impl_->mutex);
  return impl_->host(index).in_flight;
}

void UpstreamPool::record_result(std::size_t index, int status, std::chrono::nanoseconds latency,
                                 bool transport_error) {
  // Without passive checks no failure is ever counted (count_failure) nor kept: nothing to do,
  // no lock to take (the settings are fixed at construction).
  if (!impl_->passive_enabled || impl_->fail_duration.count() <= 0) return;
  std::lock_guard lock(impl_->mutex);
  Impl& impl = *impl_;
  HostState& state = impl.host(index);
  // Drop expired failures so the queue stays as short as the window.
  const TimePoint now = impl.clock();
  while (!state.fail_expiries.empty() && state.fail_expiries.front() <= now) {
    state.fail_expiries.pop_front();
  }
  if (transport_error) {
    impl.count_failure(state);
    return;
  }
  // reverseproxy.go: one strike per matching unhealthy_status entry, one for slowness.
  for (int wanted : impl.unhealthy_status) {
    if (status_matches(status, wanted)) impl.count_failure(state);
  }
  if (impl.unhealthy_latency.count() > 0 && latency >= impl.unhealthy_latency) {
    impl.count_failure(state);
  }
}

int UpstreamPool::fails(std::size_t index) const {
  std::lock_guard lock(impl_->mutex);
  return impl_->fails_locked(index);
}

void UpstreamPool::set_healthy(std::size_t index, bool healthy) {
  std::lock_guard lock(impl_->mutex);
  impl_->host(index).healthy = healthy;
}

bool UpstreamPool::record_active_check(std::size_t index, bool passed) {
  std::lock_guard lock(impl_->mutex);
  HostState& state = impl_->host(index);
  state.healthy = apply_active_check(state.tally, state.healthy, passed, impl_->active_passes,
                                     impl_->active_fails);
  return state.healthy;
}

bool UpstreamPool::healthy(std::size_t index) const {
  std::lock_guard lock(impl_->mutex);
  return impl_->host(index).healthy;
}

bool UpstreamPool::available(std::size_t index) const {
  std::lock_guard lock(impl_->mutex);
  return impl_->available_locked(index);
}

}  // namespace acmetool::serve
