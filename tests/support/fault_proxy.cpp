#include "fault_proxy.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <thread>

#include "acmetool/acme/jws.h"
#include "acmetool/pki/ossl.h"
#include "acmetool/pki/unique_fd.h"
#include "process.h"

namespace fs = std::filesystem;

namespace acmetool::test {
namespace {

using pki::CFree;
using pki::UniqueFd;
using SslCtxPtr = std::unique_ptr<SSL_CTX, CFree<&SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, CFree<&SSL_free>>;
using CurlPtr = std::unique_ptr<CURL, CFree<&curl_easy_cleanup>>;
using CurlSlistPtr = std::unique_ptr<curl_slist, CFree<&curl_slist_free_all>>;

constexpr std::size_t kMaxHeadBytes = 64 * 1024;
constexpr std::size_t kMaxBodyBytes = 1024 * 1024;
constexpr std::size_t kMaxConnections = 16;  // more at once are closed unanswered
constexpr int kSocketTimeoutSeconds = 10;
constexpr long kUpstreamTimeoutMs = 10000;
constexpr char kNoncePath[] = "/nonce-plz";
constexpr char kRenewalInfoPath[] = "/renewal-info/";

struct Header {
  std::string name;  // lower-case
  std::string value;
};

struct Message {
  std::string method;  // requests only
  std::string target;  // requests only
  long status = 0;     // responses only
  std::vector<Header> headers;
  std::string body;
};

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return text;
}

// "Name: value" as {"name", "value"}; nullopt for a line without a colon.
std::optional<Header> parse_field(const std::string& line) {
  const auto colon = line.find(':');
  if (colon == std::string::npos) return std::nullopt;
  const auto begin = line.find_first_not_of(" \t", colon + 1);
  const auto end = line.find_last_not_of(" \t\r\n");
  return Header{lower(line.substr(0, colon)), begin == std::string::npos || end < begin
                                                  ? ""
                                                  : line.substr(begin, end + 1 - begin)};
}

void replace_all(std::string& text, const std::string& from, const std::string& to) {
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
}

const std::string* find_header(const std::vector<Header>& headers, std::string_view name) {
  for (const Header& h : headers) {
    if (h.name == name) return &h.value;
  }
  return nullptr;
}

// Appends what the peer sends next; false when it closed, failed or timed out.
bool read_some(SSL* ssl, std::string& data) {
  char buffer[16384];
  const int n = SSL_read(ssl, buffer, sizeof buffer);
  if (n <= 0) return false;
  data.append(buffer, static_cast<std::size_t>(n));
  return true;
}

// One HTTP/1.1 request with a Content-Length body (libcurl sends no chunked POSTs); nullopt when
// the peer closed early or sent something we do not parse.
std::optional<Message> read_request(SSL* ssl) {
  std::string data;
  std::size_t head_end;
  while ((head_end = data.find("\r\n\r\n")) == std::string::npos) {
    if (data.size() > kMaxHeadBytes || !read_some(ssl, data)) return std::nullopt;
  }
  Message request;
  std::size_t line_start = 0;
  for (std::size_t line_end; (line_end = data.find("\r\n", line_start)) <= head_end;
       line_start = line_end + 2) {
    const std::string line = data.substr(line_start, line_end - line_start);
    if (line_start == 0) {
      const auto space1 = line.find(' '), space2 = line.rfind(' ');
      if (space1 == std::string::npos || space2 == space1) return std::nullopt;
      request.method = line.substr(0, space1);
      request.target = line.substr(space1 + 1, space2 - space1 - 1);
    } else if (auto field = parse_field(line)) {
      request.headers.push_back(std::move(*field));
    }
  }
  const std::string* length = find_header(request.headers, "content-length");
  std::size_t body_size = 0;
  const char* end = length ? length->data() + length->size() : nullptr;
  if (length && std::from_chars(length->data(), end, body_size).ec != std::errc()) {
    return std::nullopt;
  }
  if (body_size > kMaxBodyBytes) return std::nullopt;
  request.body = data.substr(head_end + 4);
  while (request.body.size() < body_size) {
    if (!read_some(ssl, request.body)) return std::nullopt;
  }
  return request;
}

bool write_all(SSL* ssl, const std::string& data) {
  std::size_t written = 0;
  return SSL_write_ex(ssl, data.data(), data.size(), &written) == 1 && written == data.size();
}

// The response as sent: framing fields (length, connection) are ours, every request closes.
std::string serialize(const Message& response, bool head_request) {
  // The reason phrase may be empty (RFC 9112 §4) and clients ignore it.
  std::string text = "HTTP/1.1 " + std::to_string(response.status) + " \r\n";
  for (const Header& h : response.headers) {
    if (h.name == "content-length" || h.name == "transfer-encoding" || h.name == "connection" ||
        h.name == "keep-alive") {
      continue;
    }
    text += h.name + ": " + h.value + "\r\n";
  }
  text +=
      "content-length: " + std::to_string(response.body.size()) + "\r\nconnection: close\r\n\r\n";
  if (!head_request) text += response.body;
  return text;
}

size_t on_body(char* data, size_t size, size_t count, void* user) {
  static_cast<Message*>(user)->body.append(data, size * count);
  return size * count;
}

size_t on_header_line(char* data, size_t size, size_t count, void* user) {
  auto& response = *static_cast<Message*>(user);
  const std::string line(data, size * count);
  // A status line starts a new (possibly final) response: drop interim responses' fields.
  if (line.starts_with("HTTP/")) {
    response.headers.clear();
  } else if (auto field = parse_field(line)) {
    response.headers.push_back(std::move(*field));
  }
  return size * count;
}

void init_curl_once() {
  static const CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (rc != CURLE_OK) {
    throw std::runtime_error(std::string("initializing libcurl: ") + curl_easy_strerror(rc));
  }
}

// `openssl req -x509` with a new P-256 key and 2 days of validity, plus `args`. Throws
// std::runtime_error starting with `what` when it fails.
void openssl_req(const std::vector<std::string>& args, const std::string& what) {
  std::vector<std::string> argv = {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                                   "ec_paramgen_curve:P-256", "-nodes", "-days", "2"};
  argv.insert(argv.end(), args.begin(), args.end());
  const CommandResult r = run_command(argv, "", {}, std::chrono::seconds(30));
  if (r.exit_code != 0) {
    throw std::runtime_error(what + ": openssl exited " + std::to_string(r.exit_code) + ": " +
                             r.err);
  }
}

// The kind of a request for `path` (the request target), by pebble 2.4's URL layout.
RequestKind request_kind(std::string_view path) {
  static const std::pair<std::string_view, RequestKind> kPrefixes[] = {
      {kNoncePath, RequestKind::NewNonce},   {"/sign-me-up", RequestKind::NewAccount},
      {"/order-plz", RequestKind::NewOrder}, {"/authZ/", RequestKind::Authz},
      {"/chalZ/", RequestKind::Challenge},   {"/finalize-order/", RequestKind::Finalize},
      {"/my-order/", RequestKind::Order},    {"/certZ/", RequestKind::Cert},
      {kRenewalInfoPath, RequestKind::RenewalInfo},
  };
  for (const auto& [prefix, kind] : kPrefixes) {
    if (path.starts_with(prefix)) return kind;
  }
  return RequestKind::Other;
}

}  // namespace

