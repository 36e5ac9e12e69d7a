// The libcurl HttpClient against the real pebble, against a scripted loopback server of our own
// (to see exactly what goes over the wire), and the acmetool binary's start-up without libcurl.
#include "acmetool/acme/http.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "pebble.h"
#include "process.h"

using acmetool::acme::Error;
using acmetool::acme::HttpClient;
using acmetool::acme::HttpError;
using acmetool::acme::HttpOptions;
using acmetool::acme::HttpRequest;
using acmetool::acme::HttpResponse;
using acmetool::acme::make_http_client;
using namespace acmetool::test;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t kMaxBody = 16 * 1024 * 1024;

// One request as the loopback server parsed it. Field names are lower-cased.
struct ReceivedRequest {
  std::string method;
  std::string target;
  std::multimap<std::string, std::string> fields;
  std::string body;
  int connection = 0;  // 1 for the first accepted connection, 2 for the next...

  std::optional<std::string> field(const std::string& name) const {
    const auto it = fields.find(name);
    return it == fields.end() ? std::nullopt : std::optional(it->second);
  }
};

// How the loopback server answers one request.
struct Reply {
  std::string bytes;  // sent as they are: status line, fields, body
  bool close = true;  // close the connection after sending
  bool hang = false;  // send nothing and hold the connection until the client gives up
};

// "HTTP/1.1 <status>" with `fields`, a Content-Length (unless `announce_length` is false, when the
// body ends at the close) and "Connection: close" unless `keep_alive`.
Reply reply(const std::string& status, const std::vector<std::string>& fields,
            const std::string& body = "", bool announce_length = true, bool keep_alive = false) {
  std::string bytes = "HTTP/1.1 " + status + "\r\n";
  for (const std::string& f : fields) bytes += f + "\r\n";
  if (announce_length) bytes += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  if (!keep_alive) bytes += "Connection: close\r\n";
  return {bytes + "\r\n" + body, !keep_alive};
}

// A single-threaded HTTP/1.1 server on 127.0.0.1:free_port(), one connection at a time, answering
// with `handler`. Every wait polls in 50 ms steps and ends when the destructor sets stop_, so the
// thread always finishes.
class LoopbackServer {
 public:
  using Handler = std::function<Reply(const ReceivedRequest&)>;

  explicit LoopbackServer(Handler handler) : handler_(std::move(handler)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    port_ = free_port();
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    if (listen_fd_ < 0 ||
        ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_fd_, 8) != 0) {
      if (listen_fd_ >= 0) ::close(listen_fd_);
      throw std::runtime_error("loopback server: cannot listen on 127.0.0.1:" +
                               std::to_string(port_));
    }
    thread_ = std::thread([this] { run(); });
  }
  ~LoopbackServer() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
  }
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  std::string url(const std::string& path = "/") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::vector<ReceivedRequest> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  // Waits for `events` on `fd`; false once the server is stopping.
  bool wait_for(int fd, short events) {
    pollfd p{fd, events, 0};
    while (!stop_) {
      if (::poll(&p, 1, 50) > 0) return true;
    }
    return false;
  }

  void run() {
    for (int connection = 1; wait_for(listen_fd_, POLLIN); ++connection) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      serve(fd, connection);
      ::close(fd);
    }
  }

  void serve(int fd, int connection) {
    std::string buffer;
    ReceivedRequest request;
    while (read_request(fd, buffer, request)) {
      request.connection = connection;
      {
        std::lock_guard lock(mutex_);
        requests_.push_back(request);
      }
      const Reply answer = handler_(request);
      if (answer.hang) {
        char byte;
        while (wait_for(fd, POLLIN) && ::recv(fd, &byte, 1, 0) > 0) {
        }
        return;
      }
      if (!send_all(fd, answer.bytes) || answer.close) return;
    }
  }

  bool read_more(int fd, std::string& buffer) {
    char chunk[65536];
    if (!wait_for(fd, POLLIN)) return false;
    const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buffer.append(chunk, static_cast<size_t>(n));
    return true;
  }

  bool read_request(int fd, std::string& buffer, ReceivedRequest& request) {
    std::size_t end;
    while ((end = buffer.find("\r\n\r\n")) == std::string::npos) {
      if (!read_more(fd, buffer)) return false;
    }
    request = {};
    std::istringstream head(buffer.substr(0, end));
    std::string line;
    std::getline(head, line);
    std::istringstream(line) >> request.method >> request.target;
    while (std::getline(head, line)) {
      const auto colon = line.find(':');
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      if (!value.empty() && value.back() == '\r') value.pop_back();
      request.fields.emplace(name, value);
    }
    buffer.erase(0, end + 4);
    const std::size_t length = std::stoul(request.field("content-length").value_or("0"));
    while (buffer.size() < length) {
      if (!read_more(fd, buffer)) return false;
    }
    request.body = buffer.substr(0, length);
    buffer.erase(0, length);
    return true;
  }

  bool send_all(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
      if (!wait_for(fd, POLLOUT)) return false;
      const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno != EAGAIN) return false;  // the client closed: EPIPE or ECONNRESET
      if (n > 0) bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::vector<ReceivedRequest> requests_;
  std::thread thread_;  // last: started once everything it uses exists
};

