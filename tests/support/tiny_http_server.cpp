#include "tiny_http_server.h"

#include "raw_socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <stdexcept>

namespace acmetool::test {
namespace {

// A request that takes longer than this to arrive is abandoned (its connection closed).
constexpr int kReadTimeoutMs = 5000;
constexpr size_t kMaxRequestBytes = 1024 * 1024;

std::string trim(const std::string& s) {
  const size_t begin = s.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  return s.substr(begin, s.find_last_not_of(" \t\r") - begin + 1);
}

std::string reason_phrase(int status) {
  static const std::map<int, std::string> kPhrases = {
      {200, "OK"},           {201, "Created"},
      {204, "No Content"},   {400, "Bad Request"},
      {401, "Unauthorized"}, {403, "Forbidden"},
      {404, "Not Found"},    {500, "Internal Server Error"}};
  const auto it = kPhrases.find(status);
  return it == kPhrases.end() ? "Status" : it->second;
}

// Reads until `buffer` holds the head and `Content-Length` bytes of body; false on EOF, error
// or timeout.
bool read_request(int fd, std::string& buffer, size_t& head_end) {
  head_end = std::string::npos;
  size_t wanted = 0;
  for (;;) {
    if (head_end == std::string::npos &&
        (head_end = buffer.find("\r\n\r\n")) != std::string::npos) {
      std::string lower = buffer.substr(0, head_end);
      std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
      const size_t at = lower.find("\r\ncontent-length:");
      wanted = head_end + 4 + (at == std::string::npos ? 0 : std::stoul(lower.substr(at + 17)));
    }
    if (head_end != std::string::npos && buffer.size() >= wanted) return true;
    if (buffer.size() > kMaxRequestBytes) return false;
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, kReadTimeoutMs) <= 0) return false;
    char chunk[4096];
    const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buffer.append(chunk, static_cast<size_t>(n));
  }
}

RecordedRequest parse_request(const std::string& buffer, size_t head_end) {
  RecordedRequest request;
  const std::string head = buffer.substr(0, head_end);
  const size_t line_end = head.find("\r\n");
  const std::string line = head.substr(0, line_end);
  const size_t space1 = line.find(' '), space2 = line.rfind(' ');
  request.method = line.substr(0, space1);
  request.target = line.substr(space1 + 1, space2 - space1 - 1);
  for (size_t at = line_end; at != std::string::npos && at < head.size();) {
    const size_t next = head.find("\r\n", at + 2);
    const std::string field =
        head.substr(at + 2, next == std::string::npos ? std::string::npos : next - at - 2);
    if (const size_t colon = field.find(':'); colon != std::string::npos) {
      std::string name = field.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(), ::tolower);
      request.headers[name] = trim(field.substr(colon + 1));
    }
    at = next;
  }
  request.body = buffer.substr(head_end + 4);
  return request;
}

void write_all(int fd, const std::string& data) {
  for (size_t sent = 0; sent < data.size();) {
    const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;
    sent += static_cast<size_t>(n);
  }
}

}  // namespace

std::optional<std::string> RecordedRequest::header(const std::string& name) const {
  const auto it = headers.find(name);
  if (it == headers.end()) return std::nullopt;
  return it->second;
}

TinyHttpServer::TinyHttpServer(Handler handler) : handler_(std::move(handler)) {
  listen_fd_ = listen_loopback(16, port_, "starting the tiny HTTP server").release();
  if (::pipe2(stop_pipe_, O_CLOEXEC) != 0) {
    const std::string reason = std::strerror(errno);
    ::close(listen_fd_);
    throw std::runtime_error("starting the tiny HTTP server: " + reason);
  }
  thread_ = std::thread([this] { serve(); });
}

TinyHttpServer::~TinyHttpServer() {
  (void)!::write(stop_pipe_[1], "x", 1);
  thread_.join();
  ::close(listen_fd_);
  ::close(stop_pipe_[0]);
  ::close(stop_pipe_[1]);
}

std::string TinyHttpServer::url() const { return "http://127.0.0.1:" + std::to_string(port_); }

std::vector<RecordedRequest> TinyHttpServer::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

void TinyHttpServer::serve() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if (fds[1].revents != 0) return;
    if (fds[0].revents == 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    handle(fd);
    ::close(fd);
  }
}

void TinyHttpServer::handle(int fd) {
  std::string buffer;
  size_t head_end = 0;
  if (!read_request(fd, buffer, head_end)) return;
  const RecordedRequest request = parse_request(buffer, head_end);
  {
    std::lock_guard lock(mutex_);
    requests_.push_back(request);
  }
  CannedResponse response;
  try {
    response = handler_(request);
  } catch (const std::exception& e) {
    response = {500, e.what(), "text/plain"};
  }
  std::string head = "HTTP/1.1 " + std::to_string(response.status) + " " +
                     reason_phrase(response.status) + "\r\nContent-Type: " + response.content_type +
                     "\r\nContent-Length: " + std::to_string(response.body.size()) +
                     "\r\nConnection: close\r\n";
  for (const auto& [name, value] : response.headers) head += name + ": " + value + "\r\n";
  write_all(fd, head + "\r\n" + response.body);
}

}  // namespace acmetool::test
