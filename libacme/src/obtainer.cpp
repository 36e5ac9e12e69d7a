#include "acmetool/acme/obtainer.h"

#include <algorithm>
#include <mutex>
#include <nlohmann/json.hpp>

#include "acmetool/acme/error.h"
#include "acmetool/acme/solver.h"
#include "acmetool/pki/cert_storage.h"
#include "acmetool/pki/error.h"
#include "acmetool/pki/storage_keys.h"
#include "acmetool/pki/x509.h"
#include "client_internal.h"

namespace acmetool::acme {
namespace {

// How long to wait for another process obtaining the same names.
constexpr auto kIssueLockTimeout = std::chrono::minutes(5);

// One CA: its client, logged in once, shared by the certificates ordered concurrently.
struct Issuer {
  std::string directory_url;
  std::string key;  ///< storage issuer key
  std::unique_ptr<AcmeClient> client;
  std::once_flag login;
};

}  // namespace

std::string_view to_string(ObtainOutcome::Status status) {
  switch (status) {
    case ObtainOutcome::Status::Obtained: return "obtained";
    case ObtainOutcome::Status::Reused: return "reused";
    case ObtainOutcome::Status::Failed: return "failed";
  }
  return "failed";
}

bool renewal_due(std::chrono::system_clock::time_point not_before, std::chrono::system_clock::time_point not_after,
                 std::chrono::system_clock::time_point now, double ratio) {
  const auto lifetime = not_after - not_before;
  return not_after - now < std::chrono::duration_cast<std::chrono::system_clock::duration>(lifetime * ratio);
}

struct Obtainer::Impl {
  Impl(pki::Storage& s, ObtainSettings o) : storage(s), settings(std::move(o)) {}

  pki::Storage& storage;
  ObtainSettings settings;
  std::vector<std::unique_ptr<Issuer>> issuers;
  std::once_flag solvers_once;
  std::vector<std::unique_ptr<Solver>> solvers;
  std::mutex relogin_mu;

  void note(const std::string& line) const {
    if (settings.progress) settings.progress(line);
  }

  // The listeners open when the first order needs them, so that reusing stored certificates needs
  // neither port 80 nor 443.
  const std::vector<std::unique_ptr<Solver>>& solvers_in_use() {
    std::call_once(solvers_once, [this] {
      for (const std::string& type : settings.challenges) {
        if (type == "http-01") {
          solvers.push_back(settings.webroot.empty()
                                ? make_http01_standalone(settings.listen_address, settings.http_port)
                                : make_http01_webroot(settings.webroot));
        } else if (type == "tls-alpn-01") {
          solvers.push_back(make_tlsalpn01_standalone(settings.listen_address, settings.tls_port));
        }
      }
    });
    return solvers;
  }

  // The stored certificate for exactly `names` with more than a third of its life left, if any.
  std::optional<ObtainOutcome> reusable(const std::vector<std::string>& names) const {
    if (settings.force) return std::nullopt;
    const std::string names_key = pki::keys::names_key(names);
    for (const auto& issuer : issuers) {
      std::optional<pki::StoredCertificate> stored;
      try {
        stored = pki::load_certificate(storage, issuer->key, names_key);
      } catch (const pki::Error& e) {
        // A damaged stored certificate is replaced, not fatal (DESIGN.md §3).
        note("ignoring the stored certificate for " + names.front() + ": " + e.what());
      }
      if (!stored) continue;
      std::vector<std::string> want = names, have = stored->sans;
      std::sort(want.begin(), want.end());
      std::sort(have.begin(), have.end());
      if (want != have) continue;
      const pki::CertificateInfo info =
          pki::describe_certificate(*pki::certificates_from_pem(stored->chain_pem, "stored certificate").front());
      if (renewal_due(info.not_before, info.not_after, std::chrono::system_clock::now())) continue;
      return ObtainOutcome{names, ObtainOutcome::Status::Reused, issuer->key, ""};
    }
    return std::nullopt;
  }

  IssuedCertificate issue(Issuer& issuer, const std::vector<std::string>& names) {
    std::call_once(issuer.login, [&] { ensure_account(*issuer.client, storage, issuer.key, settings.account); });
    CertificateOrder order;
    order.names = names;
    order.key_type = settings.key_type;
    const pki::PkeyPtr kept = settings.reuse_key ? stored_key(issuer, names) : nullptr;
    order.reuse_key = kept.get();
    order.preferred_chain = settings.preferred_chain;
    for (const auto& solver : solvers_in_use()) order.solvers.push_back(solver.get());
    try {
      return issue_certificate(*issuer.client, order);
    } catch (const ProblemError& e) {
      // The CA forgot the account (a restarted test CA, a deleted account): register again, once.
      if (e.type() != problem_type("accountDoesNotExist")) throw;
      note("the CA does not know the stored account; registering again");
      {
        std::lock_guard lock(relogin_mu);
        register_account(*issuer.client, storage, issuer.key, settings.account);
      }
      return issue_certificate(*issuer.client, order);
    }
  }

