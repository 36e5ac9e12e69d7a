// The TLS front end of the server engine: the shared TLS contexts, the ClientHello read by us,
// the certificate from the CertManager, the buffered handshake, tls-alpn-01 validations, and the
// hand-over to HTTP/2 or HTTP/1.1 by ALPN.
#include "server_internal.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "acmetool/serve/client_hello.h"

namespace acmetool::serve {

// Mozilla's "intermediate" profile: TLS 1.2 and 1.3, AEAD ECDHE suites, X25519/P-256/P-384,
// the client's preference (all suites are strong), no compression or renegotiation.
void Server::Impl::configure_tls() {
  SSL_CTX* ctx = tls.native_handle();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_cipher_list(ctx,
                          "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                          "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                          "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305");
  SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384");
  // Resumption is by session tickets alone (TicketKeys): no server-side session cache, whose
  // inserts and periodic sweeps over up to 20,000 sessions cost every full handshake time and
  // the process megabytes of memory.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  // A connection waiting for its next request holds no TLS record buffers (~34 KiB), as nginx.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  // Our preference first: HTTP/2, then HTTP/1.1; a client offering neither goes on without ALPN.
  static const AlpnOffer kHttp{{2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'}, SSL_TLSEXT_ERR_NOACK};
  SSL_CTX_set_alpn_select_cb(ctx, select_alpn, const_cast<AlpnOffer*>(&kHttp));

  // tls-alpn-01 validations (RFC 8737 §4): TLS 1.2 or later, acme-tls/1, full handshakes only.
  SSL_CTX* acme = acme_tls.native_handle();
  SSL_CTX_set_min_proto_version(acme, TLS1_2_VERSION);
  SSL_CTX_set_options(acme, SSL_OP_NO_TICKET | SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_num_tickets(acme, 0);
  SSL_CTX_set_session_cache_mode(acme, SSL_SESS_CACHE_OFF);
  static const AlpnOffer kAcmeTls{{10, 'a', 'c', 'm', 'e', '-', 't', 'l', 's', '/', '1'}, SSL_TLSEXT_ERR_ALERT_FATAL};
  SSL_CTX_set_alpn_select_cb(acme, select_alpn, const_cast<AlpnOffer*>(&kAcmeTls));
}

int Server::Impl::select_alpn(SSL*, const unsigned char** out, unsigned char* outlen,
                              const unsigned char* in, unsigned int inlen, void* arg) {
  const auto& offer = *static_cast<const AlpnOffer*>(arg);
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, offer.protocols.data(), static_cast<unsigned int>(offer.protocols.size()),
                            in, inlen) != OPENSSL_NPN_NEGOTIATED) {
    return offer.on_mismatch;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

// ---- TLS front end ----

awaitable<void> Server::Impl::tls_connection(tcp::socket socket) {
  boost::system::error_code ignored;
  const tcp::endpoint remote = socket.remote_endpoint(ignored);
  Peer peer = peer_of(remote);
  const std::string local_ip = socket.local_endpoint(ignored).address().to_string();
  const int fd = socket.native_handle();
  beast::tcp_stream stream(std::move(socket));
  std::optional<TlsStream> tls_stream;  // takes the socket over once the certificate is known
  const ConnectionMetric counted(*metrics, Scheme::Https);
  const LiveGuard guard{*this, enter(fd)};  // destroyed first: leaves before the socket closes
  try {
    if (!co_await read_proxy_header(stream.socket(), peer, /*https=*/true)) co_return;
    co_await tls_session(stream, tls_stream, peer, local_ip, guard.connection());
  } catch (const std::exception& e) {
    log("connection from " + peer.ip + ": " + e.what());
  }
}

awaitable<void> Server::Impl::tls_session(beast::tcp_stream& stream,
                                          std::optional<TlsStream>& tls_stream, const Peer& peer,
                                          const std::string& local_ip, Live* connection) {
  // Read until the ClientHello is complete, within the header timeout.
  stream.expires_after(options.header_timeout);
  std::vector<std::uint8_t> raw;
  ClientHelloResult hello;
  for (;;) {
    const std::size_t want = std::max<std::size_t>(hello.bytes_wanted, 1024);
    const std::size_t have = raw.size();
    // At most a hello's worth, with room for record headers of a hello split in small records.
    if (have + want > 2 * kMaxClientHello) co_return;
    raw.resize(have + want);
    auto [ec, n] = co_await stream.async_read_some(asio::buffer(raw.data() + have, want), kTuple);
    raw.resize(have + n);
    if (ec) {
      metrics->record_handshake(ec == beast::error::timeout ? HandshakeOutcome::Timeout : HandshakeOutcome::Failed);
      co_return;
    }
    hello = parse_client_hello(raw);
    if (hello.status != HelloStatus::NeedMore) break;
  }
  if (hello.status == HelloStatus::NotTls) {
    metrics->record_handshake(HandshakeOutcome::NotTls);
    if (hello.looks_like_http) {
      static constexpr std::string_view kAnswer =
          "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"
          "Content-Length: 48\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";
      co_await asio::async_write(stream, asio::buffer(kAnswer), kTuple);
    }
    co_return;
  }
  if (hello.status != HelloStatus::Complete) {
    metrics->record_handshake(HandshakeOutcome::Failed);
    co_await asio::async_write(stream, asio::buffer(handshake_failure_alert().data(), handshake_failure_alert().size()),
                               kTuple);
    co_return;
  }
  if (std::find(hello.info.alpn.begin(), hello.info.alpn.end(), "acme-tls/1") != hello.info.alpn.end()) {
      co_await tlsalpn01_validation(stream, tls_stream, raw, hello.info.server_name);
    co_return;
  }
  // The certificate for the name (or, without SNI, for the address the client reached).
  const std::string name = hello.info.server_name.empty() ? local_ip : hello.info.server_name;
  const CertificateAnswer answer = co_await async_certificate(name, peer.ip);
  if (!answer.certificate) {
    metrics->record_handshake(answer.outcome == CertificateAnswer::Outcome::Failed ? HandshakeOutcome::NoCertificate
                                                                           : HandshakeOutcome::UnrecognizedName);
    co_await asio::async_write(
        stream, asio::buffer(unrecognized_name_alert().data(), unrecognized_name_alert().size()), kTuple);
    co_return;
  }
  tls_stream.emplace(stream.release_socket(), tls);
  if (!use_certificate(tls_stream->native_handle(), *answer.certificate)) {
    metrics->record_handshake(HandshakeOutcome::Failed);
    co_return;
  }
  tls_stream->expires_after(options.header_timeout);
  const boost::system::error_code ec = co_await tls_stream->handshake(raw);
  if (ec) {
    metrics->record_handshake(ec == beast::error::timeout ? HandshakeOutcome::Timeout : HandshakeOutcome::Failed);
    co_return;
  }
  metrics->record_handshake(SSL_session_reused(tls_stream->native_handle()) == 1 ? HandshakeOutcome::Resumed
                                                                                 : HandshakeOutcome::Ok);
  const unsigned char* alpn = nullptr;
  unsigned int alpn_length = 0;
  SSL_get0_alpn_selected(tls_stream->native_handle(), &alpn, &alpn_length);
  if (alpn_length == 2 && alpn[0] == 'h' && alpn[1] == '2') {
    co_await h2_session(*tls_stream, connection, peer);
  } else {
    co_await http_session(*tls_stream, /*https=*/true, connection, peer);
  }
  co_await tls_stream->shutdown(std::chrono::seconds(2));
}

// A tls-alpn-01 validation (the client offers acme-tls/1, RFC 8737 §3): the challenge
// certificate presented for the name, acme-tls/1, and nothing after the handshake. A name with
// no challenge presented gets unrecognized_name, never a site's certificate.
awaitable<void> Server::Impl::tlsalpn01_validation(beast::tcp_stream& stream,
                                                   std::optional<TlsStream>& tls_stream,
                                                   const std::vector<std::uint8_t>& raw,
                                                   const std::string& name) {
  tls_stream.emplace(stream.release_socket(), acme_tls);
  if (!options.tlsalpn01 || name.empty() || !options.tlsalpn01->use_for(tls_stream->native_handle(), name)) {
    co_await asio::async_write(tls_stream->socket(),
                               asio::buffer(unrecognized_name_alert().data(), unrecognized_name_alert().size()),
                               kTuple);
    co_return;
  }
  tls_stream->expires_after(options.header_timeout);
  const boost::system::error_code ec = co_await tls_stream->handshake(raw);
  if (ec) co_return;
  co_await tls_stream->shutdown(std::chrono::seconds(2));
}

// Presents `cert` on this connection: leaf, key and chain, plus the OCSP staple when there is one.
bool Server::Impl::use_certificate(SSL* ssl, const CachedCertificate& cert) {
  STACK_OF(X509)* chain = sk_X509_new_null();
  if (!chain) return false;
  for (std::size_t i = 1; i < cert.chain.size(); ++i) sk_X509_push(chain, cert.chain[i].get());
  const bool ok = SSL_use_cert_and_key(ssl, cert.chain.front().get(), cert.key.get(), chain, 1) == 1;
  sk_X509_free(chain);  // SSL_use_cert_and_key took its own references
  if (ok && !cert.ocsp_response.empty()) {
    auto* der = static_cast<unsigned char*>(OPENSSL_memdup(cert.ocsp_response.data(), cert.ocsp_response.size()));
    if (der && SSL_set_tlsext_status_ocsp_resp(ssl, der, static_cast<long>(cert.ocsp_response.size())) != 1) {
      OPENSSL_free(der);
    }
  }
  return ok;
}

// Asks the CertManager; the answer resumes the awaiting coroutine on its executor (the
// connection's strand). Not a coroutine itself: g++ 12 mishandles lambda temporaries with
// captures inside co_await expressions, so the initiation captures nothing but `this`.
awaitable<CertificateAnswer> Server::Impl::async_certificate(std::string name,
                                                             std::string remote_ip) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(CertificateAnswer)>(
      [this](auto handler, std::string name, std::string remote_ip) {
        auto executor = asio::get_associated_executor(handler);
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        certificates.certificate_for(name, remote_ip, [executor, shared](CertificateAnswer answer) {
          asio::post(executor, [shared, answer = std::move(answer)]() mutable { (*shared)(std::move(answer)); });
        });
      },
      use_awaitable, std::move(name), std::move(remote_ip));
}

}  // namespace acmetool::serve
