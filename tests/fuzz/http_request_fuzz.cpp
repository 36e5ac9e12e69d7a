// Fuzzes the server's HTTP request path (issue 8) without sockets: the bytes go to Beast's
// request parser with the server's limits, and each request it accepts (pipelined ones too) runs
// through a Caddyfile site's routes and the file server's decisions as server.cpp runs them.
// Properties, on every request:
//  - a Files answer's path starts with '/'; a status is 0..999; the response header fields and
//    the Location the routes ask for hold no CR, LF or NUL (RFC 9110 §5.5: the server writes
//    them as they are, and CR LF would split the response);
//  - a File or Listing lies inside the root's real path (symlinks may not leave it), is never
//    the secret in the sibling directory, nor hidden; a chosen precompressed sidecar likewise;
//  - parse_range gives at most 100 ranges, each first <= last < size, adding up to at most size;
//    a multipart plan's length is the sum of its parts;
//  - an HTTP-date that parses survives http_date and parse_http_date again;
//  - the upstream field lines the proxy writes at once for a request are those
//    upstream_request_headers gives (less the framing fields, values trimmed), and hold no CR,
//    LF or NUL but at their ends.
#include <fnmatch.h>

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "acmetool/caddyfile/adapt.h"
#include "acmetool/caddyfile/parse.h"
#include "acmetool/serve/cert_cache.h"
#include "acmetool/serve/error.h"
#include "acmetool/serve/file_server.h"
#include "acmetool/serve/proxy_headers.h"
#include "acmetool/serve/routes.h"

namespace beast = boost::beast;
namespace http = beast::http;
namespace fs = std::filesystem;
namespace caddyfile = acmetool::caddyfile;
namespace serve = acmetool::serve;

