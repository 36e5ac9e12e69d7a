// Certificates for sets of names from a list of ACME CAs, kept in storage: reuse what is stored,
// take the issuance lock, try each CA in turn, store the result as Caddy does. Used by
// `acmetool obtain` and `acmetool renew`, and later by the server's certificate manager.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

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
  pki::KeyType key_type = pki::KeyType::P256;
  std::string preferred_chain;
  bool force = false;                        ///< order even when a stored certificate is good
  bool reuse_key = false;                    ///< keep the stored certificate's key, when there is one
  std::string user_agent = "acmetool";
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

/// Obtains certificates into `storage`; the storage must outlive it. obtain() may be called from
/// several threads at once: they share the CA clients (and their order limiter) and the solvers,
/// whose listeners open when the first order needs them.
class Obtainer {
 public:
  /// Throws acme::Error for a CA URL that is not https://, or an unknown challenge type.
  Obtainer(pki::Storage& storage, ObtainSettings settings);
  ~Obtainer();
  Obtainer(const Obtainer&) = delete;
  Obtainer& operator=(const Obtainer&) = delete;

  /// The certificate for exactly `names` (A-labels): the stored one when it has more than a third
  /// of its life left (unless force), else a new one from the first CA that issues it, stored
  /// under certificates/<issuer>/<names_key>/ with issuer_data {url, ca, account, email,
  /// challenge, key_type, reuse_key}. Holds the storage lock issue_cert_<names_key> while ordering. Never throws for a
  /// CA's failure: that is a Failed outcome.
  ObtainOutcome obtain(const std::vector<std::string>& names);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// True when a certificate valid from `not_before` to `not_after` should be renewed at `now`:
/// less than `ratio` of its lifetime left (CertMagic's default 1/3), or expired.
bool renewal_due(std::chrono::system_clock::time_point not_before, std::chrono::system_clock::time_point not_after,
                 std::chrono::system_clock::time_point now, double ratio = 1.0 / 3);

}  // namespace acmetool::acme
