// The formatter on whole Caddyfiles: tests/caddyfile/corpus/NAME.Caddyfile must format to
// NAME.formatted byte for byte, formatting that again must change nothing, and the lexer must
// read the same tokens from both.
//
// The corpus covers real-world shapes (global options, snippets and imports with arguments and
// blocks, heredocs, backtick JSON and templates, matchers, reverse_proxy and php_fastcgi blocks,
// nested handle/route, comments everywhere, messy indentation, CRLF, braces on their own lines,
// env vars, placeholders, imports before a global block, text after `{`, nested quotes). Where
// Caddy 2.6.2 formats like upstream HEAD, the expected files equal `caddy fmt` 2.6.2 output; the
// others (heredocs, backticks, `{` after import, env vars before `{` lines) follow HEAD's rules.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "acmetool/caddyfile/format.h"
#include "acmetool/caddyfile/lexer.h"

namespace fs = std::filesystem;

namespace {

const fs::path kCorpus = fs::path(CADDYFILE_TEST_DATA) / "corpus";

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::pair<std::string, int>> tokens(std::string_view text) {
  std::vector<std::pair<std::string, int>> out;
  for (const auto& token : acmetool::caddyfile::tokenize(text, "x")) {
    out.emplace_back(token.text, static_cast<int>(token.quote));
  }
  return out;
}

std::vector<fs::path> corpus_inputs() {
  std::vector<fs::path> inputs;
  for (const auto& entry : fs::directory_iterator(kCorpus)) {
    if (entry.path().extension() == ".Caddyfile") inputs.push_back(entry.path());
  }
  std::sort(inputs.begin(), inputs.end());
  return inputs;
}

}  // namespace

TEST_CASE("the formatter corpus has at least 25 Caddyfiles, each with its expected output",
          "[format][corpus]") {
  const auto inputs = corpus_inputs();
  CHECK(inputs.size() >= 25);
  for (const fs::path& input : inputs) {
    INFO(input);
    CHECK(fs::exists(fs::path(input).replace_extension(".formatted")));
  }
}

TEST_CASE("every corpus Caddyfile formats to its .formatted file byte for byte",
          "[format][corpus]") {
  for (const fs::path& input : corpus_inputs()) {
    INFO(input.filename());
    CHECK(acmetool::caddyfile::format(slurp(input)) ==
          slurp(fs::path(input).replace_extension(".formatted")));
  }
}

TEST_CASE("formatting a corpus result again changes nothing", "[format][corpus]") {
  for (const fs::path& input : corpus_inputs()) {
    INFO(input.filename());
    const std::string expected = slurp(fs::path(input).replace_extension(".formatted"));
    CHECK(acmetool::caddyfile::format(expected) == expected);
  }
}

TEST_CASE("formatting a corpus Caddyfile keeps its tokens", "[format][corpus]") {
  for (const fs::path& input : corpus_inputs()) {
    INFO(input.filename());
    const std::string text = slurp(input);
    CHECK(tokens(acmetool::caddyfile::format(text)) == tokens(text));
  }
}
