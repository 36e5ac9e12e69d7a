// The upstream HTTP/1.1 client (see upstream_client.h). Every connection, TCP or Unix, is a
// beast::basic_stream over Asio's generic stream protocol, so one code path and Beast's own
// timeouts (expires_after → beast::error::timeout) serve both.
#include "acmetool/serve/upstream_client.h"

#include <array>
#include <charconv>
#include <deque>
#include <tuple>
#include <limits>
#include <map>
#include <stdexcept>
#include <utility>

#include <boost/asio.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "send_now_internal.h"

namespace acmetool::serve {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
using Clock = std::chrono::steady_clock;
using Stream = beast::basic_stream<asio::generic::stream_protocol>;
using Endpoint = asio::generic::stream_protocol::endpoint;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

void expire(Stream& stream, std::chrono::milliseconds limit) {
  if (limit.count() > 0) {
    stream.expires_after(limit);
  } else {
    stream.expires_never();
  }
}

// "host:port" / "[v6]:port" / "unix//path" → (host, port) or the socket path.
struct DialAddress {
  bool unix_socket = false;
  std::string host;  // or the socket path
  std::string port;
};

std::optional<DialAddress> parse_dial(std::string_view dial) {
  DialAddress out;
  if (dial.starts_with("unix/")) {
    out.unix_socket = true;
    out.host = std::string(dial.substr(5));
    if (out.host.empty()) return std::nullopt;
    return out;
  }
  std::string_view host = dial;
  std::string_view port = "80";
  if (dial.starts_with('[')) {
    const auto close = dial.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = dial.substr(1, close - 1);
    if (close + 1 < dial.size()) {
      if (dial[close + 1] != ':') return std::nullopt;
      port = dial.substr(close + 2);
    }
  } else if (const auto colon = dial.rfind(':'); colon != std::string_view::npos) {
    host = dial.substr(0, colon);
    port = dial.substr(colon + 1);
  }
  if (host.empty() || port.empty()) return std::nullopt;
  out.host = std::string(host);
  out.port = std::string(port);
  return out;
}

bool is_field(std::string_view a, std::string_view b) { return beast::iequals(a, b); }

}  // namespace

// One open connection to an upstream: TCP or Unix, with TLS over it for TLS upstreams.
struct UpstreamClientConnection {
  explicit UpstreamClientConnection(const asio::any_io_executor& executor) : stream(executor) {}
  Stream stream;
  std::optional<asio::ssl::stream<Stream&>> tls;  // over `stream`; timeouts stay on `stream`
  // Kept with the connection, so that a kept-alive one reads without allocating: what was read
  // and not parsed yet, and where body pieces are parsed into.
  beast::flat_buffer buffer;
  std::unique_ptr<char[]> scratch;
  Clock::time_point idle_since{};
};

class UpstreamIdlePool {
 public:
  UpstreamIdlePool(asio::any_io_executor executor, UpstreamClientOptions options)
      : executor_(std::move(executor)), options_(options) {
    if (options_.chunk_bytes == 0) options_.chunk_bytes = 16 * 1024;
  }

  const asio::any_io_executor& executor() const { return executor_; }
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
  std::vector<Endpoint> endpoints(const std::string& dial, const DialAddress& address, std::string& error) {
    if (const auto it = resolved_.find(dial); it != resolved_.end()) return it->second;
    std::vector<Endpoint> out;
    if (address.unix_socket) {
      out.emplace_back(asio::local::stream_protocol::endpoint(address.host));
    } else {
      asio::ip::tcp::resolver resolver(executor_);
      boost::system::error_code ec;
      const auto results = resolver.resolve(address.host, address.port, ec);
      if (ec) {
        error = "resolving " + address.host + ": " + ec.message();
        return {};
      }
      for (const auto& entry : results) out.emplace_back(entry.endpoint());
    }
    resolved_[dial] = out;
    return out;
  }
  void forget(const std::string& dial) { resolved_.erase(dial); }

  std::uint64_t opened = 0;

 private:
  bool expired(const UpstreamClientConnection& conn, Clock::time_point now) const {
    return options_.idle_timeout.count() > 0 && now - conn.idle_since >= options_.idle_timeout;
  }

  asio::any_io_executor executor_;
  UpstreamClientOptions options_;
  std::map<std::string, std::deque<std::unique_ptr<UpstreamClientConnection>>, std::less<>> idle_;
  std::map<std::string, std::vector<Endpoint>, std::less<>> resolved_;
};

struct UpstreamExchange {
  std::weak_ptr<UpstreamIdlePool> pool;
  std::string dial;
  std::unique_ptr<UpstreamClientConnection> conn;
  std::optional<http::response_parser<http::buffer_body>> parser;
  bool reusable = true;  // the request did not ask to close
  std::size_t chunk_bytes = 16 * 1024;

