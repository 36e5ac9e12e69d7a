#include "acmetool/caddyfile/lexer.h"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <map>

#include "acmetool/caddyfile/error.h"

using acmetool::caddyfile::EnvLookup;
using acmetool::caddyfile::ParseError;
using acmetool::caddyfile::process_environment;
using acmetool::caddyfile::Quote;
using acmetool::caddyfile::substitute_env;
using acmetool::caddyfile::Token;
using acmetool::caddyfile::tokenize;

namespace {

struct Expected {
  std::string text;
  int line;
  Quote quote = Quote::None;
};

struct Case {
  const char* name;
  std::string input;
  std::vector<Expected> tokens;
};

constexpr Quote kN = Quote::None;
constexpr Quote kD = Quote::Double;
constexpr Quote kB = Quote::Backtick;
constexpr Quote kH = Quote::Heredoc;

// One line per token, "line quote [text]", so a failure shows every token that differs.
std::string render(const std::string& text, int line, Quote quote) {
  static const char* const kQuoteNames[] = {"none", "double", "backtick", "heredoc"};
  return std::to_string(line) + " " + kQuoteNames[static_cast<int>(quote)] + " [" + text + "]";
}

std::vector<std::string> render(const std::vector<Token>& tokens) {
  std::vector<std::string> out;
  for (const Token& token : tokens) out.push_back(render(token.text, token.line, token.quote));
  return out;
}

std::vector<std::string> render(const std::vector<Expected>& tokens) {
  std::vector<std::string> out;
  for (const Expected& token : tokens) out.push_back(render(token.text, token.line, token.quote));
  return out;
}

void check_cases(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    INFO(c.name);
    CHECK(render(tokenize(c.input, "Caddyfile")) == render(c.tokens));
  }
}

// Tokenizes `input`, expecting a ParseError at `line` whose message is `message`.
void check_error(const std::string& input, int line, const std::string& message) {
  INFO(input);
  try {
    tokenize(input, "Caddyfile");
    FAIL("no error");
  } catch (const ParseError& e) {
    CHECK(e.file() == "Caddyfile");
    CHECK(e.line() == line);
    CHECK(std::string(e.what()) == "Caddyfile:" + std::to_string(line) + ": " + message);
  }
}

EnvLookup fake_env(std::map<std::string, std::string, std::less<>> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    const auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

}  // namespace

TEST_CASE("words split at whitespace and carry the line they start on", "[caddyfile][lexer]") {
  check_cases({
      {"plain words", "host:1234 dir1 arg1", {{"host:1234", 1}, {"dir1", 1}, {"arg1", 1}}},
      {"several lines",
       "host\n\ndir arg\n  sub\n",
       {{"host", 1}, {"dir", 3}, {"arg", 3}, {"sub", 4}}},
      {"tabs, vertical tabs and form feeds",
       "a\tb\vc\fd",
       {{"a", 1}, {"b", 1}, {"c", 1}, {"d", 1}}},
      {"Unicode spaces separate as in Go's unicode.IsSpace",
       "a\u00a0b\u3000c\u2003d",
       {{"a", 1}, {"b", 1}, {"c", 1}, {"d", 1}}},
      {"other non-ASCII text is kept",
       "caf\u00e9 \u00e9t\u00e9",
       {{"caf\u00e9", 1}, {"\u00e9t\u00e9", 1}}},
      {"braces are ordinary words to the lexer",
       "example.com {\n\tdir\n}",
       {{"example.com", 1}, {"{", 1}, {"dir", 2}, {"}", 3}}},
      {"empty input", "", {}},
      {"only whitespace", " \n\t\n", {}},
  });
}

