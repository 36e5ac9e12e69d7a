// HTTP/2 sessions of the server engine (nghttp2 server sessions over TLS): the reader and writer
// coroutines, the nghttp2 callbacks, uploads to reverse_proxy and relayed response bodies.
#include "server_internal.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "routes_internal.h"

namespace acmetool::serve {

// ---- HTTP/2 (nghttp2 server sessions; the same handlers as HTTP/1.1) ----
//
// Two coroutines share a connection: a reader that only reads the socket and hands the bytes
// over, and a writer that feeds them to nghttp2, answers the requests that are complete and
// writes what nghttp2 has to send. A reverse_proxy answer runs in a coroutine of its own per
// stream (h2_relay), so a slow upstream holds up only its stream; its body reaches nghttp2
// through a bounded buffer (a deferred data source) and wakes the writer.

struct Server::Impl::H2Stream {
  explicit H2Stream(const asio::any_io_executor& executor) : upload_ready(executor), room(executor) {}
  std::int32_t id = 0;
  http::request<http::string_body> request;
  std::chrono::steady_clock::time_point began = std::chrono::steady_clock::now();
  std::size_t header_bytes = 0;
  bool body_too_large = false;
  bool handled = false;    // handle_request ran at the head (a request with a body)
  bool body_done = false;  // END_STREAM arrived
  // reverse_proxy uploads go to the relay as they arrive, flow-controlled: the window opens as
  // the upstream takes them (H2Upload), not before.
  bool uploading = false;
  std::string upload;             // arrived, not taken by the relay yet
  asio::steady_timer upload_ready;  // H2Upload waits on it for more
  Reply reply;
  std::size_t piece = 0;         // the body piece being sent
  std::uint64_t piece_sent = 0;  // bytes of it sent
  // A relayed body: bytes from the upstream not yet in DATA frames.
  std::string relayed;
  std::size_t relayed_sent = 0;
  bool relay_done = false;    // the upstream body ended; relay_failed: cut short
  bool relay_failed = false;
  std::vector<std::pair<std::string, std::string>> trailers;  // the upstream's, sent after the body
  bool deferred = false;      // nghttp2 waits for nghttp2_session_resume_data
  bool closed = false;        // the stream or the connection is gone
  asio::steady_timer room;    // h2_relay waits on it while `relayed` is full
  asio::cancellation_signal cancel;  // ends h2_relay's upstream I/O when the stream closes

  std::size_t relay_pending() const { return relayed.size() - relayed_sent; }
  void close() {
    if (closed) return;
    closed = true;
    cancel.emit(asio::cancellation_type::terminal);
    room.cancel();
    upload_ready.cancel();
  }
};

struct Server::Impl::H2Connection {
  H2Connection(Impl& i, Peer p, SSL* s, asio::any_io_executor e)
      : impl(i), peer(std::move(p)), ssl(s), executor(std::move(e)), wake(executor), input_room(executor) {}
  ~H2Connection() {
    if (session) nghttp2_session_del(session);
  }
  H2Connection(const H2Connection&) = delete;
  H2Connection& operator=(const H2Connection&) = delete;

  Impl& impl;
  Peer peer;
  SSL* ssl = nullptr;
  asio::any_io_executor executor;
  nghttp2_session* session = nullptr;
  std::map<std::int32_t, std::shared_ptr<H2Stream>> streams;
  std::vector<std::int32_t> complete;  // streams whose request has fully arrived, in order
  std::vector<std::int32_t> heads;     // streams whose head arrived with a body to follow
  std::string input;                   // read by the reader, not yet given to nghttp2
  std::string output;                  // frames from nghttp2 being written
  bool read_ended = false;             // the reader stopped (end of stream, error, timeout)
  bool ended = false;                  // the writer stopped: no more nghttp2 calls
  bool wake_pending = false;
  asio::steady_timer wake;        // the writer waits on it for input, relayed bytes or the end
  asio::steady_timer input_room;  // the reader waits on it while `input` is full

