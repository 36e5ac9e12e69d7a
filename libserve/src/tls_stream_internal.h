// The server's TLS connections (private to libserve): OpenSSL reads and writes the socket itself,
// through a BIO of ours, as nginx has it, instead of through Asio's SSL stream, which copies every
// record through a BIO pair and completes every write asynchronously (posted behind every other
// ready handler). A response the socket takes at once costs one SSL_write and one send(2); only
// when the socket would block does an asynchronous wait follow. Timeouts are kept by one timer a
// connection, armed only while a wait is pending (see SocketDeadline).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/error.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "socket_deadline_internal.h"

namespace acmetool::serve {

/// A server-side TLS connection over a TCP socket. An Asio AsyncStream (so Beast reads and writes
/// it), with the lowest-layer calls our sessions use (expires_after, expires_never, socket), and
/// a synchronous write for the common case. All of it on the connection's one thread.
class TlsStream {
 public:
  using executor_type = boost::asio::any_io_executor;
  using error_code = boost::system::error_code;

  TlsStream(boost::asio::ip::tcp::socket socket, boost::asio::ssl::context& context);
  ~TlsStream();
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  executor_type get_executor() { return socket_.get_executor(); }
  SSL* native_handle() const { return ssl_; }
  boost::asio::ip::tcp::socket& socket() { return socket_; }
  void expires_after(std::chrono::steady_clock::duration limit) { deadline_->expires_after(limit); }
  void expires_never() { deadline_->expires_never(); }

  /// The server handshake, the bytes already read from the client (its ClientHello) first.
  boost::asio::awaitable<error_code> handshake(std::span<const std::uint8_t> received);
  /// Sends close_notify and waits (within `limit`) for the client's, or for it to close.
  boost::asio::awaitable<void> shutdown(std::chrono::steady_clock::duration limit);