namespace {

using Request = http::request<http::string_body>;

// The server's limits (ServerOptions::max_header_bytes, http_session's body limit).
constexpr std::uint32_t kHeaderLimit = 16 * 1024;
constexpr std::uint64_t kBodyLimit = 1024 * 1024;
// Pipelined requests looked at per input: enough to reach the parser's state after a request.
constexpr int kMaxRequests = 8;

// Matchers, handle/handle_path/route, uri/rewrite, header and respond with placeholders, redir
// and file_server with several option sets, over the tree make_tree builds at @ROOT@.
constexpr std::string_view kCaddyfile = R"(example.com, http://example.com {
	@api {
		path /api/*
		method GET POST
	}
	@old path /old/* /legacy*
	@json header Accept *json*
	@debug query debug=1 trace=*
	@local remote_ip 127.0.0.0/8 ::1
	@cleartext protocol http
	@other not host example.com

	root * @ROOT@/www
	header X-Path {http.request.uri.path}
	header @json Vary Accept
	header -Server
	header @local X-Remote "{remote_host}:{remote_port}"
	redir @old /new{http.request.uri.path}?{query} 301
	redir @other https://example.com{uri} permanent

	handle @api {
		respond "api {method} {path} {query} {header.User-Agent} {http.request.uri.query.q}" 200
	}
	handle @debug {
		header X-Debug "{http.request.cookie.session} {http.request.host.labels.1}"
		respond "{http.request.uri.path.dir} {http.request.uri.path.file.ext} {unknown}" {header.X-Status}
	}
	handle_path /static/* {
		root * @ROOT@/www/sub
		file_server {
			precompressed br gzip zstd
		}
	}
	handle /docs/* {
		uri strip_prefix /docs
		file_server {
			index index.txt
			browse
			hide *.bak
		}
	}
	route /r/* {
		uri replace /r/ /
		rewrite * /sub{path}?{query}&from=route
		header X-Orig {http.request.orig_uri}
		file_server
	}
	handle @cleartext {
		redir https://{host}{uri}
	}
	handle {
		file_server {
			hide .git *.bak
			browse
			precompressed gzip br zstd
		}
	}
}
)";

// The tree under the temporary directory, and the site adapted over it.
struct Fixture {
  fs::path base;         // the temporary directory, real path
  fs::path secret;       // the sibling directory nothing may reach, real path
  caddyfile::Site site;  // the only site of kCaddyfile
};
const Fixture *fixture = nullptr;

void require(bool holds) {
  if (!holds) std::abort();
}

void write(const fs::path &file, std::string_view text) {
  std::ofstream out(file, std::ios::binary);
  out << text;
  require(out.good());
}

// www/ is the root; www-secret/ is a sibling whose name shares the root's as a prefix, so a
// string-prefix containment test would let it in. Symlinks lead out of the root (a directory, a
// file, a sidecar) and inside it.
void make_tree(const fs::path &base) {
  const fs::path www = base / "www";
  for (const char *dir :
       {"www", "www/sub", "www/sub/deep", "www/docs", "www/.git", "www/empty", "www-secret"}) {
    fs::create_directory(base / dir);
  }
  write(www / "index.html", "<h1>home</h1>\n");
  write(www / "a.txt", "0123456789abcdefghijklmnopqrstuvwxyz\n");
  write(www / "a.txt.gz", "gzip sidecar");
  write(www / "a.txt.br", "br sidecar");
  write(www / "notes.bak", "hidden by name");
  write(www / ".git" / "config", "hidden directory");
  write(www / "sub" / "b.css", "body { color: red }\n");
  write(www / "sub" / "b.css.gz", "gzip sidecar");
  write(www / "sub" / "deep" / "c.js", "let c = 1;\n");
  write(www / "docs" / "index.txt", "docs index\n");
  write(www / "docs" / "old.bak", "hidden by name");
  write(base / "www-secret" / "secret.txt", "SECRET\n");
  fs::create_directory_symlink("../www-secret", www / "out");
  fs::create_symlink("../www-secret/secret.txt", www / "leak.txt");
  fs::create_symlink("../www-secret/secret.txt", www / "a.txt.zst");
  fs::create_symlink("../www-secret/secret.txt", www / "sub" / "b.css.br");
  fs::create_directory_symlink("sub", www / "inner");
  fs::create_symlink("notes.bak", www / "alias.txt");
}

caddyfile::Site adapt_site(const fs::path &base) {
  std::string text(kCaddyfile);
  for (std::size_t at; (at = text.find("@ROOT@")) != std::string::npos;) {
    text.replace(at, 6, base.string());
  }
  caddyfile::ParseOptions options;
  options.env = [](std::string_view) -> std::optional<std::string> { return std::nullopt; };
  std::vector<caddyfile::Warning> warnings;
  caddyfile::Config config =
      caddyfile::adapt(caddyfile::parse(text, "Caddyfile", options), warnings);
  require(config.sites.size() == 1);
  serve::check_routes_supported(config.sites[0]);
  return std::move(config.sites[0]);
}

// ---- Parsing

// Feeds `input` to a parser as the server's http::async_read would, the whole rest of the input
// being "what has arrived". Returns the request, or nullopt when the input holds no complete one
// (the server answers 4xx and closes, or waits); `consumed` is how far the parser got.
std::optional<Request> parse_request(std::string_view input, std::size_t &consumed) {
  http::request_parser<http::string_body> parser;
  parser.header_limit(kHeaderLimit);
  parser.body_limit(kBodyLimit);
  parser.eager(true);
  consumed = 0;
  while (!parser.is_done() && consumed < input.size()) {
    beast::error_code ec;
    const std::size_t used =
        parser.put(boost::asio::const_buffer(input.data() + consumed, input.size() - consumed), ec);
    consumed += used;
    if (ec || used == 0) return std::nullopt;  // need_more with everything given: incomplete
  }
  if (!parser.is_done()) return std::nullopt;
  return parser.release();
}

// server.cpp's request_host: the Host field without the port, normalised.
std::string request_host(const Request &req) {
  std::string host(req[http::field::host]);
  if (!host.empty() && host.front() == '[') {
    const auto end = host.find(']');
    host = end == std::string::npos ? "" : host.substr(1, end - 1);
  } else if (const auto colon = host.rfind(':'); colon != std::string::npos) {
    host.resize(colon);
  }
  return serve::normalise_server_name(host);
}

serve::RouteRequest route_request(const Request &req, bool https) {
  serve::RouteRequest request;
  request.method = std::string(req.method_string());
  request.target = std::string(req.target());
  request.host = request_host(req);
  request.scheme = https ? "https" : "http";
  request.port = https ? 443 : 80;
  request.remote_ip = https ? "203.0.113.7" : "127.0.0.1";
  request.remote_port = 50123;
  request.version = static_cast<int>(req.version());
  for (const auto &field : req) request.headers.emplace_back(field.name_string(), field.value());
  return request;
}

// ---- Properties

bool writable_as_field(std::string_view text) {
  return text.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

void check_route_result(const serve::RouteResult &result) {
  using Kind = serve::RouteResult::Kind;
  require(result.status >= 0 && result.status <= 999);
  if (result.kind == Kind::Files) require(result.path.starts_with('/'));
  if (result.kind == Kind::Redirect) require(writable_as_field(result.location));
  for (const caddyfile::HeaderOp &op : result.response_headers) {
    require(writable_as_field(op.field) && writable_as_field(op.value));
  }
}

bool is_within(const fs::path &inner, const fs::path &outer) {
  return std::mismatch(outer.begin(), outer.end(), inner.begin(), inner.end()).first == outer.end();
}

// A path the server would open: inside the root's real path, never the secret, and (but for
// sidecars, which `hide` does not cover) never hidden by a name entry of `hide`.
void check_servable(const serve::FileServerOptions &files, const fs::path &path,
                    bool sidecar = false) {
  const fs::path real = fs::weakly_canonical(path);
  const fs::path root = fs::weakly_canonical(fs::absolute(files.root));
  require(!is_within(real, fixture->secret));
  if (!files.allow_symlinks_outside_root) require(is_within(real, root));
  if (sidecar) return;
  for (const std::string &entry : files.hide) {
    if (entry.find('/') != std::string::npos) continue;
    for (const fs::path &component : real.lexically_relative(root)) {
      require(::fnmatch(entry.c_str(), component.c_str(), 0) != 0);
    }
  }
}

void check_date(std::string_view text) {
  const auto parsed = serve::parse_http_date(text);
  if (!parsed) return;
  const auto again = serve::parse_http_date(serve::http_date(*parsed));
  require(again && *again == *parsed);
}

void check_ranges(std::string_view range, std::uint64_t size) {
  const auto ranges = serve::parse_range(range, size);
  if (!ranges) return;
  require(ranges->size() <= 100);
  std::uint64_t total = 0;
  for (const serve::ByteRange &r : *ranges) {
    require(r.first <= r.last && r.last < size);
    total += r.last - r.first + 1;
  }
  require(total <= size);
  if (ranges->size() < 2) return;
  const serve::MultipartPlan plan = serve::plan_multipart(*ranges, size, "text/plain");
  std::uint64_t length = total + plan.closing.size();
  for (const std::string &part : plan.part_headers) length += part.size();
  require(plan.part_headers.size() == ranges->size() && plan.content_length == length);
}

// server.cpp's send_file, up to what it would send.
void send_file(const serve::FileServerOptions &files, const Request &req,
               const serve::FileTarget &found) {
  std::uintmax_t size = found.size;
  std::filesystem::file_time_type modified = found.modified;
  if (auto sidecar =
          serve::choose_precompressed(files, found.path, req[http::field::accept_encoding])) {
    check_servable(files, sidecar->path, /*sidecar=*/true);
    size = sidecar->size;
    modified = sidecar->modified;
  }
  const std::string etag = serve::file_etag(modified, size);
  const auto last_modified = serve::useful_mod_time(modified);
  serve::ConditionalHeaders conditional;
  conditional.if_match = req[http::field::if_match];
  conditional.if_none_match = req[http::field::if_none_match];
  conditional.if_modified_since = req[http::field::if_modified_since];
  conditional.if_unmodified_since = req[http::field::if_unmodified_since];
  check_date(conditional.if_modified_since);
  check_date(conditional.if_unmodified_since);
  if (serve::evaluate_preconditions(req.method_string(), conditional, etag, last_modified) !=
      serve::Precondition::Proceed) {
    return;
  }
  const std::string_view range = req[http::field::range];
  const std::string_view if_range = req[http::field::if_range];
  check_date(if_range);
  if (!range.empty() &&
      (if_range.empty() || serve::if_range_matches(if_range, etag, last_modified))) {
    check_ranges(range, size);
  }
}

