// Getting a certificate from an ACME CA end to end: the account (stored as CertMagic stores it),
// the order, the challenges, the CSR and the download.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "acmetool/acme/client.h"
#include "acmetool/acme/solver.h"
#include "acmetool/pki/key.h"
#include "acmetool/pki/storage.h"

namespace acmetool::acme {

/// Named CAs: "letsencrypt", "letsencrypt-staging", "zerossl"; anything else is returned as given
/// (a directory URL).
std::string directory_url_for(std::string_view ca);

struct AccountSettings {
  std::string email;             ///< contact; empty for none (storage folder "default")
  std::string eab_kid;           ///< External Account Binding, when the CA requires it
  std::string eab_hmac_key;
  pki::KeyType key_type = pki::KeyType::P256;
};

/// Storage keys of an account, as CertMagic lays them out:
/// acme/<issuer>/users/<email or "default">/<local part of the email, or "default">.{json,key}.
struct AccountKeys {
  std::string registration;
  std::string private_key;
};
AccountKeys account_keys(std::string_view issuer_key, std::string_view email);

/// An account as last stored: CertMagic's registration document and the key.
struct StoredAccount {
  std::string email;  ///< the account folder's contact; "" for the default account
  AccountKeys keys;
  Account registration;  ///< URL ("location"), status and contact as last stored
  pki::PkeyPtr key;
};

/// The stored account for (CA, email), or nullopt when its registration or key is missing or the
/// registration holds no https:// account URL. Throws pki::CryptoError for a damaged key.
std::optional<StoredAccount> load_account(const pki::Storage& storage, std::string_view issuer_key,
                                          std::string_view email);

/// The stored account of the CA whose URL is `account_url` (the account a certificate's metadata
/// names), or nullopt when no stored account has that URL.
std::optional<StoredAccount> find_account(const pki::Storage& storage, std::string_view issuer_key,
                                          std::string_view account_url);

/// Stores `account` (URL, status, contact) as the registration of (CA, email), in CertMagic's
/// format; the key is left as it is.
void store_registration(pki::Storage& storage, std::string_view issuer_key, std::string_view email,
                        const Account& account);

/// Makes `client` act as the stored account for (CA, email), registering one (and storing it)
/// when none is stored. Agrees to the CA's terms, as Caddy does. No network call when an
/// account is stored. Returns the account URL. Throws Error when the stored account is
/// deactivated (RFC 8555 §7.3.6: the CA refuses everything it signs).
std::string ensure_account(AcmeClient& client, pki::Storage& storage, std::string_view issuer_key,
                           const AccountSettings& settings);

/// Registers the stored (or a new) key again, for a CA that answered accountDoesNotExist: a
/// restarted test CA, or an account deleted at the CA. Stores the new registration. A stored
/// account that is deactivated gets a new key: the CA would refuse its old one.
std::string register_account(AcmeClient& client, pki::Storage& storage, std::string_view issuer_key,
                             const AccountSettings& settings);

struct CertificateOrder {
  std::vector<std::string> names;            ///< DNS names and IP addresses, as A-labels
  pki::KeyType key_type = pki::KeyType::P256;
  const EVP_PKEY* reuse_key = nullptr;       ///< keep this key instead of making a new one
  /// Enabled solvers. Each attempt uses one challenge type for every authorization, chosen in
  /// random order (so nobody comes to rely on one); a failed attempt moves on to the next.
  std::vector<Solver*> solvers;
  std::string preferred_chain;               ///< issuer/subject CN of the chain's top certificate
  /// ARI identifier of the certificate this one replaces (RFC 9773 §5), sent when the CA offers
  /// ARI; an order the CA refuses because of it is placed again without.
  std::string replaces;
  std::string profile;                       ///< ACME profile name, sent when the CA offers it
  std::chrono::milliseconds validation_timeout{std::chrono::seconds(90)};
  std::chrono::milliseconds finalize_timeout{std::chrono::seconds(90)};
};

struct IssuedCertificate {
  pki::PkeyPtr key;
  std::string chain_pem;        ///< leaf first
  std::string certificate_url;
  std::string order_url;
  std::string challenge_type;   ///< the type that succeeded ("" when every authorization was already valid)
};

/// Runs one order to a certificate. Throws ProblemError (with the CA's subproblems) or Error when
/// every challenge type failed; solvers are always cleaned up.
IssuedCertificate issue_certificate(AcmeClient& client, const CertificateOrder& order);

}  // namespace acmetool::acme
