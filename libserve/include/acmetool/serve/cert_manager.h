// The certificate manager (issue 7): owns every certificate `serve` presents and `renew --all`
// maintains, from first issuance to expiry. It loads what storage holds at once, obtains what is
// missing in the background, renews at a third of the lifetime left or in the CA's ARI window,
// keeps serving the old certificate while a renewal fails, and decides on-demand TLS requests
// cheapest stage first. Several processes may share one storage: issuance of a name happens
// under its storage lock and whoever waited loads what the holder stored.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "acmetool/acme/obtainer.h"
#include "acmetool/pki/ca.h"
#include "acmetool/pki/storage.h"
#include "acmetool/serve/cert_cache.h"
#include "acmetool/serve/on_demand.h"

namespace acmetool::serve {

/// Where a name's certificate comes from.
enum class IssuerPolicy {
  Acme,      ///< the ACME CAs of CertManagerOptions::acme, in order
  Internal,  ///< the local CA (pki/authorities/<name>), whose intermediate rotates by itself
  Manual,    ///< the operator's `tls cert key` files: loaded and reloaded when changed, never renewed
};

/// One certificate to manage: one name, as Caddy manages them (a site address' host).
struct ManagedName {
  std::string name;  ///< A-label, lower case, no trailing dot; "*.example.com" or an IP literal
  IssuerPolicy policy = IssuerPolicy::Acme;
  /// Further names on the same certificate (`acmetool obtain a b` makes one certificate for
  /// both); empty for the one-name certificates a server manages. Stored under all the names.
  std::vector<std::string> also;
  std::filesystem::path cert_file;  ///< Manual: PEM chain, leaf first
  std::filesystem::path key_file;   ///< Manual: PEM private key
};

struct CertManagerOptions {
  /// The ACME CAs and how to order from them (for IssuerPolicy::Acme and on-demand names). Its
  /// clock and progress are replaced by the manager's own.
  acme::ObtainSettings acme;
  /// The local CA for IssuerPolicy::Internal (its clock is replaced by the manager's).
  pki::CaOptions local_ca;
  /// Lifetime of local-CA leaves (Caddy: 12 h), cut to the intermediate's expiry.
  std::chrono::seconds internal_lifetime = std::chrono::hours(12);
  /// On-demand TLS: set to obtain certificates for names not managed, at their first handshake,
  /// after these checks. Without ask_url this is allowed only when on_demand_policy is Internal
  /// (a public CA would issue for any name a scanner sends): the constructor throws otherwise.
  std::optional<OnDemandOptions> on_demand;
  IssuerPolicy on_demand_policy = IssuerPolicy::Acme;
  /// The names on-demand TLS may obtain for: exact names and one-label wildcard patterns
  /// ("*.example.com"), as the on-demand sites' addresses give them. Empty: any name (a site
  /// without a host, `https://`).
  std::vector<std::string> on_demand_hosts;
  /// At most this many on-demand certificates are cached (least recently used leave); 0: no bound.
  std::size_t on_demand_capacity = 0;
  /// How often the maintenance loop runs (Caddy's renew_interval: 10 min).
  std::chrono::milliseconds maintenance_interval = std::chrono::minutes(10);
  /// Obtains and renewals running at once; more wait in a queue.
  std::size_t max_parallel_obtains = 4;
  /// How long a handshake for an expired on-demand certificate waits for its renewal.
  std::chrono::seconds expired_renewal_wait{90};
  /// Fetch OCSP responses for certificates that name a responder, staple them, refresh them.
  bool ocsp_stapling = true;
  /// Let maintenance remove certificates expired for a day whose names are neither managed nor
  /// cached, at most once a day across the processes sharing the storage (CertMagic's rule).
  bool clean_storage = true;
  /// The wall clock; tests move it. Empty: std::chrono::system_clock::now.
  pki::Clock clock;
  /// One line per event worth an operator's attention ("obtained example.com from ...",
  /// "renewal of example.com failed: ...; keeping the current certificate"). Called from several
  /// threads; may be empty. Rejections of on-demand names are sampled (at most 10 a second).
  std::function<void(std::string_view)> log;
};

/// Counters since the manager was made, for metrics.
struct CertManagerStats {
  std::uint64_t handshakes_cached = 0;      ///< served from the cache at once
  std::uint64_t handshakes_loaded = 0;      ///< on-demand name found in storage
  std::uint64_t handshakes_obtained = 0;    ///< waited for an on-demand issuance that succeeded
  std::uint64_t handshakes_rejected = 0;    ///< unknown, invalid, denied, cooling down, over budget
  std::uint64_t handshakes_failed = 0;      ///< the issuance it waited for failed
  std::uint64_t orders_started = 0;         ///< issuances attempted (ACME or local CA)
  std::uint64_t orders_succeeded = 0;
  std::uint64_t orders_failed = 0;
  std::uint64_t renewals = 0;               ///< successful renewals of a cached certificate
  std::uint64_t ocsp_fetches = 0;
  std::uint64_t ocsp_failures = 0;
  std::uint64_t cache_size = 0;
  OnDemandStats on_demand;                  ///< ask, cooldown and budget counters
};

/// What a handshake gets.
struct CertificateAnswer {
  enum class Outcome {
    Cached,       ///< found in the cache
    Loaded,       ///< an on-demand name found in storage, now cached
    Obtained,     ///< obtained just now (on-demand), now cached
    Unknown,      ///< not a name we serve, and on-demand TLS is off
    Invalid,      ///< not a name a certificate can be obtained for
    Denied,       ///< the ask endpoint (or the budget) said no
    CoolingDown,  ///< denied or failed a moment ago
    Failed,       ///< the issuance failed
  } outcome = Outcome::Unknown;
  std::shared_ptr<const CachedCertificate> certificate;  ///< set for Cached, Loaded, Obtained
  std::string reason;                                    ///< one line, for rejections
};
std::string_view to_string(CertificateAnswer::Outcome outcome);

/// What a maintenance pass is asked to do beyond its rules (`acmetool renew` flags).
struct MaintenanceRequest {
  /// Renew every managed certificate now, even while backing off after failures (--force).
  bool force = false;
  /// Renew when less than this is left, instead of the ARI window or the last third (--days).
  std::optional<std::chrono::seconds> renew_within;
};

/// What one maintenance pass did.
struct MaintenanceReport {
  struct Item {
    enum class Status { NotDue, Renewed, Failed };
    std::string name;    ///< the managed name
    Status status = Status::NotDue;
    std::string detail;  ///< why it was (not) due, or why it failed; one line
  };
  std::vector<Item> items;  ///< one per managed name (manual files aside), in name order
  std::size_t count(Item::Status status) const;
};

/// Thread-safe. Background work runs on the manager's own threads until it is destroyed.
class CertManager {
 public:
  /// `storage` must outlive the manager. Throws serve::Error for an unusable configuration
  /// (on-demand with a public CA and no ask endpoint), acme::Error for bad ACME settings.
  CertManager(pki::Storage& storage, CertManagerOptions options);
  /// Stops the maintenance loop, withdraws challenges in flight and joins every thread; a
  /// handshake still waiting is answered Failed.
  ~CertManager();
  CertManager(const CertManager&) = delete;
  CertManager& operator=(const CertManager&) = delete;