TEST_CASE("comments start only at the start of a token", "[caddyfile][lexer]") {
  check_cases({
      {"comment lines and trailing comments",
       "# comment\nhost # trailing words\n#x\ndir",
       {{"host", 2}, {"dir", 4}}},
      {"a # inside a word is literal", "/some/#/path a#b", {{"/some/#/path", 1}, {"a#b", 1}}},
      {"a comment ends at the end of its line", "a #b c\nd", {{"a", 1}, {"d", 2}}},
      {"a comment at the end of the input", "a # b", {{"a", 1}}},
      // Upstream checks for '#' before it applies the escape, and the unused escape then turns
      // the comment's newline into a line continuation (verified against caddy 2.6.2).
      {"an escaped # is still a comment and continues the line",
       "host \\# comment\nnext\nlast",
       {{"host", 1}, {"next", 1}, {"last", 3}}},
      // Same mechanism: a backslash anywhere in a comment (verified against caddy 2.6.2, where
      // `respond "hi" # C:\x` followed by `200` sets the status code).
      {"a backslash inside a comment continues the line",
       "respond hi # C:\\x\n200\nlast",
       {{"respond", 1}, {"hi", 1}, {"200", 1}, {"last", 3}}},
  });
}

TEST_CASE("double quotes group words and unescape only quotes", "[caddyfile][lexer]") {
  check_cases({
      {"spaces inside quotes",
       "dir \"hello world\" x",
       {{"dir", 1}, {"hello world", 1, kD}, {"x", 1}}},
      {"escaped quotes", R"("a \"b\" c")", {{"a \"b\" c", 1, kD}}},
      {"other backslashes stay with the next character",
       R"("C:\php" "a\\b" "a\\" "\n")",
       {{R"(C:\php)", 1, kD}, {R"(a\\b)", 1, kD}, {R"(a\\)", 1, kD}, {R"(\n)", 1, kD}}},
      {"an empty quoted token", "a \"\" b", {{"a", 1}, {"", 1, kD}, {"b", 1}}},
      {"a quoted token spans lines and later lines keep their numbers",
       "a \"x\ny\nz\" b\nc",
       {{"a", 1}, {"x\ny\nz", 1, kD}, {"b", 3}, {"c", 4}}},
      {"a quote inside a word is literal", "a\"b c\"", {{"a\"b", 1}, {"c\"", 1}}},
      {"the closing quote ends the token", "\"a\"b", {{"a", 1, kD}, {"b", 1}}},
      {"quoted braces keep their quote kind", "\"{\" `}`", {{"{", 1, kD}, {"}", 1, kB}}},
      {"CR inside quotes is kept", "\"a\r\nb\"", {{"a\r\nb", 1, kD}}},
      {"# inside quotes is text", "\"# not a comment\"", {{"# not a comment", 1, kD}}},
      // The pending escape reaches into the quoted text (verified against caddy 2.6.2).
      {"a backslash before the opening quote", R"(\"abc")", {{R"(\abc)", 1, kD}}},
  });
}

TEST_CASE("backticks group words without any escapes", "[caddyfile][lexer]") {
  check_cases({
      {"double quotes inside backticks", "`a \"b\" c`", {{"a \"b\" c", 1, kB}}},
      {"backslashes are literal", R"(`\n\` x)", {{R"(\n\)", 1, kB}, {"x", 1}}},
      {"backticks inside double quotes", "\"a`b\"", {{"a`b", 1, kD}}},
      {"an empty backtick token", "``", {{"", 1, kB}}},
      {"multi-line with following line numbers",
       "`x\ny` z\nw",
       {{"x\ny", 1, kB}, {"z", 2}, {"w", 3}}},
  });
}

TEST_CASE("unquoted backslashes follow Caddy's rules", "[caddyfile][lexer]") {
  check_cases({
      {"kept with the next character",
       R"(un\escapable \\ a\"b)",
       {{R"(un\escapable)", 1}, {R"(\\)", 1}, {R"(a\"b)", 1}}},
      {"backslash-less-than drops the backslash", R"(a\<b)", {{"a<b", 1}}},
      {"an escaped heredoc is a plain word",
       "respond \\<<EOF\nEOF",
       {{"respond", 1}, {"<<EOF", 1}, {"EOF", 2}}},
      {"line continuation reports the earlier line, later lines their own",
       "dir a \\\n  b c\nnext\nlast",
       {{"dir", 1}, {"a", 1}, {"b", 1}, {"c", 1}, {"next", 3}, {"last", 4}}},
      {"continuation right after a word", "a\\\nb\nc", {{"a", 1}, {"b", 1}, {"c", 3}}},
      {"continuation with CRLF", "a \\\r\nb\r\nc", {{"a", 1}, {"b", 1}, {"c", 3}}},
      {"backslash-space vanishes and ends the word", "a\\ b", {{"a", 1}, {"b", 1}}},
      // The escape is still pending when the next word starts (verified against caddy 2.6.2).
      {"backslash-space before a word escapes that word", "a \\ b", {{"a", 1}, {"\\b", 1}}},
      // Verified against caddy 2.6.2: `respond a\rb 200` responds "ab".
      {"a CR inside a word is dropped", "a\rb c", {{"ab", 1}, {"c", 1}}},
      {"a trailing backslash at the end of the input is dropped", "a\\", {{"a", 1}}},
  });
}

