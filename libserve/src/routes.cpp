// Routing (issue 8): a site's routes run for one request, following Caddy's caddyhttp package
// (routes.go wrapRoute, matchers.go, replacer.go, rewrite/rewrite.go, staticresp.go).
#include "acmetool/serve/routes.h"

#include <arpa/inet.h>
#include <fnmatch.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <set>

#include "acmetool/serve/error.h"

namespace acmetool::serve {
namespace {

using caddyfile::HeaderOp;
using caddyfile::MatcherSet;
using caddyfile::Route;

char lower_char(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), lower_char);
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return lower_char(x) == lower_char(y);
         });
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Go's url.PathUnescape (or QueryUnescape when `plus_is_space`): nullopt on a bad escape.
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space = false) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      const int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += plus_is_space && s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

// Percent-encodes every byte outside `keep` and the unreserved set (RFC 3986 §2.3).
std::string percent_encode(std::string_view s, std::string_view keep, bool space_as_plus) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : s) {
    const bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved || keep.find(c) != std::string_view::npos) {
      out += c;
    } else if (space_as_plus && c == ' ') {
      out += '+';
    } else {
      out += '%';
      out += kHex[static_cast<unsigned char>(c) >> 4];
      out += kHex[static_cast<unsigned char>(c) & 15];
    }
  }
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

// Caddy's CleanPath: path.Clean keeping a trailing slash; without `merge_slashes` empty segments
// ("//") survive, for patterns that contain them.
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

// Go's url.ParseQuery: key/value pairs in order; false when a pair does not decode or has ';'.
bool parse_query(std::string_view raw, std::vector<std::pair<std::string, std::string>>& out) {
  bool ok = true;
  for (std::size_t start = 0; start <= raw.size();) {
    const std::size_t end = std::min(raw.find('&', start), raw.size());
    const std::string_view pair = raw.substr(start, end - start);
    start = end + 1;
    if (pair.empty()) continue;
    if (pair.find(';') != std::string_view::npos) {
      ok = false;
      continue;
    }
    const std::size_t eq = pair.find('=');
    auto key = percent_decode(pair.substr(0, eq), true);
    auto value = percent_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1), true);
    if (!key || !value) {
      ok = false;
      continue;
    }
    out.emplace_back(std::move(*key), std::move(*value));
  }
  return ok;
}

// The request as the routes have changed it so far, and what they decided.
struct Evaluation {
  const RouteRequest& request;
  std::string orig_path, orig_query;  // split from request.target, still encoded
  std::string raw_path, query;        // the current URI, encoded
  std::optional<std::string> root;    // the `root` directive's value
  std::set<int> satisfied_groups;     // request-wide, as Caddy's routeGroupCtxKey map
  RouteResult result;

  explicit Evaluation(const RouteRequest& r) : request(r) {
    std::string_view target = r.target;
    // Absolute-form (RFC 9112 §3.2.2): the path starts after the authority.
    if (const std::size_t scheme_end = target.find("://");
        !target.starts_with('/') && scheme_end != std::string_view::npos) {
      const std::size_t slash = target.find_first_of("/?", scheme_end + 3);
      target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
    }
    const std::size_t q = target.find('?');
    orig_path = std::string(target.substr(0, q));
    orig_query = q == std::string_view::npos ? "" : std::string(target.substr(q + 1));
    raw_path = orig_path;
    query = orig_query;
  }

  // r.URL.Path: decoded, or as is when it does not decode (the server rejects such requests).
  std::string path() const { return percent_decode(raw_path).value_or(raw_path); }
};

std::vector<std::string_view> header_values(const RouteRequest& r, std::string_view name) {
  std::vector<std::string_view> values;
  for (const auto& [field, value] : r.headers) {
    if (iequals(field, name)) values.push_back(value);
  }
  return values;
}

std::string host_header(const RouteRequest& r) {
  const auto values = header_values(r, "Host");
  return values.empty() ? r.host : std::string(values.front());
}

std::string join(const std::vector<std::string_view>& values, std::string_view sep) {
  std::string out;
  for (std::size_t i = 0; i < values.size(); ++i)
    out += (i ? std::string(sep) : "") + std::string(values[i]);
  return out;
}

