#include "listener_internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>

#include "acmetool/acme/error.h"

namespace acmetool::acme {
namespace {

using Clock = std::chrono::steady_clock;

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

SocketAddress any_address(int family, int port) {
  SocketAddress address;
  if (family == AF_INET6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&address.storage);
    in6->sin6_family = AF_INET6;
    in6->sin6_addr = in6addr_any;
    in6->sin6_port = htons(static_cast<uint16_t>(port));
    address.length = sizeof(sockaddr_in6);
  } else {
    auto* in4 = reinterpret_cast<sockaddr_in*>(&address.storage);
    in4->sin_family = AF_INET;
    in4->sin_addr.s_addr = htonl(INADDR_ANY);
    in4->sin_port = htons(static_cast<uint16_t>(port));
    address.length = sizeof(sockaddr_in);
  }
  return address;
}

// The literal's address, or an empty one (length 0) when `literal` is not an IP address.
SocketAddress literal_address(std::string literal, int port) {
  if (literal.size() >= 2 && literal.front() == '[' && literal.back() == ']') {
    literal = literal.substr(1, literal.size() - 2);
  }
  SocketAddress address;
  auto* in4 = reinterpret_cast<sockaddr_in*>(&address.storage);
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&address.storage);
  if (::inet_pton(AF_INET, literal.c_str(), &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons(static_cast<uint16_t>(port));
    address.length = sizeof(sockaddr_in);
  } else if (::inet_pton(AF_INET6, literal.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(static_cast<uint16_t>(port));
    address.length = sizeof(sockaddr_in6);
  }
  return address;
}

// A non-blocking listening socket on `address`; on failure an empty owner, with errno saying why.
// `v6only` matters for AF_INET6 only: 0 also accepts IPv4 connections (as ::ffff:a.b.c.d).
UniqueFd open_listening_socket(const SocketAddress& address, int v6only) {
  const int family = address.get()->sa_family;
  UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  const int one = 1;
  if (fd.get() >= 0 && ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
      (family != AF_INET6 ||
       ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) == 0) &&
      ::bind(fd.get(), address.get(), address.length) == 0 && ::listen(fd.get(), SOMAXCONN) == 0) {
    return fd;
  }
  const int error = errno;  // close() must not hide it
  fd.reset();
  errno = error;
  return {};
}

// "127.0.0.1:80", "[::1]:443", ":80" for all addresses.
std::string endpoint_name(std::string_view address, int port) {
  const bool bare_ipv6 = address.find(':') != std::string_view::npos && address.front() != '[';
  return (bare_ipv6 ? "[" + std::string(address) + "]" : std::string(address)) + ":" +
         std::to_string(port);
}

// Each connection has a deadline, a protocol and what it waits for. `fd` is declared first so
// that the Connection, which borrows it, is destroyed before the socket closes.
struct Slot {
  UniqueFd fd;
  std::unique_ptr<Connection> connection;
  Want want = Want::Read;
  Clock::time_point deadline;
};

short events_for(Want want) { return want == Want::Write ? POLLOUT : POLLIN; }

// Advances one connection, closing it (Want::Close) on any exception: one misbehaving client must
// not take the listener down.
Want advance_safely(Connection& connection) noexcept {
  try {
    return connection.advance();
  } catch (...) {
    return Want::Close;
  }
}

// How long poll() may wait: until the earliest deadline, at least 1 ms so it cannot spin at 0.
int poll_timeout_ms(const std::vector<Slot>& slots, Clock::time_point now) {
  if (slots.empty()) return -1;
  auto earliest = slots.front().deadline;
  for (const Slot& slot : slots) earliest = std::min(earliest, slot.deadline);
  const auto wait = std::chrono::ceil<std::chrono::milliseconds>(earliest - now).count();
  return static_cast<int>(std::clamp<long long>(wait, 1, 60'000));
}

// Accepts what waits in the backlog, up to kMaxConnections in all.
void accept_connections(int socket, const ConnectionFactory& make_connection, Clock::time_point now,
                        std::vector<Slot>& slots, Clock::time_point& paused_until) {
  while (slots.size() < Listener::kMaxConnections) {
    UniqueFd fd(::accept4(socket, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (fd.get() < 0) {
      // Out of descriptors or memory: the socket stays readable, so wait before retrying.
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        paused_until = now + std::chrono::milliseconds(100);
      }
      return;
    }
    try {
      std::unique_ptr<Connection> connection = make_connection(fd.get());
      slots.push_back(
          {std::move(fd), std::move(connection), Want::Read, now + Listener::kConnectionTimeout});
    } catch (...) {
      // Not even a TLS object for this one: drop it, keep serving the others.
    }
  }
}

}  // namespace

bool is_token(std::string_view token) {
  const auto base64url = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
  };
  return !token.empty() && std::all_of(token.begin(), token.end(), base64url);
}

void require_token(std::string_view challenge, std::string_view token) {
  if (!is_token(token)) {
    throw Error("presenting " + std::string(challenge) + " token: not base64url: '" +
                std::string(token.substr(0, 64)) + "'");
  }
}

Want drain(int fd) {
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n == 0) return Want::Close;
    if (n < 0) return errno == EAGAIN || errno == EINTR ? Want::Read : Want::Close;
  }
}

