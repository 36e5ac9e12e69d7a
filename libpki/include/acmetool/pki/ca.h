// The local certificate authority for internal names (localhost, *.internal, IPs), laid out as
// Caddy's: pki/authorities/<name>/{root,intermediate}.{crt,key}. The root (10 years) only signs
// intermediates; short-lived intermediates (7 days) sign leaves and rotate by themselves.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "acmetool/pki/key.h"
#include "acmetool/pki/storage.h"
#include "acmetool/pki/x509.h"

namespace acmetool::pki {

/// The wall clock, injectable so tests can move time.
using Clock = std::function<std::chrono::system_clock::time_point()>;

struct CaOptions {
  std::string name = "local";                            ///< storage: pki/authorities/<name>
  std::string common_name = "acmetool Local Authority";  ///< root "<cn> - <year> ECC Root"
  std::chrono::hours root_lifetime{24 * 3600};           ///< 3,600 days, as Caddy's
  std::chrono::hours intermediate_lifetime{24 * 7};
  /// An intermediate with less than this share of its lifetime left is replaced (Caddy: 20 %).
  double intermediate_renewal_ratio = 0.2;
  Clock clock = [] { return std::chrono::system_clock::now(); };
};

struct LeafRequest {
  std::vector<std::string> names;                       ///< DNS names and IP addresses; the first is the CN
  std::chrono::seconds lifetime = std::chrono::hours(12);  ///< cut to the intermediate's expiry
  KeyType key_type = KeyType::P256;
};

struct IssuedLeaf {
  PkeyPtr key;
  CertificateChain chain;  ///< leaf, then the intermediate that signed it
};

/// A loaded CA. Holds the intermediate's key; the root key is read from storage only to sign a
/// new intermediate. Not thread-safe; the storage must outlive it. Creation and rotation happen
/// under the storage lock "ca_<name>", so concurrent processes never make two roots.
class LocalCa {
 public:
  /// Loads the CA, creating it (root and intermediate) when storage has none. Never overwrites an
  /// existing root. Rotates the intermediate when it is due. `created` (optional) says whether this
  /// call made the root. Throws pki::Error naming the file when a CA file is damaged.
  static LocalCa open(Storage& storage, CaOptions options, bool* created = nullptr);

  /// Loads an existing CA (rotating a due intermediate), or nullopt when storage has none.
  static std::optional<LocalCa> load(Storage& storage, CaOptions options);

  const X509& root() const { return *root_; }
  const X509& intermediate() const { return *intermediate_; }
  const CaOptions& options() const { return options_; }

  /// Roots replaced by rotate_root(), newest first; leaves they signed verify until they expire.
  CertificateChain previous_roots() const;

  /// A new leaf for `request.names`, signed by the intermediate. Throws pki::Error for no names.
  IssuedLeaf issue(const LeafRequest& request) const;

  /// True when the intermediate has less than intermediate_renewal_ratio of its life left.
  bool intermediate_due() const;

  /// Replaces the intermediate now (new key, signed by the root).
  void rotate_intermediate();

  /// Replaces the root and the intermediate. The old root is kept under previous/ and stays
  /// trusted wherever it was installed until the user untrusts it.
  void rotate_root();

 private:
  LocalCa(Storage& storage, CaOptions options) : storage_(&storage), options_(std::move(options)) {}
  X509Ptr read_certificate(const char* file) const;
  PkeyPtr read_key(const char* file) const;
  void read_files();
  void create_root_locked();
  void create_intermediate_locked();
  void rotate_if_due();
  std::string key_of(const char* file) const;

  Storage* storage_;
  CaOptions options_;
  X509Ptr root_;
  X509Ptr intermediate_;
  PkeyPtr intermediate_key_;
};

}  // namespace acmetool::pki
