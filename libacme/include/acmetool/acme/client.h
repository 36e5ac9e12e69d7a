// An RFC 8555 ACME client: directory, nonces, JWS-signed requests, accounts, orders,
// authorizations, challenges, finalization, certificate download and revocation.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "acmetool/acme/ari.h"
#include "acmetool/acme/http.h"
#include "acmetool/pki/ossl.h"

namespace acmetool::acme {

/// The directory object (RFC 8555 §7.1.1) with its meta fields.
struct Directory {
  std::string new_nonce, new_account, new_order, revoke_cert, key_change;
  std::string renewal_info;                  ///< RFC 9773 ARI; empty when the CA has none
  std::string terms_of_service;              ///< meta.termsOfService
  bool external_account_required = false;    ///< meta.externalAccountRequired
  std::vector<std::string> caa_identities;   ///< meta.caaIdentities
  std::vector<std::string> profiles;         ///< names in meta.profiles
};

/// An identifier of an order: {"type":"dns","value":"example.com"} or {"type":"ip",...} (RFC 8738).
struct Identifier {
  std::string type;
  std::string value;
  bool operator==(const Identifier&) const = default;
};
/// "ip" for an IPv4/IPv6 literal, else "dns".
Identifier identifier_for(std::string_view name);

struct Challenge {
  std::string type;     ///< "http-01", "tls-alpn-01", "dns-01"...
  std::string url;
  std::string token;    ///< checked to be base64url when read
  std::string status;   ///< pending, processing, valid, invalid
  std::string error;    ///< the problem's detail when invalid
};

struct Authorization {
  std::string url;
  Identifier identifier;
  std::string status;   ///< pending, valid, invalid, deactivated, expired, revoked
  bool wildcard = false;
  std::vector<Challenge> challenges;
};

struct Order {
  std::string url;
  std::string status;   ///< pending, ready, processing, valid, invalid
  std::vector<Identifier> identifiers;
  std::vector<std::string> authorizations;
  std::string finalize;
  std::string certificate;  ///< set once valid
  std::string error;        ///< the problem's detail when invalid
};

struct Account {
  std::string url;                   ///< the account URL, used as "kid"
  std::string status;                ///< valid, deactivated, revoked
  std::vector<std::string> contact;  ///< "mailto:..." URIs
};

struct NewAccountRequest {
  std::vector<std::string> contact;  ///< "mailto:a@example.com"
  bool terms_agreed = false;
  bool only_return_existing = false;
  std::string eab_kid;               ///< External Account Binding key id; empty for none
  std::string eab_hmac_key;          ///< its base64url HMAC key
};

/// A downloaded certificate chain: the default one and the alternates the CA links to.
struct CertificateChains {
  std::string default_chain;              ///< PEM, leaf first
  std::vector<std::string> alternates;    ///< PEM chains from Link: rel="alternate"
};

struct ClientOptions {
  std::string directory_url;             ///< must be https://
  HttpOptions http;                      ///< trust (ca_file), user agent
  std::chrono::milliseconds request_timeout{30000};
  int max_attempts = 4;                  ///< per request, for badNonce, 429, 503 and other 5xx
  /// New orders allowed per window and account (CertMagic's internal limiter: 10 per 10 s).
  int orders_per_window = 10;
  std::chrono::milliseconds order_window{10000};
  /// Called with a one-line note before every network wait ("polling order ..."). May be empty.
  std::function<void(std::string_view)> progress;
  /// Makes the HTTP clients; defaults to make_http_client(http). Tests inject others.
  std::function<std::unique_ptr<HttpClient>()> make_http;
};

/// Talks to one ACME CA as one account. Thread-safe: concurrent orders share the nonce pool,
/// the rate limiter and a pool of HTTP connections. Throws ProblemError for problem documents,
/// HttpError for transport failures and Error for malformed answers.
class AcmeClient {
 public:
  /// Refuses a directory URL that is not https:// (acme::Error). Fetches nothing yet.
  explicit AcmeClient(ClientOptions options);
  ~AcmeClient();
  AcmeClient(const AcmeClient&) = delete;
  AcmeClient& operator=(const AcmeClient&) = delete;

  /// The directory, fetched once.
  const Directory& directory();

  /// newAccount (§7.3) with `account_key`; remembers the account for later calls. With
  /// only_return_existing, a CA that does not know the key answers accountDoesNotExist.
  Account new_account(const EVP_PKEY& account_key, const NewAccountRequest& request);
  /// Uses an account registered earlier; does no network call.
  void use_account(const EVP_PKEY& account_key, std::string account_url);
  /// POST-as-GET of the account; update of contacts (§7.3.2); deactivation (§7.3.6).
  Account fetch_account();
  Account update_contact(const std::vector<std::string>& contact);
  Account deactivate_account();
  /// keyChange (§7.3.5): the account now uses `new_key`.
  void rollover(const EVP_PKEY& new_key);
  const std::string& account_url() const;
  /// The key of the account in use (for key authorizations). Throws Error before an account is set.
  pki::PkeyPtr account_key() const;

  /// newOrder (§7.4) for `identifiers`; waits for the rate limiter first. `replaces` is an ARI
  /// certificate identifier (RFC 9773 §5), `profile` a profile name; both are sent only when the
  /// directory offers the feature.
  Order new_order(const std::vector<Identifier>& identifiers, std::string_view replaces = {},
                  std::string_view profile = {});
  Order fetch_order(const std::string& url);
  Authorization fetch_authorization(const std::string& url);
  Authorization deactivate_authorization(const std::string& url);
  /// Tells the CA to validate a challenge (§7.5.1).
  Challenge respond(const Challenge& challenge);
  /// Polls until the authorization leaves "pending" (Retry-After honoured, else backoff from
  /// 200 ms doubling to 2 s) or `timeout` passes (acme::Error).
  Authorization wait_authorization(const std::string& url, std::chrono::milliseconds timeout);
  /// Sends the CSR (DER) and polls until the order is valid or invalid.
  Order finalize(const Order& order, const std::string& csr_der, std::chrono::milliseconds timeout);
  /// Downloads the certificate and its alternate chains (§7.4.2).
  CertificateChains download(const std::string& certificate_url);
  /// revokeCert (§7.6) signed with the account key, or with `certificate_key` when given.
  void revoke(const std::string& certificate_der, int reason, const EVP_PKEY* certificate_key = nullptr);

  /// The CA's renewal information for the certificate whose ARI identifier is `certificate_id`
  /// (RFC 9773 §4.1: an unauthenticated GET), selected_time not yet picked. nullopt when the
  /// directory offers no renewalInfo. Throws as other requests do, and acme::Error for an answer
  /// without a valid window.
  std::optional<RenewalInfo> renewal_info(std::string_view certificate_id);

  /// The nonce pool size, for tests.
  size_t pooled_nonces() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Picks the chain whose topmost certificate's issuer or subject common name equals `preferred`
/// (as certbot and lego do); the default chain when none matches or `preferred` is empty.
const std::string& select_chain(const CertificateChains& chains, std::string_view preferred);

}  // namespace acmetool::acme
