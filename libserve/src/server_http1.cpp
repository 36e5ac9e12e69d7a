// HTTP/1.1 sessions of the server engine, on both ports: requests read head first, uploads
// streamed to reverse_proxy (ClientBody), WebSocket and other upgrades tunnelled, and the writers
// that send a Reply (pieces, file slices with pread or sendfile(2), relayed bodies).
#include "http1_parse_internal.h"
#include "server_internal.h"

#include <sys/sendfile.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "send_now_internal.h"

namespace acmetool::serve {

using namespace std::string_view_literals;  // appends of literals with their sizes known (no strlen)

namespace {

// A request whose Transfer-Encoding is anything but one "chunked" (RFC 9112 §6.3: the length
// cannot be known; Go's net/http refuses the same): its body would be read as a next request.
bool unframeable(const http::request_header<>& req) {
  const auto [first, last] = req.equal_range(http::field::transfer_encoding);
  if (first == last) return false;
  return std::next(first) != last || !beast::iequals(first->value(), "chunked");
}

// Both directions of a tunnel; then its stream_timeout is of no more use.
awaitable<void> both_directions(awaitable<void> up, awaitable<void> down, asio::steady_timer& limit) {
  using namespace asio::experimental::awaitable_operators;
  co_await (std::move(up) && std::move(down));
  limit.cancel();
}

// A tunnel's stream_timeout: when `limit` expires first, both directions are ended (their reads
// and writes cancelled), so both connections close. Not a `||` of awaitables: a cancelled
// coroutine throws at its next co_await, and the directions must end on their own.
template <class Stream>
awaitable<void> close_when_expired(asio::steady_timer& limit, Stream& stream, UpstreamTunnel& upstream, bool& done,
                                   bool& expired) {
  auto [ec] = co_await limit.async_wait(kTuple);
  if (ec || done) co_return;
  expired = done = true;
  upstream.cancel();
  boost::system::error_code ignored;
  beast::get_lowest_layer(stream).socket().cancel(ignored);
}

// The buffer a relayed response is written from: one of this thread's spares, given back when
// the response is done, so that relaying costs no allocation (and no free) for it. Several
// responses may be relayed at once on a thread, hence a list; big buffers are not kept.
class RelayBuffer {
 public:
  RelayBuffer() {
    if (spares().empty()) return;
    text_ = std::move(spares().back());
    spares().pop_back();
  }
  ~RelayBuffer() {
    text_.clear();
    if (text_.capacity() <= kKeepBytes && spares().size() < kSpares) spares().push_back(std::move(text_));
  }
  RelayBuffer(const RelayBuffer&) = delete;
  RelayBuffer& operator=(const RelayBuffer&) = delete;
  std::string& text() { return text_; }

 private:
  static constexpr std::size_t kKeepBytes = 64 * 1024;
  static constexpr std::size_t kSpares = 64;
  static std::vector<std::string>& spares() {
    thread_local std::vector<std::string> list;
    return list;
  }
  std::string text_;
};

}  // namespace

// ---- HTTP/1.1 ----

// A request body read piece by piece for the upstream, as the client sends it (an upload
// is never held whole); "100 Continue" goes out first when the client waits for it.
template <class Stream>
class Server::Impl::ClientBody final : public UpstreamBodySource {
 public:
  ClientBody(Impl& impl, Stream& stream, beast::flat_buffer& buffer, http::request_parser<http::empty_body>&& head,
             bool expect_continue)
      : impl_(impl), stream_(stream), buffer_(buffer), parser_(std::move(head)), continue_(expect_continue) {
    parser_.body_limit(boost::none);
    buffer_.reserve(64 * 1024);  // Beast reads at most the buffer's free capacity: big reads for uploads
  }
  awaitable<std::optional<std::string>> next() override {
    if (continue_) {
      continue_ = false;
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(kContinue), kTuple);
      (void)n;
      if (ec) failed_ = true;
    }
    while (!failed_ && !parser_.is_done()) {
      parser_.get().body().data = scratch_.get();
      parser_.get().body().size = kPiece;
      beast::get_lowest_layer(stream_).expires_after(impl_.options.idle_timeout);
      auto [ec, n] = co_await http::async_read_some(stream_, buffer_, parser_, kTuple);
      (void)n;
      if (ec == http::error::need_buffer) ec = {};
      if (ec) {
        failed_ = true;
        break;
      }
      std::string piece(scratch_.get(), kPiece - parser_.get().body().size);
      read_ += piece.size();
      if (!piece.empty()) co_return piece;
    }
    co_return std::nullopt;
  }
  bool failed() const override { return failed_; }
  bool done() const { return parser_.is_done(); }
  std::uint64_t bytes_read() const { return read_; }

