#include "acmetool/acme/failures.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "acmetool/pki/rfc3339.h"
#include "acmetool/pki/storage_keys.h"

namespace acmetool::acme {

using std::chrono::system_clock;
using nlohmann::json;

std::chrono::seconds backoff_after(int consecutive, std::optional<std::chrono::seconds> retry_after,
                                   std::mt19937_64& rng) {
  using namespace std::chrono_literals;
  static constexpr std::chrono::seconds kSteps[] = {1min, 10min, 100min, 24h};
  const std::chrono::seconds base = kSteps[std::clamp(consecutive, 1, 4) - 1];
  std::uniform_real_distribution<double> jitter(0.9, 1.1);
  const auto wait = std::chrono::seconds(static_cast<long long>(static_cast<double>(base.count()) * jitter(rng)));
  return std::max(wait, retry_after.value_or(0s));
}

FailureRecord with_failure(FailureRecord record, system_clock::time_point now, int failed_validations,
                           std::optional<std::chrono::seconds> retry_after, std::string error, std::mt19937_64& rng) {
  if (record.consecutive == 0) record.first_failure = now;
  ++record.consecutive;
  record.last_failure = now;
  record.last_error = std::move(error);
  std::erase_if(record.validations, [&](auto t) { return now - t >= std::chrono::hours(1); });
  for (int i = 0; i < failed_validations; ++i) record.validations.push_back(now);
  record.next_attempt = now + backoff_after(record.consecutive, retry_after, rng);
  return record;
}

std::optional<std::string> attempt_blocked(const FailureRecord& record, system_clock::time_point now) {
  if (record.consecutive == 0) return std::nullopt;
  const std::string summary = std::to_string(record.consecutive) + " failed attempt" +
                              (record.consecutive == 1 ? "" : "s") + ", last: " + record.last_error;
  if (now - record.first_failure >= kGiveUpAfter) {
    return "gave up after 30 days of failures (" + summary + ")";
  }
  std::vector<system_clock::time_point> recent;
  for (auto t : record.validations) {
    if (now - t < std::chrono::hours(1)) recent.push_back(t);
  }
  if (static_cast<int>(recent.size()) >= kMaxFailedValidationsPerHour) {
    std::sort(recent.begin(), recent.end());
    const auto until = recent[recent.size() - kMaxFailedValidationsPerHour] + std::chrono::hours(1);
    return std::to_string(recent.size()) + " failed validations in the last hour; next attempt after " +
           pki::format_rfc3339(until) + " (" + summary + ")";
  }
  if (now < record.next_attempt) {
    return "backing off until " + pki::format_rfc3339(record.next_attempt) + " (" + summary + ")";
  }
  return std::nullopt;
}

std::string failure_record_key(std::string_view issuer_key, std::string_view names_key) {
  return "acmetool/failures/" + pki::keys::safe(issuer_key) + "/" + pki::keys::safe(names_key) + ".json";
}

namespace {

std::optional<system_clock::time_point> time_field(const json& doc, const char* name) {
  const auto it = doc.find(name);
  return it != doc.end() && it->is_string() ? pki::parse_rfc3339(it->get<std::string>()) : std::nullopt;
}

}  // namespace

std::optional<FailureRecord> load_failure_record(const pki::Storage& storage, std::string_view issuer_key,
                                                 std::string_view names_key) {
  std::optional<std::string> text;
  try {
    text = storage.load(failure_record_key(issuer_key, names_key));
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (!text) return std::nullopt;
  const json doc = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || !doc.value("consecutive", json()).is_number_integer()) return std::nullopt;
  FailureRecord record;
  record.consecutive = std::max(0, doc["consecutive"].get<int>());
  const auto first = time_field(doc, "first_failure"), last = time_field(doc, "last_failure");
  const auto next = time_field(doc, "next_attempt");
  if (!first || !last || !next) return std::nullopt;
  record.first_failure = *first;
  record.last_failure = *last;
  record.next_attempt = *next;
  for (const json& t : doc.value("failed_validations", json::array())) {
    if (auto when = t.is_string() ? pki::parse_rfc3339(t.get<std::string>()) : std::nullopt) {
      record.validations.push_back(*when);
    }
  }
  record.last_error = doc.value("last_error", "");
  return record;
}

void store_failure_record(pki::Storage& storage, std::string_view issuer_key, std::string_view names_key,
                          const FailureRecord& record) {
  nlohmann::ordered_json doc = {{"consecutive", record.consecutive},
                                {"first_failure", pki::format_rfc3339(record.first_failure)},
                                {"last_failure", pki::format_rfc3339(record.last_failure)},
                                {"next_attempt", pki::format_rfc3339(record.next_attempt)},
                                {"failed_validations", json::array()},
                                {"last_error", record.last_error}};
  for (auto t : record.validations) doc["failed_validations"].push_back(pki::format_rfc3339(t));
  storage.store(failure_record_key(issuer_key, names_key), doc.dump(1, '\t'));
}

void clear_failure_record(pki::Storage& storage, std::string_view issuer_key, std::string_view names_key) noexcept {
  try {
    storage.erase(failure_record_key(issuer_key, names_key));
  } catch (const std::exception&) {
  }
}

}  // namespace acmetool::acme
