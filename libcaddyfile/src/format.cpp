// The Caddyfile formatter: upstream's character-level rewriter (caddyconfig/caddyfile/formatter.go
// after v2.11.3) driven by our lexer's idea of where tokens, quoted strings, comments and heredocs
// begin and end.
//
// Upstream walks the input one rune at a time with a dozen flags (`space`, `beginningOfLine`,
// `openBrace`, `newLines`, ...) and decides all whitespace itself. We keep those flags and those
// decisions, so every quirk of its layout survives (`}<TAB>text`, two blank lines after a
// comment, a `#` inside a word making the rest of its line verbatim, the lone `{` after a
// top-level `import`). What we do not copy is its own little lexer, which disagrees with the real
// one in corners where it then rewrites the inside of a token. Here a quoted string, a backtick
// string, a heredoc or a comment is recognised exactly where lexer.cpp recognises it and copied
// verbatim, so formatting only ever changes whitespace between tokens.
//
// Deliberate divergences from upstream, each one a case where upstream changes the tokens (or is
// not idempotent):
// - A `{` or `}` glued to other text (`foo{ `, `}}}`, `}ghi{`, `pqr}`) is part of that word, as
//   for the lexer, not a brace. Upstream splits the word.
// - A `{` at the very end of the input is kept; upstream drops it (caddy issue #8046).
// - `{{` keeps both braces; upstream loses the first one.
// - A backtick string at the start of a line or after `}` gets the same layout as any other
//   token; upstream glues it to the previous line or indents inside it. A backslash escapes
//   nothing inside backticks.
// - A word starting with a backslash after a line break or a pending `{` is laid out like any
//   other word; upstream appends it to the previous line (and loses the `{`).
// - `"a""b"`, `"x"<<EOF`, `\"...` and `\#...` start a string, heredoc or comment where the lexer
//   starts one.
// - A heredoc ends only at a line holding its marker (lexer.cpp's rule), and `<<EOF` followed by
//   CRLF opens one; a `<<EOF` word left plain by a following space keeps a space before the line
//   break, which would otherwise turn it into a heredoc.
// - A lone `{` after a top-level `import` line stays on its own line after a blank line or a
//   comment line too; upstream HEAD joins it there (`import x {`), which changes the meaning.
// - A bare CR (one not followed by LF) is dropped without separating words, as the lexer does;
//   upstream turns it into a space. Invalid UTF-8 is copied as it is; upstream writes U+FFFD.
// - Input ending inside an unterminated quoted string gets no final newline.
#include "acmetool/caddyfile/format.h"

#include <algorithm>
#include <array>

#include "space_internal.h"

