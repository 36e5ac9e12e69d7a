#include "acmetool/serve/cert_cache.h"

#include <arpa/inet.h>
#include <openssl/x509.h>

#include <limits>
#include <mutex>

#include "acmetool/pki/error.h"
#include "acmetool/pki/key.h"

namespace acmetool::serve {

struct CertificateCache::Entry {
  std::shared_ptr<const CachedCertificate> cert;
  std::size_t indexed_names = 0;  // names in by_name_ pointing here; guarded by the exclusive lock
  // Written under the shared lock by every lookup, hence atomic; relaxed order
  // is enough for LRU.
  mutable std::atomic<std::uint64_t> last_used{0};
};

namespace {

// IP literals in the form inet_ntop writes, as describe_certificate lists them
// ("::1", not "0::1").
std::string canonical_ip(const std::string& name) {
  unsigned char bytes[16];
  char text[INET6_ADDRSTRLEN];
  const int family = name.find(':') != std::string::npos ? AF_INET6 : AF_INET;
  if (inet_pton(family, name.c_str(), bytes) != 1) return "";
  // inet_pton takes IPv4 only as the dotted quad inet_ntop writes (four parts, no leading zeros):
  // no need to write it again (it is done for every request's Host).
  if (family == AF_INET) return name;
  if (!inet_ntop(family, bytes, text, sizeof text)) return "";
  return text;
}

}  // namespace

std::string normalise_server_name(std::string_view name) {
  if (name.ends_with('.')) name.remove_suffix(1);
  std::string out(name);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  // Only an IPv6 literal can be written another way: an IPv4 one inet_pton takes is already in
  // inet_ntop's form, and a name stays as it is (this runs for every request's Host).
  if (out.find(':') == std::string::npos) return out;
  if (std::string ip = canonical_ip(out); !ip.empty()) return ip;
  return out;
}

namespace {

// "a.b.example.com" -> "*.b.example.com"; empty for a single label, an IP
// literal or a wildcard.
std::string wildcard_of(const std::string& name) {
  const std::size_t dot = name.find('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == name.size()) return "";
  if (name.starts_with("*.") || !canonical_ip(name).empty()) return "";
  return "*" + name.substr(dot);
}

}  // namespace

std::shared_ptr<const CachedCertificate> make_cached_certificate(std::string_view chain_pem, std::string_view key_pem,
                                                                 std::string issuer_key,
                                                                 CachedCertificate::Origin origin) {
  auto cert = std::make_shared<CachedCertificate>();
  cert->chain = pki::certificates_from_pem(chain_pem, "reading a certificate chain to cache");
  cert->key = pki::private_key_from_pem(key_pem, "reading a private key to cache");
  const X509& leaf = *cert->chain.front();
  const pki::CertificateInfo info = pki::describe_certificate(leaf);

  for (const auto& name : info.dns_names) cert->names.push_back(normalise_server_name(name));
  for (const auto& ip : info.ip_addresses) cert->names.push_back(normalise_server_name(ip));
  // A certificate without subjectAltName names its host in the CN only (pre-RFC
  // 2818 practice).
  if (cert->names.empty() && !info.subject_cn.empty()) cert->names.push_back(normalise_server_name(info.subject_cn));
  const std::string subject = cert->names.empty() ? info.sha256_fingerprint : cert->names.front();
  if (cert->names.empty()) throw pki::Error("caching certificate " + subject + ": it names no host");

  const EVP_PKEY* leaf_key = X509_get0_pubkey(&leaf);
  if (!leaf_key) throw pki::CryptoError("reading the public key of the certificate for " + subject);
  if (!pki::same_public_key(*leaf_key, *cert->key)) {
    throw pki::Error("caching certificate for " + subject + ": private key does not match the certificate");
  }
  cert->not_before = info.not_before;
  cert->not_after = info.not_after;
  cert->issuer_key = std::move(issuer_key);
  cert->origin = origin;
  return cert;
}

void CertificateCache::put(std::shared_ptr<const CachedCertificate> cert) {
  if (!cert) return;
  std::unique_lock lock(mutex_);
  EntryPtr& slot = entries_[cert.get()];
  if (!slot) {
    slot = std::make_shared<Entry>();
    slot->cert = cert;
    if (cert->origin == CachedCertificate::Origin::OnDemand) ++on_demand_count_;
  }
  const EntryPtr entry = slot;  // a copy: unindex_locked may rehash entries_
  entry->last_used.store(++clock_, std::memory_order_relaxed);
  for (const auto& raw : cert->names) {
    const std::string name = normalise_server_name(raw);
    auto it = by_name_.find(name);
    if (it != by_name_.end() && it->second == entry) continue;
    if (it != by_name_.end()) unindex_locked(name);
    by_name_.emplace(name, entry);
    ++entry->indexed_names;
  }
  evict_locked(entry.get());
}

std::shared_ptr<const CachedCertificate> CertificateCache::find(std::string_view server_name,
                                                                std::chrono::system_clock::time_point now) const {
  const std::string name = normalise_server_name(server_name);
  if (name.empty()) return nullptr;
  std::shared_lock lock(mutex_);
  EntryPtr entry = lookup_locked(name, true, now);
  // An expired exact certificate must not hide a valid wildcard one.
  if (!entry) {
    if (const std::string wildcard = wildcard_of(name); !wildcard.empty()) entry = lookup_locked(wildcard, true, now);
  }
  if (!entry) return nullptr;
  entry->last_used.store(clock_.fetch_add(1, std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  return entry->cert;
}

std::shared_ptr<const CachedCertificate> CertificateCache::find_any(std::string_view server_name) const {
  const std::string name = normalise_server_name(server_name);
  if (name.empty()) return nullptr;
  std::shared_lock lock(mutex_);
  EntryPtr entry = lookup_locked(name, false, {});
  if (!entry) {
    if (const std::string wildcard = wildcard_of(name); !wildcard.empty()) entry = lookup_locked(wildcard, false, {});
  }
  return entry ? entry->cert : nullptr;
}

void CertificateCache::remove(const std::vector<std::string>& names) {
  std::unique_lock lock(mutex_);
  for (const auto& name : names) unindex_locked(normalise_server_name(name));
}

std::size_t CertificateCache::size() const {
  std::shared_lock lock(mutex_);
  return entries_.size();
}

std::vector<std::shared_ptr<const CachedCertificate>> CertificateCache::all() const {
  std::shared_lock lock(mutex_);
  std::vector<std::shared_ptr<const CachedCertificate>> out;
  out.reserve(entries_.size());
  for (const auto& [ptr, entry] : entries_) out.push_back(entry->cert);
  return out;
}

CertificateCache::EntryPtr CertificateCache::lookup_locked(const std::string& name, bool valid_only,
                                                           std::chrono::system_clock::time_point now) const {
  const auto it = by_name_.find(name);
  if (it == by_name_.end()) return nullptr;
  if (valid_only && it->second->cert->not_after <= now) return nullptr;
  return it->second;
}

void CertificateCache::unindex_locked(const std::string& name) {
  const auto it = by_name_.find(name);
  if (it == by_name_.end()) return;
  const EntryPtr entry = it->second;
  by_name_.erase(it);
  if (--entry->indexed_names > 0) return;
  if (entry->cert->origin == CachedCertificate::Origin::OnDemand) --on_demand_count_;
  entries_.erase(entry->cert.get());
}

void CertificateCache::evict_locked(const Entry* keep) {
  if (on_demand_capacity_ == 0) return;
  while (on_demand_count_ > on_demand_capacity_) {
    // A linear scan: eviction happens once per on-demand issuance, which costs
    // far more.
    const Entry* victim = nullptr;
    std::uint64_t oldest = std::numeric_limits<std::uint64_t>::max();
    for (const auto& [ptr, entry] : entries_) {
      if (entry.get() == keep || entry->cert->origin != CachedCertificate::Origin::OnDemand) continue;
      const std::uint64_t used = entry->last_used.load(std::memory_order_relaxed);
      if (used < oldest) {
        oldest = used;
        victim = entry.get();
      }
    }
    if (!victim) return;
    // Copy the names first: unindexing the last one destroys the entry.
    const std::vector<std::string> names = victim->cert->names;
    for (const auto& raw : names) {
      const std::string name = normalise_server_name(raw);
      const auto it = by_name_.find(name);
      if (it != by_name_.end() && it->second.get() == victim) unindex_locked(name);
    }
  }
}

}  // namespace acmetool::serve