HttpRequest get(const std::string& url, std::chrono::milliseconds timeout = 10s) {
  HttpRequest request;
  request.url = url;
  request.timeout = timeout;
  return request;
}

// Sends `request` expecting a transport failure; fails the test when a response arrives.
HttpError send_expecting_error(HttpClient& client, const HttpRequest& request) {
  try {
    const HttpResponse response = client.send(request);
    FAIL("expected HttpError, got status " << response.status);
  } catch (const HttpError& e) {
    return e;
  }
  throw std::logic_error("unreachable");
}

// How send() failed: "HttpError: <what>", "Error: <what>", or "response" when it did not.
std::string refusal(HttpClient& client, const HttpRequest& request) {
  try {
    client.send(request);
    return "response";
  } catch (const HttpError& e) {
    return std::string("HttpError: ") + e.what();
  } catch (const Error& e) {
    return std::string("Error: ") + e.what();
  }
}

// Bytes no text-minded code path would pass through unchanged: NULs, CR LF, high bytes.
std::string binary_body(std::size_t size) {
  std::mt19937 rng(42);
  std::string body(size, '\0');
  for (char& c : body) c = static_cast<char>(rng() & 0xff);
  body.replace(0, 6, std::string("\0\r\n\r\n\0", 6));
  return body;
}

// Sets environment variables for one scope, restoring the old values (or their absence) after.
class ScopedEnv {
 public:
  ScopedEnv(std::map<std::string, std::optional<std::string>> values) {
    for (const auto& [name, value] : values) {
      const char* old = std::getenv(name.c_str());
      saved_[name] = old ? std::optional<std::string>(old) : std::nullopt;
      apply(name, value);
    }
  }
  ~ScopedEnv() {
    for (const auto& [name, value] : saved_) apply(name, value);
  }

 private:
  static void apply(const std::string& name, const std::optional<std::string>& value) {
    if (value) {
      ::setenv(name.c_str(), value->c_str(), 1);
    } else {
      ::unsetenv(name.c_str());
    }
  }
  std::map<std::string, std::optional<std::string>> saved_;
};

}  // namespace

TEST_CASE("an HTTP client trusting pebble's listener CA fetches the ACME directory",
          "[acme][http][pebble]") {
  PebbleServer& pebble = PebbleServer::shared();
  const auto client = make_http_client({.ca_file = pebble.listener_ca_file()});

  const HttpResponse response = client->send(get(pebble.directory_url()));

  INFO(response.body);
  REQUIRE(response.status == 200);
  CHECK(response.header("Content-Type") == "application/json; charset=utf-8");
  const auto directory = nlohmann::json::parse(response.body);
  CHECK(directory.at("newNonce").get<std::string>().starts_with("https://127.0.0.1:"));
}

TEST_CASE("a HEAD of pebble's newNonce returns one Replay-Nonce, found whatever the case asked",
          "[acme][http][pebble]") {
  PebbleServer& pebble = PebbleServer::shared();
  const auto client = make_http_client({.ca_file = pebble.listener_ca_file()});
  const auto directory = nlohmann::json::parse(client->send(get(pebble.directory_url())).body);
  HttpRequest head = get(directory.at("newNonce").get<std::string>());
  head.method = "HEAD";

  const HttpResponse first = client->send(head);
  const HttpResponse second = client->send(head);

  CHECK(first.status == 200);
  CHECK(first.body.empty());
  const std::optional<std::string> nonce = first.header("Replay-Nonce");
  REQUIRE(nonce.has_value());
  CHECK(nonce->size() >= 16);
  CHECK(first.headers_named("REPLAY-NONCE") == std::vector<std::string>{*nonce});
  // Fields are collected afresh for every request on a reused client.
  CHECK(second.headers_named("replay-nonce").size() == 1);
  CHECK(second.header("replay-nonce") != nonce);
}

