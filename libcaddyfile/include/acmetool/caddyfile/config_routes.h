// The HTTP side of an adapted Caddyfile: request matchers, handlers and routes. Plain values;
// `serve` evaluates them. Placeholder shorthands are already expanded ("{host}" is
// "{http.request.host}"), as in Caddy's JSON.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "acmetool/caddyfile/config_proxy.h"

namespace acmetool::caddyfile {

/// One set of request conditions; all present conditions must match (AND). Within one condition
/// any value may match (OR). An empty set matches every request.
struct MatcherSet {
  std::vector<std::string> path;    ///< Caddy path patterns: exact, "/prefix*", "*suffix", "*mid*"
  std::vector<std::string> host;    ///< Host header without port; "*.example.com" one label
  std::vector<std::string> method;  ///< upper-cased
  /// Header field -> accepted values ("*" any, "prefix*", "*suffix", "*infix*"); an empty list
  /// means the field must be absent (`header !Field`).
  std::vector<std::pair<std::string, std::vector<std::string>>> header;
  /// Query key -> accepted values ("*" any value), as the `query` matcher's key=value pairs.
  std::vector<std::pair<std::string, std::vector<std::string>>> query;
  std::vector<std::string> protocol;   ///< "http", "https", "grpc", "http/1.1", "http/2"...
  std::vector<std::string> remote_ip;  ///< CIDR ranges or addresses of the TCP peer
  std::vector<std::string> client_ip;  ///< same, but of the client as trusted proxies report it
  /// CEL expressions (`expression ...` or a quoted `@name "..."`), as written with placeholder
  /// shorthands expanded; the adapter does not check them.
  std::vector<std::string> expression;
  /// Each entry is one `not` block; the set fails when any of them matches: NOT (a OR b).
  std::vector<MatcherSet> not_;
  /// Caddy matchers acmetool cannot evaluate yet (`file`, `path_regexp`, ...), each as written
  /// ("file {path}.html"); the file still validates, with a warning, but `serve` refuses the site.
  std::vector<std::string> unsupported;

  bool empty() const noexcept;
};

/// A heap-allocated T with value semantics (copies are deep), so that one large handler does not
/// make every Route large. Never empty except after being moved from.
template <class T>
class Boxed {
 public:
  Boxed() : value_(std::make_unique<T>()) {}
  Boxed(T value) : value_(std::make_unique<T>(std::move(value))) {}  // NOLINT: implicit on purpose
  Boxed(const Boxed& other) : value_(std::make_unique<T>(*other.value_)) {}
  Boxed(Boxed&&) noexcept = default;
  Boxed& operator=(const Boxed& other) { return *this = Boxed(other); }
  Boxed& operator=(Boxed&&) noexcept = default;
  ~Boxed() = default;

  const T& operator*() const noexcept { return *value_; }
  T& operator*() noexcept { return *value_; }
  const T* operator->() const noexcept { return value_.get(); }
  T* operator->() noexcept { return value_.get(); }

