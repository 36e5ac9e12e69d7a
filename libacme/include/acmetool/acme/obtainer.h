// Certificates for sets of names from a list of ACME CAs, kept in storage: reuse what is stored,
// take the issuance lock, try each CA in turn, store the result as Caddy does. Used by
// `acmetool obtain` and `acmetool renew`, and later by the server's certificate manager.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "acmetool/acme/ari.h"
#include "acmetool/acme/dns_provider.h"
#include "acmetool/acme/issuance.h"
#include "acmetool/pki/storage.h"

namespace acmetool::acme {

struct ObtainSettings {
  std::vector<std::string> directory_urls;   ///< CAs in order of preference (https:// only)
  std::filesystem::path ca_root;             ///< roots to trust for the CAs' own TLS; empty: system
  AccountSettings account;
  std::vector<std::string> challenges = {"http-01", "tls-alpn-01"};
  std::string listen_address;                ///< for the standalone solvers; "" = every address
  int http_port = 80;
  int tls_port = 443;
  std::filesystem::path webroot;             ///< http-01 through files instead of a listener
  /// http-01 answered by this solver instead (a server that answers challenges on its own HTTP
  /// port, as `acmetool serve` does); it is shared, and must outlive the obtainer's orders.
  std::shared_ptr<Solver> http01_solver;
  /// tls-alpn-01 answered by this solver instead of a listener of the obtainer's own (a server
  /// that answers on its HTTPS port: TlsAlpn01Responder); shared, as http01_solver.
  std::shared_ptr<Solver> tlsalpn01_solver;
  /// dns-01 (when among `challenges`): the provider that edits the zone, and how the solver
  /// places and checks the records. Wildcard names are ordered with dns-01 alone.
  std::shared_ptr<DnsProvider> dns_provider;
  Dns01Options dns;
  pki::KeyType key_type = pki::KeyType::P256;
  std::string preferred_chain;
  bool force = false;                        ///< order even when a stored certificate is good
  /// Order now even while backing off after failures (acme/failures.h): --force. Without it, a
  /// CA whose failure record says wait is skipped (the next CA is tried).
  bool retry_now = false;
  bool reuse_key = false;                    ///< keep the stored certificate's key, when there is one
  std::string profile;                       ///< ACME profile (e.g. "shortlived"), when the CA offers it
  std::string user_agent = "acmetool";
  /// The wall clock for reuse, renewal and backoff decisions; tests of the certificate manager
  /// move it. Empty: std::chrono::system_clock::now.
  std::function<std::chrono::system_clock::time_point()> clock;
  /// Progress and failure notes, one line each; called from several threads. May be empty.
  std::function<void(std::string_view)> progress;
};

struct ObtainOutcome {
  std::vector<std::string> names;
  enum class Status { Obtained, Reused, Failed } status = Status::Failed;
  std::string issuer_key;   ///< storage issuer key of the CA that issued it
  std::string error;        ///< when failed: each CA's error, "; "-separated
};
std::string_view to_string(ObtainOutcome::Status status);

/// Whether a stored certificate should be renewed now, and why.
struct RenewalCheck {
  enum class Status { NotDue, Due, Missing } status = Status::Missing;
  std::string issuer_key;               ///< where the certificate is stored
  std::string reason;                   ///< one line: "ARI window ... (selected ...)", "a third of its life left"...
  std::optional<RenewalInfo> ari;       ///< the CA's renewal information, when it offers ARI
};

/// Obtains certificates into `storage`; the storage must outlive it. obtain() may be called from
/// several threads at once: they share the CA clients (and their order limiter) and the solvers,
/// whose listeners open when the first order needs them.
class Obtainer {
 public:
  /// Throws acme::Error for a CA URL that is not https://, an unknown challenge type, or dns-01
  /// without a provider.
  Obtainer(pki::Storage& storage, ObtainSettings settings);
  ~Obtainer();
  Obtainer(const Obtainer&) = delete;
  Obtainer& operator=(const Obtainer&) = delete;

  /// The certificate for exactly `names` (A-labels): the stored one when it has more than a third
  /// of its life left (unless force), else a new one from the first CA that issues it, stored
  /// under certificates/<issuer>/<names_key>/ with issuer_data {url, ca, account, email,
  /// challenge, key_type, reuse_key}. Holds the storage lock issue_cert_<names_key> while ordering. Never throws for a
  /// CA's failure: that is a Failed outcome, recorded in storage (acme/failures.h) so that the
  /// next attempt at that CA waits its backoff; a success clears the record.
  ObtainOutcome obtain(const std::vector<std::string>& names);

  /// Looks at the certificate stored for exactly `names` (the first CA in order that has one):
  /// due when the time picked in the CA's ARI window has come, or when less than a third of its
  /// life is left, whichever is first. The CA's renewal information is fetched when the stored
  /// copy is older than its Retry-After, and stored in the certificate's metadata (under the
  /// issuance lock). Never throws: a CA without ARI, or an ARI failure (noted through progress),
  /// leaves the lifetime rule alone to decide.
  RenewalCheck check_renewal(const std::vector<std::string>& names);

  /// Takes back everything presented for validation right now (dns-01 records, webroot files):
  /// for a process interrupted mid-order, before it exits. Orders in flight then fail. Callable
  /// from any thread; never throws.
  void withdraw_challenges() noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// True when a certificate valid from `not_before` to `not_after` should be renewed at `now`:
/// less than `ratio` of its lifetime left (CertMagic's default 1/3), or expired.
bool renewal_due(std::chrono::system_clock::time_point not_before, std::chrono::system_clock::time_point not_after,
                 std::chrono::system_clock::time_point now, double ratio = 1.0 / 3);

/// Due by what storage already says, without asking the CA: the time picked in the CA's ARI
/// window (issuer_data "renewal_info", see Obtainer::check_renewal) has come, or renewal_due.
/// `issuer_data_json` may be empty or malformed (then only the lifetime counts).
bool stored_certificate_due(std::chrono::system_clock::time_point not_before,
                            std::chrono::system_clock::time_point not_after, std::string_view issuer_data_json,
                            std::chrono::system_clock::time_point now);

}  // namespace acmetool::acme
