// The reverse_proxy upstream pool (issue 9): selection policies, passive and active health and
// the retry decision, with the answers Caddy 2.6-2.8 gives.
#include "acmetool/serve/upstreams.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <thread>

#include "acmetool/caddyfile/config_routes.h"
#include "acmetool/serve/error.h"

namespace serve = acmetool::serve;
namespace caddyfile = acmetool::caddyfile;
using namespace std::chrono_literals;
using TimePoint = std::chrono::steady_clock::time_point;

namespace {

const std::vector<std::string> kDials = {"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80",
                                         "10.0.0.4:80"};

caddyfile::LoadBalancing lb(std::string policy, std::vector<std::string> args = {}) {
  caddyfile::LoadBalancing config;
  config.policy = std::move(policy);
  config.policy_args = std::move(args);
  return config;
}

// A pool over the first `n` dials whose clock reads `*now`.
std::unique_ptr<serve::UpstreamPool> make_pool(
    const caddyfile::LoadBalancing& config, std::size_t n = 3,
    std::optional<caddyfile::PassiveHealthCheck> passive = std::nullopt, TimePoint* now = nullptr) {
  serve::UpstreamPool::Clock clock;
  if (now != nullptr) clock = [now] { return *now; };
  return std::make_unique<serve::UpstreamPool>(
      std::vector<std::string>(kDials.begin(), kDials.begin() + static_cast<long>(n)), config,
      std::move(passive), std::nullopt, clock, 42);
}

std::size_t pick(serve::UpstreamPool& pool, const serve::SelectionRequest& request = {}) {
  const auto selection = pool.select(request);
  REQUIRE(selection);
  return selection->index;
}

// How often each upstream was chosen over `rounds` selections.
std::map<std::size_t, int> histogram(serve::UpstreamPool& pool, int rounds,
                                     const serve::SelectionRequest& request = {}) {
  std::map<std::size_t, int> counts;
  for (int i = 0; i < rounds; ++i) ++counts[pick(pool, request)];
  return counts;
}

// Upstream i was chosen more than minimum[i] times, or never where minimum[i] is 0.
void check_spread(const std::map<std::size_t, int>& counts, const std::vector<int>& minimum) {
  for (std::size_t i = 0; i < minimum.size(); ++i) {
    const int count = counts.count(i) != 0 ? counts.at(i) : 0;
    if (minimum[i] == 0)
      CHECK(count == 0);
    else
      CHECK(count > minimum[i]);
  }
}

// The upstream Caddy's hostByHashing picks among `dials`: the highest xxhash64(dial + key).
std::size_t rendezvous_winner(const std::vector<std::string>& dials, const std::string& key) {
  std::size_t best = 0;
  for (std::size_t i = 1; i < dials.size(); ++i) {
    if (serve::xxhash64(dials[i] + key) > serve::xxhash64(dials[best] + key)) best = i;
  }
  return best;
}

serve::SelectionRequest with_header(const std::string& field, std::optional<std::string> value) {
  serve::SelectionRequest request;
  request.header = [field, value](std::string_view asked) {
    return asked == field ? value : std::nullopt;
  };
  return request;
}

}  // namespace

