// The Caddyfile lexer: text in, tokens out, exactly as Caddy's caddyconfig/caddyfile/lexer.go reads it.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace acmetool::caddyfile {

/// How a token was written. Quoted tokens are always arguments: a quoted "{" or "}" is text,
/// never a brace (upstream Caddy after v2.11.3).
enum class Quote : unsigned char {
  None,         ///< a bare word
  Double,       ///< "text" (\" unescaped; other backslashes kept with the next character)
  Backtick,     ///< `text` (no escapes at all)
  Heredoc,      ///< <<MARKER ... MARKER, with the closing marker's indentation stripped
};

/// One token. Copies are cheap enough for the parser to move tokens between blocks: the file
/// name and import chain are shared.
struct Token {
  std::string text;
  std::shared_ptr<const std::string> file;  ///< the file the token was read from ("Caddyfile", "-", a path)
  int line = 0;                             ///< 1-based line where the token starts
  Quote quote = Quote::None;
  /// Where this token was imported from, outermost first: "file:line (import name)". Empty for
  /// tokens of the main file. Shared between the tokens of one import.
  std::shared_ptr<const std::vector<std::string>> import_chain;
  /// For tokens copied out of a snippet: the snippet's name (error messages mention it).
  std::string snippet;

  bool quoted() const noexcept { return quote != Quote::None; }
  /// True for an unquoted "{" or "}" (structure, not an argument).
  bool is_open_brace() const noexcept { return quote == Quote::None && text == "{"; }
  bool is_close_brace() const noexcept { return quote == Quote::None && text == "}"; }
  const std::string& file_name() const noexcept;
};

/// Tokenizes one file's text (after environment substitution). A leading UTF-8 BOM is dropped,
/// CR outside quotes is whitespace, `#` at the start of a token begins a comment. `file` is the
/// name put into every token and every error.
/// Throws ParseError ("<file>:<line>: <message>") for a malformed heredoc; the messages are
/// upstream Caddy's, e.g. "incomplete heredoc <<EOF on line #3, expected ending marker EOF".
/// Never throws for anything else: an unterminated quote ends at end of input, as in Caddy.
/// Unlike Caddy, a heredoc closes only at a line holding its marker after optional space/tab
/// padding (further tokens may follow it), never at a marker in the middle of a body line.
/// Thread-safe; the returned tokens share one file-name string.
std::vector<Token> tokenize(std::string_view input, const std::string& file);

/// Looks up an environment variable; nullopt means "unset".
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;

/// The process environment (getenv).
EnvLookup process_environment();

/// Replaces every `{$NAME}` and `{$NAME:default}` in `input` textually, before lexing (Caddy's
/// replaceEnvVars): the name is split at the first ':'; an unset variable with no default becomes
/// the empty string; a set-but-empty one stays empty; values are not expanded again. `{$}` and
/// an unterminated `{$` are left as they are.
std::string substitute_env(std::string_view input, const EnvLookup& env);

}  // namespace acmetool::caddyfile
