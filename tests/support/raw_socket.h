// Raw stream sockets for tests that speak bytes to a server themselves: half-sent heads, idle
// clients, exact responses. Loopback and Unix sockets only.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>

#include "acmetool/pki/unique_fd.h"

namespace acmetool::test {

/// A socket listening on 127.0.0.1 at a port the kernel picks (no race with other tests), with
/// `backlog`; sets `port`. Throws std::runtime_error "<what>: <reason>" when it cannot.
pki::UniqueFd listen_loopback(int backlog, int& port, const std::string& what);

/// A TCP connection to `ip` ("127.0.0.1", "::1") and `port`. Throws std::runtime_error when it
/// cannot connect.
pki::UniqueFd connect_tcp(int port, const std::string& ip = "127.0.0.1");

/// A connection to the Unix socket at `path`. Throws std::runtime_error when it cannot connect.
pki::UniqueFd connect_unix(const std::filesystem::path& path);

/// Sends all of `bytes` (no SIGPIPE). Throws std::runtime_error when the peer is gone.
void send_all(int fd, std::string_view bytes);

/// Everything the peer sends until it closes or `limit` passes; `closed`, when given, tells
/// which happened.
std::string read_until_closed(int fd, std::chrono::milliseconds limit, bool* closed = nullptr);

}  // namespace acmetool::test
