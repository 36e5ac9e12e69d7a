// Routing (issue 8): runs an adapted Caddyfile site's routes for one request as Caddy's HTTP app
// does — matchers, `handle` groups, path rewrites, placeholders — and says which terminal handler
// answers. Pure: no sockets, no files; the server (server.cpp) acts on the result.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "acmetool/caddyfile/config.h"
#include "acmetool/serve/encode.h"
#include "acmetool/serve/file_server.h"
#include "acmetool/serve/header_fields.h"

namespace acmetool::serve {

/// The upstream's response that a reverse_proxy `handle_response` block runs for.
struct UpstreamResponseFacts {
  int status = 0;
  std::string status_text;  ///< "404 Not Found", as Go's Response.Status
  /// Its fields, hop-by-hop ones removed, before header_down.
  HeaderFields headers;
};

/// The parts of a request the routes look at. Header lookups are case-insensitive.
struct RouteRequest {
  std::string method;     ///< "GET", as received (matching is case-sensitive, as in Caddy)
  std::string target;     ///< the request-target as received: "/a%20b/c?x=1"
  std::string host;       ///< Host without port, lower case
  std::string scheme;     ///< "https" or "http"
  int port = 0;           ///< the port the request came in on
  int version = 11;       ///< HTTP version as Beast writes it: 10, 11, 20
  std::string remote_ip;  ///< the TCP peer
  int remote_port = 0;
  HeaderFields headers;  ///< as received, one entry per line
  /// Inside `handle_response` (evaluate_response_routes): the upstream's response, for the
  /// {http.reverse_proxy.status_code|status_text|header.NAME} placeholders and copy_response(_headers).
  const UpstreamResponseFacts* upstream = nullptr;
};

/// What the routes decided. A terminal handler ends the chain; when none is reached the answer is
/// Caddy's default: 200 with an empty body (Kind::Empty).
struct RouteResult {
  enum class Kind { Empty, Files, Respond, Redirect, Proxy, CopyResponse, Unsupported };
  Kind kind = Kind::Empty;
  /// Files: root (file_server's own `root`, else the last `root` directive that ran, else "." as
  /// Caddy does), index names, hide, browse, precompressed.
  FileServerOptions files;
  /// Proxy: the reverse_proxy handler that answers, inside the Site passed to evaluate_routes
  /// (valid while it is).
  const caddyfile::ReverseProxyHandler* proxy = nullptr;
  /// Proxy: the `root` in effect, for its handle_response blocks.
  std::optional<std::string> root;
  /// Files and Proxy: the path to resolve or to send upstream (after handle_path, `uri` and `rewrite`), percent-encoded, always
  /// starting with '/', without the query.
  std::string path;
  /// The query after rewrites (without '?'); the server appends it to a Files redirect.
  std::string query;
  /// Respond and Redirect: the status (`redir ... html` is 200); Files: file_server's `status`
  /// override, CopyResponse: copy_response's, 0 when none. A status placeholder that does not
  /// expand to a number gives 500.
  int status = 200;
  std::string body;      ///< Respond (known placeholders expanded), Redirect with "html"
  std::string location;  ///< Redirect (placeholders expanded); empty for "html"
  bool close = false;    ///< `respond ... { close }`: close the connection after the response
  /// From the `header` handlers that ran, in order, values with known placeholders expanded; the
  /// server applies them to the response. `redir ... html` adds Content-Type.
  std::vector<caddyfile::HeaderOp> response_headers;
  /// Unsupported: "Caddyfile:12: reverse_proxy is not supported by serve yet".
  std::string unsupported;
  /// The user a basic_auth handler authenticated ({http.auth.user.id}, the access log's
  /// `user_id`); empty when none did.
  std::string user;
  /// The last `encode` handler that ran before the answer (Caddy's encoders wrap the response
  /// writer, so the innermost, last one decides), whatever kind answered; the server compresses
  /// the answer with it as encode.h describes. nullopt: no encode ran.
  std::optional<EncodeOptions> encode;
};

/// Runs `site.routes` for `request`, as Caddy runs a site's subroute:
///  - matchers: path (exact, "/prefix*", "*suffix", "*mid*", else a glob) on the decoded, cleaned
///    path, case-insensitively; host (one-label '*' wildcards); method; header (values "*",
///    "pre*", "*suf", "*in*"; an empty list means the field must be absent); query (OR among the
///    values of one key, AND across keys, "*" any value); protocol; remote_ip and client_ip (the
///    TCP peer: no trusted proxies); `not` (fails when any of its sets matches). Placeholders in
///    patterns are expanded. A route with an `expression` or an unsupported matcher answers
///    Unsupported when reached.
///  - among routes with the same Route::group only the first matching one runs (Caddy's
///    mutually exclusive `handle`/`handle_path`/`root`/`rewrite` groups), request-wide.
///  - root sets the root for later handlers; header collects response header operations; `uri
///    strip_prefix|strip_suffix|replace` and `rewrite` change the path (and query) that later
///    matchers and handlers see; handle_path strips its prefix first; subroutes run in order and,
///    when nothing in them answers, evaluation continues after them.
///  - basic_auth (Caddy's caddyauth.HTTPBasicAuth): the first Authorization field must carry
///    Basic credentials (RFC 7617) of an account whose bcrypt hash (raw "$2a$..." or base64 of
///    it) matches; then the chain goes on with RouteResult::user and {http.auth.user.id} set,
///    else it ends with Respond 401, an empty body and `WWW-Authenticate: Basic realm="<realm>"`.
///    A check costs one bcrypt computation (about a second at cost 14), also for unknown users;
///    successful checks are remembered process-wide (at most 1,000), failures never.
///  - encode records its options in RouteResult::encode and the chain goes on.
///  - terminal: file_server, respond, redir, reverse_proxy (Kind::Proxy; the server proxies
///    path and query; its handle_response blocks run by evaluate_response_routes). reverse_proxy
///    with transport versions other than 1.1, basic_auth with argon2id or a hash
///    that is not bcrypt, try_files, invoke, `uri path_regexp`, `file_server { pass_thru }` and
///    directives the adapter kept as unsupported answer Unsupported when they would run (their
///    matcher matched).
/// Field values in the result (Location, header operations) have CR, LF and NUL replaced by
/// spaces, so a placeholder that decodes them cannot split the response (as Go's net/http does).
/// Pure but for basic_auth's cache of successes; thread-safe; never throws except std::bad_alloc.
RouteResult evaluate_routes(const caddyfile::Site& site, const RouteRequest& request);

/// Runs a reverse_proxy's `handle_response` routes (`routes`, from `proxied.proxy`) for the
/// upstream response `request.upstream` (which must be set), as Caddy runs them: on the request
/// as the proxy saw it (proxied.path, .query and .root), its matchers on the request, with the
/// `header` operations and `encode` of the routes before the proxy still in force (they start
/// the result's lists) and the {http.reverse_proxy.*} placeholders known. `copy_response` answers
/// CopyResponse (send the upstream's response after all, with its status replaced when given);
/// `copy_response_headers` adds a Delete and Adds per upstream field it copies to
/// response_headers. When nothing answers, Kind::Empty (Caddy's empty 200). A reverse_proxy
/// inside answers Unsupported. Thread-safe.
RouteResult evaluate_response_routes(const std::vector<caddyfile::Route>& routes, const RouteRequest& request,
                                     const RouteResult& proxied);

/// What an unknown placeholder becomes: Caddy's Replacer.ReplaceAll empties it (matchers,
/// Location, status, root), ReplaceKnown keeps it as written (respond bodies, header values).
enum class UnknownPlaceholder { Empty, Keep };

/// Expands Caddy placeholders in `text` for `request`: {http.request.host}, .hostport, .port,
/// .scheme, .method, .proto, .uri, .uri.path, .uri.path.dir, .uri.path.file(.base|.ext),
/// .uri.path.N, .uri.query, .uri.query.NAME, .orig_uri(.path|.query), .orig_method,
/// .remote, .remote.host, .remote.port, .host.labels.N, .header.NAME (values joined with ","),
/// .cookie.NAME, {env.NAME}, {system.hostname}, {system.os}, {system.arch}, {time.now.unix},
/// {time.now.unix_ms}. "\{" and "\}" are literal braces. Thread-safe.
std::string expand_placeholders(std::string_view text, const RouteRequest& request,
                                UnknownPlaceholder unknown = UnknownPlaceholder::Empty);

/// Throws serve::Error "FILE:LINE: <what> is not supported by serve yet" for the first route
/// (depth first through subroutes, then the error routes) that evaluate_routes could answer
/// Unsupported for, so that `acmetool serve` refuses such a site at start-up.
void check_routes_supported(const caddyfile::Site& site);

}  // namespace acmetool::serve