  void notify() {
    wake_pending = true;
    wake.cancel();
  }
  H2Stream* stream(std::int32_t id) {
    auto it = streams.find(id);
    return it == streams.end() ? nullptr : it->second.get();
  }
};

int Server::Impl::h2_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  auto& c = *static_cast<H2Connection*>(user);
  if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
    auto stream = std::make_shared<H2Stream>(c.executor);
    stream->id = frame->hd.stream_id;
    stream->request.version(20);
    c.streams[frame->hd.stream_id] = std::move(stream);
  }
  return 0;
}

int Server::Impl::h2_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name,
                            std::size_t name_length, const std::uint8_t* value,
                            std::size_t value_length, std::uint8_t, void* user) {
  H2Stream* stream = static_cast<H2Connection*>(user)->stream(frame->hd.stream_id);
  if (!stream) return 0;
  const std::string_view n(reinterpret_cast<const char*>(name), name_length);
  const std::string_view v(reinterpret_cast<const char*>(value), value_length);
  stream->header_bytes += name_length + value_length + 32;
  auto& req = stream->request;
  if (n == ":method") {
    req.method_string(v);
  } else if (n == ":path") {
    req.target(v);
  } else if (n == ":authority") {
    req.set(http::field::host, v);
  } else if (!n.starts_with(":")) {
    if (n == "host" && req.find(http::field::host) != req.end()) return 0;  // :authority wins
    req.insert(n, v);
  }
  return 0;
}

// A request body arrives in DATA frames: an upload for the relay waits there (its window stays
// closed until the relay takes it); any other is collected, and past kMaxRequestBody dropped and
// answered 413.
int Server::Impl::h2_data(nghttp2_session* session, std::uint8_t, std::int32_t id,
                          const std::uint8_t* data, std::size_t length, void* user) {
  H2Stream* stream = static_cast<H2Connection*>(user)->stream(id);
  if (!stream) return 0;
  if (stream->uploading) {
    stream->upload.append(reinterpret_cast<const char*>(data), length);
    stream->upload_ready.cancel();
    return 0;
  }
  nghttp2_session_consume(session, id, length);
  std::string& body = stream->request.body();
  if (stream->body_too_large || body.size() + length > kMaxRequestBody) {
    stream->body_too_large = true;
    body.clear();
  } else {
    body.append(reinterpret_cast<const char*>(data), length);
  }
  return 0;
}

int Server::Impl::h2_frame_received(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  auto& c = *static_cast<H2Connection*>(user);
  H2Stream* stream = c.stream(frame->hd.stream_id);
  if (!stream) return 0;
  const bool request_end = (frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
                           (frame->hd.flags & NGHTTP2_FLAG_END_STREAM);
  if (request_end) {
    stream->body_done = true;
    stream->upload_ready.cancel();
    c.complete.push_back(frame->hd.stream_id);
  } else if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
    c.heads.push_back(frame->hd.stream_id);
  }
  return 0;
}

int Server::Impl::h2_stream_closed(nghttp2_session*, std::int32_t id, std::uint32_t, void* user) {
  auto& c = *static_cast<H2Connection*>(user);
  if (auto it = c.streams.find(id); it != c.streams.end()) {
    it->second->close();
    c.streams.erase(it);
  }
  return 0;
}

// Fills a DATA frame from the response's pieces: our strings, then file slices read with pread.
ssize_t Server::Impl::h2_read_body(nghttp2_session*, std::int32_t, std::uint8_t* buf,
                                   std::size_t length, std::uint32_t* flags,
                                   nghttp2_data_source* source, void*) {
  auto& s = *static_cast<H2Stream*>(source->ptr);
  std::size_t written = 0;
  while (written < length && s.piece < s.reply.pieces.size()) {
    const auto& piece = s.reply.pieces[s.piece];
    std::uint64_t size = 0;
    if (const auto* text = std::get_if<std::string>(&piece)) {
      size = text->size();
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(length - written, size - s.piece_sent));
      std::memcpy(buf + written, text->data() + s.piece_sent, n);
      written += n;
      s.piece_sent += n;
    } else {
      const FileSlice slice = std::get<FileSlice>(piece);
      size = slice.length;
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(length - written, size - s.piece_sent));
      const ssize_t got = ::pread(s.reply.file->get(), buf + written, want,
                                  static_cast<off_t>(slice.offset + s.piece_sent));
      if (got <= 0) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // the file changed: reset the stream
      written += static_cast<std::size_t>(got);
      s.piece_sent += static_cast<std::uint64_t>(got);
    }
    if (s.piece_sent == size) {
      ++s.piece;
      s.piece_sent = 0;
    }
  }
  if (s.piece == s.reply.pieces.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<ssize_t>(written);
}

