// bench/storm_client.cpp: the load client and ask endpoint of bench/storm.sh (issue 9). Built by
// the script with g++ into a temp dir, not by CMake. Everything talks to 127.0.0.1 only.
//
//   storm_client ask PORT                      the permission endpoint: GET /check?domain=NAME
//                                              answers 200 for *.allowed.test, 403 otherwise;
//                                              GET /stats prints the calls per verdict so far
//   storm_client calm PORT NAME SECONDS        a handshake to NAME (a cached name) every 20 ms
//   storm_client storm PORT NAME RATE SECONDS  RATE*SECONDS handshakes with distinct unknown
//                                              names <random>.denied.test at RATE/s (open loop),
//                                              while a second thread keeps measuring NAME
//   storm_client first PORT NAME               the first handshake for NAME, then a second one,
//                                              then 30 more (later_p50_ms, later_p99_ms)
//
// Client modes print one `metric value` line per figure on stdout (milliseconds end in _ms).
// Every handshake is a full one: no session cache, no tickets.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::duration<double, std::milli>;

template <auto Free>
struct CFree {
  template <class T>
  void operator()(T* p) const noexcept {
    Free(p);
  }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, CFree<&SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, CFree<&SSL_free>>;
using X509Ptr = std::unique_ptr<X509, CFree<&X509_free>>;

// An owned file descriptor.
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  ~UniqueFd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "storm_client: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

sockaddr_in loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// ---- ask endpoint ----

// Answers one request on `fd`: 200 or 403 for /check, the counters for /stats, 404 otherwise.
void answer_ask(int fd, std::atomic<long>& allowed, std::atomic<long>& denied) {
  std::string req;
  char buf[2048];
  while (req.find("\r\n\r\n") == std::string::npos && req.size() < 16384) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) return;
    req.append(buf, static_cast<size_t>(n));
  }
  const std::string target = req.substr(0, req.find("\r\n"));  // "GET /check?domain=x HTTP/1.1"
  std::string status = "404 Not Found", body;
  if (target.rfind("GET /stats ", 0) == 0) {
    status = "200 OK";
    body = "allowed " + std::to_string(allowed.load()) + "\ndenied " +
           std::to_string(denied.load()) + "\n";
  } else if (auto q = target.find("domain=");
             target.rfind("GET /check?", 0) == 0 && q != std::string::npos) {
    std::string domain = target.substr(q + 7);
    domain = domain.substr(0, domain.find_first_of("& "));
    const std::string_view suffix = ".allowed.test";
    const bool ok = domain.size() > suffix.size() && domain.ends_with(suffix);
    (ok ? allowed : denied)++;
    status = ok ? "200 OK" : "403 Forbidden";
  }
  const std::string resp = "HTTP/1.1 " + status +
                           "\r\nContent-Length: " + std::to_string(body.size()) +
                           "\r\nConnection: close\r\n\r\n" + body;
  (void)!write(fd, resp.data(), resp.size());
}

