#include "pdns.h"

#include <sys/random.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "fixture_util.h"

namespace fs = std::filesystem;

namespace acmetool::test {
namespace {

constexpr auto kStartTimeout = std::chrono::seconds(10);
constexpr const char* kPdnsServer = "/usr/sbin/pdns_server";
constexpr const char* kPdnsutil = "/usr/bin/pdnsutil";
constexpr const char* kSqlite = "/usr/bin/sqlite3";
// pdns-backend-sqlite3's schema for a new database.
constexpr const char* kSchema = "/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql";
// The zone holds this TXT with the work dir as its value, so readiness proves that the answer
// comes from this instance and not from a stray server on a reused port.
constexpr const char* kMarkerLabel = "_fixture-ready";

std::string random_hex(size_t bytes) {
  std::vector<unsigned char> data(bytes);
  if (::getrandom(data.data(), data.size(), 0) != static_cast<ssize_t>(data.size())) {
    throw std::runtime_error(std::string("generating the pdns API key: ") + std::strerror(errno));
  }
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char byte : data) {
    out += kHex[byte >> 4];
    out += kHex[byte & 15];
  }
  return out;
}

// Runs a setup command; throws with its output when it fails.
void run_or_throw(const std::vector<std::string>& argv, const std::string& input = "") {
  const CommandResult result = run_command(argv, input, {}, std::chrono::seconds(30));
  if (result.exit_code != 0) {
    throw std::runtime_error("starting pdns: " + argv[0] + " " + argv[1] + " failed (exit " +
                             std::to_string(result.exit_code) + "): " + result.err + result.out);
  }
}

}  // namespace

PdnsServer::PdnsServer() : dir_("acmetool-pdns"), log_(dir_.path() / "pdns.log") {
  api_key_ = random_hex(16);
  start_with_retries(
      [&] {
        start();
        wait_until_ready();
      },
      [&] { server_.reset(); });
}

PdnsServer::~PdnsServer() = default;

PdnsServer& PdnsServer::shared() { return shared_server<PdnsServer>(); }

// The database and the zone exist before the server starts: pdnsutil writes the sqlite file
// directly, and the marker makes readiness checkable over DNS.
void PdnsServer::create_database() {
  const fs::path db = dir_.path() / "pdns.sqlite3";
  fs::remove(db);
  run_or_throw({kSqlite, db.string()}, read_text(kSchema));
  const std::string config_dir = "--config-dir=" + dir_.path().string();
  run_or_throw({kPdnsutil, config_dir, "create-zone", zone(), "ns1." + zone()});
  // The nameserver's address: propagation checks find the zone's nameservers by it.
  run_or_throw({kPdnsutil, config_dir, "add-record", zone(), "ns1", "A", "60", "127.0.0.1"});
  run_or_throw({kPdnsutil, config_dir, "add-record", zone(), kMarkerLabel, "TXT", "60",
                "\"" + dir_.path().string() + "\""});
}

// Every file pdns writes stays in the work dir; caches are off so that tests see API changes at
// once; security-poll-suffix= stops the version check, a DNS query through the system resolver.
void PdnsServer::write_config() {
  const std::string dir = dir_.path().string();
  const std::vector<std::string> settings = {
      "launch=gsqlite3",
      "gsqlite3-database=" + dir + "/pdns.sqlite3",
      "local-address=127.0.0.1",
      "local-port=" + std::to_string(dns_port_),
      "webserver=yes",
      "webserver-address=127.0.0.1",
      "webserver-port=" + std::to_string(api_port_),
      "webserver-allow-from=127.0.0.1",
      "api=yes",
      "api-key=" + api_key_,
      "socket-dir=" + dir,
      "guardian=no",
      "daemon=no",
      "disable-syslog=yes",
      "write-pid=no",
      "security-poll-suffix=",
      "cache-ttl=0",
      "query-cache-ttl=0",
      "negquery-cache-ttl=0",
      "zone-cache-refresh-interval=0",
      "distributor-threads=1",
      "receiver-threads=1",
      "loglevel=6",
  };
  std::string text;
  for (const std::string& setting : settings) text += setting + "\n";
  write_file(dir_.path() / "pdns.conf", text);
}

void PdnsServer::start() {
  const std::vector<int> ports = distinct_free_ports(2);
  dns_port_ = ports[0];
  api_port_ = ports[1];
  write_config();
  if (!fs::exists(dir_.path() / "pdns.sqlite3")) create_database();
  fs::remove(log_);
  server_ = ChildProcess::start({kPdnsServer, "--config-dir=" + dir_.path().string()}, log_);
}

bool PdnsServer::answers_marker() const {
  const CommandResult dig = run_command(
      {"dig", "-b", "127.0.0.1", "@127.0.0.1", "-p", std::to_string(dns_port_), "+short", "+time=1",
       "+tries=1", "TXT", std::string(kMarkerLabel) + "." + zone() + "."},
      "", {}, std::chrono::seconds(5));
  return dig.exit_code == 0 && dig.out == "\"" + dir_.path().string() + "\"\n";
}

// curl(1) rather than libcurl: the fixture needs one header and the status code, nothing else.
bool PdnsServer::api_accepts_key() const {
  const CommandResult curl =
      run_command({"curl", "--silent", "--noproxy", "*", "--max-time", "2", "--output", "/dev/null",
                   "--write-out", "%{http_code}", "--header", "X-API-Key: " + api_key_,
                   api_url() + "/api/v1/servers/localhost"},
                  "", {}, std::chrono::seconds(5));
  return curl.out == "200";
}

void PdnsServer::wait_until_ready() {
  const auto ready = [&] {
    const std::string text = read_text(log_);
    if (text.find("Address already in use") != std::string::npos) {
      throw PortConflict("starting pdns_server: a port was taken\n" + log_tail("pdns", log_));
    }
    if (!server_->running()) {
      throw std::runtime_error("starting pdns_server: it exited early\n" + log_tail("pdns", log_));
    }
    return answers_marker() && api_accepts_key();
  };
  if (!wait_until(ready, kStartTimeout)) {
    throw std::runtime_error("starting pdns_server: not ready after 10 s\n" +
                             log_tail("pdns", log_));
  }
}

std::string PdnsServer::api_url() const { return "http://" + loopback(api_port_); }

std::string PdnsServer::logs() const {
  return "--- pdns log " + log_.string() + " ---\n" + read_text(log_);
}

}  // namespace acmetool::test