// Fills a DATA frame from a relayed body's buffer; with nothing buffered yet the stream waits
// (deferred) until h2_relay has more. A body cut short upstream resets the stream.
ssize_t Server::Impl::h2_read_relayed(nghttp2_session* session, std::int32_t id, std::uint8_t* buf,
                                      std::size_t length, std::uint32_t* flags,
                                      nghttp2_data_source* source, void*) {
  auto& s = *static_cast<H2Stream*>(source->ptr);
  const std::size_t pending = s.relay_pending();
  if (pending == 0) {
    if (!s.relay_done) {
      s.deferred = true;
      return NGHTTP2_ERR_DEFERRED;
    }
    if (s.relay_failed) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    end_relayed(session, id, s, flags);
    return 0;
  }
  const std::size_t n = std::min(length, pending);
  std::memcpy(buf, s.relayed.data() + s.relayed_sent, n);
  s.relayed_sent += n;
  if (s.relayed_sent == s.relayed.size()) {
    s.relayed.clear();
    s.relayed_sent = 0;
  } else if (s.relayed_sent >= kRelayBuffer) {
    s.relayed.erase(0, s.relayed_sent);
    s.relayed_sent = 0;
  }
  if (s.relay_done && !s.relay_failed && s.relay_pending() == 0) end_relayed(session, id, s, flags);
  s.room.cancel();  // h2_relay may read on
  return static_cast<ssize_t>(n);
}

// The end of a relayed body: its last DATA frame ends the stream, or, when the upstream sent
// trailer fields, a HEADERS frame with them does (submitted here, as nghttp2 asks).
void Server::Impl::end_relayed(nghttp2_session* session, std::int32_t id, H2Stream& s, std::uint32_t* flags) {
  *flags |= NGHTTP2_DATA_FLAG_EOF;
  if (s.trailers.empty()) return;
  std::vector<nghttp2_nv> nva;
  for (auto& [name, value] : s.trailers) {
    nva.push_back({reinterpret_cast<std::uint8_t*>(name.data()), reinterpret_cast<std::uint8_t*>(value.data()),
                   name.size(), value.size(), NGHTTP2_NV_FLAG_NONE});  // copied by nghttp2
  }
  if (nghttp2_submit_trailer(session, id, nva.data(), nva.size()) == 0) *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
  s.trailers.clear();
}

