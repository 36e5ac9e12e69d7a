// Certificates in storage as Caddy keeps them: <name>.crt (PEM chain), <name>.key (PEM private
// key) and <name>.json ({"sans": [...], "issuer_data": ...}) under certificates/<issuer>/<name>/.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "acmetool/pki/ossl.h"
#include "acmetool/pki/storage.h"

namespace acmetool::pki {

struct StoredCertificate {
  std::vector<std::string> sans;   ///< the names the certificate covers
  std::string chain_pem;           ///< leaf first, then intermediates
  SecretString private_key_pem;
  std::string issuer_data_json;    ///< a JSON value the issuer keeps (ACME: order URL...); "" for none
};

/// Where a certificate is stored: certificates/<issuer_key>/<name>/<name>.crt.
struct CertificateLocation {
  std::string issuer_key;  ///< as stored (safe form)
  std::string name;        ///< the names_key as stored (safe form: "wildcard_.example.com")
};

/// Every stored certificate (a folder holding its .crt), by issuer then name.
std::vector<CertificateLocation> list_certificates(const Storage& storage);

/// Stores the three files under names_key(sans) for `issuer_key`: the key first and the
/// certificate last, each written atomically, so a reader that finds the .crt finds the rest.
void store_certificate(Storage& storage, std::string_view issuer_key, const StoredCertificate& cert);

/// Rewrites only the .json of the certificate stored for `sans` (atomically), e.g. to record the
/// CA's renewal information; the certificate and key files are left alone.
void store_certificate_metadata(Storage& storage, std::string_view issuer_key, const std::vector<std::string>& sans,
                                std::string_view issuer_data_json);

/// Loads the files stored under `name` (a names_key) for `issuer_key`; nullopt when the
/// certificate file is absent. Throws pki::Error naming the file when one is damaged.
std::optional<StoredCertificate> load_certificate(const Storage& storage, std::string_view issuer_key,
                                                  std::string_view name);

}  // namespace acmetool::pki
