// ACME Renewal Information (RFC 9773): the CA's suggested renewal window for a certificate, the
// time this client picked inside it, and when to ask the CA again. The decisions are pure
// functions; AcmeClient::renewal_info (client.h) does the one GET.
#pragma once

#include <chrono>
#include <optional>
#include <random>
#include <string>

#include <openssl/types.h>

namespace acmetool::acme {

/// What a CA said about one certificate, and what we chose from it.
struct RenewalInfo {
  std::chrono::system_clock::time_point window_start;  ///< suggestedWindow.start
  std::chrono::system_clock::time_point window_end;    ///< suggestedWindow.end, after start
  std::string explanation_url;                         ///< explanationURL, may be empty
  /// When to fetch it again: now + Retry-After, clamped to [1 min, 1 day]; 6 h when absent.
  std::chrono::system_clock::time_point next_update;
  /// The renewal time picked uniformly inside the window (RFC 9773 §4.2); epoch until picked.
  std::chrono::system_clock::time_point selected_time;
};

/// The ARI certificate identifier (RFC 9773 §4.1): base64url of the authority key identifier's
/// keyIdentifier, ".", base64url of the serial number's DER content octets. nullopt for a
/// certificate without an authority key identifier (then ARI cannot be used for it).
std::optional<std::string> ari_certificate_id(const X509& cert);

/// Picks a time uniformly at random inside the window.
std::chrono::system_clock::time_point pick_renewal_time(const RenewalInfo& info, std::mt19937_64& rng);

/// Keeps `previous.selected_time` when it still lies inside `fresh`'s window (a CA that moves
/// nothing must not make us re-roll every check), else picks anew. Returns `fresh` with its
/// selected_time set.
RenewalInfo merge_renewal_info(RenewalInfo fresh, const std::optional<RenewalInfo>& previous, std::mt19937_64& rng);

/// True when the certificate should be renewed at `now` by its ARI: the selected time has come
/// (RFC 9773 §4.2 step 2). A client that next looks at `next_check` renews already when the
/// selected time falls before that (step 4); pass `now` when the next check is unknown.
bool ari_due(const RenewalInfo& info, std::chrono::system_clock::time_point now,
             std::chrono::system_clock::time_point next_check);

/// The form CertMagic's acmez stores in a certificate's issuer_data under "renewal_info":
/// {"suggestedWindow":{"start","end"},"explanationURL","_retryAfter","_selectedTime"} with
/// RFC 3339 times. from_json returns nullopt for anything malformed (start not before end...).
std::string renewal_info_to_json(const RenewalInfo& info);
std::optional<RenewalInfo> renewal_info_from_json(std::string_view json_text);

/// Parses a renewalInfo response body; `retry_after` is the answer's Retry-After, if any.
/// Throws acme::Error for a body that is not a valid RenewalInfo (a window whose end is not
/// after its start counts as no answer, RFC 9773 §4.2).
RenewalInfo parse_renewal_info(std::string_view body, std::optional<std::chrono::seconds> retry_after,
                               std::chrono::system_clock::time_point now);

}  // namespace acmetool::acme
