// The admin endpoint: Caddy's Host and Origin checks (admin.go) and a small Beast server on one
// io thread. Each connection is a coroutine that reads one request,
// answers it with Connection: close and ends; stop() closes whatever is still open.
#include "acmetool/serve/admin.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "acmetool/pki/unique_fd.h"
#include "acmetool/serve/error.h"
#include "acmetool/serve/metrics.h"
#include "admin_internal.h"

namespace acmetool::serve {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
using asio::use_awaitable;
using Socket = asio::generic::stream_protocol::socket;
using Acceptor = asio::basic_socket_acceptor<asio::generic::stream_protocol>;
using Endpoint = asio::generic::stream_protocol::endpoint;
using Stream = beast::basic_stream<asio::generic::stream_protocol>;
using Request = http::request<http::string_body>;
using Network = AdminAddress::Network;
constexpr auto kTuple = asio::as_tuple(use_awaitable);

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// ---- request checks (Caddy's admin.go: checkHost, checkOrigin) ----

// An allowed origin: "http://localhost:2019" or, without a scheme, any scheme.
struct Origin {
  std::string scheme;     // lower case; empty: any
  std::string host_port;  // lower case, as in the Origin header
};

// "scheme://host:port/anything" -> {scheme, host:port}; "host:port" -> {"", host:port}.
Origin parse_origin(std::string_view text) {
  Origin origin;
  if (const std::size_t sep = text.find("://"); sep != std::string_view::npos) {
    origin.scheme = lower(text.substr(0, sep));
    text = text.substr(sep + 3);
  }
  origin.host_port = lower(text.substr(0, text.find_first_of("/?#")));
  return origin;
}

// The host of "host", "host:port", "[v6]" or "[v6]:port", lower case; nullopt when malformed.
std::optional<std::string> host_of(std::string_view host_port) {
  std::string_view host = host_port, port;
  if (host_port.starts_with('[')) {
    const std::size_t close = host_port.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = host_port.substr(1, close - 1);
    const std::string_view after = host_port.substr(close + 1);
    if (!after.empty() && !after.starts_with(':')) return std::nullopt;
    port = after.empty() ? after : after.substr(1);
  } else if (const std::size_t colon = host_port.find(':'); colon != std::string_view::npos) {
    // A bare "::1" (a client that forgot the brackets) stays whole.
    if (host_port.find(':', colon + 1) == std::string_view::npos) {
      host = host_port.substr(0, colon);
      port = host_port.substr(colon + 1);
    }
  }
  if (!std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  return lower(host);
}

class RequestGuard {
 public:
  RequestGuard() = default;
  RequestGuard(const AdminAddress& address, int port, bool enforce_origin,
               const std::vector<std::string>& origins)
      : enforce_origin_(enforce_origin) {
    for (const std::string& text : origins) origins_.push_back(parse_origin(text));
    if (origins.empty()) origins_ = default_origins(address, port);
    // Caddy checks Host only on a specific TCP address: no browser reaches a Unix socket, and on
    // a wildcard address every name of the machine is legitimate (start() logs the check is off).
    check_host_ = address.network != Network::Unix && !address.is_wildcard();
    if (address.is_local()) hosts_ = {"localhost", "127.0.0.1", "::1"};
    if (!address.host.empty()) hosts_.insert(address.host);
    for (const Origin& origin : origins_) {
      if (auto host = host_of(origin.host_port)) hosts_.insert(*host);
    }
  }

  // Why the request must be refused (403), or nothing. `allow_origin` receives the Origin to
  // echo in Access-Control-Allow-Origin when origins are enforced.
  std::optional<std::string> refusal(const Request& req, std::string& allow_origin) const {
    const std::string_view host_header = req[http::field::host];
    if (check_host_) {
      const auto host = host_of(host_header);
      if (!host || !hosts_.count(*host)) return "host not allowed: " + std::string(host_header);
    }
    if (!enforce_origin_) return std::nullopt;
    std::string_view origin_header = req[http::field::origin];
    if (origin_header.empty()) origin_header = req[http::field::referer];
    if (origin_header.find("://") == std::string_view::npos) {
      return "required Origin header is missing or invalid";
    }
    const Origin origin = parse_origin(origin_header);
    const bool allowed =
        std::any_of(origins_.begin(), origins_.end(), [&](const Origin& allowed_origin) {
          return (allowed_origin.scheme.empty() || allowed_origin.scheme == origin.scheme) &&
                 allowed_origin.host_port == origin.host_port;
        });
    if (!allowed) {
      return "client is not allowed to access from origin '" + std::string(origin_header) + "'";
    }
    allow_origin = origin.scheme + "://" + origin.host_port;
    return std::nullopt;
  }

 private:
  // Caddy's defaults: the loopback names with the port for a local address, else the address.
  static std::vector<Origin> default_origins(const AdminAddress& address, int port) {
    if (address.network == Network::Unix || address.is_wildcard()) return {};
    if (address.is_local()) {
      return {{"", join_host_port("localhost", port)},
              {"", join_host_port("127.0.0.1", port)},
              {"", join_host_port("::1", port)}};
    }
    return {{"", join_host_port(address.host, port)}};
  }

  bool check_host_ = false;
  bool enforce_origin_ = false;
  std::set<std::string> hosts_;
  std::vector<Origin> origins_;
};

// ---- responses ----

struct Answer {
  http::status status = http::status::ok;
  std::string content_type = "application/json";
  std::string body;
  bool allow = false;        // send Allow: GET, HEAD
  std::string allow_origin;  // send Access-Control-Allow-Origin
};

// {"error":"..."}, as Caddy's admin API reports errors; header values echoed in the message may
// be any bytes, so invalid UTF-8 is replaced rather than thrown on.
Answer error_answer(http::status status, const std::string& message) {
  const nlohmann::json body = {{"error", message}};
  return {status, "application/json",
          body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n"};
}

bool unavailable(const boost::system::error_code& ec) {
  return ec == asio::error::address_family_not_supported ||
         ec == boost::system::errc::address_not_available;
}

// The port of a TCP endpoint; 0 for others.
int port_of(const Endpoint& endpoint) {
  const sockaddr* address = endpoint.data();
  if (address->sa_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(address)->sin_port);
  }
  if (address->sa_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(address)->sin6_port);
  }
  return 0;
}

}  // namespace

