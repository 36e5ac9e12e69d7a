#include "acmetool/acme/issuance.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <random>

#include "acmetool/acme/error.h"
#include "acmetool/acme/jws.h"
#include "acmetool/pki/csr.h"
#include "acmetool/pki/error.h"
#include "acmetool/pki/storage_keys.h"
#include "client_internal.h"

namespace acmetool::acme {

using nlohmann::json;

std::string directory_url_for(std::string_view ca) {
  if (ca == "letsencrypt") return "https://acme-v02.api.letsencrypt.org/directory";
  if (ca == "letsencrypt-staging") return "https://acme-staging-v02.api.letsencrypt.org/directory";
  if (ca == "zerossl") return "https://acme.zerossl.com/v2/DV90";
  return std::string(ca);
}

namespace {

// "acme/<issuer>/users": a CA's accounts, one folder per email.
std::string users_prefix(std::string_view issuer_key) {
  return "acme/" + pki::keys::safe(issuer_key) + "/users";
}

}  // namespace

AccountKeys account_keys(std::string_view issuer_key, std::string_view email) {
  const std::string folder = email.empty() ? "default" : std::string(email);
  std::string file = folder.substr(0, folder.find('@'));
  if (file.empty()) file = folder.substr(1);  // "@example.com": CertMagic drops the "@"
  const std::string prefix = users_prefix(issuer_key) + "/" + pki::keys::safe(folder) + "/";
  return {prefix + pki::keys::safe(file) + ".json", prefix + pki::keys::safe(file) + ".key"};
}

namespace {

std::string string_field(const json& doc, const char* name) {
  const auto it = doc.find(name);
  return it != doc.end() && it->is_string() ? it->get<std::string>() : "";
}

// The registration stored under `key`, or nullopt when it is absent, damaged or names no
// https:// account URL (then the account is registered again).
std::optional<Account> load_registration(const pki::Storage& storage, const std::string& key) {
  const auto text = storage.load(key);
  if (!text) return std::nullopt;
  const json doc = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return std::nullopt;
  Account account{string_field(doc, "location"), string_field(doc, "status"), {}};
  if (!account.url.starts_with("https://")) return std::nullopt;
  if (const auto contact = doc.find("contact"); contact != doc.end() && contact->is_array()) {
    for (const json& c : *contact) {
      if (c.is_string()) account.contact.push_back(c.get<std::string>());
    }
  }
  return account;
}

pki::PkeyPtr load_or_make_key(pki::Storage& storage, const AccountKeys& keys,
                              const AccountSettings& settings, bool fresh) {
  if (auto pem = fresh ? std::nullopt : storage.load(keys.private_key)) {
    const pki::SecretString secret(std::move(*pem));
    return pki::private_key_from_pem(secret.str(), "reading " + storage.describe() + "/" + keys.private_key);
  }
  pki::PkeyPtr key = pki::generate_key(settings.key_type);
  storage.store(keys.private_key, pki::private_key_to_pem(*key).str());
  return key;
}

}  // namespace

std::optional<StoredAccount> load_account(const pki::Storage& storage, std::string_view issuer_key,
                                          std::string_view email) {
  AccountKeys keys = account_keys(issuer_key, email);
  auto registration = load_registration(storage, keys.registration);
  auto key_pem = storage.load(keys.private_key);
  if (!registration || !key_pem) return std::nullopt;
  const pki::SecretString secret(std::move(*key_pem));
  pki::PkeyPtr key = pki::private_key_from_pem(
      secret.str(), "reading " + storage.describe() + "/" + keys.private_key);
  return StoredAccount{std::string(email), std::move(keys), std::move(*registration),
                       std::move(key)};
}

std::optional<StoredAccount> find_account(const pki::Storage& storage, std::string_view issuer_key,
                                          std::string_view account_url) {
  const std::string prefix = users_prefix(issuer_key) + "/";
  for (const std::string& folder : storage.list(users_prefix(issuer_key), /*recursive=*/false)) {
    // A folder is named after its email (safe() leaves an ordinary address as it is), or "default".
    std::string email = folder.substr(prefix.size());
    if (email == "default") email.clear();
    const auto registration =
        load_registration(storage, account_keys(issuer_key, email).registration);
    if (registration && registration->url == account_url) {
      return load_account(storage, issuer_key, email);
    }
  }
  return std::nullopt;
}

void store_registration(pki::Storage& storage, std::string_view issuer_key, std::string_view email,
                        const Account& account) {
  const json registration = {{"status", account.status},
                             {"contact", account.contact},
                             {"termsOfServiceAgreed", true},
                             {"location", account.url}};
  storage.store(account_keys(issuer_key, email).registration, registration.dump(1, '\t'));
}

std::string register_account(AcmeClient& client, pki::Storage& storage, std::string_view issuer_key,
                             const AccountSettings& settings) {
  const AccountKeys keys = account_keys(issuer_key, settings.email);
  // RFC 8555 §7.3.6: the CA refuses a deactivated account's key for good, so it gets a new one.
  const auto stored = load_registration(storage, keys.registration);
  const pki::PkeyPtr key =
      load_or_make_key(storage, keys, settings, stored && stored->status == "deactivated");
  NewAccountRequest request;
  if (!settings.email.empty()) request.contact.push_back("mailto:" + settings.email);
  request.terms_agreed = true;
  request.eab_kid = settings.eab_kid;
  request.eab_hmac_key = settings.eab_hmac_key;
  const Account account = client.new_account(*key, request);
  store_registration(storage, issuer_key, settings.email, account);
  return account.url;
}

std::string ensure_account(AcmeClient& client, pki::Storage& storage, std::string_view issuer_key,
                           const AccountSettings& settings) {
  const auto stored = load_account(storage, issuer_key, settings.email);
  if (!stored) return register_account(client, storage, issuer_key, settings);
  if (stored->registration.status == "deactivated") {
    throw Error("the stored account " + stored->registration.url +
                " is deactivated; register a new one");
  }
  client.use_account(*stored->key, stored->registration.url);
  return stored->registration.url;
}

namespace {

// Presented challenges, cleaned up however the attempt ends.
class Presented {
 public:
  explicit Presented(Solver& solver) : solver_(solver) {}
  ~Presented() {
    for (const auto& [identifier, token] : tokens_) solver_.cleanup(identifier, token);
  }
  void present(const std::string& identifier, const std::string& token, const std::string& key_authorization) {
    solver_.present(identifier, token, key_authorization);
    tokens_.emplace_back(identifier, token);
  }

