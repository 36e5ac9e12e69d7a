// The connections one UpstreamConnections keeps (see upstream_client.h), private to libserve:
// idle HTTP/1.1 connections per upstream, one HTTP/2 session per upstream, the addresses names
// resolved to, and the dialing of new connections (TCP or Unix, TLS on top).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/generic/stream_protocol.hpp>

#include "acmetool/serve/upstream_client.h"
#include "upstream_h2.h"

namespace acmetool::serve {

// "host:port" / "[v6]:port" / "unix//path" → (host, port) or the socket path.
struct DialAddress {
  bool unix_socket = false;
  std::string host;  // or the socket path
  std::string port;
};

/// The parts of `dial`; nullopt when it is not an address.
std::optional<DialAddress> parse_dial(std::string_view dial);

/// The idle HTTP/1.1 connections, HTTP/2 sessions and resolved addresses of one
/// UpstreamConnections, shared with its bodies (a body still being read when the
/// UpstreamConnections goes finds the pool gone or not). Not thread-safe: one io thread.
class UpstreamIdlePool {
 public:
  using Clock = std::chrono::steady_clock;
  using Endpoint = boost::asio::generic::stream_protocol::endpoint;

  UpstreamIdlePool(boost::asio::any_io_executor executor, UpstreamClientOptions options)
      : executor_(std::move(executor)), options_(options) {
    if (options_.chunk_bytes == 0) options_.chunk_bytes = 16 * 1024;
  }
  ~UpstreamIdlePool() {
    for (auto& [dial, session] : h2_) h2_close(*session);
  }
  UpstreamIdlePool(const UpstreamIdlePool&) = delete;
  UpstreamIdlePool& operator=(const UpstreamIdlePool&) = delete;

  // The HTTP/2 connection to `dial` if there is one that takes new requests (and has not been
  // idle longer than idle_timeout).
  std::shared_ptr<UpstreamH2Session> h2(const std::string& dial) {
    const auto it = h2_.find(dial);
    if (it == h2_.end()) return nullptr;
    if (h2_usable(*it->second) && !h2_idle_longer(*it->second, options_.idle_timeout)) return it->second;
    h2_close(*it->second);
    h2_.erase(it);
    return nullptr;
  }
  // Keeps `session` for the next requests to `dial`; without keep-alive it ends after this one.
  void set_h2(const std::string& dial, std::shared_ptr<UpstreamH2Session> session) {
    if (options_.max_idle_per_upstream == 0) {
      h2_close_when_idle(*session);
      return;
    }
    h2_[dial] = std::move(session);
  }

  const boost::asio::any_io_executor& executor() const { return executor_; }
  const UpstreamClientOptions& options() const { return options_; }

  // The newest idle connection to `dial` still within idle_timeout, if any.
  std::unique_ptr<UpstreamClientConnection> take(const std::string& dial) {
    const auto it = idle_.find(dial);
    if (it == idle_.end()) return nullptr;
    auto& list = it->second;
    const auto now = Clock::now();
    while (!list.empty()) {
      auto conn = std::move(list.back());
      list.pop_back();
      if (!expired(*conn, now) && conn->stream.socket().is_open()) return conn;
    }
    return nullptr;
  }

  void give_back(const std::string& dial, std::unique_ptr<UpstreamClientConnection> conn) {
    if (options_.max_idle_per_upstream == 0) return;
    conn->idle_since = Clock::now();
    conn->stream.expires_never();
    auto& list = idle_[dial];
    if (list.size() >= options_.max_idle_per_upstream) list.pop_front();  // the oldest
    list.push_back(std::move(conn));
  }

  std::size_t idle_count(std::string_view dial) const {
    const auto it = idle_.find(std::string(dial));
    return it == idle_.end() ? 0 : it->second.size();
  }

  std::size_t prune() {
    std::size_t closed = 0;
    const auto now = Clock::now();
    for (auto it = h2_.begin(); it != h2_.end();) {
      if (h2_usable(*it->second) && !h2_idle_longer(*it->second, options_.idle_timeout)) {
        ++it;
        continue;
      }
      h2_close(*it->second);
      it = h2_.erase(it);
      ++closed;
    }
    for (auto it = idle_.begin(); it != idle_.end();) {
      auto& list = it->second;
      while (!list.empty() && expired(*list.front(), now)) {  // front is the oldest
        list.pop_front();
        ++closed;
      }
      it = list.empty() ? idle_.erase(it) : std::next(it);
    }
    return closed;
  }

  // Endpoints of `dial`: resolved once (synchronous getaddrinfo), cached until forget().
  std::vector<Endpoint> endpoints(const std::string& dial, const DialAddress& address, std::string& error);
  void forget(const std::string& dial) { resolved_.erase(dial); }

  std::uint64_t opened = 0;

 private:
  bool expired(const UpstreamClientConnection& conn, Clock::time_point now) const {
    return options_.idle_timeout.count() > 0 && now - conn.idle_since >= options_.idle_timeout;
  }

  boost::asio::any_io_executor executor_;
  UpstreamClientOptions options_;
  std::map<std::string, std::deque<std::unique_ptr<UpstreamClientConnection>>, std::less<>> idle_;
  std::map<std::string, std::vector<Endpoint>, std::less<>> resolved_;
  std::map<std::string, std::shared_ptr<UpstreamH2Session>, std::less<>> h2_;  // one per upstream
};

/// A new connection to `dial` (TLS handshake done for TLS options), trying each address in turn;
/// nullptr and `error` (one line) on failure. Counts it in pool.opened.
boost::asio::awaitable<std::unique_ptr<UpstreamClientConnection>> dial_new(UpstreamIdlePool& pool,
                                                                          const std::string& dial,
                                                                          std::string& error);

}  // namespace acmetool::serve