  /// Encrypts `data` and sends what the socket takes now; returns the bytes of `data` consumed:
  /// all of them unless the connection failed. Records the socket did not take are pending,
  /// sent by the next write (an asio::async_write of nothing sends them too).
  std::size_t write_now(std::string_view data);
  /// No encrypted bytes are waiting for the socket.
  bool flushed() const { return pending_.empty(); }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return boost::asio::async_compose<Token, void(error_code, std::size_t)>(
        Transfer<boost::asio::mutable_buffer>{*this, first_of<boost::asio::mutable_buffer>(buffers)}, token, socket_);
  }
  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return boost::asio::async_compose<Token, void(error_code, std::size_t)>(
        Transfer<boost::asio::const_buffer>{*this, first_of<boost::asio::const_buffer>(buffers)}, token, socket_);
  }

 private:
  // What an SSL_read or SSL_write came to.
  enum class Step { Done, WantRead, Failed };
  struct Result {
    Step step = Step::Done;
    std::size_t bytes = 0;
    error_code ec;
  };
  Result read_now(boost::asio::mutable_buffer buffer);
  Result write_step(boost::asio::const_buffer buffer);
  error_code failure(int ssl_error);
  static void clear_errors();
  // Sends the pending records the socket takes now; false when some remain or the socket failed.
  bool flush_now();
  error_code socket_failure() const;
  error_code wait_error(const error_code& ec) const {
    return deadline_->expired() ? error_code(boost::beast::error::timeout) : ec;
  }
  boost::asio::awaitable<error_code> wait_for(boost::asio::socket_base::wait_type type);
  // The input buffer, empty (OpenSSL has taken all of it when it wants more), as free space.
  boost::asio::mutable_buffer input_space();
  // A read into input_space() is done: its bytes are the input; the socket's end or error is
  // kept for OpenSSL to meet. Returns the error to report at once: a cancellation.
  error_code filled(const error_code& ec, std::size_t bytes);
  boost::asio::awaitable<error_code> fill();

  // The first non-empty buffer of a sequence: what one SSL_read or SSL_write takes (as Asio's
  // SSL stream does).
  template <class Buffer, class Buffers>
  static Buffer first_of(const Buffers& buffers) {
    for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers); ++it) {
      Buffer buffer(*it);
      if (buffer.size() > 0) return buffer;
    }
    return Buffer();
  }

  // async_read_some and async_write_some. A read is SSL_read until it gives bytes, waiting for
  // the socket between tries. A write sends the records still pending, then SSL_write's, and is
  // done when the socket has taken them all. The completion is never called from within the
  // initiating call (Asio's rule): an operation done at once posts its completion.
  template <class Buffer>
  struct Transfer {
    static constexpr bool kRead = std::is_same_v<Buffer, boost::asio::mutable_buffer>;
    TlsStream& stream;
    Buffer buffer;
    Result result{};
    bool encrypted = false;   // a write: SSL_write has taken the bytes
    bool waiting = false;     // a wait for the socket is pending
    bool filling = false;     // that wait is a read into the input buffer
    bool initiating = true;   // still within async_read_some or async_write_some
    bool posted = false;      // done, the completion posted

    template <class Self>
    void operator()(Self& self, error_code ec = {}, std::size_t received = 0) {
      if (posted) return self.complete(result.ec, result.bytes);
      if (waiting) {
        waiting = false;
        stream.deadline_->done_waiting();
        if (filling) ec = stream.filled(ec, received);
        filling = false;
        if (ec) return finish(self, Result{Step::Failed, 0, stream.wait_error(ec)});
      }
      if constexpr (kRead) {
        if (buffer.size() == 0) return finish(self, Result{});
        stream.flush_now();  // records SSL_read may have written (a key update's answer)
        result = stream.read_now(buffer);
        if (result.step != Step::WantRead) return finish(self, result);
        if (!stream.deadline_->waiting()) return finish(self, Result{Step::Failed, 0, boost::beast::error::timeout});
        waiting = filling = true;
        initiating = false;
        stream.socket_.async_read_some(stream.input_space(), std::move(self));
      } else {
        for (;;) {
          if (!stream.flush_now()) {
            if (stream.socket_error_ != 0) return finish(self, Result{Step::Failed, 0, stream.socket_failure()});
            if (!stream.deadline_->waiting()) return finish(self, Result{Step::Failed, 0, boost::beast::error::timeout});
            waiting = true;
            initiating = false;
            return stream.socket_.async_wait(boost::asio::socket_base::wait_write, std::move(self));
          }
          if (encrypted) return finish(self, result);
          encrypted = true;
          if (buffer.size() > 0) result = stream.write_step(buffer);
          if (result.step == Step::Failed) return finish(self, result);
        }
      }
    }
    template <class Self>
    void finish(Self& self, Result done) {
      result = done;
      if (!initiating) return self.complete(result.ec, result.bytes);
      posted = true;
      boost::asio::post(stream.socket_.get_executor(), std::move(self));
    }
  };

  static BIO_METHOD* bio_method();
  static int bio_create(BIO* bio);
  static int bio_read(BIO* bio, char* data, int size);
  static int bio_write(BIO* bio, const char* data, int size);
  static long bio_ctrl(BIO* bio, int command, long, void*);

  boost::asio::ip::tcp::socket socket_;
  SSL* ssl_ = nullptr;
  bool fatal_ = false;  // OpenSSL reported a fatal error: no close_notify then
  std::shared_ptr<SocketDeadline> deadline_;
  std::string received_;                     // the handshake's first bytes, read before OpenSSL had the socket
  std::size_t received_at_ = 0;              // what of them OpenSSL has read
  std::string pending_;                      // records written by OpenSSL that the socket has not taken
  // What the socket gave, for OpenSSL: read by Asio (a recv(2) that finds the socket empty is
  // followed by the reactor's wait, with no epoll_ctl(2), which a wait alone would cost).
  static constexpr std::size_t kInput = 17 * 1024;  // a whole record
  std::unique_ptr<char[]> input_;
  std::size_t input_at_ = 0, input_end_ = 0;
  bool input_ended_ = false;                 // the client closed its side
  int socket_error_ = 0;                     // errno of a failed send or recv
};

}  // namespace acmetool::serve
