#include "fixture_util.h"

#include <fstream>
#include <set>

#include "process.h"

namespace fs = std::filesystem;

namespace acmetool::test {

void start_with_retries(const std::function<void()>& start, const std::function<void()>& reset, int attempts) {
  for (int attempt = 1;; ++attempt) {
    try {
      start();
      return;
    } catch (const PortConflict& e) {
      if (attempt >= attempts) throw std::runtime_error(e.what());
      reset();
    }
  }
}

std::string loopback(int port) { return "127.0.0.1:" + std::to_string(port); }

std::vector<int> distinct_free_ports(size_t count) {
  std::set<int> seen;
  std::vector<int> ports;
  while (ports.size() < count) {
    const int port = free_port();
    if (seen.insert(port).second) ports.push_back(port);
  }
  return ports;
}

std::string log_tail(const std::string& label, const fs::path& log, size_t lines) {
  const std::string text = read_text(log);
  size_t begin = text.size();
  if (begin > 0 && text[begin - 1] == '\n') --begin;
  for (size_t n = 0; n < lines && begin != std::string::npos && begin > 0; ++n) {
    begin = text.rfind('\n', begin - 1);
  }
  const size_t from = (begin == std::string::npos || begin == 0) ? 0 : begin + 1;
  return "--- " + label + " log " + log.string() + " (tail) ---\n" + text.substr(from);
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out.flush()) throw std::runtime_error("writing " + path.string() + ": write failed");
}

}  // namespace acmetool::test
