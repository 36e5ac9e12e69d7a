#include "bind9.h"

#include <sys/random.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <stdexcept>

#include "fixture_util.h"

namespace fs = std::filesystem;

namespace acmetool::test {
namespace {

constexpr auto kStartTimeout = std::chrono::seconds(10);
constexpr const char* kNamed = "/usr/sbin/named";
const std::vector<std::string> kZones = {"example.test", "acme-delegate.test"};
// Each zone holds this TXT with the work dir as its value, so readiness proves that the answer
// comes from this instance and not from a stray server on a reused port.
constexpr const char* kMarkerLabel = "_fixture-ready";

std::string base64(const unsigned char* data, size_t size) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < size; i += 3) {
    const unsigned v =
        data[i] << 16 | (i + 1 < size ? data[i + 1] << 8 : 0) | (i + 2 < size ? data[i + 2] : 0);
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += i + 1 < size ? kAlphabet[v >> 6 & 63] : '=';
    out += i + 2 < size ? kAlphabet[v & 63] : '=';
  }
  return out;
}

// Replaces every ${NAME} in `text` with vars.at(NAME): the configs below read like the files
// they produce.
std::string fill(std::string text, const std::map<std::string, std::string>& vars) {
  for (size_t at = text.find("${"); at != std::string::npos; at = text.find("${", at)) {
    const size_t end = text.find('}', at);
    const std::string& value = vars.at(text.substr(at + 2, end - at - 2));
    text.replace(at, end - at + 1, value);
    at += value.size();
  }
  return text;
}

// Options both servers share: every file named writes stays in the work dir (9.18's default
// lock-file /run/named/named.lock would make a second instance refuse to start), and nothing is
// ever sent off 127.0.0.1 (no NOTIFY to port 53, no rndc channel, no trust-anchor refresh).
constexpr const char* kCommonOptions = R"(  directory "${DIR}";
  pid-file "${DIR}/${NAME}.pid";
  lock-file "${DIR}/${NAME}.lock";
  session-keyfile "${DIR}/${NAME}-session.key";
  managed-keys-directory "${DIR}";
  listen-on port ${PORT} { 127.0.0.1; };
  listen-on-v6 { none; };
  query-source address 127.0.0.1;
  notify no;
  dnssec-validation no;
  trust-anchor-telemetry no;
  empty-zones-enable no;
  querylog ${QUERYLOG};
)";

constexpr const char* kAuthoritativeConf = R"(include "${KEY_FILE}";
options {
${COMMON}  recursion no;
  allow-recursion { none; };
  allow-query { 127.0.0.1; };
  allow-transfer { 127.0.0.1; };  # dig AXFR, for debugging
};
controls { };  # no rndc channel (the default would be 127.0.0.1#953)
zone "example.test" {
  type primary;
  file "example.test.zone";
  allow-update { key "${KEY_NAME}"; };
};
zone "acme-delegate.test" {
  type primary;
  file "acme-delegate.test.zone";
  allow-update { key "${KEY_NAME}"; };
};
)";

// Forward-only for the two zones, and a local root zone so that every other name is NXDOMAIN
// without a query leaving the machine.
constexpr const char* kResolverConf = R"(options {
${COMMON}  recursion yes;
  allow-recursion { 127.0.0.1; };
  allow-query { 127.0.0.1; };
  allow-query-cache { 127.0.0.1; };
  max-cache-ttl 1;
  max-ncache-ttl 1;
};
controls { };
zone "." { type primary; file "root.zone"; };
zone "example.test" {
  type forward;
  forward only;
  forwarders { 127.0.0.1 port ${AUTH_PORT}; };
};
zone "acme-delegate.test" {
  type forward;
  forward only;
  forwarders { 127.0.0.1 port ${AUTH_PORT}; };
};
)";