struct FaultProxy::Impl {
  struct Connection {
    UniqueFd fd;  // closed only after the thread is joined, so its number is never reused under it
    std::thread thread;
    std::atomic<bool> done{false};
  };

  TempDir dir{"acmetool-fault-proxy"};
  fs::path ca_file;
  std::string upstream_origin;  // "https://127.0.0.1:P" of pebble; guarded by mu
  fs::path upstream_ca_file;    // guarded by mu
  std::string host;  // "127.0.0.1:P" of the proxy
  SslCtxPtr ssl_ctx;
  UniqueFd listener, wake_read, wake_write;
  std::thread acceptor;

  mutable std::mutex mu;  // guards the script and the records
  std::map<RequestKind, std::deque<Fault>> faults;
  struct Received {
    RequestKind kind;
    std::string method;
    std::string body;
    std::chrono::steady_clock::time_point time;
  };
  std::vector<Received> received;
  std::vector<std::string> log;
  std::function<CannedAnswer(const std::string&)> renewal_info;
  std::function<void(nlohmann::json&)> directory_patch;
  struct Hold {
    std::string status, retry_after;
  };
  std::map<RequestKind, std::deque<Hold>> holds;

  std::mutex connections_mu;
  std::list<Connection> connections;

  void make_certificates();
  void listen();
  void accept_loop();
  void serve(int fd);
  std::optional<Fault> record_request(const Message& request);
  Message forward(const Message& request) const;
  Message answer(const Fault& fault) const;
  Message serve_itself(const Message& request);
  void tamper(RequestKind kind, const std::string& target, Message& response);
  void reap_finished();
};

