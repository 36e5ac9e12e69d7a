// cmd/certs.cpp: `acmetool certs` lists the certificates in storage, per issuer.
#include <CLI/CLI.hpp>

#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "acmetool/pki/storage.h"
#include "acmetool/pki/storage_keys.h"
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
};

// Walks certificates/<issuer>/<name>/<name>.crt. Directory names are already safe() forms, so a
// wildcard certificate shows as "wildcard_.example.com", as in Caddy's storage.
std::vector<StoredCert> find_certs(const pki::FileStorage& storage) {
  std::vector<StoredCert> out;
  for (const std::string& issuer_prefix : storage.list("certificates", false)) {
    const std::string issuer = issuer_prefix.substr(issuer_prefix.rfind('/') + 1);
    for (const std::string& site_prefix : storage.list(issuer_prefix, false)) {
      const std::string name = site_prefix.substr(site_prefix.rfind('/') + 1);
      const std::string crt = site_prefix + "/" + name + ".crt";
      if (storage.exists(crt)) out.push_back({name, issuer, storage.path_of(crt).string()});
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
      json.push_back({{"name", cert.name}, {"issuer", cert.issuer}, {"certificate", cert.path}});
    } else {
      std::cout << cert.name << '\t' << cert.issuer << '\t' << cert.path << '\n';
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
