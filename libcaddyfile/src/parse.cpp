#include "acmetool/caddyfile/parse.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <utility>

#include "acmetool/caddyfile/dispenser.h"
#include "acmetool/caddyfile/error.h"
#include "parse_internal.h"

namespace acmetool::caddyfile {

namespace {

// Imports can nest and repeat (a snippet importing a snippet twice, ten levels deep); this bound
// turns an exponential expansion into an error instead of exhausting memory.
constexpr std::size_t kMaxImportedTokens = 4'000'000;

bool is_word(const Token& token, std::string_view word) {
  return token.quote == Quote::None && token.text == word;
}

// Where a token ends, for telling whether the next one starts a new line.
struct LineEnd {
  std::shared_ptr<const std::string> file;
  std::shared_ptr<const std::vector<std::string>> import_chain;
  int line = 0;
};

LineEnd end_of(const Token& token) { return {token.file, token.import_chain, token.line + line_breaks(token)}; }

// Same rule as is_next_on_new_line(), from the end of the previous token.
bool starts_new_line(const LineEnd& previous, const Token& token) {
  if (previous.file == nullptr) return true;
  Token probe;
  probe.file = previous.file;
  probe.import_chain = previous.import_chain;
  probe.line = previous.line;
  if (previous.file != token.file || previous.import_chain != token.import_chain) {
    return is_next_on_new_line(probe, token);
  }
  return previous.line < token.line;
}

// The tokens still to be read, kept in reverse so that reading one and splicing an import in
// front of the rest are both cheap (Caddy splices into the middle of one slice instead). Only the
// end of the previous token is remembered, so the current one can be moved into a segment.
class TokenStream {
 public:
  explicit TokenStream(std::vector<Token> tokens) : pending_(std::move(tokens)) {
    std::reverse(pending_.begin(), pending_.end());
  }

  bool next() {
    if (pending_.empty()) return false;
    previous_end_ = std::move(current_end_);
    current_ = std::move(pending_.back());
    pending_.pop_back();
    current_end_ = end_of(current_);
    return true;
  }
  // Puts the current token back; the next next() returns it again.
  void unread() {
    pending_.push_back(std::move(current_));
    current_end_ = previous_end_;
  }
  // Moves the current token out; next() must follow before current() is used again.
  Token take() { return std::move(current_); }
  void push_front(std::vector<Token> tokens) {
    for (auto it = tokens.rbegin(); it != tokens.rend(); ++it) pending_.push_back(std::move(*it));
  }
  // After an import: line logic continues from `end`, as if the statement were not there.
  void forget_current(LineEnd end) { current_end_ = std::move(end); }

  const Token& current() const { return current_; }
  const LineEnd& previous_end() const { return previous_end_; }
  const Token* peek() const { return pending_.empty() ? nullptr : &pending_.back(); }

  // The current token is the first on its line.
  bool at_line_start() const { return starts_new_line(previous_end_, current_); }
  // The token after the current one starts a new line, or there is none.
  bool next_on_new_line() const { return peek() == nullptr || starts_new_line(current_end_, *peek()); }

 private:
  std::vector<Token> pending_;
  Token current_;
  LineEnd current_end_;
  LineEnd previous_end_;
};

// Recognises `(name) { ... }` snippet definitions among tokens imported at the top level; their
// placeholders belong to the snippet's own later import, not to this one.
class SnippetTracker {
 public:
  explicit SnippetTracker(int nesting) : depth_(nesting) {}

  // Feeds the next token; true while it is part of a snippet definition.
  bool step(const Token& token, bool starts_line) {
    if (!in_snippet_ && depth_ == 0) {
      index_ = starts_line ? 0 : index_ + 1;
      if (index_ == 0) {
        maybe_name_ = token.text.size() >= 3 && token.text.front() == '(' && token.text.back() == ')';
      }
    }
    if (token.is_open_brace()) {
      ++depth_;
      if (index_ == 1 && maybe_name_ && depth_ == 1) {
        in_snippet_ = true;
        maybe_name_ = false;
      }
    } else if (token.is_close_brace()) {
      --depth_;
      if (depth_ == 0) in_snippet_ = false;
    }
    return in_snippet_;
  }

