// The upstream client (see upstream_client.h): HTTP/1.1 exchanges, and the choice of HTTP/2
// (upstream_h2.cpp) when the options allow it; connections are dialed and kept by
// upstream_pool.cpp. Every connection, TCP or Unix, is a beast::basic_stream over Asio's generic
// stream protocol, so one code path and Beast's own timeouts (expires_after →
// beast::error::timeout) serve both.
#include "acmetool/serve/upstream_client.h"

#include "ascii_internal.h"
#include "http1_parse_internal.h"
#include "send_now_internal.h"
#include "upstream_h2.h"
#include "upstream_pool.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <tuple>
#include <limits>
#include <stdexcept>
#include <utility>

#include <boost/asio.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace acmetool::serve {

using namespace std::string_view_literals;  // appends of literals with their sizes known (no strlen)

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
using Clock = std::chrono::steady_clock;
using Stream = UpstreamStream;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

using serve::expire;  // upstream_h2.h's, beside the Deadline form below

// When the next read or write on a connection gives up: the earlier of an overall deadline
// (response_header_timeout's) and a limit per operation (read_timeout, write_timeout), with
// which of the two it is, so that an expiry can be reported as the right one.
struct Deadline {
  std::optional<Clock::time_point> at;
  bool per_operation = false;  // `at` is the read_timeout or write_timeout
};

Deadline earliest(std::optional<Clock::time_point> overall, std::chrono::milliseconds per_operation) {
  Deadline deadline{overall, false};
  if (per_operation.count() > 0) {
    const Clock::time_point at = Clock::now() + per_operation;
    if (!deadline.at || at < *deadline.at) deadline = Deadline{at, true};
  }
  return deadline;
}

void expire(Stream& stream, const Deadline& deadline) {
  if (deadline.at) {
    stream.expires_at(*deadline.at);
  } else {
    stream.expires_never();
  }
}

std::optional<Clock::time_point> deadline_after(std::chrono::milliseconds limit) {
  if (limit.count() <= 0) return std::nullopt;
  return Clock::now() + limit;
}

std::string millis(std::chrono::milliseconds d) { return std::to_string(d.count()) + "ms"; }

bool is_field(std::string_view a, std::string_view b) { return beast::iequals(a, b); }

}  // namespace

struct UpstreamExchange {
  std::weak_ptr<UpstreamIdlePool> pool;
  std::string dial;
  std::unique_ptr<UpstreamClientConnection> conn;
  http1::Framing framing;      // of the response, once its head is read
  http1::BodyDecoder decoder;  // its body
  bool reusable = true;  // the request did not ask to close
  std::size_t chunk_bytes = 16 * 1024;
  std::chrono::milliseconds read_timeout{0};   // per read of the body or tunnel; zero: none
  std::chrono::milliseconds write_timeout{0};  // per tunnel write; zero: none

  std::string_view unread() const {
    return {static_cast<const char*>(conn->buffer.data().data()), conn->buffer.size()};
  }

  // The response is complete: pool the connection when both sides allow keep-alive.
  void finish() {
    if (conn && reusable && decoder.done() && framing.keep_alive && conn->buffer.size() == 0) {
      if (const auto p = pool.lock()) p->give_back(dial, std::move(conn));
    }
    conn.reset();
  }
};

namespace {

// A read of what the connection has into its buffer's free space, within `deadline` (none:
// straight from a plain socket, without Beast's stream layers: its composed operation, transfer
// and rate policy). Not a coroutine, so that a read costs no frame of its own: the caller awaits
// it, then commits the bytes read (conn.buffer.commit(n)).
awaitable<std::tuple<boost::system::error_code, std::size_t>> read_some(UpstreamClientConnection& conn,
                                                                       const Deadline& deadline) {
  const auto room = conn.buffer.prepare(beast::read_size_or_throw(conn.buffer, 65536));
  if (!conn.tls && !deadline.at) return conn.stream.socket().async_read_some(room, kTuple);
  expire(conn.stream, deadline);
  return conn.tls ? conn.tls->async_read_some(room, kTuple) : conn.stream.async_read_some(room, kTuple);
}

}  // namespace

