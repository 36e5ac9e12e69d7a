#include "acmetool/acme/ari.h"

#include <openssl/asn1.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "acmetool/acme/error.h"
#include "acmetool/acme/jws.h"
#include "acmetool/pki/rfc3339.h"

namespace acmetool::acme {

using std::chrono::system_clock;
using nlohmann::json;

namespace {

// RFC 9773 §4.3: without a usable Retry-After, ask again in six hours; a CA's value is kept
// within a minute and a day, so neither a typo nor a storm makes us hammer or forget it.
constexpr auto kDefaultRecheck = std::chrono::hours(6);
constexpr auto kMinRecheck = std::chrono::minutes(1);
constexpr auto kMaxRecheck = std::chrono::hours(24);

std::string octets(const ASN1_STRING& s) {
  return {reinterpret_cast<const char*>(ASN1_STRING_get0_data(&s)), static_cast<size_t>(ASN1_STRING_length(&s))};
}

// The DER content octets of an INTEGER: two's complement, minimal, so a serial whose top bit is
// set starts with a zero byte (ASN1_INTEGER keeps the magnitude only).
std::string serial_content_octets(const ASN1_INTEGER& serial) {
  std::string bytes = octets(serial);
  if (bytes.empty()) bytes.push_back('\0');
  if (static_cast<unsigned char>(bytes.front()) & 0x80) bytes.insert(bytes.begin(), '\0');
  return bytes;
}

}  // namespace

std::optional<std::string> ari_certificate_id(const X509& cert) {
  const ASN1_OCTET_STRING* key_id = X509_get0_authority_key_id(const_cast<X509*>(&cert));
  const ASN1_INTEGER* serial = X509_get0_serialNumber(&cert);
  if (key_id == nullptr || ASN1_STRING_length(key_id) == 0 || serial == nullptr) return std::nullopt;
  return base64url_encode(octets(*key_id)) + "." + base64url_encode(serial_content_octets(*serial));
}

system_clock::time_point pick_renewal_time(const RenewalInfo& info, std::mt19937_64& rng) {
  const auto span = std::chrono::duration_cast<std::chrono::seconds>(info.window_end - info.window_start);
  std::uniform_int_distribution<long long> offset(0, std::max<long long>(span.count(), 0));
  return info.window_start + std::chrono::seconds(offset(rng));
}

RenewalInfo merge_renewal_info(RenewalInfo fresh, const std::optional<RenewalInfo>& previous, std::mt19937_64& rng) {
  const bool keep = previous && previous->selected_time >= fresh.window_start &&
                    previous->selected_time <= fresh.window_end;
  fresh.selected_time = keep ? previous->selected_time : pick_renewal_time(fresh, rng);
  return fresh;
}

bool ari_due(const RenewalInfo& info, system_clock::time_point now, system_clock::time_point next_check) {
  return info.selected_time <= std::max(now, next_check);
}

std::string renewal_info_to_json(const RenewalInfo& info) {
  nlohmann::ordered_json doc;
  doc["suggestedWindow"] = {{"start", pki::format_rfc3339(info.window_start)},
                            {"end", pki::format_rfc3339(info.window_end)}};
  if (!info.explanation_url.empty()) doc["explanationURL"] = info.explanation_url;
  doc["_retryAfter"] = pki::format_rfc3339(info.next_update);
  doc["_selectedTime"] = pki::format_rfc3339(info.selected_time);
  return doc.dump();
}

namespace {

std::optional<system_clock::time_point> time_field(const json& object, const char* name) {
  const auto it = object.find(name);
  if (it == object.end() || !it->is_string()) return std::nullopt;
  return pki::parse_rfc3339(it->get<std::string>());
}

// The window and explanation of a RenewalInfo object; nullopt unless start < end.
std::optional<RenewalInfo> window_of(const json& doc) {
  if (!doc.is_object()) return std::nullopt;
  const auto window = doc.find("suggestedWindow");
  if (window == doc.end() || !window->is_object()) return std::nullopt;
  const auto start = time_field(*window, "start"), end = time_field(*window, "end");
  if (!start || !end || *end <= *start) return std::nullopt;
  RenewalInfo info;
  info.window_start = *start;
  info.window_end = *end;
  if (const auto url = doc.find("explanationURL"); url != doc.end() && url->is_string()) info.explanation_url = *url;
  return info;
}

}  // namespace

std::optional<RenewalInfo> renewal_info_from_json(std::string_view json_text) {
  const json doc = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  std::optional<RenewalInfo> info = window_of(doc);
  if (!info) return std::nullopt;
  info->next_update = time_field(doc, "_retryAfter").value_or(system_clock::time_point{});
  info->selected_time = time_field(doc, "_selectedTime").value_or(system_clock::time_point{});
  return info;
}

RenewalInfo parse_renewal_info(std::string_view body, std::optional<std::chrono::seconds> retry_after,
                               system_clock::time_point now) {
  std::optional<RenewalInfo> info = window_of(json::parse(body, nullptr, /*allow_exceptions=*/false));
  if (!info) throw Error("the CA's renewal information has no valid suggestedWindow (start before end)");
  const std::chrono::seconds recheck =
      retry_after ? std::clamp<std::chrono::seconds>(*retry_after, kMinRecheck, kMaxRecheck) : kDefaultRecheck;
  info->next_update = now + recheck;
  return *info;
}

}  // namespace acmetool::acme
