// The server engine's shared declarations (server.h's Server::Impl), private to libserve. Its
// member functions are defined by concern: server.cpp (construction, listeners, connection
// bookkeeping, the site table, plain HTTP, the public methods), server_tls.cpp (the TLS front
// end), server_http1.cpp (HTTP/1.1 sessions, uploads, tunnels, writers), server_http2.cpp
// (HTTP/2) and server_handlers.cpp (what a request gets: routes, files, encode, reverse_proxy
// heads, the access log).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#include "acmetool/pki/unique_fd.h"
#include "acmetool/serve/encode.h"
#include "acmetool/serve/server.h"
#include "proxy_internal.h"
#include "send_now_internal.h"
#include "session_tickets_internal.h"
#include "tls_stream_internal.h"

namespace acmetool::serve {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;
inline constexpr auto kTuple = asio::as_tuple(use_awaitable);

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

// What a reverse_proxy's handle_response routes start from: the request and the routes' result
// as the proxy saw them.
struct ResponseRoutesInput {
  RouteRequest request;
  RouteResult proxied;
};

// A reverse_proxy answer: the call until it is sent, then the upstream's response, whose body the
// writers relay piece by piece as it arrives.
struct Relay {
  std::shared_ptr<ReverseProxy> proxy;
  ProxyCall call;
  std::vector<caddyfile::HeaderOp> response_headers;  // the `header` handlers', applied last
  ProxyOutcome outcome;
  std::unique_ptr<ResponseRoutesInput> routes_input;  // only when the proxy has handle_response routes
  bool bodyless = false;  // HEAD, 1xx, 204, 304: the head is all there is
  // `encode` for a relayed body: the options and the coding the client accepts, then, when the
  // response qualifies, the compressor its pieces go through (flushed after each piece for
  // server-sent events, so that events are not held back).
  std::optional<EncodeOptions> encode;
  std::optional<EncodeFormat> coding;
  std::unique_ptr<Encoder> encoder;
  bool flush_each = false;

  // `piece` as it goes to the client: itself, or compressed into `out` when there is an encoder
  // (possibly empty, the compressor holding it back); at the end (null) the compressor's rest.
  const std::string& transform(const std::string* piece, std::string& out) {
    static const std::string kNothing;
    if (!encoder) return piece ? *piece : kNothing;
    if (piece) {
      encoder->write(*piece, out);
      if (flush_each) encoder->flush(out);
    } else {
      encoder->finish(out);
    }
    return out;
  }
};

// The index of the io thread running this code (Server::start numbers them), and the server
// whose io thread it is (null on other threads: the blocking pool, the admin API).
inline thread_local std::size_t t_io_thread = 0;
inline thread_local const void* t_io_server = nullptr;

struct Reply {
  http::response<http::empty_body> head;
  /// reverse_proxy: the upstream's fields, relayed after head's own (ours: Date, Connection,
  /// Transfer-Encoding) without passing through Beast's fields. Moved into `head` when something
  /// edits the relayed head (header ops, encode) or writes it other than by write_relayed and
  /// h2_respond (merge_upstream_fields).
  HeaderFields upstream_fields;
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
  void merge_upstream_fields() {
    for (const auto& [name, value] : upstream_fields) head.insert(name, value);
    upstream_fields.clear();
  }
  /// A field of head or of upstream_fields (the first found), or empty.
  std::string_view field(http::field name) const {
    if (const auto it = head.find(name); it != head.end()) return it->value();
    const auto line = find_upstream_field(name);
    return line == upstream_fields.end() ? std::string_view() : line->value;
  }
  bool has_field(http::field name) const {
    return head.find(name) != head.end() || find_upstream_field(name) != upstream_fields.end();
  }
  HeaderFields::const_iterator find_upstream_field(http::field name) const {
    const std::string_view text = http::to_string(name);
    return std::find_if(upstream_fields.begin(), upstream_fields.end(),
                        [text](const auto& line) { return beast::iequals(line.name, text); });
  }
  void finish(bool head_only) {
    if (relay) return;  // the upstream's head decides
    head.content_length(body_length());
    if (head_only) pieces.clear();
  }
};

// The peer of a connection; an IPv4 client of the dual-stack listener ("::ffff:192.0.2.1") as the
// IPv4 address it is, as logs, X-Forwarded-For and remote_ip matchers expect.
Peer peer_of(const tcp::endpoint& remote);
// The IMF-fixdate of now, for the Date field; computed once per second.
std::string date_now();
Reply text_reply(http::status status, std::string body, unsigned version);

// What of `data` the connection takes at once, without an asynchronous operation: on a plain
// connection, what the socket takes (send_now_internal.h); on TLS, all of it unless the connection
// failed, encrypted, with records the socket did not take yet pending. Either way, when not
// all_sent(), an asio::async_write of the rest follows (of nothing, on TLS, to send the pending
// records: async_write always calls async_write_some at least once).
inline std::size_t sent_at_once(beast::tcp_stream& stream, std::string_view data) {
  return send_now(stream.socket().native_handle(), std::array{asio::buffer(data)});
}
inline std::size_t sent_at_once(TlsStream& stream, std::string_view data) { return stream.write_now(data); }
inline bool all_sent(beast::tcp_stream&, std::string_view data, std::size_t sent) { return sent == data.size(); }
inline bool all_sent(TlsStream& stream, std::string_view data, std::size_t sent) {
  return sent == data.size() && stream.flushed();
}

struct Server::Impl {
  // The sites requests are matched against: swapped whole by a reload, while requests in
  // progress keep the table they started with.
  struct SiteTable {
    std::vector<SiteOptions> sites;
    bool redirect_http = true;
    /// The state of every reverse_proxy handler in `sites`, made when the table is.
    std::map<const caddyfile::ReverseProxyHandler*, std::shared_ptr<ReverseProxy>> proxies;
  };

