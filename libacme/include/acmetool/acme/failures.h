// Failed issuance attempts, remembered per certificate (its set of names) and CA in storage, so
// that neither a restart nor the next cron run resets the backoff (DESIGN.md §3): after a failure
// wait 1 min, 10 min, 100 min, then a day between attempts (±10 % jitter, never less than the
// CA's Retry-After), for up to 30 days; and never more than 5 failed validations of one
// certificate's names at one CA within an hour (Let's Encrypt's "failed validation" limit).
#pragma once

#include <chrono>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "acmetool/pki/storage.h"

namespace acmetool::acme {

/// What is remembered about one certificate's failures at one CA.
struct FailureRecord {
  int consecutive = 0;                                           ///< failed attempts since the last success
  std::chrono::system_clock::time_point first_failure;           ///< of this run of failures
  std::chrono::system_clock::time_point last_failure;
  std::chrono::system_clock::time_point next_attempt;            ///< no attempt before this
  std::vector<std::chrono::system_clock::time_point> validations;  ///< failed validations in the last hour
  std::string last_error;
};

/// Limits of the schedule.
inline constexpr int kMaxFailedValidationsPerHour = 5;
inline constexpr auto kGiveUpAfter = std::chrono::days(30);

/// The wait after the `consecutive`-th failure (1-based): 1 min, 10 min, 100 min, then 1 day,
/// each ±10 %; at least `retry_after` when the CA sent one.
std::chrono::seconds backoff_after(int consecutive, std::optional<std::chrono::seconds> retry_after,
                                   std::mt19937_64& rng);

/// `record` after one more failed attempt at `now`; `failed_validations` of them were the CA
/// finding a challenge unanswered (0 for other failures: the CA down, a rate limit...).
FailureRecord with_failure(FailureRecord record, std::chrono::system_clock::time_point now, int failed_validations,
                           std::optional<std::chrono::seconds> retry_after, std::string error, std::mt19937_64& rng);

/// Why no attempt may be made at `now` (one line, naming when one may), or nullopt when one may.
std::optional<std::string> attempt_blocked(const FailureRecord& record, std::chrono::system_clock::time_point now);

/// Storage key of the record: "acmetool/failures/<issuer_key>/<names_key>.json".
std::string failure_record_key(std::string_view issuer_key, std::string_view names_key);

/// The stored record; nullopt when there is none or it is unreadable (a damaged record must not
/// block issuance forever).
std::optional<FailureRecord> load_failure_record(const pki::Storage& storage, std::string_view issuer_key,
                                                 std::string_view names_key);
/// Stores `record` atomically.
void store_failure_record(pki::Storage& storage, std::string_view issuer_key, std::string_view names_key,
                          const FailureRecord& record);
/// Forgets the record, after a success. Never throws.
void clear_failure_record(pki::Storage& storage, std::string_view issuer_key, std::string_view names_key) noexcept;

}  // namespace acmetool::acme
