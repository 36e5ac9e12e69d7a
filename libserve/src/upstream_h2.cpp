// HTTP/2 to upstreams (see upstream_h2.h): an nghttp2 client session over one connection, driven
// by two coroutines (a reader feeding nghttp2_session_mem_recv, a writer flushing
// nghttp2_session_mem_send), and one stream per request. Windows are opened as bodies are read
// (NO_AUTO_WINDOW_UPDATE + nghttp2_session_consume), so a slow client holds up only its stream.
#include "upstream_h2.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <utility>
#include <vector>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <nghttp2/nghttp2.h>

namespace acmetool::serve {

namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::awaitable;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::int32_t kStreamWindow = 256 * 1024;       // per stream: what one slow reader may hold
constexpr std::int32_t kConnectionWindow = 16 << 20;     // all streams together
constexpr std::size_t kWriteBatch = 64 * 1024;           // frames gathered into one write

std::string millis(std::chrono::milliseconds d) { return std::to_string(d.count()) + "ms"; }

// Request fields HTTP/2 forbids (RFC 9113 §8.2.2) or carries as pseudo-headers.
bool dropped_field(std::string_view lower_name) {
  static constexpr std::string_view kDropped[] = {"connection", "keep-alive", "proxy-connection",
                                                  "transfer-encoding", "upgrade", "host", "content-length"};
  return std::find(std::begin(kDropped), std::end(kDropped), lower_name) != std::end(kDropped);
}

std::string lowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Waits on `timer` until it is cancelled (a wake-up: true) or `deadline` passes (false).
awaitable<bool> wait_for_wake(asio::steady_timer& timer, std::optional<Clock::time_point> deadline) {
  timer.expires_at(deadline.value_or(Clock::time_point::max()));
  auto [ec] = co_await timer.async_wait(kTuple);
  co_return ec == asio::error::operation_aborted;
}

std::optional<Clock::time_point> earliest(std::optional<Clock::time_point> a, std::chrono::milliseconds limit) {
  if (limit.count() <= 0) return a;
  const Clock::time_point b = Clock::now() + limit;
  return a && *a < b ? a : std::optional<Clock::time_point>(b);
}

}  // namespace

// One request and its response on a session.
struct H2Stream {
  explicit H2Stream(const asio::any_io_executor& executor) : response(executor), room(executor) {}
  std::int32_t id = -1;
  // The request body: bytes not yet in DATA frames, and whether more will come.
  std::string out;
  std::size_t out_sent = 0;
  bool out_done = false;
  bool deferred = false;  // the data provider waits for the next piece
  std::shared_ptr<UpstreamBodySource> source;
  std::optional<Clock::time_point> body_sent_at;  // when the last byte of the body was submitted
  // The response.
  UpstreamResponseHead head;
  bool head_done = false;
  std::deque<std::string> data;  // DATA received, not read yet (counted against the windows)
  HeaderFields trailers;         // a HEADERS frame after the response head
  bool ended = false;            // END_STREAM received
  bool closed = false;           // nghttp2 closed the stream
  std::optional<std::string> error;
  asio::steady_timer response;  // the response's reader waits on it
  asio::steady_timer room;      // the request body's pump waits on it for `out` to drain
};

class UpstreamH2Session : public std::enable_shared_from_this<UpstreamH2Session> {
 public:
  UpstreamH2Session(std::unique_ptr<UpstreamClientConnection> conn, std::string dial, UpstreamClientOptions options,
                    bool tls)
      : conn_(std::move(conn)), dial_(std::move(dial)), options_(std::move(options)), tls_(tls),
        wake_(conn_->stream.get_executor()) {}
  ~UpstreamH2Session() {
    if (session_) nghttp2_session_del(session_);
  }