void FaultProxy::Impl::make_certificates() {
  const std::string ca_key = dir.path() / "ca.key", key = dir.path() / "proxy.key";
  const std::string cert = dir.path() / "proxy.pem";
  ca_file = dir.path() / "ca.pem";
  openssl_req({"-keyout", ca_key, "-out", ca_file, "-subj", "/CN=acmetool fault proxy test CA",
               "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
               "keyUsage=critical,keyCertSign"},
              "making the fault proxy's CA");
  openssl_req({"-CA", ca_file, "-CAkey", ca_key, "-keyout", key, "-out", cert, "-subj",
               "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-addext",
               "basicConstraints=critical,CA:FALSE", "-addext", "extendedKeyUsage=serverAuth"},
              "making the fault proxy's certificate");

  ssl_ctx.reset(SSL_CTX_new(TLS_server_method()));
  if (!ssl_ctx || SSL_CTX_set_min_proto_version(ssl_ctx.get(), TLS1_2_VERSION) != 1 ||
      SSL_CTX_use_certificate_chain_file(ssl_ctx.get(), cert.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ssl_ctx.get(), key.c_str(), SSL_FILETYPE_PEM) != 1) {
    throw std::runtime_error("setting up the fault proxy's TLS context failed");
  }
}

void FaultProxy::Impl::listen() {
  listener = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);  // port 0: the kernel picks a free one, no race
  socklen_t size = sizeof address;
  int pipe_fds[2];
  if (!listener ||
      ::bind(listener.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(listener.get(), 16) != 0 ||
      ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &size) != 0 ||
      ::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    throw std::runtime_error(std::string("fault proxy: listening on 127.0.0.1: ") +
                             std::strerror(errno));
  }
  wake_read = UniqueFd(pipe_fds[0]);
  wake_write = UniqueFd(pipe_fds[1]);
  host = "127.0.0.1:" + std::to_string(ntohs(address.sin_port));
}

