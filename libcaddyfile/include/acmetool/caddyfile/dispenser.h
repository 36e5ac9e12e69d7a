// A cursor over tokens with the Caddyfile's notion of lines and blocks (Caddy's Dispenser), used
// by the parser and by everything that reads directives.
#pragma once

#include <string>
#include <vector>

#include "acmetool/caddyfile/error.h"
#include "acmetool/caddyfile/lexer.h"

namespace acmetool::caddyfile {

/// Walks a token list. The cursor starts before the first token: call next() first. Only unquoted
/// braces count as structure. Not thread-safe; cheap to copy.
///
/// The usual loop over a directive with a block:
///   d.next();                                  // the directive name
///   auto args = d.remaining_args();            // its arguments on the same line
///   for (int nesting = d.nesting(); d.next_block(nesting);) {
///     const std::string& sub = d.val();        // a subdirective, then d.next_arg() ...
///   }
class Dispenser {
 public:
  explicit Dispenser(std::vector<Token> tokens);

  /// Moves to the next token; false (cursor unchanged) when there is none. Does not change
  /// nesting(): only next_block() does, as in Caddy.
  bool next();
  /// Moves back one token; false at the start.
  bool prev();
  /// Moves to the next token only if it is on the same line and is not an opening brace.
  bool next_arg();
  /// Moves to the next token only if it starts a new line and is not a closing brace.
  bool next_line();
  /// Moves into and through a block. Returns false when the block that was open at
  /// `initial_nesting` closes or there is no block: call in a loop, as in the class comment.
  bool next_block(int initial_nesting);
  /// How many blocks are open at the cursor.
  int nesting() const noexcept { return nesting_; }

  /// The current token; valid only after a successful next().
  const Token& token() const;
  const std::string& val() const;  ///< the current token's text, "" before the start
  int line() const;                 ///< the current token's line, 0 before the start
  const std::string& file() const;  ///< the current token's file, "" before the start

  /// True when the current token is the first on its line (a different file, a different import
  /// chain, or a later line than the end of the previous token, multi-line tokens counted).
  bool is_new_line() const;
  /// True when the token after the current one starts a new line (or there is none).
  bool is_next_on_new_line() const;

  /// The texts of the remaining tokens on this line, stopping before an opening brace.
  std::vector<std::string> remaining_args();
  /// Same, as tokens.
  std::vector<Token> remaining_arg_tokens();
  /// How many arguments remain on this line, without moving.
  int count_remaining_args() const;

  /// Returns the remaining tokens of the current segment (the rest of this line plus the block it
  /// opens) as a new dispenser positioned before its first token, and moves past them here.
  Dispenser next_segment();

  /// Back to the start.
  void reset() noexcept;

  /// Errors located at the current token: "<file>:<line>: <message>", plus " (imported from
  /// <file>:<line>)" for imported tokens.
  ParseError error(const std::string& message) const;
  /// "wrong argument count or unexpected line ending after '<token>'"
  ParseError arg_error() const;
  /// "syntax error: unexpected token '<token>', expecting '<expected>'"
  ParseError syntax_error(const std::string& expected) const;
  /// "unexpected EOF"
  ParseError eof_error() const;

  const std::vector<Token>& tokens() const noexcept { return tokens_; }
  /// Index of the current token; -1 before the start.
  int cursor() const noexcept { return cursor_; }

 private:
  std::vector<Token> tokens_;
  int cursor_ = -1;
  int nesting_ = 0;
};

/// True when `second` starts on a later line than `first` ends, or they come from different
/// files or import chains (Caddy's isNextOnNewLine).
bool is_next_on_new_line(const Token& first, const Token& second);

/// How many line breaks `token` spans: newlines in its text, plus 2 for a heredoc's marker lines.
int line_breaks(const Token& token);

/// "<file>:<line>: <message>" for an error located at `token`, with its import chain.
ParseError error_at(const Token& token, const std::string& message);

}  // namespace acmetool::caddyfile