  void new_parser(std::size_t header_limit, bool head_request) {
    parser.emplace();
    parser->header_limit(static_cast<std::uint32_t>(
        std::min<std::size_t>(header_limit, std::numeric_limits<std::uint32_t>::max())));
    parser->body_limit(std::numeric_limits<std::uint64_t>::max());
    if (head_request) parser->skip(true);
  }

  // The response is complete: pool the connection when both sides allow keep-alive.
  void finish() {
    if (conn && reusable && parser && parser->is_done() && parser->keep_alive() && conn->buffer.size() == 0) {
      if (const auto p = pool.lock()) p->give_back(dial, std::move(conn));
    }
    conn.reset();
  }
};

// ---- UpstreamBody ----

UpstreamBody::UpstreamBody() = default;
UpstreamBody::UpstreamBody(UpstreamBody&&) noexcept = default;
UpstreamBody& UpstreamBody::operator=(UpstreamBody&&) noexcept = default;
UpstreamBody::~UpstreamBody() = default;

awaitable<std::optional<std::string>> UpstreamBody::next_chunk() {
  while (exchange_) {
    UpstreamExchange& ex = *exchange_;
    auto& parser = *ex.parser;
    if (parser.is_done()) {
      ex.finish();
      exchange_.reset();
      break;
    }
    char* const scratch = ex.conn->scratch.get();
    parser.get().body().data = scratch;
    parser.get().body().size = ex.chunk_bytes;
    // Bytes already read (the body that came with the head, usually all of a small one) are
    // parsed at once, as http::async_read_some would, without an asynchronous round.
    boost::system::error_code ec;
    if (ex.conn->buffer.size() > 0) {
      ex.conn->buffer.consume(parser.put(ex.conn->buffer.data(), ec));
    }
    if (ex.conn->buffer.size() == 0 || ec == http::error::need_more) {
      ec = {};
      if (!parser.is_done() && parser.get().body().size == ex.chunk_bytes) {  // nothing parsed: read
        ex.conn->stream.expires_never();
        auto read = ex.conn->tls ? http::async_read_some(*ex.conn->tls, ex.conn->buffer, parser, kTuple)
                                 : http::async_read_some(ex.conn->stream, ex.conn->buffer, parser, kTuple);
        std::size_t n = 0;
        std::tie(ec, n) = co_await std::move(read);
        (void)n;
      }
    }
    if (ec == http::error::need_buffer) ec = {};
    const std::size_t got = ex.chunk_bytes - parser.get().body().size;
    if (ec) {
      error_ = UpstreamError{UpstreamFailure::Failed, "reading response body from " + ex.dial + ": " + ec.message()};
      exchange_.reset();
      break;
    }
    if (got > 0) {
      std::string chunk(scratch, got);
      if (parser.is_done()) {
        ex.finish();
        exchange_.reset();
      }
      co_return chunk;
    }
  }
  co_return std::nullopt;
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
  const auto scratch = asio::buffer(ex.conn->scratch.get(), ex.chunk_bytes);
  auto read = ex.conn->tls ? ex.conn->tls->async_read_some(scratch, kTuple) : ex.conn->stream.async_read_some(scratch, kTuple);
  auto [ec, n] = co_await std::move(read);
  if (ec || n == 0) co_return std::nullopt;
  co_return std::string(ex.conn->scratch.get(), n);
}

awaitable<bool> UpstreamTunnel::write(std::string data) {
  UpstreamExchange& ex = *exchange_;
  if (!ex.conn) co_return false;
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

// The TLS handshake on a new connection: SNI and the verified name are tls.server_name or the
// dial host (an IP address is verified as one and sent without SNI). False with `error` set.
awaitable<bool> start_tls(UpstreamClientConnection& conn, const UpstreamTls& tls, const DialAddress& address,
                          const std::string& dial, std::string& error) {
  const std::string name = tls.server_name.empty() ? address.host : tls.server_name;
  conn.tls.emplace(conn.stream, *tls.context);
  SSL* ssl = conn.tls->native_handle();
  boost::system::error_code not_ip;
  asio::ip::make_address(name, not_ip);
  if (not_ip) SSL_set_tlsext_host_name(ssl, name.c_str());
  if (tls.verify) {
    conn.tls->set_verify_mode(asio::ssl::verify_peer);
    if (not_ip) {
      SSL_set1_host(ssl, name.c_str());
    } else {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str());
    }
  } else {
    conn.tls->set_verify_mode(asio::ssl::verify_none);
  }
  expire(conn.stream, tls.handshake_timeout);
  auto [ec] = co_await conn.tls->async_handshake(asio::ssl::stream_base::client, kTuple);
  if (!ec) co_return true;
  error = "TLS handshake with " + dial + ": " + (ec == beast::error::timeout ? std::string("i/o timeout") : ec.message());
  co_return false;
}

