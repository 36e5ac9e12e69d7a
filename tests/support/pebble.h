// A real ACME CA for tests: pebble 2.4 plus pebble-challtestsrv (its mock DNS and challenge
// server), both on free 127.0.0.1 ports, configured from a temp dir and stopped by PID.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "process.h"

namespace acmetool::test {

/// How to start pebble. The defaults give a permissive CA that validates at once.
struct PebbleOptions {
  /// "host:port" pebble's VA resolves with; empty means challtestsrv's DNS. pebble 2.4 sends one
  /// TXT query and does not chase CNAMEs, so DNS-01 through CNAMEs needs a recursive resolver
  /// (Bind9Server::resolver()).
  std::string dns_server;
  /// Require External Account Binding; the keys are PebbleServer::eab_keys().
  bool require_eab = false;
  /// certificateValidityPeriod; zero keeps pebble's default (5 years in 2.4).
  std::chrono::seconds certificate_validity{0};
  /// domainBlocklist: names pebble refuses to issue for.
  std::vector<std::string> domain_blocklist;
  /// Run pebble with -strict=true (stricter RFC 8555 checks).
  bool strict = false;
  /// Environment for pebble, overriding the defaults PEBBLE_VA_NOSLEEP=1 and
  /// PEBBLE_WFE_NONCEREJECT=0 (e.g. {"PEBBLE_WFE_NONCEREJECT", "50"} to test badNonce retries).
  std::map<std::string, std::string> env;
};

/// pebble and challtestsrv, running until this object dies. Not copyable or movable.
///
/// The ACME and management listeners present a leaf signed by a throwaway "listener CA"
/// (listener_ca_file()); clients must trust that file. The certificates pebble *issues* chain to
/// root_file() via intermediate_file() instead; pebble makes a new chain on every start.
/// challtestsrv answers every A query with 127.0.0.1 and has no AAAA (pebble 2.4's VA dials only
/// the first address, AAAA first), so HTTP-01 and TLS-ALPN-01 reach 127.0.0.1:http01_port() and
/// 127.0.0.1:tlsalpn01_port(), where the client under test listens.
class PebbleServer {
 public:
  /// Generates the listener CA and leaf, starts both servers and waits (at most 10 s) until the
  /// directory, the management API and challtestsrv answer, then fetches the issuing chain.
  /// Throws std::runtime_error carrying the tail of the failing server's log. Construct it on a
  /// thread that outlives it: the children die with that thread (PR_SET_PDEATHSIG).
  explicit PebbleServer(PebbleOptions options = {});
  /// Stops pebble and challtestsrv by PID (SIGTERM, SIGKILL after 5 s) and removes the temp dir.
  ~PebbleServer();
  PebbleServer(const PebbleServer&) = delete;
  PebbleServer& operator=(const PebbleServer&) = delete;

  /// One instance per test process with default options, started on first use and stopped at
  /// exit. A start failure is remembered and rethrown to later callers. Call from one thread.
  static PebbleServer& shared();

  /// The two HMAC keys (key id -> base64url key) pebble accepts for EAB.
  static const std::map<std::string, std::string>& eab_keys();

  /// "https://127.0.0.1:P/dir".
  std::string directory_url() const;
  /// "https://127.0.0.1:P": /roots/0, /intermediates/0, /cert-status-by-serial/<hex>...
  std::string management_url() const;
  /// PEM of the CA that signed the listeners' certificate; pass it to clients as their CA file.
  const std::filesystem::path& listener_ca_file() const { return listener_ca_file_; }
  /// PEM of the root and the intermediate that issued certificates chain to.
  const std::filesystem::path& root_file() const { return root_file_; }
  const std::filesystem::path& intermediate_file() const { return intermediate_file_; }
  /// Ports on 127.0.0.1 that pebble's VA dials for HTTP-01 and TLS-ALPN-01. Nothing listens there.
  int http01_port() const { return http01_port_; }
  int tlsalpn01_port() const { return tlsalpn01_port_; }
  /// challtestsrv's management API, "http://127.0.0.1:P": /set-txt, /clear-txt, /add-a...
  std::string challtestsrv_url() const;
  /// challtestsrv's DNS server (UDP and TCP), "127.0.0.1:P", and its port.
  std::string challtestsrv_dns() const;
  int challtestsrv_dns_port() const { return cts_dns_port_; }
  /// The "host:port" pebble's VA resolves with (challtestsrv's DNS unless overridden).
  const std::string& dns_server() const { return dns_server_; }
  /// Both servers' logs, labelled: for failure messages.
  std::string logs() const;
  /// PIDs of pebble and challtestsrv, while they run.
  std::vector<pid_t> pids() const;
  /// The temp dir holding the config, certificates and logs; removed by the destructor.
  const std::filesystem::path& work_dir() const { return dir_.path(); }

 private:
  void write_listener_certificates();
  void write_config(const PebbleOptions& options);
  void start(const PebbleOptions& options);
  void wait_until_ready();
  bool challtestsrv_answers_dns(std::string& not_ready);
  void fetch_issuing_chain();

  // Declared first so that it is destroyed last, after both processes have stopped.
  TempDir dir_;
  std::filesystem::path listener_ca_file_, root_file_, intermediate_file_;
  std::filesystem::path pebble_log_, challtestsrv_log_;
  int acme_port_ = 0, management_port_ = 0, http01_port_ = 0, tlsalpn01_port_ = 0;
  int cts_dns_port_ = 0, cts_management_port_ = 0;
  std::string dns_server_;
  std::optional<ChildProcess> challtestsrv_;
  std::optional<ChildProcess> pebble_;
};

}  // namespace acmetool::test