TEST_CASE(
    "without pebble's CA the system store rejects its certificate and the error names the URL",
    "[acme][http][pebble]") {
  PebbleServer& pebble = PebbleServer::shared();
  const auto client = make_http_client();

  const HttpError error = send_expecting_error(*client, get(pebble.directory_url()));

  const std::string message = error.what();
  INFO(message);
  CHECK(message.starts_with("GET " + pebble.directory_url() + ": "));
  CHECK(message.find("certificate") != std::string::npos);
  CHECK(error.url() == pebble.directory_url());
  CHECK_FALSE(error.timed_out());
}

TEST_CASE("a POST arrives byte-exact with its content type and without Expect: 100-continue",
          "[acme][http]") {
  LoopbackServer server([](const ReceivedRequest&) {
    return reply("201 Created", {"Location: /acme/order/1"}, "{\"status\":\"pending\"}");
  });
  const auto client = make_http_client();
  HttpRequest post = get(server.url("/acme/new-order?x=1"));
  post.method = "POST";
  post.headers = {{"content-type", "application/jose+json"}};
  // Over 1 MiB: the size above which curl 7.88 would add "Expect: 100-continue" on its own.
  post.body = binary_body(1536 * 1024);

  const HttpResponse response = client->send(post);

  CHECK(response.status == 201);
  CHECK(response.header("location") == "/acme/order/1");
  CHECK(response.body == "{\"status\":\"pending\"}");
  const std::vector<ReceivedRequest> received = server.requests();
  REQUIRE(received.size() == 1);
  const ReceivedRequest& r = received[0];
  CHECK(r.method == "POST");
  CHECK(r.target == "/acme/new-order?x=1");
  CHECK(r.field("content-type") == "application/jose+json");
  CHECK(r.field("content-length") == std::to_string(post.body.size()));
  CHECK(r.field("user-agent") == "acmetool");
  CHECK(r.field("accept-encoding") == "identity");
  CHECK(r.field("expect") == std::nullopt);
  CHECK(r.fields.count("content-type") == 1);
  CHECK(r.body == post.body);
}

TEST_CASE("GET and HEAD send their method, the configured user agent and no body", "[acme][http]") {
  LoopbackServer server([](const ReceivedRequest& r) {
    // A HEAD answer announces the length of the body a GET would get, and sends none.
    Reply answer = reply("200 OK", {"Content-Length: 5"}, "", false);
    if (r.method == "GET") answer.bytes += "hello";
    return answer;
  });
  const auto client = make_http_client({.user_agent = "acmetool-test/1"});
  HttpRequest request = get(server.url("/a"));
  request.headers = {{"X-Custom", "a  b"}, {"X-Empty", ""}};

  const HttpResponse got = client->send(request);
  request.method = "HEAD";
  const HttpResponse headed = client->send(request);

  CHECK(got.body == "hello");
  CHECK(headed.status == 200);
  CHECK(headed.header("content-length") == "5");
  CHECK(headed.body.empty());
  const std::vector<ReceivedRequest> received = server.requests();
  REQUIRE(received.size() == 2);
  CHECK(received[0].method == "GET");
  CHECK(received[1].method == "HEAD");
  for (const ReceivedRequest& r : received) {
    CHECK(r.target == "/a");
    CHECK(r.field("user-agent") == "acmetool-test/1");
    CHECK(r.field("x-custom") == "a  b");
    CHECK(r.field("x-empty") == "");
    CHECK(r.field("content-length") == std::nullopt);
    CHECK(r.body.empty());
  }
}

