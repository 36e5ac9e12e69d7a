#include "acmetool/acme/obtainer.h"

#include <algorithm>
#include <mutex>
#include <random>
#include <nlohmann/json.hpp>

#include "acmetool/acme/error.h"
#include "acmetool/acme/failures.h"
#include "acmetool/acme/solver.h"
#include "acmetool/pki/cert_storage.h"
#include "acmetool/pki/error.h"
#include "acmetool/pki/rfc3339.h"
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

// A solver someone else owns (ObtainSettings::http01_solver), in the obtainer's list.
class SharedSolver : public Solver {
 public:
  explicit SharedSolver(std::shared_ptr<Solver> solver) : solver_(std::move(solver)) {}
  std::string_view type() const override { return solver_->type(); }
  void present(std::string_view identifier, std::string_view token, std::string_view key_authorization) override {
    solver_->present(identifier, token, key_authorization);
  }
  void wait_presented(std::chrono::milliseconds timeout) override { solver_->wait_presented(timeout); }
  void cleanup(std::string_view identifier, std::string_view token) noexcept override {
    solver_->cleanup(identifier, token);
  }
  void withdraw_all() noexcept override { solver_->withdraw_all(); }

 private:
  std::shared_ptr<Solver> solver_;
};

// A stored certificate, read.
struct Found {
  pki::StoredCertificate cert;
  pki::X509Ptr leaf;
  pki::CertificateInfo info;
  nlohmann::ordered_json issuer_data;  ///< an object, empty when none was stored
};

// The renewal information stored in issuer data (acmez's "renewal_info"), if any.
std::optional<RenewalInfo> stored_renewal_info(const nlohmann::ordered_json& issuer_data) {
  const auto it = issuer_data.find("renewal_info");
  if (it == issuer_data.end() || !it->is_object()) return std::nullopt;
  return renewal_info_from_json(it->dump());
}

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

bool stored_certificate_due(std::chrono::system_clock::time_point not_before,
                            std::chrono::system_clock::time_point not_after, std::string_view issuer_data_json,
                            std::chrono::system_clock::time_point now) {
  const auto issuer_data = nlohmann::ordered_json::parse(issuer_data_json, nullptr, /*allow_exceptions=*/false);
  if (issuer_data.is_object()) {
    if (auto ari = stored_renewal_info(issuer_data); ari && ari_due(*ari, now, now)) return true;
  }
  return renewal_due(not_before, not_after, now);
}

struct Obtainer::Impl {
  Impl(pki::Storage& s, ObtainSettings o) : storage(s), settings(std::move(o)) {
    if (!settings.clock) settings.clock = [] { return std::chrono::system_clock::now(); };
  }

  std::chrono::system_clock::time_point now() const { return settings.clock(); }

  pki::Storage& storage;
  ObtainSettings settings;
  std::vector<std::unique_ptr<Issuer>> issuers;
  std::once_flag solvers_once;
  std::vector<std::unique_ptr<Solver>> solvers;
  std::mutex withdraw_mu;        // guards solvers_started against withdraw_challenges()
  bool solvers_started = false;
  std::mutex relogin_mu;

  void note(const std::string& line) const {
    if (settings.progress) settings.progress(line);
  }

  // The listeners open when the first order needs them, so that reusing stored certificates needs
  // neither port 80 nor 443.
  const std::vector<std::unique_ptr<Solver>>& solvers_in_use() {
    std::call_once(solvers_once, [this] {
      for (const std::string& type : settings.challenges) {
        if (type == "http-01" && settings.http01_solver) {
          solvers.push_back(std::make_unique<SharedSolver>(settings.http01_solver));
        } else if (type == "http-01") {
          solvers.push_back(settings.webroot.empty()
                                ? make_http01_standalone(settings.listen_address, settings.http_port)
                                : make_http01_webroot(settings.webroot));
        } else if (type == "tls-alpn-01" && settings.tlsalpn01_solver) {
          solvers.push_back(std::make_unique<SharedSolver>(settings.tlsalpn01_solver));
        } else if (type == "tls-alpn-01") {
          solvers.push_back(make_tlsalpn01_standalone(settings.listen_address, settings.tls_port));
        } else if (type == "dns-01") {
          Dns01Options dns = settings.dns;
          if (!dns.progress) dns.progress = settings.progress;
          solvers.push_back(make_dns01_solver(settings.dns_provider, std::move(dns)));
        }
      }
      std::lock_guard lock(withdraw_mu);
      solvers_started = true;
    });
    return solvers;
  }

