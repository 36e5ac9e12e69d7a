#include "test_upstream.h"

#include "raw_socket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace acmetool::test {
namespace {

using namespace std::chrono_literals;

// Every wait polls in steps this short, so destruction never waits on a blocked thread.
constexpr int kPollStepMs = 20;
// A connection that sends nothing for this long is closed.
constexpr auto kIdleLimit = 30s;
constexpr std::size_t kMaxRequestBytes = 64u << 20;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

std::string trim(std::string_view s) {
  const std::size_t begin = s.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return "";
  return std::string(s.substr(begin, s.find_last_not_of(" \t") - begin + 1));
}

std::string reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

// Buffered reads from a connection that give up on EOF, on an idle peer and on destruction.
class Reader {
 public:
  Reader(int fd, const std::atomic<bool>& stopping) : fd_(fd), stopping_(stopping) {}

  // The bytes before the next `delimiter`, consuming both; nullopt when the connection ends.
  std::optional<std::string> read_until(std::string_view delimiter) {
    std::size_t at;
    while ((at = buffer_.find(delimiter)) == std::string::npos) {
      if (!fill()) return std::nullopt;
    }
    std::string out = buffer_.substr(0, at);
    buffer_.erase(0, at + delimiter.size());
    return out;
  }

  // The next `n` bytes; nullopt when the connection ends first.
  std::optional<std::string> read_exactly(std::size_t n) {
    while (buffer_.size() < n) {
      if (!fill()) return std::nullopt;
    }
    std::string out = buffer_.substr(0, n);
    buffer_.erase(0, n);
    return out;
  }

 private:
  bool fill() {
    if (buffer_.size() > kMaxRequestBytes) return false;
    const auto deadline = std::chrono::steady_clock::now() + kIdleLimit;
    while (!stopping_ && std::chrono::steady_clock::now() < deadline) {
      pollfd pfd{fd_, POLLIN, 0};
      const int ready = ::poll(&pfd, 1, kPollStepMs);
      if (ready < 0 && errno != EINTR) return false;
      if (ready <= 0) continue;
      char chunk[16384];
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return false;
      buffer_.append(chunk, static_cast<std::size_t>(n));
      return true;
    }
    return false;
  }

  int fd_;
  const std::atomic<bool>& stopping_;
  std::string buffer_;
};

// The request line and field lines of `head` (without its blank line); nullopt when malformed.
std::optional<UpstreamRecord> parse_head(const std::string& head) {
  UpstreamRecord record;
  const std::size_t line_end = std::min(head.find("\r\n"), head.size());
  const std::string line = head.substr(0, line_end);
  const std::size_t space1 = line.find(' '), space2 = line.rfind(' ');
  if (space1 == std::string::npos || space2 == space1) return std::nullopt;
  record.method = line.substr(0, space1);
  record.target = line.substr(space1 + 1, space2 - space1 - 1);
  for (std::size_t at = line_end; at < head.size();) {
    const std::size_t next = std::min(head.find("\r\n", at + 2), head.size());
    const std::string_view field = std::string_view(head).substr(at + 2, next - at - 2);
    const std::size_t colon = field.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    record.headers.emplace_back(std::string(field.substr(0, colon)), trim(field.substr(colon + 1)));
    at = next;
  }
  return record;
}

// A chunked body (RFC 9112 §7.1), trailers discarded; nullopt on bad framing or a lost peer.
std::optional<std::string> read_chunked(Reader& reader) {
  std::string body;
  for (;;) {
    const std::optional<std::string> size_line = reader.read_until("\r\n");
    if (!size_line || size_line->empty()) return std::nullopt;
    char* end = nullptr;
    const unsigned long size = std::strtoul(size_line->c_str(), &end, 16);
    if (end == size_line->c_str() || (*end != '\0' && *end != ';' && *end != ' ')) return std::nullopt;
    if (size == 0) break;
    const std::optional<std::string> data = reader.read_exactly(size);
    const std::optional<std::string> crlf = reader.read_until("\r\n");
    if (!data || !crlf || !crlf->empty()) return std::nullopt;
    body += *data;
    if (body.size() > kMaxRequestBytes) return std::nullopt;
  }
  for (;;) {  // trailer section, up to its blank line
    const std::optional<std::string> trailer = reader.read_until("\r\n");
    if (!trailer) return std::nullopt;
    if (trailer->empty()) return body;
  }
}

// Reads the body `record`'s fields announce into it; false when the connection must close.
bool read_body(Reader& reader, UpstreamRecord& record) {
  const std::optional<std::string> coding = record.header("Transfer-Encoding");
  if (coding) {
    if (!iequals(*coding, "chunked")) return false;
    const std::optional<std::string> body = read_chunked(reader);
    if (!body) return false;
    record.body = *body;
    return true;
  }
  const std::optional<std::string> length = record.header("Content-Length");
  if (!length) return true;
  char* end = nullptr;
  const unsigned long n = std::strtoul(length->c_str(), &end, 10);
  if (length->empty() || *end != '\0' || n > kMaxRequestBytes) return false;
  const std::optional<std::string> body = reader.read_exactly(n);
  if (!body) return false;
  record.body = *body;
  return true;
}

}  // namespace

