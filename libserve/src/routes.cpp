// Routing (issue 8): a site's routes run for one request, following Caddy's caddyhttp package
// (routes.go wrapRoute, rewrite/rewrite.go, staticresp.go). The matchers are in
// route_matchers.cpp, the placeholders in placeholders.cpp, basic_auth in basic_auth.cpp.
#include "acmetool/serve/routes.h"

#include <algorithm>
#include <optional>
#include <regex>
#include <string>

#include "acmetool/pki/files.h"
#include "acmetool/serve/error.h"
#include "acmetool/serve/proxy_headers.h"
#include "acmetool/serve/upstreams.h"
#include "basic_auth_internal.h"
#include "routes_internal.h"

namespace acmetool::serve::routes_detail {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

char lower_char(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return lower_char(x) == lower_char(y);
         });
}

std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space) {
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

std::vector<std::string_view> header_values(const RouteRequest& r, std::string_view name) {
  std::vector<std::string_view> values;
  for (const auto& [field, value] : r.headers) {
    if (iequals(field, name)) values.push_back(value);
  }
  return values;
}

std::optional<std::string_view> first_header(const RouteRequest& r, std::string_view name) {
  for (const auto& [field, value] : r.headers) {
    if (iequals(field, name)) return std::string_view(value);
  }
  return std::nullopt;
}

std::optional<std::size_t> index_of(std::string_view s) {
  if (s.empty() || s.size() > 6 ||
      !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  return static_cast<std::size_t>(std::stoul(std::string(s)));
}

namespace {

using caddyfile::HeaderOp;
using caddyfile::MatcherSet;
using caddyfile::Route;

// What in a matcher set cannot be evaluated, or nullopt.
std::optional<std::string> unsupported_matcher(const MatcherSet& set) {
  if (!set.unsupported.empty()) return "matcher '" + set.unsupported.front() + "'";
  if (!set.expression.empty()) return "expression matcher '" + set.expression.front() + "'";
  for (const MatcherSet& inner : set.not_) {
    if (auto what = unsupported_matcher(inner)) return what;
  }
  return std::nullopt;
}

// The parts of reverse_proxy the proxy (proxy.h) does not implement yet.
std::optional<std::string> unsupported_reverse_proxy(const caddyfile::ReverseProxyHandler& proxy) {
  const caddyfile::HttpTransport& t = proxy.transport;
  for (const std::string& version : t.versions) {
    if (version == "3") return "reverse_proxy transport versions " + version;
  }
  if (proxy.upstreams.empty() && !proxy.dynamic) return "reverse_proxy without upstreams";
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
  if (const auto* auth = std::get_if<caddyfile::BasicAuthHandler>(&h)) {
    return unsupported_basic_auth(*auth);
  }
  if (const auto* proxy = std::get_if<caddyfile::Boxed<caddyfile::ReverseProxyHandler>>(&h)) {
    return unsupported_reverse_proxy(**proxy);
  }
  const bool runs = std::holds_alternative<caddyfile::RootHandler>(h) ||
                    std::holds_alternative<caddyfile::CopyResponseHandler>(h) ||
                    std::holds_alternative<caddyfile::CopyResponseHeadersHandler>(h) ||
                    std::holds_alternative<caddyfile::RedirHandler>(h) ||
                    std::holds_alternative<caddyfile::RespondHandler>(h) ||
                    std::holds_alternative<caddyfile::HeaderHandler>(h) ||
                    std::holds_alternative<caddyfile::EncodeHandler>(h) ||
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

// Caddy's Authentication handler: an authenticated request goes on with the user recorded; any
// other gets 401 with the challenge (RFC 7617 §2; Caddy quotes the realm as written).
Flow run_basic_auth(const caddyfile::BasicAuthHandler& auth, Evaluation& ev) {
  RouteResult& result = ev.result;
  if (auto user = authenticate(auth, ev.request)) {
    result.user = std::move(*user);
    return Flow::Continue;
  }
  result.kind = RouteResult::Kind::Respond;
  result.status = 401;
  result.body.clear();
  result.response_headers.push_back(
      HeaderOp{.field = "WWW-Authenticate", .value = "Basic realm=\"" + auth.realm + "\""});
  return Flow::Stop;
}

Flow run_routes(const std::vector<Route>& routes, Evaluation& ev);

// Caddy's CopyResponseHeadersHandler: each upstream field that passes include/exclude replaces
// the response's field of that name.
void run_copy_response_headers(const caddyfile::CopyResponseHeadersHandler& copy, Evaluation& ev) {
  const auto listed = [](const std::vector<std::string>& list, std::string_view field) {
    return std::any_of(list.begin(), list.end(), [&](const std::string& name) { return iequals(name, field); });
  };
  std::vector<std::string_view> copied;
  for (const auto& line : ev.request.upstream->headers) {
    const std::string_view field = line.name;  // not a structured binding: clang 14 cannot capture those
    if (!copy.include.empty() && !listed(copy.include, field)) continue;
    if (listed(copy.exclude, field)) continue;
    const bool first = std::none_of(copied.begin(), copied.end(), [&](std::string_view c) { return iequals(c, field); });
    if (first) {
      copied.push_back(field);
      ev.result.response_headers.push_back(HeaderOp{.kind = HeaderOp::Kind::Delete, .field = std::string(field)});
    }
    ev.result.response_headers.push_back(
        HeaderOp{.kind = HeaderOp::Kind::Add, .field = std::string(field), .value = std::string(line.value)});
  }
}

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
  } else if (const auto* encode = std::get_if<caddyfile::EncodeHandler>(&h)) {
    result.encode = encode_options(*encode);
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
  } else if (const auto* auth = std::get_if<caddyfile::BasicAuthHandler>(&h)) {
    return run_basic_auth(*auth, ev);
  } else if (const auto* fs = std::get_if<caddyfile::FileServerHandler>(&h)) {
    run_file_server(*fs, route, ev);
    return Flow::Stop;
  } else if (const auto* copy = std::get_if<caddyfile::CopyResponseHandler>(&h)) {
    // check_routes_supported allows it only inside handle_response, where `upstream` is set.
    if (!ev.request.upstream) {
      internal_error(result);
      return Flow::Stop;
    }
    const auto status = copy->status ? status_code(*copy->status, ev) : std::optional<int>(0);
    if (!status) {
      internal_error(result);
      return Flow::Stop;
    }
    result.kind = RouteResult::Kind::CopyResponse;
    result.status = *status;
    return Flow::Stop;
  } else if (const auto* copy_headers = std::get_if<caddyfile::CopyResponseHeadersHandler>(&h)) {
    if (ev.request.upstream) run_copy_response_headers(*copy_headers, ev);
  } else if (const auto* proxy = std::get_if<caddyfile::Boxed<caddyfile::ReverseProxyHandler>>(&h)) {
    if (ev.request.upstream) {  // a reverse_proxy inside handle_response
      result.kind = RouteResult::Kind::Unsupported;
      result.unsupported = unsupported_message(route, "reverse_proxy inside handle_response");
      return Flow::Stop;
    }
    result.kind = RouteResult::Kind::Proxy;
    result.root = ev.root;
    result.proxy = &**proxy;
    result.path = ev.raw_path.starts_with('/') ? ev.raw_path : "/" + ev.raw_path;
    result.query = ev.query;
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

// What the proxy would refuse when the configuration loads (an unknown lb_policy, a bad range or
// expression), said at the route's file:line.
void check_reverse_proxy(const Route& route) {
  const auto* boxed = std::get_if<caddyfile::Boxed<caddyfile::ReverseProxyHandler>>(&route.handler);
  if (!boxed) return;
  const caddyfile::ReverseProxyHandler& proxy = **boxed;
  try {
    UpstreamPool pool(proxy);
    proxy_header_options(proxy);
    if (proxy.active_health && proxy.active_health->expect_body) std::regex check(*proxy.active_health->expect_body);
    // TLS files, as the proxy will load them.
    for (const std::string& file : proxy.transport.tls_trusted_ca_certs) {
      if (!pki::read_file(file)) throw Error("tls_trusted_ca_certs " + file + ": cannot be read");
    }
    for (const std::string& file : proxy.transport.tls_client_auth) {
      if (!pki::read_file(file)) throw Error("tls_client_auth " + file + ": cannot be read");
    }
  } catch (const std::exception& e) {
    throw Error(route.file + ":" + std::to_string(route.line) + ": reverse_proxy: " + e.what());
  }
}

// `in_response`: inside a reverse_proxy's handle_response, the only place copy_response and
// copy_response_headers may be (Caddy fails such requests with 500; serve refuses to start).
void check_supported(const std::vector<Route>& routes, bool in_response = false) {
  for (const Route& route : routes) {
    if (const auto what = unsupported_part(route)) throw Error(unsupported_message(route, *what));
    const bool copies = std::holds_alternative<caddyfile::CopyResponseHandler>(route.handler) ||
                        std::holds_alternative<caddyfile::CopyResponseHeadersHandler>(route.handler);
    if (copies && !in_response) {
      throw Error(route.file + ":" + std::to_string(route.line) + ": " + route.directive +
                  " can only be used inside reverse_proxy's handle_response");
    }
    check_reverse_proxy(route);
    if (const auto* sub = std::get_if<caddyfile::Subroute>(&route.handler)) {
      check_supported(sub->routes, in_response);
    }
    if (const auto* proxy = std::get_if<caddyfile::Boxed<caddyfile::ReverseProxyHandler>>(&route.handler)) {
      if (in_response) throw Error(unsupported_message(route, "reverse_proxy inside handle_response"));
      for (const caddyfile::ResponseHandler& handler : (*proxy)->handle_response) {
        check_supported(handler.routes, true);
      }
    }
  }
}

}  // namespace
}  // namespace acmetool::serve::routes_detail

namespace acmetool::serve {

namespace {

// CR, LF and NUL are not allowed in a field value (RFC 9110 §5.5); a placeholder that decodes the
// path ("%0d%0a") must not split the response. Replaced with spaces, as Go's net/http writes them.
void make_field_safe(std::string& value) {
  std::replace_if(value.begin(), value.end(), [](char c) { return c == '\r' || c == '\n' || c == '\0'; }, ' ');
}

// The result, with field values made safe (see make_field_safe).

void make_result_safe(RouteResult& result) {
  make_field_safe(result.location);
  for (caddyfile::HeaderOp& op : result.response_headers) {
    make_field_safe(op.field);
    make_field_safe(op.value);
    make_field_safe(op.replacement);
  }
}

}  // namespace

RouteResult evaluate_routes(const caddyfile::Site& site, const RouteRequest& request) {
  RouteResult result;
  routes_detail::Evaluation ev(request, result);
  routes_detail::run_routes(site.routes, ev);
  make_result_safe(result);
  return result;
}

RouteResult evaluate_response_routes(const std::vector<caddyfile::Route>& routes, const RouteRequest& request,
                                     const RouteResult& proxied) {
  RouteResult result;
  routes_detail::Evaluation ev(request, result);
  ev.raw_path = proxied.path;
  ev.query = proxied.query;
  ev.root = proxied.root;
  ev.result.user = proxied.user;
  ev.result.encode = proxied.encode;
  ev.result.response_headers = proxied.response_headers;
  routes_detail::run_routes(routes, ev);
  make_result_safe(result);
  return result;
}

void check_routes_supported(const caddyfile::Site& site) {
  routes_detail::check_supported(site.routes);
  for (const caddyfile::ErrorRoutes& errors : site.error_routes) {
    routes_detail::check_supported(errors.routes);
  }
}

}  // namespace acmetool::serve