 private:
  Impl& impl_;
  Stream& stream_;
  beast::flat_buffer& buffer_;
  http::request_parser<http::buffer_body> parser_;
  bool continue_;
  bool failed_ = false;
  std::uint64_t read_ = 0;
  static constexpr std::size_t kPiece = 16 * 1024;
  std::unique_ptr<char[]> scratch_{new char[kPiece]};  // where the parser puts a piece (not zero-filled)
};

template <class Stream>
awaitable<void> Server::Impl::http_session(Stream& stream, bool https, Live* connection,
                                           const Peer& peer) {
  constexpr bool plain = std::is_same_v<Stream, beast::tcp_stream>;
  beast::flat_buffer buffer;
  // A plain connection's wait for its next request reads the socket directly (recv(2), none of
  // Beast's stream layers), so its idle_timeout has a deadline of its own; TlsStream has one.
  const SocketDeadlineGuard idle{plain ? std::make_shared<SocketDeadline>(beast::get_lowest_layer(stream).socket())
                                       : nullptr};
  for (bool first = true;; first = false) {
    if (stopping) co_return;
    http::request_parser<http::empty_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(options.max_header_bytes));
    parser.body_limit(boost::none);  // decided once the handler is known (see below)
    // Waiting for the next request counts as idle (a graceful stop closes it); once its
    // first bytes are here, the head must arrive within header_timeout.
    set_idle(connection, !first);
    if (!first && buffer.size() == 0) {
      // idle_timeout, with one timer that is not re-armed for every request (SocketDeadline).
      boost::system::error_code ec;
      std::size_t n = 0;
      if constexpr (plain) {
        idle.deadline->expires_after(options.idle_timeout);
        if (!idle.deadline->waiting()) co_return;
        std::tie(ec, n) = co_await stream.socket().async_read_some(buffer.prepare(4096), kTuple);
        idle.deadline->done_waiting();
      } else {
        stream.expires_after(options.idle_timeout);
        std::tie(ec, n) = co_await stream.async_read_some(buffer.prepare(4096), kTuple);
      }
      if (ec) co_return;
      buffer.commit(n);
    }
    set_idle(connection, false);
    // A head already read whole (the usual case: it comes in one piece) is parsed at once, as
    // http::async_read_header would, without an asynchronous round; else the rest is read. A
    // plain head without a body (most requests) is parsed without Beast's parser at all.
    bool keep_alive = false;
    std::optional<http::request_header<>> quick;
    if (buffer.size() > 0) {
      const std::string_view bytes(static_cast<const char*>(buffer.data().data()), buffer.size());
      const std::size_t used = http1::parse_plain_request_head(bytes, options.max_header_bytes, quick.emplace(), keep_alive);
      if (used > 0) {
        buffer.consume(used);
      } else {
        quick.reset();  // Beast's parser reads it
      }
    }
    if (!quick) {
      boost::system::error_code ec;
      if (buffer.size() > 0) buffer.consume(parser.put(buffer.data(), ec));
      if (ec == http::error::need_more || (!ec && !parser.is_header_done())) {
        beast::get_lowest_layer(stream).expires_after(options.header_timeout);
        std::tie(ec, std::ignore) = co_await http::async_read_header(stream, buffer, parser, kTuple);
      }
      if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::operation_aborted ||
          ec == beast::error::timeout) {
        co_return;
      }
      if (ec) {
        co_await refuse(stream, ec == http::error::header_limit ? http::status::request_header_fields_too_large
                                                                : http::status::bad_request);
        co_return;
      }
      if (unframeable(parser.get())) {
        co_await refuse(stream, http::status::bad_request);
        co_return;
      }
      keep_alive = parser.keep_alive();
    }
    // The head stays readable in `head` while a body parser takes the parser over.
    const bool has_body = !quick && (parser.chunked() || parser.content_length().value_or(0) > 0);
    std::optional<http::request_header<>> saved;
    if (has_body) saved.emplace(parser.get());
    const http::request_header<>& req = quick ? *quick : has_body ? *saved : parser.get();
    const auto began = std::chrono::steady_clock::now();
    // Without credentials to check, handle_request would only call handle(): called here, the
    // request costs no coroutine frame of its own.
    const bool blocking = checks_credentials(req);
    Reply reply = blocking ? Reply() : handle(req, https, peer);  // built in place, not moved in
    if (blocking) reply = co_await handle_request(req, https, peer);
    if (reply.relay && has_body) {  // an upload: straight through to the upstream
      const bool expect_continue = beast::iequals(req[http::field::expect], "100-continue");
      auto body = std::make_shared<ClientBody<Stream>>(*this, stream, buffer, std::move(parser), expect_continue);
      reply.relay->call.body_source = body;
      if (!req[http::field::content_length].empty()) reply.relay->call.body_length = body_length_of(req);
      co_await relay_head(reply, req, req.version());
      reply.request_body_bytes = body->bytes_read();
      if (!body->done()) reply.close = true;  // the rest of the upload would be read as a request
    } else {
      if (has_body) {
        // The handlers here read no bodies: one up to kMaxRequestBody is read and dropped, a bigger
        // one refused.
        if (parser.content_length().value_or(0) > kMaxRequestBody) {
          co_await refuse(stream, http::status::payload_too_large);
          co_return;
        }
        http::request_parser<http::string_body> rest(std::move(parser));
        rest.body_limit(kMaxRequestBody);
        beast::get_lowest_layer(stream).expires_after(options.header_timeout);
        auto [body_ec, body_n] = co_await http::async_read(stream, buffer, rest, kTuple);
        (void)body_n;
        if (body_ec == http::error::body_limit) {
          co_await refuse(stream, http::status::payload_too_large);
          co_return;
        }
        if (body_ec) co_return;
        reply.request_body_bytes = rest.get().body().size();
      }
      if (reply.relay) co_await relay_head(reply, req, req.version());
    }
    if (!keep_alive || stopping) reply.close = true;
    const bool written = co_await write_reply(stream, reply);
    const auto ended = std::chrono::steady_clock::now();
    metrics->record_request(Protocol::Http1, https ? Scheme::Https : Scheme::Http, written ? reply.head.result_int() : 0,
                            ended - began, written ? reply.body_length() : 0);
    log_access(req, reply, began, ended, peer, ssl_of(stream));
    if (written && reply.relay && reply.relay->outcome.tunnel) {
      co_await tunnel(stream, buffer, *reply.relay->outcome.tunnel, reply.relay->outcome.stream_timeout);
      co_return;
    }
    if (!written || reply.close) co_return;
  }
}

