// The Caddyfile adapter: parsed server blocks in, the typed Config (config.h) out, with Caddy's
// rules for global options, site addresses, directive order, matchers and certificate issuers.
#pragma once

#include <filesystem>
#include <vector>

#include "acmetool/caddyfile/config.h"
#include "acmetool/caddyfile/parse.h"

namespace acmetool::caddyfile {

/// Adapts parsed blocks (parse.h) to a Config. The global options block must be the first block;
/// named routes become Config::named_routes; every other block is a site. Appends non-fatal
/// findings to `warnings` ("basicauth is deprecated; use basic_auth"), each with its "file:line".
///
/// Throws ParseError, one line "<file>:<line>: <message>" located at the offending token, for:
/// an unknown global option or directive (with "did you mean" when one is close), an unknown
/// subdirective, a bad argument count, a bad duration, port or status code, an undefined
/// "@matcher", a site address that does not parse or breaks convention, a site key that is a
/// directive or a matcher, the same address in two sites on one listener, HTTP and HTTPS on one
/// listener, and a name that cannot have a certificate. Pure: no I/O. Thread-safe.
Config adapt(const ParseResult& parsed, std::vector<Warning>& warnings);

/// parse_file() then adapt(). `warnings` gets, in order: "Caddyfile input is not formatted" at
/// the first line `fmt` would change (as `caddy adapt` warns), the parser's warnings, the
/// adapter's. Throws Error when
/// the file (or an import) cannot be read, ParseError as parse() and adapt() do.
Config adapt_file(const std::filesystem::path& path, const ParseOptions& options, std::vector<Warning>& warnings);

}  // namespace acmetool::caddyfile