// server.cpp's serve_file: the target is the result's path and query.
void serve_files(const serve::RouteResult &result, const Request &req) {
  std::string target = result.path;
  if (!result.query.empty()) target += "?" + result.query;
  const serve::FileTarget found =
      serve::resolve_file(result.files, target.substr(0, target.find('?')));
  if (found.kind == serve::FileTarget::Kind::Listing) {
    check_servable(result.files, found.path);
    try {
      const auto entries = serve::list_directory(result.files, found.path);
      (void)serve::browse_html(found.clean_path, entries);
      (void)serve::browse_json(entries);
    } catch (const serve::Error &) {
      // The directory could not be read (it changed since resolve_file): the server logs and
      // closes that connection.
    }
  } else if (found.kind == serve::FileTarget::Kind::File) {
    check_servable(result.files, found.path);
    send_file(result.files, req, found);
  } else if (found.kind == serve::FileTarget::Kind::Redirect) {
    require(!found.redirect_location.starts_with("//") &&
            writable_as_field(found.redirect_location));
  }
}

// upstream_request_headers' lines as an HTTP/1.1 request head carries them.
std::string as_field_lines(const serve::HeaderFields &fields) {
  std::string out;
  for (const auto &field : fields) {
    if (beast::iequals(field.name, "content-length") || beast::iequals(field.name, "transfer-encoding")) continue;
    std::string_view value = field.value;
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    out.append(field.name).append(": ").append(value).append("\r\n");
  }
  return out;
}