// Serves the ask endpoint on 127.0.0.1:port until killed, one connection at a time (each answer
// takes microseconds; the servers under test make at most a few calls at once).
int run_ask(int port) {
  UniqueFd lfd(socket(AF_INET, SOCK_STREAM, 0));
  int one = 1;
  setsockopt(lfd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a = loopback(port);
  if (bind(lfd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("bind ask port");
  if (listen(lfd.get(), 1024) != 0) die("listen");
  std::atomic<long> allowed{0}, denied{0};
  for (;;) {
    UniqueFd c(accept(lfd.get(), nullptr, nullptr));
    if (c.get() < 0) continue;
    timeval tv{2, 0};  // a silent client must not stall the endpoint
    setsockopt(c.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    answer_ask(c.get(), allowed, denied);
  }
}

// ---- TLS client ----

SslCtxPtr make_client_ctx() {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) die("SSL_CTX_new");
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);  // we check the name, not the chain
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
  return ctx;
}

// One blocking full handshake to `name`; true when it completed with a certificate for `name`.
// `ms` is the time from connect() to the end of the handshake (or its failure).
bool handshake(SSL_CTX* ctx, int port, const std::string& name, int timeout_s, double& ms) {
  const auto t0 = Clock::now();
  UniqueFd fd(socket(AF_INET, SOCK_STREAM, 0));
  timeval tv{timeout_s, 0};
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in a = loopback(port);
  bool ok = connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  SslPtr ssl(SSL_new(ctx));
  if (ok) {
    SSL_set_tlsext_host_name(ssl.get(), name.c_str());
    SSL_set_fd(ssl.get(), fd.get());
    ok = SSL_connect(ssl.get()) == 1;
  }
  ms = Millis(Clock::now() - t0).count();
  if (ok) {
    X509Ptr peer(SSL_get1_peer_certificate(ssl.get()));
    ok = peer && X509_check_host(peer.get(), name.c_str(), name.size(), 0, nullptr) == 1;
    SSL_shutdown(ssl.get());
  }
  ERR_clear_error();
  return ok;
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(i, 1, v.size()) - 1];
}

void print_ms(const std::string& prefix, const std::vector<double>& v) {
  std::printf("%s_n %zu\n%s_p50_ms %.3f\n%s_p99_ms %.3f\n%s_max_ms %.3f\n", prefix.c_str(),
              v.size(), prefix.c_str(), percentile(v, 0.5), prefix.c_str(), percentile(v, 0.99),
              prefix.c_str(), percentile(v, 1.0));
}

// Handshakes to `name` every 20 ms (so the probe itself is no load) until `stop`, or for
// `seconds` when stop is null. Prints <prefix>_n, _fail, _p50_ms, _p99_ms, _max_ms.
void probe_known(int port, const std::string& name, const std::string& prefix, double seconds,
                 const std::atomic<bool>* stop) {
  SslCtxPtr ctx = make_client_ctx();
  std::vector<double> lat;
  long fail = 0;
  const auto end = Clock::now() + Millis(seconds * 1000);
  auto next = Clock::now();
  while (stop ? !stop->load() : Clock::now() < end) {
    double ms = 0;
    if (handshake(ctx.get(), port, name, 10, ms)) {
      lat.push_back(ms);
    } else {
      ++fail;
    }
    // A slow handshake delays the next one rather than causing a catch-up burst.
    next = std::max(next + std::chrono::milliseconds(20), Clock::now());
    std::this_thread::sleep_until(next);
  }
  print_ms(prefix, lat);
  std::printf("%s_fail %ld\n", prefix.c_str(), fail);
}

// ---- storm: open-loop non-blocking handshakes ----

struct Attempt {
  UniqueFd fd;
  SslPtr ssl;
  Clock::time_point start;
  short events = POLLOUT;
};

struct StormResult {
  std::vector<double> rejected_ms;  // connect() -> handshake failure
  long alerts = 0;                  // failures with a TLS alert (the rest: closed or reset)
  long served = 0;                  // handshakes that completed: a denied name got a certificate
  long timed_out = 0;               // still pending at the deadline
};

std::string random_denied_name(std::mt19937_64& rng) {
  char label[17];
  std::snprintf(label, sizeof label, "%016llx", static_cast<unsigned long long>(rng()));
  return std::string(label) + ".denied.test";
}

Attempt start_attempt(SSL_CTX* ctx, int port, const std::string& name) {
  Attempt at{UniqueFd(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)), SslPtr(SSL_new(ctx)),
             Clock::now()};
  int one = 1;
  setsockopt(at.fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in a = loopback(port);
  connect(at.fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);  // EINPROGRESS: SSL retries
  SSL_set_tlsext_host_name(at.ssl.get(), name.c_str());
  SSL_set_fd(at.ssl.get(), at.fd.get());
  SSL_set_connect_state(at.ssl.get());
  return at;
}

// Advances one handshake; false when it is over (and recorded in `r`).
bool step(Attempt& at, StormResult& r) {
  const int rc = SSL_do_handshake(at.ssl.get());
  if (rc == 1) {
    ++r.served;
    return false;
  }
  const int err = SSL_get_error(at.ssl.get(), rc);
  const int sys_errno = errno;
  ERR_clear_error();
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    at.events = err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
    return true;
  }
  const bool connecting = sys_errno == EAGAIN || sys_errno == ENOTCONN;
  if (err == SSL_ERROR_SYSCALL && connecting) return true;
  if (err == SSL_ERROR_SSL) ++r.alerts;
  r.rejected_ms.push_back(Millis(Clock::now() - at.start).count());
  return false;
}

