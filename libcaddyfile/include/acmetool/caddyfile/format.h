// `acmetool fmt`: formats a Caddyfile exactly as upstream `caddy fmt` does.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace acmetool::caddyfile {

/// Formats Caddyfile text as upstream Caddy's `caddy fmt` does (caddyconfig/caddyfile/formatter.go
/// after v2.11.3), byte for byte on every input that upstream formats without changing what the
/// file means. The rules:
/// - leading and trailing whitespace is dropped and the result ends with one '\n';
/// - each line is indented with one TAB per open block (at most 10), runs of spaces and tabs
///   between tokens become one space, CRs outside quotes are dropped;
/// - at most one blank line is kept (two right after a comment line, an upstream quirk), none
///   right after `{` and none before `}`;
/// - a `{` that ends a token list is written at the end of its line after one space; a `{` on its
///   own line is pulled up to the previous line, except after a comment line, at the start of the
///   file and after a top-level `import` line; whatever follows `{` on its line moves to the next;
/// - `}` goes on its own line; after a top-level `}` the next block starts after one blank line;
///   text after a nested `}` on the same line comes out as "}<TAB>text" (upstream quirk);
/// - a `#` inside a word turns the rest of its line into verbatim text (upstream quirk);
/// - token text, quotes, backtick strings, heredoc bodies, comments and escapes are copied as they
///   are.
///
/// Unlike upstream, the result always lexes (caddyfile::tokenize) to the same tokens, texts and
/// quote kinds, as the input, and formatting it again changes nothing. Where upstream would break
/// that (a brace glued to a word such as `foo{ `, a `{` at the very end, a backtick string at the
/// start of a line, a lone `{` after `import` and a blank line, bare CRs, invalid UTF-8, which
/// upstream turns into U+FFFD) this function keeps the tokens; libcaddyfile/src/format.cpp lists
/// each divergence. Input that ends inside an unterminated quoted string is returned without the
/// final '\n', which would otherwise become part of that string.
///
/// Pure: no I/O, one pass, linear in the input; never throws except std::bad_alloc. Any bytes are
/// accepted. Thread-safe.
std::string format(std::string_view input);

/// The 1-based line of `before` on which `before` and `after` first differ (upstream's
/// FormattingDifference: the line of the first differing byte, counting '\n' in `before`), or 0
/// when they are equal. Used for "FILE:LINE: Caddyfile input is not formatted".
std::size_t first_difference_line(std::string_view before, std::string_view after);

/// 0 when `input` is already formatted, CRLF line endings read as LF (as upstream checks), else
/// the first line formatting would change.
std::size_t unformatted_line(std::string_view input);

}  // namespace acmetool::caddyfile