  bool start();
  bool usable() const { return !closed_ && !goaway_; }
  // True when no stream has been open for `limit` (zero: never).
  bool idle_longer(std::chrono::milliseconds limit) const {
    return limit.count() > 0 && streams_.empty() && Clock::now() - idle_since_ >= limit;
  }
  // Closes the connection once its last stream ends (keep-alive off).
  void close_when_idle() { close_when_idle_ = true; }
  void close(const std::string& reason);
  void kick() { wake_.cancel(); }
  const std::string& dial() const { return dial_; }
  const UpstreamClientOptions& options() const { return options_; }
  nghttp2_session* session() const { return session_; }

  // Submits the request as a new stream; null with `error` set when nghttp2 refuses it.
  std::shared_ptr<H2Stream> submit(UpstreamRequest& request, std::string& error);
  // Resets `s` (CANCEL) unless it has closed, and gives back the connection window its unread
  // data held (a closed stream's too: nghttp2 counts it until consumed).
  void cancel(H2Stream& s);

  static awaitable<void> read_loop(std::shared_ptr<UpstreamH2Session> self);
  static awaitable<void> write_loop(std::shared_ptr<UpstreamH2Session> self);
  static awaitable<void> pump_body(std::shared_ptr<UpstreamH2Session> self, std::shared_ptr<H2Stream> s);

 private:
  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name, std::size_t namelen,
                       const std::uint8_t* value, std::size_t valuelen, std::uint8_t, void* user);
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int on_data_chunk(nghttp2_session*, std::uint8_t, std::int32_t id, const std::uint8_t* data,
                           std::size_t len, void* user);
  static int on_stream_close(nghttp2_session*, std::int32_t id, std::uint32_t error_code, void* user);
  static ssize_t read_request_body(nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t length,
                                   std::uint32_t* flags, nghttp2_data_source* source, void*);
  H2Stream* find(std::int32_t id) {
    const auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : it->second.get();
  }

  std::unique_ptr<UpstreamClientConnection> conn_;
  std::string dial_;
  UpstreamClientOptions options_;
  bool tls_;
  nghttp2_session* session_ = nullptr;
  std::map<std::int32_t, std::shared_ptr<H2Stream>> streams_;
  asio::steady_timer wake_;  // the writer waits on it for frames to send
  bool closed_ = false;
  bool goaway_ = false;
  bool close_when_idle_ = false;
  Clock::time_point idle_since_ = Clock::now();
};

class UpstreamH2Reader {
 public:
  UpstreamH2Reader(std::shared_ptr<UpstreamH2Session> session, std::shared_ptr<H2Stream> stream)
      : session_(std::move(session)), stream_(std::move(stream)) {}
  ~UpstreamH2Reader() { session_->cancel(*stream_); }
  UpstreamH2Session& session() { return *session_; }
  H2Stream& stream() { return *stream_; }

 private:
  std::shared_ptr<UpstreamH2Session> session_;
  std::shared_ptr<H2Stream> stream_;
};

// ---- the session ----

bool UpstreamH2Session::start() {
  nghttp2_session_callbacks* callbacks = nullptr;
  if (nghttp2_session_callbacks_new(&callbacks) != 0) return false;
  nghttp2_session_callbacks_set_on_header_callback(callbacks, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, on_stream_close);
  nghttp2_option* option = nullptr;
  nghttp2_option_new(&option);
  nghttp2_option_set_no_auto_window_update(option, 1);  // windows open as bodies are read
  const int rv = nghttp2_session_client_new2(&session_, callbacks, this, option);
  nghttp2_option_del(option);
  nghttp2_session_callbacks_del(callbacks);
  if (rv != 0) return false;
  const nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                             {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kStreamWindow}};
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
  return true;
}

void UpstreamH2Session::close(const std::string& reason) {
  if (closed_) return;
  closed_ = true;
  for (auto& [id, s] : streams_) {
    if (!s->ended && !s->error) s->error = reason;
    s->response.cancel();
    s->room.cancel();
  }
  boost::system::error_code ignored;
  conn_->stream.socket().shutdown(asio::socket_base::shutdown_both, ignored);
  conn_->stream.socket().cancel(ignored);
  kick();
}

