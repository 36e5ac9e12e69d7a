// The server's TLS connections: OpenSSL on the socket through a BIO of ours (tls_stream_internal.h).
#include "tls_stream_internal.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace acmetool::serve {

namespace asio = boost::asio;
using error_code = boost::system::error_code;

// ---- TlsStream ----

TlsStream::TlsStream(asio::ip::tcp::socket socket, asio::ssl::context& context)
    : socket_(std::move(socket)), deadline_(std::make_shared<SocketDeadline>(socket_)) {
  error_code ignored;
  socket_.native_non_blocking(true, ignored);  // OpenSSL's reads and writes must not block the thread
  ssl_ = SSL_new(context.native_handle());
  if (!ssl_) throw std::bad_alloc();
  BIO* bio = BIO_new(bio_method());
  if (!bio) {
    SSL_free(ssl_);
    throw std::bad_alloc();
  }
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);
  SSL_set_accept_state(ssl_);
  SSL_set_mode(ssl_, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // OpenSSL takes what the input buffer holds at once, not a record header and then its body.
  SSL_set_read_ahead(ssl_, 1);
}

TlsStream::~TlsStream() {
  deadline_->detach();
  SSL_free(ssl_);  // and the BIO
}

// The BIO between OpenSSL and the socket: reads with recv(2), the handshake's first bytes first;
// writes with send(2), and what the socket does not take now is kept, in order, in pending_.
// A write never fails for want of room, so SSL_write always takes a whole buffer.
BIO_METHOD* TlsStream::bio_method() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "acmetool socket");
    BIO_meth_set_create(m, bio_create);
    BIO_meth_set_read(m, bio_read);
    BIO_meth_set_write(m, bio_write);
    BIO_meth_set_ctrl(m, bio_ctrl);
    return m;
  }();
  return method;
}

int TlsStream::bio_create(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

int TlsStream::bio_read(BIO* bio, char* data, int size) {
  auto& self = *static_cast<TlsStream*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  const auto take = [&](const char* from, std::size_t& at, std::size_t end) {
    const std::size_t n = std::min(static_cast<std::size_t>(size), end - at);
    std::memcpy(data, from + at, n);
    at += n;
    return static_cast<int>(n);
  };
  if (self.received_at_ < self.received_.size()) return take(self.received_.data(), self.received_at_, self.received_.size());
  if (self.input_at_ < self.input_end_) return take(self.input_.get(), self.input_at_, self.input_end_);
  if (self.input_ended_) return 0;
  if (self.socket_error_ == 0) BIO_set_retry_read(bio);  // the caller reads the socket (fill)
  return -1;
}

int TlsStream::bio_write(BIO* bio, const char* data, int size) {
  auto& self = *static_cast<TlsStream*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  if (self.socket_error_ != 0) return -1;
  std::size_t sent = 0;
  if (self.pending_.empty()) {  // else these bytes go after the pending ones
    const ssize_t n = ::send(self.socket_.native_handle(), data, static_cast<std::size_t>(size), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) {
      sent = static_cast<std::size_t>(n);
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      self.socket_error_ = errno;
      return -1;
    }
  }
  self.pending_.append(data + sent, static_cast<std::size_t>(size) - sent);
  return size;
}

long TlsStream::bio_ctrl(BIO*, int command, long, void*) {
  return command == BIO_CTRL_FLUSH ? 1 : 0;  // writes go out as they are made; nothing else applies
}

bool TlsStream::flush_now() {
  while (!pending_.empty()) {
    if (socket_error_ != 0) return false;
    const ssize_t n = ::send(socket_.native_handle(), pending_.data(), pending_.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) socket_error_ = errno;
      return false;
    }
    pending_.erase(0, static_cast<std::size_t>(n));
  }
  return true;
}

error_code TlsStream::socket_failure() const { return error_code(socket_error_, boost::system::system_category()); }

// As Asio's SSL stream reports them: a close (close_notify, or the socket's end, which
// SSL_OP_IGNORE_UNEXPECTED_EOF makes the same) is eof, a socket error its errno, and OpenSSL's
// own errors are in Asio's SSL category. The thread's error queue is left empty.
error_code TlsStream::failure(int ssl_error) {
  if (ssl_error == SSL_ERROR_ZERO_RETURN) return asio::error::eof;
  fatal_ = true;
  if (socket_error_ != 0) {
    ERR_clear_error();
    return socket_failure();
  }
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return asio::error::eof;  // SSL_ERROR_SYSCALL without an errno: the client left
  return error_code(static_cast<int>(code), asio::error::get_ssl_category());
}