TEST_CASE("CRLF input lexes exactly like LF input", "[caddyfile][lexer]") {
  const std::string lf =
      "example.com {\n\trespond \"a\" 200\n\t# c\n\tdir \\\n\t\targ\n\theader <<EOF\n\t\tx\n\n"
      "\t\tEOF\n}\n";
  std::string crlf;
  for (char c : lf) {
    if (c == '\n') crlf += '\r';
    crlf += c;
  }
  CHECK(render(tokenize(crlf, "f")) == render(tokenize(lf, "f")));
  CHECK(tokenize(crlf, "f").size() == 10);
}

TEST_CASE("a leading byte order mark is dropped", "[caddyfile][lexer]") {
  check_cases({
      {"at the start", "\xEF\xBB\xBFhost\ndir", {{"host", 1}, {"dir", 2}}},
      {"only the first one", "\xEF\xBB\xBF\xEF\xBB\xBFhost", {{"\xEF\xBB\xBFhost", 1}}},
      {"elsewhere it is text", "a\xEF\xBB\xBF", {{"a\xEF\xBB\xBF", 1}}},
  });
}

TEST_CASE("unterminated quotes run to the end of the input", "[caddyfile][lexer]") {
  // As upstream, the half-open token comes out unquoted, and an empty one not at all.
  check_cases({
      {"double quote", "a \"b c\nd", {{"a", 1}, {"b c\nd", 1}}},
      {"backtick", "a `b", {{"a", 1}, {"b", 1}}},
      {"nothing after the quote", "a \"", {{"a", 1}}},
      {"escape before the end", "\"b\\", {{"b", 1}}},
  });
}

TEST_CASE("heredocs read raw text up to the closing marker", "[caddyfile][lexer]") {
  check_cases({
      {"basic",
       "respond <<EOF\nhello\n  world \"x\" # y\nEOF\nnext",
       {{"respond", 1}, {"hello\n  world \"x\" # y", 1, kH}, {"next", 5}}},
      {"the closing marker's indentation is stripped from every line",
       "\trespond <<HTML\n\t\t<p>\n\t\t  hi\n\t\t</p>\n\t\tHTML\n\tnext",
       {{"respond", 1}, {"<p>\n  hi\n</p>", 1, kH}, {"next", 6}}},
      {"a blank line before the marker keeps a trailing newline",
       "a <<EOF\n  x\n\n  EOF",
       {{"a", 1}, {"x\n", 1, kH}}},
      {"empty lines need no padding", "<<EOF\n\ta\n\n\tb\n\tEOF", {{"a\n\nb", 1, kH}}},
      {"arguments after the closing marker",
       "respond <<HTML\n\t\t<b>\n\t\tHTML 200 {\nnext",
       {{"respond", 1}, {"<b>", 1, kH}, {"200", 3}, {"{", 3}, {"next", 4}}},
      {"an empty body", "a <<EOF\nEOF b", {{"a", 1}, {"", 1, kH}, {"b", 2}}},
      {"CRs are removed from the body",
       "<<EOF\r\n  a\r\n\r\n  b\r\n  EOF\r\nx",
       {{"a\n\nb", 1, kH}, {"x", 6}}},
      // Deliberate divergence: upstream closes at the first EOF inside "hello EOF world".
      {"a marker inside a body line does not close it",
       "<<EOF\nhello EOF world\nEOFX\nxEOF\nEOF",
       {{"hello EOF world\nEOFX\nxEOF", 1, kH}}},
      {"two heredocs in a row",
       "a <<A\n1\nA\nb <<B\n2\nB\nc",
       {{"a", 1}, {"1", 1, kH}, {"b", 4}, {"2", 4, kH}, {"c", 7}}},
      {"line numbers after a continuation stay as upstream counts them",
       "x \\\n<<EOF\na\nEOF\ny",
       {{"x", 1}, {"a", 1, kH}, {"y", 5}}},
      {"a marker with dashes, digits and underscores", "<<my-END_2\nv\nmy-END_2", {{"v", 1, kH}}},
  });
}

