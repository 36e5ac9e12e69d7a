// Dialing upstreams and keeping their connections (see upstream_pool.h).
#include "upstream_pool.h"

#include <boost/asio.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>

namespace acmetool::serve {

namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::awaitable;
using Stream = UpstreamStream;
using Endpoint = asio::generic::stream_protocol::endpoint;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

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

}  // namespace

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

std::vector<Endpoint> UpstreamIdlePool::endpoints(const std::string& dial, const DialAddress& address,
                                                  std::string& error) {
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

}  // namespace acmetool::serve
