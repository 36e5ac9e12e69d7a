#include "raw_socket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace acmetool::test {
namespace {

pki::UniqueFd connected(int family, const sockaddr* address, socklen_t length,
                        const std::string& name) {
  pki::UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd || ::connect(fd.get(), address, length) != 0) {
    throw std::runtime_error("connecting to " + name + ": " + std::strerror(errno));
  }
  return fd;
}

}  // namespace

pki::UniqueFd listen_loopback(int backlog, int& port, const std::string& what) {
  pki::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  if (!fd || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(fd.get(), backlog) != 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    throw std::runtime_error(what + ": " + std::strerror(errno));
  }
  port = ntohs(address.sin_port);
  return fd;
}

pki::UniqueFd connect_tcp(int port, const std::string& ip) {
  const std::string name = ip + " port " + std::to_string(port);
  if (ip.find(':') != std::string::npos) {
    sockaddr_in6 address{};
    address.sin6_family = AF_INET6;
    address.sin6_port = htons(static_cast<std::uint16_t>(port));
    if (::inet_pton(AF_INET6, ip.c_str(), &address.sin6_addr) != 1) {
      throw std::runtime_error("bad IP " + ip);
    }
    return connected(AF_INET6, reinterpret_cast<sockaddr*>(&address), sizeof address, name);
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::inet_pton(AF_INET, ip.c_str(), &address.sin_addr) != 1) {
    throw std::runtime_error("bad IP " + ip);
  }
  return connected(AF_INET, reinterpret_cast<sockaddr*>(&address), sizeof address, name);
}

pki::UniqueFd connect_unix(const std::filesystem::path& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const std::string text = path.string();
  if (text.size() >= sizeof address.sun_path) {
    throw std::runtime_error("socket path too long: " + text);
  }
  std::memcpy(address.sun_path, text.c_str(), text.size() + 1);
  return connected(AF_UNIX, reinterpret_cast<sockaddr*>(&address), sizeof address, text);
}

void send_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) throw std::runtime_error(std::string("sending: ") + std::strerror(errno));
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

std::string read_until_closed(int fd, std::chrono::milliseconds limit, bool* closed) {
  std::string received;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  if (closed) *closed = false;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd pfd{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) return received;
    char buffer[4096];
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) {
      if (closed) *closed = true;
      return received;
    }
    received.append(buffer, static_cast<std::size_t>(n));
  }
}

}  // namespace acmetool::test
