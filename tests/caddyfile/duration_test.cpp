#include "acmetool/caddyfile/duration.h"

#include <catch2/catch.hpp>

using acmetool::caddyfile::parse_duration;
using namespace std::chrono;

TEST_CASE("durations parse as Go's time.ParseDuration plus Caddy's days", "[caddyfile][duration]") {
  struct Row {
    const char* text;
    nanoseconds expected;
  };
  const Row rows[] = {
      {"0", 0ns},           {"12h", 12h},          {"90m", 90min},     {"1h30m", 90min},
      {"1.5h", 90min},      {"250ms", 250ms},      {"3us", 3us},       {"3µs", 3us},
      {"7ns", 7ns},         {"7d", hours(168)},    {"-5m", -5min},     {"+2s", 2s},
      {".5s", 500ms},       {"1.s", 1s},           {"2h45m30.5s", 2h + 45min + 30500ms},
  };
  for (const Row& row : rows) {
    INFO(row.text);
    const auto parsed = parse_duration(row.text);
    REQUIRE(parsed.has_value());
    CHECK(*parsed == row.expected);
  }
}

TEST_CASE("malformed durations are rejected", "[caddyfile][duration]") {
  const char* bad = GENERATE("", "12", "h", "1x", "1 h", "1h ", ".h", "-", "1hh", "99999999999999999999h");
  INFO(bad);
  CHECK_FALSE(parse_duration(bad).has_value());
}