// ---- UpstreamBody ----

UpstreamBody::UpstreamBody() = default;
UpstreamBody::UpstreamBody(UpstreamBody&&) noexcept = default;
UpstreamBody& UpstreamBody::operator=(UpstreamBody&&) noexcept = default;
UpstreamBody::~UpstreamBody() = default;

const HeaderFields& UpstreamBody::trailers() const {
  static const HeaderFields kNone;
  return trailers_ ? *trailers_ : kNone;
}

awaitable<std::optional<std::string>> UpstreamBody::next_chunk() {
  std::string piece;
  if (!co_await next_chunk(piece)) co_return std::nullopt;
  co_return piece;
}

awaitable<bool> UpstreamBody::next_chunk(std::string& piece) {
  if (h2_) {
    std::optional<std::string> next = co_await h2_next_chunk(*h2_, error_);
    if (!next) {
      if (!error_) {
        HeaderFields trailers = h2_take_trailers(*h2_);
        if (!trailers.empty()) trailers_ = std::make_unique<HeaderFields>(std::move(trailers));
      }
      h2_.reset();
      co_return false;
    }
    piece = std::move(*next);
    co_return true;
  }
  while (exchange_) {
    const Now now = next_chunk_now(piece);
    if (now != Now::Wait) co_return now == Now::Piece;
    UpstreamExchange& ex = *exchange_;
    const Deadline deadline{deadline_after(ex.read_timeout), true};
    boost::system::error_code ec;
    std::size_t n = 0;
    std::tie(ec, n) = co_await read_some(*ex.conn, deadline);
    ex.conn->buffer.commit(n);
    if (ec == asio::error::eof) {
      ex.decoder.end_of_input();  // the end of a body read until close, else a failure
    } else if (ec) {
      const std::string why = ec == beast::error::timeout ? "read_timeout (" + millis(ex.read_timeout) + ") passed"
                                                          : ec.message();
      error_ = UpstreamError{UpstreamFailure::Failed, "reading response body from " + ex.dial + ": " + why};
      exchange_.reset();
    }
  }
  co_return false;
}

UpstreamBody::Now UpstreamBody::next_chunk_now(std::string& piece) {
  if (!exchange_) return h2_ ? Now::Wait : Now::End;
  piece.clear();
  UpstreamExchange& ex = *exchange_;
  http1::BodyDecoder& decoder = ex.decoder;
  if (ex.conn->buffer.size() > 0) ex.conn->buffer.consume(decoder.decode(ex.unread(), piece, ex.chunk_bytes));
  if (decoder.done()) {
    if (!decoder.trailers().empty()) trailers_ = std::make_unique<HeaderFields>(std::move(decoder.trailers()));
    ex.finish();
    exchange_.reset();
    return piece.empty() ? Now::End : Now::Piece;
  }
  if (!piece.empty()) return Now::Piece;
  if (decoder.failed()) {
    error_ = UpstreamError{UpstreamFailure::Failed, "reading response body from " + ex.dial + ": " + decoder.error()};
    exchange_.reset();
    return Now::End;
  }
  return Now::Wait;
}

// ---- UpstreamTunnel ----

UpstreamTunnel::UpstreamTunnel(std::unique_ptr<UpstreamExchange> exchange) : exchange_(std::move(exchange)) {
  exchange_->reusable = false;
}
UpstreamTunnel::UpstreamTunnel(UpstreamTunnel&&) noexcept = default;
UpstreamTunnel& UpstreamTunnel::operator=(UpstreamTunnel&&) noexcept = default;
UpstreamTunnel::~UpstreamTunnel() = default;

awaitable<std::optional<std::string>> UpstreamTunnel::read() {
  UpstreamExchange& ex = *exchange_;
  if (ex.conn->buffer.size() > 0) {  // bytes that came right after the 101 head
    std::string early(static_cast<const char*>(ex.conn->buffer.data().data()), ex.conn->buffer.size());
    ex.conn->buffer.consume(ex.conn->buffer.size());
    co_return early;
  }
  std::string piece(ex.chunk_bytes, '\0');  // read into, then cut to what came
  // The tunnel's two directions run at once: each sets only its own timer (Beast leaves the
  // pending operation's alone).
  expire(ex.conn->stream, ex.read_timeout);
  auto read = ex.conn->tls ? ex.conn->tls->async_read_some(asio::buffer(piece), kTuple)
                           : ex.conn->stream.async_read_some(asio::buffer(piece), kTuple);
  auto [ec, n] = co_await std::move(read);
  if (ec || n == 0) co_return std::nullopt;
  piece.resize(n);
  co_return piece;
}