 private:
  int depth_;
  int index_ = 0;
  bool maybe_name_ = false;
  bool in_snippet_ = false;
};

// What `import snippet { NAME ... }` passes for `{blocks.NAME}`: either the arguments after NAME
// on its line, or the tokens of the block opened after NAME.
struct NamedBlock {
  std::vector<Token> tokens;
  // `NAME arg...`: the arguments are spliced onto the placeholder's line (Caddy leaves them on
  // their own line, where they read as a new directive).
  bool arguments = false;
};

std::map<std::string, NamedBlock> blocks_by_name(const std::vector<Token>& block) {
  std::map<std::string, NamedBlock> named;
  Dispenser d(block);
  while (d.next()) {
    if (d.token().is_open_brace()) throw error_at(d.token(), "anonymous blocks are not supported");
    NamedBlock& entry = named[d.val()];
    entry = NamedBlock{};
    if (d.next_arg()) {
      entry.arguments = true;
      do {
        entry.tokens.push_back(d.token());
      } while (d.next_arg());
    } else {
      for (int nesting = d.nesting(); d.next_block(nesting);) entry.tokens.push_back(d.token());
    }
  }
  return named;
}

class Parser {
 public:
  Parser(std::vector<Token> tokens, const std::string& main_file, const ParseOptions& options)
      : stream_(std::move(tokens)), main_file_(main_file), options_(options) {
    // Import-graph nodes are absolute paths, so a file importing the main file is seen as such.
    std::error_code ec;
    main_node_ = main_file == "-" ? main_file : std::filesystem::absolute(main_file, ec).string();
    if (ec) main_node_ = main_file;
  }

  ParseResult parse_all() {
    while (stream_.next()) {
      block_ = ServerBlock{};
      eof_ = false;
      parse_one();
      if (!block_.keys.empty() || !block_.segments.empty()) result_.blocks.push_back(std::move(block_));
    }
    return std::move(result_);
  }

 private:
  ParseError error(const std::string& message) const { return error_at(stream_.current(), message); }
  static ParseError syntax_error_at(const Token& token, const std::string& expected) {
    return error_at(token, "syntax error: unexpected token '" + token.text + "', expecting '" + expected + "'");
  }
  ParseError syntax_error(const std::string& expected) const { return syntax_error_at(stream_.current(), expected); }

  void parse_one() {
    addresses();
    if (eof_) return;  // a line of addresses and nothing else
    if (block_.keys.size() == 1 && block_.keys[0].text.starts_with("&(") && block_.keys[0].text.ends_with(")")) {
      named_route();
    } else if (block_.keys.size() == 1 && block_.keys[0].text.starts_with("(") && block_.keys[0].text.ends_with(")")) {
      snippet();
    } else {
      block_contents();
    }
  }

  // The block's keys: addresses separated by spaces, by commas, or by a trailing comma and a new line.
  void addresses() {
    bool expecting_another = false;
    while (true) {
      const Token& token = stream_.current();
      if (is_word(token, "import") && stream_.at_line_start()) {
        do_import(0);
        if (!stream_.next()) {
          if (expecting_another) throw error("unexpected EOF");
          eof_ = true;
          return;
        }
        continue;
      }
      if (token.is_open_brace()) {
        if (expecting_another) throw error("Expected another address but had '{' - check for extra comma");
        return;
      }
      if (!token.quoted() && token.text.starts_with("@")) {
        throw error("request matchers may not be defined globally, they must be in a site block; found " +
                    token.text);
      }
      if (!token.quoted() && token.text.ends_with("{")) {
        throw error("Site addresses cannot end with a curly brace: '" + token.text +
                    "' - put a space between the token and the brace");
      }
      add_key(token, expecting_another);
      if (!stream_.next()) {
        if (expecting_another) throw error("unexpected EOF");
        eof_ = true;
        return;
      }
      if (!expecting_another && stream_.at_line_start()) return;
    }
  }

  void add_key(const Token& token, bool& expecting_another) {
    if (token.text.empty()) return;  // "" typed by the user
    std::string text = token.text;
    expecting_another = text.back() == ',';
    if (expecting_another) text.pop_back();
    // "a.com,b.com" would silently be one address.
    if (text.find(',') != std::string::npos) {
      throw error("Site addresses cannot contain a comma ',': '" + token.text + "' - put a space after the comma");
    }
    if (text.empty()) return;  // a lone "," between spaces
    Token key = token;
    key.text = std::move(text);
    block_.keys.push_back(std::move(key));
  }

