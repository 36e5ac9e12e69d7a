// Whitespace as the Caddyfile sees it, shared by the lexer and the formatter so that both split
// tokens at exactly the same places.
#pragma once

#include <cstddef>
#include <string_view>

namespace acmetool::caddyfile::detail {

/// Byte length of the whitespace character starting at `pos` as Go's unicode.IsSpace sees it
/// (upstream splits tokens on all of them, NBSP and U+3000 included), or 0 for anything else.
inline std::size_t space_length(std::string_view in, std::size_t pos) {
  const auto c = static_cast<unsigned char>(in[pos]);
  if (c < 0x80) return (c == ' ' || (c >= '\t' && c <= '\r')) ? 1 : 0;
  const auto byte = [&](std::size_t i) {
    return pos + i < in.size() ? static_cast<unsigned char>(in[pos + i]) : 0u;
  };
  if (c == 0xC2) return (byte(1) == 0x85 || byte(1) == 0xA0) ? 2 : 0;  // NEL, NBSP
  if (c == 0xE1) return (byte(1) == 0x9A && byte(2) == 0x80) ? 3 : 0;  // U+1680
  if (c == 0xE3) return (byte(1) == 0x80 && byte(2) == 0x80) ? 3 : 0;  // U+3000
  if (c != 0xE2) return 0;
  const unsigned b1 = byte(1);
  const unsigned b2 = byte(2);
  if (b1 == 0x80) {
    // U+2000..U+200A, U+2028, U+2029, U+202F.
    return (b2 >= 0x80 && b2 <= 0x8A) || b2 == 0xA8 || b2 == 0xA9 || b2 == 0xAF ? 3 : 0;
  }
  return (b1 == 0x81 && b2 == 0x9F) ? 3 : 0;  // U+205F
}

}  // namespace acmetool::caddyfile::detail