namespace acmetool::caddyfile {
namespace {

constexpr int kMaxIndent = 10;  // upstream's cap (caddy issue #4169)

using detail::space_length;

// Byte length of the whitespace character that ends at `end` (exclusive), or 0.
std::size_t space_len_before(std::string_view s, std::size_t end) {
  for (std::size_t len = 1; len <= 3 && len <= end; ++len) {
    if (space_length(s, end - len) == len) return len;
  }
  return 0;
}

// Byte length of the character at `pos`: a whole UTF-8 sequence, or 1 for a stray byte.
std::size_t char_len(std::string_view in, std::size_t pos) {
  const auto c = static_cast<unsigned char>(in[pos]);
  const std::size_t len = c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF8 ? 4 : 1;
  if (pos + len > in.size()) return 1;
  for (std::size_t i = 1; i < len; ++i) {
    if ((static_cast<unsigned char>(in[pos + i]) & 0xC0) != 0x80) return 1;
  }
  return len;
}

bool is_marker_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

// How a word starting with "<<" ends, as lexer.cpp reads it.
struct HeredocOpening {
  std::size_t end = 0;  // position of the ' ' or '\n' that ends the word, or the input size
  std::string marker;   // the characters after "<<", CRs dropped
  bool opens = false;   // a newline follows and the marker is valid: a heredoc body follows
};

// Where the "<<" of a word starting at `pos` ends, or npos when the word does not start with
// "<<". The lexer drops CRs inside a word, so "<\r<" starts a heredoc too (found by the fuzzer).
std::size_t after_heredoc_start(std::string_view in, std::size_t pos) {
  if (in[pos] != '<') return std::string_view::npos;
  std::size_t p = pos + 1;
  while (p < in.size() && in[p] == '\r') ++p;
  return p < in.size() && in[p] == '<' ? p + 1 : std::string_view::npos;
}

// `after` is the position just past the word's "<<".
HeredocOpening scan_heredoc_opening(std::string_view in, std::size_t after) {
  HeredocOpening h;
  std::size_t p = after;
  while (p < in.size() && in[p] != ' ' && in[p] != '\n') {
    if (in[p] != '\r') h.marker += in[p];
    ++p;
  }
  h.end = p;
  h.opens = p < in.size() && in[p] == '\n' && !h.marker.empty() &&
            std::all_of(h.marker.begin(), h.marker.end(), is_marker_char);
  return h;
}

// Given the first body line at `pos`, the position just after the closing marker: the first line
// holding, after spaces and tabs, the marker followed by whitespace or the end (lexer.cpp's rule).
// npos when the heredoc never closes.
std::size_t heredoc_close(std::string_view in, std::size_t pos, std::string_view marker) {
  while (pos < in.size()) {
    std::size_t line_end = in.find('\n', pos);
    if (line_end == std::string_view::npos) line_end = in.size();
    std::size_t m = pos;
    while (m < line_end && (in[m] == ' ' || in[m] == '\t')) ++m;
    const std::size_t after = m + marker.size();
    if (in.substr(m, line_end - m).starts_with(marker) &&
        (after == in.size() || space_length(in, after) > 0)) {
      return after;
    }
    pos = line_end + 1;
  }
  return std::string_view::npos;
}

// Position just after the quoted string whose body starts at `pos` (after the opening quote), and
// whether it was closed. A double-quoted string honours backslash escapes, a backtick one none.
std::pair<std::size_t, bool> quoted_end(std::string_view in, std::size_t pos, char quote,
                                        bool escaped) {
  if (quote == '`') {
    const std::size_t close = in.find('`', pos);
    if (close == std::string_view::npos) return {in.size(), false};
    return {close + 1, true};
  }
  for (std::size_t p = pos; p < in.size(); ++p) {
    if (escaped) {
      escaped = false;
    } else if (in[p] == '\\') {
      escaped = true;
    } else if (in[p] == '"') {
      return {p + 1, true};
    }
  }
  return {in.size(), false};
}

// Bytes that end a run of plain word characters: whitespace, CR, and the characters bare_rest()
// treats specially. Lead bytes of multi-byte whitespace are included and checked one by one.
constexpr std::array<bool, 256> kWordBreak = [] {
  std::array<bool, 256> table{};
  for (unsigned char c : {' ', '\t', '\n', '\v', '\f', '\r', '\\', '{', '#'}) table[c] = true;
  for (unsigned char c : {0xC2, 0xE1, 0xE2, 0xE3}) table[c] = true;
  return table;
}();

enum class LineStart : unsigned char { None, Import, Other };

class Formatter {
 public:
  explicit Formatter(std::string_view input) : in_(input) {
    out_.reserve(input.size() + input.size() / 8 + 16);
  }

  std::string run();

 private:
  // One token, comment or run of whitespace each.
  void whitespace();
  void token();
  void escape_at_token_start();
  void comment(bool layout);
  void quoted(char quote, bool layout);
  void bare();
  void bare_rest();
  void heredoc(std::size_t after);
  void copy_rest_of_line();
  void end_verbatim_line();
  std::string finish();

  // Upstream's layout steps.
  bool brace_pending() const { return open_brace_ && !open_brace_written_; }
  void open_candidate();
  void flush_brace();
  void close_block();
  // Inline for the common case: same line, nothing pending.
  void layout(bool space_prior) {
    if (!brace_pending() && new_lines_ == 0 && !bol_) {
      if (space_prior) put(' ');
      return;
    }
    layout_slow(space_prior);
  }
  void layout_slow(bool space_prior);
  void line_ended();
  void note_token(LineStart kind);
  bool word_ends_at(std::size_t pos) const;