awaitable<bool> UpstreamTunnel::write(std::string data) {
  UpstreamExchange& ex = *exchange_;
  if (!ex.conn) co_return false;
  expire(ex.conn->stream, ex.write_timeout);
  auto write = ex.conn->tls ? asio::async_write(*ex.conn->tls, asio::buffer(data), kTuple)
                            : asio::async_write(ex.conn->stream, asio::buffer(data), kTuple);
  auto [ec, n] = co_await std::move(write);
  (void)n;
  co_return !ec;
}

void UpstreamTunnel::shutdown_send() {
  if (!exchange_->conn) return;
  boost::system::error_code ignored;
  exchange_->conn->stream.socket().shutdown(asio::socket_base::shutdown_send, ignored);
}

void UpstreamTunnel::cancel() {
  if (!exchange_->conn) return;
  boost::system::error_code ignored;
  exchange_->conn->stream.socket().cancel(ignored);
}

// ---- UpstreamConnections ----

UpstreamConnections::UpstreamConnections(asio::any_io_executor executor, UpstreamClientOptions options)
    : pool_(std::make_shared<UpstreamIdlePool>(std::move(executor), options)) {}
UpstreamConnections::~UpstreamConnections() = default;

std::size_t UpstreamConnections::idle_count(std::string_view dial) const { return pool_->idle_count(dial); }
std::size_t UpstreamConnections::prune_idle() { return pool_->prune(); }
std::uint64_t UpstreamConnections::connections_opened() const { return pool_->opened; }

