// The reverse proxy's transport to its upstreams (issue 9): an HTTP/1.1 client over TCP
// ("host:port") or Unix sockets ("unix//path") with a keep-alive pool per upstream, on
// Boost.Asio/Beast coroutines, and HTTP/2 (nghttp2, upstream_h2.cpp) with one multiplexed
// connection per upstream when the options allow it. Response bodies are read piece by piece,
// never buffered whole.
//
// Threading: one UpstreamConnections per server io thread (each io_context runs on one thread).
// It is not thread-safe and needs no locks: call it only from coroutines running on the
// executor it was built with. This header includes Asio; cmd/ must not include it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "acmetool/serve/header_fields.h"

namespace boost::asio::ssl {
class context;
}

namespace acmetool::serve {

/// TLS to the upstreams (`transport http { tls ... }`, https:// upstreams).
struct UpstreamTls {
  /// A client context: trusted roots (or none checked), client certificate, protocol versions.
  std::shared_ptr<boost::asio::ssl::context> context;
  /// Sent as SNI and verified in the upstream's certificate; empty: the dial address's host
  /// (an IP address is verified as such and sent without SNI).
  std::string server_name;
  bool verify = true;  ///< false: tls_insecure_skip_verify
  std::chrono::milliseconds handshake_timeout{std::chrono::seconds(10)};
};

/// Limits of one UpstreamConnections. Zero durations mean "no limit".
struct UpstreamClientOptions {
  std::chrono::milliseconds dial_timeout{std::chrono::seconds(3)};  ///< per connection attempt
  /// From the first byte of the request sent to the end of the response head (Go's
  /// ResponseHeaderTimeout, but it also covers sending the request). Zero: wait forever.
  std::chrono::milliseconds response_header_timeout{0};
  /// The longest wait for each read from the upstream (Caddy's read_timeout): the response head
  /// (within response_header_timeout when both are set; passing it is a HeaderTimeout), each
  /// body piece (passing it ends the body with an error) and each tunnel read. Zero: none.
  std::chrono::milliseconds read_timeout{0};
  /// The longest wait for each write to the upstream (Caddy's write_timeout): the request head,
  /// each streamed body piece, each tunnel write; passing it fails the round trip. Zero: none.
  std::chrono::milliseconds write_timeout{0};
  std::size_t max_response_header_bytes = 1024 * 1024;  ///< status line + fields
  std::size_t max_idle_per_upstream = 32;               ///< idle keep-alive connections kept
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(2)};  ///< idle connections older are closed
  std::size_t chunk_bytes = 16 * 1024;  ///< largest piece UpstreamBody::next_chunk returns
  std::optional<UpstreamTls> tls;       ///< speak TLS to every upstream
  /// HTTP/2 (`transport http { versions }`): over TLS when the upstream chooses "h2" by ALPN
  /// (the context must offer it), in cleartext with prior knowledge (h2c). One connection per
  /// upstream carries all requests at once. Requests asking for an Upgrade use HTTP/1.1.
  bool http2 = false;
  /// HTTP/1.1 may be used; false: a TLS upstream that does not choose h2 is a Dial failure.
  bool http1 = true;
};

/// Why a round trip failed; the proxy maps these onto retries and status codes.
enum class UpstreamFailure {
  Dial,           ///< no connection could be made (resolve, refused, dial timeout, TLS handshake): nothing sent
  HeaderTimeout,  ///< response_header_timeout passed before the response head arrived (→ 504)
  Failed,         ///< anything else: reset, malformed or oversized head, bad body (→ 502)
};

struct UpstreamError {
  UpstreamFailure failure = UpstreamFailure::Failed;
  std::string reason;  ///< one line, e.g. "dialing 127.0.0.1:9: Connection refused"
};