 private:
  std::unique_ptr<T> value_;
};

/// `root [<matcher>] <path>`: sets the site root for later handlers.
struct RootHandler {
  std::string path;
};

/// `file_server [browse] { ... }`.
struct FileServerHandler {
  std::optional<std::string> root;            ///< overrides the site root
  std::vector<std::string> index = {"index.html", "index.txt"};
  std::vector<std::string> hide;              ///< paths or file names (globs) never served
  bool browse = false;
  std::optional<std::string> browse_template;
  std::vector<std::string> precompressed;     ///< "gzip", "zstd", "br" sidecars, in preference order
  std::optional<std::string> status;          ///< status code override (may be a placeholder)
  bool pass_thru = false;                     ///< on 404 call the next handler instead
  bool disable_canonical_uris = false;
};

/// `redir [<matcher>] <to> [<code>]`. `code` is "301", "302" (default), "308", ..., "401", a
/// placeholder, or "html" (200 with an HTML/JS redirect page, no Location header).
struct RedirHandler {
  std::string to;
  std::string code = "302";
};

/// `respond [<matcher>] <status>|<body> [<status>] { body; close }`.
struct RespondHandler {
  std::optional<std::string> status;  ///< absent: 200
  std::string body;
  bool close = false;
};

/// `header [<matcher>] [<field> [<value>]] { ... }`: response header operations.
struct HeaderHandler {
  std::vector<HeaderOp> ops;
  /// Apply when the response is written rather than now (`defer`, any delete, or a '>' field).
  bool deferred = false;
};

/// `encode [<matcher>] [<formats...>] { gzip [<level>]; zstd [<level>]; minimum_length <n>;
/// match { header <field> [<value>]; status <codes...> } }`.
struct EncodeHandler {
  /// Preference order: block subdirectives first, then the arguments, as Caddy's Prefer.
  std::vector<std::string> formats = {"zstd", "gzip"};
  std::vector<std::pair<std::string, std::string>> levels;  ///< format -> level ("6", "better")
  std::optional<int> minimum_length;                    ///< bytes; absent: 512
  /// The responses to compress; absent: Caddy's default list of compressible Content-Types.
  std::optional<ResponseMatcher> match;
};

/// `uri [<matcher>] strip_prefix|strip_suffix|replace|path_regexp ...`.
struct UriHandler {
  enum class Op { StripPrefix, StripSuffix, Replace, PathRegexp };
  Op op = Op::StripPrefix;
  std::string target;
  std::string replacement;  ///< Replace and PathRegexp
  int limit = 0;            ///< Replace: at most this many replacements, 0 for all
};

/// `basic_auth [<matcher>] [<hash>] [<realm>] { user hash }`.
struct BasicAuthHandler {
  std::string hash_algorithm = "bcrypt";  ///< "bcrypt" or "argon2id"
  std::string realm = "restricted";
  std::vector<std::pair<std::string, std::string>> accounts;  ///< username -> encoded hash
};

/// `rewrite [<matcher>] <to>`: changes the request URI (path and/or query) internally.
struct RewriteHandler {
  std::string uri;
};

/// `try_files <files...> { policy ... }`: rewrites to the first file that exists under the root
/// ("{path}", "{path}/index.html", "/index.php?{query}"; "=404" answers 404).
struct TryFilesHandler {
  std::vector<std::string> files;
  std::string policy = "first_exist";  ///< or smallest_size, largest_size, most_recently_modified
};

/// A Caddy directive acmetool reads but cannot run yet (`php_fastcgi`, `templates`, ...): kept
/// with its tokens so the file still validates (with a warning); `serve` refuses such a site.
struct UnsupportedHandler {
  std::vector<std::string> tokens;  ///< everything after the directive (and its matcher), as written
};

/// `invoke <name>`: runs a named route (`&(name) { ... }`).
struct InvokeHandler {
  std::string name;
};

/// `copy_response [<matcher>] [<status>] { status <status> }`, only inside reverse_proxy's
/// `handle_response`: sends the upstream's response (its fields and body) after all.
struct CopyResponseHandler {
  std::optional<std::string> status;  ///< replaces the upstream's status (may be a placeholder)
};

/// `copy_response_headers [<matcher>] { include <fields...>; exclude <fields...> }`, only inside
/// `handle_response`: sets the upstream's response fields on the response being written (all of
/// them, only `include`d ones, or all but `exclude`d ones; not both lists).
struct CopyResponseHeadersHandler {
  std::vector<std::string> include;
  std::vector<std::string> exclude;
};

struct Route;

/// `handle`, `handle_path` and `route`: a nested list of routes. `handle` and `handle_path`
/// routes are sorted by the directive order; `route` keeps the written order.
struct Subroute {
  enum class Kind { Handle, HandlePath, Route };
  Kind kind = Kind::Handle;
  /// handle_path only: the prefix removed from the request path before the nested routes run
  /// ("/api/*" strips "/api").
  std::string strip_prefix;
  std::vector<Route> routes;
};

/// What a route does. reverse_proxy is boxed: it is five times larger than the other handlers.
using Handler = std::variant<RootHandler, FileServerHandler, Boxed<ReverseProxyHandler>, RedirHandler, RespondHandler,
                             HeaderHandler, EncodeHandler, UriHandler, BasicAuthHandler, InvokeHandler, Subroute,
                             RewriteHandler, TryFilesHandler, CopyResponseHandler, CopyResponseHeadersHandler,
                             UnsupportedHandler>;

/// One handler with its matcher, in evaluation order within its list.
struct Route {
  std::string directive;  ///< "reverse_proxy", "handle_path", ...
  /// The matcher token as written: "" (none), "*", "/api/*" or "@name".
  std::string matcher_token;
  /// The conditions the request must meet; null for no matcher or "*". Routes using the same
  /// named matcher share one set.
  std::shared_ptr<const MatcherSet> matcher;
  /// Routes with the same group id in one list are mutually exclusive: only the first matching
  /// one runs (several `handle`/`handle_path` blocks, several `root` directives, every
  /// `rewrite`).
  std::optional<int> group;
  Handler handler;
  std::string file;  ///< where the directive was written
  int line = 0;
};

}  // namespace acmetool::caddyfile