// A new connection to `dial`, trying each address in turn; nullptr and `error` on failure.
awaitable<std::unique_ptr<UpstreamClientConnection>> dial_new(UpstreamIdlePool& pool, const std::string& dial,
                                                         std::string& error) {
  const auto address = parse_dial(dial);
  if (!address) {
    error = "invalid upstream address \"" + dial + "\"";
    co_return nullptr;
  }
  const std::vector<Endpoint> endpoints = pool.endpoints(dial, *address, error);
  if (endpoints.empty()) {
    if (error.empty()) error = "resolving " + address->host + ": no addresses";
    co_return nullptr;
  }
  for (const Endpoint& endpoint : endpoints) {
    auto conn = std::make_unique<UpstreamClientConnection>(pool.executor());
    // Room for a whole small response: Beast reads at most the buffer's free capacity (512
    // bytes in a new buffer), so a 1 KiB response would take three reads and three writes.
    conn->buffer.reserve(pool.options().chunk_bytes + 4096);
    conn->scratch.reset(new char[pool.options().chunk_bytes]);
    expire(conn->stream, pool.options().dial_timeout);
    auto [ec] = co_await conn->stream.async_connect(endpoint, kTuple);
    if (!ec) {
      if (!address->unix_socket) {
        boost::system::error_code ignored;
        conn->stream.socket().set_option(asio::ip::tcp::no_delay(true), ignored);
      }
      if (const auto& tls = pool.options().tls; tls && !co_await start_tls(*conn, *tls, *address, dial, error)) {
        continue;
      }
      ++pool.opened;
      co_return conn;
    }
    error = "dialing " + dial + ": " +
            (ec == beast::error::timeout ? std::string("i/o timeout") : ec.message());
  }
  pool.forget(dial);  // the name may point elsewhere now
  co_return nullptr;
}

