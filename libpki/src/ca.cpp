#include "acmetool/pki/ca.h"

#include <openssl/x509.h>

#include <algorithm>

#include "acmetool/pki/error.h"
#include "acmetool/pki/storage_keys.h"
#include "cert_builder_internal.h"

namespace acmetool::pki {
namespace {

using std::chrono::system_clock;
using namespace std::chrono_literals;

constexpr auto kLockTimeout = 60s;

system_clock::time_point whole_seconds(system_clock::time_point t) {
  return std::chrono::floor<std::chrono::seconds>(t);
}

int year_of(system_clock::time_point t) {
  return static_cast<int>(std::chrono::year_month_day{std::chrono::floor<std::chrono::days>(t)}.year());
}

}  // namespace

std::string LocalCa::key_of(const char* file) const { return keys::ca_prefix(options_.name) + "/" + file; }

LocalCa LocalCa::open(Storage& storage, CaOptions options, bool* created) {
  if (created) *created = false;
  if (auto existing = load(storage, options)) return std::move(*existing);

  LocalCa ca(storage, std::move(options));
  StorageLock lock(storage, "ca_" + ca.options_.name, kLockTimeout);
  // Another process may have created it while we waited for the lock.
  if (!storage.exists(ca.key_of("root.crt"))) {
    ca.create_root_locked();
    if (created) *created = true;
  } else {
    ca.root_ = ca.read_certificate("root.crt");
  }
  if (!storage.exists(ca.key_of("intermediate.crt"))) ca.create_intermediate_locked();
  ca.read_files();
  return ca;
}

std::optional<LocalCa> LocalCa::load(Storage& storage, CaOptions options) {
  LocalCa ca(storage, std::move(options));
  if (!storage.exists(ca.key_of("root.crt")) || !storage.exists(ca.key_of("intermediate.crt"))) {
    return std::nullopt;
  }
  ca.read_files();
  ca.rotate_if_due();
  return ca;
}

X509Ptr LocalCa::read_certificate(const char* file) const {
  const std::string key = key_of(file);
  const std::string where = "reading " + storage_->describe() + "/" + key;
  auto pem = storage_->load(key);
  if (!pem) throw Error(where + ": missing");
  return std::move(certificates_from_pem(*pem, where).front());
}

PkeyPtr LocalCa::read_key(const char* file) const {
  const std::string key = key_of(file);
  const std::string where = "reading " + storage_->describe() + "/" + key;
  auto pem = storage_->load(key);
  if (!pem) throw Error(where + ": missing");
  const SecretString secret(std::move(*pem));
  return private_key_from_pem(secret.str(), where);
}

void LocalCa::read_files() {
  root_ = read_certificate("root.crt");
  intermediate_ = read_certificate("intermediate.crt");
  intermediate_key_ = read_key("intermediate.key");
  // A key that does not belong to the certificate would sign leaves nobody can verify.
  if (!same_public_key(*intermediate_key_, *X509_get0_pubkey(intermediate_.get()))) {
    throw Error("reading " + storage_->describe() + "/" + key_of("intermediate.key") +
                ": does not match intermediate.crt");
  }
}

void LocalCa::create_root_locked() {
  const auto now = whole_seconds(options_.clock());
  PkeyPtr root_key = generate_key(KeyType::P256);
  CertificateSpec spec;
  spec.subject_cn = options_.common_name + " - " + std::to_string(year_of(now)) + " ECC Root";
  spec.is_ca = true;
  spec.path_length = 1;  // root -> intermediate -> leaf, no deeper: the root cannot mint sub-CAs
  spec.not_before = now;
  spec.not_after = now + options_.root_lifetime;
  X509Ptr root = build_certificate(spec, *root_key, nullptr, *root_key);
  storage_->store(key_of("root.key"), private_key_to_pem(*root_key).str());
  storage_->store(key_of("root.crt"), certificate_to_pem(*root));
  root_ = std::move(root);
}

void LocalCa::create_intermediate_locked() {
  // The root key lives only for this signature.
  const PkeyPtr root_key = read_key("root.key");

  const auto now = whole_seconds(options_.clock());
  PkeyPtr key = generate_key(KeyType::P256);
  CertificateSpec spec;
  spec.subject_cn = options_.common_name + " - ECC Intermediate";
  spec.is_ca = true;
  spec.path_length = 0;
  spec.not_before = now;
  spec.not_after = std::min(now + options_.intermediate_lifetime, describe_certificate(*root_).not_after);
  X509Ptr intermediate = build_certificate(spec, *key, root_.get(), *root_key);
  storage_->store(key_of("intermediate.key"), private_key_to_pem(*key).str());
  storage_->store(key_of("intermediate.crt"), certificate_to_pem(*intermediate));
  intermediate_ = std::move(intermediate);
  intermediate_key_ = std::move(key);
}

bool LocalCa::intermediate_due() const {
  const CertificateInfo info = describe_certificate(*intermediate_);
  const auto lifetime = info.not_after - info.not_before;
  const auto remaining = info.not_after - options_.clock();
  return remaining < std::chrono::duration_cast<system_clock::duration>(lifetime * options_.intermediate_renewal_ratio);
}

void LocalCa::rotate_if_due() {
  if (!intermediate_due()) return;
  StorageLock lock(*storage_, "ca_" + options_.name, kLockTimeout);
  // Another process may have rotated it while we waited for the lock.
  read_files();
  if (intermediate_due()) create_intermediate_locked();
}

void LocalCa::rotate_intermediate() {
  StorageLock lock(*storage_, "ca_" + options_.name, kLockTimeout);
  create_intermediate_locked();
}

void LocalCa::rotate_root() {
  StorageLock lock(*storage_, "ca_" + options_.name, kLockTimeout);
  const CertificateInfo old_root = describe_certificate(*root_);
  storage_->store(key_of("previous/root-") + old_root.sha256_fingerprint.substr(0, 16) + ".crt",
                  certificate_to_pem(*root_));
  create_root_locked();
  create_intermediate_locked();
}

CertificateChain LocalCa::previous_roots() const {
  std::vector<std::pair<system_clock::time_point, X509Ptr>> found;
  for (const std::string& key : storage_->list(key_of("previous"), false)) {
    auto pem = storage_->load(key);
    if (!pem) continue;
    X509Ptr cert = std::move(certificates_from_pem(*pem, "reading " + storage_->describe() + "/" + key).front());
    found.emplace_back(describe_certificate(*cert).not_before, std::move(cert));
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  CertificateChain out;
  for (auto& [when, cert] : found) out.push_back(std::move(cert));
  return out;
}

IssuedLeaf LocalCa::issue(const LeafRequest& request) const {
  if (request.names.empty()) throw Error("issuing a certificate: no names given");
  const auto now = whole_seconds(options_.clock());
  IssuedLeaf leaf;
  leaf.key = generate_key(request.key_type);
  CertificateSpec spec;
  // A CN longer than 64 bytes is not allowed (RFC 5280 ub-common-name); leave the subject empty then.
  spec.subject_cn = request.names.front().size() <= 64 ? request.names.front() : "";
  spec.names = request.names;
  spec.not_before = now;
  spec.not_after = std::min(now + request.lifetime, describe_certificate(*intermediate_).not_after);
  leaf.chain.push_back(build_certificate(spec, *leaf.key, intermediate_.get(), *intermediate_key_));
  leaf.chain.push_back(share_certificate(*intermediate_));
  return leaf;
}

}  // namespace acmetool::pki
