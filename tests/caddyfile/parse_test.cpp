#include "acmetool/caddyfile/parse.h"

#include <catch2/catch.hpp>

#include "acmetool/caddyfile/error.h"
#include "parse_test_util.h"

using namespace acmetool::caddyfile;
using acmetool::caddyfile::test::fake_env;
using acmetool::caddyfile::test::parse_summary;

TEST_CASE("the parser groups tokens into blocks and directive segments", "[caddyfile][parse]") {
  struct Row {
    const char* name;
    const char* input;
    const char* expected;
  };
  const Row rows[] = {
      {"empty file", "", ""},
      {"comments only", "# nothing\n\n# here\n", ""},
      {"global options then a site",
       "{\n\temail a@example.com\n\tdebug\n}\n\nexample.com {\n\troot * /srv\n\tfile_server\n}\n",
       "[] | email a@example.com | debug\n[example.com] | root * /srv | file_server\n"},
      {"a site without braces", "localhost\n\nreverse_proxy /api/* localhost:9001\nfile_server\n",
       "~[localhost] | reverse_proxy /api/* localhost:9001 | file_server\n"},
      {"addresses separated by spaces", "a.com b.com:8080 {\n\trespond hi\n}\n", "[a.com b.com:8080] | respond hi\n"},
      {"addresses separated by commas", "a.com, b.com, c.com {\n}\n", "[a.com b.com c.com]\n"},
      {"addresses continued on the next lines by a trailing comma",
       "localhost:8080,\nexample.com,\nwww.example.com {\n\tfile_server\n}\n",
       "[localhost:8080 example.com www.example.com] | file_server\n"},
      {"a lone comma between spaces is ignored", "a.com , b.com {\n}\n", "[a.com b.com]\n"},
      {"nested subdirective blocks stay in their segment",
       "example.com {\n\treverse_proxy a:1 b:2 {\n\t\tlb_policy first\n\t\ttransport http {\n\t\t\ttls\n\t\t}\n\t}\n\tlog\n}\n",
       "[example.com] | reverse_proxy a:1 b:2 { lb_policy first transport http { tls } } | log\n"},
      {"quoted braces are arguments", "example.com {\n\trespond \"{\" 200\n\trespond \"}\"\n}\n",
       "[example.com] | respond \"{\" 200 | respond \"}\"\n"},
      {"a quoted token spanning lines stays in its segment", "example.com {\n\trespond \"a\nb\" 200\n\tlog\n}\n",
       "[example.com] | respond \"a\nb\" 200 | log\n"},
      {"a heredoc's arguments after the closing marker stay in its segment",
       "example.com {\n\trespond <<HTML\n\t\t<b>hi</b>\n\t\tHTML 201\n\tlog\n}\n",
       "[example.com] | respond \"<b>hi</b>\" 201 | log\n"},
      {"an empty quoted address is ignored", "\"\" a.com {\n}\n", "[a.com]\n"},
      {"a line of addresses and nothing else", "example.com\n", "~[example.com]\n"},
      {"snippets are not blocks", "(common) {\n\tencode gzip\n}\nexample.com {\n\tlog\n}\n", "[example.com] | log\n"},
      {"named routes keep their tokens with braces", "&(app) {\n\treverse_proxy app:8080\n}\n",
       "&[app] | { reverse_proxy app:8080 }\n"},
      {"several sites", "a.com {\n\trespond a\n}\nb.com {\n\trespond b\n}\n", "[a.com] | respond a\n[b.com] | respond b\n"},
      {"a site block whose brace opens on the next line", "a.com\n{\n\trespond a\n}\n", "[a.com] | respond a\n"},
      {"an empty global options block is dropped", "{\n}\na.com {\n}\n", "[a.com]\n"},
      {"a '{}' in the middle of a line is text", "a.com {\n\trespond {} 200\n}\n", "[a.com] | respond {} 200\n"},
      {"placeholders are text", "a.com {\n\tredir https://{host}{uri}\n}\n", "[a.com] | redir https://{host}{uri}\n"},
  };
  for (const Row& row : rows) {
    INFO(row.name);
    CHECK(parse_summary(row.input) == row.expected);
  }
}

TEST_CASE("tokens keep their file and line through the parser", "[caddyfile][parse]") {
  const ParseResult result = parse("a.com {\n\n\trespond hi\n}\n", "sites/Caddyfile");
  REQUIRE(result.blocks.size() == 1);
  const Token& respond = result.blocks[0].segments.at(0).at(0);
  CHECK(respond.file_name() == "sites/Caddyfile");
  CHECK(respond.line == 3);
  CHECK(result.blocks[0].keys.at(0).line == 1);
}

