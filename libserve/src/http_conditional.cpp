// Validators, conditional requests and byte ranges of the `file_server` handler (issue 8): dates
// (RFC 9110 §5.6.7), ETags and preconditions (§8.8, §13), Range and multipart/byteranges (§14).
#include "acmetool/serve/file_server.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>
#include <utility>

#include "file_server_internal.h"

namespace acmetool::serve {

namespace fs = std::filesystem;
using std::chrono::system_clock;
using file_server_detail::iequals;
using file_server_detail::trim_ows;

// ---- Validators, dates

std::optional<system_clock::time_point> useful_mod_time(fs::file_time_type modified) {
  const auto t = std::chrono::file_clock::to_sys(modified);
  const auto unix_seconds = std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()).count();
  // Caddy issue #5548: packagers set times to 0 or 1 for reproducible builds.
  if (unix_seconds == 0 || unix_seconds == 1) return std::nullopt;
  return std::chrono::time_point_cast<system_clock::duration>(t);
}

namespace {

std::string base36(std::uint64_t value) {
  std::string digits;
  do {
    digits += "0123456789abcdefghijklmnopqrstuvwxyz"[value % 36];
    value /= 36;
  } while (value != 0);
  return {digits.rbegin(), digits.rend()};
}

}  // namespace

std::string file_etag(fs::file_time_type modified, std::uintmax_t size) {
  const auto t = useful_mod_time(modified);
  if (!t) return "";
  const auto seconds = std::chrono::floor<std::chrono::seconds>(t->time_since_epoch()).count();
  // Go's strconv.FormatInt(mtime, 36): a '-' before the digits of times before 1970.
  const std::string time_part = seconds < 0 ? "-" + base36(0 - static_cast<std::uint64_t>(seconds))
                                            : base36(static_cast<std::uint64_t>(seconds));
  return "\"" + time_part + base36(size) + "\"";
}

namespace {

constexpr const char* kWeekdays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr const char* kLongWeekdays[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                         "Thursday", "Friday", "Saturday"};
constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// A cursor over an HTTP-date.
struct DateScanner {
  std::string_view text;

  bool literal(std::string_view expected) {
    if (text.substr(0, expected.size()) != expected) return false;
    text.remove_prefix(expected.size());
    return true;
  }
  // One of `names`; its index in `index`.
  template <size_t N>
  bool name(const char* const (&names)[N], int& index) {
    for (size_t i = 0; i < N; ++i) {
      if (literal(names[i])) {
        index = static_cast<int>(i);
        return true;
      }
    }
    return false;
  }
  bool digits(size_t count, int& out) {
    if (text.size() < count) return false;
    out = 0;
    for (size_t i = 0; i < count; ++i) {
      if (text[i] < '0' || text[i] > '9') return false;
      out = out * 10 + (text[i] - '0');
    }
    text.remove_prefix(count);
    return true;
  }
  bool time_of_day(int& hour, int& minute, int& second) {
    return digits(2, hour) && literal(":") && digits(2, minute) && literal(":") &&
           digits(2, second);
  }
};

struct DateFields {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
};

bool parse_imf_fixdate(DateScanner s, DateFields& f) {  // Sun, 06 Nov 1994 08:49:37 GMT
  int ignored = 0;
  return s.name(kWeekdays, ignored) && s.literal(", ") && s.digits(2, f.day) && s.literal(" ") &&
         s.name(kMonths, f.month) && s.literal(" ") && s.digits(4, f.year) && s.literal(" ") &&
         s.time_of_day(f.hour, f.minute, f.second) && s.literal(" GMT") && s.text.empty();
}

bool parse_rfc850_date(DateScanner s, DateFields& f) {  // Sunday, 06-Nov-94 08:49:37 GMT
  int ignored = 0;
  if (!(s.name(kLongWeekdays, ignored) && s.literal(", ") && s.digits(2, f.day) && s.literal("-") &&
        s.name(kMonths, f.month) && s.literal("-") && s.digits(2, f.year) && s.literal(" ") &&
        s.time_of_day(f.hour, f.minute, f.second) && s.literal(" GMT") && s.text.empty())) {
    return false;
  }
  f.year += f.year >= 69 ? 1900 : 2000;  // Go's rule for two-digit years
  return true;
}

bool parse_asctime_date(DateScanner s, DateFields& f) {  // Sun Nov  6 08:49:37 1994
  int ignored = 0;
  if (!(s.name(kWeekdays, ignored) && s.literal(" ") && s.name(kMonths, f.month) &&
        s.literal(" "))) {
    return false;
  }
  if (!(s.literal(" ") ? s.digits(1, f.day) : s.digits(2, f.day))) return false;
  return s.literal(" ") && s.time_of_day(f.hour, f.minute, f.second) && s.literal(" ") &&
         s.digits(4, f.year) && s.text.empty();
}

}  // namespace