  // The certificate stored at `issuer` for exactly `names`, read; nullopt when there is none, it
  // covers other names, or it cannot be read (noted: a damaged file is replaced, DESIGN.md §3).
  std::optional<Found> stored_at(const Issuer& issuer, const std::vector<std::string>& names) const {
    try {
      std::optional<pki::StoredCertificate> stored =
          pki::load_certificate(storage, issuer.key, pki::keys::names_key(names));
      if (!stored) return std::nullopt;
      std::vector<std::string> want = names, have = stored->sans;
      std::sort(want.begin(), want.end());
      std::sort(have.begin(), have.end());
      if (want != have) return std::nullopt;
      Found found{std::move(*stored), nullptr, {}, nlohmann::ordered_json::object()};
      found.leaf = std::move(pki::certificates_from_pem(found.cert.chain_pem, "stored certificate").front());
      found.info = pki::describe_certificate(*found.leaf);
      if (!found.cert.issuer_data_json.empty()) {
        found.issuer_data = nlohmann::ordered_json::parse(found.cert.issuer_data_json, nullptr, false);
        if (!found.issuer_data.is_object()) found.issuer_data = nlohmann::ordered_json::object();
      }
      return found;
    } catch (const pki::Error& e) {
      note("ignoring the stored certificate for " + names.front() + ": " + e.what());
      return std::nullopt;
    }
  }

  // Due by what storage already says: the ARI time picked earlier has come, or a third of the
  // life is left. No network.
  static bool due_offline(const Found& found, std::chrono::system_clock::time_point now) {
    return stored_certificate_due(found.info.not_before, found.info.not_after, found.cert.issuer_data_json, now);
  }

  // The stored certificate for exactly `names` that is not due yet, if any.
  std::optional<ObtainOutcome> reusable(const std::vector<std::string>& names) const {
    if (settings.force) return std::nullopt;
    for (const auto& issuer : issuers) {
      const std::optional<Found> found = stored_at(*issuer, names);
      if (!found || due_offline(*found, now())) continue;
      return ObtainOutcome{names, ObtainOutcome::Status::Reused, issuer->key, ""};
    }
    return std::nullopt;
  }

  RenewalCheck check_locked(Issuer& issuer, const std::vector<std::string>& names, Found found);

