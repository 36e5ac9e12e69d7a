#include "acmetool/caddyfile/env_file.h"

#include <cerrno>
#include <cstring>
#include <vector>

#include "acmetool/caddyfile/error.h"
#include "parse_internal.h"

namespace acmetool::caddyfile {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    lines.push_back(text.substr(0, nl));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return lines;
}

// A value starting with a quote runs to the matching unescaped quote, possibly on a later
// line; \" (or \') inside becomes the quote itself.
std::string quoted_value(std::string_view first, const std::vector<std::string_view>& lines, std::size_t& index) {
  const char quote = first.front();
  std::string value;
  std::string_view rest = first.substr(1);
  for (;;) {
    for (std::size_t i = 0; i < rest.size(); ++i) {
      if (rest[i] == '\\' && i + 1 < rest.size() && rest[i + 1] == quote) {
        value += quote;
        ++i;
      } else if (rest[i] == quote) {
        return value;
      } else {
        value += rest[i];
      }
    }
    if (index + 1 >= lines.size()) return value;  // unterminated: up to the end, as Caddy does
    rest = trim(lines[++index]);
    value += '\n';
  }
}

}  // namespace

std::map<std::string, std::string> parse_env_file(std::string_view text, const std::string& file) {
  std::map<std::string, std::string> values;
  const std::vector<std::string_view> lines = split_lines(text);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const int line_number = static_cast<int>(i) + 1;
    const std::string_view line = trim(lines[i]);
    if (line.empty() || line.starts_with('#')) continue;
    const std::size_t eq = line.find('=');
    if (eq == std::string_view::npos) throw ParseError(file, line_number, 0, "line should be in KEY=VALUE format");
    std::string_view key = line.substr(0, eq);
    if (key.starts_with("export ")) key.remove_prefix(7);
    if (key.empty()) throw ParseError(file, line_number, 0, "missing or empty key");
    if (key.find_first_of(" \t") != std::string_view::npos) {
      throw ParseError(file, line_number, 0, "invalid key: contains whitespace: " + std::string(key));
    }
    std::string_view raw = line.substr(eq + 1);
    if (raw.starts_with(' ') || raw.starts_with('\t')) {
      throw ParseError(file, line_number, 0, "invalid value: whitespace before value: '" + std::string(raw) + "'");
    }
    std::string value;
    if (raw.starts_with('"') || raw.starts_with('\'')) {
      value = quoted_value(raw, lines, i);
    } else {
      if (const std::size_t hash = raw.find('#'); hash != std::string_view::npos) raw = trim(raw.substr(0, hash));
      value = std::string(raw);
    }
    values[std::string(key)] = std::move(value);
  }
  return values;
}

std::map<std::string, std::string> read_env_file(const std::filesystem::path& path) {
  const std::optional<std::string> text = detail::read_whole_file(path);
  if (!text) throw Error("reading environment file " + path.string() + ": " + std::strerror(errno));
  return parse_env_file(*text, path.string());
}

EnvLookup env_lookup_with(std::map<std::string, std::string> values, EnvLookup fallback) {
  return [values = std::move(values), fallback = std::move(fallback)](std::string_view name) -> std::optional<std::string> {
    if (const auto it = values.find(std::string(name)); it != values.end()) return it->second;
    return fallback ? fallback(name) : std::nullopt;
  };
}

}  // namespace acmetool::caddyfile