void check_upstream_fields(const serve::RouteRequest &request, bool tls_upstream) {
  serve::ProxyHeaderOptions rules;
  rules.upstream_tls = tls_upstream;
  serve::ClientRequestFacts client{.remote_ip = request.remote_ip, .tls = request.scheme == "https", .host = ""};
  for (const auto &field : request.headers) {
    if (beast::iequals(field.name, "host")) {
      client.host = field.value;
      break;
    }
  }
  std::string lines;
  if (!serve::write_upstream_request_fields(lines, request.headers, client, rules, "10.0.0.5:8080")) return;
  require(lines == as_field_lines(serve::upstream_request_headers(request.headers, client, rules, "10.0.0.5:8080", {})));
  for (std::string_view rest = lines; !rest.empty();) {
    const std::size_t end = rest.find("\r\n");
    require(end != std::string_view::npos && writable_as_field(rest.substr(0, end)));
    rest.remove_prefix(end + 2);
  }
}

void handle(const Request &req, bool https) {
  const serve::RouteRequest request = route_request(req, https);
  check_upstream_fields(request, https);
  (void)serve::expand_placeholders(request.target, request);
  (void)serve::expand_placeholders(request.target, request, serve::UnknownPlaceholder::Keep);
  const serve::RouteResult result = serve::evaluate_routes(fixture->site, request);
  check_route_result(result);
  if (result.kind == serve::RouteResult::Kind::Files) serve_files(result, req);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  std::string base_template = (fs::temp_directory_path() / "http_request_fuzz.XXXXXX").string();
  require(::mkdtemp(base_template.data()) != nullptr);
  auto *made = new Fixture;
  made->base = fs::canonical(base_template);
  make_tree(made->base);
  made->secret = made->base / "www-secret";
  made->site = adapt_site(made->base);
  fixture = made;
  std::atexit([] {
    std::error_code ignored;
    fs::remove_all(fixture->base, ignored);
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char *>(data), size);
  // The port the request came in on is not in its bytes: let the length choose the scheme.
  const bool https = size % 2 == 0;
  for (int n = 0; n < kMaxRequests && !input.empty(); ++n) {
    std::size_t consumed = 0;
    const std::optional<Request> req = parse_request(input, consumed);
    if (!req) break;
    handle(*req, https);
    if (!req->keep_alive()) break;
    input.remove_prefix(consumed);
  }
  return 0;
}