// The CNAME makes delegated-name an empty non-terminal, which would shadow the wildcard (NODATA
// for delegated-name A) without the explicit A record.
constexpr const char* kExampleZone = R"($TTL 60
@       IN SOA ns1.example.test. hostmaster.example.test. ( 1 60 60 600 1 )
@       IN NS  ns1.example.test.
@       IN A   127.0.0.1
ns1     IN A   127.0.0.1
*       IN A   127.0.0.1
delegated-name IN A 127.0.0.1
_acme-challenge.delegated-name IN CNAME _acme-challenge.delegated-name.acme-delegate.test.
${MARKER} IN TXT "${DIR}"
)";

constexpr const char* kDelegateZone = R"($TTL 60
@       IN SOA ns1.acme-delegate.test. hostmaster.acme-delegate.test. ( 1 60 60 600 1 )
@       IN NS  ns1.acme-delegate.test.
ns1     IN A   127.0.0.1
${MARKER} IN TXT "${DIR}"
)";

constexpr const char* kRootZone = R"($TTL 60
@                       IN SOA localhost. hostmaster.localhost. ( 1 60 60 600 1 )
@                       IN NS  localhost.
localhost               IN A   127.0.0.1
example.test.           IN NS  ns1.example.test.
ns1.example.test.       IN A   127.0.0.1
acme-delegate.test.     IN NS  ns1.acme-delegate.test.
ns1.acme-delegate.test. IN A   127.0.0.1
)";

}  // namespace

Bind9Server::Bind9Server(Bind9Options options) : dir_("acmetool-bind9") {
  tsig_key_file_ = dir_.path() / "tsig.key";
  named_log_ = dir_.path() / "named.log";
  resolver_log_ = dir_.path() / "resolver.log";
  write_key();
  write_zones();
  start_with_retries(
      [&] {
        start(options);
        wait_until_ready();
      },
      [&] {
        named_.reset();
        resolver_.reset();
      });
}

Bind9Server::~Bind9Server() = default;

Bind9Server& Bind9Server::shared() { return shared_server<Bind9Server>(); }

void Bind9Server::write_key() {
  // What `tsig-keygen -a hmac-sha256` makes: 32 random bytes, in a file both named.conf
  // (include) and `nsupdate -k` read.
  unsigned char secret[32];
  if (::getrandom(secret, sizeof secret, 0) != static_cast<ssize_t>(sizeof secret)) {
    throw std::runtime_error(std::string("generating TSIG secret: ") + std::strerror(errno));
  }
  tsig_secret_ = base64(secret, sizeof secret);
  write_file(
      tsig_key_file_,
      fill("key \"${NAME}\" {\n\talgorithm ${ALGORITHM};\n\tsecret \"${SECRET}\";\n};\n",
           {{"NAME", tsig_name_}, {"ALGORITHM", tsig_algorithm()}, {"SECRET", tsig_secret_}}));
}

void Bind9Server::write_zones() {
  const std::map<std::string, std::string> vars = {{"MARKER", kMarkerLabel},
                                                   {"DIR", dir_.path().string()}};
  write_file(dir_.path() / "example.test.zone", fill(kExampleZone, vars));
  write_file(dir_.path() / "acme-delegate.test.zone", fill(kDelegateZone, vars));
  write_file(dir_.path() / "root.zone", kRootZone);
}

void Bind9Server::write_configs(const Bind9Options& options) {
  const fs::path& dir = dir_.path();
  const auto common = [&](const char* name, int port) {
    return fill(kCommonOptions, {{"DIR", dir.string()},
                                 {"NAME", name},
                                 {"PORT", std::to_string(port)},
                                 {"QUERYLOG", options.query_log ? "yes" : "no"}});
  };
  write_file(dir / "named.conf", fill(kAuthoritativeConf, {{"KEY_FILE", tsig_key_file_.string()},
                                                           {"KEY_NAME", tsig_name_},
                                                           {"COMMON", common("named", port_)}}));
  if (options.resolver) {
    write_file(dir / "resolver.conf",
               fill(kResolverConf, {{"COMMON", common("resolver", resolver_port_)},
                                    {"AUTH_PORT", std::to_string(port_)}}));
  }
}