// The pieces of a streamed request body, framed as the head said; the first write error.
template <class S>
awaitable<boost::system::error_code> send_body(S& stream, UpstreamBodySource& source, bool chunked) {
  for (;;) {
    std::optional<std::string> piece = co_await source.next();
    std::string out;
    if (piece && chunked) {
      char size[20];
      const auto [end, ec] = std::to_chars(size, size + sizeof size, piece->size(), 16);
      (void)ec;
      out.append(size, end).append("\r\n").append(*piece).append("\r\n");
    } else if (piece) {
      out = std::move(*piece);
    } else if (chunked && !source.failed()) {
      out = "0\r\n\r\n";
    }
    if (!out.empty()) {
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

std::string_view trim_blanks(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

RequestHead request_head(const std::string& dial, const UpstreamRequest& request) {
  if (request.method == "TRACE" && !request.body_source && !request.body.empty()) {
    throw std::invalid_argument("invalid request body");  // as Beast's prepare_payload
  }
  RequestHead head;
  std::string& out = head.bytes;
  std::size_t size = request.method.size() + request.target.size() + dial.size() + 64;
  for (const auto& [name, value] : request.fields) size += name.size() + value.size() + 4;
  out.reserve(size);
  out.append(request.method).append(1, ' ').append(request.target).append(" HTTP/1.1\r\n");
  bool have_host = false;
  for (const auto& [name, value] : request.fields) {
    if (is_field(name, "content-length") || is_field(name, "transfer-encoding")) continue;
    if (is_field(name, "host")) have_host = true;
    if (is_field(name, "connection") && beast::iequals(value, "close")) head.close = true;
    if (name.size() + 2 > std::numeric_limits<std::uint16_t>::max() ||
        value.size() + 2 > std::numeric_limits<std::uint16_t>::max()) {
      throw std::length_error("field too large");  // as Beast's fields
    }
    out.append(name).append(": ").append(trim_blanks(value)).append("\r\n");
  }
  if (!have_host) out.append("Host: ").append(dial.starts_with("unix/") ? std::string_view("localhost") : dial).append("\r\n");
  std::optional<std::uint64_t> length;
  if (!request.body_source) {
    const bool may_be_empty = request.method != "OPTIONS" && request.method != "PUT" && request.method != "POST";
    if (!request.body.empty() || !may_be_empty) length = request.body.size();
  } else if (request.body_length) {
    length = request.body_length;
  } else {
    head.chunked = true;
    out.append("Transfer-Encoding: chunked\r\n");
  }
  if (length) {
    char digits[20];
    const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, *length);
    (void)ec;
    out.append("Content-Length: ").append(digits, end).append("\r\n");
  }
  out.append("\r\n");
  return head;
}

}  // namespace

awaitable<UpstreamResult> UpstreamConnections::round_trip(std::string dial, UpstreamRequest request) {
  UpstreamResult result;
  std::shared_ptr<UpstreamIdlePool> pool = pool_;  // alive for the whole coroutine
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
    bool pooled = false;
    if (attempt == 0) {
      ex->conn = pool->take(dial);
      pooled = ex->conn != nullptr;
    }
    if (!ex->conn) {
      std::string error;
      ex->conn = co_await dial_new(*pool, dial, error);
      if (!ex->conn) {
        result.error = UpstreamError{UpstreamFailure::Dial, error};
        co_return result;
      }
    }
    Stream& stream = ex->conn->stream;

    boost::system::error_code write_ec;
    if (request.body_source) {
      if (body_taken) {
        result.error = UpstreamError{UpstreamFailure::Failed, "upstream " + dial + " closed the connection"};
        co_return result;
      }
      stream.expires_never();
      const auto bytes = asio::buffer(head.bytes);
      auto write = ex->conn->tls ? asio::async_write(*ex->conn->tls, bytes, kTuple) : asio::async_write(stream, bytes, kTuple);
      std::tie(write_ec, std::ignore) = co_await std::move(write);
      if (!write_ec) {
        body_taken = true;
        // A failed write is not the end: the upstream may have answered early (413, 401) and
        // stopped reading; its answer is read below, and a broken connection fails there.
        auto body = ex->conn->tls ? send_body(*ex->conn->tls, *request.body_source, head.chunked)
                                  : send_body(stream, *request.body_source, head.chunked);
        co_await std::move(body);
        if (request.body_source->failed()) {
          result.error = UpstreamError{UpstreamFailure::Failed, "the client's request body ended early"};
          co_return result;
        }
      }
      expire(stream, options.response_header_timeout);
    } else {
      expire(stream, options.response_header_timeout);
      // Head and body in one gather write; over plain sockets at once when the socket takes it
      // all (send_now_internal.h), else the rest asynchronously.
      std::array<asio::const_buffer, 2> bytes{asio::buffer(head.bytes), asio::buffer(request.body)};
      if (!ex->conn->tls) bytes = unsent(bytes, send_now(stream.socket().native_handle(), bytes));
      if (asio::buffer_size(bytes) > 0) {
        auto write = ex->conn->tls ? asio::async_write(*ex->conn->tls, bytes, kTuple) : asio::async_write(stream, bytes, kTuple);
        std::tie(write_ec, std::ignore) = co_await std::move(write);
      }
    }
    if (write_ec) {
      if (pooled && !body_taken) continue;  // the upstream had closed it: nothing was processed
      result.error = UpstreamError{write_ec == beast::error::timeout ? UpstreamFailure::HeaderTimeout
                                                                     : UpstreamFailure::Failed,
                                   "writing request to " + dial + ": " + write_ec.message()};
      co_return result;
    }

    bool retry = false;
    for (;;) {
      ex->new_parser(options.max_response_header_bytes, head_request);
      auto read = ex->conn->tls ? http::async_read_header(*ex->conn->tls, ex->conn->buffer, *ex->parser, kTuple)
                                : http::async_read_header(stream, ex->conn->buffer, *ex->parser, kTuple);
      auto [ec, n] = co_await std::move(read);
      (void)n;
      if (ec == beast::error::timeout) {
        result.error = UpstreamError{UpstreamFailure::HeaderTimeout,
                                     "timeout awaiting response headers from " + dial};
        co_return result;
      }
      if (ec) {
        if (pooled && !ex->parser->got_some() && ex->conn->buffer.size() == 0) {
          retry = true;
          break;
        }
        result.error = UpstreamError{UpstreamFailure::Failed, "reading response head from " + dial + ": " + ec.message()};
        co_return result;
      }
      const unsigned status = ex->parser->get().result_int();
      if (status >= 100 && status < 200 && status != 101) continue;  // interim: read the next head
      break;
    }
    if (retry) continue;

    // The parser reads the body on without its fields: they are moved out, not copied.
    auto& res = ex->parser->get();
    result.head.status = res.result_int();
    result.head.reason = std::string(res.reason());
    result.head.version = res.version();
    res.reason({});
    result.head.fields = std::move(static_cast<http::fields&>(res));
    stream.expires_never();
    if (result.head.status == 101) {  // the connection now belongs to the upgraded protocol
      result.tunnel = std::make_unique<UpstreamTunnel>(std::move(ex));
      co_return result;
    }
    if (ex->parser->is_done()) {
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
