#include <catch2/catch.hpp>

#include <fstream>

#include "acmetool/caddyfile/error.h"
#include "acmetool/caddyfile/parse.h"
#include "parse_test_util.h"
#include "process.h"

using namespace acmetool::caddyfile;
using acmetool::caddyfile::test::fake_env;
using acmetool::caddyfile::test::parse_summary;
using acmetool::caddyfile::test::summary;
namespace fs = std::filesystem;

namespace {

void write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

std::string error_of(const std::string& text, const ParseOptions& options = {}, const std::string& file = "Caddyfile") {
  try {
    parse(text, file, options);
  } catch (const ParseError& e) {
    return e.what();
  }
  return "no error";
}

std::vector<std::string> warnings_of(const ParseResult& result) {
  std::vector<std::string> out;
  for (const Warning& w : result.warnings) out.push_back(w.where + ": " + w.message);
  return out;
}

}  // namespace

TEST_CASE("snippets are imported with their arguments", "[caddyfile][import]") {
  struct Row {
    const char* name;
    const char* input;
    const char* expected;
  };
  const Row rows[] = {
      {"plain snippet", "(gz) {\n\tencode gzip\n\tlog\n}\na.com {\n\timport gz\n\trespond hi\n}\n",
       "[a.com] | encode gzip | log | respond hi\n"},
      {"positional argument inside a token",
       "(s) {\n\trespond \"Yahaha! You found {args[0]}!\"\n}\na.com {\n\timport s \"Example A\"\n}\n",
       "[a.com] | respond \"Yahaha! You found Example A!\"\n"},
      {"the deprecated {args.N} form", "(s) {\n\trespond {args.1}\n}\na.com {\n\timport s x y\n}\n",
       "[a.com] | respond y\n"},
      {"all arguments as separate tokens", "(s) {\n\treverse_proxy {args[:]}\n}\na.com {\n\timport s a:1 b:2 c:3\n}\n",
       "[a.com] | reverse_proxy a:1 b:2 c:3\n"},
      {"a range of arguments", "(s) {\n\treverse_proxy {args[1:]}\n\trespond {args[:1]}\n}\na.com {\n\timport s a b c\n}\n",
       "[a.com] | reverse_proxy b c | respond a\n"},
      {"two placeholders separated by a colon are not a range",
       "(s) {\n\treverse_proxy {args[0]}:{args[1]}\n}\na.com {\n\timport s app 8080\n}\n",
       "[a.com] | reverse_proxy app:8080\n"},
      {"an out-of-range argument stays as written", "(s) {\n\trespond {args[3]}\n}\na.com {\n\timport s a\n}\n",
       "[a.com] | respond {args[3]}\n"},
      {"other placeholders are left for runtime", "(s) {\n\trespond {host} {args[0]}\n}\na.com {\n\timport s 200\n}\n",
       "[a.com] | respond {host} 200\n"},
      {"a quoted brace argument stays an argument", "(s) {\n\trespond {args[:]}\n}\na.com {\n\timport s \"{\"\n}\n",
       "[a.com] | respond \"{\"\n"},
      {"a snippet importing another snippet",
       "(inner) {\n\tlog\n}\n(outer) {\n\timport inner\n\tencode {args[0]}\n}\na.com {\n\timport outer zstd\n}\n",
       "[a.com] | log | encode zstd\n"},
      {"a snippet of addresses and blocks at the top level", "(site) {\n\t{args[0]} {\n\t\trespond {args[1]}\n\t}\n}\nimport site a.com A\nimport site b.com B\n",
       "[a.com] | respond A\n[b.com] | respond B\n"},
      {"a snippet inside a directive block", "(lb) {\n\tlb_policy first\n}\na.com {\n\treverse_proxy a b {\n\t\timport lb\n\t}\n}\n",
       "[a.com] | reverse_proxy a b { lb_policy first }\n"},
      {"a block passed to a snippet", "(s) {\n\t{block}\n\trespond OK\n}\na.com {\n\timport s {\n\t\theader +foo bar\n\t}\n}\n",
       "[a.com] | header +foo bar | respond OK\n"},
      {"named blocks passed to a snippet",
       "(s) {\n\treverse_proxy app {\n\t\t{blocks.proxy}\n\t}\n\theader {blocks.hdr}\n}\n"
       "a.com {\n\timport s {\n\t\tproxy {\n\t\t\tlb_policy first\n\t\t}\n\t\thdr X-A 1\n\t}\n}\n",
       "[a.com] | reverse_proxy app { lb_policy first } | header X-A 1\n"},
      {"an empty or missing block leaves the placeholder", "(s) {\n\trespond {block} 200\n}\na.com {\n\timport s\n}\n",
       "[a.com] | respond {block} 200\n"},
  };
  for (const Row& row : rows) {
    INFO(row.name);
    CHECK(parse_summary(row.input) == row.expected);
  }
}

