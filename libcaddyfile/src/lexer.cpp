// The Caddyfile lexer: a port of Caddy's caddyconfig/caddyfile/lexer.go that keeps its quirks.
//
// Upstream reads one rune at a time with a handful of flags; the quirks live in how those flags
// outlive the character that set them (a backslash before whitespace at the start of a token, or
// anywhere in a comment, still turns the next newline into a line continuation). To reproduce
// them exactly we keep the same line bookkeeping (`line_` plus `skipped_`, lines hidden by
// continuations and heredocs) and carry the `escaped` flag across the same boundaries upstream
// does; tests/caddyfile/lexer_test.cpp pins each quirk.
//
// Deliberate divergences from upstream:
// - A heredoc closes only at a line holding, after optional space/tab padding, the marker
//   followed by whitespace or the end of the input. Upstream closes as soon as the body read so
//   far ends with the marker, even mid-line (`hello EOF world` or `EOFX` would end it), which
//   silently truncates bodies that mention their marker.
// - A heredoc opened on the last line of the input throws "incomplete heredoc"; upstream drops
//   the token without an error when the body is empty.
// - Bytes are kept as they are. Upstream decodes UTF-8 and turns invalid bytes into U+FFFD; we
//   still decode enough to split tokens at the same Unicode whitespace (Go's unicode.IsSpace).
// - The "mismatched leading whitespace" message shows the offending line without its CR.
#include "acmetool/caddyfile/lexer.h"

#include <cstdlib>
#include <utility>

#include "acmetool/caddyfile/error.h"

#include "space_internal.h"

namespace acmetool::caddyfile {

const std::string& Token::file_name() const noexcept {
  static const std::string kNoFile;
  return file ? *file : kNoFile;
}

namespace {

constexpr std::string_view kBom = "\xEF\xBB\xBF";

using detail::space_length;

bool is_marker_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

bool is_valid_marker(std::string_view marker) {
  if (marker.empty()) return false;
  for (char c : marker) {
    if (!is_marker_char(c)) return false;
  }
  return true;
}

class Lexer {
 public:
  Lexer(std::string_view input, const std::string& file)
      : in_(input), file_(std::make_shared<const std::string>(file)) {
    if (in_.starts_with(kBom)) pos_ = kBom.size();
    // Typical site blocks run 12-20 bytes per token: this saves most reallocations on large
    // files without reserving much more than needed.
    tokens_.reserve(in_.size() / 16 + 1);
  }

  std::vector<Token> run() {
    while (next()) {
    }
    return std::move(tokens_);
  }

 private:
  bool next();
  bool skip_to_token(bool& escaped);
  void lex_bare(bool escaped);
  void lex_double_quoted(bool escaped);
  void lex_backtick_quoted();
  void lex_heredoc_opening(std::string text, int token_line);
  std::string heredoc_marker(const std::string& text) const;
  void lex_heredoc_body(const std::string& marker, int token_line);
  bool is_closing_line(std::size_t marker_pos, std::size_t line_end, std::string_view marker) const;
  std::string finalize_heredoc(std::string_view body, std::string_view padding,
                               std::string_view marker) const;
  void end_line(bool& escaped);
  void emit(std::string text, int line, Quote quote);
  [[noreturn]] void fail(int line, const std::string& message) const;