std::shared_ptr<H2Stream> UpstreamH2Session::submit(UpstreamRequest& request, std::string& error) {
  auto s = std::make_shared<H2Stream>(conn_->stream.get_executor());
  std::string authority = dial_.starts_with("unix/") ? "localhost" : dial_;
  std::vector<std::pair<std::string, std::string>> fields;
  for (const auto& [name, value] : request.fields) {
    std::string lower = lowercase(name);
    if (lower == "host") authority = value;
    if (lower == "te" && !beast::iequals(value, "trailers")) continue;
    if (dropped_field(lower)) continue;
    fields.emplace_back(std::move(lower), value);
  }
  if (request.body_source) {
    s->source = request.body_source;
    if (request.body_length) fields.emplace_back("content-length", std::to_string(*request.body_length));
  } else {
    s->out = std::move(request.body);
    s->out_done = true;
    if (!s->out.empty() || request.method == "POST" || request.method == "PUT") {
      fields.emplace_back("content-length", std::to_string(s->out.size()));
    }
  }
  const std::string scheme = tls_ ? "https" : "http";
  const std::pair<std::string_view, std::string_view> pseudo[] = {
      {":method", request.method}, {":scheme", scheme}, {":authority", authority}, {":path", request.target}};
  std::vector<nghttp2_nv> nva;
  const auto add = [&nva](std::string_view name, std::string_view value) {
    nva.push_back({reinterpret_cast<std::uint8_t*>(const_cast<char*>(name.data())),
                   reinterpret_cast<std::uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
                   NGHTTP2_NV_FLAG_NONE});
  };
  for (const auto& [name, value] : pseudo) add(name, value);
  for (const auto& [name, value] : fields) add(name, value);
  const bool has_body = s->source || !s->out.empty();
  nghttp2_data_provider provider{};
  provider.source.ptr = s.get();
  provider.read_callback = read_request_body;
  const std::int32_t id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(),
                                                 has_body ? &provider : nullptr, nullptr);
  if (id < 0) {
    error = std::string("submitting the request to ") + dial_ + ": " + nghttp2_strerror(id);
    return nullptr;
  }
  s->id = id;
  if (!s->source) s->body_sent_at = Clock::now();
  streams_[id] = s;
  kick();
  return s;
}

void UpstreamH2Session::cancel(H2Stream& s) {
  if (closed_) return;
  std::size_t unread = 0;
  for (const std::string& piece : s.data) unread += piece.size();
  s.data.clear();
  if (!s.closed) nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_CANCEL);
  if (unread > 0) nghttp2_session_consume_connection(session_, unread);
  kick();
}

// Bytes from the upstream into nghttp2, until the connection ends.
awaitable<void> UpstreamH2Session::read_loop(std::shared_ptr<UpstreamH2Session> self) {
  UpstreamClientConnection& conn = *self->conn_;
  const std::size_t size = std::max<std::size_t>(self->options_.chunk_bytes, 16 * 1024);
  std::unique_ptr<std::uint8_t[]> buffer(new std::uint8_t[size]);
  while (!self->closed_) {
    conn.stream.expires_never();  // read_timeout is per stream (see h2_next_chunk)
    const auto into = asio::buffer(buffer.get(), size);
    auto read = conn.tls ? conn.tls->async_read_some(into, kTuple) : conn.stream.async_read_some(into, kTuple);
    auto [ec, n] = co_await std::move(read);
    if (ec) {
      self->close("reading from " + self->dial_ + ": " + ec.message());
      co_return;
    }
    const ssize_t rv = nghttp2_session_mem_recv(self->session_, buffer.get(), n);
    if (rv < 0) {
      self->close("HTTP/2 from " + self->dial_ + ": " + nghttp2_strerror(static_cast<int>(rv)));
      co_return;
    }
    self->kick();  // SETTINGS and PING acknowledgements, window updates
  }
}

