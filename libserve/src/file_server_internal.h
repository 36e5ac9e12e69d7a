// Text helpers that file_server.cpp and http_conditional.cpp share.
#pragma once

#include <string>
#include <string_view>

namespace acmetool::serve::file_server_detail {

inline std::string lower(std::string s) {
  for (auto& c : s) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  return s;
}

inline bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && lower(std::string(a)) == lower(std::string(b));
}

// Without optional whitespace (RFC 9110 §5.6.3) at either end.
inline std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace acmetool::serve::file_server_detail