// Submits the response of one stream: its head, and its body from the pieces or the relay.
void Server::Impl::h2_respond(H2Connection& c, H2Stream& stream) {
  Reply& reply = stream.reply;
  // Counted and logged when the response is submitted; its body goes out as the window allows.
  const auto ended = std::chrono::steady_clock::now();
  c.impl.metrics->record_request(Protocol::Http2, Scheme::Https, reply.head.result_int(), ended - stream.began,
                                 reply.body_length());
  log_access(stream.request, reply, stream.began, ended, c.peer, c.ssl);
  if (!reply.has_field(http::field::date)) reply.head.set(http::field::date, date_now());
  // The fields HTTP/2 forbids (RFC 9113 §8.2.2) are dropped; names go in lower case, all in one
  // buffer, and values are pointed at in the head (nghttp2 copies both before this returns).
  const auto forbidden = [](http::field name) {
    return name == http::field::connection || name == http::field::keep_alive ||
           name == http::field::proxy_connection || name == http::field::transfer_encoding ||
           name == http::field::upgrade;
  };
  std::size_t count = 1, name_bytes = 0;
  for (const auto& field : reply.head) {
    if (forbidden(field.name())) continue;
    ++count;
    name_bytes += field.name_string().size();
  }
  // The upstream's fields: hop-by-hop ones, which HTTP/2 forbids, were removed with
  // apply_response_headers.
  count += reply.upstream_fields.size();
  for (const auto& [name, value] : reply.upstream_fields) name_bytes += name.size();
  std::string names(name_bytes, '\0');
  std::vector<nghttp2_nv> nva;
  nva.reserve(count);
  const auto as_bytes = [](const char* text) { return reinterpret_cast<std::uint8_t*>(const_cast<char*>(text)); };
  char status_name[] = ":status";
  char status[4];
  const char* status_end = std::to_chars(status, status + sizeof status, reply.head.result_int()).ptr;
  nva.push_back({as_bytes(status_name), as_bytes(status), sizeof status_name - 1,
                 static_cast<std::size_t>(status_end - status), NGHTTP2_NV_FLAG_NONE});
  char* lower = names.data();
  const auto add = [&](std::string_view name, std::string_view value) {
    char* const start = lower;
    lower = std::transform(name.begin(), name.end(), lower, routes_detail::lower_char);
    nva.push_back({as_bytes(start), as_bytes(value.data()), name.size(), value.size(), NGHTTP2_NV_FLAG_NONE});
  };
  for (const auto& field : reply.head) {
    if (!forbidden(field.name())) add(field.name_string(), field.value());
  }
  for (const auto& [name, value] : reply.upstream_fields) add(name, value);
  nghttp2_data_provider provider{};
  provider.source.ptr = &stream;
  const bool relayed = reply.relay && !reply.relay->bodyless;
  provider.read_callback = relayed ? h2_read_relayed : h2_read_body;
  const bool has_body = relayed || !reply.pieces.empty();
  nghttp2_submit_response(c.session, stream.id, nva.data(), nva.size(), has_body ? &provider : nullptr);
}

template <class Stream>
awaitable<void> Server::Impl::h2_session(Stream& stream, Live* connection, const Peer& peer) {
  auto c = std::make_shared<H2Connection>(*this, peer, ssl_of(stream), co_await asio::this_coro::executor);
  nghttp2_session_callbacks* callbacks = nullptr;
  if (nghttp2_session_callbacks_new(&callbacks) != 0) co_return;
  nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, h2_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, h2_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, h2_data);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, h2_frame_received);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, h2_stream_closed);
  // Windows are opened by us (nghttp2_session_consume): at once for bodies we collect, as the
  // upstream takes them for uploads.
  nghttp2_option* option = nullptr;
  if (nghttp2_option_new(&option) != 0) {
    nghttp2_session_callbacks_del(callbacks);
    co_return;
  }
  nghttp2_option_set_no_auto_window_update(option, 1);
  const int made = nghttp2_session_server_new2(&c->session, callbacks, c.get(), option);
  nghttp2_option_del(option);
  nghttp2_session_callbacks_del(callbacks);
  if (made != 0) co_return;
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<std::uint32_t>(options.max_header_bytes)}};
  nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  using namespace asio::experimental::awaitable_operators;
  auto writer = h2_writer(stream, c, connection);
  auto reader = h2_reader(stream, c);
  co_await (std::move(writer) && std::move(reader));
  for (auto& [id, s] : c->streams) s->close();  // relays still running stop at their next step
}

template <class Stream>
awaitable<void> Server::Impl::h2_reader(Stream& stream, std::shared_ptr<H2Connection> shared) {
  H2Connection& c = *shared;
  std::array<char, 16384> buffer;
  while (!c.ended) {
    if (c.input.size() >= 256 * 1024) {  // the writer is behind (a slow client): wait for it
      c.input_room.expires_at(asio::steady_timer::time_point::max());
      co_await c.input_room.async_wait(kTuple);
      continue;
    }
    beast::get_lowest_layer(stream).expires_after(options.idle_timeout);
    auto [ec, n] = co_await stream.async_read_some(asio::buffer(buffer), kTuple);
    if (ec) break;
    c.input.append(buffer.data(), n);
    c.notify();
  }
  c.read_ended = true;
  c.notify();
}