std::optional<std::size_t> index_of(std::string_view s) {
  if (s.empty() || s.size() > 6 ||
      !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  return static_cast<std::size_t>(std::stoul(std::string(s)));
}

std::string cookie_value(const RouteRequest& r, std::string_view name) {
  for (const std::string_view line : header_values(r, "Cookie")) {
    for (std::size_t start = 0; start <= line.size();) {
      const std::size_t end = std::min(line.find(';', start), line.size());
      std::string_view pair = line.substr(start, end - start);
      start = end + 1;
      while (pair.starts_with(' ')) pair.remove_prefix(1);
      const std::size_t eq = pair.find('=');
      if (eq != std::string_view::npos && pair.substr(0, eq) == name)
        return std::string(pair.substr(eq + 1));
    }
  }
  return "";
}

// The values of the uri.path.* placeholders (Caddy's path.Split, path.Base, path.Ext).
std::optional<std::string> path_placeholder(std::string_view name, const std::string& path) {
  const std::size_t slash = path.rfind('/');
  const std::string file = slash == std::string::npos ? path : path.substr(slash + 1);
  const std::size_t dot = file.rfind('.');
  const std::string ext = dot == std::string::npos ? "" : file.substr(dot);
  if (name == "dir") return path.substr(0, slash == std::string::npos ? 0 : slash + 1);
  if (name == "file") return file;
  if (name == "file.ext") return ext;
  if (name == "file.base") return file.substr(0, file.size() - ext.size());
  if (const auto index = index_of(name)) {
    std::string_view trimmed = path;
    while (trimmed.starts_with('/')) trimmed.remove_prefix(1);
    while (trimmed.ends_with('/')) trimmed.remove_suffix(1);
    std::size_t start = 0;
    for (std::size_t i = 0; i < *index && start != std::string_view::npos; ++i) {
      start = trimmed.find('/', start);
      if (start != std::string_view::npos) ++start;
    }
    if (start == std::string_view::npos) return "";
    return std::string(trimmed.substr(start, trimmed.find('/', start) - start));
  }
  return std::nullopt;
}

std::optional<std::string> request_placeholder(std::string_view name, const Evaluation& ev) {
  const RouteRequest& r = ev.request;
  const auto query_value = [](const std::string& raw, std::string_view key) -> std::string {
    std::vector<std::pair<std::string, std::string>> pairs;
    parse_query(raw, pairs);
    for (const auto& [k, v] : pairs) {
      if (k == key) return v;
    }
    return "";
  };
  if (name == "host") return r.host;
  if (name == "hostport") return host_header(r);
  if (name == "port") {
    const std::string hostport = host_header(r);
    const std::size_t colon = hostport.rfind(':');
    if (colon != std::string::npos && hostport.find(']', colon) == std::string::npos)
      return hostport.substr(colon + 1);
    return std::to_string(r.port);
  }
  if (name == "scheme") return r.scheme;
  if (name == "method") return r.method;
  if (name == "orig_method") return r.method;
  if (name == "proto")
    return r.version >= 20 ? "HTTP/2.0" : r.version == 10 ? "HTTP/1.0" : "HTTP/1.1";
  if (name == "uri") return ev.raw_path + (ev.query.empty() ? "" : "?" + ev.query);
  if (name == "uri.path") return ev.path();
  if (name == "uri.query") return ev.query;
  if (name.starts_with("uri.path.")) return path_placeholder(name.substr(9), ev.path());
  if (name.starts_with("uri.query.")) return query_value(ev.query, name.substr(10));
  if (name == "orig_uri") return r.target;
  if (name == "orig_uri.path") return percent_decode(ev.orig_path).value_or(ev.orig_path);
  if (name == "orig_uri.query") return ev.orig_query;
  if (name == "remote.host") return r.remote_ip;
  if (name == "remote.port") return std::to_string(r.remote_port);
  if (name == "remote") {
    const bool v6 = r.remote_ip.find(':') != std::string::npos;
    return (v6 ? "[" + r.remote_ip + "]" : r.remote_ip) + ":" + std::to_string(r.remote_port);
  }
  if (name.starts_with("header.")) return join(header_values(r, name.substr(7)), ",");
  if (name.starts_with("cookie.")) return cookie_value(r, name.substr(7));
  if (name.starts_with("host.labels.")) {
    // labels.0 is the last label ("com"), as Caddy counts.
    const auto index = index_of(name.substr(12));
    if (!index) return std::nullopt;
    std::vector<std::string_view> labels;
    for (std::size_t start = 0; start <= r.host.size();) {
      const std::size_t end = std::min(r.host.find('.', start), r.host.size());
      labels.push_back(std::string_view(r.host).substr(start, end - start));
      start = end + 1;
    }
    if (*index >= labels.size()) return "";
    return std::string(labels[labels.size() - 1 - *index]);
  }
  return std::nullopt;
}

std::optional<std::string> global_placeholder(std::string_view key) {
  if (key.starts_with("env.")) {
    const char* value = std::getenv(std::string(key.substr(4)).c_str());
    return value ? value : "";
  }
  if (key == "system.hostname") {
    std::array<char, 256> name{};
    if (gethostname(name.data(), name.size() - 1) != 0) return "";
    return std::string(name.data());
  }
  if (key == "system.os") return "linux";
  if (key == "system.arch") {
#if defined(__x86_64__)
    return "amd64";
#elif defined(__aarch64__)
    return "arm64";
#else
    return "";
#endif
  }
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  if (key == "time.now.unix")
    return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now).count());
  if (key == "time.now.unix_ms") {
    return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(now).count());
  }
  return std::nullopt;
}

