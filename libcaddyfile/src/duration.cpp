#include "acmetool/caddyfile/duration.h"

#include <cmath>
#include <cstdint>

namespace acmetool::caddyfile {
namespace {

struct Unit {
  std::string_view name;
  double nanoseconds;
};
// Longest names first so "ms" is not read as "m".
constexpr Unit kUnits[] = {
    {"ns", 1},           {"us", 1e3},         {"\xc2\xb5s", 1e3},  // µs (U+00B5)
    {"\xce\xbcs", 1e3},  // μs (U+03BC), which Go accepts too
    {"ms", 1e6},         {"s", 1e9},          {"m", 60e9},         {"h", 3600e9}, {"d", 86400e9},
};

bool is_digit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

std::optional<std::chrono::nanoseconds> parse_duration(std::string_view text) {
  double sign = 1;
  if (!text.empty() && (text.front() == '-' || text.front() == '+')) {
    if (text.front() == '-') sign = -1;
    text.remove_prefix(1);
  }
  if (text == "0") return std::chrono::nanoseconds(0);
  if (text.empty()) return std::nullopt;

  double total = 0;
  while (!text.empty()) {
    // A number: digits, optionally a fraction; at least one digit in all.
    size_t i = 0;
    while (i < text.size() && is_digit(text[i])) ++i;
    size_t digits = i;
    if (i < text.size() && text[i] == '.') {
      ++i;
      while (i < text.size() && is_digit(text[i])) ++i, ++digits;
    }
    if (digits == 0) return std::nullopt;
    const double value = std::stod(std::string(text.substr(0, i)));
    text.remove_prefix(i);

    const Unit* unit = nullptr;
    for (const Unit& candidate : kUnits) {
      if (text.starts_with(candidate.name) &&
          (!unit || candidate.name.size() > unit->name.size())) {
        unit = &candidate;
      }
    }
    if (!unit) return std::nullopt;
    text.remove_prefix(unit->name.size());
    total += value * unit->nanoseconds;
  }
  if (total > static_cast<double>(INT64_MAX)) return std::nullopt;
  return std::chrono::nanoseconds(static_cast<std::int64_t>(std::llround(sign * total)));
}

}  // namespace acmetool::caddyfile
