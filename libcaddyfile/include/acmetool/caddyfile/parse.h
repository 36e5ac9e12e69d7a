// The Caddyfile parser: tokens grouped into server blocks and directive segments, with imports,
// snippets and named routes resolved (Caddy's caddyconfig/caddyfile/parse.go).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "acmetool/caddyfile/lexer.h"

namespace acmetool::caddyfile {

/// One directive line: the directive token, its arguments and, when the line ends in `{`, the
/// whole block up to the matching `}` (braces included, as tokens).
using Segment = std::vector<Token>;

/// A block at the top level of a Caddyfile: the global options block (no keys), a site block
/// (its addresses are the keys) or a named route. Snippets are consumed by the parser and never
/// appear here.
struct ServerBlock {
  /// Site addresses with trailing commas removed, in file order. Empty for the global options block.
  std::vector<Token> keys;
  std::vector<Segment> segments;
  /// False for the one brace-less site a file may have.
  bool has_braces = false;
  /// `&(name) { ... }`: keys holds one token whose text is the name without `&(` and `)`;
  /// segments holds one segment: every token of the block, braces included.
  bool is_named_route = false;
};

/// Something worth telling the user that does not stop parsing ("No files matching import glob
/// pattern: sites/*"). `where` is "file:line".
struct Warning {
  std::string where;
  std::string message;
};

struct ParseOptions {
  /// Used for `{$VAR}` in the main file and every imported file.
  EnvLookup env = process_environment();
  /// Imports with a relative path are resolved against the importing file's directory; for
  /// input without a real file (stdin) against this directory. Empty means the current one.
  std::filesystem::path base_directory;
};

struct ParseResult {
  std::vector<ServerBlock> blocks;
  std::vector<Warning> warnings;
};

/// Parses `input` as the Caddyfile named `file` (used in tokens and errors, and as the base for
/// relative imports when `options.base_directory` is empty). Reads imported files from disk.
/// Throws ParseError "<file>:<line>: <message>" naming the innermost offending token, e.g.
/// "Caddyfile:12: Unexpected '}' because no matching opening brace".
ParseResult parse(std::string_view input, const std::string& file, const ParseOptions& options = {});

/// Reads `path` and parses it. Throws Error when the file cannot be read.
ParseResult parse_file(const std::filesystem::path& path, const ParseOptions& options = {});

/// The whole file. Throws Error ("reading <path>: <reason>") when it cannot be read.
std::string read_caddyfile(const std::filesystem::path& path);

}  // namespace acmetool::caddyfile
