// An HTTP/1.1 upstream for reverse_proxy tests: serves 127.0.0.1 with keep-alive, one thread per
// connection, records every request exactly as it arrived (field lines in order and original
// case, the body decoded from Content-Length or chunked framing) and lets the test's handler
// answer through an Exchange: a whole response, raw bytes, pauses, a close.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace acmetool::test {

/// One request as the upstream read it.
struct UpstreamRecord {
  std::string method;  ///< "GET"
  std::string target;  ///< "/path?x=1", as sent
  /// Field lines in order, names in their original case, values trimmed.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;    ///< decoded (chunked framing removed)
  int connection = 0;  ///< which connection carried it: 0 for the first accepted, and so on

  /// The first value of field `name` (any case), if sent.
  std::optional<std::string> header(std::string_view name) const;
  /// How many field lines named `name` (any case) were sent.
  int count(std::string_view name) const;
};

/// The response side of one request, handed to the handler. Writes go straight to the socket
/// (no buffering), so a handler can send part of a response, pause and send the rest.
class Exchange {
 public:
  Exchange(int fd, const UpstreamRecord& request, const std::atomic<bool>& stopping)
      : fd_(fd), request_(request), stopping_(stopping) {}

  const UpstreamRecord& request() const { return request_; }
  /// Writes a whole response with Content-Length (and no body to a HEAD). `headers` are sent
  /// as given, after Content-Length.
  void respond(int status, std::string_view body = {},
               const std::vector<std::pair<std::string, std::string>>& headers = {});
  /// Writes `bytes` as they are. A peer that has gone makes this (and later writes) a no-op.
  void send_raw(std::string_view bytes);
  /// Reads the bytes the peer sends next (after a 101, the upgraded protocol's): waits up to
  /// `limit` for some; "" when none came, the peer closed, or the upstream is being destroyed.
  std::string read_raw(std::chrono::milliseconds limit);
  /// Sleeps `duration`, or less when the upstream is being destroyed.
  void sleep_for(std::chrono::milliseconds duration);
  /// Closes the connection once the handler returns (no further request is read on it).
  void close() { close_ = true; }

  bool wrote() const { return wrote_; }
  bool closing() const { return close_; }

 private:
  int fd_;
  const UpstreamRecord& request_;
  const std::atomic<bool>& stopping_;
  bool wrote_ = false;
  bool close_ = false;
  bool broken_ = false;
};

/// Serves 127.0.0.1 on a port the kernel picks until destroyed. Not copyable.
class TestUpstream {
 public:
  /// Called on the connection's thread for every request; several connections may call it at
  /// once. A handler that writes nothing answers 200 with an empty body; one that throws closes
  /// the connection.
  using Handler = std::function<void(Exchange&)>;

  /// Binds, listens and starts accepting. Throws std::runtime_error when the socket cannot be
  /// set up.
  explicit TestUpstream(Handler handler);
  /// Stops accepting, closes every connection (a handler's sleep_for ends early) and joins all
  /// threads; takes at most a few tens of milliseconds after the handlers return.
  ~TestUpstream();
  TestUpstream(const TestUpstream&) = delete;
  TestUpstream& operator=(const TestUpstream&) = delete;

  int port() const { return port_; }
  /// "127.0.0.1:P", as reverse_proxy's upstream address.
  std::string dial() const;
  /// Every request read so far, in the order they arrived.
  std::vector<UpstreamRecord> requests() const;
  /// How many connections were accepted so far.
  int connections() const { return connections_; }

 private:
  void accept_loop();
  void serve_connection(int fd, int index);

  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  mutable std::mutex mutex_;  // guards requests_ and workers_
  std::vector<UpstreamRecord> requests_;
  std::vector<std::thread> workers_;
  std::thread acceptor_;
};

}  // namespace acmetool::test
