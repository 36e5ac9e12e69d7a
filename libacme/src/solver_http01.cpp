// http-01 (RFC 8555 §8.3): our own minimal HTTP/1.x responder, or files in a web server's root.
#include <sys/socket.h>

#include <cerrno>
#include <map>
#include <mutex>
#include <set>
#include <optional>
#include <system_error>

#include "acmetool/acme/error.h"
#include "acmetool/acme/solver.h"
#include "acmetool/pki/error.h"
#include "acmetool/pki/files.h"
#include "listener_internal.h"

namespace acmetool::acme {
namespace {

constexpr std::string_view kChallengeType = "http-01";
constexpr std::string_view kChallengePath = "/.well-known/acme-challenge/";
// Validation requests are one short line and a few headers; anything longer is not the CA.
constexpr std::size_t kMaxRequestHead = 8 * 1024;

std::string http_response(std::string_view status, std::string_view body) {
  return "HTTP/1.1 " + std::string(status) +
         "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n\r\n" + std::string(body);
}

// The tokens presented on one standalone solver; shared by its connections.
class TokenTable {
 public:
  void add(std::string_view token, std::string_view key_authorization) {
    std::lock_guard lock(mutex_);
    key_authorizations_.insert_or_assign(std::string(token), std::string(key_authorization));
  }
  void remove(std::string_view token) noexcept {
    std::lock_guard lock(mutex_);
    if (auto it = key_authorizations_.find(token); it != key_authorizations_.end()) {
      key_authorizations_.erase(it);
    }
  }
  std::optional<std::string> find(std::string_view token) const {
    std::lock_guard lock(mutex_);
    auto it = key_authorizations_.find(token);
    if (it == key_authorizations_.end()) return std::nullopt;
    return it->second;
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::string, std::less<>> key_authorizations_;
};

// The response to one request head (request line and headers, without the blank line).
std::string respond(const TokenTable& tokens, std::string_view head) {
  const std::string_view line = head.substr(0, head.find_first_of("\r\n"));
  const auto first_space = line.find(' ');
  const auto last_space = line.rfind(' ');
  if (first_space == std::string_view::npos || first_space == last_space ||
      !line.substr(last_space + 1).starts_with("HTTP/1.")) {
    return http_response("400 Bad Request", "bad request\n");
  }
  const std::string_view method = line.substr(0, first_space);
  const std::string_view target = line.substr(first_space + 1, last_space - first_space - 1);
  if (method == "GET" && target.starts_with(kChallengePath)) {
    const std::string_view token = target.substr(kChallengePath.size());
    if (is_token(token)) {
      if (auto key_authorization = tokens.find(token)) {
        return http_response("200 OK", *key_authorization);
      }
    }
  }
  return http_response("404 Not Found", "not found\n");
}

// One request and its response on a non-blocking socket: read the head, write the answer, then
// drain() until the client closes.
class HttpExchange final : public Connection {
 public:
  HttpExchange(int fd, const TokenTable& tokens) : fd_(fd), tokens_(tokens) {}

  Want advance() override {
    switch (state_) {
      case State::Reading:
        return read_request();
      case State::Writing:
        return write_response();
      case State::Draining:
        return drain(fd_);
    }
    return Want::Close;
  }

 private:
  enum class State { Reading, Writing, Draining };

  Want read_request() {
    char buffer[4096];
    for (;;) {
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n == 0) return Want::Close;
      if (n < 0) return errno == EAGAIN || errno == EINTR ? Want::Read : Want::Close;
      request_.append(buffer, static_cast<std::size_t>(n));
      auto end = request_.find("\r\n\r\n");
      if (end == std::string::npos) end = request_.find("\n\n");
      if (end != std::string::npos && end <= kMaxRequestHead) {
        return start_response(respond(tokens_, std::string_view(request_).substr(0, end)));
      }
      if (request_.size() > kMaxRequestHead) {
        return start_response(
            http_response("431 Request Header Fields Too Large", "request too large\n"));
      }
    }
  }

  Want start_response(std::string response) {
    response_ = std::move(response);
    request_.clear();
    state_ = State::Writing;
    return write_response();
  }

  Want write_response() {
    while (sent_ < response_.size()) {
      const ssize_t n =
          ::send(fd_, response_.data() + sent_, response_.size() - sent_, MSG_NOSIGNAL);
      if (n < 0) return errno == EAGAIN || errno == EINTR ? Want::Write : Want::Close;
      sent_ += static_cast<std::size_t>(n);
    }
    ::shutdown(fd_, SHUT_WR);
    state_ = State::Draining;
    return drain(fd_);
  }

  int fd_;
  const TokenTable& tokens_;
  State state_ = State::Reading;
  std::string request_;
  std::string response_;
  std::size_t sent_ = 0;
};

class Http01Standalone final : public Solver {
 public:
  Http01Standalone(std::string_view address, int port)
      : listener_(address, port, kChallengeType,
                  [this](int fd) { return std::make_unique<HttpExchange>(fd, tokens_); }) {}

  std::string_view type() const override { return kChallengeType; }

  void present(std::string_view, std::string_view token,
               std::string_view key_authorization) override {
    require_token(kChallengeType, token);
    tokens_.add(token, key_authorization);
  }

  void cleanup(std::string_view, std::string_view token) noexcept override {
    tokens_.remove(token);
  }

 private:
  TokenTable tokens_;
  Listener listener_;  // last: its connections read tokens_
};

class Http01Webroot final : public Solver {
 public:
  explicit Http01Webroot(std::filesystem::path webroot)
      : challenge_dir_(std::move(webroot) / ".well-known" / "acme-challenge") {}

  std::string_view type() const override { return kChallengeType; }

  void present(std::string_view identifier, std::string_view token,
               std::string_view key_authorization) override {
    require_token(kChallengeType, token);
    try {
      // 0755 and 0644: the web server, another user, must be able to read them.
      pki::make_dirs(challenge_dir_, 0755);
      pki::write_file_atomic(challenge_dir_ / token, key_authorization, 0644);
      std::lock_guard lock(mutex_);
      written_.insert(std::string(token));
    } catch (const pki::Error& e) {
      throw Error("presenting http-01 for " + std::string(identifier) +
                  " in the webroot: " + e.what());
    }
  }

  void cleanup(std::string_view, std::string_view token) noexcept override {
    if (!is_token(token)) return;  // never presented, and not a name to build a path from
    std::error_code ignored;
    std::filesystem::remove(challenge_dir_ / token, ignored);
    std::lock_guard lock(mutex_);
    written_.erase(std::string(token));
  }

  void withdraw_all() noexcept override {
    std::lock_guard lock(mutex_);
    for (const std::string& token : written_) {
      std::error_code ignored;
      std::filesystem::remove(challenge_dir_ / token, ignored);
    }
    written_.clear();
  }

 private:
  std::filesystem::path challenge_dir_;
  std::mutex mutex_;
  std::set<std::string> written_;  ///< tokens whose files exist, for withdraw_all
};

}  // namespace

std::unique_ptr<Solver> make_http01_standalone(std::string address, int port) {
  return std::make_unique<Http01Standalone>(address, port);
}

std::unique_ptr<Solver> make_http01_webroot(std::filesystem::path webroot) {
  return std::make_unique<Http01Webroot>(std::move(webroot));
}

}  // namespace acmetool::acme
