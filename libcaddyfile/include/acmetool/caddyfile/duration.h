// Durations as Caddy writes them: Go's time.ParseDuration syntax plus "d" for days.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace acmetool::caddyfile {

/// Parses "12h", "1h30m", "1.5h", "90s", "250ms", "7d", "-5m", "0" (Go's units ns, us, µs, ms, s,
/// m, h, plus Caddy's d = 24h). nullopt for anything else, including a number without a unit
/// (other than 0) and values that overflow.
std::optional<std::chrono::nanoseconds> parse_duration(std::string_view text);

}  // namespace acmetool::caddyfile
