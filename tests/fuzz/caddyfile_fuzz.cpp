// libFuzzer target over the Caddyfile lexer, parser and formatter. It checks three promises:
// nothing crashes or leaks on any input; formatting never changes the token stream; formatting
// is idempotent. Inputs that do not lex are still formatted (the formatter never fails).
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "acmetool/caddyfile/error.h"
#include "acmetool/caddyfile/format.h"
#include "acmetool/caddyfile/lexer.h"
#include "acmetool/caddyfile/parse.h"

namespace cf = acmetool::caddyfile;

namespace {

bool same_tokens(const std::vector<cf::Token>& a, const std::vector<cf::Token>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].text != b[i].text || a[i].quote != b[i].quote) return false;
  }
  return true;
}

// Relative imports resolve in an empty directory, so fuzz inputs import nothing but snippets
// (and whatever absolute paths they name, which are only read).
const std::filesystem::path& empty_directory() {
  static const std::filesystem::path dir = [] {
    std::string pattern = (std::filesystem::temp_directory_path() / "caddyfile-fuzz.XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    return std::filesystem::path(pattern);
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  const std::string formatted = cf::format(input);
  if (cf::format(formatted) != formatted) std::abort();  // not idempotent

  try {
    const std::vector<cf::Token> before = cf::tokenize(input, "fuzz");
    const std::vector<cf::Token> after = cf::tokenize(formatted, "fuzz");
    if (!same_tokens(before, after)) std::abort();  // formatting changed what the file means
  } catch (const cf::ParseError&) {
    // Not a valid token stream to begin with.
  }

  cf::ParseOptions options;
  options.env = [](std::string_view) -> std::optional<std::string> { return std::nullopt; };
  options.base_directory = empty_directory();
  try {
    cf::parse(input, "fuzz", options);
  } catch (const cf::Error&) {
    // Rejecting bad input with an error is fine; anything else escaping is a bug.
  }
  return 0;
}
