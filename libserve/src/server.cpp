// The HTTPS server engine: Asio + Beast with C++20 coroutines (see ../shared/notes/engine.md).
// A TLS connection is read up to the end of its ClientHello by us (client_hello.h); the
// certificate comes from the CertManager before any SSL object exists; the bytes read are then
// replayed into OpenSSL through Beast's buffered handshake. HTTP/1.1 on both ports; responses are
// written as a header plus pieces (strings and file slices read with pread), so files of any size
// stream without being loaded.
#include "server_internal.h"

#include <malloc.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "acmetool/serve/error.h"
#include "acmetool/serve/proxy_protocol.h"

namespace acmetool::serve {

// ---- response helpers (their contracts are in server_internal.h) ----

Peer peer_of(const tcp::endpoint& remote) {
  asio::ip::address address = remote.address();
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  }
  return Peer{address.to_string(), remote.port()};
}

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

Server::Impl::Impl(ServerOptions o, CertManager& c)
    : options(std::move(o)),
      certificates(c),
      threads_wanted(options.threads ? options.threads : std::max(1u, std::thread::hardware_concurrency())),
      io(threads_wanted),
      tls(ssl::context::tls_server),
      acme_tls(ssl::context::tls_server),
      sites(make_site_table(options.sites, options.redirect_http)),
      metrics(options.metrics ? options.metrics : std::make_shared<ServerMetrics>()),
      tickets(tls.native_handle()) {
  thread_sites.resize(io.size());
  if (options.http_proxy_protocol) http_proxy_sources = parse_trusted_proxies(options.http_proxy_protocol->allow);
  if (options.https_proxy_protocol) https_proxy_sources = parse_trusted_proxies(options.https_proxy_protocol->allow);
  configure_tls();
}

std::vector<std::string> apply_server_blocks(const std::vector<caddyfile::ServerBlockOptions>& blocks,
                                             ServerOptions& options) {
  std::vector<std::string> warnings;
  for (const caddyfile::ServerBlockOptions& block : blocks) {
    // The server has one pair of limits for both listeners.
    const auto millis = [](std::chrono::nanoseconds d) {
      return std::max(std::chrono::milliseconds(1), std::chrono::duration_cast<std::chrono::milliseconds>(d));
    };
    if (block.read_header_timeout) options.header_timeout = millis(*block.read_header_timeout);
    if (block.idle_timeout) options.idle_timeout = millis(*block.idle_timeout);
    if (!block.address.empty() && (block.read_header_timeout || block.idle_timeout)) {
      warnings.push_back("servers " + block.address + ": timeouts apply to every listener in acmetool");
    }
    if (!block.proxy_protocol) continue;
    ProxyProtocolOptions pp;
    if (block.proxy_protocol->timeout) {
      pp.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(*block.proxy_protocol->timeout);
    }
    pp.allow = block.proxy_protocol->allow;
    parse_trusted_proxies(pp.allow);  // throws for an invalid range
    // ":443", "0.0.0.0:443", "[::1]:443": the listener on that port.
    const std::size_t colon = block.address.rfind(':');
    const std::string port = colon == std::string::npos ? "" : block.address.substr(colon + 1);
    const bool http = block.address.empty() || port == std::to_string(options.http_port);
    const bool https = block.address.empty() || port == std::to_string(options.https_port);
    if (http) options.http_proxy_protocol = pp;
    if (https) options.https_proxy_protocol = pp;
    if (!http && !https) warnings.push_back("servers " + block.address + ": no listener on that port; ignored");
  }
  return warnings;
}

// ---- listeners ----

// Each io thread accepts on its own socket (SO_REUSEPORT; the kernel spreads connections), so a
// connection lives on the thread that accepted it: no hand-over, no wake-up of another thread.
// A probe without SO_REUSEPORT first makes a port someone else listens on an error (also a
// second acmetool on the same port) instead of a silent share.
void Server::Impl::listen(int& port, bool https) {
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

void Server::Impl::bind_socket(tcp::acceptor& acceptor, const tcp::endpoint& endpoint,
                               const std::string& address, bool shared,
                               boost::system::error_code& ec) {
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec && shared) acceptor.set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true), ec);
  if (!ec && endpoint.address().is_v6() && address == "::") acceptor.set_option(asio::ip::v6_only(false), ec);
  if (!ec) acceptor.bind(endpoint, ec);
}