template <class Stream>
awaitable<void> Server::Impl::h2_writer(Stream& stream, std::shared_ptr<H2Connection> shared,
                                        Live* connection) {
  H2Connection& c = *shared;
  for (;;) {
    if (!c.input.empty()) {
      const ssize_t used =
          nghttp2_session_mem_recv(c.session, reinterpret_cast<const std::uint8_t*>(c.input.data()), c.input.size());
      c.input.clear();
      c.input_room.cancel();
      if (used < 0) break;
      co_await h2_dispatch(shared);
    }
    // Everything nghttp2 has to send, gathered into writes of up to kH2Write: the frames of many
    // streams go out in one SSL_write (full records) and one send(2), at once when the socket
    // takes them, instead of a record, a send and a posted completion per frame.
    bool failed = false;
    for (bool more = true; more && !failed;) {
      std::string& out = c.output;
      out.clear();
      while (out.size() < kH2Write) {
        const std::uint8_t* data = nullptr;
        const ssize_t n = nghttp2_session_mem_send(c.session, &data);
        if (n <= 0) {
          failed = n < 0;
          more = false;
          break;
        }
        out.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
      }
      if (failed || out.empty()) break;
      const std::size_t sent = sent_at_once(stream, out);
      if (all_sent(stream, out, sent)) continue;
      beast::get_lowest_layer(stream).expires_after(options.idle_timeout);
      auto [ec, written] = co_await asio::async_write(stream, asio::buffer(out) + sent, kTuple);
      (void)written;
      failed = static_cast<bool>(ec);
    }
    if (failed || (c.read_ended && c.input.empty())) break;
    if (!nghttp2_session_want_read(c.session) && !nghttp2_session_want_write(c.session)) break;
    if (stopping && c.streams.empty()) {
      nghttp2_session_terminate_session(c.session, NGHTTP2_NO_ERROR);
      continue;  // sends GOAWAY, then the session wants nothing more
    }
    set_idle(connection, c.streams.empty());
    if (!c.wake_pending) {
      c.wake.expires_at(asio::steady_timer::time_point::max());
      co_await c.wake.async_wait(kTuple);
    }
    c.wake_pending = false;
    set_idle(connection, false);
  }
  c.ended = true;
  boost::system::error_code ignored;
  beast::get_lowest_layer(stream).socket().cancel(ignored);  // ends the reader's read
  c.input_room.cancel();
}

// An HTTP/2 upload for the upstream: the DATA that has arrived, each piece's window opened as
// it is taken (so a client sends no faster than the upstream reads).
class Server::Impl::H2Upload final : public UpstreamBodySource {
 public:
  H2Upload(std::shared_ptr<H2Connection> connection, std::shared_ptr<H2Stream> stream)
      : c_(std::move(connection)), s_(std::move(stream)) {}
  awaitable<std::optional<std::string>> next() override {
    for (;;) {
      if (s_->closed || c_->ended) {
        failed_ = true;
        co_return std::nullopt;
      }
      if (!s_->upload.empty()) {
        std::string piece = std::move(s_->upload);
        s_->upload.clear();
        s_->reply.request_body_bytes += piece.size();
        nghttp2_session_consume(c_->session, s_->id, piece.size());
        c_->notify();  // the WINDOW_UPDATE goes out
        co_return piece;
      }
      if (s_->body_done) co_return std::nullopt;
      s_->upload_ready.expires_at(asio::steady_timer::time_point::max());
      co_await s_->upload_ready.async_wait(kTuple);
    }
  }
  bool failed() const override { return failed_; }

 private:
  std::shared_ptr<H2Connection> c_;
  std::shared_ptr<H2Stream> s_;
  bool failed_ = false;
};

