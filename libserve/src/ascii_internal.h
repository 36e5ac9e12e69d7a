// ASCII helpers for HTTP field names and values (private to libserve): lower case by table,
// case-insensitive equality, and blanks trimmed, without <cctype> or the locale.
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

namespace acmetool::serve {

/// ASCII lower case by table: one load a character, nothing to branch on.
inline constexpr std::array<char, 256> kAsciiLower = [] {
  std::array<char, 256> table{};
  for (int c = 0; c < 256; ++c) table[c] = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return table;
}();

inline char ascii_lower(char c) { return kAsciiLower[static_cast<unsigned char>(c)]; }

/// `a` and `b`, of the same size, are equal but for ASCII case.
inline bool equal_ignoring_case(std::string_view a, std::string_view b) {
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

/// `text` without its leading and trailing blanks (SP and HTAB, RFC 9110's OWS).
inline std::string_view trim_blanks(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

}  // namespace acmetool::serve
