// dns-01 (RFC 8555 §8.4): `_acme-challenge` TXT records put into DNS through a DnsProvider, at the
// end of the name's CNAME chain, and waited for until every authoritative nameserver serves them.
#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "acmetool/acme/dns_provider.h"
#include "acmetool/acme/error.h"
#include "acmetool/acme/jws.h"

namespace acmetool::acme {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::string_view kChallengeType = "dns-01";
constexpr std::string_view kLabel = "_acme-challenge.";

std::string lower(std::string_view text) {
  std::string result(text);
  std::transform(result.begin(), result.end(), result.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return result;
}


bool is_ip_address(std::string text) {
  if (text.starts_with('[') && text.ends_with(']')) text = text.substr(1, text.size() - 2);
  unsigned char buffer[16];
  return inet_pton(AF_INET, text.c_str(), buffer) == 1 ||
         inet_pton(AF_INET6, text.c_str(), buffer) == 1;
}

// Letters, digits, '-' and '_' in labels of 1 to 63 octets, at most 253 in all (RFC 1035 §2.3.4).
bool is_dns_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  std::size_t label = 0;
  for (const char c : name) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
    } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') {
      if (++label > 63) return false;
    } else {
      return false;
    }
  }
  return label > 0;
}

// The name dns-01 validates for `identifier`: lower case, without a leading "*." (a wildcard is
// validated at its base name, RFC 8555 §8.4) and without a trailing dot.
std::string base_name(std::string_view identifier) {
  std::string name = lower(identifier);
  if (is_ip_address(name)) {
    throw Error("dns-01 cannot validate the IP address " + name +
                " (RFC 8738 §7): use http-01 or tls-alpn-01 for it");
  }
  if (name.starts_with("*.")) name.erase(0, 2);
  if (name.ends_with('.')) name.pop_back();
  if (!is_dns_name(name)) {
    throw Error("dns-01: '" + std::string(identifier) + "' is not a DNS name");
  }
  return name;
}

// "120 s", "1.5 s", "0.25 s".
std::string seconds_text(milliseconds duration) {
  std::string text = std::to_string(duration.count() / 1000);
  if (const auto fraction = duration.count() % 1000; fraction != 0) {
    std::string digits = std::to_string(1000 + fraction).substr(1);
    while (digits.ends_with('0')) digits.pop_back();
    text += "." + digits;
  }
  return text + " s";
}

std::string join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string text;
  for (const std::string& part : parts) text += (text.empty() ? "" : std::string(separator)) + part;
  return text;
}

// "ns1.example.com. (192.0.2.1:53), ns2.example.com. ([2001:db8::2]:53)".
std::string names_of(const std::vector<Nameserver>& nameservers) {
  std::vector<std::string> names;
  for (const Nameserver& ns : nameservers) names.push_back(ns.name + " (" + ns.address + ")");
  return join(names, ", ");
}

class Dns01Solver final : public Solver {
 public:
  Dns01Solver(std::shared_ptr<DnsProvider> provider, Dns01Options options)
      : provider_(std::move(provider)), options_(std::move(options)) {
    if (!provider_) throw Error("dns-01: no DNS provider");
  }

  std::string_view type() const override { return kChallengeType; }

  void present(std::string_view identifier, std::string_view token,
               std::string_view key_authorization) override {
    if (!is_base64url(token)) throw Error("dns-01: the challenge token is not base64url");
    const TxtRecord record = record_for(identifier, key_authorization);
    note("adding TXT " + record.fqdn + " in zone " + record.zone + " via " +
         std::string(provider_->name()));
    provider_->present(record);
    std::optional<TxtRecord> replaced;
    {
      std::lock_guard lock(mutex_);
      Presented& slot = presented_[{std::string(identifier), std::string(token)}];
      if (!slot.record.fqdn.empty() &&
          (slot.record.fqdn != record.fqdn || slot.record.value != record.value)) {
        replaced = slot.record;
      }
      slot = Presented{record, false};
    }
    if (replaced) remove(*replaced);
  }