 private:
  Solver& solver_;
  std::vector<std::pair<std::string, std::string>> tokens_;
};

// One attempt: every pending authorization answered with `solver`'s challenge type. Returns the
// order once ready; throws when an authorization ends invalid.
Order authorize(AcmeClient& client, const Order& order, Solver& solver, const EVP_PKEY& account_key,
                std::chrono::milliseconds timeout) {
  Presented presented(solver);
  std::vector<std::pair<std::string, Challenge>> to_answer;  // authorization URL, its challenge
  for (const std::string& url : order.authorizations) {
    const Authorization authz = client.fetch_authorization(url);
    if (authz.status == "valid") continue;  // reused from an earlier order
    const auto challenge = std::find_if(authz.challenges.begin(), authz.challenges.end(),
                                        [&](const Challenge& c) { return c.type == solver.type(); });
    if (challenge == authz.challenges.end()) {
      throw Error("the CA offers no " + std::string(solver.type()) + " challenge for " + authz.identifier.value);
    }
    presented.present(authz.identifier.value, challenge->token, key_authorization(challenge->token, account_key));
    to_answer.emplace_back(url, *challenge);
  }
  // Everything is presented before the CA is told to look: dns-01 records propagate together.
  solver.wait_presented(timeout);
  for (const auto& [url, challenge] : to_answer) client.respond(challenge);
  for (const auto& [url, challenge] : to_answer) {
    const Authorization done = client.wait_authorization(url, timeout);
    if (done.status != "valid") {
      std::string detail = done.identifier.value + ": " + std::string(solver.type()) + " " + done.status;
      for (const Challenge& c : done.challenges) {
        if (!c.error.empty()) detail += ": " + c.error;
      }
      throw ValidationError(detail, 1);
    }
  }
  return client.fetch_order(order.url);
}

// Best effort: leave no pending authorization behind a failed order (they count against limits).
void deactivate_pending(AcmeClient& client, const Order& order) noexcept {
  for (const std::string& url : order.authorizations) {
    try {
      if (client.fetch_authorization(url).status == "pending") client.deactivate_authorization(url);
    } catch (const std::exception&) {
    }
  }
}

// newOrder with `replaces` when asked; a CA that refuses it (the old certificate was replaced
// already, or it does not know it) still gets the order, without.
Order place_order(AcmeClient& client, const std::vector<Identifier>& identifiers, const CertificateOrder& request) {
  if (request.replaces.empty()) return client.new_order(identifiers, {}, request.profile);
  try {
    return client.new_order(identifiers, request.replaces, request.profile);
  } catch (const ProblemError& e) {
    if (e.http_status() == 429 || e.http_status() >= 500) throw;
    return client.new_order(identifiers, {}, request.profile);
  }
}

std::vector<Solver*> in_random_order(std::vector<Solver*> solvers) {
  thread_local std::mt19937 rng{std::random_device{}()};
  std::shuffle(solvers.begin(), solvers.end(), rng);
  return solvers;
}

}  // namespace

IssuedCertificate issue_certificate(AcmeClient& client, const CertificateOrder& request) {
  if (request.names.empty()) throw Error("an order needs at least one name");
  if (request.solvers.empty()) throw Error("no challenge type enabled");
  std::vector<Identifier> identifiers;
  for (const std::string& name : request.names) identifiers.push_back(identifier_for(name));

  IssuedCertificate issued;
  issued.key = request.reuse_key ? pki::share_key(*request.reuse_key) : pki::generate_key(request.key_type);
  const pki::PkeyPtr account_key = client.account_key();

  std::optional<Order> ready;
  std::string last_error;
  int failed_validations = 0;
  for (Solver* solver : in_random_order(request.solvers)) {
    Order order = place_order(client, identifiers, request);
    try {
      ready = order.status == "ready" ? order : authorize(client, order, *solver, *account_key, request.validation_timeout);
      issued.challenge_type = order.status == "ready" ? "" : std::string(solver->type());
      issued.order_url = order.url;
      break;
    } catch (const Error& e) {
      last_error = e.what();
      if (dynamic_cast<const ValidationError*>(&e)) ++failed_validations;
      deactivate_pending(client, order);
    }
  }
  if (!ready && failed_validations > 0) {
    throw ValidationError("every challenge type failed; last: " + last_error, failed_validations);
  }
  if (!ready) throw Error("every challenge type failed; last: " + last_error);

  const std::string csr = pki::create_csr_der(*issued.key, {request.names});
  const Order valid = client.finalize(*ready, csr, request.finalize_timeout);
  if (valid.status != "valid") throw Error("order " + valid.url + " became " + valid.status + ": " + valid.error);
  issued.certificate_url = valid.certificate;
  issued.chain_pem = select_chain(client.download(valid.certificate), request.preferred_chain);
  return issued;
}

}  // namespace acmetool::acme
