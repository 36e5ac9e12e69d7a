#include "acmetool/pki/cert_storage.h"

#include <nlohmann/json.hpp>

#include "acmetool/pki/error.h"
#include "acmetool/pki/storage_keys.h"

namespace acmetool::pki {

namespace {

// CertMagic's metadata document: {"sans": [...], "issuer_data": ...}.
std::string metadata_json(const std::vector<std::string>& sans, std::string_view issuer_data_json) {
  nlohmann::ordered_json meta = {{"sans", sans}};
  if (!issuer_data_json.empty()) meta["issuer_data"] = nlohmann::ordered_json::parse(issuer_data_json);
  return meta.dump(1, '\t');
}

}  // namespace

void store_certificate(Storage& storage, std::string_view issuer_key, const StoredCertificate& cert) {
  const std::string name = keys::names_key(cert.sans);
  storage.store(keys::cert_key_file(issuer_key, name), cert.private_key_pem.str());
  storage.store(keys::cert_meta_file(issuer_key, name), metadata_json(cert.sans, cert.issuer_data_json));
  storage.store(keys::cert_file(issuer_key, name), cert.chain_pem);
}

void store_certificate_metadata(Storage& storage, std::string_view issuer_key, const std::vector<std::string>& sans,
                                std::string_view issuer_data_json) {
  storage.store(keys::cert_meta_file(issuer_key, keys::names_key(sans)), metadata_json(sans, issuer_data_json));
}

std::vector<CertificateLocation> list_certificates(const Storage& storage) {
  std::vector<CertificateLocation> out;
  for (const std::string& issuer_prefix : storage.list("certificates", false)) {
    const std::string issuer = issuer_prefix.substr(issuer_prefix.rfind('/') + 1);
    for (const std::string& site : storage.list(issuer_prefix, false)) {
      const std::string name = site.substr(site.rfind('/') + 1);
      if (storage.exists(site + "/" + name + ".crt")) out.push_back({issuer, name});
    }
  }
  return out;
}

std::optional<StoredCertificate> load_certificate(const Storage& storage, std::string_view issuer_key,
                                                  std::string_view name) {
  auto chain = storage.load(keys::cert_file(issuer_key, name));
  if (!chain) return std::nullopt;
  StoredCertificate cert;
  cert.chain_pem = std::move(*chain);
  const std::string key_file = keys::cert_key_file(issuer_key, name);
  auto key = storage.load(key_file);
  if (!key) throw Error("reading " + storage.describe() + "/" + key_file + ": missing");
  cert.private_key_pem = SecretString(std::move(*key));

  const std::string meta_file = keys::cert_meta_file(issuer_key, name);
  if (auto meta_text = storage.load(meta_file)) {
    const auto meta = nlohmann::json::parse(*meta_text, nullptr, /*allow_exceptions=*/false);
    if (!meta.is_object()) throw Error("reading " + storage.describe() + "/" + meta_file + ": not JSON");
    if (auto sans = meta.find("sans"); sans != meta.end() && sans->is_array()) {
      for (const auto& san : *sans) {
        if (san.is_string()) cert.sans.push_back(san.get<std::string>());
      }
    }
    if (auto data = meta.find("issuer_data"); data != meta.end()) cert.issuer_data_json = data->dump();
  }
  return cert;
}

}  // namespace acmetool::pki
