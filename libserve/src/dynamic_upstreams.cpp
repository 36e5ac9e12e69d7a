// `dynamic` upstreams through c-ares (see dynamic_upstreams.h): one channel per lookup, driven
// with select() until its queries are answered or time out.
#include "acmetool/serve/dynamic_upstreams.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ares.h>
#include <netdb.h>
#include <sys/select.h>

#include <algorithm>
#include <mutex>
#include <tuple>

#include "acmetool/serve/error.h"

namespace acmetool::serve {

namespace {

// A c-ares channel asking `resolvers` (or resolv.conf's), freed on scope exit.
class Channel {
 public:
  Channel(const std::vector<std::string>& resolvers, std::chrono::milliseconds timeout) {
    static std::once_flag initialised;
    std::call_once(initialised, [] { ares_library_init(ARES_LIB_INIT_ALL); });
    ares_options options{};
    options.timeout = static_cast<int>(timeout.count());
    options.tries = 2;
    if (ares_init_options(&channel_, &options, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES) != ARES_SUCCESS) {
      throw Error("c-ares: cannot initialise a resolver");
    }
    if (!resolvers.empty()) {
      std::string csv;
      for (const std::string& r : resolvers) csv += (csv.empty() ? "" : ",") + r;
      if (const int status = ares_set_servers_ports_csv(channel_, csv.c_str()); status != ARES_SUCCESS) {
        ares_destroy(channel_);
        throw Error("resolvers " + csv + ": " + ares_strerror(status));
      }
    }
  }
  ~Channel() { ares_destroy(channel_); }
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  ares_channel get() const { return channel_; }

  // Runs the channel until no query is left.
  void wait() {
    for (;;) {
      fd_set readers, writers;
      FD_ZERO(&readers);
      FD_ZERO(&writers);
      const int count = ares_fds(channel_, &readers, &writers);
      if (count == 0) return;
      timeval limit{};
      timeval* wait_for = ares_timeout(channel_, nullptr, &limit);
      ::select(count, &readers, &writers, nullptr, wait_for);
      ares_process(channel_, &readers, &writers);
    }
  }

 private:
  ares_channel channel_ = nullptr;
};

// "ip:port", the IPv6 form bracketed.
std::string dial_of(const sockaddr* address, int port) {
  char text[INET6_ADDRSTRLEN] = {};
  if (address->sa_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr, text, sizeof text);
    return "[" + std::string(text) + "]:" + std::to_string(port);
  }
  ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(address)->sin_addr, text, sizeof text);
  return std::string(text) + ":" + std::to_string(port);
}

struct AddressAnswer {
  int status = ARES_ENOTFOUND;
  std::vector<std::string> dials;
  int port = 0;
};

void on_addresses(void* arg, int status, int, ares_addrinfo* info) {
  auto& answer = *static_cast<AddressAnswer*>(arg);
  answer.status = status;
  if (status == ARES_SUCCESS && info) {
    for (const ares_addrinfo_node* node = info->nodes; node; node = node->ai_next) {
      answer.dials.push_back(dial_of(node->ai_addr, answer.port));
    }
  }
  if (info) ares_freeaddrinfo(info);
}

// Every A and AAAA address of `name`, as dials with `port`.
std::vector<std::string> addresses(Channel& channel, const std::string& name, int port, std::string& error) {
  AddressAnswer answer;
  answer.port = port;
  ares_addrinfo_hints hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_flags = ARES_AI_NOSORT;
  ares_getaddrinfo(channel.get(), name.c_str(), nullptr, &hints, on_addresses, &answer);
  channel.wait();
  if (answer.status != ARES_SUCCESS) error = name + ": " + ares_strerror(answer.status);
  return answer.dials;
}

struct SrvRecord {
  std::string target;
  int port = 0, priority = 0, weight = 0;
};
struct SrvAnswer {
  int status = ARES_ENOTFOUND;
  std::vector<SrvRecord> records;
};

void on_srv(void* arg, int status, int, unsigned char* buffer, int length) {
  auto& answer = *static_cast<SrvAnswer*>(arg);
  answer.status = status;
  if (status != ARES_SUCCESS) return;
  ares_srv_reply* replies = nullptr;
  answer.status = ares_parse_srv_reply(buffer, length, &replies);
  for (const ares_srv_reply* r = replies; r; r = r->next) {
    answer.records.push_back({r->host, r->port, r->priority, r->weight});
  }
  if (replies) ares_free_data(replies);
}

int port_number(const std::string& text, const std::string& what) {
  int port = 0;
  try {
    port = std::stoi(text);
  } catch (const std::exception&) {
  }
  if (port <= 0 || port > 65535) throw Error(what + ": port '" + text + "' is not a port number");
  return port;
}

}  // namespace

std::vector<std::string> resolve_dynamic_upstreams(const caddyfile::DynamicUpstreams& dynamic,
                                                   std::chrono::milliseconds timeout) {
  const std::string what = "dynamic " + dynamic.source + " " + dynamic.name;
  Channel channel(dynamic.resolvers, timeout);
  std::vector<std::string> dials;
  std::string error;
  if (dynamic.source == "a") {
    dials = addresses(channel, dynamic.name, port_number(dynamic.port, what), error);
    std::sort(dials.begin(), dials.end());
  } else {
    SrvAnswer answer;
    ares_query(channel.get(), dynamic.name.c_str(), ns_c_in, ns_t_srv, on_srv, &answer);
    channel.wait();
    if (answer.status != ARES_SUCCESS) throw Error(what + ": " + ares_strerror(answer.status));
    std::stable_sort(answer.records.begin(), answer.records.end(), [](const SrvRecord& a, const SrvRecord& b) {
      return std::tie(a.priority, b.weight) < std::tie(b.priority, a.weight);
    });
    for (const SrvRecord& record : answer.records) {
      std::vector<std::string> found = addresses(channel, record.target, record.port, error);
      std::sort(found.begin(), found.end());
      dials.insert(dials.end(), found.begin(), found.end());
    }
  }
  if (dials.empty()) throw Error(what + ": " + (error.empty() ? std::string("no addresses") : error));
  return dials;
}

}  // namespace acmetool::serve
