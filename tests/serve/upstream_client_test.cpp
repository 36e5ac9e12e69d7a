// The upstream HTTP/1.1 client (issue 9): bodies by Content-Length, chunked and HEAD, the
// keep-alive pool and its retry after an upstream closed an idle connection, dial, header,
// read_timeout and write_timeout failures, and Unix sockets — against raw-socket upstreams of the
// test's own on 127.0.0.1 that count connections and requests. (HTTP/2 is tested end to end in
// tests/cli/serve_proxy_test.cpp, against Caddy.)
#include "acmetool/serve/upstream_client.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio.hpp>
#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace asio = boost::asio;
namespace serve = acmetool::serve;
using namespace std::chrono_literals;

namespace {

// What the upstream does with one request: send `bytes`, then close or keep reading.
struct Answer {
  std::string bytes;
  bool close_after = false;
  bool never_answer = false;  // hold the connection without a byte
  bool trickle = false;       // send one byte at a time, each in its own segment
};

// An upstream on one thread that serves connections one after the other, each for as many
// requests as they send (heads plus Content-Length bodies). Stops when destroyed.
class RawUpstream {
 public:
  using Handler = std::function<Answer(const std::string& head, int request_index)>;

  explicit RawUpstream(Handler handler, const std::filesystem::path& unix_path = {}) : handler_(std::move(handler)) {
    if (unix_path.empty()) {
      listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) throw std::runtime_error("bind");
      socklen_t len = sizeof addr;
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
      port_ = ntohs(addr.sin_port);
    } else {
      listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      std::strncpy(addr.sun_path, unix_path.c_str(), sizeof addr.sun_path - 1);
      std::filesystem::remove(unix_path);
      if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) throw std::runtime_error("bind");
    }
    ::listen(listen_fd_, 16);
    thread_ = std::thread([this] { serve(); });
  }
  ~RawUpstream() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
  }

  int port() const { return port_; }
  int connections() const { return connections_; }
  int requests() const { return requests_; }

 private:
  // Waits for `fd` to be readable; false when stopping.
  bool wait_readable(int fd) {
    while (!stop_) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 20) > 0) return true;
    }
    return false;
  }

  void serve() {
    while (wait_readable(listen_fd_)) {
      const int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) continue;
      ++connections_;
      serve_connection(fd);
      ::close(fd);
    }
  }

  void serve_connection(int fd) {
    std::string in;
    for (;;) {
      std::size_t end;
      while ((end = in.find("\r\n\r\n")) == std::string::npos) {
        if (!wait_readable(fd)) return;
        char buf[4096];
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return;
        in.append(buf, static_cast<std::size_t>(n));
      }
      std::string head = in.substr(0, end + 4);
      std::size_t body_length = 0;
      if (const auto cl = head.find("Content-Length: "); cl != std::string::npos) {
        body_length = std::stoul(head.substr(cl + 16));
      }
      while (in.size() < end + 4 + body_length) {
        if (!wait_readable(fd)) return;
        char buf[4096];
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return;
        in.append(buf, static_cast<std::size_t>(n));
      }
      in.erase(0, end + 4 + body_length);
      const Answer answer = handler_(head, requests_++);
      if (answer.never_answer) {
        while (wait_readable(fd)) {
          char buf[4096];
          if (::recv(fd, buf, sizeof buf, 0) <= 0) return;
        }
        return;
      }
      if (answer.trickle) {
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      }
      std::size_t sent = 0;
      while (sent < answer.bytes.size()) {
        if (answer.trickle) std::this_thread::sleep_for(1ms);
        const std::size_t most = answer.trickle ? 1 : answer.bytes.size() - sent;
        const ssize_t n = ::send(fd, answer.bytes.data() + sent, most, MSG_NOSIGNAL);
        if (n <= 0) return;
        sent += static_cast<std::size_t>(n);
      }
      if (answer.close_after) return;
    }
  }

  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

std::string ok_response(const std::string& body, const std::string& extra = "") {
  return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra + "\r\n" + body;
}

// What a round trip produced, body read to its end.
struct Fetched {
  std::optional<serve::UpstreamError> error;
  serve::UpstreamResponseHead head;
  std::vector<std::string> chunks;
  std::optional<serve::UpstreamError> body_error;
  std::string body() const {
    std::string out;
    for (const auto& c : chunks) out += c;
    return out;
  }
};

