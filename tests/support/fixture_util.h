// Helpers the server fixtures (pebble.cpp, bind9.cpp) share: ports, logs, config files.
#pragma once

#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace acmetool::test {

/// A server start that failed because a port was taken between free_port() and the server's bind
/// (by a test running in parallel, or an outgoing socket); fixtures retry with new ports.
class PortConflict : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Runs `start` until it succeeds, at most `attempts` times; after a PortConflict it calls
/// `reset` (stop what was started) and tries again with new ports. Other errors propagate at once.
void start_with_retries(const std::function<void()>& start, const std::function<void()>& reset, int attempts = 3);

/// One `Server` per test process, started on first use and stopped at exit. A start failure is
/// remembered and rethrown at once to later callers, so that the tests after it fail fast instead
/// of each waiting for a start again. Call from one thread.
template <class Server>
Server& shared_server() {
  static std::string start_failure;
  if (!start_failure.empty()) throw std::runtime_error(start_failure);
  try {
    static Server server;
    return server;
  } catch (const std::exception& e) {
    start_failure = e.what();
    throw;
  }
}

/// "127.0.0.1:PORT".
std::string loopback(int port);

/// `count` different free loopback ports (nothing holds a port free_port() returns, so two calls
/// may return the same one).
std::vector<int> distinct_free_ports(size_t count);

/// The last `lines` lines of a server's log, under a heading naming it: enough to see why it failed.
std::string log_tail(const std::string& label, const std::filesystem::path& log, size_t lines = 20);

/// Writes a config file for a server; throws std::runtime_error on failure.
void write_file(const std::filesystem::path& path, const std::string& text);

}  // namespace acmetool::test
