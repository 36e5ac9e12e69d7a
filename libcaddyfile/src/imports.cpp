#include <glob.h>

#include <algorithm>
#include <charconv>

#include "parse_internal.h"

namespace acmetool::caddyfile::detail {

namespace {

std::optional<std::size_t> parse_index(std::string_view text) {
  std::size_t value = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || text.empty()) return std::nullopt;
  return value;
}

// The value of one placeholder key ("args[0]", "args.1"), or nullopt to leave it as written.
std::optional<std::string> arg_value(std::string_view key, const std::vector<std::string>& args,
                                     std::vector<std::string>& problems) {
  std::string_view index;
  bool deprecated = false;
  if (key.starts_with("args[") && key.ends_with("]")) {
    index = key.substr(5, key.size() - 6);
    // A range is only meaningful as a whole token (parse_variadic); inside text it stays.
    if (index.find(':') != std::string_view::npos) {
      problems.push_back("Variadic placeholder {" + std::string(key) + "} must be a token on its own");
      return std::nullopt;
    }
  } else if (key.starts_with("args.")) {
    index = key.substr(5);
    deprecated = true;
  } else {
    return std::nullopt;  // not an import argument: some other placeholder, kept for runtime
  }
  const auto value = parse_index(index);
  if (!value) {
    problems.push_back("Placeholder {" + std::string(key) + "} has an invalid index");
    return std::nullopt;
  }
  if (*value >= args.size()) {
    problems.push_back("Placeholder {" + std::string(key) + "} index is out of bounds, only " +
                       std::to_string(args.size()) + " argument(s) exist");
    return std::nullopt;
  }
  if (deprecated) {
    problems.push_back("Placeholder {" + std::string(key) + "} is deprecated, use {args[" +
                       std::string(index) + "]} instead");
  }
  return args[*value];
}

}  // namespace

std::string replace_args(std::string_view text, const std::vector<std::string>& args,
                         std::vector<std::string>& problems) {
  if (text.find("{args") == std::string_view::npos) return std::string(text);
  std::string out;
  out.reserve(text.size());
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t open = text.find('{', pos);
    if (open == std::string_view::npos) break;
    const std::size_t close = text.find('}', open + 1);
    if (close == std::string_view::npos) break;
    out.append(text.substr(pos, open - pos));
    const bool escaped = open > 0 && text[open - 1] == '\\';
    const std::string_view key = text.substr(open + 1, close - open - 1);
    const auto value = escaped ? std::nullopt : arg_value(key, args, problems);
    if (value) {
      out += *value;
    } else {
      out.append(text.substr(open, close - open + 1));
    }
    pos = close + 1;
  }
  out.append(text.substr(std::min(pos, text.size())));
  return out;
}

std::optional<ArgRange> parse_variadic(std::string_view text, std::size_t arg_count,
                                       std::vector<std::string>& problems) {
  if (!text.starts_with("{args[") || !text.ends_with("]}")) return std::nullopt;
  const std::string_view range = text.substr(6, text.size() - 8);
  const std::size_t colon = range.find(':');
  // Without ':' it is a plain index, which replace_args handles.
  if (range.empty() || colon == std::string_view::npos) return std::nullopt;
  const std::string_view first = range.substr(0, colon);
  const std::string_view last = range.substr(colon + 1);
  // "{args[0]}:{args[1]}" holds two placeholders separated by ':', not a range (caddy#5716).
  if (first.find('}') != std::string_view::npos || last.find('{') != std::string_view::npos) {
    return std::nullopt;
  }
  std::size_t begin = 0;
  std::size_t end = arg_count;
  if (!first.empty()) {
    const auto value = parse_index(first);
    if (!value) {
      problems.push_back("Variadic placeholder " + std::string(text) + " has an invalid start index");
      return std::nullopt;
    }
    begin = *value;
  }
  if (!last.empty()) {
    const auto value = parse_index(last);
    if (!value) {
      problems.push_back("Variadic placeholder " + std::string(text) + " has an invalid end index");
      return std::nullopt;
    }
    end = *value;
  }
  if (begin > end || end > arg_count) {
    problems.push_back("Variadic placeholder " + std::string(text) + " indices are out of bounds, only " +
                       std::to_string(arg_count) + " argument(s) exist");
    return std::nullopt;
  }
  return ArgRange{begin, end};
}

bool ImportGraph::reaches(const std::string& from, const std::string& to) const {
  // Depth-first search; the graph has one node per file or snippet, so it stays small.
  std::vector<const std::string*> stack{&from};
  std::set<std::string> seen{from};
  while (!stack.empty()) {
    const std::string& node = *stack.back();
    stack.pop_back();
    if (node == to) return true;
    const auto found = edges_.find(node);
    if (found == edges_.end()) continue;
    for (const std::string& next : found->second) {
      if (seen.insert(next).second) stack.push_back(&next);
    }
  }
  return false;
}

std::optional<std::string> ImportGraph::add_edges(const std::string& from, const std::vector<std::string>& to) {
  for (const std::string& target : to) {
    if (reaches(target, from)) return "a cycle of imports exists between " + from + " and " + target;
  }
  for (const std::string& target : to) edges_[from].insert(target);
  return std::nullopt;
}

GlobResult expand_import_pattern(const std::string& pattern, const std::filesystem::path& base_directory) {
  namespace fs = std::filesystem;
  GlobResult result;
  const fs::path full =
      (fs::path(pattern).is_absolute() ? fs::path(pattern) : base_directory / pattern).lexically_normal();
  const std::string glob_pattern = full.string();
  const auto count = [&](char c) { return std::count(glob_pattern.begin(), glob_pattern.end(), c); };
  // A pattern with many wildcards can take very long to expand (caddy#2096).
  if (count('*') > 1 || count('?') > 1 ||
      (glob_pattern.find('[') != std::string::npos && glob_pattern.find(']') != std::string::npos)) {
    result.error = "Glob pattern may only contain one wildcard (*), but has others: " + glob_pattern;
    return result;
  }
  const bool is_glob = glob_pattern.find_first_of("*?[]") != std::string::npos;
  if (!is_glob) {
    std::error_code ec;
    if (!fs::exists(full, ec)) {
      result.error = "File to import not found: " + pattern;
    } else {
      result.files.push_back(full);
    }
    return result;
  }
  glob_t matches{};
  const int rc = ::glob(glob_pattern.c_str(), 0, nullptr, &matches);
  if (rc == 0) {
    // glob(3) sorts and already skips dotfiles for a segment starting with a wildcard, as
    // Caddy does for a last segment starting with '*' (caddy#5295).
    for (std::size_t i = 0; i < matches.gl_pathc; ++i) result.files.emplace_back(matches.gl_pathv[i]);
  }
  globfree(&matches);
  if (result.files.empty()) result.warning = "No files matching import glob pattern: " + pattern;
  return result;
}

}  // namespace acmetool::caddyfile::detail