  IssuedCertificate issue(Issuer& issuer, const std::vector<std::string>& names) {
    std::call_once(issuer.login, [&] { ensure_account(*issuer.client, storage, issuer.key, settings.account); });
    CertificateOrder order;
    order.names = names;
    order.key_type = settings.key_type;
    const std::optional<Found> previous = stored_at(issuer, names);
    pki::PkeyPtr kept;
    if (settings.reuse_key && previous) kept = key_of(*previous, names);
    order.reuse_key = kept.get();
    order.preferred_chain = settings.preferred_chain;
    order.profile = settings.profile;
    // A renewal names the certificate it replaces (RFC 9773 §5): the CA may then exempt it
    // from rate limits.
    if (previous) order.replaces = ari_certificate_id(*previous->leaf).value_or("");
    // Only dns-01 can prove control of a wildcard (RFC 8555 §7.1.3): other types are not tried.
    const bool wildcard = std::any_of(names.begin(), names.end(), [](const std::string& n) { return n.starts_with("*."); });
    for (const auto& solver : solvers_in_use()) {
      if (!wildcard || solver->type() == "dns-01") order.solvers.push_back(solver.get());
    }
    if (order.solvers.empty()) throw Error(names.front() + ": a wildcard needs the dns-01 challenge");
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

  // Adds a failed attempt to the CA's record for these names, with the CA's Retry-After and the
  // validations it failed. A record that cannot be written is noted, not fatal.
  void remember_failure(const Issuer& issuer, const std::string& names_key, const std::optional<FailureRecord>& before,
                        const std::exception& error) {
    const auto* validation = dynamic_cast<const ValidationError*>(&error);
    const auto* problem = dynamic_cast<const ProblemError*>(&error);
    thread_local std::mt19937_64 rng{std::random_device{}()};
    try {
      store_failure_record(storage, issuer.key, names_key,
                           with_failure(before.value_or(FailureRecord{}), now(),
                                        validation ? validation->failed_validations() : 0,
                                        problem ? problem->retry_after() : std::nullopt, error.what(), rng));
    } catch (const std::exception& e) {
      note("recording the failure failed: " + std::string(e.what()));
    }
  }

  // The private key stored with a certificate, for --reuse-key; null (noted) when it is damaged.
  pki::PkeyPtr key_of(const Found& found, const std::vector<std::string>& names) const {
    try {
      return pki::private_key_from_pem(found.cert.private_key_pem.str(), "the stored key of " + names.front());
    } catch (const pki::Error& e) {
      note("not reusing the stored key of " + names.front() + ": " + e.what());
      return nullptr;
    }
  }

  void store(const Issuer& issuer, const std::vector<std::string>& names, const IssuedCertificate& issued) {
    // The type that worked; when every authorization was still valid none ran, so keep the
    // enabled ones for the next renewal.
    std::string challenge = issued.challenge_type;
    for (size_t i = 0; challenge.empty() && i < settings.challenges.size(); ++i) {
      challenge += (i ? "," : "") + settings.challenges[i];
    }
    nlohmann::ordered_json issuer_data = {{"url", issued.certificate_url},
                                                {"ca", issuer.directory_url},
                                                {"account", issuer.client->account_url()},
                                                {"email", settings.account.email},
                                                {"challenge", challenge},
                                                {"key_type", std::string(pki::to_string(settings.key_type))},
                                                {"reuse_key", settings.reuse_key}};
    if (!settings.profile.empty()) issuer_data["profile"] = settings.profile;
    // The provider's name (never its credentials), for renewals to find it again.
    if (challenge.find("dns-01") != std::string::npos && settings.dns_provider) {
      issuer_data["dns_provider"] = std::string(settings.dns_provider->name());
    }
    pki::store_certificate(storage, issuer.key,
                           {names, issued.chain_pem, pki::private_key_to_pem(*issued.key), issuer_data.dump()});
  }
};

Obtainer::Obtainer(pki::Storage& storage, ObtainSettings settings)
    : impl_(std::make_unique<Impl>(storage, std::move(settings))) {
  for (const std::string& type : impl_->settings.challenges) {
    if (type != "http-01" && type != "tls-alpn-01" && type != "dns-01") {
      throw Error("challenge type " + type + " is not available");
    }
    if (type == "dns-01" && !impl_->settings.dns_provider) throw Error("dns-01 needs a DNS provider");
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
  const std::string names_key = pki::keys::names_key(names);
  auto fail = [&](const Issuer& issuer, const std::string& why) {
    const std::string error = issuer.directory_url + ": " + why;
    outcome.error += (outcome.error.empty() ? "" : "; ") + error;
    impl.note("obtain " + names.front() + ": " + error);
  };
  for (const auto& issuer : impl.issuers) {
    const std::optional<FailureRecord> failures = load_failure_record(impl.storage, issuer->key, names_key);
    const auto now = impl.now();
    if (const auto blocked = failures ? attempt_blocked(*failures, now) : std::nullopt; blocked && !impl.settings.retry_now) {
      fail(*issuer, *blocked + "; --force tries now");
      continue;
    }
    try {
      const IssuedCertificate issued = impl.issue(*issuer, names);
      impl.store(*issuer, names, issued);
      clear_failure_record(impl.storage, issuer->key, names_key);
      return ObtainOutcome{names, ObtainOutcome::Status::Obtained, issuer->key, ""};
    } catch (const std::exception& e) {
      fail(*issuer, e.what());
      impl.remember_failure(*issuer, names_key, failures, e);
    }
  }
  return outcome;
}

void Obtainer::withdraw_challenges() noexcept {
  // The solvers exist only once an order needed them; call_once must not start them now.
  std::lock_guard lock(impl_->withdraw_mu);
  if (!impl_->solvers_started) return;
  for (const auto& solver : impl_->solvers) solver->withdraw_all();
}

RenewalCheck Obtainer::check_renewal(const std::vector<std::string>& names) {
  for (const auto& issuer : impl_->issuers) {
    std::optional<Found> found = impl_->stored_at(*issuer, names);
    if (!found) continue;
    try {
      return impl_->check_locked(*issuer, names, std::move(*found));
    } catch (const std::exception& e) {  // the lock, or the storage itself, failed
      impl_->note("checking renewal of " + names.front() + ": " + e.what());
      const bool due = Impl::due_offline(*found, impl_->now());
      return {due ? RenewalCheck::Status::Due : RenewalCheck::Status::NotDue, issuer->key, e.what(), std::nullopt};
    }
  }
  return {RenewalCheck::Status::Missing, "", "no stored certificate", std::nullopt};
}

// The ARI half of check_renewal: refresh the CA's renewal information when stale, under the
// issuance lock (so metadata is never written over a certificate another process just stored),
// then decide.
RenewalCheck Obtainer::Impl::check_locked(Issuer& issuer, const std::vector<std::string>& names, Found found) {
  const auto now = this->now();
  RenewalCheck check{RenewalCheck::Status::NotDue, issuer.key, "", stored_renewal_info(found.issuer_data)};
  const std::optional<std::string> cert_id = ari_certificate_id(*found.leaf);
  const bool stale = !check.ari || check.ari->next_update <= now;
  if (cert_id && stale && found.info.not_after > now) {
    try {
      const pki::StorageLock lock(storage, pki::keys::issue_lock_name(pki::keys::names_key(names)), kIssueLockTimeout);
      if (std::optional<Found> again = stored_at(issuer, names)) found = std::move(*again);
      if (std::optional<RenewalInfo> fresh = issuer.client->renewal_info(*cert_id)) {
        thread_local std::mt19937_64 rng{std::random_device{}()};
        check.ari = merge_renewal_info(std::move(*fresh), check.ari, rng);
        found.issuer_data["renewal_info"] = nlohmann::ordered_json::parse(renewal_info_to_json(*check.ari));
        pki::store_certificate_metadata(storage, issuer.key, found.cert.sans, found.issuer_data.dump());
      }
    } catch (const std::exception& e) {
      note("renewal information for " + names.front() + " unavailable, using its lifetime: " + e.what());
    }
  }
  if (check.ari && ari_due(*check.ari, now, now)) {
    check.status = RenewalCheck::Status::Due;
    check.reason = "inside the CA's renewal window " + pki::format_rfc3339(check.ari->window_start) + " to " +
                   pki::format_rfc3339(check.ari->window_end) + " (picked " + pki::format_rfc3339(check.ari->selected_time) + ")";
  } else if (renewal_due(found.info.not_before, found.info.not_after, now)) {
    check.status = RenewalCheck::Status::Due;
    check.reason = "less than a third of its lifetime left (expires " + pki::format_rfc3339(found.info.not_after) + ")";
  } else {
    check.reason = check.ari ? "renews at " + pki::format_rfc3339(check.ari->selected_time) + " (the CA's window)"
                             : "renews when a third of its lifetime is left";
  }
  return check;
}

}  // namespace acmetool::acme
