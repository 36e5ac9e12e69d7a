// cmd/certs.cpp: `acmetool certs` lists the certificates in storage, per issuer.
#include <CLI/CLI.hpp>

#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "acmetool/acme/obtainer.h"
#include "acmetool/pki/cert_storage.h"
#include "acmetool/pki/error.h"
#include "acmetool/pki/rfc3339.h"
#include "acmetool/pki/storage.h"
#include "acmetool/pki/storage_keys.h"
#include "acmetool/pki/x509.h"
#include "common.h"

namespace acmetool::cmd {
namespace {

struct CertsArgs {
  std::vector<std::string> names;  ///< only these; all when empty
};

struct StoredCert {
  std::string name;
  std::string issuer;
  std::string path;
  std::string not_after = "-";  ///< RFC 3339, or "-" when the file cannot be read
  std::string state = "damaged";  ///< valid, due (inside the renewal window), expired, damaged
};

// Fills in the expiry and the renewal state from the certificate file and its metadata (a renewal
// time the CA's ARI window set counts too).
void inspect(StoredCert& cert, const std::string& pem, std::string_view issuer_data_json) {
  try {
    const pki::CertificateInfo info = pki::describe_certificate(*pki::certificates_from_pem(pem, cert.path).front());
    const auto now = std::chrono::system_clock::now();
    cert.not_after = pki::format_rfc3339(info.not_after).substr(0, 19) + "Z";
    cert.state = info.not_after <= now ? "expired"
                 : acme::stored_certificate_due(info.not_before, info.not_after, issuer_data_json, now) ? "due"
                                                                            : "valid";
  } catch (const pki::Error&) {
    // A damaged file is listed as such; it is replaced at the next obtain or renew.
  }
}

// Walks certificates/<issuer>/<name>/<name>.crt. Directory names are already safe() forms, so a
// wildcard certificate shows as "wildcard_.example.com", as in Caddy's storage.
std::vector<StoredCert> find_certs(const pki::FileStorage& storage) {
  std::vector<StoredCert> out;
  for (const pki::CertificateLocation& where : pki::list_certificates(storage)) {
    const std::string crt = pki::keys::cert_file(where.issuer_key, where.name);
    if (const auto pem = storage.load(crt)) {
      out.push_back({where.name, where.issuer_key, storage.path_of(crt).string()});
      std::string issuer_data;
      if (const auto meta = storage.load(pki::keys::cert_meta_file(where.issuer_key, where.name))) {
        const auto doc = nlohmann::json::parse(*meta, nullptr, /*allow_exceptions=*/false);
        if (doc.is_object() && doc.contains("issuer_data")) issuer_data = doc["issuer_data"].dump();
      }
      inspect(out.back(), *pem, issuer_data);
    }
  }
  return out;
}

bool wanted(const CertsArgs& args, const StoredCert& cert) {
  if (args.names.empty()) return true;
  for (const std::string& name : args.names) {
    if (pki::keys::safe(name) == cert.name) return true;
  }
  return false;
}

int run_certs(const CertsArgs& args, Context& ctx) {
  const pki::FileStorage storage(ctx.storage_root());
  nlohmann::json json = nlohmann::json::array();
  for (const StoredCert& cert : find_certs(storage)) {
    if (!wanted(args, cert)) continue;
    if (ctx.global.json) {
      json.push_back({{"name", cert.name}, {"issuer", cert.issuer}, {"not_after", cert.not_after},
                      {"state", cert.state}, {"certificate", cert.path}});
    } else {
      std::cout << cert.name << '\t' << cert.issuer << '\t' << cert.not_after << '\t' << cert.state << '\t'
                << cert.path << '\n';
    }
  }
  if (ctx.global.json) std::cout << json.dump(2) << '\n';
  return kExitOk;
}

}  // namespace

void add_certs(CLI::App& root, Context& ctx) {
  auto args = std::make_shared<CertsArgs>();
  CLI::App* sub = root.add_subcommand("certs", "List the certificates in storage");
  sub->add_option("names", args->names, "Only these names")->type_name("NAME");
  sub->callback([args, &ctx] { ctx.exit_code = run_certs(*args, ctx); });
}

}  // namespace acmetool::cmd