TEST_CASE("environment variables are substituted before parsing", "[caddyfile][parse]") {
  ParseOptions options;
  options.env = fake_env({{"DOMAIN", "example.com"}, {"UPSTREAMS", "app1:8080 app2:8080"}, {"EMPTY", ""}});
  CHECK(parse_summary("{$DOMAIN} {\n\treverse_proxy {$UPSTREAMS}\n}\n", options) ==
        "[example.com] | reverse_proxy app1:8080 app2:8080\n");
  CHECK(parse_summary("{$MISSING:localhost} {\n}\n", options) == "[localhost]\n");
  CHECK(parse_summary("{$EMPTY:default} a.com {\n}\n", options) == "[a.com]\n");
  // A value may even open a block: substitution is textual.
  options.env = fake_env({{"OPEN", "a.com {"}});
  CHECK(parse_summary("{$OPEN}\n\trespond hi\n}\n", options) == "[a.com] | respond hi\n");
}

TEST_CASE("malformed structure is an error naming the file and line", "[caddyfile][parse]") {
  struct Row {
    const char* input;
    const char* message;
  };
  const Row rows[] = {
      {"a.com,b.com {\n}\n",
       "Caddyfile:1: Site addresses cannot contain a comma ',': 'a.com,b.com' - put a space after the comma"},
      {"example.com{\n}\n",
       "Caddyfile:1: Site addresses cannot end with a curly brace: 'example.com{' - put a space between the token and "
       "the brace"},
      {"@api path /api/*\n",
       "Caddyfile:1: request matchers may not be defined globally, they must be in a site block; found @api"},
      {"a.com, {\n}\n", "Caddyfile:1: Expected another address but had '{' - check for extra comma"},
      {"a.com,\n", "Caddyfile:1: unexpected EOF"},
      {"a.com {\n\treverse_proxy app:80\n\t{\n\t\tlb_policy first\n\t}\n}\n",
       "Caddyfile:3: Unexpected '{' on a new line; did you mean to place the '{' on the previous line?"},
      {"a.com {\n\treverse_proxy app:80 { lb_policy first\n\t}\n}\n",
       "Caddyfile:2: Unexpected next token after '{' on same line"},
      {"a.com {\n\tfile_server {}\n}\n", "Caddyfile:2: Unexpected '{}' at end of line"},
      {"a.com {\n\trespond hi }\n}\n", "Caddyfile:2: Unexpected '}' because no matching opening brace"},
      {"a.com {\n\tlog {\n\t\toutput stdout\n", "Caddyfile:3: unexpected EOF"},
      {"a.com {\n\tlog\n", "Caddyfile:2: syntax error: unexpected token 'log', expecting '}'"},
      {"(s) {\n\tlog\n}\n(s) {\n\tlog\n}\n", "Caddyfile:4: redeclaration of previously declared snippet s"},
      {"(s)\nlog\n", "Caddyfile:2: syntax error: unexpected token 'log', expecting '{'"},
      {"(s) {\n\tlog\n", "Caddyfile:2: syntax error: unexpected token 'log', expecting '}'"},
      {"(s) {\n", "Caddyfile:1: syntax error: unexpected token '{', expecting '}'"},
      {"a.com {\n", "Caddyfile:1: syntax error: unexpected token '{', expecting '}'"},
      {"&(r) {\n}\n&(r) {\n}\n", "Caddyfile:3: redeclaration of previously declared named route r"},
      {"localhost\nrespond hi\n}\n", "Caddyfile:3: Unexpected '}' because no matching opening brace"},
  };
  for (const Row& row : rows) {
    INFO(row.input);
    REQUIRE_THROWS_AS(parse(row.input, "Caddyfile"), ParseError);
    try {
      parse(row.input, "Caddyfile");
    } catch (const ParseError& e) {
      CHECK(std::string(e.what()) == row.message);
    }
  }
}

TEST_CASE("a parse error reports the line of a token after a multi-line token correctly", "[caddyfile][parse]") {
  try {
    parse("a.com {\n\trespond \"one\ntwo\nthree\" }\n}\n", "Caddyfile");
    FAIL("no error");
  } catch (const ParseError& e) {
    CHECK(std::string(e.what()) == "Caddyfile:4: Unexpected '}' because no matching opening brace");
    CHECK(e.line() == 4);
    CHECK(e.file() == "Caddyfile");
  }
}
