// RFC 3339 time stamps, as ACME (RFC 8555) and CertMagic's JSON files use them.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace acmetool::pki {

/// "2026-11-23T15:04:05.123456789Z": UTC, always nine fraction digits.
std::string format_rfc3339(std::chrono::system_clock::time_point t);

/// Parses "YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)" (any number of fraction digits; 't'/'z' accepted,
/// as Go's time.Parse does). nullopt for anything else.
std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view text);

}  // namespace acmetool::pki
