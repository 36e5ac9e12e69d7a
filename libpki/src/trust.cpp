// The root to trust, the dispatch to each store, and the trust.json record.
#include "acmetool/pki/trust.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "acmetool/pki/error.h"
#include "acmetool/pki/storage.h"
#include "acmetool/pki/storage_keys.h"
#include "acmetool/pki/x509.h"
#include "trust_internal.h"

namespace acmetool::pki {
namespace {

constexpr TrustStore kStores[] = {TrustStore::System, TrustStore::Nss, TrustStore::Java};

TrustStore store_from_string(std::string_view name) {
  for (TrustStore store : kStores) {
    if (to_string(store) == name) return store;
  }
  throw Error("unknown trust store \"" + std::string(name) + "\"");
}

bool same_place(const TrustedLocation& a, const TrustEntry& b) {
  return a.store == b.store && a.location == b.location && a.name == b.name;
}

}  // namespace

std::string_view to_string(TrustStore store) {
  switch (store) {
    case TrustStore::System:
      return "system";
    case TrustStore::Nss:
      return "nss";
    case TrustStore::Java:
      return "java";
  }
  return "unknown";
}

std::string RootCertificate::entry_name() const {
  return "acmetool-" + keys::safe(ca_name) + "-" + sha256.substr(0, 16);
}

RootCertificate parse_root_certificate(std::string_view ca_name, std::string_view pem,
                                       std::filesystem::path file) {
  const std::string what =
      file.empty() ? "root certificate of CA \"" + std::string(ca_name) + "\"" : file.string();
  const CertificateChain certs = certificates_from_pem(pem, what);
  const CertificateInfo info = describe_certificate(*certs.front());
  if (!info.is_ca) throw Error(what + ": not a CA certificate (basicConstraints CA:TRUE missing)");
  RootCertificate root;
  root.ca_name = std::string(ca_name);
  root.pem = certificate_to_pem(*certs.front());
  root.common_name = info.subject_cn;
  root.sha256 = info.sha256_fingerprint;
  root.file = std::move(file);
  return root;
}

std::vector<TrustEntry> apply_trust(TrustAction action, const RootCertificate& root,
                                    const TrustOptions& options) {
  using Installer =
      std::vector<TrustEntry> (*)(TrustAction, const RootCertificate&, const TrustOptions&);
  static constexpr Installer kInstallers[] = {trust_detail::apply_system, trust_detail::apply_nss,
                                              trust_detail::apply_java};
  std::vector<TrustEntry> out;
  for (size_t i = 0; i < std::size(kStores); ++i) {
    const TrustStore store = kStores[i];
    if (std::find(options.stores.begin(), options.stores.end(), store) == options.stores.end()) {
      continue;
    }
    try {
      const std::vector<TrustEntry> entries = kInstallers[i](action, root, options);
      out.insert(out.end(), entries.begin(), entries.end());
    } catch (const Error& error) {
      // One store's trouble must not hide what the others did.
      TrustEntry e = trust_detail::make_entry(store, TrustOutcome::Failed, "", root.entry_name());
      e.reason = error.what();
      out.push_back(e);
    }
  }
  return out;
}

std::string trust_record_key(std::string_view ca_name) {
  return keys::ca_prefix(ca_name) + "/trust.json";
}

std::vector<TrustedLocation> load_trust_record(const Storage& storage, std::string_view ca_name) {
  const std::string key = trust_record_key(ca_name);
  const std::optional<std::string> text = storage.load(key);
  if (!text) return {};
  std::vector<TrustedLocation> out;
  try {
    const nlohmann::json doc = nlohmann::json::parse(*text);
    for (const nlohmann::json& item : doc.at("trusted")) {
      out.push_back({store_from_string(item.at("store").get<std::string>()),
                     item.at("location").get<std::string>(), item.at("name").get<std::string>(),
                     item.at("sha256").get<std::string>()});
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error("reading " + key + " in " + storage.describe() + ": " + e.what());
  }
  return out;
}

void record_trust(Storage& storage, TrustAction action, const RootCertificate& root,
                  const std::vector<TrustEntry>& entries) {
  std::vector<TrustedLocation> record = load_trust_record(storage, root.ca_name);
  for (const TrustEntry& e : entries) {
    if (e.outcome != TrustOutcome::Changed && e.outcome != TrustOutcome::Already) continue;
    const auto here = [&e](const TrustedLocation& l) { return same_place(l, e); };
    std::erase_if(record, here);
    if (action == TrustAction::Install) {
      record.push_back({e.store, e.location, e.name, root.sha256});
    }
  }
  const std::string key = trust_record_key(root.ca_name);
  if (record.empty()) {
    storage.erase(key);
    return;
  }
  nlohmann::json trusted = nlohmann::json::array();
  for (const TrustedLocation& l : record) {
    trusted.push_back({{"store", to_string(l.store)},
                       {"location", l.location},
                       {"name", l.name},
                       {"sha256", l.sha256}});
  }
  storage.store(key, nlohmann::json{{"trusted", trusted}}.dump(2) + "\n");
}

namespace trust_detail {

std::string root_file_argument(const RootCertificate& root) {
  return root.file.empty() ? "ROOT.crt" : root.file.string();
}

TrustEntry make_entry(TrustStore store, TrustOutcome outcome, std::string location,
                      std::string name) {
  TrustEntry e;
  e.store = store;
  e.outcome = outcome;
  e.location = std::move(location);
  e.name = std::move(name);
  return e;
}

TrustEntry fail(TrustEntry e, std::string reason,
                const std::vector<std::vector<std::string>>& commands, bool sudo) {
  e.outcome = TrustOutcome::Failed;
  e.reason = std::move(reason);
  e.command = shell_line(commands, sudo);
  return e;
}

TrustEntry apply_tool_change(TrustEntry e, TrustAction action, const ToolChange& change,
                             const TrustOptions& options) {
  const bool wanted = action == TrustAction::Install;
  if (change.present() == wanted) {
    e.outcome = TrustOutcome::Already;
    return e;
  }
  e.outcome = TrustOutcome::Changed;
  e.command = shell_line(change.shown);
  if (options.dry_run) return e;
  const ProgramResult result = run_program(change.argv, change.input, options.command_timeout);
  if (result.exit_code != 0) {
    e.reason = failure_reason(change.argv[0], result);
  } else if (change.present() != wanted) {
    e.reason = change.argv[0] + " succeeded, but " + e.location +
               (wanted ? " does not list " : " still lists ") + e.name;
  } else {
    return e;
  }
  std::string reason = std::move(e.reason);
  return fail(std::move(e), std::move(reason), change.shown, change.needs_root);
}

}  // namespace trust_detail
}  // namespace acmetool::pki
