#include "acmetool/caddyfile/dispenser.h"

#include <algorithm>
#include <utility>

namespace acmetool::caddyfile {

namespace {

const std::string kEmpty;

bool same_chain(const Token& a, const Token& b) {
  if (a.import_chain == b.import_chain) return true;
  const auto size = [](const Token& t) { return t.import_chain ? t.import_chain->size() : 0; };
  if (size(a) != size(b)) return false;
  return size(a) == 0 || *a.import_chain == *b.import_chain;
}

}  // namespace

bool is_next_on_new_line(const Token& first, const Token& second) {
  // Tokens from another file or another import are never on the same line, whatever their
  // numbers say (Caddy's isNextOnNewLine).
  if (first.file_name() != second.file_name()) return true;
  if (!same_chain(first, second)) return true;
  return first.line + line_breaks(first) < second.line;
}

int line_breaks(const Token& token) {
  int breaks = static_cast<int>(std::count(token.text.begin(), token.text.end(), '\n'));
  // A heredoc also spans its opening and closing marker lines.
  if (token.quote == Quote::Heredoc) breaks += 2;
  return breaks;
}

ParseError error_at(const Token& token, const std::string& message) {
  std::string text = message;
  if (token.import_chain && !token.import_chain->empty()) {
    text += " (import chain: ";
    for (std::size_t i = 0; i < token.import_chain->size(); ++i) {
      if (i > 0) text += ", ";
      text += (*token.import_chain)[i];
    }
    text += ")";
  }
  return ParseError(token.file_name(), token.line, 0, text);
}

Dispenser::Dispenser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

bool Dispenser::next() {
  if (cursor_ + 1 >= static_cast<int>(tokens_.size())) return false;
  ++cursor_;
  return true;
}

bool Dispenser::prev() {
  if (cursor_ < 0) return false;
  --cursor_;
  return cursor_ >= 0;
}

bool Dispenser::next_arg() {
  if (cursor_ + 1 >= static_cast<int>(tokens_.size())) return false;
  if (cursor_ >= 0 && caddyfile::is_next_on_new_line(tokens_[cursor_], tokens_[cursor_ + 1])) return false;
  // An opening brace starts a block; it is never an argument.
  if (tokens_[cursor_ + 1].is_open_brace()) return false;
  ++cursor_;
  return true;
}

bool Dispenser::next_line() {
  if (cursor_ + 1 >= static_cast<int>(tokens_.size())) return false;
  if (cursor_ >= 0 && !caddyfile::is_next_on_new_line(tokens_[cursor_], tokens_[cursor_ + 1])) return false;
  if (tokens_[cursor_ + 1].is_close_brace()) return false;
  ++cursor_;
  return true;
}

bool Dispenser::next_block(int initial_nesting) {
  if (nesting_ > initial_nesting) {
    // Inside the block: step to the next token, tracking nested blocks.
    if (!next()) return false;
    const Token& current = tokens_[cursor_];
    if (current.is_close_brace()) {
      --nesting_;
    } else if (current.is_open_brace() && is_next_on_new_line()) {
      ++nesting_;
    }
    return nesting_ > initial_nesting;
  }
  // Before the block: it must open on the directive's line.
  if (cursor_ + 1 >= static_cast<int>(tokens_.size())) return false;
  const Token& following = tokens_[cursor_ + 1];
  if (cursor_ >= 0 && caddyfile::is_next_on_new_line(tokens_[cursor_], following)) return false;
  if (!following.is_open_brace()) return false;
  ++cursor_;  // onto the "{"
  if (!next()) return false;
  if (tokens_[cursor_].is_close_brace()) return false;  // "{ }": opened and closed at once
  ++nesting_;
  return true;
}

const Token& Dispenser::token() const {
  static const Token kNone;
  if (cursor_ < 0 || cursor_ >= static_cast<int>(tokens_.size())) return kNone;
  return tokens_[cursor_];
}

const std::string& Dispenser::val() const {
  if (cursor_ < 0 || cursor_ >= static_cast<int>(tokens_.size())) return kEmpty;
  return tokens_[cursor_].text;
}

int Dispenser::line() const { return token().line; }

const std::string& Dispenser::file() const {
  if (cursor_ < 0 || cursor_ >= static_cast<int>(tokens_.size())) return kEmpty;
  return tokens_[cursor_].file_name();
}

bool Dispenser::is_new_line() const {
  if (cursor_ < 1) return true;
  if (cursor_ >= static_cast<int>(tokens_.size())) return false;
  return caddyfile::is_next_on_new_line(tokens_[cursor_ - 1], tokens_[cursor_]);
}

bool Dispenser::is_next_on_new_line() const {
  if (cursor_ < 0) return false;
  if (cursor_ + 1 >= static_cast<int>(tokens_.size())) return true;
  return caddyfile::is_next_on_new_line(tokens_[cursor_], tokens_[cursor_ + 1]);
}

std::vector<std::string> Dispenser::remaining_args() {
  std::vector<std::string> args;
  while (next_arg()) args.push_back(tokens_[cursor_].text);
  return args;
}

std::vector<Token> Dispenser::remaining_arg_tokens() {
  std::vector<Token> args;
  while (next_arg()) args.push_back(tokens_[cursor_]);
  return args;
}

int Dispenser::count_remaining_args() const {
  Dispenser probe = *this;
  int count = 0;
  while (probe.next_arg()) ++count;
  return count;
}

Dispenser Dispenser::next_segment() {
  std::vector<Token> segment;
  if (cursor_ < 0 && !next()) return Dispenser(std::move(segment));
  segment.push_back(tokens_[cursor_]);
  while (next_arg()) segment.push_back(tokens_[cursor_]);
  bool opened = false;
  for (int nesting = nesting_; next_block(nesting);) {
    if (!opened) {
      // next_block() stepped over the opening brace; the segment keeps it.
      segment.push_back(tokens_[cursor_ - 1]);
      opened = true;
    }
    segment.push_back(tokens_[cursor_]);
  }
  // The closing brace is kept too (it is the current token once the loop ends).
  if (opened) segment.push_back(tokens_[cursor_]);
  return Dispenser(std::move(segment));
}

void Dispenser::reset() noexcept {
  cursor_ = -1;
  nesting_ = 0;
}

ParseError Dispenser::error(const std::string& message) const {
  if (cursor_ < 0 || cursor_ >= static_cast<int>(tokens_.size())) {
    if (tokens_.empty()) return ParseError("Caddyfile", 0, 0, message);
    return error_at(tokens_[cursor_ < 0 ? 0 : tokens_.size() - 1], message);
  }
  return error_at(tokens_[cursor_], message);
}

ParseError Dispenser::arg_error() const {
  return error("wrong argument count or unexpected line ending after '" + val() + "'");
}

ParseError Dispenser::syntax_error(const std::string& expected) const {
  return error("syntax error: unexpected token '" + val() + "', expecting '" + expected + "'");
}

ParseError Dispenser::eof_error() const { return error("unexpected EOF"); }

}  // namespace acmetool::caddyfile