TEST_CASE("import problems that do not stop parsing are warnings", "[caddyfile][import]") {
  const ParseResult result = parse("(s) {\n\trespond {args[2]} {args.0} {args[5:]}\n}\na.com {\n\timport s x\n}\n", "Caddyfile");
  CHECK(summary(result.blocks) == "[a.com] | respond {args[2]} x {args[5:]}\n");
  const std::vector<std::string> expected = {
      "Caddyfile:5: Placeholder {args[2]} index is out of bounds, only 1 argument(s) exist",
      "Caddyfile:5: Placeholder {args.0} is deprecated, use {args[0]} instead",
      "Caddyfile:5: Variadic placeholder {args[5:]} indices are out of bounds, only 1 argument(s) exist",
  };
  CHECK(warnings_of(result) == expected);
}

TEST_CASE("imported snippet tokens carry the import chain into errors", "[caddyfile][import]") {
  const ParseResult result = parse("(s) {\n\tlog\n}\na.com {\n\timport s\n}\n", "Caddyfile");
  const Token& log = result.blocks.at(0).segments.at(0).at(0);
  CHECK(log.line == 2);
  REQUIRE(log.import_chain);
  CHECK(*log.import_chain == std::vector<std::string>{"Caddyfile:5 (import s)"});
  CHECK(error_of("(s) {\n\treverse_proxy a\n\t{\n\t}\n}\na.com {\n\timport s\n}\n") ==
        "Caddyfile:3: Unexpected '{' on a new line; did you mean to place the '{' on the previous line? "
        "(import chain: Caddyfile:7 (import s))");
}

TEST_CASE("snippet import errors", "[caddyfile][import]") {
  CHECK(error_of("a.com {\n\timport\n}\n") == "Caddyfile:2: wrong argument count or unexpected line ending after 'import'");
  CHECK(error_of("a.com {\n\timport \"\"\n}\n") == "Caddyfile:2: Import requires a non-empty filepath");
  CHECK(error_of("(s) {\n\timport s\n}\na.com {\n\timport s\n}\n").starts_with(
      "Caddyfile:2: a cycle of imports exists between "));
  CHECK(error_of("(a) {\n\timport b\n}\n(b) {\n\timport a\n}\nx.com {\n\timport a\n}\n").find(
            "a cycle of imports exists between") != std::string::npos);
  CHECK(error_of("(s) {\n\t{block}\n}\na.com {\n\timport s {\n\t\t{\n\t\t}\n\t}\n}\n") ==
        "Caddyfile:6: anonymous blocks are not supported");
  // A snippet used before its definition is looked up as a file.
  CHECK(error_of("a.com {\n\timport later\n}\n(later) {\n}\n") == "Caddyfile:2: File to import not found: later");
}

TEST_CASE("an exponential chain of imports is refused instead of exhausting memory", "[caddyfile][import]") {
  std::string text = "(s0) {\n\tlog\n}\n";
  for (int i = 1; i <= 24; ++i) {
    text += "(s" + std::to_string(i) + ") {\n\timport s" + std::to_string(i - 1) + "\n\timport s" +
            std::to_string(i - 1) + "\n}\n";
  }
  text += "a.com {\n\timport s24\n}\n";
  CHECK(error_of(text).find("imports expand to more than") != std::string::npos);
}