std::string http_date(system_clock::time_point t) {
  using namespace std::chrono;
  const auto secs = floor<seconds>(t);
  const auto day = floor<days>(secs);
  const year_month_day ymd{day};
  const hh_mm_ss hms{secs - day};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02u %s %04d %02d:%02d:%02d GMT",
                kWeekdays[weekday{day}.c_encoding()], static_cast<unsigned>(ymd.day()),
                kMonths[static_cast<unsigned>(ymd.month()) - 1], static_cast<int>(ymd.year()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return buf;
}

std::optional<system_clock::time_point> parse_http_date(std::string_view text) {
  using namespace std::chrono;
  DateFields f;
  const DateScanner scanner{text};
  if (!parse_imf_fixdate(scanner, f) && !parse_rfc850_date(scanner, f) &&
      !parse_asctime_date(scanner, f)) {
    return std::nullopt;
  }
  const year_month_day ymd{year{f.year}, month{static_cast<unsigned>(f.month + 1)},
                           day{static_cast<unsigned>(f.day)}};
  if (!ymd.ok() || f.hour > 23 || f.minute > 59 || f.second > 59) return std::nullopt;
  // system_clock counts nanoseconds in 64 bits: years 1678..2261 only (a date outside, like
  // "0997", would wrap around and compare wrongly). Such a date is no date at all.
  if (f.year < 1678 || f.year > 2261) return std::nullopt;
  return sys_days{ymd} + hours{f.hour} + minutes{f.minute} + seconds{f.second};
}

// ---- Conditional requests

namespace {

// Go's scanETag: the entity tag (W/"x" or "x") at the start of `s` and what follows it; an
// empty tag when there is none.
std::pair<std::string_view, std::string_view> scan_etag(std::string_view s) {
  s = trim_ows(s);
  const size_t start = s.substr(0, 2) == "W/" ? 2 : 0;
  if (s.size() < start + 2 || s[start] != '"') return {};
  for (size_t i = start + 1; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"') return {s.substr(0, i + 1), s.substr(i + 1)};
    if (!(c == 0x21 || (c >= 0x23 && c <= 0x7e) || c >= 0x80)) return {};
  }
  return {};
}

bool strong_match(std::string_view a, std::string_view b) {
  return a == b && !a.empty() && a.front() == '"';
}

bool weak_match(std::string_view a, std::string_view b) {
  if (a.substr(0, 2) == "W/") a.remove_prefix(2);
  if (b.substr(0, 2) == "W/") b.remove_prefix(2);
  return a == b;
}

// Whether an If-Match or If-None-Match list names `etag` ('*' names any).
bool etag_listed(std::string_view list, std::string_view etag, bool weak) {
  for (;;) {
    list = trim_ows(list);
    if (list.empty()) return false;
    if (list.front() == ',') {
      list.remove_prefix(1);
      continue;
    }
    if (list.front() == '*') return true;
    const auto [tag, rest] = scan_etag(list);
    if (tag.empty()) return false;
    if (weak ? weak_match(tag, etag) : strong_match(tag, etag)) return true;
    list = rest;
  }
}

// Whether `modified`, to the second, is at or before the date in `field`; nullopt when the
// date cannot be used.
std::optional<bool> not_modified_since(std::string_view field,
                                       std::optional<system_clock::time_point> modified) {
  if (field.empty() || !modified) return std::nullopt;
  const auto date = parse_http_date(trim_ows(field));
  if (!date) return std::nullopt;
  return std::chrono::floor<std::chrono::seconds>(*modified) <= *date;
}

}  // namespace

Precondition evaluate_preconditions(std::string_view method, const ConditionalHeaders& headers,
                                    std::string_view etag,
                                    std::optional<system_clock::time_point> modified) {
  // RFC 9110 §13.2.2 steps 1 and 2.
  if (!headers.if_match.empty()) {
    if (!etag_listed(headers.if_match, etag, /*weak=*/false)) return Precondition::Failed;
  } else if (const auto unmodified = not_modified_since(headers.if_unmodified_since, modified)) {
    if (!*unmodified) return Precondition::Failed;
  }
  const bool get_or_head = method == "GET" || method == "HEAD";
  // Steps 3 and 4.
  if (!headers.if_none_match.empty()) {
    if (etag_listed(headers.if_none_match, etag, /*weak=*/true)) {
      return get_or_head ? Precondition::NotModified : Precondition::Failed;
    }
  } else if (get_or_head) {
    if (not_modified_since(headers.if_modified_since, modified).value_or(false)) {
      return Precondition::NotModified;
    }
  }
  return Precondition::Proceed;
}

bool if_range_matches(std::string_view if_range, std::string_view etag,
                      std::optional<system_clock::time_point> modified) {
  if (if_range.empty()) return true;
  if (const auto tag = scan_etag(if_range).first; !tag.empty()) return strong_match(tag, etag);
  if (!modified) return false;
  const auto date = parse_http_date(trim_ows(if_range));
  return date && *date == std::chrono::floor<std::chrono::seconds>(*modified);
}

// ---- Ranges

namespace {

constexpr size_t kMaxRanges = 100;

// Decimal digits only; saturates at the maximum instead of overflowing (a start that large is
// merely unsatisfiable). nullopt when empty or not all digits.
std::optional<std::uint64_t> parse_decimal(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::uint64_t value = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    value = value > (UINT64_MAX - digit) / 10 ? UINT64_MAX : value * 10 + digit;
  }
  return value;
}

enum class SpecResult { Invalid, Unsatisfiable, Satisfiable };

// One range-spec (RFC 9110 §14.1.1) of a representation of `size` > 0 bytes, its last byte
// clamped to the end.
SpecResult parse_range_spec(std::string_view spec, std::uint64_t size, ByteRange& range) {
  const auto dash = spec.find('-');
  if (dash == std::string_view::npos) return SpecResult::Invalid;
  const std::string_view first_text = trim_ows(spec.substr(0, dash)),
                         last_text = trim_ows(spec.substr(dash + 1));
  if (first_text.empty()) {  // suffix-range: the last N bytes
    const auto length = parse_decimal(last_text);
    if (!length) return SpecResult::Invalid;
    if (*length == 0) return SpecResult::Unsatisfiable;
    range = {size - std::min(*length, size), size - 1};
    return SpecResult::Satisfiable;
  }
  const auto first = parse_decimal(first_text);
  const auto last =
      last_text.empty() ? std::optional<std::uint64_t>(UINT64_MAX) : parse_decimal(last_text);
  if (!first || !last || *last < *first) return SpecResult::Invalid;
  if (*first >= size) return SpecResult::Unsatisfiable;
  range = {*first, std::min(*last, size - 1)};
  return SpecResult::Satisfiable;
}

}  // namespace