asio::awaitable<void> fetch_into(serve::UpstreamConnections& client, std::string dial, serve::UpstreamRequest request,
                                 Fetched& out) {
  serve::UpstreamResult result = co_await client.round_trip(std::move(dial), std::move(request));
  out.error = result.error;
  out.head = result.head;
  if (!result.ok()) co_return;
  while (auto chunk = co_await result.body.next_chunk()) out.chunks.push_back(std::move(*chunk));
  out.body_error = result.body.error();
}

// Runs one round trip to completion on `io` (in this thread).
Fetched fetch(asio::io_context& io, serve::UpstreamConnections& client, const std::string& dial,
              serve::UpstreamRequest request = {}) {
  Fetched out;
  bool finished = false;
  asio::co_spawn(io, fetch_into(client, dial, std::move(request), out),
                 [&finished](std::exception_ptr e) {
                   finished = true;
                   if (e) std::rethrow_exception(e);
                 });
  io.restart();
  io.run_for(10s);
  REQUIRE(finished);
  return out;
}

std::string header(const serve::UpstreamResponseHead& head, const std::string& name) {
  for (const auto& [field, value] : head.fields) {
    if (field == name) return std::string(value);
  }
  return {};
}

}  // namespace

TEST_CASE("upstream client reads a Content-Length body and pools the connection", "[upstream_client]") {
  std::string seen;
  RawUpstream upstream([&seen](const std::string& head, int) {
    seen = head;
    return Answer{ok_response("hello, world", "X-Up: 1\r\n")};
  });
  asio::io_context io;
  serve::UpstreamConnections client(io.get_executor());
  const std::string dial = "127.0.0.1:" + std::to_string(upstream.port());
  serve::UpstreamRequest request;
  request.method = "POST";
  request.target = "/submit?x=1";
  request.fields = {{"Host", "example.com"}, {"X-Test", "yes"}};
  request.body = "abc";
  const Fetched f = fetch(io, client, dial, request);
  REQUIRE_FALSE(f.error);
  CHECK(f.head.status == 200);
  CHECK(f.head.reason == "OK");
  CHECK(header(f.head, "X-Up") == "1");
  CHECK(f.body() == "hello, world");
  CHECK_FALSE(f.body_error);
  CHECK(seen.starts_with("POST /submit?x=1 HTTP/1.1\r\n"));
  CHECK(seen.find("Host: example.com\r\n") != std::string::npos);
  CHECK(seen.find("X-Test: yes\r\n") != std::string::npos);
  CHECK(seen.find("Content-Length: 3\r\n") != std::string::npos);
  CHECK(client.idle_count(dial) == 1);
}

TEST_CASE("upstream client reads a chunked body in pieces", "[upstream_client]") {
  const std::string big(40000, 'z');
  RawUpstream upstream([&big](const std::string&, int) {
    std::string r = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    r += "5\r\nfirst\r\n";
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", big.size());
    r += size + big + "\r\n";
    r += "0\r\n\r\n";
    return Answer{r};
  });
  asio::io_context io;
  serve::UpstreamClientOptions options;
  options.chunk_bytes = 8192;
  serve::UpstreamConnections client(io.get_executor(), options);
  const std::string dial = "127.0.0.1:" + std::to_string(upstream.port());
  const Fetched f = fetch(io, client, dial);
  REQUIRE_FALSE(f.error);
  CHECK(f.body() == "first" + big);
  CHECK(f.chunks.size() >= 6);  // never more than chunk_bytes at once
  for (const auto& c : f.chunks) CHECK(c.size() <= 8192);
  CHECK(client.idle_count(dial) == 1);
}

TEST_CASE("upstream client reads a body until the upstream closes", "[upstream_client]") {
  RawUpstream upstream([](const std::string&, int) {
    return Answer{"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end", true};
  });
  asio::io_context io;
  serve::UpstreamConnections client(io.get_executor());
  const std::string dial = "127.0.0.1:" + std::to_string(upstream.port());
  const Fetched f = fetch(io, client, dial);
  REQUIRE_FALSE(f.error);
  CHECK(f.body() == "until the end");
  CHECK_FALSE(f.body_error);
  CHECK(client.idle_count(dial) == 0);
}