void Bind9Server::start(const Bind9Options& options) {
  const std::vector<int> ports = distinct_free_ports(2);
  port_ = ports[0];
  resolver_port_ = options.resolver ? ports[1] : 0;
  write_configs(options);
  fs::remove(named_log_);
  fs::remove(resolver_log_);
  // -g: foreground with all logging to stderr, so the PID is named's own; -4: IPv4 only.
  named_ = ChildProcess::start({kNamed, "-g", "-4", "-p", std::to_string(port_), "-c",
                                (dir_.path() / "named.conf").string()},
                               named_log_);
  if (options.resolver) {
    resolver_ = ChildProcess::start({kNamed, "-g", "-4", "-p", std::to_string(resolver_port_), "-c",
                                     (dir_.path() / "resolver.conf").string()},
                                    resolver_log_);
  }
}

bool Bind9Server::answers_marker(int port, const std::string& zone) const {
  const std::string name = std::string(kMarkerLabel) + "." + zone + ".";
  const CommandResult dig =
      run_command({"dig", "-b", "127.0.0.1", "@127.0.0.1", "-p", std::to_string(port), "+short",
                   "+time=1", "+tries=1", "TXT", name},
                  "", {}, std::chrono::seconds(5));
  return dig.exit_code == 0 && dig.out == "\"" + dir_.path().string() + "\"\n";
}

void Bind9Server::wait_until_ready() {
  const auto check_alive = [](std::optional<ChildProcess>& child, const std::string& name,
                              const fs::path& log) {
    if (!child) return;
    // A taken UDP port makes named exit ("unable to listen on any configured interfaces"); a
    // taken TCP port is only logged ("creating TCP socket: address in use") and named goes on
    // serving UDP alone, so the log is checked while it runs too.
    const std::string text = read_text(log);
    if (text.find("address in use") != std::string::npos ||
        text.find("unable to listen on any configured interfaces") != std::string::npos) {
      throw PortConflict("starting " + name + ": a port was taken\n" + log_tail(name, log));
    }
    if (!child->running()) {
      throw std::runtime_error("starting " + name + ": it exited early\n" + log_tail(name, log));
    }
  };
  const auto ready = [&] {
    check_alive(named_, "named", named_log_);
    check_alive(resolver_, "resolver named", resolver_log_);
    for (const std::string& zone : kZones) {
      if (!answers_marker(port_, zone)) return false;
      if (resolver_ && !answers_marker(resolver_port_, zone)) return false;
    }
    return true;
  };
  if (!wait_until(ready, kStartTimeout)) {
    throw std::runtime_error("starting named: markers not answered after 10 s\n" +
                             log_tail("named", named_log_) +
                             (resolver_ ? log_tail("resolver named", resolver_log_) : ""));
  }
}

std::string Bind9Server::server() const { return loopback(port_); }

std::string Bind9Server::resolver() const { return resolver_port_ ? loopback(resolver_port_) : ""; }

void Bind9Server::update(const std::string& zone, const std::string& commands) const {
  const std::string script =
      "server 127.0.0.1 " + std::to_string(port_) + "\nzone " + zone + "\n" + commands + "send\n";
  const CommandResult r =
      run_command({"nsupdate", "-t", "5", "-k", tsig_key_file_.string()}, script, {}, std::chrono::seconds(20));
  if (r.exit_code != 0) throw std::runtime_error("nsupdate for " + zone + " failed: " + r.err + r.out);
}

std::vector<std::string> Bind9Server::zones() const { return kZones; }

std::string Bind9Server::logs() const {
  std::string text = "--- named log " + named_log_.string() + " ---\n" + read_text(named_log_);
  if (resolver_port_) {
    text +=
        "--- resolver named log " + resolver_log_.string() + " ---\n" + read_text(resolver_log_);
  }
  return text;
}

std::vector<pid_t> Bind9Server::pids() const {
  std::vector<pid_t> result;
  for (const auto* child : {&named_, &resolver_}) {
    if (*child && (*child)->pid() > 0) result.push_back((*child)->pid());
  }
  return result;
}

}  // namespace acmetool::test