std::optional<std::vector<ByteRange>> parse_range(std::string_view header, std::uint64_t size) {
  const auto equals = header.find('=');
  if (equals == std::string_view::npos || !iequals(header.substr(0, equals), "bytes") ||
      size == 0) {
    return std::nullopt;
  }
  std::vector<ByteRange> ranges;
  size_t specs = 0;
  for (std::string_view rest = header.substr(equals + 1);;) {
    const auto comma = rest.find(',');
    // Empty list elements are allowed (RFC 9110 §5.6.1).
    if (const std::string_view spec = trim_ows(rest.substr(0, comma)); !spec.empty()) {
      if (++specs > kMaxRanges) return std::nullopt;
      ByteRange range;
      const auto parsed = parse_range_spec(spec, size, range);
      if (parsed == SpecResult::Invalid) return std::nullopt;
      if (parsed == SpecResult::Satisfiable) ranges.push_back(range);
    }
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  if (specs == 0) return std::nullopt;
  // Go's http.ServeContent: ranges adding up to more than the whole are probably an attack.
  std::uint64_t total = 0;
  for (const auto& range : ranges) {
    const std::uint64_t length = range.last - range.first + 1;
    if (length > size - total) return std::nullopt;
    total += length;
  }
  return ranges;
}

MultipartPlan plan_multipart(const std::vector<ByteRange>& ranges, std::uint64_t size,
                             std::string_view content_type) {
  MultipartPlan plan;
  // Go's mime/multipart: 30 random bytes in hex.
  std::random_device random;
  std::uniform_int_distribution<int> nibble(0, 15);
  for (int i = 0; i < 60; ++i) plan.boundary += "0123456789abcdef"[nibble(random)];
  plan.content_type = "multipart/byteranges; boundary=" + plan.boundary;
  for (size_t i = 0; i < ranges.size(); ++i) {
    std::string header = i == 0 ? "" : "\r\n";
    header += "--" + plan.boundary + "\r\nContent-Range: bytes " + std::to_string(ranges[i].first) +
              "-" + std::to_string(ranges[i].last) + "/" + std::to_string(size) + "\r\n";
    if (!content_type.empty()) header.append("Content-Type: ").append(content_type).append("\r\n");
    header += "\r\n";
    plan.content_length += header.size() + (ranges[i].last - ranges[i].first + 1);
    plan.part_headers.push_back(std::move(header));
  }
  plan.closing = "\r\n--" + plan.boundary + "--\r\n";
  plan.content_length += plan.closing.size();
  return plan;
}

}  // namespace acmetool::serve