  // Every record not yet seen everywhere is checked in parallel, so a batch of names costs the
  // time of the slowest, not the sum.
  void wait_presented(milliseconds timeout) override {
    if (options_.skip_propagation) return;
    const std::vector<std::pair<Key, TxtRecord>> pending = unconfirmed();
    if (pending.empty()) return;
    const milliseconds delay = options_.propagation_delay >= milliseconds(0)
                                   ? options_.propagation_delay
                                   : provider_->propagation_delay();
    if (delay > milliseconds(0)) {
      note("waiting " + seconds_text(delay) +
           " before checking that the nameservers serve the records");
      std::this_thread::sleep_for(delay);
    }
    const milliseconds budget = std::min(timeout, options_.propagation_timeout);
    const Clock::time_point deadline = Clock::now() + budget;
    std::vector<std::future<std::optional<std::string>>> checks;
    for (const auto& entry : pending) {
      checks.push_back(std::async(std::launch::async, [this, &entry, deadline, budget] {
        return wait_until_served(entry.second, deadline, budget);
      }));
    }
    std::vector<std::string> failures;
    std::string failed_zone;
    for (std::size_t i = 0; i < checks.size(); ++i) {
      if (std::optional<std::string> failure = checks[i].get()) {
        failures.push_back(std::move(*failure));
        if (failed_zone.empty()) failed_zone = pending[i].second.zone;
      } else {
        confirm(pending[i].first);
      }
    }
    if (!failures.empty()) {
      throw DnsError(std::string(provider_->name()), failed_zone, join(failures, "; "));
    }
  }

  void cleanup(std::string_view identifier, std::string_view token) noexcept override {
    std::optional<TxtRecord> record;
    try {
      std::lock_guard lock(mutex_);
      if (auto it = presented_.find({std::string(identifier), std::string(token)});
          it != presented_.end()) {
        record = std::move(it->second.record);
        presented_.erase(it);
      }
    } catch (...) {
      return;  // only allocation can fail here; the record stays for a later cleanup
    }
    if (record) remove(*record);
  }

  // A process about to exit mid-order: every record still presented comes out now.
  void withdraw_all() noexcept override {
    std::map<Key, Presented> all;
    {
      std::lock_guard lock(mutex_);
      all.swap(presented_);
    }
    for (const auto& [key, presented] : all) remove(presented.record);
  }

 private:
  using Key = std::pair<std::string, std::string>;  // identifier, token

  // One presented record, and whether every authoritative nameserver has served it.
  struct Presented {
    TxtRecord record;
    bool confirmed = false;
  };

  // Where the record for `identifier` goes: `_acme-challenge.<name>.`, replaced by the override
  // domain as a whole (Caddy's dns_challenge_override_domain) or else by the end of its CNAME
  // chain, in the given zone or the zone found by SOA discovery.
  TxtRecord record_for(std::string_view identifier, std::string_view key_authorization) const {
    const std::string fqdn = std::string(kLabel) + base_name(identifier) + ".";
    TxtRecord record;
    if (!options_.override_domain.empty()) {
      record.fqdn = absolute_name(options_.override_domain);
    } else {
      record.fqdn = follow_cname(fqdn, options_.lookup);
      if (record.fqdn != fqdn) {
        note(fqdn + " is a CNAME for " + record.fqdn + ": the record goes there");
      }
    }
    record.zone =
        options_.zone.empty() ? find_zone(record.fqdn, options_.lookup) : absolute_name(options_.zone);
    if (record.zone != "." && record.fqdn != record.zone &&
        !record.fqdn.ends_with("." + record.zone)) {
      throw Error("dns-01: " + record.fqdn + " is not in zone " + record.zone + " (--dns-zone)");
    }
    record.value = dns01_txt_value(key_authorization);
    record.ttl = options_.ttl;
    return record;
  }

  std::vector<std::pair<Key, TxtRecord>> unconfirmed() const {
    std::lock_guard lock(mutex_);
    std::vector<std::pair<Key, TxtRecord>> pending;
    for (const auto& [key, presented] : presented_) {
      if (!presented.confirmed) pending.emplace_back(key, presented.record);
    }
    return pending;
  }

  void confirm(const Key& key) {
    std::lock_guard lock(mutex_);
    if (auto it = presented_.find(key); it != presented_.end()) it->second.confirmed = true;
  }

