// The local admin endpoint of `acmetool serve` (issue 8), opt-in with the Caddyfile's global
// `admin` option: a small HTTP/1.1 server for monitoring that serves GET /metrics (Prometheus
// text) and GET /health, guarded as Caddy guards its admin endpoint (Host checks against DNS
// rebinding, optional Origin enforcement). It changes nothing: there is no config API. No Asio
// in this header: the engine lives in admin.cpp.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace acmetool::serve {

/// A listen address as Caddy writes `admin` ones: "[network/]host:port" or "unix/path".
struct AdminAddress {
  enum class Network {
    Tcp,   ///< "tcp/" or no prefix: IPv4 and IPv6
    Tcp4,  ///< "tcp4/": IPv4 only ("localhost" is 127.0.0.1, "" is 0.0.0.0)
    Tcp6,  ///< "tcp6/": IPv6 only ("localhost" is ::1, "" is ::)
    Unix,  ///< "unix/": a Unix domain socket
  };
  Network network = Network::Tcp;
  /// TCP: "" (every interface), "localhost" (127.0.0.1, and ::1 where there is IPv6), or an IP
  /// literal without brackets.
  std::string host;
  std::uint16_t port = 0;      ///< TCP; 0: a free port
  std::filesystem::path path;  ///< Unix: the socket file
  /// Unix: the socket file's permissions ("unix//run/admin.sock|0660", as Caddy 2.8 writes them);
  /// absent: as the umask leaves them.
  std::optional<std::filesystem::perms> mode;

  /// Reachable only from this machine: "localhost", a loopback IP, or a Unix socket.
  bool is_local() const;
  /// Listening on every interface (an empty host).
  bool is_wildcard() const;
  /// As Caddy would write it: "127.0.0.1:2019", "[::1]:2019", ":2019", "tcp4/localhost:2019",
  /// "unix//run/admin.sock" (without the mode).
  std::string to_string() const;
};

/// Reads an admin listen address: "localhost:2019", "127.0.0.1:2019", "[::1]:2019", ":2019",
/// "tcp4/0.0.0.0:2019", "unix//run/admin.sock", "unix//run/admin.sock|0660". Throws serve::Error
/// with one line naming the address and what is wrong: empty, unknown network, missing port,
/// port range or out of range, unbracketed IPv6, a host that is neither an IP literal nor
/// localhost (no DNS lookups here), an IP of the wrong family for tcp4/tcp6, an empty socket
/// path, a bad mode.
AdminAddress parse_admin_address(std::string_view address);

struct AdminServerOptions {
  /// Where to listen (parse_admin_address); Caddy's default.
  std::string listen = "localhost:2019";
  /// Require every request's Origin (or, lacking one, Referer) to be one of `origins`, as
  /// Caddy's `enforce_origin` does; allowed responses carry Access-Control-Allow-Origin.
  bool enforce_origin = false;
  /// Allowed origins: "http://localhost:2019", "localhost:2019" (any scheme), "example.com".
  /// Empty: those of the listen address (localhost, 127.0.0.1 and [::1] with its port, for a
  /// loopback one). Their hosts are also accepted in the Host header.
  std::vector<std::string> origins;
  /// The body of GET /metrics, e.g. render_prometheus(). Called on the admin thread for each
  /// request; an exception answers 500. Must be set.
  std::function<std::string()> metrics;
  /// Whether GET /health answers 200 {"status":"ok"} or 503 {"status":"unavailable"}. Called
  /// on the admin thread; empty or throwing counts as unhealthy.
  std::function<bool()> healthy;
  /// The whole request head must arrive within this (then the connection is closed), and a
  /// response must be taken within it too.
  std::chrono::milliseconds header_timeout = std::chrono::seconds(10);
  std::size_t max_header_bytes = 8 * 1024;  ///< a larger head is answered 431
  std::size_t max_connections = 64;         ///< connections beyond this are closed at once
  /// One line per event worth an operator's attention (listening, Host checks off on a wildcard
  /// address). Called from the thread calling start(); may be empty.
  std::function<void(std::string_view)> log;
};

/// The admin endpoint: one listener (two for "localhost"), one io thread, one request per
/// connection (every response says Connection: close). Requests are checked in this order:
/// Host (403 unless local-looking on a loopback address, or the address itself on another
/// specific address; not checked on a wildcard address or a Unix socket), Origin (403 when
/// enforced and not allowed), path (404), method (405 with Allow: GET, HEAD). Every method is
/// thread-safe.
class AdminServer {
 public:
  /// Does not listen yet. Throws serve::Error for a bad listen address (parse_admin_address).
  explicit AdminServer(AdminServerOptions options);
  /// stop().
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  /// Binds and starts the io thread. Throws serve::Error naming the address when it cannot
  /// listen ("admin endpoint: listening on 127.0.0.1:2019: Address already in use"), and when
  /// called a second time. A stale Unix socket file (nobody accepting on it) is replaced; the
  /// file is removed again by stop().
  void start();
  /// Closes the listeners and every connection (waiting or mid-request), joins the io thread
  /// and removes a Unix socket file. Returns at once when not running.
  void stop();

  /// The TCP port bound (useful with port 0); 0 for a Unix socket or before start().
  int port() const;
  /// The address listened on, with the port bound ("127.0.0.1:40123"); empty before start().
  std::string address() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace acmetool::serve