// Answers a request that cannot be read on (bad head, too large) with `status` and closes.
template <class Stream>
awaitable<void> Server::Impl::refuse(Stream& stream, http::status status) {
  Reply reply = text_reply(status, "", 11);
  reply.close = true;
  reply.finish(false);
  co_await write_reply(stream, reply);
}

std::uint64_t Server::Impl::body_length_of(const http::request_header<>& req) {
  std::uint64_t length = 0;
  const std::string_view text = req[http::field::content_length];
  std::from_chars(text.data(), text.data() + text.size(), length);
  return length;
}

// After a 101 from the upstream (WebSocket and other upgrades): bytes both ways, those the client
// sent after its request first, until either side ends or `stream_timeout` (zero: none) passes;
// then the other direction is cancelled and the connection closes. As in Caddy, no idle timeout
// applies on the client's side; the upstream's reads and writes have read_timeout and
// write_timeout.
template <class Stream>
awaitable<void> Server::Impl::tunnel(Stream& stream, beast::flat_buffer& buffer, UpstreamTunnel& upstream,
                                     std::chrono::milliseconds stream_timeout) {
  using namespace asio::experimental::awaitable_operators;
  beast::get_lowest_layer(stream).expires_never();
  bool done = false;  // one direction ended: the other stops at its next step
  auto up = tunnel_up(stream, buffer, upstream, done);
  auto down = tunnel_down(stream, upstream, done);
  if (stream_timeout.count() <= 0) {
    co_await (std::move(up) && std::move(down));
    co_return;
  }
  asio::steady_timer limit(co_await asio::this_coro::executor, stream_timeout);
  bool expired = false;
  auto both = both_directions(std::move(up), std::move(down), limit);
  auto closer = close_when_expired(limit, stream, upstream, done, expired);
  co_await (std::move(both) && std::move(closer));
  if (expired) {
    log("reverse_proxy: tunnel closed after stream_timeout " + std::to_string(stream_timeout.count()) + "ms");
  }
}
template <class Stream>
awaitable<void> Server::Impl::tunnel_up(Stream& stream, beast::flat_buffer& buffer,
                                        UpstreamTunnel& upstream, bool& done) {
  std::array<char, 16384> chunk;
  std::string early(static_cast<const char*>(buffer.data().data()), buffer.size());
  buffer.consume(buffer.size());
  bool open = early.empty() || co_await upstream.write(std::move(early));
  while (open && !done) {
    auto [ec, n] = co_await stream.async_read_some(asio::buffer(chunk), kTuple);
    open = !ec && !done && co_await upstream.write(std::string(chunk.data(), n));
  }
  done = true;
  upstream.cancel();  // ends tunnel_down's read
}
template <class Stream>
awaitable<void> Server::Impl::tunnel_down(Stream& stream, UpstreamTunnel& upstream, bool& done) {
  while (!done) {
    std::optional<std::string> piece = co_await upstream.read();
    if (!piece || done) break;
    auto [ec, n] = co_await asio::async_write(stream, asio::buffer(*piece), kTuple);
    (void)n;
    if (ec) break;
  }
  done = true;
  boost::system::error_code ignored;
  beast::get_lowest_layer(stream).socket().cancel(ignored);  // ends tunnel_up's read
}

