// HTTP/2 to upstreams (see upstream_client.h), private to libserve: the connection type both
// clients share, and one nghttp2 client session per upstream connection, multiplexing the
// requests of one UpstreamConnections (one io thread) to one upstream. Cleartext connections
// speak HTTP/2 with prior knowledge (h2c); TLS ones when ALPN chose "h2".
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include "acmetool/serve/upstream_client.h"

namespace acmetool::serve {

using UpstreamStream = boost::beast::basic_stream<boost::asio::generic::stream_protocol>;

/// Beast's timeout on `stream` for its next operations: `limit`, or none when it is zero.
inline void expire(UpstreamStream& stream, std::chrono::milliseconds limit) {
  if (limit.count() > 0) {
    stream.expires_after(limit);
  } else {
    stream.expires_never();
  }
}

/// One open connection to an upstream: TCP or Unix, with TLS over it for TLS upstreams.
struct UpstreamClientConnection {
  explicit UpstreamClientConnection(const boost::asio::any_io_executor& executor) : stream(executor) {}
  UpstreamStream stream;
  /// Over `stream`; timeouts stay on `stream`.
  std::optional<boost::asio::ssl::stream<UpstreamStream&>> tls;
  /// What was read and not parsed yet, kept with the connection so that a kept-alive one reads
  /// without allocating.
  boost::beast::flat_buffer buffer;
  std::chrono::steady_clock::time_point idle_since{};
};

/// True when `conn`'s TLS handshake chose HTTP/2 by ALPN.
bool alpn_chose_h2(UpstreamClientConnection& conn);

/// One HTTP/2 connection to an upstream. Not thread-safe: used on its executor only. Lives while
/// its connection is open or a body reader holds it.
class UpstreamH2Session;

/// Reads one response body of a session; destroying it before the end resets the stream.
class UpstreamH2Reader;

/// Starts HTTP/2 on a new connection to `dial`: sends the preface and settings and keeps
/// reading and writing until the connection fails, the upstream sends GOAWAY, or close().
std::shared_ptr<UpstreamH2Session> start_h2_session(std::unique_ptr<UpstreamClientConnection> conn,
                                                    std::string dial, const UpstreamClientOptions& options,
                                                    bool tls);

/// False once the session's connection failed, was closed or got GOAWAY: new requests need
/// another connection.
bool h2_usable(const UpstreamH2Session& session);
/// Closes the session's connection (streams still open fail).
void h2_close(UpstreamH2Session& session);
/// True when the session has had no open stream for `limit` (zero: never true).
bool h2_idle_longer(const UpstreamH2Session& session, std::chrono::milliseconds limit);
/// Makes the session end its connection (GOAWAY) once its last open stream has ended.
void h2_close_when_idle(UpstreamH2Session& session);

/// What an HTTP/2 round trip gave: an error, or the response head and its body's reader.
struct UpstreamH2Answer {
  std::optional<UpstreamError> error;
  UpstreamResponseHead head;
  std::shared_ptr<UpstreamH2Reader> body;  ///< null when the response had no body
  /// With `error`: the connection failed before any of the response and the request had no
  /// streamed body, so it may be sent again on a new connection.
  bool resend = false;
};

/// Sends `request` as a new stream and waits for its response head (interim 1xx heads
/// skipped), within response_header_timeout (from the end of a streamed body) and read_timeout.
/// Never throws for network errors.
boost::asio::awaitable<UpstreamH2Answer> h2_round_trip(std::shared_ptr<UpstreamH2Session> session,
                                                       UpstreamRequest request);

/// The next piece of the body, nullopt at its end or on failure (then `error` is set).
boost::asio::awaitable<std::optional<std::string>> h2_next_chunk(UpstreamH2Reader& reader,
                                                                 std::optional<UpstreamError>& error);

/// The trailer fields of a body h2_next_chunk has ended (taken: a second call gets none).
HeaderFields h2_take_trailers(UpstreamH2Reader& reader);

}  // namespace acmetool::serve
