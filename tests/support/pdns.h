// A real PowerDNS Authoritative server (4.7, gsqlite3 backend) for tests: its DNS and its HTTP API
// on free 127.0.0.1 ports, never port 53, configured from a temp dir and stopped by PID.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>

#include "process.h"

namespace acmetool::test {

/// pdns_server, running until this object dies. Not copyable or movable.
///
/// Serves one zone, zone() = "pdns.test" (SOA, NS ns1.pdns.test and its A 127.0.0.1, created
/// with pdnsutil before the start), from a sqlite3 database in work_dir(). Every cache is off, so a change
/// made through the API is answered at once. No query leaves 127.0.0.1: pdns never recurses, and
/// security polling (a DNS query through the system resolver) is disabled.
class PdnsServer {
 public:
  /// Creates the database and zone, starts pdns_server and waits, at most 10 s, until its DNS
  /// answers this instance's marker record and its API accepts api_key(). Throws
  /// std::runtime_error carrying the tail of its log. Construct it on a thread that outlives it:
  /// the child dies with that thread (PR_SET_PDEATHSIG).
  PdnsServer();
  /// Stops pdns_server by PID (SIGTERM, SIGKILL after 5 s) and removes the temp dir.
  ~PdnsServer();
  PdnsServer(const PdnsServer&) = delete;
  PdnsServer& operator=(const PdnsServer&) = delete;

  /// One instance per test process, started on first use and stopped at exit. A start failure is
  /// remembered and rethrown to later callers. Call from one thread.
  static PdnsServer& shared();

  /// The DNS port (UDP and TCP) on 127.0.0.1: `dig @127.0.0.1 -p PORT`.
  int dns_port() const { return dns_port_; }
  /// The webserver the API runs in, "http://127.0.0.1:P" (PDNS_API_URL).
  std::string api_url() const;
  /// The API key (X-API-Key), random per instance.
  const std::string& api_key() const { return api_key_; }
  /// "pdns.test", without a trailing dot.
  std::string zone() const { return "pdns.test"; }
  /// The server's log, labelled: for failure messages.
  std::string logs() const;
  /// pdns_server's PID while it runs.
  pid_t pid() const { return server_ ? server_->pid() : -1; }
  /// The temp dir holding the config, database and log; removed by the destructor.
  const std::filesystem::path& work_dir() const { return dir_.path(); }

 private:
  void create_database();
  void write_config();
  void start();
  void wait_until_ready();
  bool answers_marker() const;
  bool api_accepts_key() const;

  // Declared first so that it is destroyed last, after the process has stopped.
  TempDir dir_;
  std::filesystem::path log_;
  std::string api_key_;
  int dns_port_ = 0, api_port_ = 0;
  std::optional<ChildProcess> server_;
};

}  // namespace acmetool::test