// Answers the requests that have fully arrived: at once, or, for reverse_proxy, in a relay of
// their own.
awaitable<void> Server::Impl::h2_dispatch(std::shared_ptr<H2Connection> shared) {
  H2Connection& c = *shared;
  // Heads with a body to follow: decided now, so that an upload for reverse_proxy streams.
  std::vector<std::int32_t> heads;
  heads.swap(c.heads);
  for (const std::int32_t id : heads) {
    const auto it = c.streams.find(id);
    if (it == c.streams.end() || it->second->header_bytes > options.max_header_bytes) continue;
    const std::shared_ptr<H2Stream> s = it->second;
    s->reply = co_await handle_request(s->request, /*https=*/true, c.peer);
    s->handled = true;
    if (!s->reply.relay || c.ended || s->closed) continue;  // the rest when the body is complete
    s->uploading = true;
    s->upload = std::move(s->request.body());  // what came with the head, already consumed
    auto& call = s->reply.relay->call;
    call.body_source = std::make_shared<H2Upload>(shared, s);
    if (const std::string_view length = s->request[http::field::content_length]; !length.empty()) {
      call.body_length = body_length_of(s->request);
    }
    asio::co_spawn(c.executor, h2_relay(shared, s), asio::bind_cancellation_slot(s->cancel.slot(), asio::detached));
  }
  std::vector<std::int32_t> complete;
  complete.swap(c.complete);
  for (const std::int32_t id : complete) {
    const auto it = c.streams.find(id);
    if (it == c.streams.end()) continue;
    const std::shared_ptr<H2Stream> s = it->second;
    if (s->uploading) continue;  // its relay is under way
    if (s->header_bytes > options.max_header_bytes) {
      s->reply = text_reply(http::status::request_header_fields_too_large, "", 20);
      s->reply.finish(false);
    } else if (s->body_too_large) {
      s->reply = text_reply(http::status::payload_too_large, "", 20);
      s->reply.finish(false);
    } else {
      if (!s->handled) s->reply = co_await handle_request(s->request, /*https=*/true, c.peer);
      s->reply.request_body_bytes = s->request.body().size();
      if (s->reply.relay) s->reply.relay->call.body = std::move(s->request.body());
    }
    if (c.ended || s->closed) continue;
    if (s->reply.relay) {
      asio::co_spawn(c.executor, h2_relay(shared, s), asio::bind_cancellation_slot(s->cancel.slot(), asio::detached));
    } else {
      h2_respond(c, *s);
    }
  }
}

// One reverse_proxy answer on its stream: the upstream's head, then its body into the stream's
// buffer as fast as the client takes it (at most kRelayBuffer ahead).
awaitable<void> Server::Impl::h2_relay(std::shared_ptr<H2Connection> shared,
                                       std::shared_ptr<H2Stream> s) {
  H2Connection& c = *shared;
  Reply& reply = s->reply;
  co_await relay_head(reply, s->request, 20);
  if (c.ended || s->closed) co_return;
  h2_respond(c, *s);
  c.notify();
  if (!reply.relay || reply.relay->bodyless) co_return;
  UpstreamBody& body = reply.relay->outcome.body;
  std::string piece;  // each piece read into it in turn
  while (!s->relay_done) {
    if (s->relay_pending() >= kRelayBuffer) {
      s->room.expires_at(asio::steady_timer::time_point::max());
      co_await s->room.async_wait(kTuple);
      if (c.ended || s->closed) co_return;
      continue;
    }
    const bool got = co_await body.next_chunk(piece);
    if (c.ended || s->closed) co_return;
    if (got || !body.error()) {
      std::string compressed;
      const std::string& data = reply.relay->transform(got ? &piece : nullptr, compressed);  // `encode`
      s->relayed.append(data);
      reply.relayed += data.size();
    }
    if (!got) {
      s->relay_done = true;
      s->relay_failed = body.error().has_value();
      for (const auto& [field, value] : body.trailers()) {  // lower case, as HTTP/2 wants field names
        if (!relayable_trailer(field)) continue;
        std::string name(field);
        std::transform(name.begin(), name.end(), name.begin(), routes_detail::lower_char);
        s->trailers.emplace_back(std::move(name), value);
      }
      if (s->relay_failed) log("reverse_proxy: " + body.error()->reason);
    }
    if (s->deferred) {
      s->deferred = false;
      nghttp2_session_resume_data(c.session, s->id);
    }
    c.notify();
  }
}

// HTTP/2 is offered over TLS only (ALPN h2).
template awaitable<void> Server::Impl::h2_session(TlsStream&, Live*, const Peer&);

}  // namespace acmetool::serve