  void block_contents() {
    block_.has_braces = stream_.current().is_open_brace();
    if (!block_.has_braces) stream_.unread();  // a single site may go without braces
    directives();
    if (block_.has_braces && !stream_.current().is_close_brace()) {
      // The input ended inside the block; the last token read went into the last segment.
      if (!block_.segments.empty()) throw syntax_error_at(block_.segments.back().back(), "}");
      throw syntax_error("}");
    }
  }

  // Directive lines until the block's closing brace (or the end of input for a brace-less site).
  void directives() {
    while (stream_.next()) {
      const Token& token = stream_.current();
      if (token.is_close_brace()) {
        if (!block_.has_braces) throw error("Unexpected '}' because no matching opening brace");
        return;
      }
      if (is_word(token, "import")) {
        do_import(0);
        continue;
      }
      directive();
    }
  }

  // One segment: a directive, its arguments, and the block that opens at the end of its line.
  void directive() {
    Segment segment{stream_.take()};
    int nesting = 0;
    while (stream_.next()) {
      const Token& token = stream_.current();
      if (token.is_open_brace()) {
        ++nesting;
        if (!stream_.next_on_new_line()) throw error("Unexpected next token after '{' on same line");
        if (stream_.at_line_start()) {
          throw error("Unexpected '{' on a new line; did you mean to place the '{' on the previous line?");
        }
      } else if (is_word(token, "{}")) {
        if (stream_.next_on_new_line()) throw error("Unexpected '{}' at end of line");
      } else if (stream_.at_line_start() && nesting == 0) {
        stream_.unread();  // read too far: this token starts the next directive
        break;
      } else if (token.is_close_brace()) {
        if (nesting == 0) throw error("Unexpected '}' because no matching opening brace");
        --nesting;
      } else if (is_word(token, "import") && stream_.at_line_start()) {
        do_import(nesting);
        continue;
      }
      segment.push_back(stream_.take());
    }
    if (nesting > 0) throw error_at(segment.back(), "unexpected EOF");
    block_.segments.push_back(std::move(segment));
  }

  // Every token of a `{ ... }` block starting at the current token, braces included or not.
  std::vector<Token> block_tokens(bool keep_braces) {
    if (!stream_.current().is_open_brace()) throw syntax_error("{");
    std::vector<Token> tokens;
    if (keep_braces) tokens.push_back(stream_.current());
    int nesting = 1;
    while (stream_.next()) {
      const Token& token = stream_.current();
      if (token.is_close_brace() && --nesting == 0) {
        if (keep_braces) tokens.push_back(token);
        return tokens;
      }
      if (token.is_open_brace()) ++nesting;
      tokens.push_back(stream_.take());
    }
    throw tokens.empty() ? syntax_error("}") : syntax_error_at(tokens.back(), "}");
  }

  void snippet() {
    const Token& key = block_.keys[0];
    std::string name = key.text.substr(1, key.text.size() - 2);
    if (snippets_.count(name) != 0) throw error_at(key, "redeclaration of previously declared snippet " + name);
    std::vector<Token> tokens = block_tokens(false);
    // Tokens remember their snippet, so imports inside it are graph nodes of their own.
    for (Token& token : tokens) token.snippet = name;
    snippets_.emplace(std::move(name), std::move(tokens));
    block_.keys.clear();
  }

  void named_route() {
    Token name = block_.keys[0];
    name.text = name.text.substr(2, name.text.size() - 3);
    if (!named_routes_.insert(name.text).second) {
      throw error_at(block_.keys[0], "redeclaration of previously declared named route " + name.text);
    }
    block_.keys = {name};
    block_.is_named_route = true;
    block_.has_braces = true;
    block_.segments.push_back(block_tokens(true));
  }

  void do_import(int nesting);
  std::vector<Token> import_block_arguments();
  std::vector<Token> import_files(const Token& import_token, const std::string& pattern,
                                  std::vector<std::string>& nodes);
  std::vector<Token> read_import(const Token& import_token, const std::filesystem::path& path);
  std::vector<Token> expand_import(const Token& import_token, const std::vector<Token>& imported,
                                   const std::vector<Token>& args, const std::vector<Token>& block,
                                   int nesting);
  const std::string& node_name(const std::string& file) const { return file == main_file_ ? main_node_ : file; }
  void warn(const Token& at, std::string message) {
    result_.warnings.push_back({at.file_name() + ":" + std::to_string(at.line), std::move(message)});
  }

