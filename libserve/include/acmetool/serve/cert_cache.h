// The certificate cache (issue 7): every certificate `serve` may present, found
// by the name a TLS client asks for. Read-mostly: a handshake takes only a
// shared lock; certificates are immutable and shared, so a renewal swaps the
// pointer and readers never see a half-updated certificate.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "acmetool/pki/ossl.h"
#include "acmetool/pki/x509.h"

namespace acmetool::serve {

/// One certificate ready to serve. Immutable once cached: share it as
/// `std::shared_ptr<const CachedCertificate>`, never change it in place.
struct CachedCertificate {
  /// Where the certificate came from; decides whether the cache may evict it.
  enum class Origin {
    Configured,  ///< a name from the config, managed by us: never evicted
    OnDemand,    ///< obtained during a handshake (on-demand TLS): evicted least
                 ///< recently used first
    Manual,      ///< `tls cert key` files the operator supplies: never evicted,
                 ///< never renewed by us
  };

  /// The subjectAltNames it is indexed under: DNS names lower-case (possibly
  /// "*.example.com"), then IP literals in inet_ntop form ("10.0.0.1", "::1").
  /// The subject CN when it has no SAN.
  std::vector<std::string> names;
  pki::CertificateChain chain;                       ///< leaf first, then intermediates
  pki::PkeyPtr key;                                  ///< the leaf's private key
  std::chrono::system_clock::time_point not_before;  ///< the leaf's validity
  std::chrono::system_clock::time_point not_after;
  std::string issuer_key;     ///< which issuer obtained it (a storage key), empty
                              ///< for Manual
  std::string ocsp_response;  ///< DER OCSP response to staple; empty when there is none
  Origin origin = Origin::Configured;
};

/// A name as the cache and the on-demand checks compare it: ASCII lower case, one trailing dot
/// removed, IP literals in inet_ntop form ("::0001" -> "::1").
std::string normalise_server_name(std::string_view name);

/// Parses a PEM chain (leaf first) and its PEM private key into a certificate
/// to cache; names and validity come from the leaf. Throws pki::CryptoError
/// when either PEM holds nothing usable, and pki::Error ("private key does not
/// match the certificate for example.com") when the key is not the leaf's, or
/// when the leaf names nothing.
std::shared_ptr<const CachedCertificate> make_cached_certificate(std::string_view chain_pem, std::string_view key_pem,
                                                                 std::string issuer_key,
                                                                 CachedCertificate::Origin origin);

/// Name -> certificate, with exact and one-label wildcard lookup. All members
/// are thread-safe: find() and find_any() take a shared lock only (find()'s LRU
/// stamp is an atomic), put() and remove() an exclusive one.
class CertificateCache {
 public:
  /// `on_demand_capacity` bounds how many distinct OnDemand certificates are
  /// kept; 0 = unbounded. Configured and Manual certificates never count
  /// against it.
  explicit CertificateCache(std::size_t on_demand_capacity = 0) : on_demand_capacity_(on_demand_capacity) {}
  CertificateCache(const CertificateCache&) = delete;
  CertificateCache& operator=(const CertificateCache&) = delete;

  /// Indexes `cert` under each of its names, replacing whatever was cached
  /// under them: a reader sees the old certificate or the new one, never
  /// neither. A replaced certificate stays under those of its names `cert` does
  /// not have, and leaves the cache when none remain. Then, while more OnDemand
  /// certificates are cached than the capacity, drops the least recently used
  /// one (never `cert` itself). A null `cert` is ignored.
  void put(std::shared_ptr<const CachedCertificate> cert);

  /// The certificate to present for `server_name` (SNI or a local IP address)
  /// at `now`, or nullptr. The name is lower-cased (ASCII) and one trailing dot
  /// removed; then the exact name is tried, then the wildcard one label up
  /// ("a.b.example.com" -> "*.b.example.com" only; a single-label name or an IP
  /// literal has none). A certificate with not_after <= now is never returned —
  /// the wall clock is checked on every lookup, so a stalled renewal timer
  /// cannot make us serve an expired certificate — but it stays cached (see
  /// find_any); an expired exact match falls through to a valid wildcard. Marks
  /// the result used.
  std::shared_ptr<const CachedCertificate> find(std::string_view server_name,
                                                std::chrono::system_clock::time_point now) const;

  /// As find(), whatever the certificate's validity, and without marking it
  /// used: for renewal and maintenance, which must not keep an idle on-demand
  /// certificate from eviction. and maintenance, which must not keep an idle
  /// on-demand certificate from eviction.
  std::shared_ptr<const CachedCertificate> find_any(std::string_view server_name) const;

  /// Unindexes `names` (normalised as by find()); a certificate left with no
  /// name leaves the cache.
  void remove(const std::vector<std::string>& names);

  /// The number of distinct certificates cached.
  std::size_t size() const;

  /// A snapshot of every distinct certificate, in no particular order, for the
  /// maintenance loop.
  std::vector<std::shared_ptr<const CachedCertificate>> all() const;

 private:
  struct Entry;
  using EntryPtr = std::shared_ptr<Entry>;

  EntryPtr lookup_locked(const std::string& name, bool valid_only, std::chrono::system_clock::time_point now) const;
  void unindex_locked(const std::string& name);
  void evict_locked(const Entry* keep);

  const std::size_t on_demand_capacity_;
  mutable std::shared_mutex mutex_;
  std::unordered_map<std::string, EntryPtr> by_name_;               ///< normalised name -> entry
  std::unordered_map<const CachedCertificate*, EntryPtr> entries_;  ///< distinct certificates
  std::size_t on_demand_count_ = 0;
  mutable std::atomic<std::uint64_t> clock_{0};  ///< LRU ticks; larger = more recently used
};

}  // namespace acmetool::serve