awaitable<void> Server::Impl::accept_loop(tcp::acceptor& acceptor, bool https) {
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

// ---- the PROXY protocol ----

// The header is peeked, then taken out of the socket exactly, so that the connection's own bytes
// (a ClientHello, a request) stay for whoever reads next. Bytes seen after a complete signature
// belong to the header while it is incomplete, so they are taken as they come; only a partial
// signature ("PRO") makes this wait a little and look again.
awaitable<bool> Server::Impl::read_proxy_header(tcp::socket& socket, Peer& peer, bool https) {
  const std::optional<ProxyProtocolOptions>& pp = https ? options.https_proxy_protocol : options.http_proxy_protocol;
  const std::optional<std::vector<Cidr>>& sources = https ? https_proxy_sources : http_proxy_sources;
  if (!pp) co_return true;
  if (!sources->empty() && !contains(*sources, peer.ip)) co_return true;  // not from the balancer
  // Past the deadline the socket's operations are cancelled.
  asio::steady_timer deadline(socket.get_executor());
  deadline.expires_after(pp->timeout.count() > 0 ? pp->timeout : options.header_timeout);
  deadline.async_wait([&socket](const boost::system::error_code& ec) {
    boost::system::error_code ignored;
    if (!ec) socket.cancel(ignored);
  });
  std::array<std::uint8_t, kMaxProxyHeader> header;
  std::size_t taken = 0;  // bytes of the header already read out of the socket
  for (;;) {
    auto [ec, n] = co_await socket.async_receive(asio::buffer(header.data() + taken, header.size() - taken),
                                                 asio::socket_base::message_peek, kTuple);
    if (ec || n == 0) co_return false;
    const ProxyHeaderResult r = parse_proxy_header({header.data(), taken + n});
    if (r.status == ProxyHeaderStatus::Absent || r.status == ProxyHeaderStatus::Invalid) co_return false;
    if (r.status == ProxyHeaderStatus::Complete) {
      auto [read_ec, read] = co_await asio::async_read(socket, asio::buffer(header.data() + taken, r.length - taken), kTuple);
      (void)read;
      if (read_ec) co_return false;
      if (!r.source_ip.empty()) peer = Peer{r.source_ip, r.source_port};
      co_return true;
    }
    const std::size_t signature = header[0] == 'P' ? 6 : 12;
    if (taken + n >= signature) {
      auto [read_ec, read] = co_await asio::async_read(socket, asio::buffer(header.data() + taken, n), kTuple);
      if (read_ec) co_return false;
      taken += read;
    } else {
      asio::steady_timer pause(socket.get_executor(), std::chrono::milliseconds(5));
      co_await pause.async_wait(kTuple);
      if (deadline.expiry() <= std::chrono::steady_clock::now()) co_return false;
    }
  }
}

// ---- connection bookkeeping for a graceful stop ----

std::pair<std::uint64_t, Server::Impl::Live*> Server::Impl::enter(int fd) {
  std::lock_guard lock(live_mu);
  const std::uint64_t id = ++next_id;
  Live& entry = live[id];  // map nodes stay put: the pointer lives as long as the entry
  entry.fd = fd;
  return {id, &entry};
}
void Server::Impl::leave(std::uint64_t id) {
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
void Server::Impl::return_memory() {
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

// ---- plain HTTP ----

awaitable<void> Server::Impl::plain_connection(tcp::socket socket) {
  const int fd = socket.native_handle();
  beast::tcp_stream stream(std::move(socket));
  const ConnectionMetric counted(*metrics, Scheme::Http);
  const LiveGuard guard{*this, enter(fd)};
  try {
    boost::system::error_code ignored;
    const tcp::endpoint remote = stream.socket().remote_endpoint(ignored);
    // A named local: g++ 12 may end a temporary's life at the co_await's suspension.
    Peer peer = peer_of(remote);
    if (!co_await read_proxy_header(stream.socket(), peer, /*https=*/false)) co_return;
    co_await http_session(stream, /*https=*/false, guard.connection(), peer);
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  } catch (const std::exception& e) {
    log(std::string("plain connection: ") + e.what());
  }
}

// ---- the site table ----

std::shared_ptr<const Server::Impl::SiteTable> Server::Impl::make_site_table(
    std::vector<SiteOptions> list, bool redirect_http) const {
  auto table = std::make_shared<SiteTable>();
  table->sites = std::move(list);
  table->redirect_http = redirect_http;
  std::vector<asio::any_io_executor> executors;
  for (const auto& context : io) executors.push_back(context->get_executor());
  for (const SiteOptions& site : table->sites) {
    if (!site.routes) continue;
    add_proxies(site.routes->routes, site.routes, executors, *table);
    for (const caddyfile::ErrorRoutes& errors : site.routes->error_routes) {
      add_proxies(errors.routes, site.routes, executors, *table);
    }
  }
  return table;
}
void Server::Impl::add_proxies(const std::vector<caddyfile::Route>& routes,
                               const std::shared_ptr<const caddyfile::Site>& site,
                               const std::vector<asio::any_io_executor>& executors,
                               SiteTable& table) const {
  for (const caddyfile::Route& route : routes) {
    if (const auto* proxy = std::get_if<caddyfile::Boxed<caddyfile::ReverseProxyHandler>>(&route.handler)) {
      auto state = std::make_shared<ReverseProxy>(**proxy, executors, options.log);
      state->keep_alive(site);  // a relay outliving a reload still reads this site's handler
      state->start();
      table.proxies.emplace(&**proxy, std::move(state));
    } else if (const auto* sub = std::get_if<caddyfile::Subroute>(&route.handler)) {
      add_proxies(sub->routes, site, executors, table);
    }
  }
}
std::shared_ptr<const Server::Impl::SiteTable> Server::Impl::current_sites() const {
  std::lock_guard lock(sites_mu);
  return sites;
}
std::shared_ptr<const Server::Impl::SiteTable> Server::Impl::sites_for_request() {
  if (t_io_server != this) return current_sites();
  ThreadSites& mine = thread_sites[t_io_thread];
  // Read before the table: the table taken is at least this new (a newer one only means one
  // more refresh at the next request).
  const std::uint64_t generation = sites_generation.load(std::memory_order_acquire);
  if (!mine.table || mine.generation != generation) {
    const std::shared_ptr<const SiteTable> shared = current_sites();
    mine.table = std::shared_ptr<const SiteTable>(std::make_shared<std::shared_ptr<const SiteTable>>(shared), shared.get());
    mine.generation = generation;
  }
  return mine.table;
}

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
    impl.threads.emplace_back([context = impl.io[i].get(), i, server = &impl] {
      t_io_thread = i;
      t_io_server = server;
      auto busy = asio::make_work_guard(*context);  // runs until stop(), even without connections
      context->run();
    });
  }
  impl.log("serving HTTPS on port " + std::to_string(impl.https_port_bound) + ", HTTP on port " +
           std::to_string(impl.http_port_bound));
}

void Server::replace_sites(std::vector<SiteOptions> sites, bool redirect_http) {
  Impl& impl = *impl_;
  auto table = impl.make_site_table(std::move(sites), redirect_http);
  {
    std::lock_guard lock(impl.sites_mu);
    impl.sites = std::move(table);
    impl.sites_generation.fetch_add(1, std::memory_order_release);
  }
  for (std::size_t i = 0; i < impl.io.size(); ++i) {
    asio::post(*impl.io[i], [&impl, i] { impl.thread_sites[i].table.reset(); });
  }
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