namespace {

// The pieces of a streamed request body, framed as the head said, each written within
// `write_timeout` (waiting for the client's next piece does not count); the first write error.
template <class S>
awaitable<boost::system::error_code> send_body(S& stream, Stream& lowest, std::chrono::milliseconds write_timeout,
                                               UpstreamBodySource& source, bool chunked) {
  for (;;) {
    std::optional<std::string> piece = co_await source.next();
    std::string out;
    if (piece && chunked) {
      char size[20];
      const auto [end, ec] = std::to_chars(size, size + sizeof size, piece->size(), 16);
      (void)ec;
      out.append(size, end).append("\r\n"sv).append(*piece).append("\r\n"sv);
    } else if (piece) {
      out = std::move(*piece);
    } else if (chunked && !source.failed()) {
      out = "0\r\n\r\n";
    }
    if (!out.empty()) {
      expire(lowest, write_timeout);
      auto [ec, n] = co_await asio::async_write(stream, asio::buffer(out), kTuple);
      (void)n;
      if (ec) co_return ec;
    }
    if (!piece) co_return boost::system::error_code{};
  }
}

// A request's head as Beast's serializer would write it, built straight into one string (one
// allocation, one iovec): the fields but Content-Length and Transfer-Encoding (values trimmed
// of blanks, as Beast stores them), Host (the dial address when absent), then the framing: for a
// streamed body Content-Length when its length is known, else chunked; for a whole body, as
// Beast's prepare_payload: Content-Length when it is not empty or the method is OPTIONS, PUT or
// POST.
struct RequestHead {
  std::string bytes;
  bool close = false;    // a Connection field says "close"
  bool chunked = false;  // the streamed body goes out in chunks
};

RequestHead request_head(const std::string& dial, const UpstreamRequest& request) {
  if (request.method == "TRACE" && !request.body_source && !request.body.empty()) {
    throw std::invalid_argument("invalid request body");  // as Beast's prepare_payload
  }
  RequestHead head;
  std::string& out = head.bytes;
  // Sized for the most it can take, written in place, then cut to what was written: a few
  // small copies a field rather than four appends.
  std::size_t size = request.method.size() + request.target.size() + request.field_lines.size() + dial.size() + 96;
  for (const auto& [name, value] : request.fields) size += name.size() + value.size() + 4;
  out.resize(size);
  char* p = out.data();
  const auto put = [&p](std::string_view text) {
    std::memcpy(p, text.data(), text.size());
    p += text.size();
  };
  put(request.method);
  *p++ = ' ';
  put(request.target);
  put(" HTTP/1.1\r\n"sv);
  put(request.field_lines);
  bool have_host = !request.field_lines.empty();
  for (const auto& [name, value] : request.fields) {
    switch (name.size()) {  // the fields looked at, by length first
      case 4:
        have_host = have_host || is_field(name, "host");
        break;
      case 10:
        if (is_field(name, "connection") && beast::iequals(value, "close")) head.close = true;
        break;
      case 14:
      case 17:
        if (is_field(name, "content-length") || is_field(name, "transfer-encoding")) continue;
        break;
    }
    if (name.size() + 2 > std::numeric_limits<std::uint16_t>::max() ||
        value.size() + 2 > std::numeric_limits<std::uint16_t>::max()) {
      throw std::length_error("field too large");  // as Beast's fields
    }
    put(name);
    put(": "sv);
    put(trim_blanks(value));
    put("\r\n"sv);
  }
  if (!have_host) {
    put("Host: "sv);
    put(dial.starts_with("unix/") ? std::string_view("localhost") : dial);
    put("\r\n"sv);
  }
  std::optional<std::uint64_t> length;
  if (!request.body_source) {
    const bool may_be_empty = request.method != "OPTIONS" && request.method != "PUT" && request.method != "POST";
    if (!request.body.empty() || !may_be_empty) length = request.body.size();
  } else if (request.body_length) {
    length = request.body_length;
  } else {
    head.chunked = true;
    put("Transfer-Encoding: chunked\r\n"sv);
  }
  if (length) {
    put("Content-Length: "sv);
    p = std::to_chars(p, p + 20, *length).ptr;
    put("\r\n"sv);
  }
  put("\r\n"sv);
  out.resize(static_cast<std::size_t>(p - out.data()));
  return head;
}

// What became of sending a request on a connection.
struct Sent {
  boost::system::error_code ec;        // the write that failed
  Deadline deadline;                   // that write's, to tell which limit passed
  std::optional<UpstreamError> error;  // a failure sending again would not mend
};

std::array<asio::const_buffer, 2> request_bytes(const RequestHead& head, const std::string& body) {
  return {asio::buffer(head.bytes), asio::buffer(body)};
}

// Head and body of a request without a streamed body go out in one gather write; over a plain
// socket at once, when it takes them (send_now_internal.h), with no coroutine of send_request's
// (the usual case); returns how many bytes it took.
std::size_t sent_at_once(UpstreamClientConnection& conn, const RequestHead& head, const std::string& body) {
  if (conn.tls) return 0;
  return send_now(conn.stream.socket().native_handle(), request_bytes(head, body));
}

// Writes `head` and `body` (or after the head, when there is a `source`, its pieces) to ex's
// connection: each write within write_timeout, a request without `source` also within
// `head_deadline`. Sets `body_taken` once a piece of `source` may have been read.
// `already` bytes of a request without `source` went out at once (sent_at_once).
awaitable<Sent> send_request(UpstreamExchange& ex, const RequestHead& head, const std::string& body,
                             UpstreamBodySource* source, const UpstreamClientOptions& options,
                             std::optional<Clock::time_point> head_deadline, bool& body_taken, std::size_t already) {
  Sent sent;
  UpstreamClientConnection& conn = *ex.conn;
  if (!source) {
    sent.deadline = earliest(head_deadline, options.write_timeout);
    expire(conn.stream, sent.deadline);
    const std::array<asio::const_buffer, 2> bytes = unsent(request_bytes(head, body), already);
    if (asio::buffer_size(bytes) > 0) {
      auto write = conn.tls ? asio::async_write(*conn.tls, bytes, kTuple) : asio::async_write(conn.stream, bytes, kTuple);
      std::tie(sent.ec, std::ignore) = co_await std::move(write);
    }
    co_return sent;
  }
  sent.deadline = earliest(std::nullopt, options.write_timeout);
  expire(conn.stream, sent.deadline);
  auto write = conn.tls ? asio::async_write(*conn.tls, asio::buffer(head.bytes), kTuple)
                        : asio::async_write(conn.stream, asio::buffer(head.bytes), kTuple);
  std::tie(sent.ec, std::ignore) = co_await std::move(write);
  if (sent.ec) co_return sent;
  body_taken = true;
  // A failed write is not the end: the upstream may have answered early (413, 401) and stopped
  // reading; its answer is read next, and a broken connection fails there. A write that timed
  // out is the end: Beast closed the connection.
  auto pieces = conn.tls ? send_body(*conn.tls, conn.stream, options.write_timeout, *source, head.chunked)
                         : send_body(conn.stream, conn.stream, options.write_timeout, *source, head.chunked);
  const boost::system::error_code body_ec = co_await std::move(pieces);
  if (source->failed()) {
    sent.error = UpstreamError{UpstreamFailure::Failed, "the client's request body ended early"};
  } else if (body_ec == beast::error::timeout) {
    sent.error = UpstreamError{UpstreamFailure::Failed, "writing request body to " + ex.dial + ": write_timeout (" +
                                                            millis(options.write_timeout) + ") passed"};
  }
  co_return sent;
}

// The error for a request whose writing failed: write_timeout passing fails the round trip (502),
// response_header_timeout passing is a HeaderTimeout (504).
UpstreamError send_error(const Sent& sent, const std::string& dial, const UpstreamClientOptions& options) {
  if (sent.ec != beast::error::timeout) {
    return UpstreamError{UpstreamFailure::Failed, "writing request to " + dial + ": " + sent.ec.message()};
  }
  if (sent.deadline.per_operation) {
    return UpstreamError{UpstreamFailure::Failed,
                         "writing request to " + dial + ": write_timeout (" + millis(options.write_timeout) + ") passed"};
  }
  return UpstreamError{UpstreamFailure::HeaderTimeout, "writing request to " + dial + ": " + sent.ec.message()};
}

enum class SendVerdict { Sent, Resend, Failed };

// send_request for what did not go out at once, and what its outcome means for the round trip:
// Resend when the write failed on a pooled connection the upstream had closed (nothing was
// processed); Failed with `error` set. (A coroutine of its own, so that round_trip_http1's frame
// stays small enough for Asio to recycle.)
awaitable<SendVerdict> send_rest(UpstreamExchange& ex, const RequestHead& head, const UpstreamRequest& request,
                                 const UpstreamClientOptions& options, std::optional<Clock::time_point> head_deadline,
                                 bool& body_taken, std::size_t already, bool pooled,
                                 std::optional<UpstreamError>& error) {
  const Sent sent = co_await send_request(ex, head, request.body, request.body_source.get(), options, head_deadline,
                                          body_taken, already);
  if (sent.error) {
    error = sent.error;
    co_return SendVerdict::Failed;
  }
  if (!sent.ec) co_return SendVerdict::Sent;
  if (pooled && !body_taken && sent.ec != beast::error::timeout) co_return SendVerdict::Resend;
  error = send_error(sent, ex.dial, options);
  co_return SendVerdict::Failed;
}

enum class HeadRead { Done, Retry, Failed };

// Reads the response head into `head` and ex's framing and decoder, skipping interim (1xx)
// heads other than 101, each read within read_timeout and all within `head_deadline`. Retry: a
// pooled connection failed before a response byte (the upstream had closed it). Failed: `error`
// says why.
awaitable<HeadRead> read_head(UpstreamExchange& ex, UpstreamResponseHead& head, const UpstreamClientOptions& options,
                              bool head_request, std::optional<Clock::time_point> head_deadline, bool pooled,
                              std::optional<UpstreamError>& error) {
  UpstreamClientConnection& conn = *ex.conn;
  bool got_some = false;  // a byte of a response arrived
  const auto failed = [&](std::string why) {
    error = UpstreamError{UpstreamFailure::Failed, "reading response head from " + ex.dial + ": " + why};
    return HeadRead::Failed;
  };
  for (;;) {
    std::size_t scanned = 0;  // of the unread bytes, looking for the head's end
    std::size_t end = std::string_view::npos;
    while (conn.buffer.size() == 0 || (end = http1::head_end(ex.unread(), scanned)) == std::string_view::npos) {
      if (conn.buffer.size() > options.max_response_header_bytes) co_return failed("header limit exceeded");
      const Deadline deadline = earliest(head_deadline, options.read_timeout);
      auto [ec, n] = co_await read_some(conn, deadline);
      conn.buffer.commit(n);
      if (ec == beast::error::timeout) {
        const std::string what = deadline.per_operation ? "read_timeout (" + millis(options.read_timeout) + ") passed"
                                                        : std::string("timeout");
        error = UpstreamError{UpstreamFailure::HeaderTimeout, what + " awaiting response headers from " + ex.dial};
        co_return HeadRead::Failed;
      }
      got_some = got_some || conn.buffer.size() > 0;
      if (ec) {
        if (pooled && !got_some) co_return HeadRead::Retry;
        co_return failed(ec != asio::error::eof ? ec.message() : got_some ? "partial message" : "end of stream");
      }
    }
    if (end > options.max_response_header_bytes) co_return failed("header limit exceeded");
    std::string why;
    if (http1::parse_head(ex.unread().substr(0, end), head_request, head, ex.framing, why) != http1::Parsed::Done) {
      co_return failed(why);
    }
    conn.buffer.consume(end);
    if (head.status < 100 || head.status >= 200 || head.status == 101) break;
  }
  ex.decoder = http1::BodyDecoder(ex.framing, options.max_response_header_bytes);
  co_return HeadRead::Done;
}

// HTTP/2 unless the request asks for an Upgrade (WebSocket), which only HTTP/1.1 has.
bool wants_h2(const UpstreamClientOptions& options, const UpstreamRequest& request) {
  if (!options.http2 || !request.field_lines.empty()) return false;
  return std::none_of(request.fields.begin(), request.fields.end(),
                      [](const auto& field) { return is_field(field.name, "upgrade"); });
}

}  // namespace