  TokenStream stream_;
  std::string main_file_;
  std::string main_node_;
  const ParseOptions& options_;
  ServerBlock block_;
  bool eof_ = false;
  std::map<std::string, std::vector<Token>> snippets_;
  std::set<std::string> named_routes_;
  detail::ImportGraph import_graph_;
  std::size_t imported_tokens_ = 0;
  ParseResult result_;
};


// `import PATTERN [ARGS...] [{ BLOCK }]` at the current token: replaces the statement with the
// snippet's or files' tokens, so the next next() reads the first imported token.
void Parser::do_import(int nesting) {
  const Token import_token = stream_.current();
  const LineEnd before = stream_.previous_end();
  const auto next_arg = [this] {
    const Token* following = stream_.peek();
    if (following == nullptr || stream_.next_on_new_line() || following->is_open_brace()) return false;
    return stream_.next();
  };
  if (!next_arg()) throw error("wrong argument count or unexpected line ending after 'import'");
  const std::string pattern = stream_.current().text;
  if (pattern.empty()) throw error("Import requires a non-empty filepath");
  std::vector<Token> args;
  while (next_arg()) args.push_back(stream_.current());
  const std::vector<Token> block = import_block_arguments();

  std::vector<std::string> nodes;
  std::vector<Token> imported;
  if (const auto found = snippets_.find(pattern); found != snippets_.end()) {
    imported = found->second;
    if (!imported.empty()) nodes.push_back(node_name(imported.front().file_name()) + ":" + found->first);
  } else {
    imported = import_files(import_token, pattern, nodes);
  }
  std::string from = node_name(import_token.file_name());
  if (!import_token.snippet.empty()) from += ":" + import_token.snippet;
  if (const auto cycle = import_graph_.add_edges(from, nodes)) throw error_at(import_token, *cycle);

  std::vector<Token> expanded = expand_import(import_token, imported, args, block, nesting);
  imported_tokens_ += expanded.size();
  if (imported_tokens_ > kMaxImportedTokens) {
    throw error_at(import_token, "imports expand to more than " + std::to_string(kMaxImportedTokens) + " tokens");
  }
  stream_.push_front(std::move(expanded));
  // Line logic after the import compares with what preceded the statement, as if it were gone.
  stream_.forget_current(before);
}

// The tokens of a block passed to an import (`import snippet { ... }`), without its braces.
std::vector<Token> Parser::import_block_arguments() {
  std::vector<Token> block;
  const Token* following = stream_.peek();
  if (following == nullptr || stream_.next_on_new_line() || !following->is_open_brace()) return block;
  stream_.next();
  int depth = 1;
  while (stream_.next()) {
    const Token& token = stream_.current();
    if (token.is_close_brace() && --depth == 0) return block;
    if (token.is_open_brace()) ++depth;
    block.push_back(token);
  }
  throw error("unexpected EOF");
}

std::vector<Token> Parser::import_files(const Token& import_token, const std::string& pattern,
                                        std::vector<std::string>& nodes) {
  namespace fs = std::filesystem;
  fs::path base;
  if (import_token.file_name() == main_file_ && !options_.base_directory.empty()) {
    base = options_.base_directory;
  } else {
    base = fs::absolute(fs::path(import_token.file_name())).parent_path();
  }
  const detail::GlobResult glob = detail::expand_import_pattern(pattern, base);
  if (glob.error) throw error_at(import_token, *glob.error);
  if (glob.warning) warn(import_token, *glob.warning);
  std::vector<Token> tokens;
  for (const fs::path& file : glob.files) {
    std::vector<Token> more = read_import(import_token, file);
    tokens.insert(tokens.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
    nodes.push_back(file.string());
  }
  return tokens;
}

std::vector<Token> Parser::read_import(const Token& import_token, const std::filesystem::path& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (std::filesystem::is_directory(status)) {
    throw error_at(import_token, "Could not import " + path.string() + ": is a directory");
  }
  // A device or a pipe (/dev/zero, /dev/stdin) could be read forever.
  if (!ec && !std::filesystem::is_regular_file(status)) {
    throw error_at(import_token, "Could not import " + path.string() + ": not a regular file");
  }
  const std::optional<std::string> content = detail::read_whole_file(path);
  if (!content) throw error_at(import_token, "Could not import " + path.string() + ": " + std::strerror(errno));
  if (content->find_first_not_of(" \t\r\n") == std::string::npos) {
    warn(import_token, "Import file is empty: " + path.string());
    return {};
  }
  return tokenize(substitute_env(*content, options_.env), path.string());
}

// The imported tokens as they are spliced in: import chain recorded, `{block}` and `{blocks.NAME}`
// replaced by the block passed to the import, `{args[...]}` by its arguments - except inside a
// snippet defined by an imported file, whose placeholders wait for that snippet's own import.
std::vector<Token> Parser::expand_import(const Token& import_token, const std::vector<Token>& imported,
                                         const std::vector<Token>& args, const std::vector<Token>& block,
                                         int nesting) {
  auto chain = std::make_shared<std::vector<std::string>>();
  if (import_token.import_chain) *chain = *import_token.import_chain;
  chain->push_back(import_token.file_name() + ":" + std::to_string(import_token.line) +
                   (imported.empty() || imported.front().snippet.empty()
                        ? " (import)"
                        : " (import " + imported.front().snippet + ")"));
  const std::map<std::string, NamedBlock> named_blocks = blocks_by_name(block);
  const NamedBlock whole_block{block, false};
  std::vector<std::string> arg_texts;
  for (const Token& arg : args) arg_texts.push_back(arg.text);

  std::vector<Token> out;
  out.reserve(imported.size());
  std::vector<std::string> problems;
  SnippetTracker tracker(nesting);
  for (std::size_t i = 0; i < imported.size(); ++i) {
    Token token = imported[i];
    token.import_chain = chain;
    const bool in_snippet = tracker.step(token, i == 0 || is_next_on_new_line(imported[i - 1], imported[i]));
    const bool named_block = token.text.starts_with("{blocks.") && token.text.ends_with("}");
    if (token.text == "{block}" || named_block) {
      const NamedBlock* replacement = &whole_block;
      if (named_block) {
        const auto found = named_blocks.find(token.text.substr(8, token.text.size() - 9));
        replacement = found == named_blocks.end() ? nullptr : &found->second;
      }
      // An empty block leaves the placeholder as written, so older snippets keep working.
      if (replacement == nullptr || replacement->tokens.empty()) {
        out.push_back(std::move(token));
        continue;
      }
      for (Token inserted : replacement->tokens) {
        if (replacement->arguments) {
          inserted.file = token.file;
          inserted.line = token.line;
          inserted.import_chain = token.import_chain;
        }
        out.push_back(std::move(inserted));
      }
      continue;
    }
    if (in_snippet) {
      out.push_back(std::move(token));
      continue;
    }
    const std::size_t known_problems = problems.size();
    if (const auto range = detail::parse_variadic(token.text, args.size(), problems)) {
      for (std::size_t a = range->begin; a < range->end; ++a) {
        Token copy = token;
        copy.text = args[a].text;
        copy.quote = args[a].quote;  // a quoted "{" argument stays text
        out.push_back(std::move(copy));
      }
      continue;
    }
    // A malformed range was reported already; it stays as written.
    if (problems.size() == known_problems) token.text = detail::replace_args(token.text, arg_texts, problems);
    out.push_back(std::move(token));
  }
  for (std::string& problem : problems) warn(import_token, std::move(problem));
  return out;
}

}  // namespace

ParseResult parse(std::string_view input, const std::string& file, const ParseOptions& options) {
  std::vector<Token> tokens = tokenize(substitute_env(input, options.env), file);
  return Parser(std::move(tokens), file, options).parse_all();
}

ParseResult parse_file(const std::filesystem::path& path, const ParseOptions& options) {
  return parse(read_caddyfile(path), path.string(), options);
}

std::string read_caddyfile(const std::filesystem::path& path) {
  std::optional<std::string> text = detail::read_whole_file(path);
  if (!text) throw Error("reading " + path.string() + ": " + std::strerror(errno));
  return std::move(*text);
}

namespace detail {

std::optional<std::string> read_whole_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  // An empty file sets failbit on the copy, which is not an error; badbit is.
  if (in.bad()) return std::nullopt;
  return std::move(text).str();
}

}  // namespace detail

}  // namespace acmetool::caddyfile
