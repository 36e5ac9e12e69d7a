// Helpers for the parser tests: a parse tree as one comparable string.
#pragma once

#include <string>
#include <vector>

#include "acmetool/caddyfile/parse.h"

namespace acmetool::caddyfile::test {

/// One line per block: "[keys] seg | seg | ...", each segment its tokens joined by spaces,
/// quoted tokens in double quotes. Named routes start with "&", brace-less sites with "~".
inline std::string summary(const std::vector<ServerBlock>& blocks) {
  std::string out;
  for (const ServerBlock& block : blocks) {
    if (block.is_named_route) out += "&";
    if (!block.has_braces) out += "~";
    out += "[";
    for (std::size_t i = 0; i < block.keys.size(); ++i) out += (i ? " " : "") + block.keys[i].text;
    out += "]";
    for (const Segment& segment : block.segments) {
      out += " |";
      for (const Token& token : segment) out += " " + (token.quoted() ? "\"" + token.text + "\"" : token.text);
    }
    out += "\n";
  }
  return out;
}

/// Environment for tests: only the given variables exist.
inline EnvLookup fake_env(std::vector<std::pair<std::string, std::string>> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    for (const auto& [key, value] : vars) {
      if (key == name) return value;
    }
    return std::nullopt;
  };
}

inline std::string parse_summary(const std::string& text, ParseOptions options = {}) {
  return summary(parse(text, "Caddyfile", options).blocks);
}

}  // namespace acmetool::caddyfile::test
