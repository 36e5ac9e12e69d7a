// Caddy's `basic_auth` handler (caddyauth/basicauth.go) for routes.cpp: HTTP Basic credentials
// (RFC 7617) checked against bcrypt hashes with libxcrypt.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "acmetool/caddyfile/config.h"
#include "acmetool/serve/routes.h"

namespace acmetool::serve::routes_detail {

// The bcrypt hash an account of the Caddyfile gives: "$2a$..." as written (Caddy 2.8), or base64
// of it as `caddy hash-password` printed before (standard or URL-safe alphabet, padded or not).
// nullopt when it is neither, or not a well-formed bcrypt hash.
std::optional<std::string> bcrypt_hash(std::string_view encoded);

// What in `auth` serve cannot run (argon2id, an account whose hash is not bcrypt), or nullopt.
std::optional<std::string> unsupported_basic_auth(const caddyfile::BasicAuthHandler& auth);

// Caddy's HTTPBasicAuth.Authenticate: the user named by the request's first Authorization field
// ("Basic <base64(user:password)>") when that account's hash matches the password; nullopt when
// the field is absent or malformed, the user unknown or the password wrong. Costs one bcrypt
// computation, also for an unknown user (against a dummy hash of the same cost, so that timing
// does not tell which users exist), unless these credentials succeeded recently: successes are
// remembered process-wide (at most 1,000), failures never. Thread-safe; throws only
// std::bad_alloc.
std::optional<std::string> authenticate(const caddyfile::BasicAuthHandler& auth,
                                        const RouteRequest& request);

}  // namespace acmetool::serve::routes_detail
