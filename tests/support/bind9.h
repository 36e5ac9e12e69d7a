// A real DNS server for tests: BIND 9.18 `named`, authoritative for two test zones and accepting
// TSIG-signed RFC 2136 updates, plus a second `named` as a loopback-only recursive resolver in
// front of it. Everything listens on free 127.0.0.1 ports, never on port 53, and no query leaves
// 127.0.0.1. Built from a temp dir and stopped by PID.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "process.h"

namespace acmetool::test {

/// How to start the servers.
struct Bind9Options {
  /// Also start the resolver (recursion, forward-only to the authoritative server). pebble 2.4's
  /// VA needs it for DNS-01 through a CNAME: an authoritative-only server answers a cross-zone
  /// CNAME with the CNAME alone.
  bool resolver = true;
  /// Log every query to logs(), to see what a client or pebble's VA asked.
  bool query_log = true;
};

/// The authoritative `named` (and the resolver), running until this object dies. Not copyable or
/// movable.
///
/// Zones, both primary and updatable with the TSIG key tsig_name():
///   example.test        SOA/NS ns1.example.test; A 127.0.0.1 for the apex, ns1, * and
///                       delegated-name; _acme-challenge.delegated-name CNAME
///                       _acme-challenge.delegated-name.acme-delegate.test.; no AAAA.
///   acme-delegate.test  SOA/NS ns1.acme-delegate.test; where delegated TXT records go.
/// SOA minimum (negative-cache TTL) is 1 s; the resolver caches at most 1 s. Updates go to
/// <zone>.zone.jnl in work_dir(); inspect live state with `dig ... example.test AXFR`.
class Bind9Server {
 public:
  /// Writes the key, zones and configs, starts named (and the resolver) and waits, at most 10 s,
  /// until both zones answer with this instance's marker record (also through the resolver).
  /// Throws std::runtime_error carrying the tail of the failing server's log. Construct it on a
  /// thread that outlives it: the children die with that thread (PR_SET_PDEATHSIG).
  explicit Bind9Server(Bind9Options options = {});
  /// Stops every named by PID (SIGTERM, SIGKILL after 5 s) and removes the temp dir.
  ~Bind9Server();
  Bind9Server(const Bind9Server&) = delete;
  Bind9Server& operator=(const Bind9Server&) = delete;

  /// One instance per test process with default options, started on first use and stopped at
  /// exit. A start failure is remembered and rethrown to later callers. Call from one thread.
  static Bind9Server& shared();

  /// The authoritative server, "127.0.0.1:P" (the RFC 2136 update target), and its port.
  std::string server() const;
  int port() const { return port_; }
  /// The resolver, "127.0.0.1:P", and its port; "" and 0 when Bind9Options::resolver is false.
  std::string resolver() const;
  int resolver_port() const { return resolver_port_; }
  /// TSIG key name as named.conf spells it (no trailing dot), "acmetool-test-key".
  const std::string& tsig_name() const { return tsig_name_; }
  /// "hmac-sha256".
  std::string tsig_algorithm() const { return "hmac-sha256"; }
  /// The key's secret, base64.
  const std::string& tsig_secret() const { return tsig_secret_; }
  /// The key as a named.conf `key` statement: for `nsupdate -k`.
  const std::filesystem::path& tsig_key_file() const { return tsig_key_file_; }
  /// The zones served, without trailing dots: {"example.test", "acme-delegate.test"}.
  std::vector<std::string> zones() const;
  /// Applies RFC 2136 `commands` ("update add NAME TTL TYPE DATA", one a line) to `zone` with
  /// nsupdate and the TSIG key. Throws std::runtime_error with nsupdate's output when it fails.
  void update(const std::string& zone, const std::string& commands) const;
  /// Both servers' logs, labelled: for failure messages.
  std::string logs() const;
  /// PIDs of the authoritative named and the resolver, while they run.
  std::vector<pid_t> pids() const;
  /// The temp dir holding configs, zones, journals and logs; removed by the destructor.
  const std::filesystem::path& work_dir() const { return dir_.path(); }

 private:
  void write_key();
  void write_zones();
  void write_configs(const Bind9Options& options);
  void start(const Bind9Options& options);
  void wait_until_ready();
  bool answers_marker(int port, const std::string& zone) const;

  // Declared first so that it is destroyed last, after the processes have stopped.
  TempDir dir_;
  std::string tsig_name_ = "acmetool-test-key";
  std::string tsig_secret_;
  std::filesystem::path tsig_key_file_;
  std::filesystem::path named_log_, resolver_log_;
  int port_ = 0, resolver_port_ = 0;
  std::optional<ChildProcess> named_;
  std::optional<ChildProcess> resolver_;
};

}  // namespace acmetool::test
