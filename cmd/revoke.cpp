// cmd/revoke.cpp: `acmetool revoke` asks the CA that issued a certificate to revoke it (RFC 8555
// §7.6): a stored certificate by NAME, signed with the account that obtained it, or a PEM file,
// signed with the certificate's own key (--key) or a stored account.
#include <CLI/CLI.hpp>

#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "acmetool/acme/client.h"
#include "acmetool/acme/error.h"
#include "acmetool/acme/issuance.h"
#include "acmetool/pki/cert_storage.h"
#include "acmetool/pki/files.h"
#include "acmetool/pki/hostname.h"
#include "acmetool/pki/key.h"
#include "acmetool/pki/storage_keys.h"
#include "acmetool/pki/x509.h"
#include "common.h"

namespace acmetool::cmd {
namespace {

using nlohmann::json;

// How long to wait for an obtain or renew of the same certificate to finish.
constexpr auto kIssueLockTimeout = std::chrono::minutes(5);

// The RFC 5280 §5.3.1 reason codes offered; the others make no sense for a subscriber.
constexpr std::pair<std::string_view, int> kReasons[] = {
    {"unspecified", 0}, {"keyCompromise", 1}, {"superseded", 4}, {"cessationOfOperation", 5}};

struct RevokeArgs {
  std::string name;       ///< a stored certificate: "a.example" or "a.example,b.example"
  std::string cert_file;  ///< or a PEM file
  std::string key_file;   ///< the certificate's private key, to sign with (--cert only)
  std::string reason = "unspecified";
  std::string ca;  ///< empty: whichever CA the stored NAME is from; letsencrypt for --cert
  std::string ca_root;
  std::string email;
};

// The certificate to revoke and what signs the request: an account, or the certificate's key.
struct Target {
  std::string label;  ///< NAME or the file, as printed
  pki::X509Ptr certificate;
  std::string directory_url;
  std::optional<acme::StoredAccount> account;
  pki::PkeyPtr certificate_key;       ///< signs instead of an account when set
  std::string issuer_key, names_key;  ///< where a stored certificate lives; empty for a file
};

int reason_code(std::string_view name) {
  for (const auto& [reason, code] : kReasons) {
    if (reason == name) return code;
  }
  throw UsageError("revoke: unknown --reason " + std::string(name));
}

// The normalised names of a NAME argument ("a.example,b.example": one certificate for both).
// The issuer keys under which `names_key` is stored: the --ca's, or every issuer's.
std::vector<std::string> issuers_storing(const pki::Storage& storage, const RevokeArgs& args,
                                         const std::string& names_key) {
  std::vector<std::string> candidates, found;
  if (!args.ca.empty()) {
    candidates.push_back(pki::keys::acme_issuer_key(ca_directory_url(args.ca, "revoke")));
  } else {
    for (const std::string& key : storage.list("certificates", /*recursive=*/false)) {
      candidates.push_back(key.substr(key.rfind('/') + 1));
    }
  }
  for (const std::string& issuer : candidates) {
    if (storage.exists(pki::keys::cert_file(issuer, names_key))) found.push_back(issuer);
  }
  return found;
}

acme::StoredAccount stored_account(const pki::Storage& storage, const std::string& directory_url,
                                   const std::string& email) {
  auto account = acme::load_account(storage, pki::keys::acme_issuer_key(directory_url), email);
  if (!account) {
    throw acme::Error("revoke: no account stored for " +
                      (email.empty() ? "the default account" : email) + " at " + directory_url +
                      "; give --key FILE (the certificate's private key) or --email");
  }
  return std::move(*account);
}

Target stored_target(const pki::Storage& storage, const RevokeArgs& args,
                     const std::vector<std::string>& names, const Context& ctx) {
  std::string label;
  for (const std::string& name : names) label += (label.empty() ? "" : ",") + name;
  Target target{label, nullptr, "", std::nullopt, nullptr, "", pki::keys::names_key(names)};
  const std::vector<std::string> issuers = issuers_storing(storage, args, target.names_key);
  if (issuers.empty()) {
    throw acme::Error("revoke: no certificate for " + target.label + " in " + storage.describe());
  }
  if (issuers.size() > 1) {
    throw UsageError("revoke: " + target.label + " is stored for several CAs (" + issuers[0] +
                     ", " + issuers[1] + "); choose one with --ca");
  }
  target.issuer_key = issuers.front();
  const auto stored = pki::load_certificate(storage, target.issuer_key, target.names_key);
  const json data = json::parse(stored->issuer_data_json, nullptr, /*allow_exceptions=*/false);
  const auto text = [&](const char* field) {
    return data.is_object() && data.contains(field) && data[field].is_string()
               ? data[field].get<std::string>()
               : "";
  };
  target.directory_url = text("ca");
  if (!target.directory_url.starts_with("https://")) {
    throw acme::Error("revoke: " + target.label + " (issuer " + target.issuer_key +
                      ") was not obtained from an ACME CA");
  }
  target.certificate =
      std::move(pki::certificates_from_pem(stored->chain_pem, target.label).front());
  if (!args.email.empty()) {
    target.account = stored_account(storage, target.directory_url, args.email);
  } else {
    target.account = acme::find_account(storage, target.issuer_key, text("account"));
  }
  if (!target.account) {
    // RFC 8555 §7.6: the certificate's key may sign its own revocation.
    if (!ctx.global.quiet) {
      std::cerr << "acmetool: the account that obtained " << target.label
                << " is not stored; signing with the certificate's key\n";
    }
    target.certificate_key = pki::private_key_from_pem(stored->private_key_pem.str(),
                                                       "reading the key of " + target.label);
  }
  return target;
}

Target file_target(const pki::Storage& storage, const RevokeArgs& args) {
  Target target{args.cert_file,
                nullptr,
                ca_directory_url(args.ca.empty() ? "letsencrypt" : args.ca, "revoke"),
                std::nullopt,
                nullptr,
                "",
                ""};
  const auto pem = pki::read_file(args.cert_file);
  if (!pem) throw acme::Error("revoke: reading " + args.cert_file + ": no such file");
  target.certificate = std::move(pki::certificates_from_pem(*pem, args.cert_file).front());
  if (args.key_file.empty()) {
    target.account = stored_account(storage, target.directory_url, args.email);
    return target;
  }
  auto key_pem = pki::read_file(args.key_file);
  if (!key_pem) throw acme::Error("revoke: reading " + args.key_file + ": no such file");
  const pki::SecretString secret(std::move(*key_pem));
  target.certificate_key = pki::private_key_from_pem(secret.str(), "reading " + args.key_file);
  return target;
}

void revoke(Target& target, int reason, const RevokeArgs& args, const Context& ctx) {
  acme::ClientOptions options;
  options.directory_url = target.directory_url;
  options.http.ca_file = args.ca_root;
  options.http.user_agent = "acmetool/" ACMETOOL_VERSION;
  options.progress = progress_printer(ctx);
  acme::AcmeClient client(options);
  if (target.account) client.use_account(*target.account->key, target.account->registration.url);
  client.revoke(pki::certificate_to_der(*target.certificate), reason, target.certificate_key.get());
}

void print(const Target& target, const std::string& serial, const RevokeArgs& args, bool as_json) {
  if (as_json) {
    const nlohmann::ordered_json out = {{"status", "revoked"},
                                        {"certificate", target.label},
                                        {"serial", serial},
                                        {"reason", args.reason}};
    std::cout << out.dump(2) << '\n';
  } else {
    std::cout << "revoked\t" << target.label << '\t' << serial << '\n';
  }
}

void revoke_file(pki::Storage& storage, const RevokeArgs& args, int reason, const Context& ctx) {
  Target target = file_target(storage, args);
  try {
    revoke(target, reason, args, ctx);
  } catch (const acme::ProblemError& e) {
    throw acme::Error("revoke " + target.label + ": " + e.what());
  }
  print(target, pki::describe_certificate(*target.certificate).serial_hex, args, ctx.global.json);
}

void revoke_stored(pki::Storage& storage, const RevokeArgs& args, int reason, const Context& ctx) {
  const std::vector<std::string> names = certificate_names(args.name, "revoke");
  // Not while an obtain or renew replaces this certificate.
  pki::StorageLock lock(storage, pki::keys::issue_lock_name(pki::keys::names_key(names)),
                        kIssueLockTimeout);
  Target target = stored_target(storage, args, names, ctx);
  const std::string serial = pki::describe_certificate(*target.certificate).serial_hex;
  const std::string site = pki::keys::cert_site_prefix(target.issuer_key, target.names_key);
  try {
    revoke(target, reason, args, ctx);
  } catch (const acme::ProblemError& e) {
    // Revoked some other way (acmetool revoke --cert, say): as useless as if we had revoked it.
    const bool revoked = e.type() == "urn:ietf:params:acme:error:alreadyRevoked";
    if (revoked) storage.erase(site);
    throw acme::Error("revoke " + target.label + ": " + e.what() +
                      (revoked ? " (removed it from storage)" : ""));
  }
  // As Caddy does: a revoked certificate must not be served or reused, so the next obtain gets a
  // new certificate and key.
  storage.erase(site);
  print(target, serial, args, ctx.global.json);
}

int run_revoke(const RevokeArgs& args, Context& ctx) {
  if (args.name.empty() == args.cert_file.empty()) {
    throw UsageError("revoke: give either NAME or --cert FILE");
  }
  if (!args.key_file.empty() && args.cert_file.empty()) {
    throw UsageError("revoke: --key needs --cert FILE");
  }
  const int reason = reason_code(args.reason);
  pki::FileStorage storage(ctx.storage_root());
  if (args.cert_file.empty()) {
    revoke_stored(storage, args, reason, ctx);
  } else {
    revoke_file(storage, args, reason, ctx);
  }
  return kExitOk;
}

}  // namespace

void add_revoke(CLI::App& root, Context& ctx) {
  auto args = std::make_shared<RevokeArgs>();
  std::vector<std::string> reasons;
  for (const auto& [reason, code] : kReasons) reasons.emplace_back(reason);
  CLI::App* sub =
      root.add_subcommand("revoke", "Revoke a stored certificate or a certificate file");
  sub->add_option("name", args->name, "Stored certificate to revoke (a,b: the one for both names)")
      ->type_name("NAME[,NAME...]");
  sub->add_option("--cert", args->cert_file, "Certificate file (PEM) to revoke instead")
      ->type_name("FILE");
  sub->add_option("--key", args->key_file,
                  "The certificate's private key, to sign with (with --cert)")
      ->type_name("FILE");
  sub->add_option("--reason", args->reason, "RFC 5280 revocation reason")
      ->type_name("REASON")
      ->check(CLI::IsMember(reasons))
      ->capture_default_str();
  sub->add_option("--ca", args->ca,
                  "CA of the certificate: letsencrypt, letsencrypt-staging, zerossl or a URL "
                  "(default: the one NAME is stored for; letsencrypt with --cert)")
      ->type_name("CA");
  sub->add_option("--ca-root", args->ca_root,
                  "PEM roots to trust for the CA's own TLS (a private CA like pebble)")
      ->type_name("FILE");
  sub->add_option("--email", args->email, "Sign with the stored account of this email")
      ->type_name("EMAIL");
  sub->callback([args, &ctx] { ctx.exit_code = run_revoke(*args, ctx); });
}

}  // namespace acmetool::cmd