// Not a coroutine itself: a relayed body is written by write_relayed's frame alone.
template <class Stream>
awaitable<bool> Server::Impl::write_reply(Stream& stream, Reply& reply) {
  if (!reply.has_field(http::field::date)) reply.head.set(http::field::date, date_now());
  if (reply.close) reply.head.keep_alive(false);
  // The timeout is set where a write may wait (a write the socket takes at once needs none).
  if (reply.relay && !reply.relay->bodyless) return write_relayed(stream, reply);
  reply.merge_upstream_fields();  // a relayed head without a body (HEAD, 204, 304)
  return write_own(stream, reply);
}

// A response of our own: its head, then its pieces (strings, file slices).
template <class Stream>
awaitable<bool> Server::Impl::write_own(Stream& stream, Reply& reply) {
  // A small response (the common case) goes out in one write: head and body in one TLS record
  // and one send(), instead of one per piece.
  constexpr std::uint64_t kOneWrite = 16 * 1024;
  if (std::optional<std::string> whole = small_response(reply, kOneWrite)) {
    const std::size_t sent = sent_at_once(stream, *whole);
    if (all_sent(stream, *whole, sent)) co_return true;
    beast::get_lowest_layer(stream).expires_after(options.idle_timeout);
    auto [ec, n] = co_await asio::async_write(stream, asio::buffer(*whole) + sent, kTuple);
    (void)n;
    co_return !ec;
  }
  beast::get_lowest_layer(stream).expires_after(options.idle_timeout);
  http::response_serializer<http::empty_body> serializer(reply.head);
  auto [ec, n] = co_await http::async_write_header(stream, serializer, kTuple);
  (void)n;
  if (ec) co_return false;
  std::vector<char> chunk;
  for (const auto& piece : reply.pieces) {
    if (const auto* text = std::get_if<std::string>(&piece)) {
      auto [wec, wn] = co_await asio::async_write(stream, asio::buffer(*text), kTuple);
      (void)wn;
      if (wec) co_return false;
      continue;
    }
    const FileSlice slice = std::get<FileSlice>(piece);
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      if (!co_await send_file_slice(stream, reply.file->get(), slice)) co_return false;
      continue;
    }
    chunk.resize(static_cast<std::size_t>(std::min<std::uint64_t>(64 * 1024, slice.length)));
    for (std::uint64_t done = 0; done < slice.length;) {
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), slice.length - done));
      const ssize_t got = ::pread(reply.file->get(), chunk.data(), want, static_cast<off_t>(slice.offset + done));
      if (got <= 0) co_return false;  // the file shrank or vanished: the length we promised is wrong, close
      auto [wec, wn] = co_await asio::async_write(stream, asio::buffer(chunk.data(), static_cast<std::size_t>(got)),
                                                  kTuple);
      (void)wn;
      if (wec) co_return false;
      done += static_cast<std::uint64_t>(got);
    }
  }
  co_return true;
}

