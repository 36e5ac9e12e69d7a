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

AccountKeys account_keys(std::string_view issuer_key, std::string_view email) {
  const std::string folder = email.empty() ? "default" : std::string(email);
  std::string file = folder.substr(0, folder.find('@'));
  if (file.empty()) file = folder.substr(1);  // "@example.com": CertMagic drops the "@"
  const std::string prefix = "acme/" + pki::keys::safe(issuer_key) + "/users/" + pki::keys::safe(folder) + "/";
  return {prefix + pki::keys::safe(file) + ".json", prefix + pki::keys::safe(file) + ".key"};
}

namespace {

pki::PkeyPtr load_or_make_key(pki::Storage& storage, const AccountKeys& keys, const AccountSettings& settings) {
  if (auto pem = storage.load(keys.private_key)) {
    const pki::SecretString secret(std::move(*pem));
    return pki::private_key_from_pem(secret.str(), "reading " + storage.describe() + "/" + keys.private_key);
  }
  pki::PkeyPtr key = pki::generate_key(settings.key_type);
  storage.store(keys.private_key, pki::private_key_to_pem(*key).str());
  return key;
}

}  // namespace

std::string register_account(AcmeClient& client, pki::Storage& storage, std::string_view issuer_key,
                             const AccountSettings& settings) {
  const AccountKeys keys = account_keys(issuer_key, settings.email);
  const pki::PkeyPtr key = load_or_make_key(storage, keys, settings);
  NewAccountRequest request;
  if (!settings.email.empty()) request.contact.push_back("mailto:" + settings.email);
  request.terms_agreed = true;
  request.eab_kid = settings.eab_kid;
  request.eab_hmac_key = settings.eab_hmac_key;
  const Account account = client.new_account(*key, request);
  const json registration = {{"status", account.status},
                             {"contact", account.contact},
                             {"termsOfServiceAgreed", true},
                             {"location", account.url}};
  storage.store(keys.registration, registration.dump(1, '\t'));
  return account.url;
}

std::string ensure_account(AcmeClient& client, pki::Storage& storage, std::string_view issuer_key,
                           const AccountSettings& settings) {
  const AccountKeys keys = account_keys(issuer_key, settings.email);
  const auto registration = storage.load(keys.registration);
  const auto key_pem = storage.load(keys.private_key);
  if (registration && key_pem) {
    const json doc = json::parse(*registration, nullptr, /*allow_exceptions=*/false);
    const std::string url = doc.is_object() ? doc.value("location", "") : "";
    if (url.starts_with("https://")) {
      const pki::SecretString secret{std::string(*key_pem)};
      client.use_account(*pki::private_key_from_pem(secret.str(), "reading " + storage.describe() + "/" +
                                                                      keys.private_key),
                         url);
      return url;
    }
  }
  return register_account(client, storage, issuer_key, settings);
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
  std::vector<std::string> responded;
  for (const std::string& url : order.authorizations) {
    const Authorization authz = client.fetch_authorization(url);
    if (authz.status == "valid") continue;  // reused from an earlier order
    const auto challenge = std::find_if(authz.challenges.begin(), authz.challenges.end(),
                                        [&](const Challenge& c) { return c.type == solver.type(); });
    if (challenge == authz.challenges.end()) {
      throw Error("the CA offers no " + std::string(solver.type()) + " challenge for " + authz.identifier.value);
    }
    presented.present(authz.identifier.value, challenge->token, key_authorization(challenge->token, account_key));
    client.respond(*challenge);
    responded.push_back(url);
  }
  for (const std::string& url : responded) {
    const Authorization done = client.wait_authorization(url, timeout);
    if (done.status != "valid") {
      std::string detail = done.identifier.value + ": " + std::string(solver.type()) + " " + done.status;
      for (const Challenge& c : done.challenges) {
        if (!c.error.empty()) detail += ": " + c.error;
      }
      throw ProblemError(problem_type("unauthorized"), detail, 403);
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
  for (Solver* solver : in_random_order(request.solvers)) {
    Order order = client.new_order(identifiers);
    try {
      ready = order.status == "ready" ? order : authorize(client, order, *solver, *account_key, request.validation_timeout);
      issued.challenge_type = order.status == "ready" ? "" : std::string(solver->type());
      issued.order_url = order.url;
      break;
    } catch (const Error& e) {
      last_error = e.what();
      deactivate_pending(client, order);
    }
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
