// The HTTPS server engine: Asio + Beast with C++20 coroutines (see ../shared/notes/engine.md).
// A TLS connection is read up to the end of its ClientHello by us (client_hello.h); the
// certificate comes from the CertManager before any SSL object exists; the bytes read are then
// replayed into OpenSSL through Beast's buffered handshake. HTTP/1.1 on both ports; responses are
// written as a header plus pieces (strings and file slices read with pread), so files of any size
// stream without being loaded.
#include "acmetool/serve/server.h"

#include <fcntl.h>
#include <malloc.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <atomic>
#include <cctype>
#include <cstring>
#include <condition_variable>
#include <ctime>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <thread>
#include <utility>
#include <variant>

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#include "acmetool/pki/hostname.h"
#include "acmetool/pki/unique_fd.h"
#include "acmetool/serve/client_hello.h"
#include "acmetool/serve/encode.h"
#include "acmetool/serve/error.h"
#include "acmetool/serve/file_server.h"
#include "acmetool/serve/routes.h"
#include "proxy_internal.h"
#include "session_tickets_internal.h"

namespace acmetool::serve {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;
constexpr auto kTuple = asio::as_tuple(use_awaitable);

// ---- responses ----

// A response: its head, then body pieces in order. A piece is bytes we hold or a slice of an
// open file. Content-Length is the sum of the pieces (set by finish()).
struct FileSlice {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};
// The other end of a connection.
struct Peer {
  std::string ip;
  int port = 0;
};

// A reverse_proxy answer: the call until it is sent, then the upstream's response, whose body the
// writers relay piece by piece as it arrives.
struct Relay {
  std::shared_ptr<ReverseProxy> proxy;
  ProxyCall call;
  std::vector<caddyfile::HeaderOp> response_headers;  // the `header` handlers', applied last
  ProxyOutcome outcome;
  bool bodyless = false;  // HEAD, 1xx, 204, 304: the head is all there is
};

// The index of the io thread running this code (Server::start numbers them).
thread_local std::size_t t_io_thread = 0;

struct Reply {
  http::response<http::empty_body> head;
  std::vector<std::variant<std::string, FileSlice>> pieces;
  std::shared_ptr<pki::UniqueFd> file;  // the file the slices read from
  bool close = false;                   // close the connection after this response
  std::shared_ptr<AccessLogWriter> log;  // the site's access log, if it has one
  std::string user;                      // who basic_auth let in, for the log
  std::uint64_t file_size = 0;           // a file's size, for `encode` to judge its 304
  std::shared_ptr<Relay> relay;          // reverse_proxy: the body comes from upstream
  std::uint64_t relayed = 0;             // bytes of it sent so far
  std::uint64_t request_body_bytes = 0;  // the request body's length, for the log

  std::uint64_t body_length() const {
    std::uint64_t length = relayed;
    for (const auto& piece : pieces) {
      length += std::holds_alternative<std::string>(piece) ? std::get<std::string>(piece).size()
                                                           : std::get<FileSlice>(piece).length;
    }
    return length;
  }
  void finish(bool head_only) {
    if (relay) return;  // the upstream's head decides
    head.content_length(body_length());
    if (head_only) pieces.clear();
  }
};

// The peer of a connection; an IPv4 client of the dual-stack listener ("::ffff:192.0.2.1") as the
// IPv4 address it is, as logs, X-Forwarded-For and remote_ip matchers expect.
Peer peer_of(const tcp::endpoint& remote) {
  asio::ip::address address = remote.address();
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  }
  return Peer{address.to_string(), remote.port()};
}

// A request whose Transfer-Encoding is anything but one "chunked" (RFC 9112 §6.3: the length
// cannot be known; Go's net/http refuses the same): its body would be read as a next request.
bool unframeable(const http::request_header<>& req) {
  const auto [first, last] = req.equal_range(http::field::transfer_encoding);
  if (first == last) return false;
  return std::next(first) != last || !beast::iequals(first->value(), "chunked");
}

// The IMF-fixdate of now, for the Date field; computed once per second.
std::string date_now() {
  thread_local std::time_t cached_second = 0;
  thread_local std::string cached;
  const std::time_t now = std::time(nullptr);
  if (now != cached_second) {
    cached_second = now;
    cached = http_date(std::chrono::system_clock::from_time_t(now));
  }
  return cached;
}

Reply text_reply(http::status status, std::string body, unsigned version) {
  Reply reply;
  reply.head.result(status);
  reply.head.version(version);
  reply.head.set(http::field::content_type, "text/plain; charset=utf-8");
  if (!body.empty()) reply.pieces.emplace_back(std::move(body));
  return reply;
}

// The host a request names, without a port, lower case; "" when absent.
std::string request_host(const http::request_header<>& req) {
  std::string host(req[http::field::host]);
  if (!host.empty() && host.front() == '[') {  // [v6]:port
    const auto end = host.find(']');
    host = end == std::string::npos ? "" : host.substr(1, end - 1);
  } else if (const auto colon = host.rfind(':'); colon != std::string::npos) {
    host.resize(colon);
  }
  return normalise_server_name(host);
}

bool host_matches(const SiteOptions& site, const std::string& host) {
  if (site.hosts.empty()) return true;
  for (const std::string& pattern : site.hosts) {
    if (pki::match_wildcard(host, pattern)) return true;
  }
  return false;
}

}  // namespace

struct Server::Impl {
  // The sites requests are matched against: swapped whole by a reload, while requests in
  // progress keep the table they started with.
  struct SiteTable {
    std::vector<SiteOptions> sites;
    bool redirect_http = true;
    /// The state of every reverse_proxy handler in `sites`, made when the table is.
    std::map<const caddyfile::ReverseProxyHandler*, std::shared_ptr<ReverseProxy>> proxies;
  };

  Impl(ServerOptions o, CertManager& c)
      : options(std::move(o)),
        certificates(c),
        threads_wanted(options.threads ? options.threads : std::max(1u, std::thread::hardware_concurrency())),
        io(threads_wanted),
        tls(ssl::context::tls_server),
        acme_tls(ssl::context::tls_server),
        sites(make_site_table(options.sites, options.redirect_http)),
        metrics(options.metrics ? options.metrics : std::make_shared<ServerMetrics>()),
        tickets(tls.native_handle()) {
    configure_tls();
  }

  // Mozilla's "intermediate" profile: TLS 1.2 and 1.3, AEAD ECDHE suites, X25519/P-256/P-384,
  // the client's preference (all suites are strong), no compression or renegotiation.
  void configure_tls() {
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

  // The protocols a TLS context offers (wire format: length-prefixed names, ours in order of
  // preference) and what to answer a client that offers none of them.
  struct AlpnOffer {
    std::vector<unsigned char> protocols;
    int on_mismatch;
  };
  static int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                         unsigned int inlen, void* arg) {
    const auto& offer = *static_cast<const AlpnOffer*>(arg);
    unsigned char* selected = nullptr;
    if (SSL_select_next_proto(&selected, outlen, offer.protocols.data(), static_cast<unsigned int>(offer.protocols.size()),
                              in, inlen) != OPENSSL_NPN_NEGOTIATED) {
      return offer.on_mismatch;
    }
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
  }