TEST_CASE("words that only look like heredocs are plain words", "[caddyfile][lexer]") {
  check_cases({
      {"<< followed by a space", "a << b", {{"a", 1}, {"<<", 1}, {"b", 1}}},
      {"<<X followed by a space", "a <<X b\nX", {{"a", 1}, {"<<X", 1}, {"b", 1}, {"X", 2}}},
      {"<<< followed by a space", "<<< b", {{"<<<", 1}, {"b", 1}}},
      {"<<X at the end of the input", "a <<EOF", {{"a", 1}, {"<<EOF", 1}}},
      {"<< inside a word", "a<<b\nc", {{"a<<b", 1}, {"c", 2}}},
      {"quoted", "\"<<EOF\"\n`<<EOF`", {{"<<EOF", 1, kD}, {"<<EOF", 2, kB}}},
  });
}

TEST_CASE("malformed heredocs fail with Caddy's messages", "[caddyfile][lexer]") {
  check_error("a <<\nb", 1,
              "missing opening heredoc marker on line #1; must contain only alphanumeric "
              "characters, dashes and underscores; got empty string");
  check_error("a\nb <<<EOF\n", 2,
              "too many '<' for heredoc on line #2; only use two, for example <<END");
  check_error("<<EO.F\nx\nEO.F", 1,
              "heredoc marker on line #1 must contain only alphanumeric characters, dashes and "
              "underscores; got 'EO.F'");
  // Only a space ends a would-be marker; a tab becomes part of it (verified upstream).
  check_error("<<X\tY\nX", 1,
              "heredoc marker on line #1 must contain only alphanumeric characters, dashes and "
              "underscores; got 'X\tY'");
  check_error("a\n<<EOF\nfoo\nbar", 4,
              "incomplete heredoc <<EOF on line #4, expected ending marker EOF");
  // Upstream's count includes the empty line after a final newline.
  check_error("a\n<<EOF\nfoo\nbar\n", 5,
              "incomplete heredoc <<EOF on line #5, expected ending marker EOF");
  // Deliberate divergence: upstream drops this heredoc silently.
  check_error("respond <<EOF\n", 2,
              "incomplete heredoc <<EOF on line #2, expected ending marker EOF");
  check_error("<<EOF\n\t\ta\n\tb\n\t\tEOF", 3,
              "mismatched leading whitespace in heredoc <<EOF on line #3 [\tb], expected "
              "whitespace [\t\t] to match the closing marker");
  check_error("x\n<<EOF\r\n  a\r\n b\r\n  EOF\r\n", 4,
              "mismatched leading whitespace in heredoc <<EOF on line #4 [ b], expected "
              "whitespace [  ] to match the closing marker");
}

TEST_CASE("tokens share the file name and leave parser fields empty", "[caddyfile][lexer]") {
  const std::vector<Token> tokens = tokenize("a b\nc", "sites/Caddyfile");
  REQUIRE(tokens.size() == 3);
  for (const Token& token : tokens) {
    CHECK(token.file_name() == "sites/Caddyfile");
    CHECK(token.file.get() == tokens[0].file.get());
    CHECK(token.import_chain == nullptr);
    CHECK(token.snippet.empty());
  }
  CHECK(Token{}.file_name().empty());
}

TEST_CASE("a large generated file keeps exact line numbers", "[caddyfile][lexer]") {
  std::string input;
  for (int i = 0; i < 2000; ++i) {
    input += "site" + std::to_string(i) + ".example.com {\n\trespond \"ok\" 200\n}\n";
  }
  const std::vector<Token> tokens = tokenize(input, "Caddyfile");
  REQUIRE(tokens.size() == 2000 * 6);
  CHECK(tokens.back().text == "}");
  CHECK(tokens.back().line == 6000);
  CHECK(tokens[6 * 1234 + 3].text == "ok");
  CHECK(tokens[6 * 1234 + 3].line == 3 * 1234 + 2);
}

