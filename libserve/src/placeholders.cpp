// Caddy's placeholders for routing (caddyhttp replacer.go): {http.request.*}, {http.vars.root},
// {http.auth.user.id}, {env.*}, {system.*} and {time.now.*}, expanded in matchers, handler
// arguments and rewrites.
#include "acmetool/serve/routes.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>

#include "routes_internal.h"

namespace acmetool::serve {
namespace routes_detail {
namespace {

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

std::string host_header(const RouteRequest& r) { return std::string(first_header(r, "Host").value_or(r.host)); }

std::string join(const std::vector<std::string_view>& values, std::string_view sep) {
  std::string out;
  for (std::size_t i = 0; i < values.size(); ++i)
    out += (i ? std::string(sep) : "") + std::string(values[i]);
  return out;
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
  if (name == "orig_uri.path") return percent_decode(ev.orig_path).value_or(std::string(ev.orig_path));
  if (name == "orig_uri.query") return std::string(ev.orig_query);
  if (name == "remote.host") return r.remote_ip;
  if (name == "remote.port") return std::to_string(r.remote_port);
  if (name == "remote") {
    const bool v6 = r.remote_ip.find(':') != std::string::npos;
    return (v6 ? "[" + r.remote_ip + "]" : r.remote_ip) + ":" + std::to_string(r.remote_port);
  }
  if (name.starts_with("header.")) return join(header_values(r, name.substr(7)), ",");
  if (name.starts_with("cookie.")) return std::string(find_cookie(r, name.substr(7)).value_or(""));
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

// Inside handle_response, as Caddy sets them before running its routes.
std::optional<std::string> upstream_placeholder(std::string_view name, const UpstreamResponseFacts& upstream) {
  if (name == "status_code") return std::to_string(upstream.status);
  if (name == "status_text") return upstream.status_text;
  if (!name.starts_with("header.")) return std::nullopt;
  std::vector<std::string_view> values;
  for (const auto& [field, value] : upstream.headers) {
    if (iequals(field, name.substr(7))) values.push_back(value);
  }
  return join(values, ",");
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

std::optional<std::string> placeholder_value(std::string_view key, const Evaluation& ev,
                                             Escape escape) {
  if (escape == Escape::Path && key == "http.request.uri.path") return ev.raw_path;
  if (escape != Escape::None && key == "http.request.uri")
    return ev.raw_path + (ev.query.empty() ? "" : "?" + ev.query);
  if (escape == Escape::Query && key == "http.request.uri.query") return ev.query;
  std::optional<std::string> value;
  if (key.starts_with("http.request.")) {
    value = request_placeholder(key.substr(13), ev);
  } else if (key.starts_with("http.reverse_proxy.") && ev.request.upstream) {
    value = upstream_placeholder(key.substr(19), *ev.request.upstream);
  } else if (key == "http.vars.root") {
    value = ev.root.value_or("");
  } else if (key == "http.auth.user.id") {
    // Known once a basic_auth handler has authenticated the request, as Caddy sets it.
    if (!ev.result.user.empty()) value = ev.result.user;
  } else {
    value = global_placeholder(key);
  }
  if (value && escape == Escape::Path) return percent_encode(*value, "/!$&'()*+,;=:@", false);
  if (value && escape == Escape::Query) return percent_encode(*value, "", true);
  return value;
}

}  // namespace

std::string expand(std::string_view in, const Evaluation& ev, UnknownPlaceholder unknown,
                   Escape escape) {
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

std::optional<std::string_view> find_cookie(const RouteRequest& r, std::string_view name) {
  for (const std::string_view line : header_values(r, "Cookie")) {
    for (std::size_t start = 0; start <= line.size();) {
      const std::size_t end = std::min(line.find(';', start), line.size());
      std::string_view pair = line.substr(start, end - start);
      start = end + 1;
      while (pair.starts_with(' ')) pair.remove_prefix(1);
      const std::size_t eq = pair.find('=');
      if (eq != std::string_view::npos && pair.substr(0, eq) == name) return pair.substr(eq + 1);
    }
  }
  return std::nullopt;
}

}  // namespace routes_detail

std::string expand_placeholders(std::string_view text, const RouteRequest& request,
                                UnknownPlaceholder unknown) {
  RouteResult unused;
  const routes_detail::Evaluation ev(request, unused);
  return routes_detail::expand(text, ev, unknown);
}

}  // namespace acmetool::serve