/// A request body produced while it is sent (a client's upload being proxied).
class UpstreamBodySource {
 public:
  virtual ~UpstreamBodySource() = default;
  /// The next piece (never empty), or nullopt at the end or when it could not be read.
  virtual boost::asio::awaitable<std::optional<std::string>> next() = 0;
  /// True when next() ended early: the body could not be read whole (the client went away).
  virtual bool failed() const = 0;
};

/// A request to send. The body is sent whole with a Content-Length, or, with `body_source`, as
/// its pieces come: with Content-Length `body_length` when known, else chunked (any
/// Content-Length or Transfer-Encoding in `fields` is replaced). Without a Host field, the dial
/// address is sent.
struct UpstreamRequest {
  std::string method = "GET";
  std::string target = "/";
  HeaderFields fields;
  /// Or the fields already written as HTTP/1.1 field lines ("Name: value" CRLF each, Host among
  /// them, no Content-Length or Transfer-Encoding), sent as they are: such a request goes over
  /// HTTP/1.1 only. Used instead of `fields` when not empty.
  std::string field_lines;
  std::string body;
  std::shared_ptr<UpstreamBodySource> body_source;
  std::optional<std::uint64_t> body_length;  ///< with body_source
};

struct UpstreamResponseHead {
  unsigned status = 0;
  std::string reason;
  unsigned version = 11;  ///< 10 or 11
  /// In order, as received, values without their leading and trailing blanks.
  HeaderFields fields;
};

struct UpstreamExchange;          // private: the connection, parser and buffer of one response
class UpstreamIdlePool;            // private: the idle connections of one UpstreamConnections
class UpstreamH2Reader;            // private: one response body on an HTTP/2 connection
struct UpstreamClientConnection;  // private: one connection, TCP or Unix, maybe TLS

/// The body of one response, read in pieces. Move-only. When the last piece has been read and
/// the response allowed keep-alive, the connection goes back to its pool; destroying the reader
/// earlier closes the connection.
class UpstreamBody {
 public:
  UpstreamBody();
  UpstreamBody(UpstreamBody&&) noexcept;
  UpstreamBody& operator=(UpstreamBody&&) noexcept;
  ~UpstreamBody();

  /// The next piece of the body (never empty), or nullopt at its end or on failure (then
  /// error() says why; read_timeout passing without a byte is one). Content-Length, chunked and
  /// read-until-close bodies are all decoded. Never throws for network errors.
  boost::asio::awaitable<std::optional<std::string>> next_chunk();
  /// next_chunk into `piece` (its contents replaced, its capacity reused): false at the end.
  boost::asio::awaitable<bool> next_chunk(std::string& piece);

  /// next_chunk without waiting, for what has been read already (most small bodies come whole
  /// with the head): Piece, with `piece` replaced; End at the end of the body or on failure, as
  /// next_chunk returning false; Wait when next_chunk has to read (or the body comes over HTTP/2).
  enum class Now { Piece, End, Wait };
  Now next_chunk_now(std::string& piece);

  /// Set when next_chunk ended early because the body could not be read.
  const std::optional<UpstreamError>& error() const { return error_; }
  /// True once the whole body has been read.
  bool done() const { return exchange_ == nullptr && h2_ == nullptr && !error_; }
  /// The trailer fields that followed the body (after a chunked body's last chunk, or an HTTP/2
  /// HEADERS frame after the DATA), as the upstream sent them, once the body is done; empty
  /// when there were none.
  const HeaderFields& trailers() const;

 private:
  friend class UpstreamConnections;
  std::unique_ptr<UpstreamExchange> exchange_;
  std::shared_ptr<UpstreamH2Reader> h2_;  // or the body comes over HTTP/2
  std::optional<UpstreamError> error_;
  std::unique_ptr<HeaderFields> trailers_;  // null without (most bodies: cheap to move)
};