  Impl(ServerOptions o, CertManager& c);

  void configure_tls();
  // The protocols a TLS context offers (wire format: length-prefixed names, ours in order of
  // preference) and what to answer a client that offers none of them.
  struct AlpnOffer {
    std::vector<unsigned char> protocols;
    int on_mismatch;
  };
  static int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                         unsigned int inlen, void* arg);

  void log(std::string_view line) const {
    if (options.log) options.log(line);
  }

  // ---- listeners (server.cpp) ----
  void listen(int& port, bool https);
  static void bind_socket(tcp::acceptor& acceptor, const tcp::endpoint& endpoint, const std::string& address,
                          bool shared, boost::system::error_code& ec);
  awaitable<void> accept_loop(tcp::acceptor& acceptor, bool https);
  // The PROXY protocol header of a connection to a listener that has it (ServerOptions): false
  // when the connection must be closed; else `peer` is the client the header names.
  awaitable<bool> read_proxy_header(tcp::socket& socket, Peer& peer, bool https);

  // ---- connection bookkeeping for a graceful stop (server.cpp) ----

  // One live connection: whether it waits between requests, and its socket, which a graceful
  // stop shuts for reading (thread-safe at the OS level) to end an idle wait. A connection leaves
  // (LiveGuard) before its socket is closed, so a registered descriptor is always its own.
  struct Live {
    std::atomic<bool> idle{false};  ///< flipped twice a request by its own thread: no lock
    int fd = -1;
  };

  std::pair<std::uint64_t, Live*> enter(int fd);
  static void set_idle(Live* connection, bool idle) { connection->idle.store(idle, std::memory_order_relaxed); }
  void leave(std::uint64_t id);
  void return_memory();
  struct LiveGuard {
    Impl& impl;
    std::pair<std::uint64_t, Live*> entry;
    Live* connection() const { return entry.second; }
    ~LiveGuard() { impl.leave(entry.first); }
  };

  // ---- TLS front end (server_tls.cpp) ----

  awaitable<void> tls_connection(tcp::socket socket);
  awaitable<void> tls_session(beast::tcp_stream& stream, std::optional<TlsStream>& tls_stream,
                              const Peer& peer, const std::string& local_ip, Live* connection);
  awaitable<void> tlsalpn01_validation(beast::tcp_stream& stream, std::optional<TlsStream>& tls_stream,
                                       const std::vector<std::uint8_t>& raw, const std::string& name);
  static bool use_certificate(SSL* ssl, const CachedCertificate& cert);
  awaitable<CertificateAnswer> async_certificate(std::string name, std::string remote_ip);