TEST_CASE("xxhash64 and cookie_hash match the reference algorithms", "[upstreams]") {
  CHECK(serve::xxhash64("") == 0xEF46DB3751D8E999ULL);
  CHECK(serve::xxhash64("a") == 0xD24EC4F1A98C6E5BULL);
  CHECK(serve::xxhash64("abc") == 0x44BC2CF5AD770999ULL);
  CHECK(serve::xxhash64("Nobody inspects the spammish repetition") == 0xFBCEA83C8A378BF1ULL);
  CHECK(serve::cookie_hash("key", "The quick brown fox jumps over the lazy dog") ==
        "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
  CHECK(serve::cookie_hash("", "") ==
        "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST_CASE("round_robin starts at the second upstream and skips unavailable ones", "[upstreams]") {
  auto pool = make_pool(lb("round_robin"));
  std::vector<std::size_t> order;
  for (int i = 0; i < 6; ++i) order.push_back(pick(*pool));
  CHECK(order == std::vector<std::size_t>{1, 2, 0, 1, 2, 0});
  pool->set_healthy(2, false);
  order.clear();
  for (int i = 0; i < 4; ++i) order.push_back(pick(*pool));
  CHECK(order == std::vector<std::size_t>{1, 0, 1, 0});
}

TEST_CASE("weighted_round_robin follows the weights and never picks weight 0", "[upstreams]") {
  auto pool = make_pool(lb("weighted_round_robin", {"3", "1"}), 2);
  std::vector<std::size_t> order;
  for (int i = 0; i < 8; ++i) order.push_back(pick(*pool));
  CHECK(order == std::vector<std::size_t>{0, 0, 1, 0, 0, 0, 1, 0});

  auto zero = make_pool(lb("weighted_round_robin", {"2", "0", "1"}));
  const auto counts = histogram(*zero, 300);
  CHECK(counts.count(1) == 0);
  CHECK(counts.at(0) == 200);
  CHECK(counts.at(2) == 100);
}

TEST_CASE("least_conn prefers the idle upstream and breaks ties randomly", "[upstreams]") {
  auto pool = make_pool(lb("least_conn"));
  pool->begin_request(0);
  pool->begin_request(0);
  pool->begin_request(1);
  CHECK(histogram(*pool, 100) == std::map<std::size_t, int>{{2, 100}});
  pool->begin_request(2);  // now 1 and 2 tie with one request each
  check_spread(histogram(*pool, 1000), {0, 350, 350});
}

TEST_CASE("random and random_choose spread over the available upstreams", "[upstreams]") {
  auto random = make_pool(lb("random"));
  check_spread(histogram(*random, 3000), {850, 850, 850});

  // random_choose 2 samples two and takes the first idle one in sample order: the busy one
  // never wins; the samples are {0,1} -> 1, {2,1} -> 2 and {0,2} -> 2, each a third of the time.
  auto choose = make_pool(lb("random_choose", {"2"}));
  for (int i = 0; i < 5; ++i) choose->begin_request(0);
  check_spread(histogram(*choose, 3000), {0, 850, 1850});
}

TEST_CASE("first picks the first available upstream", "[upstreams]") {
  auto pool = make_pool(lb("first"));
  CHECK(histogram(*pool, 10) == std::map<std::size_t, int>{{0, 10}});
  pool->set_healthy(0, false);
  CHECK(pick(*pool) == 1);
}

TEST_CASE("hash policies are Caddy's rendezvous hashing over xxhash64", "[upstreams]") {
  const std::vector<std::string> dials(kDials.begin(), kDials.end());
  auto ip = make_pool(lb("ip_hash"), 4);
  auto client = make_pool(lb("client_ip_hash"), 4);
  auto uri = make_pool(lb("uri_hash"), 4);

  std::map<std::string, std::size_t> before;
  std::set<std::size_t> used;
  for (int i = 0; i < 400; ++i) {
    const std::string key = "198.51.100." + std::to_string(i);
    serve::SelectionRequest request;
    request.remote_ip = key;
    request.client_ip = key;
    request.request_uri = key;
    const std::size_t chosen = pick(*ip, request);
    CHECK(chosen == rendezvous_winner(dials, key));
    CHECK(pick(*ip, request) == chosen);
    CHECK(pick(*client, request) == chosen);
    CHECK(pick(*uri, request) == chosen);
    before[key] = chosen;
    used.insert(chosen);
  }
  CHECK(used.size() == 4);

  // Taking upstream 2 out moves exactly the keys it held.
  ip->set_healthy(2, false);
  for (const auto& [key, chosen] : before) {
    serve::SelectionRequest request;
    request.remote_ip = key;
    const std::size_t now = pick(*ip, request);
    if (chosen != 2) CHECK(now == chosen);
    if (chosen == 2) CHECK(now != 2);
  }
}

TEST_CASE("header policy hashes the field and falls back to random without it", "[upstreams]") {
  const std::vector<std::string> dials(kDials.begin(), kDials.begin() + 3);
  auto pool = make_pool(lb("header", {"X-User"}));
  for (const std::string user : {"alice", "bob", "carol"}) {
    const auto request = with_header("X-User", user);
    CHECK(histogram(*pool, 20, request) ==
          std::map<std::size_t, int>{{rendezvous_winner(dials, user), 20}});
  }
  CHECK(histogram(*pool, 600, with_header("X-User", std::nullopt)).size() == 3);
  CHECK(histogram(*pool, 600, with_header("X-User", "")).size() == 3);

  auto host = make_pool(lb("header", {"Host"}));
  serve::SelectionRequest request;
  request.host = "example.com";
  CHECK(pick(*host, request) == rendezvous_winner(dials, "example.com"));
}

TEST_CASE("query policy hashes every value joined and falls back to random", "[upstreams]") {
  const std::vector<std::string> dials(kDials.begin(), kDials.begin() + 3);
  auto pool = make_pool(lb("query", {"user"}));
  serve::SelectionRequest request;
  request.query = [](std::string_view key) {
    return key == "user" ? std::vector<std::string>{"a", "b"} : std::vector<std::string>{};
  };
  CHECK(histogram(*pool, 20, request) ==
        std::map<std::size_t, int>{{rendezvous_winner(dials, "a,b"), 20}});
  request.query = [](std::string_view) { return std::vector<std::string>{}; };
  CHECK(histogram(*pool, 600, request).size() == 3);
}

TEST_CASE("cookie policy sticks to the upstream its cookie names", "[upstreams]") {
  for (const std::string secret : {"", "s3cret"}) {
    std::vector<std::string> args = {"session"};
    if (!secret.empty()) args.push_back(secret);
    auto pool = make_pool(lb("cookie", args));
    serve::SelectionRequest request;
    const auto first = pool->select(request);
    REQUIRE(first);
    REQUIRE(first->set_cookie);
    CHECK(first->set_cookie->name == "session");
    CHECK(first->set_cookie->value == serve::cookie_hash(secret, kDials[first->index]));

    const std::string value = first->set_cookie->value;
    request.cookie = [value](std::string_view name) {
      return name == "session" ? std::optional<std::string>(value) : std::nullopt;
    };
    for (int i = 0; i < 20; ++i) {
      const auto again = pool->select(request);
      REQUIRE(again);
      CHECK(again->index == first->index);
      CHECK_FALSE(again->set_cookie);
    }
    // The named upstream is down: another one, and a new cookie for it.
    pool->set_healthy(first->index, false);
    const auto moved = pool->select(request);
    REQUIRE(moved);
    CHECK(moved->index != first->index);
    REQUIRE(moved->set_cookie);
    CHECK(moved->set_cookie->value == serve::cookie_hash(secret, kDials[moved->index]));
  }
  auto default_name = make_pool(lb("cookie"));
  CHECK(default_name->select({})->set_cookie->name == "lb");
  CHECK(serve::sticky_cookie_header({"lb", "ab"}, false) ==
        "lb=ab; Path=/; HttpOnly; SameSite=Lax");
  CHECK(serve::sticky_cookie_header({"lb", "ab"}, true) ==
        "lb=ab; Path=/; HttpOnly; Secure; SameSite=None");
}

TEST_CASE("passive failures count up to max_fails and expire after fail_duration", "[upstreams]") {
  TimePoint now{};
  caddyfile::PassiveHealthCheck passive;
  passive.fail_duration = 10s;
  passive.max_fails = 2;
  auto pool = make_pool(lb("first"), 2, passive, &now);
  pool->record_result(0, 0, 0ms, true);
  CHECK(pool->fails(0) == 1);
  CHECK(pool->available(0));
  now += 4s;
  pool->record_result(0, 0, 0ms, true);
  CHECK_FALSE(pool->available(0));
  CHECK(pick(*pool) == 1);
  now += 6s;  // the first failure is forgotten
  CHECK(pool->fails(0) == 1);
  CHECK(pick(*pool) == 0);
  now += 4s;
  CHECK(pool->fails(0) == 0);
}

TEST_CASE("unhealthy_status and unhealthy_latency count passive failures", "[upstreams]") {
  TimePoint now{};
  caddyfile::PassiveHealthCheck passive;
  passive.fail_duration = 30s;
  passive.max_fails = 10;
  passive.unhealthy_status = {5, 404};
  passive.unhealthy_latency = 1s;
  auto pool = make_pool(lb("first"), 1, passive, &now);
  struct Case {
    int status;
    std::chrono::nanoseconds latency;
    int strikes;
  };
  const Case cases[] = {{200, 10ms, 0}, {503, 10ms, 1},  {599, 10ms, 1}, {404, 10ms, 1},
                        {403, 10ms, 0}, {200, 999ms, 0}, {200, 1s, 1},   {500, 2s, 2}};
  for (const Case& c : cases) {
    const int before = pool->fails(0);
    pool->record_result(0, c.status, c.latency, false);
    CHECK(pool->fails(0) - before == c.strikes);
  }
}

TEST_CASE("passive checks need fail_duration and default max_fails to 1", "[upstreams]") {
  TimePoint now{};
  caddyfile::PassiveHealthCheck no_duration;
  no_duration.unhealthy_status = {5};
  auto pool = make_pool(lb("first"), 1, no_duration, &now);
  pool->record_result(0, 500, 0ms, true);
  CHECK(pool->fails(0) == 0);
  CHECK(pool->available(0));

  caddyfile::PassiveHealthCheck defaults;
  defaults.fail_duration = 1s;
  auto one = make_pool(lb("first"), 1, defaults, &now);
  one->record_result(0, 0, 0ms, true);
  CHECK_FALSE(one->available(0));
  CHECK_FALSE(one->select({}));
}

TEST_CASE("unhealthy_request_count makes a busy upstream unavailable", "[upstreams]") {
  caddyfile::PassiveHealthCheck passive;
  passive.unhealthy_request_count = 2;
  auto pool = make_pool(lb("first"), 2, passive);
  {
    serve::RequestLease a(*pool, 0);
    serve::RequestLease b(*pool, 0);
    CHECK_FALSE(pool->available(0));
    CHECK(pick(*pool) == 1);
  }
  CHECK(pool->in_flight(0) == 0);
  CHECK(pick(*pool) == 0);
}

TEST_CASE("no available upstream selects nothing under every policy", "[upstreams]") {
  const auto config = GENERATE(lb("random"), lb("random_choose", {"2"}), lb("round_robin"),
                               lb("weighted_round_robin", {"1", "2", "3"}), lb("least_conn"),
                               lb("first"), lb("ip_hash"), lb("client_ip_hash"), lb("uri_hash"),
                               lb("header", {"X"}), lb("query", {"q"}), lb("cookie"));
  auto pool = make_pool(config);
  for (std::size_t i = 0; i < pool->size(); ++i) pool->set_healthy(i, false);
  CHECK_FALSE(pool->select(with_header("X", "v")));
}

TEST_CASE("one upstream is chosen under every policy while healthy, and counted only when read", "[upstreams]") {
  const auto config = GENERATE(lb("random"), lb("random_choose", {"2"}), lb("round_robin"),
                               lb("weighted_round_robin", {"3"}), lb("least_conn"), lb("first"), lb("ip_hash"),
                               lb("client_ip_hash"), lb("uri_hash"), lb("header", {"X"}), lb("query", {"q"}),
                               lb("cookie"));
  auto pool = make_pool(config, 1);
  for (int i = 0; i < 3; ++i) CHECK(pick(*pool, with_header("X", "v")) == 0);
  {
    serve::RequestLease lease(*pool, 0);
    // Only least_conn and random_choose read the requests in flight.
    const bool counted = config.policy == "least_conn" || config.policy == "random_choose";
    CHECK(pool->in_flight(0) == (counted ? 1u : 0u));
  }
  CHECK(pool->in_flight(0) == 0);
  pool->set_healthy(0, false);
  CHECK_FALSE(pool->select(with_header("X", "v")));
  pool->set_healthy(0, true);
  CHECK(pick(*pool) == 0);

  // With passive checks, a failure makes it unavailable (the locked path).
  caddyfile::PassiveHealthCheck passive;
  passive.fail_duration = 1s;
  auto checked = make_pool(config, 1, passive);
  checked->record_result(0, 0, 0ms, true);
  CHECK_FALSE(checked->select(with_header("X", "v")));
}

TEST_CASE("bad lb_policy configuration is rejected", "[upstreams]") {
  CHECK_THROWS_AS(make_pool(lb("fastest")), serve::Error);
  CHECK_THROWS_AS(make_pool(lb("random_choose", {"1"})), serve::Error);
  CHECK_THROWS_AS(make_pool(lb("weighted_round_robin", {"0", "0"})), serve::Error);
  CHECK_THROWS_AS(make_pool(lb("weighted_round_robin", {"x"})), serve::Error);
  CHECK_THROWS_AS(make_pool(lb("header")), serve::Error);
}

TEST_CASE("active checks flip health at the passes and fails thresholds", "[upstreams]") {
  serve::ActiveHealthTally tally;
  bool healthy = true;
  // fails 3: failures accumulate between transitions, even with passes in between.
  for (const bool passed : {false, true, false}) {
    healthy = serve::apply_active_check(tally, healthy, passed, 2, 3);
    CHECK(healthy);
  }
  healthy = serve::apply_active_check(tally, healthy, false, 2, 3);
  CHECK_FALSE(healthy);
  CHECK(tally.passes == 0);
  CHECK(tally.fails == 0);
  healthy = serve::apply_active_check(tally, healthy, true, 2, 3);
  CHECK_FALSE(healthy);
  healthy = serve::apply_active_check(tally, healthy, true, 2, 3);
  CHECK(healthy);

  caddyfile::ReverseProxyHandler handler;
  handler.upstreams = {{"a:80"}, {"b:80"}};
  handler.load_balancing = lb("first");
  handler.active_health = caddyfile::ActiveHealthCheck{};
  serve::UpstreamPool pool(handler);
  CHECK_FALSE(pool.record_active_check(0, false));  // default thresholds are 1
  CHECK(pick(pool) == 1);
  CHECK(pool.record_active_check(0, true));
  CHECK(pick(pool) == 0);
}

TEST_CASE("retries follow lb_retries, lb_try_duration and the request's safety", "[upstreams]") {
  const TimePoint start{};
  using F = serve::AttemptFailure;
  caddyfile::LoadBalancing config;
  CHECK_FALSE(serve::RetryPolicy::from(config).should_retry(0, start, start, F::Dial, "GET"));

  config.try_duration = 5s;
  const auto timed = serve::RetryPolicy::from(config);
  CHECK(timed.try_interval == 250ms);
  CHECK(timed.should_retry(7, start, start + 4s, F::Dial, "POST"));
  CHECK(timed.should_retry(0, start, start + 4s, F::NoUpstream, "POST"));
  CHECK_FALSE(timed.should_retry(0, start, start + 5s, F::Dial, "GET"));
  CHECK(timed.should_retry(0, start, start, F::RoundTrip, "GET"));
  CHECK_FALSE(timed.should_retry(0, start, start, F::RoundTrip, "POST"));
  CHECK_FALSE(timed.should_retry(0, start, start, F::RoundTrip, "PUT"));

  caddyfile::LoadBalancing counted;
  counted.retries = 2;
  const auto retries = serve::RetryPolicy::from(counted);
  CHECK(retries.try_interval == 0ns);
  CHECK(retries.should_retry(0, start, start + 1h, F::Dial, "GET"));
  CHECK(retries.should_retry(1, start, start + 1h, F::Dial, "GET"));
  CHECK_FALSE(retries.should_retry(2, start, start + 1h, F::Dial, "GET"));

  counted.try_interval = 1s;
  CHECK(serve::RetryPolicy::from(counted).try_interval == 1s);
}

TEST_CASE("concurrent select, begin and end keep the counts consistent", "[upstreams]") {
  caddyfile::PassiveHealthCheck passive;
  passive.unhealthy_request_count = 1000;
  for (const char* policy : {"least_conn", "round_robin", "random"}) {
    auto pool = make_pool(lb(policy), 4, passive);
    std::atomic<int> selected{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 10000; ++i) {
          const auto selection = pool->select({});
          if (!selection) continue;
          serve::RequestLease lease(*pool, selection->index);
          ++selected;
        }
      });
    }
    for (auto& thread : threads) thread.join();
    CHECK(selected == 40000);
    for (std::size_t i = 0; i < pool->size(); ++i) CHECK(pool->in_flight(i) == 0);
  }
}