void FaultProxy::Impl::accept_loop() {
  // OpenSSL writes with write(): blocked here (and inherited by connection threads), SIGPIPE from
  // a client that hung up stays pending and the write fails with EPIPE instead of killing the test.
  sigset_t pipe_signal;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);
  for (;;) {
    pollfd fds[2] = {{listener.get(), POLLIN, 0}, {wake_read.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if (fds[1].revents != 0) return;
    if ((fds[0].revents & POLLIN) == 0) continue;
    UniqueFd fd(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!fd) continue;
    const timeval timeout{kSocketTimeoutSeconds, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    std::lock_guard lock(connections_mu);
    reap_finished();
    if (connections.size() >= kMaxConnections) continue;
    Connection& connection = connections.emplace_back();
    connection.fd = std::move(fd);
    connection.thread = std::thread([this, &connection] {
      serve(connection.fd.get());
      ::shutdown(connection.fd.get(), SHUT_RDWR);  // the peer sees the close now, not at reaping
      connection.done = true;
    });
  }
}

void FaultProxy::Impl::reap_finished() {
  for (auto it = connections.begin(); it != connections.end();) {
    if (!it->done) {
      ++it;
      continue;
    }
    it->thread.join();
    it = connections.erase(it);
  }
}

std::optional<Fault> FaultProxy::Impl::record_request(const Message& request) {
  const RequestKind kind = request_kind(request.target);
  std::lock_guard lock(mu);
  received.push_back({kind, request.method, request.body, std::chrono::steady_clock::now()});
  auto it = faults.find(kind);
  if (it == faults.end() || it->second.empty()) return std::nullopt;
  Fault fault = std::move(it->second.front());
  it->second.pop_front();
  return fault;
}

void FaultProxy::Impl::serve(int fd) {
  SslPtr ssl(SSL_new(ssl_ctx.get()));
  if (!ssl || SSL_set_fd(ssl.get(), fd) != 1 || SSL_accept(ssl.get()) != 1) return;
  const std::optional<Message> request = read_request(ssl.get());
  if (!request) return;
  const std::optional<Fault> fault = record_request(*request);
  std::string line = request->method + " " + request->target + " -> ";
  Message response;
  if (fault && fault->drop_connection) {
    line += "dropped";
  } else {
    try {
      if (fault) {
        response = answer(*fault);
      } else if (request_kind(request->target) == RequestKind::RenewalInfo) {
        response = serve_itself(*request);
      } else {
        response = forward(*request);
        tamper(request_kind(request->target), request->target, response);
      }
      line += std::to_string(response.status) + (fault ? " (injected)" : "");
    } catch (const std::exception& e) {
      line += std::string("upstream failed: ") + e.what();
    }
  }
  // Logged before answering, so a client that got its answer finds its request in log().
  {
    std::lock_guard lock(mu);
    log.push_back(line);
  }
  if (response.status == 0) return;  // dropped or failed: close without a byte or close_notify
  if (write_all(ssl.get(), serialize(response, request->method == "HEAD"))) SSL_shutdown(ssl.get());
}

// Sends `request` to pebble with the proxy's Host (pebble checks a JWS's "url" against it) and
// rewrites pebble's origin to the proxy's in what comes back.
Message FaultProxy::Impl::forward(const Message& request) const {
  init_curl_once();
  CurlPtr curl(curl_easy_init());
  if (!curl) throw std::runtime_error("curl_easy_init failed");
  CURL* h = curl.get();
  std::string upstream_origin, upstream_ca;
  {
    std::lock_guard lock(mu);
    upstream_origin = this->upstream_origin;
    upstream_ca = upstream_ca_file.string();
  }
  const std::string url = upstream_origin + request.target;
  CurlSlistPtr fields(curl_slist_append(nullptr, ("Host: " + host).c_str()));
  fields.reset(curl_slist_append(fields.release(), "Expect:"));
  for (const Header& field : request.headers) {
    if (field.name == "content-type" || field.name == "accept" || field.name == "user-agent") {
      fields.reset(curl_slist_append(fields.release(), (field.name + ": " + field.value).c_str()));
    }
  }
  Message response;
  char error[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROXY, "");
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, kUpstreamTimeoutMs);
  curl_easy_setopt(h, CURLOPT_CAINFO, upstream_ca.c_str());
  curl_easy_setopt(h, CURLOPT_CAPATH, nullptr);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, fields.get());
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &on_header_line);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &response);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &response);
  if (request.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (request.method == "POST") {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  } else if (request.method != "GET") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  const CURLcode rc = curl_easy_perform(h);
  if (rc != CURLE_OK) throw std::runtime_error(error[0] != '\0' ? error : curl_easy_strerror(rc));
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response.status);

  const std::string origin = "https://" + host;
  replace_all(response.body, upstream_origin, origin);
  for (Header& field : response.headers) {
    if (field.name == "location" || field.name == "link") {
      replace_all(field.value, upstream_origin, origin);
    }
  }
  return response;
}