/// The connection of a 101 Switching Protocols response (WebSocket and other upgrades), handed
/// over whole: from now on raw bytes in both directions. Move-only; destroying it closes the
/// connection, which never returns to a pool.
class UpstreamTunnel {
 public:
  explicit UpstreamTunnel(std::unique_ptr<UpstreamExchange> exchange);
  UpstreamTunnel(UpstreamTunnel&&) noexcept;
  UpstreamTunnel& operator=(UpstreamTunnel&&) noexcept;
  ~UpstreamTunnel();

  /// The next bytes from the upstream (those that came with the head first), at most
  /// chunk_bytes; nullopt at the end of its stream, on an error or when read_timeout passed
  /// without a byte (the connection is closed then). Never throws for network errors; honours
  /// cancellation.
  boost::asio::awaitable<std::optional<std::string>> read();
  /// Writes all of `data`, within write_timeout; false on an error or when it passed.
  boost::asio::awaitable<bool> write(std::string data);
  /// Tells the upstream no more bytes come (shutdown for sending).
  void shutdown_send();
  /// Ends a read() or write() in progress (it returns nullopt or false).
  void cancel();

 private:
  std::unique_ptr<UpstreamExchange> exchange_;
};

/// The outcome of round_trip: either `error`, or `head` and `body` (or, for a 101, `tunnel`).
struct UpstreamResult {
  std::optional<UpstreamError> error;
  UpstreamResponseHead head;
  UpstreamBody body;
  std::unique_ptr<UpstreamTunnel> tunnel;  ///< set for 101 Switching Protocols
  bool ok() const { return !error; }
};

/// The connections of one io thread to all upstreams it talks to.
class UpstreamConnections {
 public:
  explicit UpstreamConnections(boost::asio::any_io_executor executor, UpstreamClientOptions options = {});
  ~UpstreamConnections();  // closes idle connections; bodies still being read keep theirs
  UpstreamConnections(const UpstreamConnections&) = delete;
  UpstreamConnections& operator=(const UpstreamConnections&) = delete;

  /// Sends `request` to `dial` ("host:port", "[v6]:port", "unix//path") and reads the response
  /// head; the caller then reads result.body. An idle pooled connection is used when there is
  /// one; if it fails before any response byte arrives (the upstream had closed it), the request
  /// is sent once more on a new connection, whatever the method, unless a piece of a
  /// body_source had been taken. response_header_timeout counts from the end of a streamed body. Names are resolved with
  /// getaddrinfo on first use and cached until a dial to them fails. 1xx heads (except 101)
  /// are skipped. With options.http2 (and no Upgrade asked for) the request is a stream on the
  /// upstream's HTTP/2 connection, dialed when there is none (a TLS upstream that chose
  /// http/1.1 by ALPN gets HTTP/1.1 on it); a kept one that failed before any response is
  /// replaced once, as above. Never throws for network errors; they come back in result.error.
  boost::asio::awaitable<UpstreamResult> round_trip(std::string dial, UpstreamRequest request);

  /// Idle connections to `dial` in the pool now.
  std::size_t idle_count(std::string_view dial) const;
  /// Closes idle connections older than idle_timeout; returns how many. Call now and then.
  std::size_t prune_idle();
  /// Connections dialed since construction (for tests and metrics).
  std::uint64_t connections_opened() const;

 private:
  // round_trip over HTTP/2, falling back to round_trip_http1 when TLS chooses HTTP/1.1.
  static boost::asio::awaitable<UpstreamResult> round_trip_h2(std::shared_ptr<UpstreamIdlePool> pool, std::string dial,
                                                              UpstreamRequest request);
  // The HTTP/1.1 exchange; `fresh`, when set, is a new connection to use first.
  static boost::asio::awaitable<UpstreamResult> round_trip_http1(std::shared_ptr<UpstreamIdlePool> pool,
                                                                 std::string dial, UpstreamRequest request,
                                                                 std::unique_ptr<UpstreamClientConnection> fresh);
  std::shared_ptr<UpstreamIdlePool> pool_;  // shared with bodies, so a late body finds it or not
};

}  // namespace acmetool::serve