TEST_CASE("PATCH, PUT and DELETE send their method and body, and a later GET is a GET again", "[acme][http]") {
  LoopbackServer server([](const ReceivedRequest&) { return reply("200 OK", {}); });
  const auto client = make_http_client();
  HttpRequest patch = get(server.url("/zones/example"));
  patch.method = "PATCH";
  patch.body = R"({"rrsets":[]})";
  HttpRequest put = patch;
  put.method = "PUT";
  HttpRequest del = get(server.url("/records/1"));
  del.method = "DELETE";
  for (const HttpRequest& request : {patch, put, del, get(server.url("/after"))}) {
    CHECK(client->send(request).status == 200);
  }
  const std::vector<ReceivedRequest> received = server.requests();
  REQUIRE(received.size() == 4);
  CHECK(received[0].method == "PATCH");
  CHECK(received[0].body == R"({"rrsets":[]})");
  CHECK(received[1].method == "PUT");
  CHECK(received[1].body == R"({"rrsets":[]})");
  CHECK(received[2].method == "DELETE");
  CHECK(received[2].body.empty());
  CHECK(received[3].method == "GET");  // the reused handle forgot the custom method
  CHECK(received[3].target == "/after");
}

TEST_CASE("several Link fields come back in order, with lower-case names and trimmed values",
          "[acme][http]") {
  LoopbackServer server([](const ReceivedRequest&) {
    return reply("200 OK", {"Link: <https://ca/a>;rel=\"alternate\"", "X-Padded: \t spaced out \t",
                            "LINK: <https://ca/b>;rel=\"alternate\"",
                            "link: <https://ca/dir>;rel=\"index\""});
  });
  const auto client = make_http_client();

  const HttpResponse response = client->send(get(server.url()));

  CHECK(response.headers_named("Link") ==
        std::vector<std::string>{"<https://ca/a>;rel=\"alternate\"",
                                 "<https://ca/b>;rel=\"alternate\"",
                                 "<https://ca/dir>;rel=\"index\""});
  CHECK(response.header("link") == "<https://ca/a>;rel=\"alternate\"");
  CHECK(response.header("x-padded") == "spaced out");
  CHECK(response.header("x-absent") == std::nullopt);
  CHECK(response.headers_named("x-absent").empty());
  const auto padded = std::find_if(response.headers.begin(), response.headers.end(),
                                   [](const auto& h) { return h.value == "spaced out"; });
  REQUIRE(padded != response.headers.end());
  CHECK(padded->name == "x-padded");
}

TEST_CASE("a redirect comes back as the redirect and is not followed", "[acme][http]") {
  LoopbackServer server([](const ReceivedRequest& r) {
    if (r.target == "/elsewhere") return reply("200 OK", {}, "followed");
    return reply("301 Moved Permanently", {"Location: /elsewhere"}, "moved");
  });
  const auto client = make_http_client();

  const HttpResponse response = client->send(get(server.url("/start")));

  CHECK(response.status == 301);
  CHECK(response.header("location") == "/elsewhere");
  CHECK(response.body == "moved");
  CHECK(server.requests().size() == 1);
}

TEST_CASE("after a 100 Continue only the final response's fields are kept", "[acme][http]") {
  LoopbackServer server([](const ReceivedRequest&) {
    Reply final_reply = reply("201 Created", {"X-Final: yes"}, "ok");
    final_reply.bytes = "HTTP/1.1 100 Continue\r\nX-Interim: yes\r\n\r\n" + final_reply.bytes;
    return final_reply;
  });
  const auto client = make_http_client();
  HttpRequest post = get(server.url());
  post.method = "POST";
  post.body = "{}";

  const HttpResponse response = client->send(post);

  CHECK(response.status == 201);
  CHECK(response.header("x-final") == "yes");
  CHECK(response.header("x-interim") == std::nullopt);
  CHECK(response.body == "ok");
}

TEST_CASE("connections are reused between requests on one client", "[acme][http]") {
  LoopbackServer server(
      [](const ReceivedRequest&) { return reply("200 OK", {}, "kept", true, true); });
  const auto client = make_http_client();

  CHECK(client->send(get(server.url("/1"))).body == "kept");
  CHECK(client->send(get(server.url("/2"))).body == "kept");

  const std::vector<ReceivedRequest> received = server.requests();
  REQUIRE(received.size() == 2);
  CHECK(received[0].connection == 1);
  CHECK(received[1].connection == 1);
}

