// Environment files for `--envfile`: KEY=VALUE lines read into a lookup used for `{$VAR}`, so
// the process environment itself is never modified.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include "acmetool/caddyfile/lexer.h"

namespace acmetool::caddyfile {

/// Parses an environment file as Caddy's --envfile does: one KEY=VALUE per line; blank lines and
/// lines starting with '#' are skipped; an "export " prefix is ignored; a value may be quoted
/// with '...' or "..." (the quotes are removed, and a quoted value may span lines); a '#' after
/// an unquoted value starts a comment. `file` names the source in errors.
/// Throws ParseError "<file>:<line>: <reason>" for a line without '=', an empty key, a key with
/// white space, or white space before the value.
std::map<std::string, std::string> parse_env_file(std::string_view text, const std::string& file);

/// Reads and parses `path`. Throws Error when it cannot be read, ParseError as above.
std::map<std::string, std::string> read_env_file(const std::filesystem::path& path);

/// A lookup that answers from `values` first and falls back to `fallback` (usually
/// process_environment()). Copies `values`.
EnvLookup env_lookup_with(std::map<std::string, std::string> values, EnvLookup fallback);

}  // namespace acmetool::caddyfile
