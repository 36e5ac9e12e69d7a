// Outbound HTTP for libacme: the few request and response shapes an ACME client needs, an
// interface tests and callers can implement, and a libcurl implementation loaded on first use.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "acmetool/acme/error.h"

namespace acmetool::acme {

/// One header field. In responses `name` is lower-case and `value` has no leading or trailing
/// spaces or tabs; in requests both are sent as given.
struct HttpHeader {
  std::string name;
  std::string value;
};

/// What to send.
struct HttpRequest {
  /// "GET", "HEAD", "POST", or for DNS provider APIs "PUT", "PATCH", "DELETE"; anything else
  /// makes send() throw Error.
  std::string method = "GET";
  /// Absolute "https://..." or "http://..." URL; other schemes fail with HttpError.
  std::string url;
  /// Extra header fields, e.g. {"content-type", "application/jose+json"}. A field named like one
  /// the client sets (user-agent, accept-encoding) replaces it. Names and values must not contain
  /// CR or LF, and names must be non-empty without ':'; send() throws Error otherwise.
  std::vector<HttpHeader> headers;
  /// The body of a POST, PUT or PATCH, sent byte-exact with a Content-Length. Ignored otherwise.
  std::string body;
  /// Limit on the whole exchange: resolving, connecting, TLS, sending and receiving the body.
  std::chrono::milliseconds timeout{30000};
};

/// What the server answered. Every HTTP status, 1xx aside, is a response, including 3xx, 4xx
/// and 5xx.
struct HttpResponse {
  /// The final status code, e.g. 200, 301, 404.
  long status = 0;
  /// The header fields of the final response, in the order received; interim (1xx) responses'
  /// fields are not included.
  std::vector<HttpHeader> headers;
  /// The body, at most 16 MiB; empty for HEAD.
  std::string body;

  /// The value of the first field called `name` (compared case-insensitively), if any.
  std::optional<std::string> header(std::string_view name) const;
  /// The values of every field called `name` (case-insensitive), in order: e.g. the several
  /// `Link` fields of an RFC 8555 §7.1.2 response.
  std::vector<std::string> headers_named(std::string_view name) const;
};

/// How a client connects. The defaults suit a public ACME CA.
struct HttpOptions {
  /// PEM file of the roots to trust instead of the system store (e.g. pebble's listener CA);
  /// empty means the system store. Server certificates and host names are always verified.
  std::filesystem::path ca_file;
  /// The User-Agent field sent with every request (RFC 8555 §6.1 asks clients to send one).
  std::string user_agent = "acmetool";
  /// Limit on resolving and connecting (TCP and TLS handshake), within the request's timeout.
  std::chrono::milliseconds connect_timeout{10000};
};

/// `text` percent-encoded except for RFC 3986 §2.3 unreserved characters, as Go's
/// url.QueryEscape does for names and addresses: a query value ("::1" -> "%3A%3A1").
std::string url_query_value(std::string_view text);

/// A transport failure: DNS, connect, TLS, timeout, an oversized body. No HTTP response exists.
/// what() is "<METHOD> <url>: <detail>", e.g.
/// "GET https://127.0.0.1:14000/dir: SSL certificate problem: unable to get local issuer
/// certificate".
class HttpError : public Error {
 public:
  /// `message` is the whole what() text; `url` the request's URL.
  HttpError(std::string url, const std::string& message, bool timed_out = false);

  /// The URL of the request that failed.
  const std::string& url() const noexcept { return url_; }
  /// True when the request's timeout (or the connect timeout) ran out.
  bool timed_out() const noexcept { return timed_out_; }

 private:
  std::string url_;
  bool timed_out_;
};

/// Sends HTTP requests. An object is used by one thread at a time (it is not thread-safe); make
/// one per thread. Connections (and TLS sessions) are kept and reused between calls to send().
class HttpClient {
 public:
  virtual ~HttpClient() = default;

  /// Sends `request` and returns the final response, whatever its status. Never follows
  /// redirects: a 301 comes back as a 301 with its Location field. Throws HttpError when no
  /// complete response arrives (see HttpError), and Error for a malformed request (method, header
  /// field) or when libcurl refuses an option it is too old to know (7.85 or later is needed).
  virtual HttpResponse send(const HttpRequest& request) = 0;
};

/// A client backed by libcurl (OpenSSL build), which is loaded with dlopen("libcurl.so.4") the
/// first time a client is made, so that commands that never speak HTTP never pay for loading its
/// ~33 shared libraries (see bench/RESULTS.md). libcurl stays loaded until the process exits.
///
/// The client speaks only http and https, verifies TLS against `options.ca_file` or the system
/// store, asks for identity content coding, never sends "Expect: 100-continue", and never uses a
/// proxy, whatever http_proxy, https_proxy or all_proxy say: ACME traffic goes straight to the CA,
/// and tests' loopback traffic cannot leave the machine.
///
/// Safe to call from several threads. Throws Error when libcurl cannot be loaded or initialised.
std::unique_ptr<HttpClient> make_http_client(const HttpOptions& options = {});

}  // namespace acmetool::acme