struct AdminServer::Impl {
  explicit Impl(AdminServerOptions o)
      : options(std::move(o)), address(parse_admin_address(options.listen)) {}

  AdminServerOptions options;
  const AdminAddress address;
  // Touched on the io thread only; declared before io, so they outlive any coroutine io destroys.
  std::set<Stream*> open;  // connections under way, for stop()
  std::size_t live = 0;    // connections accepted and not yet ended, for max_connections
  bool stopping = false;
  asio::io_context io{1};
  std::vector<std::unique_ptr<Acceptor>> acceptors;  // destroyed before io
  RequestGuard guard;
  std::thread thread;
  mutable std::mutex mu;  // start() and stop(), and the fields below
  bool started = false;
  int bound_port = 0;
  std::string bound_address;
  bool socket_file_created = false;

  void log(const std::string& line) const {
    if (options.log) options.log(line);
  }

  // ---- listening ----

  boost::system::error_code try_listen(const Endpoint& endpoint, bool v6_only) {
    auto acceptor = std::make_unique<Acceptor>(io);
    boost::system::error_code ec;
    acceptor->open(endpoint.protocol(), ec);
    if (!ec && address.network != Network::Unix) {
      acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    }
    if (!ec && endpoint.data()->sa_family == AF_INET6) {
      acceptor->set_option(asio::ip::v6_only(v6_only), ec);
    }
    if (!ec) acceptor->bind(endpoint, ec);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (!ec) acceptors.push_back(std::move(acceptor));
    return ec;
  }

  // Binds ip:port (the port the first listener got, once there is one); throws on failure
  // unless `optional` and the address is unavailable here (no IPv6).
  bool listen_ip(const std::string& ip_text, bool v6_only, bool optional) {
    const asio::ip::address ip = asio::ip::make_address(ip_text);
    const int port = bound_port ? bound_port : address.port;
    const auto ec = try_listen(
        Endpoint(asio::ip::tcp::endpoint(ip, static_cast<unsigned short>(port))), v6_only);
    if (ec && optional && unavailable(ec)) return false;
    if (ec)
      throw Error("admin endpoint: listening on " + join_host_port(ip.to_string(), port) + ": " +
                  ec.message());
    bound_port = port_of(acceptors.back()->local_endpoint());
    return true;
  }

  void listen_tcp() {
    const Network network = address.network;
    if (address.host == "localhost") {
      if (network != Network::Tcp6) listen_ip("127.0.0.1", false, false);
      if (network != Network::Tcp4) listen_ip("::1", true, network == Network::Tcp);
    } else if (address.host.empty()) {
      // One dual-stack socket; IPv4 alone where the machine has no IPv6.
      const bool v6 = network != Network::Tcp4 &&
                      listen_ip("::", network == Network::Tcp6, network == Network::Tcp);
      if (!v6) listen_ip("0.0.0.0", false, false);
    } else {
      // Only "::" can be dual-stack: Go (and so Caddy) makes it so unless the network is tcp6.
      listen_ip(address.host, network == Network::Tcp6, false);
    }
  }

