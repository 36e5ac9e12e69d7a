#include "acmetool/pki/rfc3339.h"

#include <catch2/catch.hpp>

using namespace std::chrono;
using acmetool::pki::format_rfc3339;
using acmetool::pki::parse_rfc3339;

namespace {
system_clock::time_point at(int y, unsigned mo, unsigned d, int h, int mi, int s, long long ns = 0) {
  return time_point_cast<system_clock::duration>(sys_days{year{y} / mo / d} + hours{h} + minutes{mi} +
                                                 seconds{s} + nanoseconds{ns});
}
}  // namespace

TEST_CASE("RFC 3339 time stamps format in UTC with nine fraction digits", "[pki][rfc3339]") {
  CHECK(format_rfc3339(at(2026, 11, 23, 15, 4, 5, 123456789)) == "2026-11-23T15:04:05.123456789Z");
  CHECK(format_rfc3339(at(1999, 1, 2, 0, 0, 0)) == "1999-01-02T00:00:00.000000000Z");
}

TEST_CASE("RFC 3339 time stamps parse as Go and ACME servers write them", "[pki][rfc3339]") {
  struct Row {
    const char* text;
    system_clock::time_point expected;
  };
  const Row rows[] = {
      {"2026-11-23T15:04:05Z", at(2026, 11, 23, 15, 4, 5)},
      {"2026-11-23T15:04:05.5Z", at(2026, 11, 23, 15, 4, 5, 500000000)},
      {"2026-11-23T15:04:05.123456789Z", at(2026, 11, 23, 15, 4, 5, 123456789)},
      // CertMagic writes local time with an offset: the instant is what counts.
      {"2026-11-23T16:04:05.25+01:00", at(2026, 11, 23, 15, 4, 5, 250000000)},
      {"2026-11-23T10:34:05-04:30", at(2026, 11, 23, 15, 4, 5)},
      {"2026-11-23t15:04:05z", at(2026, 11, 23, 15, 4, 5)},
      {"2024-02-29T00:00:00Z", at(2024, 2, 29, 0, 0, 0)},
  };
  for (const Row& row : rows) {
    INFO(row.text);
    const auto parsed = parse_rfc3339(row.text);
    REQUIRE(parsed.has_value());
    CHECK(*parsed == row.expected);
  }
}

TEST_CASE("malformed RFC 3339 time stamps are rejected", "[pki][rfc3339]") {
  const char* bad = GENERATE("", "2026-11-23", "2026-11-23T15:04:05", "2026-11-23 15:04:05Z",
                             "2026-13-01T00:00:00Z", "2023-02-29T00:00:00Z", "2026-11-23T24:00:00Z",
                             "2026-11-23T15:04:05.Z", "2026-11-23T15:04:05+0100", "2026-11-23T15:04:05Zjunk",
                             "26-11-23T15:04:05Z");
  INFO(bad);
  CHECK_FALSE(parse_rfc3339(bad).has_value());
}

TEST_CASE("formatting then parsing gives the same instant", "[pki][rfc3339]") {
  const auto now = time_point_cast<nanoseconds>(system_clock::now());
  CHECK(parse_rfc3339(format_rfc3339(now)) == time_point_cast<system_clock::duration>(now));
}