// A proxied body, relayed as it arrives: the head and the first piece in one write, then each
// piece as the upstream sends it (so server-sent events flow at once), chunked unless the
// upstream gave a Content-Length. A body whose end has been read with a piece (a small one,
// usually) ends in that piece's write. A body that ends early closes the connection, so the
// client sees a truncated response (no last chunk, or fewer bytes than promised).
template <class Stream>
awaitable<bool> Server::Impl::write_relayed(Stream& stream, Reply& reply) {
  Relay& relay = *reply.relay;
  UpstreamBody& body = relay.outcome.body;
  const bool chunked = reply.head[http::field::transfer_encoding] == "chunked";
  RelayBuffer buffer, piece_buffer;  // what goes out, and each piece as read
  std::string& out = buffer.text();
  std::string& piece = piece_buffer.text();
  // A piece (null: the end) as it goes out: compressed by `encode`, in a chunk when chunked;
  // at the end, what the compressor held and the last chunk.
  const auto add = [&](const std::string* piece) {
    std::string compressed;
    const std::string& data = relay.transform(piece, compressed);
    if (!data.empty() && chunked) {
      char size[20];
      const auto [end, ec] = std::to_chars(size, size + sizeof size, data.size(), 16);
      (void)ec;
      out.append(size, end).append("\r\n"sv).append(data).append("\r\n"sv);
    } else {
      out.append(data);
    }
    reply.relayed += data.size();
    if (!piece && chunked) {  // the last chunk, with the upstream's trailer fields
      out.append("0\r\n"sv);
      for (const auto& [name, value] : body.trailers()) {
        if (!relayable_trailer(name)) continue;
        out.append(name).append(": "sv).append(value).append("\r\n"sv);
      }
      out.append("\r\n"sv);
    }
  };
  for (bool first = true;; first = false) {
    // The first piece has usually come with the head: taken without a coroutine of next_chunk's.
    const UpstreamBody::Now now = body.next_chunk_now(piece);
    bool got = now == UpstreamBody::Now::Piece;
    if (now == UpstreamBody::Now::Wait) got = co_await body.next_chunk(piece);
    // The head and the first piece (with its framing) in one allocation.
    if (first) append_head(out, reply.head, reply.upstream_fields, got ? piece.size() + 32 : 0);
    const bool ended = !got || body.done();
    if (!got && body.error()) {
      log("reverse_proxy: " + body.error()->reason);
    } else {
      if (got) add(&piece);
      if (ended) add(nullptr);
    }
    if (const std::size_t sent = sent_at_once(stream, out); !all_sent(stream, out, sent)) {
      beast::get_lowest_layer(stream).expires_after(options.idle_timeout);
      auto [ec, n] = co_await asio::async_write(stream, asio::buffer(out) + sent, kTuple);
      (void)n;
      if (ec) co_return false;
    }
    out.clear();
    if (ended) co_return !body.error();
  }
}