// How values go into a rewritten URI: the path placeholders give the encoded forms, other
// values are escaped for the part they land in.
enum class Escape { None, Path, Query };

std::optional<std::string> placeholder_value(std::string_view key, const Evaluation& ev,
                                             Escape escape) {
  if (escape == Escape::Path && key == "http.request.uri.path") return ev.raw_path;
  if (escape != Escape::None && key == "http.request.uri")
    return ev.raw_path + (ev.query.empty() ? "" : "?" + ev.query);
  if (escape == Escape::Query && key == "http.request.uri.query") return ev.query;
  std::optional<std::string> value;
  if (key.starts_with("http.request.")) {
    value = request_placeholder(key.substr(13), ev);
  } else if (key == "http.vars.root") {
    value = ev.root.value_or("");
  } else {
    value = global_placeholder(key);
  }
  if (value && escape == Escape::Path) return percent_encode(*value, "/!$&'()*+,;=:@", false);
  if (value && escape == Escape::Query) return percent_encode(*value, "", true);
  return value;
}

// Caddy's Replacer.replace: "\{" and "\}" are literal; an unknown placeholder is emptied or
// kept as written.
std::string expand(std::string_view in, const Evaluation& ev, UnknownPlaceholder unknown,
                   Escape escape = Escape::None) {
  if (in.find('{') == std::string_view::npos && in.find('\\') == std::string_view::npos)
    return std::string(in);
  std::string out;
  std::size_t written = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (i > 0 && in[i - 1] == '\\' && (in[i] == '{' || in[i] == '}')) {
      out.append(in, written, i - 1 - written);
      written = i;
      continue;
    }
    if (in[i] != '{') continue;
    std::size_t end = in.find('}', i);
    if (end == std::string_view::npos) continue;
    while (end < in.size() - 1 && in[end - 1] == '\\') {
      const std::size_t next = in.find('}', end + 1);
      if (next == std::string_view::npos) break;
      end = next;
    }
    const std::optional<std::string> value =
        placeholder_value(in.substr(i + 1, end - i - 1), ev, escape);
    if (!value && unknown == UnknownPlaceholder::Keep) continue;
    out.append(in, written, i - written);
    if (value) out += *value;
    i = end;
    written = end + 1;
  }
  out.append(in, written);
  return out;
}

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

bool match_header_value(std::string_view actual, std::string_view allowed) {
  if (allowed == "*") return true;
  if (allowed.size() >= 2 && allowed.starts_with('*') && allowed.ends_with('*')) {
    return actual.find(allowed.substr(1, allowed.size() - 2)) != std::string_view::npos;
  }
  if (allowed.starts_with('*')) return actual.ends_with(allowed.substr(1));
  if (allowed.ends_with('*')) return actual.starts_with(allowed.substr(0, allowed.size() - 1));
  return actual == allowed;
}