// Frames nghttp2 has ready, gathered into one write each, until the connection ends.
awaitable<void> UpstreamH2Session::write_loop(std::shared_ptr<UpstreamH2Session> self) {
  UpstreamClientConnection& conn = *self->conn_;
  std::string out;
  while (!self->closed_) {
    out.clear();
    while (out.size() < kWriteBatch) {
      const std::uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(self->session_, &data);
      if (n < 0) {
        self->close("HTTP/2 to " + self->dial_ + ": " + nghttp2_strerror(static_cast<int>(n)));
        co_return;
      }
      if (n == 0) break;
      out.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
    }
    if (out.empty()) {
      if (!nghttp2_session_want_read(self->session_) && !nghttp2_session_want_write(self->session_)) {
        self->close("upstream " + self->dial_ + " ended the HTTP/2 connection");
        co_return;
      }
      co_await wait_for_wake(self->wake_, std::nullopt);
      continue;
    }
    const std::chrono::milliseconds limit = self->options_.write_timeout;
    if (limit.count() > 0) {
      conn.stream.expires_after(limit);
    } else {
      conn.stream.expires_never();
    }
    auto write = conn.tls ? asio::async_write(*conn.tls, asio::buffer(out), kTuple)
                          : asio::async_write(conn.stream, asio::buffer(out), kTuple);
    auto [ec, n] = co_await std::move(write);
    (void)n;
    if (ec) {
      self->close("writing to " + self->dial_ + ": " +
                  (ec == beast::error::timeout ? "write_timeout (" + millis(limit) + ") passed" : ec.message()));
      co_return;
    }
  }
}

// A streamed request body: each piece of the client's into the stream's buffer once the last
// one has gone out in DATA frames, until the body ends or the upstream ended the stream (an
// early answer). Awaited by the round trip, never left running: the source reads the client's
// connection, which is not ours to outlive.
awaitable<void> UpstreamH2Session::pump_body(std::shared_ptr<UpstreamH2Session> self, std::shared_ptr<H2Stream> s) {
  while (!s->closed && !s->ended && !s->error && !self->closed_) {
    if (s->out_sent < s->out.size()) {
      co_await wait_for_wake(s->room, std::nullopt);
      continue;
    }
    if (s->out_done) co_return;
    std::optional<std::string> piece = co_await s->source->next();
    if (s->closed || s->ended || self->closed_) co_return;
    if (piece) {
      s->out = std::move(*piece);
      s->out_sent = 0;
    } else if (s->source->failed()) {
      s->error = "the client's request body ended early";
      self->cancel(*s);
      s->response.cancel();
      co_return;
    } else {
      s->out_done = true;
      s->body_sent_at = Clock::now();
    }
    if (s->deferred) {
      s->deferred = false;
      nghttp2_session_resume_data(self->session_, s->id);
    }
    self->kick();
  }
}

ssize_t UpstreamH2Session::read_request_body(nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t length,
                                             std::uint32_t* flags, nghttp2_data_source* source, void*) {
  H2Stream& s = *static_cast<H2Stream*>(source->ptr);
  const std::size_t n = std::min(length, s.out.size() - s.out_sent);
  std::memcpy(buf, s.out.data() + s.out_sent, n);
  s.out_sent += n;
  if (s.out_sent == s.out.size()) {
    s.out.clear();
    s.out_sent = 0;
    s.room.cancel();
    if (s.out_done) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      return static_cast<ssize_t>(n);
    }
  }
  if (n == 0) {
    s.deferred = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  return static_cast<ssize_t>(n);
}