  ObtainOutcome obtain_locked(const std::vector<std::string>& names);

  // The private key stored with the certificate for `names`, for --reuse-key; null when none.
  pki::PkeyPtr stored_key(const Issuer& issuer, const std::vector<std::string>& names) const {
    try {
      if (auto stored = pki::load_certificate(storage, issuer.key, pki::keys::names_key(names))) {
        return pki::private_key_from_pem(stored->private_key_pem.str(), "the stored key of " + names.front());
      }
    } catch (const pki::Error& e) {
      note("not reusing the stored key of " + names.front() + ": " + e.what());
    }
    return nullptr;
  }

  void store(const Issuer& issuer, const std::vector<std::string>& names, const IssuedCertificate& issued) {
    // The type that worked; when every authorization was still valid none ran, so keep the
    // enabled ones for the next renewal.
    std::string challenge = issued.challenge_type;
    for (size_t i = 0; challenge.empty() && i < settings.challenges.size(); ++i) {
      challenge += (i ? "," : "") + settings.challenges[i];
    }
    const nlohmann::ordered_json issuer_data = {{"url", issued.certificate_url},
                                                {"ca", issuer.directory_url},
                                                {"account", issuer.client->account_url()},
                                                {"email", settings.account.email},
                                                {"challenge", challenge},
                                                {"key_type", std::string(pki::to_string(settings.key_type))},
                                                {"reuse_key", settings.reuse_key}};
    pki::store_certificate(storage, issuer.key,
                           {names, issued.chain_pem, pki::private_key_to_pem(*issued.key), issuer_data.dump()});
  }
};

Obtainer::Obtainer(pki::Storage& storage, ObtainSettings settings)
    : impl_(std::make_unique<Impl>(storage, std::move(settings))) {
  for (const std::string& type : impl_->settings.challenges) {
    if (type != "http-01" && type != "tls-alpn-01") throw Error("challenge type " + type + " is not available");
  }
  for (const std::string& url : impl_->settings.directory_urls) {
    auto issuer = std::make_unique<Issuer>();
    issuer->directory_url = url;
    issuer->key = pki::keys::acme_issuer_key(url);
    ClientOptions options;
    options.directory_url = url;  // AcmeClient refuses anything but https://
    options.http.ca_file = impl_->settings.ca_root;
    options.http.user_agent = impl_->settings.user_agent;
    options.progress = impl_->settings.progress;
    issuer->client = std::make_unique<AcmeClient>(options);
    impl_->issuers.push_back(std::move(issuer));
  }
}

Obtainer::~Obtainer() = default;

ObtainOutcome Obtainer::obtain(const std::vector<std::string>& names) {
  try {
    return impl_->obtain_locked(names);
  } catch (const std::exception& e) {  // the lock, or the storage itself, failed
    return ObtainOutcome{names, ObtainOutcome::Status::Failed, "", e.what()};
  }
}

ObtainOutcome Obtainer::Impl::obtain_locked(const std::vector<std::string>& names) {
  Impl& impl = *this;
  if (auto reused = impl.reusable(names)) return *reused;
  // One issuance per name set at a time, across processes sharing the storage (DESIGN.md §3);
  // whoever waited looks again, since the holder may have obtained it meanwhile.
  const pki::StorageLock lock(impl.storage, pki::keys::issue_lock_name(pki::keys::names_key(names)), kIssueLockTimeout);
  if (auto reused = impl.reusable(names)) return *reused;

  ObtainOutcome outcome{names, ObtainOutcome::Status::Failed, "", ""};
  for (const auto& issuer : impl.issuers) {
    try {
      const IssuedCertificate issued = impl.issue(*issuer, names);
      impl.store(*issuer, names, issued);
      return ObtainOutcome{names, ObtainOutcome::Status::Obtained, issuer->key, ""};
    } catch (const std::exception& e) {
      const std::string error = issuer->directory_url + ": " + e.what();
      outcome.error += (outcome.error.empty() ? "" : "; ") + error;
      impl.note("obtain " + names.front() + ": " + error);
    }
  }
  return outcome;
}

}  // namespace acmetool::acme