  // ---- plain HTTP (server.cpp) ----

  awaitable<void> plain_connection(tcp::socket socket);

  // ---- HTTP/1.1 (server_http1.cpp) ----
  // The templates on the stream type are instantiated there for beast::tcp_stream and TlsStream.

  template <class Stream>
  class ClientBody;
  template <class Stream>
  awaitable<void> http_session(Stream& stream, bool https, Live* connection, const Peer& peer);
  template <class Stream>
  awaitable<void> refuse(Stream& stream, http::status status);
  static std::uint64_t body_length_of(const http::request_header<>& req);
  template <class Stream>
  awaitable<void> tunnel(Stream& stream, beast::flat_buffer& buffer, UpstreamTunnel& upstream,
                         std::chrono::milliseconds stream_timeout);
  template <class Stream>
  awaitable<void> tunnel_up(Stream& stream, beast::flat_buffer& buffer, UpstreamTunnel& upstream, bool& done);
  template <class Stream>
  awaitable<void> tunnel_down(Stream& stream, UpstreamTunnel& upstream, bool& done);
  template <class Stream>
  awaitable<bool> write_reply(Stream& stream, Reply& reply);
  template <class Stream>
  awaitable<bool> write_own(Stream& stream, Reply& reply);
  template <class Stream>
  awaitable<bool> write_relayed(Stream& stream, Reply& reply);
  awaitable<bool> send_file_slice(beast::tcp_stream& stream, int file, FileSlice slice);
  // The status line, head's fields then `more`, and the blank line, with room for `room_after`
  // more bytes.
  static void append_head(std::string& out, const http::response<http::empty_body>& head, const HeaderFields& more,
                          std::size_t room_after = 0);
  static std::optional<std::string> small_response(const Reply& reply, std::uint64_t limit);

  // ---- HTTP/2 (server_http2.cpp; h2_session is instantiated there for TlsStream) ----

  static constexpr std::size_t kMaxRequestBody = 1024 * 1024;  // the handlers' limit, as HTTP/1.1
  static constexpr std::size_t kRelayBuffer = 64 * 1024;       // a relayed body read ahead, per stream
  static constexpr std::size_t kH2Write = 64 * 1024;           // frames gathered into one write