  void log(std::string_view line) const {
    if (options.log) options.log(line);
  }

  // ---- listeners ----

  // Each io thread accepts on its own socket (SO_REUSEPORT; the kernel spreads connections), so a
  // connection lives on the thread that accepted it: no hand-over, no wake-up of another thread.
  // A probe without SO_REUSEPORT first makes a port someone else listens on an error (also a
  // second acmetool on the same port) instead of a silent share.
  void listen(int& port, bool https) {
    std::vector<std::string> addresses = options.listen_addresses;
    if (addresses.empty()) addresses = {"::"};
    for (const std::string& address : addresses) {
      const auto ip = asio::ip::make_address(address);
      tcp::endpoint endpoint(ip, static_cast<unsigned short>(port));
      auto fail = [&](const boost::system::error_code& ec) {
        throw Error("listening on " + (ip.is_v6() ? "[" + address + "]" : address) + ":" + std::to_string(port) +
                    ": " + ec.message());
      };
      boost::system::error_code ec;
      {
        tcp::acceptor probe(*io.front());
        bind_socket(probe, endpoint, address, false, ec);
        if (ec) fail(ec);
        endpoint.port(probe.local_endpoint().port());
      }
      for (auto& context : io) {
        auto acceptor = std::make_unique<tcp::acceptor>(*context);
        bind_socket(*acceptor, endpoint, address, true, ec);
        if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
        if (ec) fail(ec);
        asio::co_spawn(*context, accept_loop(*acceptor, https), asio::detached);
        acceptors.push_back(std::move(acceptor));
      }
      port = endpoint.port();  // the next address binds the same port
    }
  }