TEST_CASE("a server that never answers makes the request time out", "[acme][http]") {
  LoopbackServer server([](const ReceivedRequest&) { return Reply{.hang = true}; });
  const auto client = make_http_client();

  const HttpError error = send_expecting_error(*client, get(server.url("/slow"), 300ms));

  INFO(error.what());
  CHECK(error.timed_out());
  CHECK(std::string(error.what()).starts_with("GET " + server.url("/slow") + ": "));
  CHECK(server.requests().size() == 1);
}

TEST_CASE("a body of 16 MiB arrives and one byte more fails", "[acme][http]") {
  const bool announce_length = GENERATE(true, false);
  CAPTURE(announce_length);
  LoopbackServer server([announce_length](const ReceivedRequest& r) {
    const std::size_t size = r.target == "/limit" ? kMaxBody : kMaxBody + 1;
    return reply("200 OK", {}, std::string(size, 'x'), announce_length);
  });
  const auto client = make_http_client();

  CHECK(client->send(get(server.url("/limit"))).body.size() == kMaxBody);
  const HttpError error = send_expecting_error(*client, get(server.url("/over")));

  const std::string message = error.what();
  CHECK(message == "GET " + server.url("/over") + ": response body larger than 16 MiB");
  CHECK_FALSE(error.timed_out());
}

TEST_CASE("a closed port fails with an HttpError naming the URL", "[acme][http]") {
  const std::string url = "http://127.0.0.1:" + std::to_string(free_port()) + "/";
  const auto client = make_http_client({.connect_timeout = 5s});

  const HttpError error = send_expecting_error(*client, get(url));

  INFO(error.what());
  CHECK(std::string(error.what()).starts_with("GET " + url + ": "));
  CHECK(error.url() == url);
  CHECK_FALSE(error.timed_out());
}

TEST_CASE("proxies from the environment are never used", "[acme][http]") {
  LoopbackServer server([](const ReceivedRequest&) { return reply("200 OK", {}, "direct"); });
  const std::string dead_proxy = "http://127.0.0.1:" + std::to_string(free_port());
  const ScopedEnv env({{"http_proxy", dead_proxy},
                       {"HTTPS_PROXY", dead_proxy},
                       {"ALL_PROXY", dead_proxy},
                       {"all_proxy", dead_proxy},
                       {"no_proxy", std::nullopt},
                       {"NO_PROXY", std::nullopt}});
  const auto client = make_http_client();

  const HttpResponse response = client->send(get(server.url()));

  CHECK(response.body == "direct");
  REQUIRE(server.requests().size() == 1);
  CHECK(server.requests()[0].target == "/");  // a proxy would have been sent the absolute URL
}

TEST_CASE("malformed requests are refused with Error before anything is sent", "[acme][http]") {
  LoopbackServer server([](const ReceivedRequest&) { return reply("200 OK", {}); });
  const auto client = make_http_client();
  HttpRequest put = get(server.url());
  put.method = "TRACE";
  HttpRequest injected = get(server.url());
  injected.headers = {{"x-a", "1\r\nx-injected: 2"}};
  HttpRequest bad_name = get(server.url());
  bad_name.headers = {{"x:a", "1"}};

  for (const HttpRequest& request : {put, injected, bad_name}) {
    CHECK(refusal(*client, request)
              .starts_with("Error: " + request.method + " " + request.url + ": "));
  }
  CHECK_THROWS_AS(client->send(put), Error);
  CHECK(server.requests().empty());
}

TEST_CASE("the acmetool binary does not load libcurl to print its version",
          "[acme][http][startup]") {
  // LD_DEBUG=files makes the dynamic loader list every library it loads on stderr.
  const CommandResult version =
      run_command({ACMETOOL_BINARY, "version"}, "", {{"LD_DEBUG", "files"}});
  const CommandResult curl = run_command({"curl", "--version"}, "", {{"LD_DEBUG", "files"}});

  INFO(version.err);
  REQUIRE(version.exit_code == 0);
  CHECK(version.out.starts_with("acmetool "));
  CHECK(version.err.find("libc.so.6") != std::string::npos);  // the listing is there
  CHECK(version.err.find("libcurl") == std::string::npos);
  // The same check spots libcurl in a program that links it.
  REQUIRE(curl.exit_code == 0);
  CHECK(curl.err.find("libcurl.so.4") != std::string::npos);
}
