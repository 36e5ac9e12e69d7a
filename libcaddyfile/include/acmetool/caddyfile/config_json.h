// The JSON form of a Config, as `acmetool adapt` prints it. The schema is documented field by
// field in man/acmetool-adapt.1.
#pragma once

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

#include "acmetool/caddyfile/config.h"

namespace acmetool::caddyfile {

/// The whole Config as one JSON object: {"global": {...}, "sites": [...], "named_routes": {...}}.
/// Unset optional fields are omitted; durations are Go-style strings ("1h30m0s"). Never throws
/// except std::bad_alloc.
nlohmann::json to_json(const Config& config);

/// A duration as Go's time.Duration.String() writes it: "0s", "250ms", "1.5s", "1h30m0s",
/// "-5m0s". Days are written as hours ("168h0m0s").
std::string format_duration(std::chrono::nanoseconds duration);

}  // namespace acmetool::caddyfile