// Not a coroutine itself: an HTTP/1.1 request costs no frame of its own here.
awaitable<UpstreamResult> UpstreamConnections::round_trip(std::string dial, UpstreamRequest request) {
  if (wants_h2(pool_->options(), request)) return round_trip_h2(pool_, std::move(dial), std::move(request));
  return round_trip_http1(pool_, std::move(dial), std::move(request), nullptr);
}

awaitable<UpstreamResult> UpstreamConnections::round_trip_h2(std::shared_ptr<UpstreamIdlePool> pool, std::string dial,
                                                             UpstreamRequest request) {
  const UpstreamClientOptions& options = pool->options();
  std::unique_ptr<UpstreamClientConnection> fresh;  // dialed for HTTP/2, but TLS chose HTTP/1.1
  for (int attempt = 0; attempt < 2 && wants_h2(options, request); ++attempt) {
    std::shared_ptr<UpstreamH2Session> session = pool->h2(dial);
    const bool kept = session != nullptr;
    // An upstream that chose HTTP/1.1 before has kept-alive connections: no new dial to ask again.
    if (!session && options.http1 && pool->idle_count(dial) > 0) break;
    if (!session) {
      UpstreamResult result;
      std::string error;
      fresh = co_await dial_new(*pool, dial, error);
      if (!fresh) {
        result.error = UpstreamError{UpstreamFailure::Dial, error};
        co_return result;
      }
      if (!options.tls || alpn_chose_h2(*fresh)) {
        session = pool->h2(dial);  // another request's dial may have made one meanwhile
        if (!session) {
          session = start_h2_session(std::move(fresh), dial, options, options.tls.has_value());
          if (!session) {
            result.error = UpstreamError{UpstreamFailure::Failed, "starting HTTP/2 with " + dial + ": out of memory"};
            co_return result;
          }
          pool->set_h2(dial, session);
        }
        fresh.reset();
      } else if (!options.http1) {
        result.error = UpstreamError{UpstreamFailure::Dial, "upstream " + dial + " did not choose HTTP/2 (ALPN h2)"};
        co_return result;
      }
    }
    if (!session) break;  // TLS chose HTTP/1.1 on `fresh`
    {
      // A copy while it may have to be sent again. (Not a temporary in the co_await expression:
      // g++ 12 destroys such a temporary twice.)
      UpstreamRequest sent = kept && attempt == 0 ? request : std::move(request);
      UpstreamH2Answer answer = co_await h2_round_trip(session, std::move(sent));
      // A kept connection the upstream had closed: nothing was processed, send again.
      if (answer.resend && kept && attempt == 0) continue;
      UpstreamResult result;
      result.error = std::move(answer.error);
      result.head = std::move(answer.head);
      result.body.h2_ = std::move(answer.body);
      co_return result;
    }
  }
  co_return co_await round_trip_http1(std::move(pool), std::move(dial), std::move(request), std::move(fresh));
}