TEST_CASE("the quoting examples of Caddy's Caddyfile concepts page lex as documented",
          "[caddyfile][lexer]") {
  check_cases({
      {"escaped quotes", R"(directive "\"abc def\"")", {{"directive", 1}, {"\"abc def\"", 1, kD}}},
      {"JSON in backticks",
       R"(directive `{"foo": "bar"}`)",
       {{"directive", 1}, {R"({"foo": "bar"})", 1, kB}}},
      {"a multi-line token",
       "directive \"first line\n\tsecond line\"",
       {{"directive", 1}, {"first line\n\tsecond line", 1, kD}}},
      {"the heredoc example",
       "example.com {\n"
       "\trespond <<HTML\n"
       "\t\t<html>\n"
       "\t\t  <head><title>Foo</title></head>\n"
       "\t\t  <body>Foo</body>\n"
       "\t\t</html>\n"
       "\t\tHTML 200\n"
       "}\n",
       {{"example.com", 1},
        {"{", 1},
        {"respond", 2},
        {"<html>\n  <head><title>Foo</title></head>\n  <body>Foo</body>\n</html>", 2, kH},
        {"200", 7},
        {"}", 8}}},
  });
}

TEST_CASE("environment placeholders are substituted before lexing", "[caddyfile][lexer]") {
  const EnvLookup env = fake_env({{"HOST", "example.com"},
                                  {"PORT", "8080"},
                                  {"EMPTY", ""},
                                  {"SPACED", "a b  \"c d\""},
                                  {"NESTED", "{$HOST}"}});
  struct Row {
    const char* input;
    const char* expected;
  };
  const Row rows[] = {
      {"{$HOST}", "example.com"},
      {"{$HOST:fallback}", "example.com"},
      {"{$MISSING:fallback}", "fallback"},
      {"{$MISSING:a:b}", "a:b"},
      {"{$EMPTY:fallback}", ""},
      {"[{$MISSING}]", "[]"},
      {"{$}", "{$}"},
      {"{$}{$HOST}", "{$}example.com"},
      {"a {$HOST", "a {$HOST"},
      {"{$HOST} {$HOST", "example.com {$HOST"},
      {"{$NESTED}", "{$HOST}"},
      {"{$HOST}:{$PORT} {$HOST}", "example.com:8080 example.com"},
      {"{$A{$HOST}", ""},
      {"${HOST} $HOST {HOST}", "${HOST} $HOST {HOST}"},
  };
  for (const Row& row : rows) {
    INFO(row.input);
    CHECK(substitute_env(row.input, env) == row.expected);
  }
}

TEST_CASE("a substituted value can become several tokens", "[caddyfile][lexer]") {
  const EnvLookup env = fake_env({{"SPACED", "a b  \"c d\""}});
  const std::vector<Token> tokens = tokenize(substitute_env("respond {$SPACED}", env), "f");
  CHECK(render(tokens) ==
        render(std::vector<Expected>{{"respond", 1}, {"a", 1}, {"b", 1}, {"c d", 1, kD}}));
}

TEST_CASE("the process environment lookup reports unset variables", "[caddyfile][lexer]") {
  const EnvLookup env = process_environment();
  ::setenv("ACMETOOL_LEXER_TEST", "v=1", 1);
  ::setenv("ACMETOOL_LEXER_EMPTY", "", 1);
  ::unsetenv("ACMETOOL_LEXER_UNSET");
  CHECK(env("ACMETOOL_LEXER_TEST") == std::optional<std::string>("v=1"));
  CHECK(env("ACMETOOL_LEXER_EMPTY") == std::optional<std::string>(""));
  CHECK(env("ACMETOOL_LEXER_UNSET") == std::nullopt);
  CHECK(env("ACMETOOL_LEXER_TEST=v") == std::nullopt);
  CHECK(substitute_env("{$ACMETOOL_LEXER_UNSET:d} {$ACMETOOL_LEXER_TEST}", env) == "d v=1");
}