  /// Makes `names` the managed set (at start-up, and again on reload). Blocks only to read
  /// storage and the manual files: every valid stored certificate is cached before this returns;
  /// names with none, or whose certificate is due, are obtained in the background. A damaged
  /// .crt, .key or .json is renamed aside (".corrupt-<unix time>") and its name obtained again.
  /// Certificates of names no longer managed leave the cache (on-demand ones stay). Throws
  /// serve::Error for a manual certificate that cannot be loaded, naming the file.
  void manage(std::vector<ManagedName> names);

  /// Starts the maintenance loop: a pass at once, then every maintenance_interval; idempotent.
  void start();

  /// One maintenance pass now, blocking: renews every due certificate (ACME ones ask the CA for
  /// its ARI window first), obtains managed names still missing, reloads changed manual files,
  /// refreshes OCSP staples, and at most once a day removes certificates expired for a day
  /// whose names are no longer managed (under the storage-wide lock "storage_clean"). Failures
  /// are persisted, so a name backing off fails at once until its time (acme/failures.h).
  MaintenanceReport maintain(const MaintenanceRequest& request = {});

  /// Takes back every challenge presented right now (an interrupted process, before it exits).
  /// Callable from any thread.
  void withdraw_challenges() noexcept;

  /// The certificate for a TLS ClientHello's server name (or the local address' IP when there is
  /// no SNI), decided cheapest stage first: cache → name syntax → cooldown → storage → ask →
  /// budget → one issuance per name, which every concurrent handshake for it waits on.
  /// `done` is called exactly once: at once on this thread for a cache hit or a cheap rejection,
  /// else on one of the manager's threads. A cached on-demand certificate with a third of its
  /// life left is renewed in the background (asking permission again); an expired one is renewed
  /// while the handshake waits, at most expired_renewal_wait.
  void certificate_for(std::string_view server_name, std::string_view client_ip,
                       std::function<void(CertificateAnswer)> done);

  /// certificate_for, waiting for the answer at most expired_renewal_wait (then Failed; the
  /// work goes on in the background). For tests and tools; a server keeps its own timer.
  CertificateAnswer certificate_for(std::string_view server_name, std::string_view client_ip = {});

  /// Waits until no background job is queued or running, at most `timeout`; returns whether it
  /// became idle.
  bool wait_idle(std::chrono::milliseconds timeout);

  const CertificateCache& cache() const;
  CertManagerStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace acmetool::serve