TEST_CASE("upstream client: HEAD has no body though Content-Length says so", "[upstream_client]") {
  RawUpstream upstream([](const std::string&, int) {
    return Answer{"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"};
  });
  asio::io_context io;
  serve::UpstreamConnections client(io.get_executor());
  const std::string dial = "127.0.0.1:" + std::to_string(upstream.port());
  serve::UpstreamRequest request;
  request.method = "HEAD";
  const Fetched f = fetch(io, client, dial, request);
  REQUIRE_FALSE(f.error);
  CHECK(header(f.head, "Content-Length") == "1234");
  CHECK(f.chunks.empty());
  CHECK(client.idle_count(dial) == 1);
  // The connection is still in step: a second request on it works.
  const Fetched g = fetch(io, client, dial, request);
  REQUIRE_FALSE(g.error);
  CHECK(upstream.connections() == 1);
}

TEST_CASE("upstream client reuses one keep-alive connection", "[upstream_client]") {
  RawUpstream upstream([](const std::string&, int i) { return Answer{ok_response("r" + std::to_string(i))}; });
  asio::io_context io;
  serve::UpstreamConnections client(io.get_executor());
  const std::string dial = "127.0.0.1:" + std::to_string(upstream.port());
  for (int i = 0; i < 3; ++i) {
    const Fetched f = fetch(io, client, dial);
    REQUIRE_FALSE(f.error);
    CHECK(f.body() == "r" + std::to_string(i));
  }
  CHECK(upstream.requests() == 3);
  CHECK(upstream.connections() == 1);
  CHECK(client.connections_opened() == 1);
}

TEST_CASE("upstream client retries once when the upstream closed the idle connection", "[upstream_client]") {
  // Answers with keep-alive but closes right after: the pooled connection is dead on reuse.
  RawUpstream upstream([](const std::string&, int i) { return Answer{ok_response("r" + std::to_string(i)), true}; });
  asio::io_context io;
  serve::UpstreamConnections client(io.get_executor());
  const std::string dial = "127.0.0.1:" + std::to_string(upstream.port());
  const Fetched a = fetch(io, client, dial);
  REQUIRE_FALSE(a.error);
  CHECK(client.idle_count(dial) == 1);
  std::this_thread::sleep_for(100ms);  // let the close arrive
  serve::UpstreamRequest post;
  post.method = "POST";
  post.body = "data";
  const Fetched b = fetch(io, client, dial, post);
  REQUIRE_FALSE(b.error);
  CHECK(b.body() == "r1");
  CHECK(upstream.connections() == 2);
  CHECK(upstream.requests() == 2);
  CHECK(client.connections_opened() == 2);
}

TEST_CASE("upstream client drops idle connections after idle_timeout", "[upstream_client]") {
  RawUpstream upstream([](const std::string&, int) { return Answer{ok_response("x")}; });
  asio::io_context io;
  serve::UpstreamClientOptions options;
  options.idle_timeout = 50ms;
  serve::UpstreamConnections client(io.get_executor(), options);
  const std::string dial = "127.0.0.1:" + std::to_string(upstream.port());
  REQUIRE_FALSE(fetch(io, client, dial).error);
  CHECK(client.idle_count(dial) == 1);
  std::this_thread::sleep_for(80ms);
  CHECK(client.prune_idle() == 1);
  CHECK(client.idle_count(dial) == 0);
}

TEST_CASE("upstream client reports a refused dial as a dial failure", "[upstream_client]") {
  int port = 0;
  {
    RawUpstream gone([](const std::string&, int) { return Answer{}; });
    port = gone.port();
  }  // closed: nothing listens there now
  asio::io_context io;
  serve::UpstreamConnections client(io.get_executor());
  const Fetched f = fetch(io, client, "127.0.0.1:" + std::to_string(port));
  REQUIRE(f.error);
  CHECK(f.error->failure == serve::UpstreamFailure::Dial);
  CHECK(f.error->reason.find("refused") != std::string::npos);
  const Fetched g = fetch(io, client, "no-port-here:");
  REQUIRE(g.error);
  CHECK(g.error->failure == serve::UpstreamFailure::Dial);
}

TEST_CASE("upstream client times out waiting for the response head", "[upstream_client]") {
  RawUpstream upstream([](const std::string&, int) { return Answer{"", false, true}; });
  asio::io_context io;
  serve::UpstreamClientOptions options;
  options.response_header_timeout = 300ms;
  serve::UpstreamConnections client(io.get_executor(), options);
  const auto start = std::chrono::steady_clock::now();
  const Fetched f = fetch(io, client, "127.0.0.1:" + std::to_string(upstream.port()));
  const auto took = std::chrono::steady_clock::now() - start;
  REQUIRE(f.error);
  CHECK(f.error->failure == serve::UpstreamFailure::HeaderTimeout);
  CHECK(took >= 250ms);
  CHECK(took < 3s);
}

