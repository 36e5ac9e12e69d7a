// cmd/ca.cpp: `acmetool ca` manages the local certificate authority used for internal names.
#include <CLI/CLI.hpp>

#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "acmetool/caddyfile/duration.h"
#include "acmetool/pki/ca.h"
#include "acmetool/pki/cert_storage.h"
#include "acmetool/pki/error.h"
#include "acmetool/pki/files.h"
#include "acmetool/pki/hostname.h"
#include "acmetool/pki/rfc3339.h"
#include "acmetool/pki/storage_keys.h"
#include "acmetool/pki/trust.h"
#include "common.h"

namespace acmetool::cmd {
namespace {

using nlohmann::ordered_json;
using std::chrono::system_clock;

struct CaArgs {
  std::string ca_name = "local";
  std::string common_name = "acmetool Local Authority";
  std::vector<std::string> names;
  std::string lifetime = "12h";
  std::string out;
  bool root = false;
  std::string format = "pem";
};

pki::CaOptions ca_options(const CaArgs& args) {
  pki::CaOptions options;
  options.name = args.ca_name;
  options.common_name = args.common_name;
  return options;
}

pki::LocalCa load_existing(pki::Storage& storage, const CaArgs& args) {
  auto ca = pki::LocalCa::load(storage, ca_options(args));
  if (!ca) {
    throw std::runtime_error("no local CA \"" + args.ca_name + "\" in " + storage.describe() +
                             ": run 'acmetool ca init' first");
  }
  return std::move(*ca);
}

long days_left(system_clock::time_point not_after) {
  return std::chrono::floor<std::chrono::days>(not_after - system_clock::now()).count();
}

ordered_json certificate_json(const X509& cert, const std::string& path) {
  const pki::CertificateInfo info = pki::describe_certificate(cert);
  ordered_json out = {{"subject", info.subject_cn},
                      {"sha256", info.sha256_fingerprint},
                      {"not_before", pki::format_rfc3339(info.not_before)},
                      {"not_after", pki::format_rfc3339(info.not_after)},
                      {"days_left", days_left(info.not_after)}};
  if (!path.empty()) out["path"] = path;
  return out;
}

void print_certificate(const char* label, const ordered_json& cert) {
  std::cout << label << '\t' << cert["subject"].get<std::string>() << '\n'
            << "  sha256\t" << cert["sha256"].get<std::string>() << '\n'
            << "  valid\t" << cert["not_before"].get<std::string>() << " .. " << cert["not_after"].get<std::string>()
            << " (" << cert["days_left"].get<long>() << " days left)\n";
  if (cert.contains("path")) std::cout << "  path\t" << cert["path"].get<std::string>() << '\n';
}

std::string file_of(const pki::FileStorage& storage, const CaArgs& args, const char* file) {
  return storage.path_of(pki::keys::ca_prefix(args.ca_name) + "/" + file).string();
}

ordered_json ca_json(const pki::FileStorage& storage, const pki::LocalCa& ca, const CaArgs& args) {
  ordered_json out = {{"name", args.ca_name},
                      {"root", certificate_json(ca.root(), file_of(storage, args, "root.crt"))},
                      {"intermediate", certificate_json(ca.intermediate(), file_of(storage, args, "intermediate.crt"))}};
  ordered_json previous = ordered_json::array();
  for (const pki::X509Ptr& root : ca.previous_roots()) previous.push_back(certificate_json(*root, ""));
  out["previous_roots"] = previous;
  ordered_json trusted = ordered_json::array();
  for (const pki::TrustedLocation& where : pki::load_trust_record(storage, args.ca_name)) {
    trusted.push_back({{"store", pki::to_string(where.store)}, {"location", where.location}, {"sha256", where.sha256}});
  }
  out["trusted_in"] = trusted;
  return out;
}

void print_ca(const ordered_json& ca, bool json) {
  if (json) {
    std::cout << ca.dump(2) << '\n';
    return;
  }
  std::cout << "local CA \"" << ca["name"].get<std::string>() << "\"\n";
  print_certificate("root", ca["root"]);
  print_certificate("intermediate", ca["intermediate"]);
  for (const auto& previous : ca["previous_roots"]) print_certificate("previous root", previous);
  const std::string root_sha = ca["root"]["sha256"].get<std::string>();
  if (ca["trusted_in"].empty()) std::cout << "trusted in\tnowhere (run 'acmetool trust')\n";
  for (const auto& where : ca["trusted_in"]) {
    const bool current = where["sha256"] == root_sha;
    std::cout << "trusted in\t" << where["store"].get<std::string>() << '\t' << where["location"].get<std::string>()
              << (current ? "" : "\t(previous root)") << '\n';
  }
}

int run_init(const CaArgs& args, Context& ctx) {
  pki::FileStorage storage(ctx.storage_root());
  bool created = false;
  const pki::LocalCa ca = pki::LocalCa::open(storage, ca_options(args), &created);
  ordered_json out = ca_json(storage, ca, args);
  out["created"] = created;
  if (!created && !ctx.global.quiet && !ctx.global.json) {
    std::cerr << "acmetool: local CA \"" << args.ca_name << "\" exists already; left as it is\n";
  }
  print_ca(out, ctx.global.json);
  return kExitOk;
}

int run_status(const CaArgs& args, Context& ctx) {
  pki::FileStorage storage(ctx.storage_root());
  const pki::LocalCa ca = load_existing(storage, args);
  print_ca(ca_json(storage, ca, args), ctx.global.json);
  return kExitOk;
}

std::chrono::seconds parse_lifetime(const std::string& text) {
  const auto lifetime = caddyfile::parse_duration(text);
  if (!lifetime || *lifetime < std::chrono::minutes(1)) {
    throw UsageError("ca issue: --lifetime " + text + ": expected a duration of at least 1m, like 12h or 90m");
  }
  return std::chrono::duration_cast<std::chrono::seconds>(*lifetime);
}

int run_issue(const CaArgs& args, Context& ctx) {
  pki::LeafRequest request;
  for (const std::string& name : args.names) {
    for (std::string& normalised : certificate_names(name, "ca issue")) request.names.push_back(std::move(normalised));
  }
  request.lifetime = parse_lifetime(args.lifetime);
  pki::FileStorage storage(ctx.storage_root());
  const pki::LocalCa ca = pki::LocalCa::open(storage, ca_options(args));
  const pki::IssuedLeaf leaf = ca.issue(request);

  std::filesystem::path cert_path, key_path;
  if (!args.out.empty()) {
    // mkcert's convention: one file pair named after the first name.
    const std::string base = pki::keys::safe(request.names.front());
    cert_path = std::filesystem::path(args.out) / (base + ".crt");
    key_path = std::filesystem::path(args.out) / (base + ".key");
    pki::make_dirs(args.out);
    pki::write_file_atomic(key_path, pki::private_key_to_pem(*leaf.key).str(), 0600);
    pki::write_file_atomic(cert_path, pki::chain_to_pem(leaf.chain), 0644);
  } else {
    pki::StoredCertificate stored{request.names, pki::chain_to_pem(leaf.chain), pki::private_key_to_pem(*leaf.key), ""};
    pki::store_certificate(storage, args.ca_name, stored);
    const std::string name = pki::keys::names_key(request.names);
    cert_path = storage.path_of(pki::keys::cert_file(args.ca_name, name));
    key_path = storage.path_of(pki::keys::cert_key_file(args.ca_name, name));
  }
  ordered_json out = certificate_json(*leaf.chain.front(), cert_path.string());
  out["names"] = request.names;
  out["key"] = key_path.string();
  if (ctx.global.json) {
    std::cout << out.dump(2) << '\n';
  } else {
    std::cout << cert_path.string() << '\n' << key_path.string() << '\n';
  }
  return kExitOk;
}

int run_rotate(const CaArgs& args, Context& ctx) {
  pki::FileStorage storage(ctx.storage_root());
  pki::LocalCa ca = load_existing(storage, args);
  if (args.root) {
    ca.rotate_root();
    if (!ctx.global.quiet) {
      std::cerr << "acmetool: new root for \"" << args.ca_name
                << "\": run 'acmetool trust' to install it; the old root stays trusted until 'acmetool untrust'\n";
    }
  } else {
    ca.rotate_intermediate();
  }
  print_ca(ca_json(storage, ca, args), ctx.global.json);
  return kExitOk;
}

int run_export(const CaArgs& args, Context& ctx) {
  pki::FileStorage storage(ctx.storage_root());
  const pki::LocalCa ca = load_existing(storage, args);
  std::string bytes;
  if (args.format == "pem") {
    bytes = pki::certificate_to_pem(ca.root());
  } else if (args.format == "der") {
    bytes = pki::certificate_to_der(ca.root());
  } else {
    pki::CertificateChain roots;
    roots.push_back(pki::share_certificate(ca.root()));
    bytes = pki::certificates_to_pkcs12(roots, "acmetool " + args.ca_name + " root", "changeit");
  }
  if (args.out.empty() || args.out == "-") {
    std::cout.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  } else {
    pki::write_file_atomic(args.out, bytes, 0644);
  }
  return kExitOk;
}

int run_ca(const std::string& action, const CaArgs& args, Context& ctx) {
  if (action == "init") return run_init(args, ctx);
  if (action == "status") return run_status(args, ctx);
  if (action == "issue") return run_issue(args, ctx);
  if (action == "rotate") return run_rotate(args, ctx);
  return run_export(args, ctx);
}

CLI::App* add_ca_action(CLI::App& ca, const char* action, const char* help, std::shared_ptr<CaArgs> args,
                        Context& ctx) {
  CLI::App* sub = ca.add_subcommand(action, help);
  sub->callback([action, args, &ctx] { ctx.exit_code = run_ca(action, *args, ctx); });
  return sub;
}

}  // namespace

void add_ca(CLI::App& root, Context& ctx) {
  auto args = std::make_shared<CaArgs>();
  CLI::App* ca = root.add_subcommand("ca", "Manage the local certificate authority");
  ca->require_subcommand(1);
  ca->add_option("--name", args->ca_name, "CA identifier (storage: pki/authorities/NAME)")
      ->type_name("NAME")
      ->capture_default_str();

  CLI::App* init = add_ca_action(*ca, "init", "Create the root and intermediate (never overwrites a root)",
                                 args, ctx);
  init->add_option("--cn", args->common_name, "Root common name")->type_name("CN")->capture_default_str();

  add_ca_action(*ca, "status", "Show fingerprints, validity and where the root is trusted", args, ctx);

  CLI::App* issue = add_ca_action(*ca, "issue", "Issue a leaf certificate for NAME...", args, ctx);
  issue->add_option("names", args->names, "DNS names or IP addresses")->required()->type_name("NAME");
  issue->add_option("--lifetime", args->lifetime, "Leaf lifetime (Go duration: 12h, 90m)")
      ->type_name("DURATION")
      ->capture_default_str();
  issue->add_option("--out", args->out, "Directory for the certificate, chain and key")->type_name("DIR");

  CLI::App* rotate = add_ca_action(*ca, "rotate", "Renew the intermediate now", args, ctx);
  rotate->add_flag("--root", args->root, "Also replace the root (it must then be trusted again)");

  CLI::App* exporter = add_ca_action(*ca, "export", "Write the root certificate", args, ctx);
  exporter->add_option("--format", args->format, "Output format")
      ->type_name("FORMAT")
      ->check(CLI::IsMember({"pem", "der", "p12"}))
      ->capture_default_str();
  exporter->add_option("--out", args->out, "Output file (default: stdout)")->type_name("FILE");
}

}  // namespace acmetool::cmd