  // Polls every authoritative nameserver of the record's zone until each serves the value; the
  // nameservers still behind at `deadline`, as one line, or nullopt once all serve it.
  std::optional<std::string> wait_until_served(const TxtRecord& record, Clock::time_point deadline,
                                               milliseconds budget) const {
    const std::string what = "TXT " + record.fqdn + " \"" + record.value + "\"";
    std::vector<Nameserver> behind;
    try {
      behind = authoritative_nameservers(record.zone, options_.lookup);
    } catch (const Error& e) {
      return what + ": finding the nameservers of " + record.zone + ": " + e.what();
    }
    std::map<std::string, std::string> last_error;  // by address; each written by one task only
    for (const Nameserver& ns : behind) last_error[ns.address];
    for (bool first = true;; first = false) {
      // Every nameserver still behind is asked at once, each question bounded by the time left,
      // so a dead nameserver neither delays the others nor stretches the timeout.
      std::vector<std::future<bool>> answers;
      for (const Nameserver& ns : behind) {
        answers.push_back(std::async(std::launch::async, [&, ns] {
          return serves(ns, record, last_error.at(ns.address), deadline);
        }));
      }
      std::vector<Nameserver> still_behind;
      for (std::size_t i = 0; i < behind.size(); ++i) {
        if (!answers[i].get()) still_behind.push_back(behind[i]);
      }
      behind = std::move(still_behind);
      if (behind.empty()) return std::nullopt;
      const Clock::time_point now = Clock::now();
      if (now >= deadline) break;
      if (first) note("waiting for " + names_of(behind) + " to serve " + what);
      std::this_thread::sleep_for(
          std::min<Clock::duration>(options_.propagation_interval, deadline - now));
    }
    std::vector<std::string> lagging;
    for (const Nameserver& ns : behind) {
      const std::string& error = last_error[ns.address];
      lagging.push_back(ns.name + " (" + ns.address + ")" +
                        (error.empty() ? "" : " [" + error + "]"));
    }
    return what + ": " + join(lagging, ", ") + (behind.size() == 1 ? " does" : " do") +
           " not serve it yet after " + seconds_text(budget);
  }

  // Whether `ns` serves the record's value now, asked within what is left until `deadline` (at
  // least 100 ms); a failed query counts as no, with `error` set.
  bool serves(const Nameserver& ns, const TxtRecord& record, std::string& error, Clock::time_point deadline) const {
    DnsLookupOptions lookup = options_.lookup;
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    lookup.query_timeout = std::clamp(left, milliseconds(100), lookup.query_timeout);
    try {
      const std::vector<std::string> values = query_txt(record.fqdn, ns.address, lookup);
      error.clear();
      return std::find(values.begin(), values.end(), record.value) != values.end();
    } catch (const Error& e) {
      error = e.what();
      return false;
    }
  }

  // Takes a record out again; a failure is only reported (cleanup never throws).
  void remove(const TxtRecord& record) const noexcept {
    try {
      note("removing TXT " + record.fqdn + " from zone " + record.zone);
      provider_->cleanup(record);
    } catch (const std::exception& e) {
      note("removing TXT " + record.fqdn + " failed: " + e.what());
    } catch (...) {
      note("removing TXT " + record.fqdn + " failed");
    }
  }

  // A progress note, "dns-01: ..."; serialised, since checks run in parallel. Never throws.
  void note(const std::string& text) const noexcept {
    if (!options_.progress) return;
    try {
      std::lock_guard lock(progress_mutex_);
      options_.progress("dns-01: " + text);
    } catch (...) {
      // A note that cannot be delivered is not worth failing a challenge over.
    }
  }

  const std::shared_ptr<DnsProvider> provider_;
  const Dns01Options options_;
  mutable std::mutex mutex_;  // guards presented_
  std::map<Key, Presented> presented_;
  mutable std::mutex progress_mutex_;
};

}  // namespace

std::unique_ptr<Solver> make_dns01_solver(std::shared_ptr<DnsProvider> provider,
                                          Dns01Options options) {
  return std::make_unique<Dns01Solver>(std::move(provider), std::move(options));
}

}  // namespace acmetool::acme