int UpstreamH2Session::on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name,
                                 std::size_t namelen, const std::uint8_t* value, std::size_t valuelen, std::uint8_t,
                                 void* user) {
  auto& self = *static_cast<UpstreamH2Session*>(user);
  H2Stream* s = frame->hd.type == NGHTTP2_HEADERS ? self.find(frame->hd.stream_id) : nullptr;
  if (!s) return 0;
  const std::string_view n(reinterpret_cast<const char*>(name), namelen);
  const std::string_view v(reinterpret_cast<const char*>(value), valuelen);
  if (s->head_done) {  // trailers (nghttp2 refuses pseudo-fields in them)
    s->trailers.emplace_back(n, v);
    return 0;
  }
  if (n == ":status") {
    s->head.status = 0;
    for (const char c : v) s->head.status = s->head.status * 10 + static_cast<unsigned>(c - '0');
  } else if (!n.starts_with(':')) {
    s->head.fields.emplace_back(n, v);
  }
  return 0;
}

int UpstreamH2Session::on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  auto& self = *static_cast<UpstreamH2Session*>(user);
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    self.goaway_ = true;
    return 0;
  }
  H2Stream* s = self.find(frame->hd.stream_id);
  if (!s) return 0;
  if (frame->hd.type == NGHTTP2_HEADERS && !s->head_done) {
    if (s->head.status >= 100 && s->head.status < 200) {  // interim: the real head follows
      s->head.status = 0;
      s->head.fields.clear();
    } else {
      s->head_done = true;
    }
  }
  if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
      (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
    s->ended = true;
    s->room.cancel();  // a body still being sent is of no more use
  }
  s->response.cancel();
  return 0;
}

int UpstreamH2Session::on_data_chunk(nghttp2_session*, std::uint8_t, std::int32_t id, const std::uint8_t* data,
                                     std::size_t len, void* user) {
  auto& self = *static_cast<UpstreamH2Session*>(user);
  H2Stream* s = self.find(id);
  if (!s) {
    nghttp2_session_consume_connection(self.session_, len);
    return 0;
  }
  s->data.emplace_back(reinterpret_cast<const char*>(data), len);
  s->response.cancel();
  return 0;
}

int UpstreamH2Session::on_stream_close(nghttp2_session*, std::int32_t id, std::uint32_t error_code, void* user) {
  auto& self = *static_cast<UpstreamH2Session*>(user);
  const auto it = self.streams_.find(id);
  if (it == self.streams_.end()) return 0;
  H2Stream& s = *it->second;
  s.closed = true;
  if (!s.ended && !s.error) {
    s.error = error_code == NGHTTP2_NO_ERROR
                  ? "upstream " + self.dial_ + " closed the stream early"
                  : "upstream " + self.dial_ + " reset the stream: " + nghttp2_http2_strerror(error_code);
  }
  s.response.cancel();
  s.room.cancel();
  self.streams_.erase(it);
  if (self.streams_.empty()) {
    self.idle_since_ = Clock::now();
    if (self.close_when_idle_) {
      self.goaway_ = true;  // no new requests; the writer ends the connection once GOAWAY is out
      nghttp2_session_terminate_session(self.session_, NGHTTP2_NO_ERROR);
      self.kick();
    }
  }
  return 0;
}

// ---- the interface ----

bool alpn_chose_h2(UpstreamClientConnection& conn) {
  if (!conn.tls) return false;
  const unsigned char* protocol = nullptr;
  unsigned int length = 0;
  SSL_get0_alpn_selected(conn.tls->native_handle(), &protocol, &length);
  return length == 2 && std::memcmp(protocol, "h2", 2) == 0;
}

std::shared_ptr<UpstreamH2Session> start_h2_session(std::unique_ptr<UpstreamClientConnection> conn, std::string dial,
                                                    const UpstreamClientOptions& options, bool tls) {
  const auto executor = conn->stream.get_executor();
  auto session = std::make_shared<UpstreamH2Session>(std::move(conn), std::move(dial), options, tls);
  if (!session->start()) return nullptr;
  asio::co_spawn(executor, UpstreamH2Session::read_loop(session), asio::detached);
  asio::co_spawn(executor, UpstreamH2Session::write_loop(session), asio::detached);
  return session;
}

