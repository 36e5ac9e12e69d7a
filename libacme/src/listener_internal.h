// What the standalone challenge solvers share: a listening socket served by one thread that drives
// every connection through poll(), and the token check every solver applies first.
#pragma once

#include <unistd.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "acmetool/pki/unique_fd.h"

namespace acmetool::acme {

/// True when `token` is base64url without padding ([A-Za-z0-9_-]+, RFC 8555 §8.1), so that it can
/// never name another path or an empty one.
bool is_token(std::string_view token);
/// Throws acme::Error unless is_token(token). `challenge` ("http-01") goes in the message.
void require_token(std::string_view challenge, std::string_view token);

using pki::UniqueFd;

/// What a connection waits for next.
enum class Want { Read, Write, Close };

/// One accepted connection's protocol, driven by the listener thread. The socket is non-blocking
/// and owned by the listener, which closes it after destroying the Connection.
class Connection {
 public:
  virtual ~Connection() = default;
  /// Does as much as the socket allows without blocking, then says what to wait for. Called first
  /// when the socket is readable, afterwards whenever it is ready for what was asked. May throw:
  /// the listener then closes this connection only.
  virtual Want advance() = 0;
};

/// Reads and discards what the peer still sends after our last byte, so that closing does not reset
/// a response the peer has not read yet (a close with unread data sends RST). Returns Want::Read
/// until the peer closes its side, then Want::Close.
Want drain(int fd);

/// Makes the Connection for a freshly accepted socket `fd` (borrowed).
using ConnectionFactory = std::function<std::unique_ptr<Connection>(int fd)>;

/// A listening socket on one address and port, served by one thread until destruction.
class Listener {
 public:
  /// Each connection is closed after this long, finished or not.
  static constexpr std::chrono::seconds kConnectionTimeout{10};
  /// Connections served at once; further ones wait in the kernel's backlog.
  static constexpr std::size_t kMaxConnections = 256;

  /// Binds `address` ("" for all addresses, else an IPv4 or IPv6 literal, brackets allowed) and
  /// `port` with SO_REUSEADDR and starts serving. `purpose` ("http-01") names the listener in
  /// errors. Throws acme::Error: "listening on 127.0.0.1:80 for http-01: Address already in use".
  Listener(std::string_view address, int port, std::string_view purpose,
           ConnectionFactory make_connection);
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  /// Stops the thread, closing every connection.
  ~Listener();

 private:
  void run(std::stop_token stop);

  UniqueFd socket_;
  UniqueFd wake_;  // an eventfd the destructor writes to end poll()
  ConnectionFactory make_connection_;
  std::jthread thread_;  // last: it runs on the members above
};

}  // namespace acmetool::acme
