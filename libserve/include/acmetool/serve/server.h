// The HTTPS server of `acmetool serve` (issue 8): listeners on the HTTP and HTTPS ports, a TLS
// front end that reads the ClientHello itself and takes the certificate from the CertManager,
// HTTP/1.1 with keep-alive, redirects from HTTP to HTTPS, and the file server. No Asio in this
// header: the engine lives in server.cpp.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "acmetool/caddyfile/config.h"
#include "acmetool/serve/access_log.h"
#include "acmetool/serve/cert_manager.h"
#include "acmetool/serve/challenge_responder.h"
#include "acmetool/serve/file_server.h"
#include "acmetool/serve/metrics.h"

namespace acmetool::serve {

/// One site: the hosts it answers for and what it serves.
struct SiteOptions {
  /// Host names (A-labels, lower case) and one-label wildcard patterns ("*.example.com"); an empty
  /// list answers every host.
  std::vector<std::string> hosts;
  /// Served over HTTPS (and redirected from HTTP), or plain HTTP only (an `http://` site).
  bool https = true;
  /// A Caddyfile site: its routes decide (routes.h). Null: serve `files` (quick mode).
  std::shared_ptr<const caddyfile::Site> routes;
  /// Static files from this root (the `file_server` handler) when there are no routes.
  FileServerOptions files;
  /// Where the site's requests are logged (the `log` directive); null: not logged.
  std::shared_ptr<AccessLogWriter> access_log;
};

/// The PROXY protocol on a listener (`servers { listener_wrappers { proxy_protocol } }`): a
/// connection from a source in `allow` (every source when empty) must start with a PROXY header,
/// version 1 or 2 (proxy_protocol.h), within `timeout`; its source address is then the client's
/// everywhere (logs, X-Forwarded-For, remote_ip, on-demand TLS's per-client ask limit). A header
/// naming no address (UNKNOWN, LOCAL) leaves the TCP peer. A connection without a valid header
/// in time is closed. Sources outside `allow` connect as usual.
struct ProxyProtocolOptions {
  std::chrono::milliseconds timeout = std::chrono::seconds(5);  ///< 0: the header timeout's bound
  std::vector<std::string> allow;                               ///< ranges, as parse_cidr takes them
};

struct ServerOptions {
  /// Addresses to listen on (IP literals); empty: every IPv4 and IPv6 address.
  std::vector<std::string> listen_addresses;
  int http_port = 80;    ///< 0: a free port (see Server::http_port())
  int https_port = 443;  ///< 0: a free port
  /// Answer plain HTTP for the sites' hosts with 308 to https:// (Caddy's automatic redirects).
  bool redirect_http = true;
  std::vector<SiteOptions> sites;  ///< the first whose hosts match a request serves it
  /// Answers http-01 challenges on the HTTP port, for every host (the CA may validate any name
  /// being ordered); may be null.
  std::shared_ptr<const Http01Responder> http01;
  /// Answers tls-alpn-01 on the HTTPS port: a ClientHello offering acme-tls/1 gets the challenge
  /// certificate presented for its SNI, or unrecognized_name; may be null (then always that).
  std::shared_ptr<const acme::TlsAlpn01Responder> tlsalpn01;
  /// io threads; 0: one per core.
  std::size_t threads = 0;
  /// Limits (Caddy-like defaults): the whole request head must arrive within header_timeout, a
  /// kept-alive connection may idle idle_timeout, a request head may be at most 16 KiB (431).
  std::chrono::milliseconds header_timeout = std::chrono::seconds(10);
  std::chrono::milliseconds idle_timeout = std::chrono::minutes(5);
  std::size_t max_header_bytes = 16 * 1024;
  /// PROXY protocol on the HTTP and on the HTTPS listener; absent: none.
  std::optional<ProxyProtocolOptions> http_proxy_protocol, https_proxy_protocol;
  /// Where requests, connections and handshakes are counted (the admin endpoint's /metrics);
  /// null: the server counts into its own, which nobody reads.
  std::shared_ptr<ServerMetrics> metrics;
  /// One line per event (listening, refused handshakes sampled by the caller's taste). Called from
  /// the io threads; may be empty.
  std::function<void(std::string_view)> log;
};

/// Runs the listeners on their own threads. Thread-safe.
class Server {
 public:
  /// `certificates` must outlive the server. Does not listen yet.
  Server(ServerOptions options, CertManager& certificates);
  /// Stops at once (as stop() with no grace) and joins the threads.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds every listener and starts the io threads. Throws serve::Error naming the address and
  /// port when one cannot be bound ("listening on 0.0.0.0:443: Address already in use").
  void start();

  /// Serves `sites` from now on (a configuration reload): requests already being answered finish
  /// with the old sites, connections stay open. Listeners and ports do not change.
  void replace_sites(std::vector<SiteOptions> sites, bool redirect_http);

  /// The ports actually bound (after start(); useful with port 0).
  int http_port() const;
  int https_port() const;

  /// Stops accepting, lets requests in progress finish for at most `grace`, closes idle
  /// connections, and returns once every thread has stopped.
  void stop(std::chrono::milliseconds grace = std::chrono::seconds(5));

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Applies the Caddyfile's `servers` blocks to the listeners of `options` (whose ports are set):
/// a block without an address to both, one with an address to the listener on its port; its
/// timeouts to the server as a whole (header_timeout, idle_timeout). Returns warnings for blocks
/// that match no listener, and for timeouts given for one listener. Throws serve::Error for an
/// invalid allow range.
std::vector<std::string> apply_server_blocks(const std::vector<caddyfile::ServerBlockOptions>& blocks,
                                             ServerOptions& options);

}  // namespace acmetool::serve