bool h2_usable(const UpstreamH2Session& session) { return session.usable(); }
bool h2_idle_longer(const UpstreamH2Session& session, std::chrono::milliseconds limit) {
  return session.idle_longer(limit);
}
void h2_close_when_idle(UpstreamH2Session& session) { session.close_when_idle(); }
void h2_close(UpstreamH2Session& session) { session.close("the upstream connections were closed"); }

awaitable<UpstreamH2Answer> h2_round_trip(std::shared_ptr<UpstreamH2Session> session, UpstreamRequest request) {
  UpstreamH2Answer answer;
  std::string error;
  const bool resendable = !request.body_source;
  std::shared_ptr<H2Stream> s = session->submit(request, error);
  if (!s) {
    answer.error = UpstreamError{UpstreamFailure::Failed, error};
    co_return answer;
  }
  const auto reader = std::make_shared<UpstreamH2Reader>(session, s);  // resets the stream if we give up
  if (s->source) co_await UpstreamH2Session::pump_body(session, s);
  const UpstreamClientOptions& options = session->options();
  while (!s->head_done) {
    if (s->error) {
      answer.error = UpstreamError{UpstreamFailure::Failed, *s->error};
      // The connection failed before any of the response: the upstream had closed it.
      answer.resend = resendable && !session->usable() && s->head.status == 0 && s->head.fields.empty();
      co_return answer;
    }
    // response_header_timeout counts from the end of the request body.
    std::optional<Clock::time_point> head_deadline;
    if (options.response_header_timeout.count() > 0 && s->body_sent_at) {
      head_deadline = *s->body_sent_at + options.response_header_timeout;
    }
    const std::optional<Clock::time_point> deadline = earliest(head_deadline, options.read_timeout);
    if (co_await wait_for_wake(s->response, deadline)) continue;
    if (s->head_done || s->error) continue;
    if (!deadline || Clock::now() < *deadline) continue;  // a deadline moved: wait on
    const bool by_read = !head_deadline || deadline != head_deadline;
    const std::string what = by_read ? "read_timeout (" + millis(options.read_timeout) + ") passed" : "timeout";
    answer.error = UpstreamError{UpstreamFailure::HeaderTimeout,
                                 what + " awaiting response headers from " + session->dial()};
    co_return answer;
  }
  answer.head = s->head;
  answer.head.version = 20;
  if (!s->ended || !s->data.empty()) answer.body = reader;
  co_return answer;
}

awaitable<std::optional<std::string>> h2_next_chunk(UpstreamH2Reader& reader, std::optional<UpstreamError>& error) {
  H2Stream& s = reader.stream();
  UpstreamH2Session& session = reader.session();
  for (;;) {
    if (!s.data.empty()) {
      std::string piece = std::move(s.data.front());
      s.data.pop_front();
      nghttp2_session_consume(session.session(), s.id, piece.size());  // the upstream may send more
      session.kick();
      co_return piece;
    }
    if (s.ended) co_return std::nullopt;
    if (s.error) {
      error = UpstreamError{UpstreamFailure::Failed, "reading response body from " + session.dial() + ": " + *s.error};
      co_return std::nullopt;
    }
    const std::chrono::milliseconds limit = session.options().read_timeout;
    const std::optional<Clock::time_point> deadline = earliest(std::nullopt, limit);
    if (!co_await wait_for_wake(s.response, deadline) && s.data.empty() && !s.ended && !s.error) {
      error = UpstreamError{UpstreamFailure::Failed, "reading response body from " + session.dial() +
                                                         ": read_timeout (" + millis(limit) + ") passed"};
      co_return std::nullopt;
    }
  }
}

HeaderFields h2_take_trailers(UpstreamH2Reader& reader) { return std::move(reader.stream().trailers); }

}  // namespace acmetool::serve