  void put(char c);
  void put_raw(std::string_view s);
  void next_line();
  void indent();

  std::string_view in_;
  std::size_t pos_ = 0;
  std::string out_;

  // Upstream's state.
  char last_ = 0;            // last byte written ('}', '\n', ... are all we compare with)
  bool last_space_ = false;  // whether the last character written was whitespace
  bool space_ = true;        // the previous input character was whitespace
  bool bol_ = true;          // beginningOfLine: nothing written on the current output line yet
  bool open_brace_ = false;  // a `{` was seen and not yet flushed as a block opener
  bool open_brace_written_ = false;
  bool open_brace_space_ = false;  // that `{` followed a space on its own line
  bool own_line_ = false;          // that `{` began a new line (openBraceOwnLine)
  int own_line_breaks_ = 0;        // line breaks before it, at most 2
  int new_lines_ = 0;              // line breaks seen since the last write
  int nesting_ = 0;
  LineStart line_start_ = LineStart::None;  // first token of the current line
  bool prev_import_ = false;                // previousLineWasTopLevelImport

  // The lexer's state.
  bool token_start_ = true;   // the next character begins a token
  bool lex_escaped_ = false;  // a backslash before whitespace still applies to the next token
  // The current output line ends with such a backslash and whitespace: a `{` pulled up onto it
  // would be escaped.
  bool escape_carried_ = false;
  // The last thing written is an escaped newline (a line continuation): a `}` right after it
  // begins a token as surely as one after whitespace.
  bool after_continuation_ = false;