  struct H2Stream;
  struct H2Connection;
  class H2Upload;
  static int h2_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int h2_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name, std::size_t name_length,
                       const std::uint8_t* value, std::size_t value_length, std::uint8_t, void* user);
  static int h2_data(nghttp2_session* session, std::uint8_t, std::int32_t id, const std::uint8_t* data,
                     std::size_t length, void* user);
  static int h2_frame_received(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int h2_stream_closed(nghttp2_session*, std::int32_t id, std::uint32_t, void* user);
  static ssize_t h2_read_body(nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t length,
                              std::uint32_t* flags, nghttp2_data_source* source, void*);
  static ssize_t h2_read_relayed(nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t length,
                                 std::uint32_t* flags, nghttp2_data_source* source, void*);
  static void end_relayed(nghttp2_session* session, std::int32_t id, H2Stream& s, std::uint32_t* flags);
  void h2_respond(H2Connection& c, H2Stream& stream);
  template <class Stream>
  awaitable<void> h2_session(Stream& stream, Live* connection, const Peer& peer);
  template <class Stream>
  awaitable<void> h2_reader(Stream& stream, std::shared_ptr<H2Connection> shared);
  template <class Stream>
  awaitable<void> h2_writer(Stream& stream, std::shared_ptr<H2Connection> shared, Live* connection);
  awaitable<void> h2_dispatch(std::shared_ptr<H2Connection> shared);
  awaitable<void> h2_relay(std::shared_ptr<H2Connection> shared, std::shared_ptr<H2Stream> s);

  // ---- handlers (server_handlers.cpp) ----

  // A request with credentials: basic_auth may spend ~1 s in bcrypt on it, so handle_request
  // answers it on the blocking pool; any other is answered by handle() on the spot.
  static bool checks_credentials(const http::request_header<>& req) {
    return req.find(http::field::authorization) != req.end();
  }
  awaitable<Reply> handle_request(const http::request_header<>& req, bool https,
                                  const Peer& peer);
  static awaitable<Reply> ready_reply(Reply reply);
  awaitable<Reply> respond(const http::request_header<>& req, bool https, const Peer& peer);
  awaitable<void> relay_head(Reply& reply, const http::request_header<>& req, unsigned version);
  bool run_response_routes(Reply& reply, const http::request_header<>& req, unsigned version);
  Reply route_reply(const RouteResult& result, const http::request_header<>& req);
  static std::optional<EncodeFormat> accepted_coding(const RouteResult& result, const http::request_header<>& req);
  static void encode_relay(Reply& reply);
  static awaitable<Reply> handle_on(Impl* self, const http::request_header<>* req, bool https,
                                    const Peer* peer);
  Reply handle(const http::request_header<>& req, bool https, const Peer& peer);
  Reply run_routes(const std::shared_ptr<const SiteTable>& table, const SiteOptions& site, const http::request_header<>& req,
                   bool https, const std::string& host, const Peer& peer);
  static void encode_reply(Reply& reply, const EncodeOptions& options, const std::optional<EncodeFormat>& coding);
  static Encoder& thread_encoder(const EncodeFormat& format);
  static bool read_body(const Reply& reply, std::string& out);
  /// `began`: the head was read; `ended`: the response was written (or submitted, HTTP/2).
  static void log_access(const http::request_header<>& req, const Reply& reply,
                         std::chrono::steady_clock::time_point began, std::chrono::steady_clock::time_point ended,
                         const Peer& peer, SSL* ssl);

  static SSL* ssl_of(TlsStream& stream) { return stream.native_handle(); }
  static SSL* ssl_of(beast::tcp_stream&) { return nullptr; }

  static void apply_header_ops(http::response<http::empty_body>& head, const std::vector<caddyfile::HeaderOp>& ops);
  Reply redirect_to_https(const http::request_header<>& req, const std::string& host);
  Reply serve_file(const FileServerOptions& files, const http::request_header<>& req,
                   std::string_view target, std::string_view coding = {});
  Reply send_file(const FileServerOptions& files, const http::request_header<>& req,
                  const FileTarget& found, std::string_view coding);

  // ---- the site table (server.cpp) ----

  std::shared_ptr<const SiteTable> make_site_table(std::vector<SiteOptions> list, bool redirect_http) const;
  void add_proxies(const std::vector<caddyfile::Route>& routes, const std::shared_ptr<const caddyfile::Site>& site,
                   const std::vector<asio::any_io_executor>& executors, SiteTable& table) const;
  std::shared_ptr<const SiteTable> current_sites() const;
  // current_sites() for a request: on an io thread, that thread's own reference (ThreadSites),
  // taken with no lock and counted on a cache line no other thread writes.
  std::shared_ptr<const SiteTable> sites_for_request();
  // An io thread's hold on the site table: a shared_ptr with its own control block (aliasing
  // the table's), refreshed when `sites_generation` moves on. A reload also posts each thread
  // a reset, so that an idle thread does not keep the old table (and its proxies) alive.
  struct alignas(64) ThreadSites {
    std::uint64_t generation = 0;
    std::shared_ptr<const SiteTable> table;
  };

  ServerOptions options;
  std::optional<std::vector<Cidr>> http_proxy_sources, https_proxy_sources;  // the PROXY protocol's allow
  CertManager& certificates;
  std::size_t threads_wanted;
  /// One io_context per thread, each with its own listening sockets. A socket is used only by
  /// the thread of its io_context (other threads post to it, or shutdown(2) its descriptor), so
  /// the reactor takes no lock per socket operation; posting and timers keep theirs.
  struct IoContexts : std::vector<std::unique_ptr<asio::io_context>> {
    explicit IoContexts(std::size_t n) {
      for (std::size_t i = 0; i < n; ++i) push_back(std::make_unique<asio::io_context>(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO));
    }
  } io;
  ssl::context tls;
  ssl::context acme_tls;  ///< tls-alpn-01 validations only
  mutable std::mutex sites_mu;
  std::shared_ptr<const SiteTable> sites;
  std::atomic<std::uint64_t> sites_generation{1};  ///< moves on with every replace_sites
  std::vector<ThreadSites> thread_sites;            ///< one per io thread, each written by its own
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

}  // namespace acmetool::serve
