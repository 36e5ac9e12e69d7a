// The request matchers of routing (caddyhttp matchers.go): path, host, method, header, query,
// protocol, remote_ip, client_ip and not; and Caddy's path cleaning, which the `uri` handler
// shares.
#include <arpa/inet.h>
#include <fnmatch.h>

#include <algorithm>
#include <array>
#include <optional>

#include "routes_internal.h"

namespace acmetool::serve::routes_detail {
namespace {

using caddyfile::MatcherSet;

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), lower_char);
  return out;
}

// Go's path.Clean: lexical, never above "/", "" becomes ".".
std::string go_path_clean(std::string_view p) {
  if (p.empty()) return ".";
  const bool rooted = p.front() == '/';
  std::vector<std::string_view> parts;
  for (std::size_t start = 0; start <= p.size();) {
    const std::size_t end = std::min(p.find('/', start), p.size());
    const std::string_view part = p.substr(start, end - start);
    if (part == "..") {
      if (!parts.empty() && parts.back() != "..") {
        parts.pop_back();
      } else if (!rooted) {
        parts.push_back(part);
      }
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    start = end + 1;
  }
  std::string out = rooted ? "/" : "";
  for (std::size_t i = 0; i < parts.size(); ++i) out += (i ? "/" : "") + std::string(parts[i]);
  return out.empty() ? "." : out;
}

}  // namespace

std::string caddy_clean_path(std::string_view p, bool merge_slashes) {
  std::string input(p);
  constexpr std::string_view kMark = "\xff";  // cannot occur in a decoded UTF-8 path segment
  if (!merge_slashes) {
    for (std::size_t at = input.find("//"); at != std::string::npos;
         at = input.find("//", at + 1)) {
      input.insert(at + 1, kMark);
    }
  }
  std::string cleaned = go_path_clean(input);
  if (cleaned != "/" && p.ends_with('/')) cleaned += '/';
  if (!merge_slashes) std::erase(cleaned, kMark.front());
  return cleaned;
}

namespace {

// Go's path.Match (fnmatch without FNM_PERIOD behaves alike: '*' and '?' stop at '/').
bool glob_match(const std::string& pattern, const std::string& text) {
  return fnmatch(pattern.c_str(), text.c_str(), FNM_PATHNAME) == 0;
}

// MatchPath.matchPatterns: patterns and path lower-cased, the path cleaned as the pattern asks.
bool match_path(const std::vector<std::string>& patterns, const Evaluation& ev) {
  const std::string path = lower(ev.path());
  for (const std::string& written : patterns) {
    const std::string pattern = lower(expand(written, ev, UnknownPlaceholder::Empty));
    if (pattern == "*") return true;
    const bool merge = pattern.find("//") == std::string::npos;
    const auto stars = std::count(pattern.begin(), pattern.end(), '*');
    if (pattern.find('%') != std::string::npos) {
      // Compared in escaped space (simplified: the whole path, not only where the pattern escapes).
      std::string glob = pattern;
      for (std::size_t at = glob.find("%*"); at != std::string::npos; at = glob.find("%*"))
        glob.erase(at, 1);
      if (glob_match(glob, lower(caddy_clean_path(ev.raw_path, merge)))) return true;
      continue;
    }
    const std::string clean = caddy_clean_path(path, merge);
    if (stars == 2 && pattern.size() >= 2 && pattern.front() == '*' && pattern.back() == '*') {
      if (clean.find(pattern.substr(1, pattern.size() - 2)) != std::string::npos) return true;
      continue;
    }
    if (stars == 1 && pattern.front() == '*') {
      if (clean.ends_with(std::string_view(pattern).substr(1))) return true;
      continue;
    }
    if (stars == 1 && pattern.back() == '*') {
      if (clean.starts_with(std::string_view(pattern).substr(0, pattern.size() - 1))) return true;
      continue;
    }
    if (glob_match(pattern, clean)) return true;
  }
  return false;
}

bool match_host(const std::vector<std::string>& patterns, const Evaluation& ev) {
  const std::string& host = ev.request.host;
  for (const std::string& written : patterns) {
    const std::string pattern = expand(written, ev, UnknownPlaceholder::Empty);
    if (pattern.find('*') == std::string::npos) {
      if (iequals(pattern, host)) return true;
      continue;
    }
    // Each '*' label stands for exactly one label.
    if (std::count(pattern.begin(), pattern.end(), '.') !=
        std::count(host.begin(), host.end(), '.'))
      continue;
    bool all = true;
    for (std::size_t p = 0, h = 0; all && p <= pattern.size() && h <= host.size();) {
      const std::size_t pe = std::min(pattern.find('.', p), pattern.size());
      const std::size_t he = std::min(host.find('.', h), host.size());
      const std::string_view label = std::string_view(pattern).substr(p, pe - p);
      all = label == "*" || iequals(label, std::string_view(host).substr(h, he - h));
      p = pe + 1;
      h = he + 1;
    }
    if (all) return true;
  }
  return false;
}

}  // namespace

bool match_header_value(std::string_view actual, std::string_view allowed) {
  if (allowed == "*") return true;
  if (allowed.size() >= 2 && allowed.starts_with('*') && allowed.ends_with('*')) {
    return actual.find(allowed.substr(1, allowed.size() - 2)) != std::string_view::npos;
  }
  if (allowed.starts_with('*')) return actual.ends_with(allowed.substr(1));
  if (allowed.ends_with('*')) return actual.starts_with(allowed.substr(0, allowed.size() - 1));
  return actual == allowed;
}