// OpenSSL's error queue must be empty before each call, so that SSL_get_error does not take an
// error left on the thread's queue by other code for this call's. ERR_clear_error clears all its
// slots, one by one, every time (~270 instructions); peeking first costs a tenth of that.
void TlsStream::clear_errors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

TlsStream::Result TlsStream::read_now(asio::mutable_buffer buffer) {
  clear_errors();
  std::size_t n = 0;
  const int ok = SSL_read_ex(ssl_, buffer.data(), buffer.size(), &n);
  if (ok == 1) return Result{Step::Done, n};
  const int error = SSL_get_error(ssl_, ok);
  if (error == SSL_ERROR_WANT_READ) return Result{Step::WantRead};
  return Result{Step::Failed, 0, failure(error)};
}

TlsStream::Result TlsStream::write_step(asio::const_buffer buffer) {
  clear_errors();
  std::size_t n = 0;
  const int ok = SSL_write_ex(ssl_, buffer.data(), buffer.size(), &n);
  if (ok == 1) return Result{Step::Done, n};
  return Result{Step::Failed, 0, failure(SSL_get_error(ssl_, ok))};
}

std::size_t TlsStream::write_now(std::string_view data) {
  if (data.empty()) return 0;
  const Result result = write_step(asio::buffer(data));
  return result.step == Step::Done ? result.bytes : 0;
}

asio::mutable_buffer TlsStream::input_space() {
  if (!input_) input_.reset(new char[kInput]);
  input_at_ = input_end_ = 0;
  return asio::buffer(input_.get(), kInput);
}

error_code TlsStream::filled(const error_code& ec, std::size_t bytes) {
  input_end_ = bytes;
  if (!ec) return ec;
  if (ec == asio::error::operation_aborted) return ec;
  if (ec == asio::error::eof) {
    input_ended_ = true;
  } else {
    socket_error_ = ec.value();
  }
  return error_code();
}

asio::awaitable<error_code> TlsStream::fill() {
  if (!deadline_->waiting()) co_return boost::beast::error::timeout;
  auto [ec, n] = co_await socket_.async_read_some(input_space(), asio::as_tuple(asio::use_awaitable));
  deadline_->done_waiting();
  const error_code failed = filled(ec, n);
  co_return failed ? wait_error(failed) : failed;
}

asio::awaitable<error_code> TlsStream::wait_for(asio::socket_base::wait_type type) {
  if (!deadline_->waiting()) co_return boost::beast::error::timeout;
  auto [ec] = co_await socket_.async_wait(type, asio::as_tuple(asio::use_awaitable));
  deadline_->done_waiting();
  co_return ec ? wait_error(ec) : ec;
}

asio::awaitable<error_code> TlsStream::handshake(std::span<const std::uint8_t> received) {
  received_.assign(received.begin(), received.end());
  for (;;) {
    clear_errors();
    const int ok = SSL_do_handshake(ssl_);
    const int error = ok == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl_, ok);
    // What OpenSSL wrote (its flight, or an alert) goes out before anything else.
    while (!flush_now()) {
      if (socket_error_ != 0) co_return socket_failure();
      const error_code ec = co_await wait_for(asio::socket_base::wait_write);
      if (ec) co_return ec;
    }
    if (error == SSL_ERROR_NONE) {
      received_ = std::string();
      co_return error_code();
    }
    if (error != SSL_ERROR_WANT_READ) co_return failure(error);
    const error_code ec = co_await fill();
    if (ec) co_return ec;
  }
}

asio::awaitable<void> TlsStream::shutdown(std::chrono::steady_clock::duration limit) {
  if (fatal_ || socket_error_ != 0) co_return;
  deadline_->expires_after(limit);
  clear_errors();
  if (SSL_shutdown(ssl_) < 0) {  // close_notify written (0), or both sent and received (1)
    ERR_clear_error();
    co_return;
  }
  while (!flush_now()) {
    if (socket_error_ != 0) co_return;
    const error_code ec = co_await wait_for(asio::socket_base::wait_write);
    if (ec) co_return;
  }
  // The client's close_notify, or its close; what it sent before is read and dropped.
  char scratch[4096];
  for (;;) {
    const Result result = read_now(asio::buffer(scratch));
    if (result.step == Step::Failed) co_return;
    if (result.step == Step::Done) continue;
    const error_code ec = co_await fill();
    if (ec) co_return;
  }
}

}  // namespace acmetool::serve