TEST_CASE("upstream client fails a malformed response as 502", "[upstream_client]") {
  RawUpstream upstream([](const std::string&, int) { return Answer{"NOT HTTP AT ALL\r\n\r\n", true}; });
  asio::io_context io;
  serve::UpstreamConnections client(io.get_executor());
  const Fetched f = fetch(io, client, "127.0.0.1:" + std::to_string(upstream.port()));
  REQUIRE(f.error);
  CHECK(f.error->failure == serve::UpstreamFailure::Failed);
}

TEST_CASE("upstream client talks to a Unix socket upstream", "[upstream_client]") {
  const auto path = std::filesystem::temp_directory_path() / ("acmetool-upstream-" + std::to_string(::getpid()) + ".sock");
  {
    RawUpstream upstream([](const std::string& head, int) {
      return Answer{ok_response(head.find("Host: localhost\r\n") != std::string::npos ? "unix ok" : "no host")};
    }, path);
    asio::io_context io;
    serve::UpstreamConnections client(io.get_executor());
    const std::string dial = "unix/" + path.string();
    const Fetched f = fetch(io, client, dial);
    REQUIRE_FALSE(f.error);
    CHECK(f.body() == "unix ok");
    const Fetched g = fetch(io, client, dial);
    REQUIRE_FALSE(g.error);
    CHECK(upstream.connections() == 1);
  }
  std::filesystem::remove(path);
}

TEST_CASE("upstream client gives up a write the upstream does not take after write_timeout", "[upstream_client]") {
  // Listening, never accepting: the kernel completes the handshake and buffers a few MiB, then
  // the client's writes wait.
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  REQUIRE(::listen(listener, 4) == 0);
  const std::string dial = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  serve::UpstreamRequest upload;
  upload.method = "POST";
  upload.body = std::string(64u << 20, 'x');

  asio::io_context io;
  serve::UpstreamClientOptions options;
  options.write_timeout = 300ms;
  options.response_header_timeout = 5s;
  serve::UpstreamConnections client(io.get_executor(), options);
  const auto start = std::chrono::steady_clock::now();
  const Fetched f = fetch(io, client, dial, upload);
  const auto took = std::chrono::steady_clock::now() - start;
  ::close(listener);
  REQUIRE(f.error);
  CHECK(f.error->failure == serve::UpstreamFailure::Failed);  // 502, not response_header_timeout's 504
  CHECK(f.error->reason == "writing request to " + dial + ": write_timeout (300ms) passed");
  CHECK(took >= 250ms);
  CHECK(took < 3s);
}

TEST_CASE("upstream client ends a body that stalls longer than read_timeout with an error", "[upstream_client]") {
  // The head and a first piece of a 100-byte body, then nothing.
  RawUpstream upstream([](const std::string&, int) {
    return Answer{"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst piece", false, false};
  });
  asio::io_context io;
  serve::UpstreamClientOptions options;
  options.read_timeout = 300ms;
  serve::UpstreamConnections client(io.get_executor(), options);
  const std::string dial = "127.0.0.1:" + std::to_string(upstream.port());
  const auto start = std::chrono::steady_clock::now();
  const Fetched f = fetch(io, client, dial);
  const auto took = std::chrono::steady_clock::now() - start;
  REQUIRE_FALSE(f.error);
  CHECK(f.head.status == 200);
  CHECK(f.body() == "first piece");
  REQUIRE(f.body_error);
  CHECK(f.body_error->reason == "reading response body from " + dial + ": read_timeout (300ms) passed");
  CHECK(took >= 250ms);
  CHECK(took < 3s);
  CHECK(client.idle_count(dial) == 0);  // a cut connection is not pooled
}

// The response parser (http1_parse.cpp), through the client: what an upstream may send, in
// pieces of any size, and what it must not.
asio::awaitable<void> fetch_with_trailers(serve::UpstreamConnections& client, std::string dial,
                                          serve::UpstreamResult& result, std::string& body,
                                          serve::HeaderFields& trailers) {
  serve::UpstreamRequest request;  // not a temporary in the co_await: g++ 12 destroys those twice
  result = co_await client.round_trip(std::move(dial), std::move(request));
  if (!result.ok()) co_return;
  while (auto piece = co_await result.body.next_chunk()) body += *piece;
  trailers = result.body.trailers();
}

