// The deadline of a connection's waits (private to libserve): TLS connections keep all their
// timeouts with it (tls_stream_internal.h), plain HTTP/1.1 connections their idle_timeout.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <utility>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

namespace acmetool::serve {

/// The deadline of a connection's waits (as beast::tcp_stream's expires_after, without a timer
/// armed and cancelled for every operation): one timer, armed when a wait begins, unless it is
/// armed already for that deadline or an earlier one. When it fires with a wait pending and the
/// deadline (possibly moved later since) has passed, the socket's operations are cancelled and
/// report a timeout; else it is armed again for the newer deadline.
class SocketDeadline : public std::enable_shared_from_this<SocketDeadline> {
 public:
  using Clock = std::chrono::steady_clock;
  explicit SocketDeadline(boost::asio::ip::tcp::socket& socket) : socket_(&socket), timer_(socket.get_executor()) {}
  void expires_after(Clock::duration limit) {
    deadline_ = Clock::now() + limit;
    expired_ = false;
    just_set_ = limit > Clock::duration::zero();
  }
  void expires_never() {
    deadline_ = Clock::time_point::max();
    expired_ = false;
    just_set_ = false;
  }
  /// A wait begins; false when the deadline has passed already (the wait is not to start).
  bool waiting() {
    if (deadline_ != Clock::time_point::max()) {
      // A deadline set in the future just before this wait (the usual order) has not passed: the
      // clock is not read again for it.
      if (!std::exchange(just_set_, false) && Clock::now() >= deadline_) {
        expired_ = true;
        return false;
      }
      if (deadline_ < armed_for_) arm();
    }
    waits_ += 1;
    return true;
  }
  void done_waiting() { waits_ -= 1; }
  /// The deadline passed with a wait pending (its operations were cancelled for it).
  bool expired() const { return expired_; }
  /// The connection is over: the socket is not to be touched any more.
  void detach() {
    socket_ = nullptr;
    timer_.cancel();
  }

 private:
  void arm() {
    armed_for_ = deadline_;
    timer_.expires_at(deadline_);  // a wait armed before, for a later deadline, is cancelled
    timer_.async_wait([self = shared_from_this(), generation = ++generation_](const boost::system::error_code& ec) {
      self->fired(ec, generation);
    });
  }
  void fired(const boost::system::error_code& ec, std::uint64_t generation) {
    if (generation != generation_) return;  // replaced by a later arming
    armed_for_ = Clock::time_point::max();
    if (ec || !socket_ || waits_ == 0 || deadline_ == Clock::time_point::max()) return;
    if (Clock::now() < deadline_) {
      arm();  // the deadline moved on since this arming
      return;
    }
    expired_ = true;
    boost::system::error_code ignored;
    socket_->cancel(ignored);
  }
  boost::asio::ip::tcp::socket* socket_;
  boost::asio::steady_timer timer_;
  Clock::time_point deadline_ = Clock::time_point::max();
  Clock::time_point armed_for_ = Clock::time_point::max();  // max: not armed
  std::uint64_t generation_ = 0;  // of the latest arming (a replaced one's firing is ignored)
  int waits_ = 0;                 // pending waits (a read and a write may wait at once)
  bool expired_ = false;
  bool just_set_ = false;  // expires_after ran with a positive limit and no wait began since
};

/// Detaches a deadline when the connection's session ends, however it ends.
struct SocketDeadlineGuard {
  std::shared_ptr<SocketDeadline> deadline;
  ~SocketDeadlineGuard() {
    if (deadline) deadline->detach();
  }
};

}  // namespace acmetool::serve
