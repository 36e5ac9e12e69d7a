// Accept-Encoding (RFC 9110 §12.5.3) as both on-the-fly encoding (encode.cpp) and precompressed
// sidecars (file_server.cpp) read it; and the response matcher that encode's `match` and
// reverse_proxy's `replace_status` (proxy.cpp) share.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "acmetool/caddyfile/config_proxy.h"
#include "acmetool/serve/encode.h"

namespace acmetool::serve::encode_detail {

// Caddy's ResponseMatcher: any of the status codes or classes (5 for 5xx), and every header
// condition.
bool matches_response(const caddyfile::ResponseMatcher& match, const EncodeResponse& response);

// One element of Accept-Encoding.
struct AcceptedCoding {
  std::string coding;  // lower case; "x-gzip" as "gzip" (RFC 9110 §8.4.1.3)
  double q = 1.0;
};

// The elements in order. A q-value that does not parse, or lies outside [0, 1], counts as 1,
// as in Caddy's AcceptedEncodings.
std::vector<AcceptedCoding> parse_accept_encoding(std::string_view field);

// The q-value the client gives `coding` (lower case): its own element's, else the '*'
// element's, else 0.
double accepted_q(const std::vector<AcceptedCoding>& accepted, std::string_view coding);

// Caddy's threshold below which a q-value counts as 0, which excludes a coding, and within which
// two q-values count as equal.
inline constexpr double kQEpsilon = 0.00001;

}  // namespace acmetool::serve::encode_detail