  // A plain word "<<X" was the last thing written: a line break right after it would make it
  // a heredoc, so one space goes first. shape_end_ is where that word ends in out_.
  bool shape_space_ = false;
  std::size_t shape_end_ = 0;
  std::size_t keep_ = 0;  // out_ up to here survives the final trim (such a space)
  bool unterminated_ = false;  // the input ends inside a quoted string
};

std::string Formatter::run() {
  while (pos_ < in_.size() && space_length(in_, pos_) > 0) pos_ += space_length(in_, pos_);
  while (pos_ < in_.size()) {
    const char c = in_[pos_];
    if (c == ' ' || c == '\t') {  // the common case of whitespace(), inline
      while (++pos_ < in_.size() && (in_[pos_] == ' ' || in_[pos_] == '\t')) {
      }
      space_ = true;
      token_start_ = true;
    } else if (c == '\n') {
      ++pos_;
      space_ = true;
      token_start_ = true;
      lex_escaped_ = false;
      line_ended();
      ++new_lines_;
    } else if (space_length(in_, pos_) > 0) {
      whitespace();
    } else {
      token();
    }
  }
  return finish();
}

void Formatter::whitespace() {
  const char c = in_[pos_];
  pos_ += space_length(in_, pos_);
  // The lexer ignores CR altogether: it neither ends a word nor a line.
  if (c == '\r') return;
  space_ = true;
  token_start_ = true;
  if (c == '\n') {
    lex_escaped_ = false;  // for the lexer a line continuation; upstream counts it as a line break
    line_ended();
    ++new_lines_;
  }
}

void Formatter::token() {
  const char c = in_[pos_];
  if (c == '\\' && !lex_escaped_) return escape_at_token_start();
  if (c == '#') return comment(true);
  if (c == '"' || c == '`') return quoted(c, true);
  bare();
}

// A backslash before a token. Upstream writes it straight away, after one space if whitespace
// preceded it. That is right on the current line, but before a pending `{` or after a line break
// it would move the word, so then the backslash gets a word's layout.
void Formatter::escape_at_token_start() {
  note_token(LineStart::Other);
  if (brace_pending() || new_lines_ > 0) {
    layout(space_);
  } else if (space_) {
    put(' ');
  }
  escape_carried_ = false;
  space_ = false;
  put('\\');
  bol_ = false;
  ++pos_;
  if (pos_ == in_.size()) return;
  if (const std::size_t len = space_length(in_, pos_)) {
    // Upstream copies the escaped character whatever it is. For the lexer an escaped newline is
    // a line continuation; any other whitespace leaves the escape pending for the next token.
    lex_escaped_ = in_[pos_] != '\n';
    put_raw(in_.substr(pos_, len));
    escape_carried_ = lex_escaped_;
    after_continuation_ = !lex_escaped_;
    pos_ += len;
    return;
  }
  const char c = in_[pos_];
  if (c == '#') return comment(false);  // `\#` still starts a comment for the lexer
  lex_escaped_ = true;
  if (c == '"' || c == '`') return quoted(c, false);
  bare();
}

void Formatter::comment(bool layout_first) {
  note_token(LineStart::Other);
  if (layout_first) layout(space_);
  escape_carried_ = false;
  space_ = false;
  lex_escaped_ = false;
  std::size_t eol = in_.find('\n', pos_);
  if (eol == std::string_view::npos) eol = in_.size();
  put_raw(in_.substr(pos_, eol - pos_));
  bol_ = false;
  pos_ = eol;
  if (pos_ < in_.size()) end_verbatim_line();
}

// After a comment or a verbatim line: upstream ends comment mode at the newline with nextLine(),
// without counting it as a pending line break.
void Formatter::end_verbatim_line() {
  ++pos_;
  space_ = true;
  token_start_ = true;
  line_ended();
  next_line();
}

void Formatter::quoted(char quote, bool layout_first) {
  const bool escaped = lex_escaped_ && quote == '"';
  lex_escaped_ = false;
  note_token(LineStart::Other);
  if (layout_first) layout(space_);
  escape_carried_ = false;
  const auto [end, closed] = quoted_end(in_, pos_ + 1, quote, escaped);
  put_raw(in_.substr(pos_, end - pos_));
  bol_ = false;
  space_ = false;
  pos_ = end;
  token_start_ = closed;
  if (!closed) unterminated_ = true;
}

// A word: its first character decides whether it is a brace, a heredoc or plain text.
void Formatter::bare() {
  const bool escaped = lex_escaped_;
  lex_escaped_ = false;
  token_start_ = false;
  const char c = in_[pos_];
  if (!escaped) {
    if (const std::size_t after = after_heredoc_start(in_, pos_); after != std::string_view::npos) {
      return heredoc(after);
    }
    if (c == '{') {
      open_candidate();
      ++pos_;
      if (word_ends_at(pos_)) return;  // a `{` token: written when the next token begins
      // `{` glued to text (`{$ENV}`, `{placeholder}`): written before the next character.
      note_token(LineStart::Other);
      return bare_rest();
    }
    if (c == '}' && word_ends_at(pos_ + 1) && (space_ || after_continuation_ || !open_brace_)) {
      note_token(LineStart::Other);
      ++pos_;
      return close_block();
    }
  }
  if (line_start_ == LineStart::None) {
    const bool import = !escaped && c == 'i' && in_.substr(pos_).starts_with("import") &&
                        word_ends_at(pos_ + 6);
    note_token(import ? LineStart::Import : LineStart::Other);
  }
  layout(space_);
  escape_carried_ = false;
  space_ = false;
  // The first character is copied whatever it is (escaped, or a brace that is not a token).
  std::size_t end = pos_ + char_len(in_, pos_);
  while (end < in_.size() && !kWordBreak[static_cast<unsigned char>(in_[end])]) ++end;
  put_raw(in_.substr(pos_, end - pos_));
  bol_ = false;
  pos_ = end;
  if (pos_ < in_.size() && (in_[pos_] == ' ' || in_[pos_] == '\n' || in_[pos_] == '\t')) return;
  bare_rest();
}

// The rest of a word, up to whitespace. Every character gets upstream's layout step (a no-op
// inside a word except right after a glued `{`), braces and quotes are plain text here.
void Formatter::bare_rest() {
  while (pos_ < in_.size()) {
    // Fast path: a run of plain characters is copied at once; the layout step matters only for
    // its first character.
    std::size_t end = pos_;
    while (end < in_.size() && !kWordBreak[static_cast<unsigned char>(in_[end])]) ++end;
    if (end > pos_) {
      layout(false);
      bol_ = false;
      put_raw(in_.substr(pos_, end - pos_));
      pos_ = end;
      continue;
    }
    const char c = in_[pos_];
    if (c == '\r') {
      ++pos_;
      continue;
    }
    if (space_length(in_, pos_) > 0) return;
    layout(false);
    bol_ = false;
    if (c == '\\') {
      put('\\');
      ++pos_;
      if (pos_ == in_.size()) return;
      const std::size_t len = std::max(space_length(in_, pos_), char_len(in_, pos_));
      // An escaped whitespace character is copied and still ends the word for the lexer.
      const bool ends_word = in_[pos_] != '\r' && space_length(in_, pos_) > 0;
      put_raw(in_.substr(pos_, len));
      after_continuation_ = in_[pos_] == '\n';
      pos_ += len;
      if (ends_word) {
        token_start_ = true;
        return;
      }
      continue;
    }
    if (c == '{') {
      // Upstream remembers it as an open brace that was written (a placeholder), which later
      // makes a `}` glued after a quote plain text.
      open_brace_ = true;
      open_brace_written_ = true;
      open_brace_space_ = false;
      put('{');
      ++pos_;
      continue;
    }
    if (c == '#') {
      // Upstream starts a comment at any '#', even inside a word: the rest of the line is copied
      // as it is, though for the lexer it is still this word and the tokens after it.
      put('#');
      ++pos_;
      copy_rest_of_line();
      if (pos_ < in_.size()) end_verbatim_line();
      return;
    }
    const std::size_t len = char_len(in_, pos_);
    put_raw(in_.substr(pos_, len));
    bol_ = false;
    pos_ += len;
  }
}

// A word starting with "<<": a heredoc when a valid marker and a newline follow, else a plain word.
void Formatter::heredoc(std::size_t after) {
  note_token(LineStart::Other);
  layout(space_);
  escape_carried_ = false;
  space_ = false;
  bol_ = false;
  const HeredocOpening opening = scan_heredoc_opening(in_, after);
  put_raw("<<");
  // CRs in the marker are dropped by the lexer; we drop them too (CRLF files).
  for (std::size_t p = after; p < opening.end; ++p) {
    if (in_[p] != '\r') put(in_[p]);
  }
  pos_ = opening.end;
  if (pos_ == in_.size() || in_[pos_] == ' ') {
    shape_space_ = true;
    shape_end_ = out_.size();
    return;
  }
  ++pos_;  // the newline
  if (!opening.opens) {
    // The lexer rejects this marker; upstream ends the line here.
    token_start_ = true;
    space_ = true;
    next_line();
    return;
  }
  put('\n');
  const std::size_t close = heredoc_close(in_, pos_, opening.marker);
  const std::size_t end = close == std::string_view::npos ? in_.size() : close;
  put_raw(in_.substr(pos_, end - pos_));
  pos_ = end;
  // Whitespace follows the marker (a CR, maybe, which we drop): the next token must stay apart.
  space_ = true;
  token_start_ = true;
}

// Copies the rest of the line verbatim. The line ends at the first newline outside a quoted
// string or heredoc that begins on it, which are followed as the lexer reads them. A plain "<<X"
// word followed only by whitespace still needs one space before the line break.
void Formatter::copy_rest_of_line() {
  const std::size_t begin = pos_;
  std::size_t p = pos_;
  bool in_word = true;
  bool escaped = false;
  std::size_t shape_end = std::string_view::npos;
  while (p < in_.size()) {
    const char c = in_[p];
    if (!escaped && c == '\\') {
      escaped = true;
      ++p;
      continue;
    }
    if (c == '\n') break;
    if (const std::size_t len = space_length(in_, p)) {
      p += len;
      if (c == '\r') continue;  // CR neither ends a word nor clears an escape
      if (in_word) escaped = false;
      in_word = false;
      continue;
    }
    if (in_word) {
      escaped = false;
      ++p;
      continue;
    }
    shape_end = std::string_view::npos;
    in_word = true;
    if (c == '#') {
      p = std::min(in_.find('\n', p), in_.size());
    } else if (c == '"' || c == '`') {
      const auto [end, closed] = quoted_end(in_, p + 1, c, escaped && c == '"');
      p = end;
      in_word = false;
      if (!closed) unterminated_ = true;
    } else if (!escaped && after_heredoc_start(in_, p) != std::string_view::npos) {
      const HeredocOpening opening = scan_heredoc_opening(in_, after_heredoc_start(in_, p));
      p = opening.end;
      if (opening.opens) {
        const std::size_t close = heredoc_close(in_, p + 1, opening.marker);
        p = close == std::string_view::npos ? in_.size() : close;
      } else if (p == in_.size() || in_[p] == ' ') {
        shape_end = p;
      }
    } else {
      ++p;
    }
    escaped = false;
  }
  put_raw(in_.substr(begin, p - begin));
  pos_ = p;
  if (shape_end != std::string_view::npos) {
    shape_space_ = true;
    shape_end_ = out_.size() - (p - shape_end);
  }
}

std::string Formatter::finish() {
  if (brace_pending()) flush_brace();  // upstream drops it (caddy issue #8046)
  std::size_t begin = 0;
  while (begin < out_.size() && space_length(out_, begin) > 0) begin += space_length(out_, begin);
  if (unterminated_) return out_.substr(begin);
  if (shape_space_) {
    out_.resize(std::max(shape_end_, begin));
    out_ += " \n";
    return out_.substr(begin);
  }
  std::size_t end = out_.size();
  while (end > std::max(begin, keep_)) {
    const std::size_t len = space_len_before(out_, end);
    if (len == 0) break;
    end -= len;
  }
  out_.resize(end);
  out_ += '\n';
  if (begin > 0) out_.erase(0, begin);
  return std::move(out_);
}

// True when the word ends before `pos`: whitespace (CRs skipped, as the lexer does) or the end.
bool Formatter::word_ends_at(std::size_t pos) const {
  while (pos < in_.size() && in_[pos] == '\r') ++pos;
  return pos >= in_.size() || space_length(in_, pos) > 0;
}

// A `{` token (upstream's `case ch == '{'`): remembered, written when the next token begins.
void Formatter::open_candidate() {
  if (brace_pending() && space_) flush_brace();
  open_brace_ = true;
  open_brace_written_ = false;
  open_brace_space_ = space_ && !bol_;
  own_line_ = new_lines_ > 0;
  own_line_breaks_ = std::min(new_lines_, 2);
  if (open_brace_space_ && new_lines_ == 0) put(' ');
  space_ = false;
}

// Writes a pending `{` as a block opener at the end of the current line and starts the block.
void Formatter::flush_brace() {
  if (nesting_ == 0 && last_ == '}') {
    next_line();
    next_line();
  }
  open_brace_ = false;
  if (own_line_ && prev_import_) {
    // `import x` then `{` on a later line is an import followed by a block, not an import with
    // a block: keep them apart (with the blank line between them, if any).
    // Count the line breaks already written (the `}` rule above may have written two, after a
    // word ending in `}`), so a second pass adds none and formatting stays idempotent.
    int written = 0;
    for (auto it = out_.rbegin(); it != out_.rend() && *it == '\n'; ++it) ++written;
    for (; written < own_line_breaks_; ++written) next_line();
    indent();
  } else if (bol_) {
    indent();
  } else if (escape_carried_) {
    next_line();
    indent();
  } else if (!open_brace_space_ || !last_space_) {
    put(' ');
  }
  put('{');
  open_brace_written_ = true;
  own_line_ = false;
  next_line();
  new_lines_ = 0;
  if (nesting_ < kMaxIndent) ++nesting_;
}

// A `}` token that closes a block: on its own line, one level out.
void Formatter::close_block() {
  if (brace_pending() && space_) flush_brace();
  if (last_ != '\n') next_line();
  if (nesting_ > 0) --nesting_;
  indent();
  put('}');
  new_lines_ = 0;
  space_ = false;
}

// Upstream's steps before writing an ordinary character: flush a pending `{` when whitespace
// separates it from this token, emit pending line breaks (at most one blank line), indent, put a
// blank line after a top-level `}`, one space between tokens, and a `{` glued to this character.
void Formatter::layout_slow(bool space_prior) {
  if (brace_pending() && space_prior) flush_brace();
  for (int i = std::min(new_lines_, 2); i > 0; --i) next_line();
  new_lines_ = 0;
  if (bol_) indent();
  if (nesting_ == 0 && last_ == '}' && bol_) {
    next_line();
    next_line();
  }
  if (!bol_ && space_prior) put(' ');
  if (brace_pending()) {
    put('{');
    open_brace_written_ = true;
  }
}

// A newline ended a line: remember whether it was a top-level import. Lines without tokens (blank
// ones, or a lone `{`) change nothing.
void Formatter::line_ended() {
  if (line_start_ == LineStart::None) return;
  prev_import_ = line_start_ == LineStart::Import && nesting_ == 0;
  line_start_ = LineStart::None;
}

void Formatter::note_token(LineStart kind) {
  if (line_start_ == LineStart::None) line_start_ = kind;
}

void Formatter::put(char c) {
  out_ += c;
  last_ = c;
  last_space_ = c == ' ';
  shape_space_ = false;
  after_continuation_ = false;
}

// Token text, copied. Whitespace in it (an escaped space, a tab in a would-be heredoc marker)
// does not separate it from what follows, so last_space_ stays false.
void Formatter::put_raw(std::string_view s) {
  if (s.empty()) return;
  out_ += s;
  last_ = s.back();
  last_space_ = false;
  shape_space_ = false;
  after_continuation_ = false;
}

void Formatter::next_line() {
  if (shape_space_) {
    out_.resize(shape_end_);
    out_ += ' ';
    keep_ = out_.size();
  }
  shape_space_ = false;
  escape_carried_ = false;
  after_continuation_ = false;
  out_ += '\n';
  last_ = '\n';
  last_space_ = true;
  bol_ = true;
}

void Formatter::indent() {
  out_.append(static_cast<std::size_t>(nesting_), '\t');
  if (nesting_ > 0) {
    last_ = '\t';
    last_space_ = true;
  }
}

}  // namespace

std::string format(std::string_view input) {
  // The lexer drops one byte-order mark at the very start of a file. Keep such a mark where it
  // is, and add one when a token of ours that starts with a BOM would otherwise come first (the
  // lexer would then drop part of that token).
  constexpr std::string_view kBom = "\xEF\xBB\xBF";
  const bool had_bom = input.starts_with(kBom);
  if (had_bom) input.remove_prefix(kBom.size());
  std::string out = Formatter(input).run();
  if (had_bom || out.starts_with(kBom)) out.insert(0, kBom);
  return out;
}

std::size_t first_difference_line(std::string_view before, std::string_view after) {
  if (before == after) return 0;
  std::size_t line = 1;
  for (std::size_t i = 0; i < before.size(); ++i) {
    if (i >= after.size() || before[i] != after[i]) break;
    if (before[i] == '\n') ++line;
  }
  return line;
}

std::size_t unformatted_line(std::string_view input) {
  if (input.find('\r') == std::string_view::npos) return first_difference_line(input, format(input));
  std::string normalized;
  normalized.reserve(input.size());
  for (std::size_t i = 0; i < input.size(); ++i) {
    if (input[i] != '\r' || i + 1 >= input.size() || input[i + 1] != '\n') normalized += input[i];
  }
  return first_difference_line(normalized, format(normalized));
}

}  // namespace acmetool::caddyfile