// A renewalInfo answer, made up by the test's function.
Message FaultProxy::Impl::serve_itself(const Message& request) {
  std::function<CannedAnswer(const std::string&)> answer_for;
  {
    std::lock_guard lock(mu);
    answer_for = renewal_info;
  }
  Message response;
  if (!answer_for || request.method != "GET") {
    response.status = 404;
    response.headers.push_back({"content-type", "text/plain"});
    response.body = "no renewal information here\n";
    return response;
  }
  const CannedAnswer canned = answer_for(request.target.substr(std::string_view(kRenewalInfoPath).size()));
  response.status = canned.status;
  response.headers.push_back({"content-type", "application/json"});
  if (!canned.retry_after_header.empty()) response.headers.push_back({"retry-after", canned.retry_after_header});
  response.body = canned.body;
  return response;
}

// What the test asked to change in a forwarded answer: the directory's fields, a held status.
void FaultProxy::Impl::tamper(RequestKind kind, const std::string& target, Message& response) {
  std::optional<Hold> held;
  std::function<void(nlohmann::json&)> patch;
  bool offers_ari = false;
  {
    std::lock_guard lock(mu);
    if (auto it = holds.find(kind); it != holds.end() && !it->second.empty() && response.status < 300) {
      held = it->second.front();
      it->second.pop_front();
    }
    patch = directory_patch;
    offers_ari = static_cast<bool>(renewal_info);
  }
  const bool directory = target == "/dir";
  if (!held && !(directory && (patch || offers_ari))) return;
  nlohmann::json doc = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return;
  if (directory && offers_ari) doc["renewalInfo"] = "https://" + host + "/renewal-info";
  if (directory && patch) patch(doc);
  if (held && doc.contains("status")) {
    doc["status"] = held->status;
    if (!held->retry_after.empty()) response.headers.push_back({"retry-after", held->retry_after});
  }
  response.body = doc.dump();
}

Message FaultProxy::Impl::answer(const Fault& fault) const {
  Message response;
  response.status = fault.status;
  if (!fault.retry_after_header.empty()) {
    response.headers.push_back({"retry-after", fault.retry_after_header});
  }
  if (fault.problem_type.empty()) {
    response.headers.push_back({"content-type", "text/plain"});
    response.body = std::to_string(fault.status) + " injected by the test fault proxy\n";
    return response;
  }
  // A CA's error carries a usable nonce (RFC 8555 §6.5): take a real one from pebble.
  const Message nonce = forward({"HEAD", kNoncePath, 0, {}, {}});
  const std::string* value = find_header(nonce.headers, "replay-nonce");
  if (value == nullptr) throw std::runtime_error("pebble sent no Replay-Nonce");
  response.headers.push_back({"replay-nonce", *value});
  response.headers.push_back({"content-type", "application/problem+json"});
  const nlohmann::json problem = {{"type", fault.problem_type},
                                  {"detail", "injected by the test fault proxy"},
                                  {"status", fault.status}};
  response.body = problem.dump();
  return response;
}

namespace {

// "https://127.0.0.1:P" of "https://127.0.0.1:P/dir".
std::string origin_of(const std::string& directory_url) {
  const auto path = directory_url.find('/', std::string_view("https://").size());
  if (!directory_url.starts_with("https://") || path == std::string::npos) {
    throw std::runtime_error("fault proxy: not an https URL with a path: " + directory_url);
  }
  return directory_url.substr(0, path);
}

}  // namespace

FaultProxy::FaultProxy(const std::string& upstream_directory_url, fs::path upstream_ca_file)
    : impl_(std::make_unique<Impl>()) {
  impl_->upstream_origin = origin_of(upstream_directory_url);
  impl_->upstream_ca_file = std::move(upstream_ca_file);
  impl_->make_certificates();
  impl_->listen();
  impl_->acceptor = std::thread([impl = impl_.get()] { impl->accept_loop(); });
}

