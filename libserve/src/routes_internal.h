// Private pieces of routing shared by routes.cpp (evaluation), placeholders.cpp and
// route_matchers.cpp: the request as the routes change it, and the helpers all three use
// (encode.cpp borrows iequals and match_header_value for its response matcher).
#pragma once

#include <cstddef>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "acmetool/caddyfile/config.h"
#include "acmetool/serve/routes.h"

namespace acmetool::serve::routes_detail {

// ---- routes.cpp

char lower_char(char c);
bool iequals(std::string_view a, std::string_view b);

// Go's url.PathUnescape (or QueryUnescape when `plus_is_space`): nullopt on a bad escape.
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space = false);

// Go's url.ParseQuery: key/value pairs in order; false when a pair does not decode or has ';'.
bool parse_query(std::string_view raw, std::vector<std::pair<std::string, std::string>>& out);

// The request as the routes have changed it so far, and what they decided.
struct Evaluation {
  const RouteRequest& request;
  std::string_view orig_path, orig_query;  // split from request.target, still encoded
  std::string raw_path, query;             // the current URI, encoded
  std::optional<std::string> root;         // the `root` directive's value
  std::set<int> satisfied_groups;          // request-wide, as Caddy's routeGroupCtxKey map
  RouteResult& result;                     // the caller's, filled in place (not moved out)

  Evaluation(const RouteRequest& r, RouteResult& out) : request(r), result(out) {
    std::string_view target = r.target;
    // Absolute-form (RFC 9112 §3.2.2): the path starts after the authority.
    if (const std::size_t scheme_end = target.find("://");
        !target.starts_with('/') && scheme_end != std::string_view::npos) {
      const std::size_t slash = target.find_first_of("/?", scheme_end + 3);
      target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
    }
    const std::size_t q = target.find('?');
    orig_path = target.substr(0, q);
    orig_query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
    raw_path = orig_path;
    query = orig_query;
  }

  // r.URL.Path: decoded, or as is when it does not decode (the server rejects such requests).
  std::string path() const { return percent_decode(raw_path).value_or(raw_path); }
};

std::vector<std::string_view> header_values(const RouteRequest& r, std::string_view name);

// The first value of field `name`, case-insensitively; nullopt when absent.
std::optional<std::string_view> first_header(const RouteRequest& r, std::string_view name);

// `s` as a number when it is 1 to 6 decimal digits.
std::optional<std::size_t> index_of(std::string_view s);

// ---- placeholders.cpp

// The value of cookie `name` in the Cookie fields ("a=1; b=2"), as written (quotes kept);
// nullopt when no cookie has that name.
std::optional<std::string_view> find_cookie(const RouteRequest& r, std::string_view name);

// How values go into a rewritten URI: the path placeholders give the encoded forms, other
// values are escaped for the part they land in.
enum class Escape { None, Path, Query };

// Caddy's Replacer.replace: "\{" and "\}" are literal; an unknown placeholder is emptied or
// kept as written.
std::string expand(std::string_view in, const Evaluation& ev, UnknownPlaceholder unknown,
                   Escape escape = Escape::None);

// ---- route_matchers.cpp

// Caddy's CleanPath: path.Clean keeping a trailing slash; without `merge_slashes` empty segments
// ("//") survive, for patterns that contain them.
std::string caddy_clean_path(std::string_view p, bool merge_slashes);

// Caddy's header value patterns: "*" any, "*in*", "*suf", "pre*", else exact (case-sensitive).
bool match_header_value(std::string_view actual, std::string_view allowed);

// Whether the request matches every matcher of `set` (and none of its `not` sets).
bool matches(const caddyfile::MatcherSet& set, const Evaluation& ev);

}  // namespace acmetool::serve::routes_detail