std::optional<std::string> UpstreamRecord::header(std::string_view name) const {
  for (const auto& [field, value] : headers) {
    if (iequals(field, name)) return value;
  }
  return std::nullopt;
}

int UpstreamRecord::count(std::string_view name) const {
  return static_cast<int>(std::count_if(headers.begin(), headers.end(),
                                        [&](const auto& field) { return iequals(field.first, name); }));
}

void Exchange::respond(int status, std::string_view body,
                       const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string response = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) +
                         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  for (const auto& [name, value] : headers) response += name + ": " + value + "\r\n";
  response += "\r\n";
  if (request_.method != "HEAD") response += body;
  send_raw(response);
}

void Exchange::send_raw(std::string_view bytes) {
  wrote_ = true;
  // Non-blocking sends between short polls: a peer that stops reading cannot hold up destruction.
  while (!broken_ && !bytes.empty()) {
    if (stopping_) broken_ = true;
    pollfd pfd{fd_, POLLOUT, 0};
    if (::poll(&pfd, 1, kPollStepMs) <= 0) continue;
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) broken_ = true;
    if (n > 0) bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

std::string Exchange::read_raw(std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!stopping_ && !broken_ && std::chrono::steady_clock::now() < until) {
    pollfd pfd{fd_, POLLIN, 0};
    if (::poll(&pfd, 1, kPollStepMs) <= 0) continue;
    char buffer[4096];
    const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
    if (n <= 0) break;
    return std::string(buffer, static_cast<std::size_t>(n));
  }
  return "";
}

void Exchange::sleep_for(std::chrono::milliseconds duration) {
  const auto until = std::chrono::steady_clock::now() + duration;
  while (!stopping_ && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(
        std::chrono::milliseconds(kPollStepMs), until - std::chrono::steady_clock::now()));
  }
}

TestUpstream::TestUpstream(Handler handler) : handler_(std::move(handler)) {
  listen_fd_ = listen_loopback(64, port_, "starting the test upstream").release();
  acceptor_ = std::thread([this] { accept_loop(); });
}

TestUpstream::~TestUpstream() {
  stopping_ = true;
  acceptor_.join();  // after this, nobody adds to workers_
  for (std::thread& worker : workers_) worker.join();
  ::close(listen_fd_);
}

std::string TestUpstream::dial() const { return "127.0.0.1:" + std::to_string(port_); }

std::vector<UpstreamRecord> TestUpstream::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

void TestUpstream::accept_loop() {
  while (!stopping_) {
    pollfd pfd{listen_fd_, POLLIN, 0};
    if (::poll(&pfd, 1, kPollStepMs) <= 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    const int index = connections_++;
    std::lock_guard lock(mutex_);
    workers_.emplace_back([this, fd, index] {
      serve_connection(fd, index);
      ::close(fd);
    });
  }
}

void TestUpstream::serve_connection(int fd, int index) {
  Reader reader(fd, stopping_);
  for (;;) {
    const std::optional<std::string> head = reader.read_until("\r\n\r\n");
    if (!head) return;
    std::optional<UpstreamRecord> record = parse_head(*head);
    if (!record || !read_body(reader, *record)) return;
    record->connection = index;
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(*record);
    }
    Exchange exchange(fd, *record, stopping_);
    try {
      handler_(exchange);
    } catch (const std::exception&) {
      return;
    }
    if (!exchange.wrote()) exchange.respond(200);
    const std::optional<std::string> connection = record->header("Connection");
    if (exchange.closing() || (connection && iequals(*connection, "close"))) return;
  }
}

}  // namespace acmetool::test