TEST_CASE("upstream client decodes a response that arrives a byte at a time", "[upstream_client][parser]") {
  RawUpstream upstream([](const std::string&, int) {
    return Answer{"HTTP/1.1 200 Fine\r\nX-Folded: one\r\n  two\r\nTransfer-Encoding: chunked\r\n"
                  "Trailer: X-Sum\r\n\r\n"
                  "3;name=value\r\nabc\r\nA \r\n0123456789\r\n0\r\nX-Sum: 13\r\n\r\n",
                  false, false, true};
  });
  asio::io_context io;
  serve::UpstreamConnections client(io.get_executor());
  const std::string dial = "127.0.0.1:" + std::to_string(upstream.port());
  serve::UpstreamResult result;
  std::string body;
  serve::HeaderFields trailers;
  bool finished = false;
  asio::co_spawn(io, fetch_with_trailers(client, dial, result, body, trailers),
                 [&finished](std::exception_ptr e) {
                   finished = true;
                   if (e) std::rethrow_exception(e);
                 });
  io.run_for(10s);
  REQUIRE(finished);
  REQUIRE(result.ok());
  CHECK(result.head.status == 200);
  CHECK(result.head.reason == "Fine");
  CHECK(header(result.head, "X-Folded") == "one two");  // obs-fold joined with a space
  CHECK(body == "abc0123456789");
  CHECK(trailers == serve::HeaderFields{{"X-Sum", "13"}});
  CHECK(client.idle_count(dial) == 1);  // the trailers read, the connection is in step
}

TEST_CASE("upstream client accepts a repeated Content-Length and HTTP/1.0 keep-alive", "[upstream_client][parser]") {
  RawUpstream upstream([](const std::string&, int i) {
    if (i == 0) return Answer{"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\nhello"};
    if (i == 1) return Answer{"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi"};
    return Answer{"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nbye"};
  });
  asio::io_context io;
  serve::UpstreamConnections client(io.get_executor());
  const std::string dial = "127.0.0.1:" + std::to_string(upstream.port());
  const Fetched first = fetch(io, client, dial);
  REQUIRE_FALSE(first.error);
  CHECK(first.body() == "hello");
  const Fetched second = fetch(io, client, dial);
  REQUIRE_FALSE(second.error);
  CHECK(second.body() == "hi");
  CHECK(second.head.version == 10);
  CHECK(client.idle_count(dial) == 1);  // HTTP/1.0 with keep-alive
  const Fetched third = fetch(io, client, dial);
  REQUIRE_FALSE(third.error);
  CHECK(third.body() == "bye");
  CHECK(client.idle_count(dial) == 0);  // HTTP/1.0 without: closed
  CHECK(upstream.connections() == 1);
}

TEST_CASE("upstream client refuses malformed response heads and bodies", "[upstream_client][parser]") {
  struct Case {
    std::string response;
    std::string reason;  // in the head's error, or the body's when `in_body`
    bool in_body = false;
  };
  const std::vector<Case> cases = {
      {"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
       "both Content-Length and Transfer-Encoding"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc",
       "both Content-Length and Transfer-Encoding"},
      {"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", "bad Content-Length"},
      {"HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\nabcd", "bad Content-Length"},
      {"HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n", "bad Content-Length"},
      {"HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 0\r\n\r\n", "bad field name"},
      {"HTTP/1.1 200 OK\r\nX-Split: a\nSet-Cookie: b\r\nContent-Length: 0\r\n\r\n", "bad field value"},
      {std::string("HTTP/1.1 200 OK\r\nX-Nul: a\0b\r\nContent-Length: 0\r\n\r\n", 50), "bad field value"},
      {"HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n", "bad status line"},
      {"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", "bad status line"},
      {"HTTP/1.1 200 OK\nContent-Length: 0\n\n", "partial message"},  // bare LF: never a whole head
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size", true},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n", "bad chunk", true},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n11111111111111111\r\n", "bad chunk size", true},
      {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "partial message", true},
  };
  for (const Case& c : cases) {
    INFO(c.response);
    RawUpstream upstream([&c](const std::string&, int) { return Answer{c.response, true}; });
    asio::io_context io;
    serve::UpstreamConnections client(io.get_executor());
    const Fetched f = fetch(io, client, "127.0.0.1:" + std::to_string(upstream.port()));
    const std::optional<serve::UpstreamError>& error = c.in_body ? f.body_error : f.error;
    REQUIRE(error);
    CHECK(error->failure == serve::UpstreamFailure::Failed);
    CHECK(error->reason.find(c.reason) != std::string::npos);
  }
}