  void listen_unix() {
    const std::string context = "admin endpoint: listening on " + address.to_string() + ": ";
    remove_stale_socket(context);
    const auto ec =
        try_listen(Endpoint(asio::local::stream_protocol::endpoint(address.path.string())), false);
    if (ec) throw Error(context + ec.message());
    socket_file_created = true;
    if (address.mode) {
      std::error_code chmod_ec;
      std::filesystem::permissions(address.path, *address.mode, chmod_ec);
      if (chmod_ec) throw Error(context + "setting its mode: " + chmod_ec.message());
    }
  }

  // A socket file nobody accepts on is left by a process that died: replace it, as Caddy does.
  // One with a listener, or a file of another kind, is left alone (bind then fails).
  void remove_stale_socket(const std::string& context) const {
    struct stat info {};
    if (::lstat(address.path.c_str(), &info) != 0 || !S_ISSOCK(info.st_mode)) return;
    sockaddr_un peer{};
    peer.sun_family = AF_UNIX;
    const std::string path = address.path.string();
    if (path.size() >= sizeof peer.sun_path) throw Error(context + "the path is too long");
    std::copy(path.begin(), path.end(), peer.sun_path);
    const pki::UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (probe.get() < 0) return;
    if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&peer), sizeof peer) == 0) {
      throw Error(context + "a server is already accepting on it");
    }
    if (errno == ECONNREFUSED) ::unlink(path.c_str());
  }

  void remove_socket_file() {
    if (!socket_file_created) return;
    std::error_code ignored;
    std::filesystem::remove(address.path, ignored);
    socket_file_created = false;
  }

  // ---- serving ----

  awaitable<void> accept_loop(Acceptor& acceptor) {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(kTuple);
      if (stopping || ec == asio::error::operation_aborted) co_return;
      if (ec) {
        // Out of descriptors and the like: pause rather than spin on the error.
        asio::steady_timer pause(io, std::chrono::milliseconds(50));
        co_await pause.async_wait(kTuple);
        continue;
      }
      if (live >= options.max_connections) continue;  // `socket` closes here
      ++live;  // here, not in the coroutine: it starts only after the next accept may complete
      asio::co_spawn(io, connection(std::move(socket)), [](std::exception_ptr) {});
    }
  }

  // Registers a connection's stream for stop() for as long as the connection lives.
  struct Registration {
    Impl& impl;
    Stream* stream;
    Registration(Impl& i, Stream& s) : impl(i), stream(&s) { impl.open.insert(stream); }
    ~Registration() {
      impl.open.erase(stream);
      --impl.live;
    }
  };

  awaitable<void> connection(Socket socket) {
    Stream stream(std::move(socket));
    const Registration registration(*this, stream);
    try {
      if (!stopping) co_await exchange(stream);
    } catch (const std::exception&) {
      // Only allocation can throw here; closing this connection is all there is to do.
    }
  }

  awaitable<void> exchange(Stream& stream) {
    beast::flat_buffer buffer;
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(options.max_header_bytes));
    parser.body_limit(options.max_header_bytes);  // nothing here takes a body
    stream.expires_after(options.header_timeout);
    auto [ec, n] = co_await http::async_read(stream, buffer, parser, kTuple);
    (void)n;
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted) {
      co_return;
    }
    Answer answer;
    bool head = false;
    if (ec == http::error::header_limit) {
      answer =
          error_answer(http::status::request_header_fields_too_large, "request head too large");
    } else if (ec == http::error::body_limit) {
      answer = error_answer(http::status::payload_too_large, "request body too large");
    } else if (ec) {
      answer = error_answer(http::status::bad_request, "malformed request: " + ec.message());
    } else {
      answer = route(parser.get());
      head = parser.get().method() == http::verb::head;
    }
    co_await write_answer(stream, std::move(answer), head);
  }

  Answer route(const Request& req) const {
    std::string allow_origin;
    if (auto refusal = guard.refusal(req, allow_origin)) {
      return error_answer(http::status::forbidden, *refusal);
    }
    const std::string_view target = req.target();
    const std::string_view path = target.substr(0, target.find('?'));
    Answer answer;
    if (path != "/metrics" && path != "/health") {
      answer = error_answer(http::status::not_found, "not found: " + std::string(path));
    } else if (req.method() != http::verb::get && req.method() != http::verb::head) {
      answer = error_answer(http::status::method_not_allowed,
                            "method not allowed: " + std::string(req.method_string()));
      answer.allow = true;
    } else {
      answer = path == "/metrics" ? metrics_answer() : health_answer();
    }
    answer.allow_origin = std::move(allow_origin);
    return answer;
  }

  Answer metrics_answer() const {
    try {
      return {http::status::ok, std::string(kPrometheusContentType), options.metrics()};
    } catch (const std::exception& e) {
      return error_answer(http::status::internal_server_error,
                          std::string("collecting metrics: ") + e.what());
    }
  }

  Answer health_answer() const {
    bool healthy = false;
    try {
      healthy = options.healthy && options.healthy();
    } catch (const std::exception&) {
      healthy = false;
    }
    if (healthy) return {http::status::ok, "application/json", "{\"status\":\"ok\"}"};
    return {http::status::service_unavailable, "application/json", "{\"status\":\"unavailable\"}"};
  }

  awaitable<void> write_answer(Stream& stream, Answer answer, bool head) {
    http::response<http::string_body> res{answer.status, 11};
    res.set(http::field::content_type, answer.content_type);
    res.set(http::field::cache_control, "no-store");
    if (answer.allow) res.set(http::field::allow, "GET, HEAD");
    if (!answer.allow_origin.empty()) {
      res.set(http::field::access_control_allow_origin, answer.allow_origin);
    }
    res.keep_alive(false);
    res.content_length(answer.body.size());  // for HEAD too: the length GET would send
    if (!head) res.body() = std::move(answer.body);
    stream.expires_after(options.header_timeout);
    auto [ec, n] = co_await http::async_write(stream, res, kTuple);
    (void)n;
    if (ec) co_return;
    co_await linger(stream);
  }

  // Closing a socket with unread bytes (the rest of a refused head) makes the kernel send a
  // reset, which can destroy the response before the client reads it. So: end our side, then
  // drain until the client closes, for at most a second (RFC 9112 §9.6).
  static awaitable<void> linger(Stream& stream) {
    boost::system::error_code ec;
    stream.socket().shutdown(Socket::shutdown_send, ec);
    stream.expires_after(std::chrono::seconds(1));
    char discard[1024];
    while (!ec) {
      std::tie(ec, std::ignore) = co_await stream.async_read_some(asio::buffer(discard), kTuple);
    }
  }

  // Binds, then serves on the io thread. Called under `mu`.
  void listen() {
    if (started) throw Error("admin endpoint: already started");
    started = true;
    try {
      address.network == Network::Unix ? listen_unix() : listen_tcp();
    } catch (...) {
      acceptors.clear();
      remove_socket_file();
      bound_port = 0;
      started = false;
      throw;
    }
    AdminAddress bound = address;
    bound.port = static_cast<std::uint16_t>(bound_port);
    bound_address = bound.to_string();
    guard = RequestGuard(address, bound_port, options.enforce_origin, options.origins);
    for (auto& acceptor : acceptors) {
      asio::co_spawn(io, accept_loop(*acceptor), [](std::exception_ptr) {});
    }
    thread = std::thread([this] { io.run(); });
  }

  // On the io thread: no new connections, and every open one ends now.
  void shut_down() {
    stopping = true;
    boost::system::error_code ignored;
    for (auto& acceptor : acceptors) acceptor->close(ignored);
    for (Stream* stream : open) stream->close();
  }
};

AdminServer::AdminServer(AdminServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

AdminServer::~AdminServer() { stop(); }

void AdminServer::start() {
  Impl& impl = *impl_;
  {
    std::lock_guard lock(impl.mu);
    impl.listen();
  }
  // Outside the lock: the log callback may ask for port() or address().
  impl.log("admin endpoint listening on " + address());
  if (impl.address.is_wildcard()) {
    impl.log("admin endpoint on every interface (" + address() + "): Host checking is off");
  }
}

void AdminServer::stop() {
  Impl& impl = *impl_;
  std::lock_guard lock(impl.mu);
  if (!impl.thread.joinable()) return;
  asio::post(impl.io, [&impl] { impl.shut_down(); });
  impl.thread.join();
  impl.acceptors.clear();
  impl.remove_socket_file();
}

int AdminServer::port() const {
  std::lock_guard lock(impl_->mu);
  return impl_->bound_port;
}

std::string AdminServer::address() const {
  std::lock_guard lock(impl_->mu);
  return impl_->bound_address;
}

}  // namespace acmetool::serve