  static void bind_socket(tcp::acceptor& acceptor, const tcp::endpoint& endpoint, const std::string& address,
                          bool shared, boost::system::error_code& ec) {
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec && shared) acceptor.set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true), ec);
    if (!ec && endpoint.address().is_v6() && address == "::") acceptor.set_option(asio::ip::v6_only(false), ec);
    if (!ec) acceptor.bind(endpoint, ec);
  }

  awaitable<void> accept_loop(tcp::acceptor& acceptor, bool https) {
    for (;;) {
      // The connection lives on the acceptor's io_context: one thread, so no strand and no lock
      // between its operations.
      auto [ec, socket] = co_await acceptor.async_accept(kTuple);
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
        continue;  // EMFILE and the like: keep accepting
      }
      // Responses go out as a header write and body writes: without TCP_NODELAY, Nagle's
      // algorithm holds the body back for the client's delayed ACK (~40 ms a request).
      boost::system::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      auto executor = socket.get_executor();
      asio::co_spawn(executor, https ? tls_connection(std::move(socket)) : plain_connection(std::move(socket)),
                     asio::detached);
    }
  }

  // ---- connection bookkeeping for a graceful stop ----

  // One live connection: whether it waits between requests, and its socket, which a graceful
  // stop shuts for reading (thread-safe at the OS level) to end an idle wait. A connection leaves
  // (LiveGuard) before its socket is closed, so a registered descriptor is always its own.
  struct Live {
    std::atomic<bool> idle{false};  ///< flipped twice a request by its own thread: no lock
    int fd = -1;
  };

  std::pair<std::uint64_t, Live*> enter(int fd) {
    std::lock_guard lock(live_mu);
    const std::uint64_t id = ++next_id;
    Live& entry = live[id];  // map nodes stay put: the pointer lives as long as the entry
    entry.fd = fd;
    return {id, &entry};
  }
  static void set_idle(Live* connection, bool idle) { connection->idle.store(idle, std::memory_order_relaxed); }
  void leave(std::uint64_t id) {
    bool idle = false;
    {
      std::lock_guard lock(live_mu);
      live.erase(id);
      idle = live.empty();
      if (idle) live_cv.notify_all();
    }
    if (idle) return_memory();
  }

  // Once no connection is left, hands the heap's free pages back to the system (glibc keeps
  // them otherwise: a burst of connections would pin its peak for good): at once, or, when the
  // last time was less than 5 s ago, then; and only if the server is still idle by then.
  void return_memory() {
    if (trim_pending.exchange(true)) return;
    asio::post(*io.front(), [this] {
      trim_timer.expires_at(std::max(std::chrono::steady_clock::now(), last_trim + std::chrono::seconds(5)));
      trim_timer.async_wait([this](const boost::system::error_code& ec) {
        trim_pending = false;
        if (ec) return;
        std::unique_lock lock(live_mu);
        if (!live.empty()) return;
        lock.unlock();
        ::malloc_trim(0);
        last_trim = std::chrono::steady_clock::now();
      });
    });
  }
  struct LiveGuard {
    Impl& impl;
    std::pair<std::uint64_t, Live*> entry;
    Live* connection() const { return entry.second; }
    ~LiveGuard() { impl.leave(entry.first); }
  };

  // ---- TLS front end ----

  using TlsStream = beast::ssl_stream<beast::tcp_stream>;

  awaitable<void> tls_connection(tcp::socket socket) {
    boost::system::error_code ignored;
    const tcp::endpoint remote = socket.remote_endpoint(ignored);
    const Peer peer = peer_of(remote);
    const std::string local_ip = socket.local_endpoint(ignored).address().to_string();
    const int fd = socket.native_handle();
    beast::tcp_stream stream(std::move(socket));
    std::optional<TlsStream> tls_stream;  // takes the socket over once the certificate is known
    const ConnectionMetric counted(*metrics, Scheme::Https);
    const LiveGuard guard{*this, enter(fd)};  // destroyed first: leaves before the socket closes
    try {
      co_await tls_session(stream, tls_stream, peer, local_ip, guard.connection());
    } catch (const std::exception& e) {
      log("connection from " + peer.ip + ": " + e.what());
    }
  }

  awaitable<void> tls_session(beast::tcp_stream& stream, std::optional<TlsStream>& tls_stream,
                              const Peer& peer, const std::string& local_ip, Live* connection) {
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
    tls_stream.emplace(std::move(stream), tls);
    if (!use_certificate(tls_stream->native_handle(), *answer.certificate)) {
      metrics->record_handshake(HandshakeOutcome::Failed);
      co_return;
    }
    beast::get_lowest_layer(*tls_stream).expires_after(options.header_timeout);
    auto [ec, used] = co_await tls_stream->async_handshake(ssl::stream_base::server, asio::buffer(raw), kTuple);
    (void)used;
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
    beast::get_lowest_layer(*tls_stream).expires_after(std::chrono::seconds(2));
    co_await tls_stream->async_shutdown(kTuple);
  }

  // A tls-alpn-01 validation (the client offers acme-tls/1, RFC 8737 §3): the challenge
  // certificate presented for the name, acme-tls/1, and nothing after the handshake. A name with
  // no challenge presented gets unrecognized_name, never a site's certificate.
  awaitable<void> tlsalpn01_validation(beast::tcp_stream& stream, std::optional<TlsStream>& tls_stream,
                                       const std::vector<std::uint8_t>& raw, const std::string& name) {
    tls_stream.emplace(std::move(stream), acme_tls);
    if (!options.tlsalpn01 || name.empty() || !options.tlsalpn01->use_for(tls_stream->native_handle(), name)) {
      co_await asio::async_write(tls_stream->next_layer(),
                                 asio::buffer(unrecognized_name_alert().data(), unrecognized_name_alert().size()),
                                 kTuple);
      co_return;
    }
    beast::get_lowest_layer(*tls_stream).expires_after(options.header_timeout);
    auto [ec, used] = co_await tls_stream->async_handshake(ssl::stream_base::server, asio::buffer(raw), kTuple);
    (void)used;
    if (ec) co_return;
    beast::get_lowest_layer(*tls_stream).expires_after(std::chrono::seconds(2));
    co_await tls_stream->async_shutdown(kTuple);
  }

  // Presents `cert` on this connection: leaf, key and chain, plus the OCSP staple when there is one.
  static bool use_certificate(SSL* ssl, const CachedCertificate& cert) {
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
  awaitable<CertificateAnswer> async_certificate(std::string name, std::string remote_ip) {
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

  // ---- plain HTTP ----

  awaitable<void> plain_connection(tcp::socket socket) {
    const int fd = socket.native_handle();
    beast::tcp_stream stream(std::move(socket));
    const ConnectionMetric counted(*metrics, Scheme::Http);
    const LiveGuard guard{*this, enter(fd)};
    try {
      boost::system::error_code ignored;
      const tcp::endpoint remote = stream.socket().remote_endpoint(ignored);
      // A named local: g++ 12 may end a temporary's life at the co_await's suspension.
      const Peer peer = peer_of(remote);
      co_await http_session(stream, /*https=*/false, guard.connection(), peer);
      stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    } catch (const std::exception& e) {
      log(std::string("plain connection: ") + e.what());
    }
  }

  // ---- HTTP/1.1 ----

  // A request body read piece by piece for the upstream, as the client sends it (an upload
  // is never held whole); "100 Continue" goes out first when the client waits for it.
  template <class Stream>
  class ClientBody final : public UpstreamBodySource {
   public:
    ClientBody(Impl& impl, Stream& stream, beast::flat_buffer& buffer, http::request_parser<http::empty_body>&& head,
               bool expect_continue)
        : impl_(impl), stream_(stream), buffer_(buffer), parser_(std::move(head)), continue_(expect_continue) {
      parser_.body_limit(boost::none);
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
        std::string piece(16 * 1024, '\0');
        parser_.get().body().data = piece.data();
        parser_.get().body().size = piece.size();
        beast::get_lowest_layer(stream_).expires_after(impl_.options.idle_timeout);
        auto [ec, n] = co_await http::async_read_some(stream_, buffer_, parser_, kTuple);
        (void)n;
        if (ec == http::error::need_buffer) ec = {};
        if (ec) {
          failed_ = true;
          break;
        }
        piece.resize(piece.size() - parser_.get().body().size);
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
  };

  template <class Stream>
  awaitable<void> http_session(Stream& stream, bool https, Live* connection, const Peer& peer) {
    beast::flat_buffer buffer;
    for (bool first = true;; first = false) {
      if (stopping) co_return;
      http::request_parser<http::empty_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(options.max_header_bytes));
      parser.body_limit(boost::none);  // decided once the handler is known (see below)
      // Waiting for the next request counts as idle (a graceful stop closes it); once its
      // first bytes are here, the head must arrive within header_timeout.
      set_idle(connection, !first);
      beast::get_lowest_layer(stream).expires_after(first ? options.header_timeout : options.idle_timeout);
      if (!first && buffer.size() == 0) {
        auto [ec, n] = co_await stream.async_read_some(buffer.prepare(4096), kTuple);
        if (ec) co_return;
        buffer.commit(n);
      }
      set_idle(connection, false);
      beast::get_lowest_layer(stream).expires_after(options.header_timeout);
      auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, kTuple);
      (void)n;
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
      // The head stays readable in `head` while a body parser takes the parser over.
      const bool has_body = parser.chunked() || parser.content_length().value_or(0) > 0;
      const bool keep_alive = parser.keep_alive();
      std::optional<http::request_header<>> saved;
      if (has_body) saved.emplace(parser.get());
      const http::request_header<>& req = has_body ? *saved : parser.get();
      const auto start = std::chrono::system_clock::now();
      const auto began = std::chrono::steady_clock::now();
      Reply reply = co_await handle_request(req, https, peer);
      if (reply.relay && has_body) {  // an upload: straight through to the upstream
        const bool expect_continue = beast::iequals(req[http::field::expect], "100-continue");
        auto body = std::make_shared<ClientBody<Stream>>(*this, stream, buffer, std::move(parser), expect_continue);
        reply.relay->call.body_source = body;
        if (!req[http::field::content_length].empty()) reply.relay->call.body_length = body_length_of(req);
        co_await relay_head(reply, req.method() == http::verb::head, req.version());
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
        if (reply.relay) co_await relay_head(reply, req.method() == http::verb::head, req.version());
      }
      if (!keep_alive || stopping) reply.close = true;
      const bool written = co_await write_reply(stream, reply);
      metrics->record_request(Protocol::Http1, https ? Scheme::Https : Scheme::Http, written ? reply.head.result_int() : 0,
                              std::chrono::steady_clock::now() - began, written ? reply.body_length() : 0);
      log_access(req, reply, start, began, peer, ssl_of(stream));
      if (written && reply.relay && reply.relay->outcome.tunnel) {
        co_await tunnel(stream, buffer, *reply.relay->outcome.tunnel);
        co_return;
      }
      if (!written || reply.close) co_return;
    }
  }

  // Answers a request that cannot be read on (bad head, too large) with `status` and closes.
  template <class Stream>
  awaitable<void> refuse(Stream& stream, http::status status) {
    Reply reply = text_reply(status, "", 11);
    reply.close = true;
    reply.finish(false);
    co_await write_reply(stream, reply);
  }

  static std::uint64_t body_length_of(const http::request_header<>& req) {
    std::uint64_t length = 0;
    const std::string_view text = req[http::field::content_length];
    std::from_chars(text.data(), text.data() + text.size(), length);
    return length;
  }

  // After a 101 from the upstream (WebSocket and other upgrades): bytes both ways, those the client
  // sent after its request first, until either side ends; then the other direction is cancelled
  // and the connection closes. No timeout applies, as in Caddy (no stream_timeout yet).
  template <class Stream>
  awaitable<void> tunnel(Stream& stream, beast::flat_buffer& buffer, UpstreamTunnel& upstream) {
    using namespace asio::experimental::awaitable_operators;
    beast::get_lowest_layer(stream).expires_never();
    bool done = false;  // one direction ended: the other stops at its next step
    auto up = tunnel_up(stream, buffer, upstream, done);
    auto down = tunnel_down(stream, upstream, done);
    co_await (std::move(up) && std::move(down));
  }
  template <class Stream>
  awaitable<void> tunnel_up(Stream& stream, beast::flat_buffer& buffer, UpstreamTunnel& upstream, bool& done) {
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
  awaitable<void> tunnel_down(Stream& stream, UpstreamTunnel& upstream, bool& done) {
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

  // ---- HTTP/2 (nghttp2 server sessions; the same handlers as HTTP/1.1) ----
  //
  // Two coroutines share a connection: a reader that only reads the socket and hands the bytes
  // over, and a writer that feeds them to nghttp2, answers the requests that are complete and
  // writes what nghttp2 has to send. A reverse_proxy answer runs in a coroutine of its own per
  // stream (h2_relay), so a slow upstream holds up only its stream; its body reaches nghttp2
  // through a bounded buffer (a deferred data source) and wakes the writer.

  static constexpr std::size_t kMaxRequestBody = 1024 * 1024;  // the handlers' limit, as HTTP/1.1
  static constexpr std::size_t kRelayBuffer = 64 * 1024;       // a relayed body read ahead, per stream

  struct H2Stream {
    explicit H2Stream(const asio::any_io_executor& executor) : upload_ready(executor), room(executor) {}
    std::int32_t id = 0;
    http::request<http::string_body> request;
    std::chrono::system_clock::time_point start = std::chrono::system_clock::now();  // its HEADERS began
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

  struct H2Connection {
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

  static int h2_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    auto& c = *static_cast<H2Connection*>(user);
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
      auto stream = std::make_shared<H2Stream>(c.executor);
      stream->id = frame->hd.stream_id;
      stream->request.version(20);
      c.streams[frame->hd.stream_id] = std::move(stream);
    }
    return 0;
  }

  static int h2_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name, std::size_t name_length,
                       const std::uint8_t* value, std::size_t value_length, std::uint8_t, void* user) {
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
  static int h2_data(nghttp2_session* session, std::uint8_t, std::int32_t id, const std::uint8_t* data,
                     std::size_t length, void* user) {
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

  static int h2_frame_received(nghttp2_session*, const nghttp2_frame* frame, void* user) {
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

  static int h2_stream_closed(nghttp2_session*, std::int32_t id, std::uint32_t, void* user) {
    auto& c = *static_cast<H2Connection*>(user);
    if (auto it = c.streams.find(id); it != c.streams.end()) {
      it->second->close();
      c.streams.erase(it);
    }
    return 0;
  }

  // Fills a DATA frame from the response's pieces: our strings, then file slices read with pread.
  static ssize_t h2_read_body(nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t length,
                              std::uint32_t* flags, nghttp2_data_source* source, void*) {
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
  static ssize_t h2_read_relayed(nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t length,
                                 std::uint32_t* flags, nghttp2_data_source* source, void*) {
    auto& s = *static_cast<H2Stream*>(source->ptr);
    const std::size_t pending = s.relay_pending();
    if (pending == 0) {
      if (!s.relay_done) {
        s.deferred = true;
        return NGHTTP2_ERR_DEFERRED;
      }
      if (s.relay_failed) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
      *flags |= NGHTTP2_DATA_FLAG_EOF;
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
    if (s.relay_done && !s.relay_failed && s.relay_pending() == 0) *flags |= NGHTTP2_DATA_FLAG_EOF;
    s.room.cancel();  // h2_relay may read on
    return static_cast<ssize_t>(n);
  }

  // Submits the response of one stream: its head, and its body from the pieces or the relay.
  void h2_respond(H2Connection& c, H2Stream& stream) {
    Reply& reply = stream.reply;
    // Counted and logged when the response is submitted; its body goes out as the window allows.
    c.impl.metrics->record_request(Protocol::Http2, Scheme::Https, reply.head.result_int(),
                                   std::chrono::steady_clock::now() - stream.began, reply.body_length());
    log_access(stream.request, reply, stream.start, stream.began, c.peer, c.ssl);
    if (reply.head.find(http::field::date) == reply.head.end()) reply.head.set(http::field::date, date_now());
    // Field names in lower case; the fields HTTP/2 forbids (RFC 9113 §8.2.2) are dropped.
    std::vector<std::string> names;
    std::vector<std::string> values;
    names.push_back(":status");
    values.push_back(std::to_string(reply.head.result_int()));
    for (const auto& field : reply.head) {
      std::string name(field.name_string());
      for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (name == "connection" || name == "keep-alive" || name == "proxy-connection" ||
          name == "transfer-encoding" || name == "upgrade") {
        continue;
      }
      names.push_back(std::move(name));
      values.emplace_back(field.value());
    }
    std::vector<nghttp2_nv> nva;
    for (std::size_t i = 0; i < names.size(); ++i) {
      nva.push_back({reinterpret_cast<std::uint8_t*>(names[i].data()), reinterpret_cast<std::uint8_t*>(values[i].data()),
                     names[i].size(), values[i].size(), NGHTTP2_NV_FLAG_NONE});
    }
    nghttp2_data_provider provider{};
    provider.source.ptr = &stream;
    const bool relayed = reply.relay && !reply.relay->bodyless;
    provider.read_callback = relayed ? h2_read_relayed : h2_read_body;
    const bool has_body = relayed || !reply.pieces.empty();
    nghttp2_submit_response(c.session, stream.id, nva.data(), nva.size(), has_body ? &provider : nullptr);
  }

  template <class Stream>
  awaitable<void> h2_session(Stream& stream, Live* connection, const Peer& peer) {
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
  awaitable<void> h2_reader(Stream& stream, std::shared_ptr<H2Connection> shared) {
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
  awaitable<void> h2_writer(Stream& stream, std::shared_ptr<H2Connection> shared, Live* connection) {
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
      bool failed = false;
      for (;;) {  // everything nghttp2 has to send
        const std::uint8_t* data = nullptr;
        const ssize_t n = nghttp2_session_mem_send(c.session, &data);
        if (n <= 0) {
          failed = n < 0;
          break;
        }
        beast::get_lowest_layer(stream).expires_after(options.idle_timeout);
        auto [ec, written] = co_await asio::async_write(stream, asio::buffer(data, static_cast<std::size_t>(n)), kTuple);
        (void)written;
        if (ec) {
          failed = true;
          break;
        }
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

  // Answers the requests that have fully arrived: at once, or, for reverse_proxy, in a relay of
  // their own.
  awaitable<void> h2_dispatch(std::shared_ptr<H2Connection> shared) {
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

  // An HTTP/2 upload for the upstream: the DATA that has arrived, each piece's window opened as
  // it is taken (so a client sends no faster than the upstream reads).
  class H2Upload final : public UpstreamBodySource {
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

  // One reverse_proxy answer on its stream: the upstream's head, then its body into the stream's
  // buffer as fast as the client takes it (at most kRelayBuffer ahead).
  awaitable<void> h2_relay(std::shared_ptr<H2Connection> shared, std::shared_ptr<H2Stream> s) {
    H2Connection& c = *shared;
    Reply& reply = s->reply;
    co_await relay_head(reply, s->request.method() == http::verb::head, 20);
    if (c.ended || s->closed) co_return;
    h2_respond(c, *s);
    c.notify();
    if (!reply.relay || reply.relay->bodyless) co_return;
    UpstreamBody& body = reply.relay->outcome.body;
    while (!s->relay_done) {
      if (s->relay_pending() >= kRelayBuffer) {
        s->room.expires_at(asio::steady_timer::time_point::max());
        co_await s->room.async_wait(kTuple);
        if (c.ended || s->closed) co_return;
        continue;
      }
      std::optional<std::string> piece = co_await body.next_chunk();
      if (c.ended || s->closed) co_return;
      if (piece) {
        s->relayed.append(*piece);
        reply.relayed += piece->size();
      } else {
        s->relay_done = true;
        s->relay_failed = body.error().has_value();
        if (s->relay_failed) log("reverse_proxy: " + body.error()->reason);
      }
      if (s->deferred) {
        s->deferred = false;
        nghttp2_session_resume_data(c.session, s->id);
      }
      c.notify();
    }
  }

  template <class Stream>
  awaitable<bool> write_reply(Stream& stream, Reply& reply) {
    if (reply.head.find(http::field::date) == reply.head.end()) reply.head.set(http::field::date, date_now());
    if (reply.close) reply.head.keep_alive(false);
    beast::get_lowest_layer(stream).expires_after(options.idle_timeout);
    if (reply.relay && !reply.relay->bodyless) co_return co_await write_relayed(stream, reply);
    // A small response (the common case) goes out in one write: head and body in one TLS record
    // and one send(), instead of one per piece.
    constexpr std::uint64_t kOneWrite = 16 * 1024;
    if (std::optional<std::string> whole = small_response(reply, kOneWrite)) {
      auto [ec, n] = co_await asio::async_write(stream, asio::buffer(*whole), kTuple);
      (void)n;
      co_return !ec;
    }
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
  // upstream gave a Content-Length. A body that ends early closes the connection, so the client
  // sees a truncated response (no last chunk, or fewer bytes than promised).
  template <class Stream>
  awaitable<bool> write_relayed(Stream& stream, Reply& reply) {
    UpstreamBody& body = reply.relay->outcome.body;
    const bool chunked = reply.head[http::field::transfer_encoding] == "chunked";
    std::string out;
    append_head(out, reply.head);
    for (;;) {
      std::optional<std::string> piece = co_await body.next_chunk();
      if (piece) {
        if (chunked) {
          char size[20];
          const auto [end, ec] = std::to_chars(size, size + sizeof size, piece->size(), 16);
          (void)ec;
          out.append(size, end).append("\r\n").append(*piece).append("\r\n");
        } else {
          out.append(*piece);
        }
        reply.relayed += piece->size();
      } else if (body.error()) {
        log("reverse_proxy: " + body.error()->reason);
      } else if (chunked) {
        out.append("0\r\n\r\n");
      }
      if (!out.empty()) {
        beast::get_lowest_layer(stream).expires_after(options.idle_timeout);
        auto [ec, n] = co_await asio::async_write(stream, asio::buffer(out), kTuple);
        (void)n;
        if (ec) co_return false;
        out.clear();
      }
      if (!piece) co_return !body.error();
    }
  }

  // Plain HTTP: the kernel copies the slice from the file to the socket (sendfile(2)), nothing
  // passes through user space. Waiting for the socket to drain counts against the idle timeout.
  awaitable<bool> send_file_slice(beast::tcp_stream& stream, int file, FileSlice slice) {
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
  // without its ostream).
  static void append_head(std::string& out, const http::response<http::empty_body>& head) {
    const unsigned version = head.version();
    out.append("HTTP/").append(1, static_cast<char>('0' + version / 10)).append(1, '.');
    out.append(1, static_cast<char>('0' + version % 10)).append(1, ' ');
    char status[4];
    const auto [end, ec] = std::to_chars(status, status + sizeof status, head.result_int());
    (void)ec;
    out.append(status, end).append(1, ' ').append(head.reason()).append("\r\n");
    for (const auto& field : head) out.append(field.name_string()).append(": ").append(field.value()).append("\r\n");
    out.append("\r\n");
  }

  // The whole response as bytes when its body is at most `limit`; nullopt otherwise, or when a
  // file slice cannot be read in full (then the piecewise path fails the same way).
  static std::optional<std::string> small_response(const Reply& reply, std::uint64_t limit) {
    if (!reply.head.has_content_length()) return std::nullopt;
    const std::uint64_t body = reply.body_length();
    if (body > limit) return std::nullopt;
    std::string out;
    out.reserve(256 + static_cast<std::size_t>(body));
    append_head(out, reply.head);
    if (!read_body(reply, out)) return std::nullopt;
    return out;
  }

  // ---- handlers ----

  // handle() on the connection's thread, or, for a request with credentials (basic_auth may
  // spend ~1 s in bcrypt on them), on the blocking pool so that other connections are not stalled.
  // Not a coroutine itself (g++ 12 and lambda captures, see async_certificate).
  awaitable<Reply> handle_request(const http::request_header<>& req, bool https,
                                  const Peer& peer) {
    if (req.find(http::field::authorization) == req.end()) return ready_reply(handle(req, https, peer));
    return asio::co_spawn(blocking, handle_on(this, &req, https, &peer), use_awaitable);
  }
  static awaitable<Reply> ready_reply(Reply reply) { co_return reply; }

  // handle_request, then, for reverse_proxy, the upstream's response head.
  awaitable<Reply> respond(const http::request_header<>& req, bool https, const Peer& peer) {
    Reply reply = co_await handle_request(req, https, peer);
    if (reply.relay) co_await relay_head(reply, req.method() == http::verb::head, req.version());
    co_return reply;
  }

  // Sends a reverse_proxy call upstream and turns the outcome into the reply's head: the
  // upstream's status and fields (after header_down, then the `header` handlers), or our own 502,
  // 503 or 504 with the reason in the log.
  awaitable<void> relay_head(Reply& reply, bool head_only, unsigned version) {
    Relay& relay = *reply.relay;
    const std::string what = relay.call.request.method + " " + relay.call.target;
    relay.outcome = co_await relay.proxy->forward(std::move(relay.call), t_io_thread);
    ProxyOutcome& outcome = relay.outcome;
    reply.head = {};
    reply.head.version(version);
    reply.head.result(static_cast<unsigned>(outcome.status));
    if (!outcome.error.empty()) {
      log("reverse_proxy: " + what + ": " + outcome.error + " (" + std::to_string(outcome.status) + ")");
      const std::vector<caddyfile::HeaderOp> ops = std::move(relay.response_headers);
      reply.relay.reset();
      apply_header_ops(reply.head, ops);
      reply.finish(head_only);
      co_return;
    }
    for (const auto& [name, value] : outcome.fields) reply.head.insert(name, value);
    apply_header_ops(reply.head, relay.response_headers);
    const int status = outcome.status;
    relay.bodyless = head_only || status == 204 || status == 304 || (status >= 100 && status < 200);
    if (relay.bodyless || reply.head.has_content_length()) co_return;
    if (version == 11) {
      reply.head.set(http::field::transfer_encoding, "chunked");
    } else if (version == 10) {
      reply.close = true;  // the end of the body is the end of the connection
    }
  }
  static awaitable<Reply> handle_on(Impl* self, const http::request_header<>* req, bool https,
                                    const Peer* peer) {
    co_return self->handle(*req, https, *peer);
  }

  Reply handle(const http::request_header<>& req, bool https, const Peer& peer) {
    const std::string host = request_host(req);
    // The site for this host and scheme: an https site on the HTTP port only redirects.
    const std::shared_ptr<const SiteTable> table = current_sites();
    const SiteOptions* site = nullptr;
    for (const SiteOptions& s : table->sites) {
      if (host_matches(s, host) && (s.https || !https)) {
        site = &s;
        break;
      }
    }
    Reply reply;
    const std::string_view target = req.target();
    if (!https && options.http01 && target.starts_with(Http01Responder::kPathPrefix)) {
      const auto answer = options.http01->answer(target.substr(Http01Responder::kPathPrefix.size()));
      reply = answer ? text_reply(http::status::ok, *answer, req.version())
                     : text_reply(http::status::not_found, "", req.version());
      if (answer) reply.head.set(http::field::content_type, "text/plain");
    } else if (!site) {
      reply = text_reply(http::status::not_found, "", req.version());
    } else if (!https && site->https) {
      reply = table->redirect_http ? redirect_to_https(req, host) : text_reply(http::status::not_found, "", 11);
    } else if (site->routes) {
      reply = run_routes(*table, *site, req, https, host, peer);
    } else {
      reply = serve_file(site->files, req, req.target());
    }
    if (site) reply.log = site->access_log;
    if (reply.head.result() == http::status::not_modified) reply.head.erase(http::field::content_type);
    reply.head.version(req.version());
    reply.finish(req.method() == http::verb::head);
    return reply;
  }

  // A Caddyfile site: the routes decide, this sends.
  Reply run_routes(const SiteTable& table, const SiteOptions& site, const http::request_header<>& req,
                   bool https, const std::string& host, const Peer& peer) {
    RouteRequest request;
    request.method = std::string(req.method_string());
    request.target = std::string(req.target());
    request.host = host;
    request.scheme = https ? "https" : "http";
    request.port = https ? https_port_bound : http_port_bound;
    request.remote_ip = peer.ip;
    request.remote_port = peer.port;
    request.version = static_cast<int>(req.version());
    for (const auto& field : req) request.headers.emplace_back(field.name_string(), field.value());
    const RouteResult result = evaluate_routes(*site.routes, request);
    std::optional<EncodeFormat> coding;
    if (result.encode) {
      coding = choose_encoding(*result.encode, {req[http::field::accept_encoding], req[http::field::cache_control],
                                                req.find(http::field::sec_websocket_key) != req.end()});
    }
    Reply reply;
    switch (result.kind) {
      case RouteResult::Kind::Empty: reply = text_reply(http::status::ok, "", req.version()); break;
      case RouteResult::Kind::Files: {
        std::string target = result.path;
        if (!result.query.empty()) target += "?" + result.query;
        reply = serve_file(result.files, req, target, coding ? coding->name : std::string_view());
        break;
      }
      case RouteResult::Kind::Respond:
        reply = text_reply(static_cast<http::status>(result.status), result.body, req.version());
        reply.close = result.close;
        break;
      case RouteResult::Kind::Redirect:
        reply = text_reply(static_cast<http::status>(result.status), result.body, req.version());
        reply.head.set(http::field::location, result.location);
        if (result.body.empty()) reply.head.erase(http::field::content_type);
        else reply.head.set(http::field::content_type, "text/html; charset=utf-8");
        break;
      case RouteResult::Kind::Proxy: {
        auto relay = std::make_shared<Relay>();
        relay->proxy = table.proxies.at(result.proxy);
        relay->call.target = result.path;
        if (!result.query.empty()) relay->call.target += "?" + result.query;
        relay->call.request = std::move(request);
        relay->response_headers = result.response_headers;
        reply.relay = std::move(relay);
        reply.user = result.user;
        return reply;  // encode does not compress relayed bodies (yet)
      }
      case RouteResult::Kind::Unsupported:
        log(result.unsupported);
        reply = text_reply(http::status::internal_server_error, "", req.version());
        break;
    }
    apply_header_ops(reply.head, result.response_headers);
    if (result.encode) encode_reply(reply, *result.encode, coding);
    reply.user = result.user;
    return reply;
  }

  // The `encode` handler on a finished reply: compressed in memory with this thread's encoder
  // when Caddy's rules allow it (encode.h), with Content-Encoding, the coding in the ETag, no
  // Accept-Ranges, and Vary: Accept-Encoding whenever the response is one that gets encoded. A
  // 304 gets the ETag and Vary its 200 would have. Bodies over kMaxEncoded go out as they are.
  static void encode_reply(Reply& reply, const EncodeOptions& options, const std::optional<EncodeFormat>& coding) {
    constexpr std::uint64_t kMaxEncoded = 8 * 1024 * 1024;
    const bool not_modified = reply.head.result() == http::status::not_modified;
    EncodeResponse facts;
    facts.status = not_modified ? 200 : reply.head.result_int();
    for (const auto& field : reply.head) facts.headers.emplace_back(field.name_string(), field.value());
    facts.length = not_modified ? reply.file_size : reply.body_length();
    if (!should_encode(options, facts) || facts.length > kMaxEncoded) return;
    if (!vary_lists(reply.head[http::field::vary], "Accept-Encoding")) {
      reply.head.insert(http::field::vary, "Accept-Encoding");
    }
    if (!coding) return;
    if (const std::string_view etag = reply.head[http::field::etag]; !etag.empty()) {
      reply.head.set(http::field::etag, encoded_etag(etag, coding->name));
    }
    if (not_modified) return;
    std::string body;
    if (!read_body(reply, body)) return;
    Encoder& encoder = thread_encoder(*coding);
    std::string compressed;
    encoder.write(body, compressed);
    encoder.finish(compressed);
    encoder.reset();
    reply.pieces.clear();
    reply.pieces.emplace_back(std::move(compressed));
    reply.file.reset();
    reply.head.set(http::field::content_encoding, coding->name);
    reply.head.erase(http::field::accept_ranges);
  }

  // This thread's encoder for a format and level, made once and reset between responses (zlib
  // allocates about 256 KiB for each new stream).
  static Encoder& thread_encoder(const EncodeFormat& format) {
    thread_local std::vector<std::pair<EncodeFormat, std::unique_ptr<Encoder>>> encoders;
    for (auto& [f, encoder] : encoders) {
      if (f.name == format.name && f.level == format.level) return *encoder;
    }
    return *encoders.emplace_back(format, make_encoder(format.name, format.level)).second;
  }

  // Every piece of the body in `out`; false when a file slice cannot be read in full.
  static bool read_body(const Reply& reply, std::string& out) {
    for (const auto& piece : reply.pieces) {
      if (const auto* text = std::get_if<std::string>(&piece)) {
        out += *text;
        continue;
      }
      const FileSlice slice = std::get<FileSlice>(piece);
      const std::size_t at = out.size();
      out.resize(at + static_cast<std::size_t>(slice.length));
      const ssize_t got = ::pread(reply.file->get(), out.data() + at, static_cast<std::size_t>(slice.length),
                                  static_cast<off_t>(slice.offset));
      if (got != static_cast<ssize_t>(slice.length)) return false;
    }
    return true;
  }

  // One line in the site's access log, with Caddy's fields.
  static void log_access(const http::request_header<>& req, const Reply& reply,
                         std::chrono::system_clock::time_point start, std::chrono::steady_clock::time_point began,
                         const Peer& peer, SSL* ssl) {
    if (!reply.log) return;
    AccessLogEntry entry;
    entry.start = start;
    entry.duration = std::chrono::steady_clock::now() - began;
    entry.remote_ip = peer.ip;
    entry.remote_port = peer.port;
    entry.proto = req.version() == 20 ? "HTTP/2.0" : req.version() == 10 ? "HTTP/1.0" : "HTTP/1.1";
    entry.method = std::string(req.method_string());
    entry.host = std::string(req[http::field::host]);
    entry.uri = std::string(req.target());
    for (const auto& field : req) entry.request_headers.emplace_back(field.name_string(), field.value());
    if (ssl) {
      AccessLogEntry::Tls tls;
      tls.resumed = SSL_session_reused(ssl) == 1;
      tls.version = SSL_version(ssl);
      if (const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl)) tls.cipher_suite = SSL_CIPHER_get_protocol_id(cipher);
      const unsigned char* alpn = nullptr;
      unsigned int alpn_length = 0;
      SSL_get0_alpn_selected(ssl, &alpn, &alpn_length);
      if (alpn) tls.proto.assign(reinterpret_cast<const char*>(alpn), alpn_length);
      if (const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) tls.server_name = name;
      entry.tls = std::move(tls);
    }
    entry.bytes_read = reply.request_body_bytes;
    entry.user_id = reply.user;
    entry.size = reply.head.has_content_length() ? std::stoull(std::string(reply.head[http::field::content_length])) : 0;
    entry.status = reply.head.result_int();
    for (const auto& field : reply.head) entry.response_headers.emplace_back(field.name_string(), field.value());
    reply.log->log(entry);
  }

  static SSL* ssl_of(TlsStream& stream) { return stream.native_handle(); }
  static SSL* ssl_of(beast::tcp_stream&) { return nullptr; }

  static void apply_header_ops(http::response<http::empty_body>& head, const std::vector<caddyfile::HeaderOp>& ops) {
    using Kind = caddyfile::HeaderOp::Kind;
    for (const caddyfile::HeaderOp& op : ops) {
      switch (op.kind) {
        case Kind::Set: head.set(op.field, op.value); break;
        case Kind::Add: head.insert(op.field, op.value); break;
        case Kind::Default:
          if (head.find(op.field) == head.end()) head.set(op.field, op.value);
          break;
        case Kind::Delete: head.erase(op.field); break;
        case Kind::Replace: break;  // needs the value's text: later
      }
    }
  }

  Reply redirect_to_https(const http::request_header<>& req, const std::string& host) {
    Reply reply = text_reply(http::status::permanent_redirect, "", req.version());
    std::string location = "https://" + (host.find(':') != std::string::npos ? "[" + host + "]" : host);
    if (https_port_bound != 443) location += ":" + std::to_string(https_port_bound);
    location += std::string(req.target());
    reply.head.set(http::field::location, location);
    reply.head.erase(http::field::content_type);
    return reply;
  }

  // The file server: method, path, preconditions, ranges, precompressed sidecars (file_server.h
  // decides; this sends).
  // `coding`: what `encode` will compress with, whose suffix comes off the ETags in preconditions.
  Reply serve_file(const FileServerOptions& files, const http::request_header<>& req,
                   std::string_view target, std::string_view coding = {}) {
    const unsigned version = req.version();
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
      Reply reply = text_reply(http::status::method_not_allowed, "", version);
      reply.head.set(http::field::allow, "GET, HEAD");
      return reply;
    }
    const std::size_t query = target.find('?');
    const FileTarget found = resolve_file(files, target.substr(0, query));
    switch (found.kind) {
      case FileTarget::Kind::BadRequest: return text_reply(http::status::bad_request, "", version);
      case FileTarget::Kind::NotFound: return text_reply(http::status::not_found, "", version);
      case FileTarget::Kind::Forbidden: return text_reply(http::status::forbidden, "", version);
      case FileTarget::Kind::Redirect: {
        Reply reply = text_reply(http::status::permanent_redirect, "", version);
        std::string location = found.redirect_location;
        if (query != std::string_view::npos) location += target.substr(query);
        reply.head.set(http::field::location, location);
        return reply;
      }
      case FileTarget::Kind::Listing: {
        const std::vector<DirEntry> entries = list_directory(files, found.path);
        const bool json = std::string_view(req[http::field::accept]).find("application/json") != std::string_view::npos;
        Reply reply = text_reply(http::status::ok, json ? browse_json(entries) : browse_html(found.clean_path, entries),
                                 version);
        reply.head.set(http::field::content_type, json ? "application/json" : "text/html; charset=utf-8");
        return reply;
      }
      case FileTarget::Kind::File: break;
    }
    return send_file(files, req, found, coding);
  }

  Reply send_file(const FileServerOptions& files, const http::request_header<>& req,
                  const FileTarget& found, std::string_view coding) {
    const unsigned version = req.version();
    std::filesystem::path path = found.path;
    std::uintmax_t size = found.size;
    std::filesystem::file_time_type modified = found.modified;
    std::string encoding;
    std::shared_ptr<pki::UniqueFd> file = found.file;
    if (!files.precompressed.empty()) {
      if (auto sidecar = choose_precompressed(files, found.path, req[http::field::accept_encoding])) {
        path = sidecar->path;
        size = sidecar->size;
        modified = sidecar->modified;
        encoding = sidecar->encoding;
        file = sidecar->file;
      }
    }
    if (!file) file = std::make_shared<pki::UniqueFd>(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (file->get() < 0) return text_reply(http::status::not_found, "", version);
    const std::string etag = file_etag(modified, size);
    const auto last_modified = useful_mod_time(modified);

    Reply reply;
    reply.head.version(version);
    reply.head.set(http::field::content_type, mime_type(found.path));
    reply.head.set(http::field::etag, etag);
    if (last_modified) reply.head.set(http::field::last_modified, http_date(*last_modified));
    reply.head.set(http::field::accept_ranges, "bytes");
    if (!files.precompressed.empty()) reply.head.set(http::field::vary, "Accept-Encoding");
    if (!encoding.empty()) reply.head.set(http::field::content_encoding, encoding);

    ConditionalHeaders conditional;
    conditional.if_match = req[http::field::if_match];
    conditional.if_none_match = req[http::field::if_none_match];
    if (!coding.empty()) {
      conditional.if_match = strip_encoded_etags(conditional.if_match, coding);
      conditional.if_none_match = strip_encoded_etags(conditional.if_none_match, coding);
    }
    conditional.if_modified_since = req[http::field::if_modified_since];
    conditional.if_unmodified_since = req[http::field::if_unmodified_since];
    switch (evaluate_preconditions(req.method_string(), conditional, etag, last_modified)) {
      case Precondition::NotModified:
        reply.head.result(http::status::not_modified);  // its Content-Type goes in handle()
        reply.file_size = size;
        return reply;
      case Precondition::Failed: return text_reply(http::status::precondition_failed, "", version);
      case Precondition::Proceed: break;
    }
    reply.file = std::move(file);
    const std::string_view range = req[http::field::range];
    const std::string_view if_range = req[http::field::if_range];
    std::optional<std::vector<ByteRange>> ranges;
    if (!range.empty() && (if_range.empty() || if_range_matches(if_range, etag, last_modified))) {
      ranges = parse_range(range, size);
    }
    if (!ranges) {
      reply.head.result(http::status::ok);
      reply.pieces.emplace_back(FileSlice{0, size});
    } else if (ranges->empty()) {
      reply = text_reply(http::status::range_not_satisfiable, "", version);
      reply.head.set(http::field::content_range, "bytes */" + std::to_string(size));
    } else if (ranges->size() == 1) {
      const ByteRange r = ranges->front();
      reply.head.result(http::status::partial_content);
      reply.head.set(http::field::content_range,
                     "bytes " + std::to_string(r.first) + "-" + std::to_string(r.last) + "/" + std::to_string(size));
      reply.pieces.emplace_back(FileSlice{r.first, r.last - r.first + 1});
    } else {
      const MultipartPlan plan = plan_multipart(*ranges, size, mime_type(found.path));
      reply.head.result(http::status::partial_content);
      reply.head.set(http::field::content_type, plan.content_type);
      for (std::size_t i = 0; i < ranges->size(); ++i) {
        reply.pieces.emplace_back(plan.part_headers[i]);
        reply.pieces.emplace_back(FileSlice{(*ranges)[i].first, (*ranges)[i].last - (*ranges)[i].first + 1});
      }
      reply.pieces.emplace_back(plan.closing);
    }
    return reply;
  }

  std::shared_ptr<const SiteTable> make_site_table(std::vector<SiteOptions> list, bool redirect_http) const {
    auto table = std::make_shared<SiteTable>();
    table->sites = std::move(list);
    table->redirect_http = redirect_http;
    std::vector<asio::any_io_executor> executors;
    for (const auto& context : io) executors.push_back(context->get_executor());
    for (const SiteOptions& site : table->sites) {
      if (!site.routes) continue;
      add_proxies(site.routes->routes, executors, *table);
      for (const caddyfile::ErrorRoutes& errors : site.routes->error_routes) add_proxies(errors.routes, executors, *table);
    }
    return table;
  }
  void add_proxies(const std::vector<caddyfile::Route>& routes, const std::vector<asio::any_io_executor>& executors,
                   SiteTable& table) const {
    for (const caddyfile::Route& route : routes) {
      if (const auto* proxy = std::get_if<caddyfile::Boxed<caddyfile::ReverseProxyHandler>>(&route.handler)) {
        auto state = std::make_shared<ReverseProxy>(**proxy, executors, options.log);
        state->start();
        table.proxies.emplace(&**proxy, std::move(state));
      } else if (const auto* sub = std::get_if<caddyfile::Subroute>(&route.handler)) {
        add_proxies(sub->routes, executors, table);
      }
    }
  }
  std::shared_ptr<const SiteTable> current_sites() const {
    std::lock_guard lock(sites_mu);
    return sites;
  }

  ServerOptions options;
  CertManager& certificates;
  std::size_t threads_wanted;
  /// One io_context per thread, each with its own listening sockets.
  struct IoContexts : std::vector<std::unique_ptr<asio::io_context>> {
    explicit IoContexts(std::size_t n) {
      for (std::size_t i = 0; i < n; ++i) push_back(std::make_unique<asio::io_context>(1));
    }
  } io;
  ssl::context tls;
  ssl::context acme_tls;  ///< tls-alpn-01 validations only
  mutable std::mutex sites_mu;
  std::shared_ptr<const SiteTable> sites;
  std::shared_ptr<ServerMetrics> metrics;
  TicketKeys tickets;  ///< after `tls`: installed into it
  asio::thread_pool blocking{2};  ///< work that may block for long (bcrypt)
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  std::vector<std::thread> threads;
  int http_port_bound = 0, https_port_bound = 0;
  std::atomic<bool> stopping{false};

  std::mutex live_mu;
  std::condition_variable live_cv;
  std::map<std::uint64_t, Live> live;  ///< std::map: entries never move (Live* stays valid)
  std::uint64_t next_id = 0;
  std::atomic<bool> trim_pending{false};
  std::chrono::steady_clock::time_point last_trim;  ///< on io.front() only
  asio::steady_timer trim_timer{*io.front()};
};

Server::Server(ServerOptions options, CertManager& certificates)
    : impl_(std::make_unique<Impl>(std::move(options), certificates)) {}

Server::~Server() { stop(std::chrono::milliseconds(0)); }

void Server::start() {
  Impl& impl = *impl_;
  impl.https_port_bound = impl.options.https_port;
  impl.http_port_bound = impl.options.http_port;
  impl.listen(impl.https_port_bound, /*https=*/true);
  impl.listen(impl.http_port_bound, /*https=*/false);
  for (std::size_t i = 0; i < impl.io.size(); ++i) {
    impl.threads.emplace_back([context = impl.io[i].get(), i] {
      t_io_thread = i;
      auto busy = asio::make_work_guard(*context);  // runs until stop(), even without connections
      context->run();
    });
  }
  impl.log("serving HTTPS on port " + std::to_string(impl.https_port_bound) + ", HTTP on port " +
           std::to_string(impl.http_port_bound));
}

void Server::replace_sites(std::vector<SiteOptions> sites, bool redirect_http) {
  auto table = impl_->make_site_table(std::move(sites), redirect_http);
  std::lock_guard lock(impl_->sites_mu);
  impl_->sites = std::move(table);
}

int Server::http_port() const { return impl_->http_port_bound; }
int Server::https_port() const { return impl_->https_port_bound; }

void Server::stop(std::chrono::milliseconds grace) {
  Impl& impl = *impl_;
  if (impl.threads.empty()) return;
  impl.stopping = true;
  // Stop accepting; close connections that wait between requests; let the others finish.
  for (auto& acceptor : impl.acceptors) {
    asio::post(acceptor->get_executor(), [a = acceptor.get()] {
      boost::system::error_code ignored;
      a->close(ignored);
    });
  }
  {
    std::unique_lock lock(impl.live_mu);
    for (auto& [id, live] : impl.live) {
      if (live.idle) ::shutdown(live.fd, SHUT_RD);
    }
    impl.live_cv.wait_for(lock, grace, [&] { return impl.live.empty(); });
  }
  for (auto& context : impl.io) context->stop();
  for (auto& thread : impl.threads) thread.join();
  impl.threads.clear();
  impl.blocking.join();
}

}  // namespace acmetool::serve
