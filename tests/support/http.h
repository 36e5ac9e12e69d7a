// Minimal blocking HTTP(S) client for tests (libcurl): readiness probes and calls to the
// management APIs of pebble and pebble-challtestsrv. Never uses a proxy, so a request for
// 127.0.0.1 cannot leave the machine whatever http_proxy says.
#pragma once

#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace acmetool::test {

/// What the server answered. Any HTTP status, including 4xx and 5xx, is a response.
struct HttpResponse {
  long status = 0;
  std::string body;
};

/// A request that got no HTTP response at all: connection refused, timeout, TLS failure.
class HttpError : public std::runtime_error {
 public:
  HttpError(const std::string& message, int curl_code)
      : std::runtime_error(message), curl_code_(curl_code) {}
  /// The CURLcode, e.g. CURLE_PEER_FAILED_VERIFICATION (60) when the server's certificate is
  /// untrusted.
  int curl_code() const noexcept { return curl_code_; }

 private:
  int curl_code_;
};

/// GETs `url`. For https URLs the server certificate is verified against `ca_file` only; an empty
/// `ca_file` means libcurl's default trust store. Throws HttpError when no response arrives within
/// `timeout`. Safe to call from several threads.
HttpResponse https_get(const std::string& url, const std::filesystem::path& ca_file,
                       std::chrono::milliseconds timeout = std::chrono::seconds(5));

/// GETs a plain http URL. Throws HttpError as https_get does.
HttpResponse http_get(const std::string& url,
                      std::chrono::milliseconds timeout = std::chrono::seconds(5));

/// POSTs `body` (sent as application/json) to a plain http URL, as challtestsrv's management API
/// expects. Throws HttpError as https_get does.
HttpResponse http_post(const std::string& url, const std::string& body,
                       std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace acmetool::test