FaultProxy::~FaultProxy() {
  const char stop = 1;
  [[maybe_unused]] const ssize_t written = ::write(impl_->wake_write.get(), &stop, 1);
  impl_->acceptor.join();
  std::lock_guard lock(impl_->connections_mu);
  // Unblocks reads and writes; a request upstream finishes within kUpstreamTimeoutMs.
  for (auto& connection : impl_->connections) ::shutdown(connection.fd.get(), SHUT_RDWR);
  for (auto& connection : impl_->connections) connection.thread.join();
}

std::string FaultProxy::origin() const { return "https://" + impl_->host; }

std::string FaultProxy::directory_url() const { return origin() + "/dir"; }

const fs::path& FaultProxy::ca_file() const { return impl_->ca_file; }

void FaultProxy::fail(RequestKind kind, int count, const Fault& fault) {
  std::lock_guard lock(impl_->mu);
  for (int i = 0; i < count; ++i) impl_->faults[kind].push_back(fault);
}

int FaultProxy::pending_faults(RequestKind kind) const {
  std::lock_guard lock(impl_->mu);
  const auto it = impl_->faults.find(kind);
  return it == impl_->faults.end() ? 0 : static_cast<int>(it->second.size());
}

int FaultProxy::count(RequestKind kind, std::string_view method) const {
  return static_cast<int>(times(kind, method).size());
}

void FaultProxy::set_upstream(const std::string& upstream_directory_url, fs::path upstream_ca_file) {
  std::string origin = origin_of(upstream_directory_url);
  std::lock_guard lock(impl_->mu);
  impl_->upstream_origin = std::move(origin);
  impl_->upstream_ca_file = std::move(upstream_ca_file);
}

void FaultProxy::offer_renewal_info(std::function<CannedAnswer(const std::string&)> answer) {
  std::lock_guard lock(impl_->mu);
  impl_->renewal_info = std::move(answer);
}

void FaultProxy::patch_directory(std::function<void(nlohmann::json&)> patch) {
  std::lock_guard lock(impl_->mu);
  impl_->directory_patch = std::move(patch);
}

void FaultProxy::hold(RequestKind kind, int count, std::string status, std::string retry_after_header) {
  std::lock_guard lock(impl_->mu);
  for (int i = 0; i < count; ++i) impl_->holds[kind].push_back({status, retry_after_header});
}

std::vector<std::chrono::steady_clock::time_point> FaultProxy::times(RequestKind kind, std::string_view method) const {
  std::lock_guard lock(impl_->mu);
  std::vector<std::chrono::steady_clock::time_point> out;
  for (const auto& r : impl_->received) {
    if (r.kind == kind && (method.empty() || r.method == method)) out.push_back(r.time);
  }
  return out;
}

std::vector<std::string> FaultProxy::bodies(RequestKind kind) const {
  std::lock_guard lock(impl_->mu);
  std::vector<std::string> out;
  for (const auto& r : impl_->received) {
    if (r.kind == kind) out.push_back(r.body);
  }
  return out;
}

std::vector<nlohmann::json> FaultProxy::payloads(RequestKind kind) const {
  std::vector<nlohmann::json> out;
  for (const std::string& body : bodies(kind)) {
    const nlohmann::json jws = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    std::string payload = jws.is_object() ? jws.value("payload", "") : "";
    out.push_back(payload.empty() ? nlohmann::json::object()
                                  : nlohmann::json::parse(acmetool::acme::base64url_decode(payload).value_or(""),
                                                          nullptr, false));
  }
  return out;
}

int FaultProxy::total() const {
  std::lock_guard lock(impl_->mu);
  return static_cast<int>(impl_->received.size());
}

std::vector<std::string> FaultProxy::log() const {
  std::lock_guard lock(impl_->mu);
  return impl_->log;
}

}  // namespace acmetool::test
