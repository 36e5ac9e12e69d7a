// Pieces of the ACME client that are pure functions, kept apart so they can be tested alone.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "acmetool/acme/error.h"
#include "acmetool/acme/http.h"

namespace acmetool::acme {

/// Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date, relative to `now`. nullopt when
/// absent or unreadable; never negative.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                      std::chrono::system_clock::time_point now);

/// How long to wait before polling again (RFC 8555 §7.5.1, §7.4): the CA's Retry-After when it
/// sent one, kept within [100 ms, 60 s], else `backoff`.
std::chrono::milliseconds next_poll_delay(std::optional<std::chrono::seconds> retry_after,
                                          std::chrono::milliseconds backoff);

/// The (target, rel) pairs of Link header values (RFC 8288), several per value allowed.
std::vector<std::pair<std::string, std::string>> parse_links(const std::vector<std::string>& values);

/// The problem document of an error response (RFC 8555 §6.7), with its Retry-After. A response
/// without one becomes type "about:blank" with detail "HTTP <status>".
ProblemError problem_from(const HttpResponse& response);

/// "urn:ietf:params:acme:error:" + short name, as RFC 8555 §6.7 spells problem types.
std::string problem_type(std::string_view short_name);

}  // namespace acmetool::acme
