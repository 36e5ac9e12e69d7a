// A tiny blocking HTTP/1.1 server for tests: stands in for the web services DNS providers call
// (an httpreq endpoint, acme-dns, the Cloudflare API), answers with a handler of the test's own
// and records every request for assertions. One request per connection (Connection: close).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace acmetool::test {

/// One request as the server read it.
struct RecordedRequest {
  std::string method;                          ///< "POST"
  std::string target;                          ///< "/present?x=1", as sent
  std::map<std::string, std::string> headers;  ///< names lower-cased, values trimmed
  std::string body;

  /// The value of header `name` (lower case), if sent.
  std::optional<std::string> header(const std::string& name) const;
  /// The target without its query string.
  std::string path() const { return target.substr(0, target.find('?')); }
};

/// What the handler answers.
struct CannedResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  /// Extra header fields sent as given, e.g. {"Cache-Control", "max-age=1"}.
  std::vector<std::pair<std::string, std::string>> headers;
};

/// Serves 127.0.0.1 on a port the kernel picks, on its own thread, until destroyed. Not copyable.
class TinyHttpServer {
 public:
  using Handler = std::function<CannedResponse(const RecordedRequest&)>;

  /// Binds, listens and starts serving; every request goes to `handler` (on the server thread,
  /// one at a time). A handler that throws answers 500 with the exception's text. Throws
  /// std::runtime_error when the socket cannot be set up.
  explicit TinyHttpServer(Handler handler);
  /// Stops accepting, finishes the request in progress and joins the thread.
  ~TinyHttpServer();
  TinyHttpServer(const TinyHttpServer&) = delete;
  TinyHttpServer& operator=(const TinyHttpServer&) = delete;

  int port() const { return port_; }
  /// "http://127.0.0.1:P".
  std::string url() const;
  /// Every request served so far, in order.
  std::vector<RecordedRequest> requests() const;

 private:
  void serve();
  void handle(int fd);

  Handler handler_;
  int listen_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};  // a byte written to [1] wakes serve() to stop
  int port_ = 0;
  mutable std::mutex mutex_;
  std::vector<RecordedRequest> requests_;
  std::thread thread_;
};

}  // namespace acmetool::test