Listener::Listener(std::string_view address, int port, std::string_view purpose,
                   ConnectionFactory make_connection)
    : make_connection_(std::move(make_connection)) {
  const std::string what =
      "listening on " + endpoint_name(address, port) + " for " + std::string(purpose);
  if (port < 1 || port > 65535) throw Error(what + ": port out of range");
  if (address.empty()) {
    // One dual-stack socket for every address, or IPv4 alone on a host without IPv6.
    socket_ = open_listening_socket(any_address(AF_INET6, port), 0);
    if (socket_.get() < 0 && (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL)) {
      socket_ = open_listening_socket(any_address(AF_INET, port), 0);
    }
  } else {
    const SocketAddress literal = literal_address(std::string(address), port);
    if (literal.length == 0) throw Error(what + ": not an IP address");
    socket_ = open_listening_socket(literal, 1);
  }
  if (socket_.get() < 0) throw Error(what + ": " + std::strerror(errno));
  wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (wake_.get() < 0) throw Error(what + ": eventfd: " + std::strerror(errno));
  thread_ = std::jthread([this](std::stop_token stop) { run(stop); });
}

Listener::~Listener() {
  thread_.request_stop();
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t written = ::write(wake_.get(), &one, sizeof one);
  thread_.join();
}

void Listener::run(std::stop_token stop) {
  // OpenSSL writes to sockets with write(), which raises SIGPIPE when the peer is gone. Blocked in
  // this thread it stays pending here and write() fails with EPIPE instead of killing the process.
  sigset_t pipe_signal;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);

  std::vector<Slot> slots;
  std::vector<pollfd> fds;
  Clock::time_point accept_paused_until{};
  while (!stop.stop_requested()) {
    const auto now = Clock::now();
    const bool full = slots.size() >= kMaxConnections;
    const bool paused = now < accept_paused_until;
    fds.clear();
    fds.push_back({wake_.get(), POLLIN, 0});
    fds.push_back({full || paused ? -1 : socket_.get(), POLLIN, 0});
    for (const Slot& slot : slots) fds.push_back({slot.fd.get(), events_for(slot.want), 0});
    int timeout = poll_timeout_ms(slots, now);
    if (paused && !full) timeout = timeout < 0 ? 100 : std::min(timeout, 100);
    if (::poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR) break;

    for (std::size_t i = 0; i < slots.size(); ++i) {
      if (fds[2 + i].revents != 0) slots[i].want = advance_safely(*slots[i].connection);
    }
    const auto after_poll = Clock::now();
    std::erase_if(slots, [&](const Slot& slot) {
      return slot.want == Want::Close || after_poll >= slot.deadline;
    });
    if (fds[1].revents & POLLIN) {
      accept_connections(socket_.get(), make_connection_, after_poll, slots, accept_paused_until);
    }
  }
}

}  // namespace acmetool::acme