// Waits for socket events until `until` and advances the attempts that have one.
void poll_attempts(std::vector<Attempt>& live, StormResult& r, Clock::time_point until) {
  std::vector<pollfd> fds(live.size());
  for (size_t i = 0; i < live.size(); ++i) fds[i] = {live[i].fd.get(), live[i].events, 0};
  const auto wait = std::max(Clock::duration::zero(), until - Clock::now());
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(wait).count();
  timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
  if (ppoll(fds.data(), fds.size(), &ts, nullptr) <= 0) return;
  std::vector<Attempt> still;
  still.reserve(live.size());
  for (size_t i = 0; i < live.size(); ++i) {
    if (fds[i].revents == 0 || step(live[i], r)) still.push_back(std::move(live[i]));
  }
  live = std::move(still);
}

// RATE*SECONDS attempts, attempt i started at t0 + i/RATE whatever the earlier ones are doing;
// stragglers get 10 s after the last start.
StormResult run_storm_attempts(int port, int rate, double seconds) {
  SslCtxPtr ctx = make_client_ctx();
  std::mt19937_64 rng{std::random_device{}()};
  StormResult r;
  std::vector<Attempt> live;
  const long total = std::lround(rate * seconds);
  const auto period =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / rate));
  const auto t0 = Clock::now();
  const auto deadline = t0 + period * total + std::chrono::seconds(10);
  long started = 0;
  while (Clock::now() < deadline) {
    while (started < total && Clock::now() >= t0 + period * started) {
      live.push_back(start_attempt(ctx.get(), port, random_denied_name(rng)));
      if (!step(live.back(), r)) live.pop_back();
      ++started;
    }
    if (started == total && live.empty()) break;
    poll_attempts(live, r, started < total ? t0 + period * started : deadline);
  }
  r.timed_out = static_cast<long>(live.size()) + (total - started);
  std::printf("storm_elapsed_s %.3f\nstorm_sent %ld\n",
              std::chrono::duration<double>(Clock::now() - t0).count(), started);
  return r;
}

int run_storm(int port, const std::string& known, int rate, double seconds) {
  std::atomic<bool> stop{false};
  StormResult r;
  std::thread prober([&] { probe_known(port, known, "storm_known", 0, &stop); });
  r = run_storm_attempts(port, rate, seconds);
  stop = true;
  prober.join();
  print_ms("reject", r.rejected_ms);
  std::printf("reject_alerts %ld\nreject_served %ld\nreject_timeout %ld\n", r.alerts, r.served,
              r.timed_out);
  return 0;
}

int run_first(int port, const std::string& name) {
  SslCtxPtr ctx = make_client_ctx();
  double first = 0, second = 0;
  const bool ok1 = handshake(ctx.get(), port, name, 60, first);
  const bool ok2 = handshake(ctx.get(), port, name, 10, second);
  std::printf("first_ok %d\nfirst_ms %.3f\nsecond_ok %d\nsecond_ms %.3f\n", ok1, first, ok2,
              second);
  // One sample says little on a shared machine: 30 more full handshakes, 20 ms apart.
  std::vector<double> later;
  for (int i = 0; i < 30; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    double ms = 0;
    if (handshake(ctx.get(), port, name, 10, ms)) later.push_back(ms);
  }
  print_ms("later", later);
  return ok1 && ok2 ? 0 : 1;
}

int usage() {
  std::fprintf(
      stderr,
      "usage: storm_client ask PORT | calm PORT NAME SECONDS | storm PORT NAME RATE SECONDS |"
      " first PORT NAME\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> a(argv + 1, argv + argc);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  if (a.size() == 2 && a[0] == "ask") return run_ask(std::stoi(a[1]));
  if (a.size() == 4 && a[0] == "calm") {
    probe_known(std::stoi(a[1]), a[2], "calm", std::stod(a[3]), nullptr);
    return 0;
  }
  if (a.size() == 5 && a[0] == "storm")
    return run_storm(std::stoi(a[1]), a[2], std::stoi(a[3]), std::stod(a[4]));
  if (a.size() == 3 && a[0] == "first") return run_first(std::stoi(a[1]), a[2]);
  return usage();
}