awaitable<UpstreamResult> UpstreamConnections::round_trip_http1(std::shared_ptr<UpstreamIdlePool> pool,
                                                                std::string dial, UpstreamRequest request,
                                                                std::unique_ptr<UpstreamClientConnection> fresh) {
  UpstreamResult result;
  const UpstreamClientOptions& options = pool->options();
  const bool head_request = beast::iequals(request.method, "HEAD");
  const RequestHead head = request_head(dial, request);
  const bool close = head.close;
  bool body_taken = false;  // a piece of request.body_source was read: the request cannot be sent again

  for (int attempt = 0; attempt < 2; ++attempt) {
    auto ex = std::make_unique<UpstreamExchange>();
    ex->pool = pool;
    ex->dial = dial;
    ex->reusable = !close;
    ex->chunk_bytes = options.chunk_bytes;
    ex->read_timeout = options.read_timeout;
    ex->write_timeout = options.write_timeout;
    bool pooled = false;
    if (fresh) {
      ex->conn = std::move(fresh);
    } else if (attempt == 0) {
      ex->conn = pool->take(dial);
      pooled = ex->conn != nullptr;
    }
    if (!ex->conn) {
      result.error = UpstreamError{UpstreamFailure::Dial, {}};
      ex->conn = co_await dial_new(*pool, dial, result.error->reason);
      if (!ex->conn) co_return result;
      result.error.reset();
    }
    if (request.body_source && body_taken) {
      result.error = UpstreamError{UpstreamFailure::Failed, "upstream " + dial + " closed the connection"};
      co_return result;
    }
    // response_header_timeout counts from the first byte sent, or from the end of a streamed body.
    std::optional<Clock::time_point> head_deadline = deadline_after(options.response_header_timeout);
    const std::size_t already = request.body_source ? 0 : sent_at_once(*ex->conn, head, request.body);
    if (already < head.bytes.size() + request.body.size() || request.body_source) {
      const SendVerdict verdict =
          co_await send_rest(*ex, head, request, options, head_deadline, body_taken, already, pooled, result.error);
      if (verdict == SendVerdict::Resend) continue;
      if (verdict == SendVerdict::Failed) co_return result;
    }
    if (request.body_source) head_deadline = deadline_after(options.response_header_timeout);

    const HeadRead read = co_await read_head(*ex, result.head, options, head_request, head_deadline, pooled,
                                             result.error);
    if (read == HeadRead::Retry) continue;
    if (read == HeadRead::Failed) co_return result;
    ex->conn->stream.expires_never();  // the head's deadline is done with
    if (result.head.status == 101) {  // the connection now belongs to the upgraded protocol
      result.tunnel = std::make_unique<UpstreamTunnel>(std::move(ex));
      co_return result;
    }
    if (ex->decoder.done()) {
      ex->finish();
    } else {
      result.body.exchange_ = std::move(ex);
    }
    co_return result;
  }
  // Both attempts used a connection that failed before a response byte; the second was fresh,
  // so this point is reached only if the first pooled one failed and the retry also did.
  result.error = UpstreamError{UpstreamFailure::Failed, "upstream " + dial + " closed the connection"};
  co_return result;
}

}  // namespace acmetool::serve