  std::string_view in_;
  std::size_t pos_ = 0;
  std::shared_ptr<const std::string> file_;
  // The line the next token is reported on. Lines swallowed by a line continuation or a heredoc
  // are counted in skipped_ and added at the next ordinary newline, as upstream does.
  int line_ = 1;
  int skipped_ = 0;
  std::vector<Token> tokens_;
};

// Reads one token (or none at the end of the input). `escaped` is per token, as in upstream's
// next(): a backslash that was not consumed before the token starts still applies to it.
bool Lexer::next() {
  bool escaped = false;
  if (!skip_to_token(escaped)) return false;
  const char first = in_[pos_];
  if (first == '"') {
    ++pos_;
    lex_double_quoted(escaped);
  } else if (first == '`') {
    ++pos_;
    lex_backtick_quoted();
  } else {
    lex_bare(escaped);
  }
  return true;
}

// Skips whitespace and comments up to the first character of the next token.
bool Lexer::skip_to_token(bool& escaped) {
  bool comment = false;
  while (pos_ < in_.size()) {
    const char c = in_[pos_];
    if (!escaped && c == '\\') {
      // Upstream sets this even inside a comment, so `# C:\dir` continues onto the next line.
      escaped = true;
      ++pos_;
      continue;
    }
    if (const std::size_t space = space_length(in_, pos_)) {
      pos_ += space;
      if (c == '\n') {
        end_line(escaped);
        comment = false;
      }
      continue;
    }
    // `\#` is a comment too: upstream checks for '#' before it looks at the pending escape.
    if (c == '#') comment = true;
    if (!comment) return true;
    ++pos_;
  }
  return false;
}

// A newline outside quotes: a line continuation when escaped, else the real end of a line.
void Lexer::end_line(bool& escaped) {
  if (escaped) {
    ++skipped_;
    escaped = false;
  } else {
    line_ += 1 + skipped_;
    skipped_ = 0;
  }
}

void Lexer::lex_bare(bool escaped) {
  const int token_line = line_;
  std::string text;
  bool heredoc_escaped = false;
  while (pos_ < in_.size()) {
    if (!heredoc_escaped && text.size() >= 2 && text[0] == '<' && text[1] == '<') {
      return lex_heredoc_opening(std::move(text), token_line);
    }
    const char c = in_[pos_];
    if (!escaped && c == '\\') {
      escaped = true;
      ++pos_;
      continue;
    }
    if (const std::size_t space = space_length(in_, pos_)) {
      pos_ += space;
      // Upstream drops a CR inside a bare word instead of ending the word.
      if (c == '\r') continue;
      if (c == '\n') end_line(escaped);
      return emit(std::move(text), token_line, Quote::None);
    }
    if (escaped) {
      // `\<` only drops the backslash (it is how `\<<EOF` escapes a heredoc); any other escaped
      // character keeps its backslash.
      if (c == '<') {
        heredoc_escaped = true;
      } else {
        text += '\\';
      }
      escaped = false;
    }
    text += c;
    ++pos_;
  }
  emit(std::move(text), token_line, Quote::None);
}

// An unterminated quote runs to the end of the input and, as upstream, yields an unquoted token
// (or none when empty).
void Lexer::lex_double_quoted(bool escaped) {
  const int token_line = line_;
  std::string text;
  while (pos_ < in_.size()) {
    const char c = in_[pos_++];
    if (!escaped && c == '\\') {
      escaped = true;
      continue;
    }
    if (escaped) {
      if (c != '"') text += '\\';
      escaped = false;
    } else if (c == '"') {
      return emit(std::move(text), token_line, Quote::Double);
    }
    if (c == '\n') {
      line_ += 1 + skipped_;
      skipped_ = 0;
    }
    text += c;
  }
  if (!text.empty()) emit(std::move(text), token_line, Quote::None);
}

void Lexer::lex_backtick_quoted() {
  const int token_line = line_;
  const std::size_t close = in_.find('`', pos_);
  const std::size_t end = close == std::string_view::npos ? in_.size() : close;
  std::string text(in_.substr(pos_, end - pos_));
  for (char c : text) {
    if (c == '\n') {
      line_ += 1 + skipped_;
      skipped_ = 0;
    }
  }
  if (close == std::string_view::npos) {
    pos_ = in_.size();
    if (!text.empty()) emit(std::move(text), token_line, Quote::None);
    return;
  }
  pos_ = close + 1;
  emit(std::move(text), token_line, Quote::Backtick);
}

// `text` is "<<" so far. Upstream collects everything up to a space (plain token) or a newline
// (heredoc marker); a tab, for instance, becomes part of the would-be marker.
void Lexer::lex_heredoc_opening(std::string text, int token_line) {
  while (pos_ < in_.size()) {
    const char c = in_[pos_++];
    if (c == ' ') return emit(std::move(text), token_line, Quote::None);
    if (c == '\r') continue;
    if (c == '\n') {
      const std::string marker = heredoc_marker(text);
      ++skipped_;
      return lex_heredoc_body(marker, token_line);
    }
    text += c;
  }
  emit(std::move(text), token_line, Quote::None);
}

// The marker of an opening `text` ("<<MARKER"), checked in upstream's order.
std::string Lexer::heredoc_marker(const std::string& text) const {
  const std::string on_line = " on line #" + std::to_string(line_);
  if (text.size() == 2) {
    fail(line_, "missing opening heredoc marker" + on_line +
                    "; must contain only alphanumeric characters, dashes and underscores; got "
                    "empty string");
  }
  if (text[2] == '<') {
    fail(line_, "too many '<' for heredoc" + on_line + "; only use two, for example <<END");
  }
  std::string marker = text.substr(2);
  if (!is_valid_marker(marker)) {
    fail(line_, "heredoc marker" + on_line +
                    " must contain only alphanumeric characters, dashes and underscores; got '" +
                    marker + "'");
  }
  return marker;
}

// Reads whole lines until the closing one (see the divergence note at the top of the file).
// Afterwards lexing resumes right after the marker, so `MARKER 200` yields the argument `200`.
void Lexer::lex_heredoc_body(const std::string& marker, int token_line) {
  const std::size_t body_begin = pos_;
  while (pos_ < in_.size()) {
    const std::size_t line_begin = pos_;
    std::size_t line_end = in_.find('\n', line_begin);
    if (line_end == std::string_view::npos) line_end = in_.size();
    std::size_t marker_pos = line_begin;
    while (marker_pos < line_end && (in_[marker_pos] == ' ' || in_[marker_pos] == '\t')) {
      ++marker_pos;
    }
    if (is_closing_line(marker_pos, line_end, marker)) {
      std::string text = finalize_heredoc(in_.substr(body_begin, line_begin - body_begin),
                                          in_.substr(line_begin, marker_pos - line_begin), marker);
      pos_ = marker_pos + marker.size();
      line_ += skipped_;
      skipped_ = 0;
      return emit(std::move(text), token_line, Quote::Heredoc);
    }
    if (line_end == in_.size()) {
      pos_ = line_end;
      break;
    }
    ++skipped_;
    pos_ = line_end + 1;
  }
  const int last_line = line_ + skipped_;
  fail(last_line, "incomplete heredoc <<" + marker + " on line #" + std::to_string(last_line) +
                      ", expected ending marker " + marker);
}

bool Lexer::is_closing_line(std::size_t marker_pos, std::size_t line_end,
                            std::string_view marker) const {
  if (!in_.substr(marker_pos, line_end - marker_pos).starts_with(marker)) return false;
  const std::size_t after = marker_pos + marker.size();
  return after == line_end || space_length(in_, after) > 0;
}

// Strips the closing marker's padding from every non-empty line and removes CRs. `body` is
// every line before the closing one, each with its newline; the last newline is dropped, so a
// blank line before the marker keeps one.
std::string Lexer::finalize_heredoc(std::string_view body, std::string_view padding,
                                    std::string_view marker) const {
  std::string out;
  out.reserve(body.size());
  int line_number = line_;
  for (std::size_t begin = 0; begin < body.size();) {
    const std::size_t end = body.find('\n', begin);
    std::string_view line = body.substr(begin, end - begin);
    begin = end + 1;
    ++line_number;
    if (!line.empty() && line != "\r") {
      if (!line.starts_with(padding)) {
        if (line.ends_with('\r')) line.remove_suffix(1);
        fail(line_number, "mismatched leading whitespace in heredoc <<" + std::string(marker) +
                              " on line #" + std::to_string(line_number) + " [" +
                              std::string(line) + "], expected whitespace [" +
                              std::string(padding) + "] to match the closing marker");
      }
      for (char c : line.substr(padding.size())) {
        if (c != '\r') out += c;
      }
    }
    out += '\n';
  }
  if (!out.empty()) out.pop_back();
  return out;
}

void Lexer::emit(std::string text, int line, Quote quote) {
  Token& token = tokens_.emplace_back();
  token.text = std::move(text);
  token.file = file_;
  token.line = line;
  token.quote = quote;
}

void Lexer::fail(int line, const std::string& message) const {
  throw ParseError(*file_, line, 0, message);
}

}  // namespace

std::vector<Token> tokenize(std::string_view input, const std::string& file) {
  return Lexer(input, file).run();
}

EnvLookup process_environment() {
  return [](std::string_view name) -> std::optional<std::string> {
    // getenv("A=B") would match the variable A with a value starting "B="; Go's LookupEnv, which
    // upstream uses, finds nothing for such names.
    if (name.find_first_of(std::string_view("=\0", 2)) != std::string_view::npos) {
      return std::nullopt;
    }
    const char* value = std::getenv(std::string(name).c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

std::string substitute_env(std::string_view input, const EnvLookup& env) {
  constexpr std::string_view kOpen = "{$";
  std::string out;
  out.reserve(input.size());
  std::size_t pos = 0;
  while (true) {
    const std::size_t open = input.find(kOpen, pos);
    if (open == std::string_view::npos) break;
    const std::size_t close = input.find('}', open + kOpen.size());
    if (close == std::string_view::npos) break;
    out.append(input.substr(pos, open - pos));
    pos = close + 1;
    const std::string_view spec = input.substr(open + kOpen.size(), close - open - kOpen.size());
    if (spec.empty()) {
      out.append("{$}");
      continue;
    }
    // Scanning resumes after the placeholder, so a value is never expanded again.
    const std::size_t colon = spec.find(':');
    if (std::optional<std::string> value = env(spec.substr(0, colon))) {
      out.append(*value);
    } else if (colon != std::string_view::npos) {
      out.append(spec.substr(colon + 1));
    }
  }
  out.append(input.substr(pos));
  return out;
}

}  // namespace acmetool::caddyfile
