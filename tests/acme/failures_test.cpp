// The failure schedule (acme/failures.h): backoff steps with jitter and the Retry-After floor,
// the failed-validation cap, giving up after 30 days, and the record in real file storage.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "acmetool/acme/failures.h"
#include "acmetool/pki/storage.h"
#include "process.h"

namespace acme = acmetool::acme;
namespace pki = acmetool::pki;
using acmetool::test::TempDir;
using Clock = std::chrono::system_clock;
using namespace std::chrono_literals;

TEST_CASE("backoff is 1 min, 10 min, 100 min, then a day, each within 10 %", "[acme][failures]") {
  std::mt19937_64 rng(7);
  const std::chrono::seconds steps[] = {1min, 10min, 100min, 24h, 24h, 24h};
  for (int i = 0; i < 6; ++i) {
    for (int round = 0; round < 50; ++round) {
      const auto wait = acme::backoff_after(i + 1, std::nullopt, rng);
      INFO("failure " << i + 1 << ": " << wait.count() << " s");
      REQUIRE(wait >= steps[i] * 9 / 10);
      REQUIRE(wait <= steps[i] * 11 / 10);
    }
  }
  // The CA's Retry-After is a floor, never shortened.
  CHECK(acme::backoff_after(1, 3h, rng) == 3h);
  CHECK(acme::backoff_after(4, 1s, rng) >= 21h);
}

TEST_CASE("a failure blocks attempts until its backoff has passed", "[acme][failures]") {
  std::mt19937_64 rng(1);
  const auto now = Clock::now();
  const acme::FailureRecord record = acme::with_failure({}, now, 0, std::nullopt, "CA down", rng);
  CHECK(record.consecutive == 1);
  CHECK(record.first_failure == now);
  const auto blocked = acme::attempt_blocked(record, now + 10s);
  REQUIRE(blocked);
  CHECK(blocked->starts_with("backing off until "));
  CHECK(blocked->find("1 failed attempt, last: CA down") != std::string::npos);
  CHECK_FALSE(acme::attempt_blocked(record, now + 67s));  // 1 min + 10 %
  const acme::FailureRecord second = acme::with_failure(record, now + 2min, 0, std::nullopt, "again", rng);
  CHECK(second.consecutive == 2);
  CHECK(second.first_failure == now);
  CHECK(acme::attempt_blocked(second, now + 2min + 8min));
  CHECK_FALSE(acme::attempt_blocked(acme::FailureRecord{}, now));
}

TEST_CASE("five failed validations within an hour block the rest of that hour", "[acme][failures]") {
  std::mt19937_64 rng(2);
  const auto start = Clock::now();
  acme::FailureRecord record;
  for (int i = 0; i < 5; ++i) record = acme::with_failure(record, start + i * 1min, 1, std::nullopt, "invalid", rng);
  record.next_attempt = start;  // only the cap is left to block
  const auto blocked = acme::attempt_blocked(record, start + 10min);
  REQUIRE(blocked);
  CHECK(blocked->find("5 failed validations in the last hour") != std::string::npos);
  CHECK(acme::attempt_blocked(record, start + 59min));
  CHECK_FALSE(acme::attempt_blocked(record, start + 61min));  // the first one has aged out
  // Failures that were no validation (a 503) do not count towards the cap.
  acme::FailureRecord outages;
  for (int i = 0; i < 8; ++i) outages = acme::with_failure(outages, start, 0, std::nullopt, "503", rng);
  outages.next_attempt = start;
  CHECK_FALSE(acme::attempt_blocked(outages, start + 1s));
}

TEST_CASE("after 30 days of failures acmetool gives up", "[acme][failures]") {
  std::mt19937_64 rng(3);
  const auto start = Clock::now();
  acme::FailureRecord record = acme::with_failure({}, start, 0, std::nullopt, "refused", rng);
  record.next_attempt = start;
  CHECK_FALSE(acme::attempt_blocked(record, start + 29 * 24h));
  const auto blocked = acme::attempt_blocked(record, start + 30 * 24h);
  REQUIRE(blocked);
  CHECK(blocked->starts_with("gave up after 30 days"));
}

TEST_CASE("failure records persist in file storage, and a damaged one does not block", "[acme][failures]") {
  TempDir dir;
  pki::FileStorage storage(dir.path());
  std::mt19937_64 rng(4);
  const auto now = Clock::time_point(std::chrono::duration_cast<Clock::duration>(1800000000s));
  const acme::FailureRecord record = acme::with_failure({}, now, 2, 90s, "unauthorized", rng);
  acme::store_failure_record(storage, "acme-v02.example-directory", "www.example.com", record);
  const auto path = dir.path() / "acmetool" / "failures" / "acme-v02.example-directory" / "www.example.com.json";
  REQUIRE(std::filesystem::exists(path));
  const auto loaded = acme::load_failure_record(storage, "acme-v02.example-directory", "www.example.com");
  REQUIRE(loaded);
  CHECK(loaded->consecutive == 1);
  CHECK(loaded->validations.size() == 2);
  CHECK(loaded->next_attempt == record.next_attempt);
  CHECK(loaded->next_attempt >= now + 90s);  // Retry-After floor
  CHECK(loaded->last_error == "unauthorized");

  std::ofstream(path, std::ios::trunc) << "{\"consecutive\": \"lots\"}";
  CHECK_FALSE(acme::load_failure_record(storage, "acme-v02.example-directory", "www.example.com"));
  acme::clear_failure_record(storage, "acme-v02.example-directory", "www.example.com");
  CHECK_FALSE(std::filesystem::exists(path));
  acme::clear_failure_record(storage, "acme-v02.example-directory", "www.example.com");  // absent: fine
}
