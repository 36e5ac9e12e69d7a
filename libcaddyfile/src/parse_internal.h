// Private pieces of the parser that import resolution needs: argument placeholders, the import
// graph and file globbing (imports.cpp).
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "acmetool/caddyfile/parse.h"

namespace acmetool::caddyfile::detail {

/// The whole file, or nullopt with errno set when it cannot be opened or read. The one place
/// libcaddyfile reads files (Caddyfiles, imports, environment files); callers word the error.
std::optional<std::string> read_whole_file(const std::filesystem::path& path);

/// Replaces `{args[N]}` and the deprecated `{args.N}` inside `text` with import arguments (Caddy's
/// makeArgsReplacer). An out-of-range or malformed index is left as written and reported in
/// `problems`. Escaped placeholders (`\{args[0]}`) are left alone.
std::string replace_args(std::string_view text, const std::vector<std::string>& args,
                         std::vector<std::string>& problems);

/// A whole-token variadic placeholder `{args[a:b]}` (either bound optional): the half-open range
/// of arguments it stands for, or nullopt when the token is not one (or is invalid, which is then
/// reported in `problems`).
struct ArgRange {
  std::size_t begin;
  std::size_t end;
};
std::optional<ArgRange> parse_variadic(std::string_view text, std::size_t arg_count,
                                       std::vector<std::string>& problems);

/// Who imports whom: nodes are files or "file:snippet". Adding an edge that closes a cycle fails.
class ImportGraph {
 public:
  /// Records from -> each of `to`. Returns the first cycle found as an error message
  /// ("a cycle of imports exists between A and B"), and then adds nothing.
  std::optional<std::string> add_edges(const std::string& from, const std::vector<std::string>& to);

 private:
  bool reaches(const std::string& from, const std::string& to) const;
  std::map<std::string, std::set<std::string>> edges_;
};

/// The files an import pattern names, sorted, with Caddy's rules: at most one `*` and one `?`,
/// no `[...]` classes; dotfiles skipped when the last path segment starts with `*`. A plain path
/// that does not exist is an error; a glob without matches is only a warning.
struct GlobResult {
  std::vector<std::filesystem::path> files;
  std::optional<std::string> error;    ///< message for a ParseError at the import token
  std::optional<std::string> warning;  ///< "No files matching import glob pattern: X"
};
GlobResult expand_import_pattern(const std::string& pattern, const std::filesystem::path& base_directory);

}  // namespace acmetool::caddyfile::detail