TEST_CASE("files are imported relative to the importing file", "[caddyfile][import]") {
  acmetool::test::TempDir dir;
  const fs::path root = dir.path();
  write(root / "Caddyfile", "{\n\temail a@example.com\n}\nimport sites/*.caddy\n");
  write(root / "sites/a.caddy", "a.com {\n\timport ../snippets/common\n}\n");
  write(root / "sites/b.caddy", "b.com {\n\trespond {$GREETING:hello}\n}\n");
  write(root / "sites/.hidden.caddy", "hidden.com {\n}\n");
  write(root / "snippets/common", "encode gzip\nlog\n");

  ParseOptions options;
  options.env = fake_env({});
  const ParseResult result = parse_file(root / "Caddyfile", options);
  CHECK(summary(result.blocks) == "[] | email a@example.com\n[a.com] | encode gzip | log\n[b.com] | respond hello\n");
  CHECK(result.warnings.empty());
  // Imported tokens name the imported file by its absolute path.
  const Token& encode = result.blocks.at(1).segments.at(0).at(0);
  CHECK(encode.file_name() == (root / "snippets/common").string());
  CHECK(encode.line == 1);
  REQUIRE(encode.import_chain);
  CHECK(encode.import_chain->back() == (root / "sites/a.caddy").string() + ":2 (import)");
}

TEST_CASE("file import edge cases", "[caddyfile][import]") {
  acmetool::test::TempDir dir;
  const fs::path root = dir.path();
  ParseOptions options;
  options.base_directory = root;
  write(root / "empty", " \n\t\n");
  write(root / "self", "import self\n");
  write(root / "ping", "import pong\n");
  write(root / "pong", "import ping\n");
  write(root / "bad", "a.com {\n\trespond <<EOF\n");
  fs::create_directories(root / "adir");

  SECTION("a glob without matches only warns") {
    const ParseResult result = parse("import nothing/*.caddy\na.com {\n}\n", "-", options);
    CHECK(summary(result.blocks) == "[a.com]\n");
    CHECK(warnings_of(result) == std::vector<std::string>{"-:1: No files matching import glob pattern: nothing/*.caddy"});
  }
  SECTION("an empty file only warns") {
    const ParseResult result = parse("a.com {\n\timport empty\n}\n", "-", options);
    CHECK(summary(result.blocks) == "[a.com]\n");
    REQUIRE(result.warnings.size() == 1);
    CHECK(result.warnings[0].message == "Import file is empty: " + (root / "empty").string());
  }
  SECTION("a missing file is an error") {
    CHECK(error_of("a.com {\n\timport missing.caddy\n}\n", options, "-") == "-:2: File to import not found: missing.caddy");
  }
  SECTION("a directory is an error") {
    CHECK(error_of("import adir\n", options, "-") == "-:1: Could not import " + (root / "adir").string() + ": is a directory");
  }
  SECTION("a device is refused rather than read forever") {
    CHECK(error_of("import /dev/zero\n", options, "-") == "-:1: Could not import /dev/zero: not a regular file");
  }
  SECTION("globs with several wildcards are refused") {
    CHECK(error_of("import */*.caddy\n", options, "-") ==
          "-:1: Glob pattern may only contain one wildcard (*), but has others: " + (root / "*/*.caddy").string());
    CHECK(error_of("import [ab].caddy\n", options, "-").find("Glob pattern may only contain one wildcard") != std::string::npos);
  }
  SECTION("a file importing itself is a cycle") {
    CHECK(error_of("import self\n", options, "-").find("a cycle of imports exists between " + (root / "self").string()) !=
          std::string::npos);
  }
  SECTION("two files importing each other are a cycle") {
    CHECK(error_of("import ping\n", options, "-").find("a cycle of imports exists between") != std::string::npos);
  }
  SECTION("a lexer error in an imported file names that file") {
    CHECK(error_of("import bad\n", options, "-").starts_with((root / "bad").string() + ":"));
  }
  SECTION("the same file imported twice is not a cycle") {
    write(root / "hdr", "header X-A 1\n");
    CHECK(parse_summary("a.com {\n\timport hdr\n\timport hdr\n}\n", options) == "[a.com] | header X-A 1 | header X-A 1\n");
  }
}

TEST_CASE("a snippet defined in an imported file keeps its placeholders for its own import", "[caddyfile][import]") {
  acmetool::test::TempDir dir;
  write(dir.path() / "snippets", "(greet) {\n\trespond \"hi {args[0]}\"\n}\n");
  ParseOptions options;
  options.base_directory = dir.path();
  CHECK(parse_summary("import snippets outer\na.com {\n\timport greet inner\n}\n", options) ==
        "[a.com] | respond \"hi inner\"\n");
}