// Plain HTTP: the kernel copies the slice from the file to the socket (sendfile(2)), nothing
// passes through user space. Waiting for the socket to drain counts against the idle timeout.
awaitable<bool> Server::Impl::send_file_slice(beast::tcp_stream& stream, int file,
                                              FileSlice slice) {
  using namespace asio::experimental::awaitable_operators;
  tcp::socket& socket = stream.socket();
  boost::system::error_code ec;
  socket.native_non_blocking(true, ec);
  if (ec) co_return false;
  auto offset = static_cast<off_t>(slice.offset);
  for (std::uint64_t left = slice.length; left > 0;) {
    const ssize_t sent = ::sendfile(socket.native_handle(), file, &offset,
                                    static_cast<std::size_t>(std::min<std::uint64_t>(left, 1 << 20)));
    if (sent > 0) {
      left -= static_cast<std::uint64_t>(sent);
      continue;
    }
    if (sent == 0 || (errno != EAGAIN && errno != EINTR)) co_return false;  // shrank, or the peer left
    asio::steady_timer timer(socket.get_executor(), options.idle_timeout);
    const auto ready = co_await (socket.async_wait(tcp::socket::wait_write, kTuple) || timer.async_wait(kTuple));
    if (ready.index() != 0 || std::get<0>(std::get<0>(ready))) co_return false;
  }
  co_return true;
}

// The status line and fields, ending with the blank line (as Beast's serializer writes them,
// without its ostream), with room for `room_after` more bytes.
void Server::Impl::append_head(std::string& out, const http::response<http::empty_body>& head,
                               const HeaderFields& more, std::size_t room_after) {
  // Sized first, then copied in place: a few small copies a field, not four appends.
  std::size_t size = 17 + head.reason().size();  // "HTTP/1.1 200 " and the CRLFs
  for (const auto& field : head) size += field.name_string().size() + field.value().size() + 4;
  for (const auto& [name, value] : more) size += name.size() + value.size() + 4;
  const std::size_t at = out.size();
  out.reserve(at + size + room_after);
  out.resize(at + size);
  char* p = out.data() + at;
  const auto put = [&p](std::string_view text) {
    std::memcpy(p, text.data(), text.size());
    p += text.size();
  };
  const unsigned version = head.version();
  put("HTTP/"sv);
  *p++ = static_cast<char>('0' + version / 10);
  *p++ = '.';
  *p++ = static_cast<char>('0' + version % 10);
  *p++ = ' ';
  p = std::to_chars(p, p + 3, head.result_int()).ptr;
  *p++ = ' ';
  put(head.reason());
  put("\r\n"sv);
  const auto put_field = [&put, &p](std::string_view name, std::string_view value) {
    put(name);
    *p++ = ':';
    *p++ = ' ';
    put(value);
    *p++ = '\r';
    *p++ = '\n';
  };
  for (const auto& field : head) put_field(field.name_string(), field.value());
  for (const auto& [name, value] : more) put_field(name, value);
  put("\r\n"sv);
  out.resize(static_cast<std::size_t>(p - out.data()));
}

// The whole response as bytes when its body is at most `limit`; nullopt otherwise, or when a
// file slice cannot be read in full (then the piecewise path fails the same way).
std::optional<std::string> Server::Impl::small_response(const Reply& reply, std::uint64_t limit) {
  if (!reply.head.has_content_length()) return std::nullopt;
  const std::uint64_t body = reply.body_length();
  if (body > limit) return std::nullopt;
  std::string out;
  out.reserve(256 + static_cast<std::size_t>(body));
  append_head(out, reply.head, reply.upstream_fields);
  if (!read_body(reply, out)) return std::nullopt;
  return out;
}

// The session templates for the two streams a connection uses: plain HTTP and TLS.
template awaitable<void> Server::Impl::http_session(beast::tcp_stream&, bool, Live*, const Peer&);
template awaitable<void> Server::Impl::http_session(TlsStream&, bool, Live*, const Peer&);

}  // namespace acmetool::serve