namespace {

// matchHeaders: every field must match; any value of a field against any accepted value.
bool match_headers(const MatcherSet& set, const Evaluation& ev) {
  for (const auto& entry : set.header) {  // not a structured binding: clang 14 cannot capture one
    const std::string& field = entry.first;
    const std::vector<std::string>& accepted = entry.second;
    std::vector<std::string_view> actual = header_values(ev.request, field);
    if (iequals(field, "Host") && actual.empty() && !ev.request.host.empty())
      actual.push_back(ev.request.host);
    if (accepted.empty()) {
      if (!actual.empty()) return false;
      continue;
    }
    const bool any = std::any_of(actual.begin(), actual.end(), [&](std::string_view value) {
      return std::any_of(accepted.begin(), accepted.end(), [&](const std::string& allowed) {
        return match_header_value(value, expand(allowed, ev, UnknownPlaceholder::Empty));
      });
    });
    if (!any) return false;
  }
  return true;
}

// As Caddy documents the query matcher: values of one key OR'ed, different keys AND'ed.
bool match_query(const MatcherSet& set, const Evaluation& ev) {
  std::vector<std::pair<std::string, std::string>> pairs;
  if (!parse_query(ev.query, pairs)) return false;
  for (const auto& entry : set.query) {  // not a structured binding: clang 14 cannot capture one
    const std::string& key = entry.first;
    const std::vector<std::string>& accepted = entry.second;
    const std::string name = expand(key, ev, UnknownPlaceholder::Empty);
    const bool any = std::any_of(pairs.begin(), pairs.end(), [&](const auto& pair) {
      return pair.first == name &&
             std::any_of(accepted.begin(), accepted.end(), [&](const std::string& v) {
               return v == "*" || pair.second == expand(v, ev, UnknownPlaceholder::Empty);
             });
    });
    if (!any) return false;
  }
  return true;
}

bool match_protocol(const std::vector<std::string>& protocols, const RouteRequest& r) {
  return std::any_of(protocols.begin(), protocols.end(), [&](const std::string& p) {
    if (p == "grpc") {
      const auto types = header_values(r, "Content-Type");
      return !types.empty() && types.front().starts_with("application/grpc");
    }
    if (p == "http" || p == "https") return p == r.scheme;
    if (p == "http/1.0") return r.version == 10;
    if (p == "http/1.0+") return r.version >= 10;
    if (p == "http/1.1") return r.version == 11;
    if (p == "http/1.1+") return r.version >= 11;
    if (p == "http/2") return r.version == 20;
    if (p == "http/2+") return r.version >= 20;
    return false;  // http/3 and http/3+: not served
  });
}

// An address as 16 bytes (IPv4 in the first 4) and its family bit count.
std::optional<std::pair<std::array<unsigned char, 16>, int>> parse_ip(std::string address) {
  if (const std::size_t zone = address.find('%'); zone != std::string::npos) address.resize(zone);
  std::array<unsigned char, 16> bytes{};
  if (inet_pton(AF_INET, address.c_str(), bytes.data()) == 1) return std::pair{bytes, 32};
  if (inet_pton(AF_INET6, address.c_str(), bytes.data()) != 1) return std::nullopt;
  static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::equal(std::begin(kMapped), std::end(kMapped), bytes.begin())) {  // netip's Unmap
    std::array<unsigned char, 16> v4{};
    std::copy(bytes.begin() + 12, bytes.end(), v4.begin());
    return std::pair{v4, 32};
  }
  return std::pair{bytes, 128};
}

bool match_ip(const std::vector<std::string>& ranges, const std::string& remote) {
  const auto ip = parse_ip(remote);
  if (!ip) return false;
  return std::any_of(ranges.begin(), ranges.end(), [&](const std::string& range) {
    const std::size_t slash = range.find('/');
    const auto net = parse_ip(range.substr(0, slash));
    if (!net || net->second != ip->second) return false;
    int bits = net->second;
    if (slash != std::string::npos) {
      const auto n = index_of(std::string_view(range).substr(slash + 1));
      if (!n || static_cast<int>(*n) > bits) return false;
      bits = static_cast<int>(*n);
    }
    for (int i = 0; i < bits; ++i) {
      const int mask = 0x80 >> (i % 8);
      if ((net->first[i / 8] & mask) != (ip->first[i / 8] & mask)) return false;
    }
    return true;
  });
}

}  // namespace

bool matches(const MatcherSet& set, const Evaluation& ev) {
  const RouteRequest& r = ev.request;
  if (!set.path.empty() && !match_path(set.path, ev)) return false;
  if (!set.host.empty() && !match_host(set.host, ev)) return false;
  if (!set.method.empty() &&
      std::find(set.method.begin(), set.method.end(), r.method) == set.method.end())
    return false;
  if (!match_headers(set, ev)) return false;
  if (!set.query.empty() && !match_query(set, ev)) return false;
  if (!set.protocol.empty() && !match_protocol(set.protocol, r)) return false;
  if (!set.remote_ip.empty() && !match_ip(set.remote_ip, r.remote_ip)) return false;
  // Without trusted proxies Caddy's client IP is the TCP peer.
  if (!set.client_ip.empty() && !match_ip(set.client_ip, r.remote_ip)) return false;
  return std::none_of(set.not_.begin(), set.not_.end(),
                      [&](const MatcherSet& inner) { return matches(inner, ev); });
}

}  // namespace acmetool::serve::routes_detail
