#include "acmetool/serve/cert_manager.h"

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "acmetool/acme/http.h"
#include "acmetool/pki/cert_storage.h"
#include "acmetool/pki/error.h"
#include "acmetool/pki/files.h"
#include "acmetool/pki/hostname.h"
#include "acmetool/pki/key.h"
#include "acmetool/pki/storage_keys.h"
#include "acmetool/serve/error.h"
#include "acmetool/serve/ocsp.h"

namespace acmetool::serve {
namespace {

using Clock = std::chrono::system_clock;
using Outcome = CertificateAnswer::Outcome;

constexpr auto kIssueLockTimeout = std::chrono::minutes(10);
constexpr auto kQuarantineLockTimeout = std::chrono::seconds(10);
constexpr auto kCleanEvery = std::chrono::hours(24);
constexpr auto kCleanGrace = std::chrono::hours(24);  // expired this long before it is removed
constexpr const char* kCleanLock = "storage_clean";
constexpr const char* kLastCleanKey = "last_clean.json";

std::int64_t unix_seconds(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

// A fixed set of threads running queued jobs in order. wait_idle() waits until nothing is queued
// or running. Destruction drops the jobs not started yet and waits for the running ones.
class WorkQueue {
 public:
  explicit WorkQueue(std::size_t threads) {
    for (std::size_t i = 0; i < std::max<std::size_t>(threads, 1); ++i) threads_.emplace_back([this] { run(); });
  }
  ~WorkQueue() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

  void post(std::function<void()> job) {
    {
      std::lock_guard lock(mu_);
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
  }

  bool wait_idle(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mu_);
    return idle_cv_.wait_until(lock, deadline, [&] { return jobs_.empty() && running_ == 0; });
  }

 private:
  void run() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (stopping_) {
        jobs_.clear();
        idle_cv_.notify_all();
        return;
      }
      std::function<void()> job = std::move(jobs_.front());
      jobs_.pop_front();
      ++running_;
      lock.unlock();
      job();
      lock.lock();
      --running_;
      if (jobs_.empty() && running_ == 0) idle_cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::deque<std::function<void()>> jobs_;
  std::size_t running_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace

std::string_view to_string(CertificateAnswer::Outcome outcome) {
  switch (outcome) {
    case Outcome::Cached: return "cached";
    case Outcome::Loaded: return "loaded";
    case Outcome::Obtained: return "obtained";
    case Outcome::Unknown: return "unknown";
    case Outcome::Invalid: return "invalid";
    case Outcome::Denied: return "denied";
    case Outcome::CoolingDown: return "cooling_down";
    case Outcome::Failed: return "failed";
  }
  return "unknown";
}

struct CertManager::Impl {
  using Names = std::vector<std::string>;  // a certificate's names, the managed (primary) one first
  using Waiter = std::function<void(CertificateAnswer)>;

  // One issuance (or on-demand decision) in progress for a name; handshakes for the same name
  // wait on it instead of starting another.
  struct InFlight {
    std::vector<Waiter> waiters;
  };

  struct Counters {
    std::atomic<std::uint64_t> cached{0}, loaded{0}, obtained{0}, rejected{0}, failed{0};
    std::atomic<std::uint64_t> orders_started{0}, orders_succeeded{0}, orders_failed{0}, renewals{0};
    std::atomic<std::uint64_t> ocsp_fetches{0}, ocsp_failures{0};
  };

  Impl(pki::Storage& s, CertManagerOptions o)
      : storage(s),
        options(std::move(o)),
        cache(options.on_demand_capacity),
        rejection_log([this](std::string_view line) { log(line); }) {
    if (!options.clock) options.clock = [] { return Clock::now(); };
    options.acme.clock = options.clock;
    options.acme.progress = [this](std::string_view line) { log(line); };
    options.local_ca.clock = options.clock;
    if (options.on_demand) {
      if (options.on_demand->ask_url.empty() && options.on_demand_policy == IssuerPolicy::Acme) {
        throw Error(
            "on-demand TLS with a public CA needs an 'ask' endpoint or a 'permission' module: without one, any "
            "name a client sends would be ordered");
      }
      policy = std::make_unique<OnDemandPolicy>(*options.on_demand, options.clock);
    }
    if (!options.acme.directory_urls.empty()) obtainer = std::make_unique<acme::Obtainer>(storage, options.acme);
    obtain_jobs = std::make_unique<WorkQueue>(options.max_parallel_obtains);
    lookup_jobs = std::make_unique<WorkQueue>(options.on_demand ? options.on_demand->max_concurrent_asks : 1);
  }

  ~Impl() {
    stop_loop();
    if (obtainer) obtainer->withdraw_challenges();
    // Drain the queues first (their jobs use everything below), then answer whoever still waits.
    lookup_jobs.reset();
    obtain_jobs.reset();
    std::map<std::string, InFlight> left;
    {
      std::lock_guard lock(flight_mu);
      left.swap(in_flight);
    }
    for (auto& [name, flight] : left) {
      for (auto& waiter : flight.waiters) waiter({Outcome::Failed, nullptr, "shutting down"});
    }
  }

  Clock::time_point now() const { return options.clock(); }

  static Names names_of(const ManagedName& m) {
    Names names = {m.name};
    names.insert(names.end(), m.also.begin(), m.also.end());
    return names;
  }

  void log(std::string_view line) const {
    if (options.log) options.log(line);
  }

  // ---- storage ----

  // The issuer keys a name's certificate may be stored under, in order of preference.
  std::vector<std::string> issuer_keys(IssuerPolicy policy) const {
    if (policy == IssuerPolicy::Internal) return {options.local_ca.name};  // Caddy's issuer key: the CA's name
    std::vector<std::string> keys;
    for (const std::string& url : options.acme.directory_urls) keys.push_back(pki::keys::acme_issuer_key(url));
    return keys;
  }

  // Renames a damaged certificate's files aside, after looking again under the issuance lock: a
  // writer stores the key before the certificate, so a reader racing it may see a pair that does
  // not match yet; under the lock no writer is active.
  void quarantine(const std::string& issuer_key, const Names& names, const std::string& why, bool lock_held) {
    const std::string& name = names.front();
    const std::string names_key = pki::keys::names_key(names);
    try {
      std::optional<pki::StorageLock> lock;
      if (!lock_held) lock.emplace(storage, pki::keys::issue_lock_name(names_key), kQuarantineLockTimeout);
      try {
        if (auto stored = pki::load_certificate(storage, issuer_key, names_key)) {
          make_cached_certificate(stored->chain_pem, stored->private_key_pem.str(), issuer_key,
                                  CachedCertificate::Origin::Configured);
        }
        return;  // readable now: the earlier read raced a writer
      } catch (const pki::Error&) {
      }
      const std::string suffix = ".corrupt-" + std::to_string(unix_seconds(Clock::now()));
      std::vector<std::string> moved;
      for (const std::string& key : {pki::keys::cert_file(issuer_key, names_key),
                                     pki::keys::cert_key_file(issuer_key, names_key),
                                     pki::keys::cert_meta_file(issuer_key, names_key)}) {
        std::optional<std::string> bytes = storage.load(key);
        if (!bytes) continue;
        storage.store(key + suffix, *bytes);
        storage.erase(key);
        moved.push_back(key);
      }
      std::string list;
      for (const auto& key : moved) list += (list.empty() ? "" : ", ") + key;
      log("the stored certificate for " + name + " is damaged (" + why + "); moved aside with suffix " + suffix +
          " (" + list + ") and obtaining it again");
    } catch (const std::exception& e) {
      log("the stored certificate for " + name + " is damaged (" + why + "); could not move it aside: " + e.what());
    }
  }

  // The stored certificate for `names` under the first issuer that has a readable one; damaged
  // ones are moved aside. Expired certificates are returned too: the caller decides. `lock_held`:
  // the caller holds the names' issuance lock.
  std::shared_ptr<const CachedCertificate> load_stored(const Names& names, IssuerPolicy policy,
                                                       CachedCertificate::Origin origin, bool lock_held = false) {
    const std::string names_key = pki::keys::names_key(names);
    for (const std::string& issuer_key : issuer_keys(policy)) {
      try {
        std::optional<pki::StoredCertificate> stored = pki::load_certificate(storage, issuer_key, names_key);
        if (!stored) continue;
        auto cert = make_cached_certificate(stored->chain_pem, stored->private_key_pem.str(), issuer_key, origin);
        for (const std::string& name : names) {
          if (std::find(cert->names.begin(), cert->names.end(), name) == cert->names.end()) {
            throw pki::Error("the certificate does not name " + name);
          }
        }
        return with_stored_staple(std::move(cert), names.front());
      } catch (const pki::Error& e) {
        quarantine(issuer_key, names, e.what(), lock_held);
      }
    }
    return nullptr;
  }

  // ---- issuance ----

  // Issues `name` from the local CA into storage, under the issuance lock, unless another
  // process stored a certificate that is not due while we waited.
  std::string issue_internal(const Names& names, bool force) {
    const std::string names_key = pki::keys::names_key(names);
    const pki::StorageLock lock(storage, pki::keys::issue_lock_name(names_key), kIssueLockTimeout);
    if (!force) {
      if (auto stored = load_stored(names, IssuerPolicy::Internal, CachedCertificate::Origin::Configured, true);
          stored && !acme::renewal_due(stored->not_before, stored->not_after, now())) {
        return "reused";
      }
    }
    std::lock_guard ca_lock(ca_mu);
    pki::LocalCa ca = pki::LocalCa::open(storage, options.local_ca);  // rotates a due intermediate
    pki::LeafRequest request;
    request.names = names;
    request.lifetime = options.internal_lifetime;
    request.key_type = options.acme.key_type;
    const pki::IssuedLeaf leaf = ca.issue(request);
    pki::store_certificate(storage, options.local_ca.name,
                           {names, pki::chain_to_pem(leaf.chain), pki::private_key_to_pem(*leaf.key), "{}"});
    return "obtained";
  }

  // Obtains (or renews) a certificate for `names` into storage and the cache. `force`: even when
  // the stored one is not due; `retry_now`: even while backing off (an operator's --force). Runs
  // on an obtain thread.
  CertificateAnswer issue(const Names& names, IssuerPolicy policy, CachedCertificate::Origin origin, bool force,
                          bool retry_now = false) {
    const std::string& name = names.front();
    const std::shared_ptr<const CachedCertificate> before = cache.find_any(name);
    ++counters.orders_started;
    std::string error;
    bool ordered = true;
    try {
      if (policy == IssuerPolicy::Internal) {
        ordered = issue_internal(names, force) == "obtained";
      } else if (!obtainer) {
        error = "no ACME CA is configured";
      } else {
        acme::ObtainOutcome outcome;
        if (force || retry_now) {
          acme::ObtainSettings settings = options.acme;
          settings.force = force;
          settings.retry_now = retry_now;
          outcome = acme::Obtainer(storage, settings).obtain(names);
        } else {
          outcome = obtainer->obtain(names);
        }
        if (outcome.status == acme::ObtainOutcome::Status::Failed) error = outcome.error;
        ordered = outcome.status == acme::ObtainOutcome::Status::Obtained;
      }
    } catch (const std::exception& e) {
      error = e.what();
    }
    if (!error.empty()) {
      ++counters.orders_failed;
      return {Outcome::Failed, nullptr, error};
    }
    std::shared_ptr<const CachedCertificate> cert = load_stored(names, policy, origin);
    if (!cert || cert->not_after <= now()) {
      ++counters.orders_failed;
      return {Outcome::Failed, nullptr, "the certificate stored for " + name + " cannot be loaded"};
    }
    ++counters.orders_succeeded;
    if (before && before->not_after != cert->not_after) ++counters.renewals;
    cache.put(cert);
    log(std::string(ordered ? "obtained" : "loaded") + " a certificate for " + name + " (" + cert->issuer_key +
        ", valid until " + std::to_string(unix_seconds(cert->not_after)) + ")");
    return {Outcome::Obtained, cert, ""};
  }

  // ---- in-flight work, one per name ----

  // Registers `waiter` for `name`; true when the caller must start the work (nobody else is).
  bool join(const std::string& name, Waiter waiter) {
    std::lock_guard lock(flight_mu);
    auto [it, fresh] = in_flight.try_emplace(name);
    if (waiter) it->second.waiters.push_back(std::move(waiter));
    return fresh;
  }

  void finish(const std::string& name, const CertificateAnswer& answer) {
    std::vector<Waiter> waiters;
    {
      std::lock_guard lock(flight_mu);
      auto it = in_flight.find(name);
      if (it == in_flight.end()) return;
      waiters = std::move(it->second.waiters);
      in_flight.erase(it);
    }
    for (auto& waiter : waiters) waiter(answer);
  }

  // Obtains a managed name in the background unless that is already under way.
  void obtain_managed(const ManagedName& managed, Waiter waiter, bool force = false, bool retry_now = false) {
    if (!join(managed.name, std::move(waiter))) return;
    obtain_jobs->post([this, managed, force, retry_now] {
      CertificateAnswer answer =
          issue(names_of(managed), managed.policy, CachedCertificate::Origin::Configured, force, retry_now);
      if (answer.outcome == Outcome::Failed) {
        log("obtaining a certificate for " + managed.name + " failed: " + answer.reason +
            (cache.find_any(managed.name) ? "; keeping the current certificate" : ""));
      }
      finish(managed.name, answer);
    });
  }

  // ---- on-demand ----

  // Cluster-wide refusals: instances sharing storage share denials and cooldowns through one small
  // record per name ("until <unix seconds>\nreason <text>\n" under on_demand/refused/). Written
  // after a denial by the ask endpoint (for deny_ttl, at least the cooldown) and after a failed
  // issuance (for the cooldown); read before asking, so another instance neither asks nor orders
  // for that name until then.
  std::mutex refusal_mu;
  double refusal_tokens = 100.0;
  std::chrono::steady_clock::time_point refusal_refill = std::chrono::steady_clock::now();

  static std::string refusal_key(const std::string& name) { return "on_demand/refused/" + pki::keys::safe(name); }

  std::optional<Clock::time_point> stored_refusal(const std::string& name, std::string& reason) const {
    const std::optional<std::string> text = storage.load(refusal_key(name));
    if (!text || !text->starts_with("until ")) return std::nullopt;
    const Clock::time_point until = Clock::from_time_t(static_cast<std::time_t>(std::atoll(text->c_str() + 6)));
    if (until <= now()) return std::nullopt;
    if (const auto at = text->find("\nreason "); at != std::string::npos) {
      reason = text->substr(at + 8, text->find('\n', at + 8) - (at + 8));
    }
    return until;
  }

  void store_refusal(const std::string& name, std::chrono::nanoseconds lasting, const std::string& reason) {
    if (lasting <= std::chrono::nanoseconds(0)) return;
    // A storm of new names must not turn into a storm of storage writes: at most 20 a second
    // (bursts of 100); names past that are refused by this instance only.
    {
      std::lock_guard lock(refusal_mu);
      const auto t = std::chrono::steady_clock::now();
      refusal_tokens = std::min(100.0, refusal_tokens + 20.0 * std::chrono::duration<double>(t - refusal_refill).count());
      refusal_refill = t;
      if (refusal_tokens < 1.0) return;
      refusal_tokens -= 1.0;
    }
    const auto until = now() + std::chrono::duration_cast<Clock::duration>(lasting);
    std::string line = reason;
    std::replace(line.begin(), line.end(), '\n', ' ');
    try {
      storage.store(refusal_key(name), "until " + std::to_string(unix_seconds(until)) + "\nreason " + line + "\n");
    } catch (const std::exception& e) {
      rejection_log("on-demand: recording the refusal of " + name + " in storage: " + e.what());
    }
  }

  CertificateAnswer reject(Outcome outcome, std::string reason, const std::string& name) {
    rejection_log("on-demand: " + std::string(to_string(outcome)) + " " + name + ": " + reason);
    return {outcome, nullptr, std::move(reason)};
  }

  // The on-demand stages after the cheap ones, on a lookup thread: storage, permission, budget,
  // then the issuance on an obtain thread. `renewal`: a certificate exists (renew, no budget).
  void decide_on_demand(const std::string& name, const std::string& client_ip, bool renewal) {
    // Storage first: another process sharing it may have obtained (or renewed) the name. For a
    // renewal only a certificate that is not due itself counts.
    if (auto stored = load_stored({name}, options.on_demand_policy, CachedCertificate::Origin::OnDemand);
        stored && stored->not_after > now()) {
      const bool due = acme::renewal_due(stored->not_before, stored->not_after, now());
      if (!renewal || !due) {
        cache.put(stored);  // when due, the next handshake starts its renewal
        finish(name, {Outcome::Loaded, stored, ""});
        return;
      }
    }
    if (renewal) {
      policy->forget(name);  // a renewal asks again
    } else if (std::string why; auto until = stored_refusal(name, why)) {
      policy->cool_down_until(name, *until);  // from now on refused here without storage
      finish(name, reject(Outcome::CoolingDown, "refused by another instance until " +
                                                    std::to_string(unix_seconds(*until)) + ": " + why, name));
      return;
    }
    const PermissionAnswer permission = policy->ask(name, client_ip);
    if (permission.verdict != Permission::Allowed) {
      finish(name, reject(Outcome::Denied, permission.reason, name));  // the handshake first
      const OnDemandOptions& od = policy->options();
      if (!permission.cached && (permission.verdict == Permission::Denied || permission.verdict == Permission::Error)) {
        const std::chrono::nanoseconds remembered =
            permission.verdict == Permission::Denied ? std::chrono::nanoseconds(od.deny_ttl)
                                                     : std::chrono::nanoseconds(std::min(od.deny_ttl, std::chrono::seconds(10)));
        store_refusal(name, std::max(remembered, od.cooldown), permission.reason);  // for the other instances
      }
      return;
    }
    if (!renewal && !policy->take_issuance_budget()) {
      finish(name, reject(Outcome::Denied, "over the on-demand issuance budget (interval/burst)", name));
      return;
    }
    obtain_jobs->post([this, name, renewal] {
      CertificateAnswer answer =
          issue({name}, options.on_demand_policy, CachedCertificate::Origin::OnDemand, /*force=*/false);
      const bool failed = answer.outcome == Outcome::Failed;
      if (failed) {
        policy->start_cooldown(name);
        rejection_log("on-demand: obtaining " + name + " failed: " + answer.reason);
      } else if (!renewal) {
        answer.outcome = Outcome::Obtained;
      }
      const std::string reason = answer.reason;
      finish(name, std::move(answer));
      if (failed) store_refusal(name, policy->options().cooldown, "obtaining failed: " + reason);
    });
  }

  // A cached on-demand certificate with a third of its life left: renew it in the background.
  void renew_on_demand_later(const std::string& name) {
    if (!policy || !join(name, nullptr)) return;
    lookup_jobs->post([this, name] { decide_on_demand(name, "", /*renewal=*/true); });
  }

  void count(Outcome outcome) {
    switch (outcome) {
      case Outcome::Cached: ++counters.cached; break;
      case Outcome::Loaded: ++counters.loaded; break;
      case Outcome::Obtained: ++counters.obtained; break;
      case Outcome::Failed: ++counters.failed; break;
      default: ++counters.rejected; break;
    }
  }

  void certificate_for(std::string_view server_name, std::string_view client_ip, Waiter reply) {
    const std::string name = normalise_server_name(server_name);
    const auto at = now();
    if (auto cert = cache.find(name, at)) {  // the hot path: no allocation beyond the name
      if (cert->origin == CachedCertificate::Origin::OnDemand &&
          acme::renewal_due(cert->not_before, cert->not_after, at)) {
        renew_on_demand_later(name);
      }
      count(Outcome::Cached);
      reply({Outcome::Cached, std::move(cert), ""});
      return;
    }
    Waiter done = [this, reply = std::move(reply)](CertificateAnswer answer) {
      count(answer.outcome);
      reply(std::move(answer));
    };
    if (name.empty()) return done(reject(Outcome::Unknown, "no server name", "(none)"));
    if (is_managed(name)) {
      // Configured, but its certificate is not there yet (first issuance under way, or failed):
      // wait for an issuance in flight, else there is nothing to serve.
      std::lock_guard lock(flight_mu);
      if (auto it = in_flight.find(name); it != in_flight.end()) {
        it->second.waiters.push_back(std::move(done));
        return;
      }
    }
    if (!policy) return done(reject(Outcome::Unknown, "no certificate for this name", name));
    const pki::NameQualification q = pki::qualify_name(name);
    const bool usable = q.name == name && name.find('*') == std::string::npos &&
                        (options.on_demand_policy == IssuerPolicy::Internal ? q.name_class != pki::NameClass::Invalid
                                                                            : q.name_class == pki::NameClass::Public);
    if (!usable) return done(reject(Outcome::Invalid, "not a name a certificate can be obtained for", name));
    if (!options.on_demand_hosts.empty() &&
        std::none_of(options.on_demand_hosts.begin(), options.on_demand_hosts.end(),
                     [&](const std::string& pattern) { return pki::match_wildcard(name, pattern); })) {
      return done(reject(Outcome::Unknown, "not a name of an on-demand site", name));
    }
    if (auto until = policy->cooling_down(name)) {
      return done(reject(Outcome::CoolingDown,
                         "cooling down for " +
                             std::to_string(std::chrono::duration_cast<std::chrono::seconds>(*until - at).count()) +
                             " s after a denial or failure",
                         name));
    }
    const bool expired = cache.find_any(name) != nullptr;  // cached, but no longer valid
    bool queued = false;
    {
      std::lock_guard lock(flight_mu);
      if (auto it = in_flight.find(name); it != in_flight.end()) {  // someone is already on it: wait with them
        it->second.waiters.push_back(std::move(done));
        return;
      }
      // A storm of new names must not queue without bound: past what the ask stage would let
      // wait, reject at once (below, outside the lock).
      const auto& od = *options.on_demand;
      if (pending_decisions < od.max_concurrent_asks + od.max_waiting_asks) {
        ++pending_decisions;
        in_flight[name].waiters.push_back(std::move(done));
        queued = true;
      }
    }
    if (!queued) return done(reject(Outcome::Denied, "too many on-demand decisions waiting", name));
    lookup_jobs->post([this, name, ip = std::string(client_ip), expired] {
      decide_on_demand(name, ip, expired);
      std::lock_guard lock(flight_mu);
      --pending_decisions;
    });
  }

  // ---- managed names ----

  bool is_managed(const std::string& name) const {
    std::lock_guard lock(managed_mu);
    return managed.count(name) != 0;
  }

  std::shared_ptr<const CachedCertificate> load_manual(const ManagedName& m) {
    const std::optional<std::string> chain = pki::read_file(m.cert_file);
    if (!chain) throw Error(m.cert_file.string() + ": cannot read the certificate file");
    const std::optional<std::string> key = pki::read_file(m.key_file);
    if (!key) throw Error(m.key_file.string() + ": cannot read the key file");
    try {
      return make_cached_certificate(*chain, *key, "", CachedCertificate::Origin::Manual);
    } catch (const pki::Error& e) {
      throw Error(m.cert_file.string() + ": " + e.what());
    }
  }

  static std::filesystem::file_time_type mtime_of(const std::filesystem::path& file) {
    std::error_code ec;
    return std::filesystem::last_write_time(file, ec);
  }

  void manage(std::vector<ManagedName> names) {
    std::map<std::string, ManagedName> next;
    for (ManagedName& m : names) {
      m.name = normalise_server_name(m.name);
      for (std::string& other : m.also) other = normalise_server_name(other);
      next[m.name] = std::move(m);
    }
    // Manual files first: a bad one fails the whole call before anything changes.
    std::vector<std::shared_ptr<const CachedCertificate>> manual;
    std::map<std::string, std::pair<std::filesystem::file_time_type, std::filesystem::file_time_type>> stamps;
    for (const auto& [name, m] : next) {
      if (m.policy != IssuerPolicy::Manual) continue;
      manual.push_back(load_manual(m));
      stamps[name] = {mtime_of(m.cert_file), mtime_of(m.key_file)};
    }
    std::map<std::string, ManagedName> previous;
    {
      std::lock_guard lock(managed_mu);
      previous = std::move(managed);
      managed = next;
      manual_stamps = std::move(stamps);
    }
    for (auto& cert : manual) cache.put(cert);
    // Names no longer managed leave the cache, unless another managed certificate still covers them.
    for (const auto& [name, m] : previous) {
      if (next.count(name)) continue;
      if (auto cert = cache.find_any(name); cert && cert->origin != CachedCertificate::Origin::OnDemand) {
        cache.remove({name});
      }
    }
    for (const auto& [name, m] : next) {
      if (m.policy == IssuerPolicy::Manual) continue;
      std::shared_ptr<const CachedCertificate> cert = load_stored(names_of(m), m.policy, CachedCertificate::Origin::Configured);
      if (cert && cert->not_after > now()) cache.put(cert);
      if (!cert || acme::renewal_due(cert->not_before, cert->not_after, now())) obtain_managed(m, nullptr);
    }
  }

  // ---- maintenance ----

  MaintenanceReport maintain(const MaintenanceRequest& request) {
    const std::lock_guard serial(maintain_mu);
    std::map<std::string, ManagedName> names;
    {
      std::lock_guard lock(managed_mu);
      names = managed;
    }
    using Status = MaintenanceReport::Item::Status;
    MaintenanceReport report;
    std::vector<std::future<CertificateAnswer>> waiting;  // one per item being renewed, by index
    std::vector<std::size_t> waiting_items;
    auto renew = [&](const ManagedName& m, std::string why, bool force) {
      auto done = std::make_shared<std::promise<CertificateAnswer>>();
      waiting.push_back(done->get_future());
      waiting_items.push_back(report.items.size());
      report.items.push_back({m.name, Status::Renewed, std::move(why)});
      obtain_managed(m, [done](CertificateAnswer answer) { done->set_value(std::move(answer)); }, force,
                     request.force);
    };
    for (const auto& [name, m] : names) {
      if (m.policy == IssuerPolicy::Manual) {
        reload_manual_if_changed(m);
        continue;
      }
      std::shared_ptr<const CachedCertificate> cert = cache.find_any(name);
      if (!cert || cert->names.end() == std::find(cert->names.begin(), cert->names.end(), name)) {
        renew(m, "no valid certificate", false);  // missing, expired, or only a wildcard covers it
      } else if (request.force) {
        renew(m, "forced", true);
      } else if (request.renew_within) {
        if (cert->not_after - now() < *request.renew_within) {
          renew(m, "fewer than " + std::to_string(request.renew_within->count() / 86400) + " days left", true);
        } else {
          report.items.push_back({name, Status::NotDue, "more time left than asked for"});
        }
      } else if (m.policy == IssuerPolicy::Acme && obtainer) {
        const acme::RenewalCheck check = obtainer->check_renewal(names_of(m));  // ARI when the CA offers it
        if (check.status != acme::RenewalCheck::Status::NotDue) {
          renew(m, check.reason, false);
        } else {
          report.items.push_back({name, Status::NotDue, check.reason});
        }
      } else if (acme::renewal_due(cert->not_before, cert->not_after, now())) {
        renew(m, "a third of its lifetime left", false);
      } else {
        report.items.push_back({name, Status::NotDue, "renews when a third of its lifetime is left"});
      }
    }
    // On-demand certificates still cached renew too, asking permission again.
    for (const auto& cert : cache.all()) {
      if (cert->origin != CachedCertificate::Origin::OnDemand || cert->names.empty()) continue;
      if (acme::renewal_due(cert->not_before, cert->not_after, now())) renew_on_demand_later(cert->names.front());
    }
    for (std::size_t i = 0; i < waiting.size(); ++i) {
      const CertificateAnswer answer = waiting[i].get();
      if (answer.outcome == Outcome::Failed) {
        report.items[waiting_items[i]].status = Status::Failed;
        report.items[waiting_items[i]].detail = answer.reason;
      }
    }
    if (options.ocsp_stapling) refresh_staples(names);
    if (options.clean_storage) clean_storage(names);
    return report;
  }

  void reload_manual_if_changed(const ManagedName& m) {
    const auto stamp = std::make_pair(mtime_of(m.cert_file), mtime_of(m.key_file));
    {
      std::lock_guard lock(managed_mu);
      auto it = manual_stamps.find(m.name);
      if (it != manual_stamps.end() && it->second == stamp) return;
      manual_stamps[m.name] = stamp;
    }
    try {
      cache.put(load_manual(m));
      log("reloaded the certificate files for " + m.name);
    } catch (const std::exception& e) {
      log("reloading the certificate files for " + m.name + " failed: " + e.what() + "; keeping the loaded ones");
    }
  }

  // ---- OCSP ----

  std::shared_ptr<const CachedCertificate> with_stored_staple(std::shared_ptr<const CachedCertificate> cert,
                                                              const std::string& name) {
    if (!options.ocsp_stapling || cert->chain.size() < 2) return cert;
    try {
      std::optional<std::string> der = storage.load(ocsp_storage_key(name, *cert->chain.front()));
      if (!der) return cert;
      OcspStaple staple = parse_ocsp_staple(*der, cert->chain, now());
      if (!ocsp_stapleable(staple, now())) return cert;
      remember_staple(name, staple);
      return with_staple(*cert, staple.der);
    } catch (const std::exception&) {
      return cert;  // a stale or damaged stored response: fetch a fresh one at the next pass
    }
  }

  // `cert` with `der` as its OCSP staple: a new cached certificate sharing the same X509s and key.
  static std::shared_ptr<const CachedCertificate> with_staple(const CachedCertificate& cert, std::string der) {
    auto copy = std::make_shared<CachedCertificate>();
    copy->names = cert.names;
    for (const auto& c : cert.chain) copy->chain.push_back(pki::share_certificate(*c));
    copy->key = pki::share_key(*cert.key);
    copy->not_before = cert.not_before;
    copy->not_after = cert.not_after;
    copy->issuer_key = cert.issuer_key;
    copy->ocsp_response = std::move(der);
    copy->origin = cert.origin;
    return copy;
  }

  void remember_staple(const std::string& name, const OcspStaple& staple) {
    std::lock_guard lock(ocsp_mu);
    staples[name] = staple;
  }

  void refresh_staples(const std::map<std::string, ManagedName>& names) {
    for (const auto& cert : cache.all()) {
      if (cert->chain.size() < 2 || cert->names.empty()) continue;
      if (ocsp_responder_urls(*cert->chain.front()).empty()) continue;
      const std::string& name = cert->names.front();
      {
        std::lock_guard lock(ocsp_mu);
        auto it = staples.find(name);
        if (it != staples.end() && !cert->ocsp_response.empty() && now() < ocsp_refresh_at(it->second)) continue;
      }
      ++counters.ocsp_fetches;
      try {
        if (!http) http = acme::make_http_client(acme::HttpOptions{options.acme.ca_root, options.acme.user_agent});
        const OcspStaple staple = fetch_ocsp_staple(cert->chain, *http, now());
        if (staple.status == OcspStaple::Status::Revoked) {
          const bool ours = cert->origin != CachedCertificate::Origin::Manual && names.count(name);
          log("the certificate for " + name + " is revoked (OCSP " + staple.responder_url + "); not stapling it" +
              (ours ? " and replacing the certificate" : "; replace its files"));
          if (ours) obtain_managed(names.at(name), nullptr, /*force=*/true);
          continue;
        }
        if (!ocsp_stapleable(staple, now())) throw Error("the response's status is not good");
        storage.store(ocsp_storage_key(name, *cert->chain.front()), staple.der);
        remember_staple(name, staple);
        cache.put(with_staple(*cert, staple.der));
      } catch (const std::exception& e) {
        ++counters.ocsp_failures;
        log("refreshing the OCSP response of " + name + " failed: " + e.what() + "; keeping the last good one");
      }
    }
  }

  // ---- storage cleaning ----

  // Removes certificates expired for a day whose names are neither managed nor cached, at most
  // once a day across every process sharing the storage (CertMagic's last_clean.json).
  void clean_storage(const std::map<std::string, ManagedName>& names) {
    const auto at = now();
    if (last_clean && at - *last_clean < kCleanEvery) return;
    if (!storage.try_lock(kCleanLock)) return;
    try {
      if (auto text = storage.load(kLastCleanKey)) {
        const auto json = nlohmann::json::parse(*text, nullptr, false);
        if (json.is_object() && json.contains("tls") && json["tls"].is_number_integer()) {
          const Clock::time_point previous{std::chrono::seconds(json["tls"].get<std::int64_t>())};
          if (at - previous < kCleanEvery) {
            last_clean = previous;
            storage.unlock(kCleanLock);
            return;
          }
        }
      }
      std::size_t removed = 0;
      for (const pki::CertificateLocation& location : pki::list_certificates(storage)) {
        if (names.count(location.name) || cache.find_any(location.name)) continue;
        try {
          auto stored = pki::load_certificate(storage, location.issuer_key, location.name);
          if (!stored) continue;
          const auto info =
              pki::describe_certificate(*pki::certificates_from_pem(stored->chain_pem, "certificate").front());
          if (info.not_after + kCleanGrace > at) continue;
        } catch (const pki::Error&) {
          continue;  // damaged files are for an operator to look at, not to delete
        }
        storage.erase(pki::keys::cert_site_prefix(location.issuer_key, location.name));
        ++removed;
      }
      // On-demand refusal records that have run out.
      for (const std::string& key : storage.list("on_demand/refused", false)) {
        const std::optional<std::string> text = storage.load(key);
        if (text && text->starts_with("until ") &&
            Clock::from_time_t(static_cast<std::time_t>(std::atoll(text->c_str() + 6))) > at) {
          continue;
        }
        storage.erase(key);
      }
      storage.store(kLastCleanKey, nlohmann::json{{"tls", unix_seconds(at)}}.dump());
      last_clean = at;
      if (removed) log("storage cleaning removed " + std::to_string(removed) + " expired certificate(s)");
    } catch (const std::exception& e) {
      log("storage cleaning failed: " + std::string(e.what()));
    }
    storage.unlock(kCleanLock);
  }

  // ---- the loop ----

  void start_loop() {
    std::lock_guard lock(loop_mu);
    if (loop.joinable()) return;
    loop = std::thread([this] {
      std::unique_lock lock(loop_mu);
      // The first pass runs at once: it asks the CAs for their ARI windows, which manage() did
      // not wait for.
      for (bool first = true; !stopping; first = false) {
        if (!first && loop_cv.wait_for(lock, options.maintenance_interval, [&] { return stopping; })) break;
        lock.unlock();
        try {
          for (const auto& item : maintain({}).items) {
            if (item.status == MaintenanceReport::Item::Status::Failed) log("maintenance: " + item.name + ": " + item.detail);
          }
        } catch (const std::exception& e) {
          log("maintenance failed: " + std::string(e.what()));
        }
        lock.lock();
      }
    });
  }

  void stop_loop() {
    {
      std::lock_guard lock(loop_mu);
      stopping = true;
    }
    loop_cv.notify_all();
    if (loop.joinable()) loop.join();
  }

  pki::Storage& storage;
  CertManagerOptions options;
  CertificateCache cache;
  std::unique_ptr<OnDemandPolicy> policy;
  SampledLog rejection_log;
  std::unique_ptr<acme::Obtainer> obtainer;
  std::mutex ca_mu;

  mutable std::mutex managed_mu;
  std::map<std::string, ManagedName> managed;
  std::map<std::string, std::pair<std::filesystem::file_time_type, std::filesystem::file_time_type>> manual_stamps;

  std::mutex flight_mu;
  std::map<std::string, InFlight> in_flight;
  std::size_t pending_decisions = 0;  // on-demand decisions queued or running (under flight_mu)
  std::mutex maintain_mu;             // one maintenance pass at a time

  std::mutex ocsp_mu;
  std::map<std::string, OcspStaple> staples;
  std::unique_ptr<acme::HttpClient> http;  // OCSP; used by the maintenance pass only

  std::optional<Clock::time_point> last_clean;
  Counters counters;

  std::mutex loop_mu;
  std::condition_variable loop_cv;
  bool stopping = false;
  std::thread loop;

  // Declared last: destroyed first, so their jobs never see a half-destroyed manager.
  std::unique_ptr<WorkQueue> obtain_jobs;
  std::unique_ptr<WorkQueue> lookup_jobs;
};

CertManager::CertManager(pki::Storage& storage, CertManagerOptions options)
    : impl_(std::make_unique<Impl>(storage, std::move(options))) {}

CertManager::~CertManager() = default;

void CertManager::manage(std::vector<ManagedName> names) { impl_->manage(std::move(names)); }

void CertManager::start() { impl_->start_loop(); }

MaintenanceReport CertManager::maintain(const MaintenanceRequest& request) { return impl_->maintain(request); }

void CertManager::withdraw_challenges() noexcept {
  if (impl_->obtainer) impl_->obtainer->withdraw_challenges();
}

std::size_t MaintenanceReport::count(Item::Status status) const {
  return static_cast<std::size_t>(
      std::count_if(items.begin(), items.end(), [status](const Item& item) { return item.status == status; }));
}

void CertManager::certificate_for(std::string_view server_name, std::string_view client_ip,
                                  std::function<void(CertificateAnswer)> done) {
  impl_->certificate_for(server_name, client_ip, std::move(done));
}

CertificateAnswer CertManager::certificate_for(std::string_view server_name, std::string_view client_ip) {
  auto done = std::make_shared<std::promise<CertificateAnswer>>();
  std::future<CertificateAnswer> answer = done->get_future();
  impl_->certificate_for(server_name, client_ip,
                         [done](CertificateAnswer a) { done->set_value(std::move(a)); });
  if (answer.wait_for(impl_->options.expired_renewal_wait) == std::future_status::timeout) {
    return {CertificateAnswer::Outcome::Failed, nullptr, "no certificate within the handshake's wait"};
  }
  return answer.get();
}

bool CertManager::wait_idle(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (!impl_->lookup_jobs->wait_idle(deadline) || !impl_->obtain_jobs->wait_idle(deadline)) return false;
    {
      std::lock_guard lock(impl_->flight_mu);
      if (impl_->in_flight.empty()) return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

const CertificateCache& CertManager::cache() const { return impl_->cache; }

CertManagerStats CertManager::stats() const {
  const Impl::Counters& c = impl_->counters;
  CertManagerStats s;
  s.handshakes_cached = c.cached;
  s.handshakes_loaded = c.loaded;
  s.handshakes_obtained = c.obtained;
  s.handshakes_rejected = c.rejected;
  s.handshakes_failed = c.failed;
  s.orders_started = c.orders_started;
  s.orders_succeeded = c.orders_succeeded;
  s.orders_failed = c.orders_failed;
  s.renewals = c.renewals;
  s.ocsp_fetches = c.ocsp_fetches;
  s.ocsp_failures = c.ocsp_failures;
  s.cache_size = impl_->cache.size();
  if (impl_->policy) s.on_demand = impl_->policy->stats();
  return s;
}

}  // namespace acmetool::serve