// matchHeaders: every field must match; any value of a field against any accepted value.
bool match_headers(const MatcherSet& set, const Evaluation& ev) {
  for (const auto& [field, accepted] : set.header) {
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
  for (const auto& [key, accepted] : set.query) {
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

// What in a matcher set cannot be evaluated, or nullopt.
std::optional<std::string> unsupported_matcher(const MatcherSet& set) {
  if (!set.unsupported.empty()) return "matcher '" + set.unsupported.front() + "'";
  if (!set.expression.empty()) return "expression matcher '" + set.expression.front() + "'";
  for (const MatcherSet& inner : set.not_) {
    if (auto what = unsupported_matcher(inner)) return what;
  }
  return std::nullopt;
}

// What in a route's own handler (not nested routes) serve cannot run yet.
std::optional<std::string> unsupported_handler(const Route& route) {
  const caddyfile::Handler& h = route.handler;
  if (const auto* fs = std::get_if<caddyfile::FileServerHandler>(&h)) {
    if (fs->pass_thru) return "file_server pass_thru";
    if (fs->browse_template) return "file_server browse template";
    if (fs->disable_canonical_uris) return "file_server disable_canonical_uris";
    return std::nullopt;
  }
  if (const auto* uri = std::get_if<caddyfile::UriHandler>(&h)) {
    if (uri->op == caddyfile::UriHandler::Op::PathRegexp) return "uri path_regexp";
    return std::nullopt;
  }
  const bool runs = std::holds_alternative<caddyfile::RootHandler>(h) ||
                    std::holds_alternative<caddyfile::RedirHandler>(h) ||
                    std::holds_alternative<caddyfile::RespondHandler>(h) ||
                    std::holds_alternative<caddyfile::HeaderHandler>(h) ||
                    std::holds_alternative<caddyfile::Subroute>(h) ||
                    std::holds_alternative<caddyfile::RewriteHandler>(h);
  if (runs) return std::nullopt;
  return route.directive;
}

// What in a route (its matcher, its own handler) serve cannot run yet.
std::optional<std::string> unsupported_part(const Route& route) {
  if (route.matcher) {
    if (auto what = unsupported_matcher(*route.matcher)) return what;
  }
  return unsupported_handler(route);
}

std::string unsupported_message(const Route& route, const std::string& what) {
  return route.file + ":" + std::to_string(route.line) + ": " + what +
         " is not supported by serve yet";
}

// Caddy's trimPathPrefix: case-insensitive, in decoded space except where the prefix itself
// uses an escape.
std::string trim_path_prefix(const std::string& escaped, std::string_view prefix) {
  std::size_t i_path = 0, i_prefix = 0;
  while (i_path < escaped.size() && i_prefix < prefix.size()) {
    char ch = escaped[i_path];
    if (ch == '%' && prefix[i_prefix] != '%' && escaped.size() >= i_path + 3) {
      const auto decoded = percent_decode(std::string_view(escaped).substr(i_path, 3));
      if (!decoded) return escaped;
      ch = decoded->front();
      i_path += 2;
    }
    if (lower_char(ch) != lower_char(prefix[i_prefix])) return escaped;
    ++i_path;
    ++i_prefix;
  }
  return i_prefix >= prefix.size() ? escaped.substr(i_path) : escaped;
}

void strip_prefix(Evaluation& ev, std::string prefix) {
  if (!prefix.starts_with('/')) prefix.insert(0, "/");
  ev.raw_path = trim_path_prefix(
      caddy_clean_path(ev.raw_path, prefix.find("//") == std::string::npos), prefix);
}

void strip_suffix(Evaluation& ev, std::string suffix) {
  // Caddy reverses both strings and trims a prefix.
  std::string path = caddy_clean_path(ev.raw_path, suffix.find("//") == std::string::npos);
  std::reverse(path.begin(), path.end());
  std::reverse(suffix.begin(), suffix.end());
  path = trim_path_prefix(path, suffix);
  std::reverse(path.begin(), path.end());
  ev.raw_path = std::move(path);
}

std::string replace_all(std::string text, std::string_view find, std::string_view replacement,
                        int limit) {
  if (find.empty()) return text;
  int done = 0;
  for (std::size_t at = text.find(find); at != std::string::npos && (limit <= 0 || done < limit);
       at = text.find(find, at + replacement.size())) {
    text.replace(at, find.size(), replacement);
    ++done;
  }
  return text;
}

void run_uri(const caddyfile::UriHandler& uri, Evaluation& ev) {
  using Op = caddyfile::UriHandler::Op;
  const std::string target = expand(uri.target, ev, UnknownPlaceholder::Empty);
  if (uri.op == Op::StripPrefix) {
    strip_prefix(ev, target);
  } else if (uri.op == Op::StripSuffix) {
    strip_suffix(ev, target);
  } else if (uri.op == Op::Replace) {
    const std::string replacement = expand(uri.replacement, ev, UnknownPlaceholder::Empty);
    const bool merge = uri.target.find("//") == std::string::npos;
    ev.raw_path = replace_all(caddy_clean_path(ev.raw_path, merge), target, replacement, uri.limit);
    ev.query = replace_all(ev.query, target, replacement, uri.limit);
  }
}

// Rewrite with a URI: a path part replaces the path, a '?' part the query (a fragment is dropped).
void run_rewrite(const caddyfile::RewriteHandler& rewrite, Evaluation& ev) {
  const std::string_view uri = std::string_view(rewrite.uri).substr(0, rewrite.uri.find('#'));
  const std::size_t q = uri.find('?');
  const std::string_view path = uri.substr(0, q);
  std::optional<std::string> new_path, new_query;
  if (!path.empty()) new_path = expand(path, ev, UnknownPlaceholder::Empty, Escape::Path);
  if (q != std::string_view::npos)
    new_query = expand(uri.substr(q + 1), ev, UnknownPlaceholder::Empty, Escape::Query);
  if (new_path) ev.raw_path = std::move(*new_path);
  if (new_query) ev.query = std::move(*new_query);
}

// A status code as a placeholder may give it; nullopt when it is not a number.
std::optional<int> status_code(const std::string& written, const Evaluation& ev) {
  const std::string text = expand(written, ev, UnknownPlaceholder::Empty);
  const auto code = index_of(text);
  if (!code || *code > 999) return std::nullopt;
  return static_cast<int>(*code);
}

std::string html_escape(std::string_view s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '\'':
        out += "&#39;";
        break;
      case '"':
        out += "&#34;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

void internal_error(RouteResult& result) {
  result.kind = RouteResult::Kind::Respond;
  result.status = 500;
}

void run_redir(const caddyfile::RedirHandler& redir, Evaluation& ev) {
  RouteResult& result = ev.result;
  const std::string to = expand(redir.to, ev, UnknownPlaceholder::Empty);
  if (redir.code == "html") {
    // Caddy's parseRedir page; the target is escaped after expansion, not before as upstream.
    const std::string safe = html_escape(to);
    result.kind = RouteResult::Kind::Redirect;
    result.status = 200;
    result.body =
        "<!DOCTYPE "
        "html>\n<html>\n\t<head>\n\t\t<title>Redirecting...</"
        "title>\n\t\t<script>window.location.replace(\"" +
        safe + "\");</script>\n\t\t<meta http-equiv=\"refresh\" content=\"0; URL='" + safe +
        "'\">\n\t</head>\n\t<body>Redirecting to <a href=\"" + safe + "\">" + safe +
        "</a>...</body>\n</html>\n";
    result.response_headers.push_back(
        HeaderOp{.field = "Content-Type", .value = "text/html; charset=utf-8"});
    return;
  }
  const auto status = status_code(redir.code, ev);
  if (!status) return internal_error(result);
  result.kind = RouteResult::Kind::Redirect;
  result.status = *status;
  result.location = to;
}

void run_file_server(const caddyfile::FileServerHandler& fs, const Route& route, Evaluation& ev) {
  RouteResult& result = ev.result;
  std::optional<int> status;
  if (fs.status) {
    status = status_code(*fs.status, ev);
    if (!status) return internal_error(result);
  }
  std::string root =
      fs.root ? expand(*fs.root, ev, UnknownPlaceholder::Empty) : ev.root.value_or("");
  result.kind = RouteResult::Kind::Files;
  result.files.root = root.empty() ? "." : root;
  result.files.index_names = fs.index;
  result.files.hide = fs.hide;
  // Caddy hides the Caddyfile itself, by path (an entry with a separator).
  const std::string config =
      route.file.find('/') == std::string::npos ? "./" + route.file : route.file;
  if (!route.file.empty() && std::find(fs.hide.begin(), fs.hide.end(), config) == fs.hide.end()) {
    result.files.hide.push_back(config);
  }
  result.files.browse = fs.browse;
  result.files.precompressed = fs.precompressed;
  result.path = ev.raw_path.starts_with('/') ? ev.raw_path : "/" + ev.raw_path;
  result.query = ev.query;
  result.status = status.value_or(0);
}

enum class Flow { Continue, Stop };

Flow run_routes(const std::vector<Route>& routes, Evaluation& ev);

// One handler; Stop when it answered.
Flow run_handler(const Route& route, Evaluation& ev) {
  const caddyfile::Handler& h = route.handler;
  RouteResult& result = ev.result;
  if (const auto* root = std::get_if<caddyfile::RootHandler>(&h)) {
    ev.root = expand(root->path, ev, UnknownPlaceholder::Empty);
  } else if (const auto* header = std::get_if<caddyfile::HeaderHandler>(&h)) {
    for (HeaderOp op : header->ops) {
      op.field = expand(op.field, ev, UnknownPlaceholder::Keep);
      op.value = expand(op.value, ev, UnknownPlaceholder::Keep);
      op.replacement = expand(op.replacement, ev, UnknownPlaceholder::Keep);
      result.response_headers.push_back(std::move(op));
    }
  } else if (const auto* uri = std::get_if<caddyfile::UriHandler>(&h)) {
    run_uri(*uri, ev);
  } else if (const auto* rewrite = std::get_if<caddyfile::RewriteHandler>(&h)) {
    run_rewrite(*rewrite, ev);
  } else if (const auto* sub = std::get_if<caddyfile::Subroute>(&h)) {
    if (sub->kind == caddyfile::Subroute::Kind::HandlePath) strip_prefix(ev, sub->strip_prefix);
    return run_routes(sub->routes, ev);
  } else if (const auto* respond = std::get_if<caddyfile::RespondHandler>(&h)) {
    const auto status =
        respond->status ? status_code(*respond->status, ev) : std::optional<int>(200);
    if (!status) {
      internal_error(result);
      return Flow::Stop;
    }
    result.kind = RouteResult::Kind::Respond;
    result.status = *status;
    result.body = expand(respond->body, ev, UnknownPlaceholder::Keep);
    result.close = respond->close;
    return Flow::Stop;
  } else if (const auto* redir = std::get_if<caddyfile::RedirHandler>(&h)) {
    run_redir(*redir, ev);
    return Flow::Stop;
  } else if (const auto* fs = std::get_if<caddyfile::FileServerHandler>(&h)) {
    run_file_server(*fs, route, ev);
    return Flow::Stop;
  }
  return Flow::Continue;
}

// wrapRoute: skip on no match, skip when the group is already satisfied, else run.
Flow run_routes(const std::vector<Route>& routes, Evaluation& ev) {
  const auto unsupported = [&](const Route& route, const std::string& what) {
    ev.result.kind = RouteResult::Kind::Unsupported;
    ev.result.unsupported = unsupported_message(route, what);
    return Flow::Stop;
  };
  for (const Route& route : routes) {
    // A matcher that cannot be evaluated answers when reached; a handler when it would run.
    if (const auto what = route.matcher ? unsupported_matcher(*route.matcher) : std::nullopt) {
      return unsupported(route, *what);
    }
    if (route.matcher && !matches(*route.matcher, ev)) continue;
    if (route.group && !ev.satisfied_groups.insert(*route.group).second) continue;
    if (const auto what = unsupported_handler(route)) return unsupported(route, *what);
    if (run_handler(route, ev) == Flow::Stop) return Flow::Stop;
  }
  return Flow::Continue;
}

void check_supported(const std::vector<Route>& routes) {
  for (const Route& route : routes) {
    if (const auto what = unsupported_part(route)) throw Error(unsupported_message(route, *what));
    if (const auto* sub = std::get_if<caddyfile::Subroute>(&route.handler))
      check_supported(sub->routes);
  }
}

}  // namespace

RouteResult evaluate_routes(const caddyfile::Site& site, const RouteRequest& request) {
  Evaluation ev(request);
  run_routes(site.routes, ev);
  return std::move(ev.result);
}

std::string expand_placeholders(std::string_view text, const RouteRequest& request,
                                UnknownPlaceholder unknown) {
  const Evaluation ev(request);
  return expand(text, ev, unknown);
}

void check_routes_supported(const caddyfile::Site& site) {
  check_supported(site.routes);
  for (const caddyfile::ErrorRoutes& errors : site.error_routes) check_supported(errors.routes);
}

}  // namespace acmetool::serve
