// cmd/renew.cpp: `acmetool renew` renews stored certificates that are inside their renewal window:
// ACME certificates from the CA, with the settings recorded when they were obtained (flags
// override them), and local-CA certificates from the local CA.
#include <CLI/CLI.hpp>

#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "acmetool/acme/obtainer.h"
#include "acmetool/pki/ca.h"
#include "acmetool/pki/cert_storage.h"
#include "acmetool/pki/error.h"
#include "acmetool/pki/hostname.h"
#include "acmetool/pki/storage_keys.h"
#include "acmetool/pki/x509.h"
#include "common.h"
#include "dns_flags.h"
#include "interrupt.h"

namespace acmetool::cmd {
namespace {

using nlohmann::json;

struct RenewArgs {
  std::vector<std::string> names;
  bool all = false;
  bool force = false;
  int days = 0;  ///< renew when fewer days are left; 0: the last third of the lifetime
  std::vector<std::string> cas;          ///< overrides the recorded CA
  std::string ca_root;
  std::vector<std::string> challenges;   ///< overrides the recorded challenge
  int http_port = 80;
  int tls_port = 443;
  std::string webroot;
  DnsArgs dns;
};

// A certificate found in storage, with what its issuer_data recorded.
struct Stored {
  std::string issuer_key;
  std::string folder;  ///< names_key as stored (safe form)
  std::vector<std::string> sans;
  pki::CertificateInfo info;
  json issuer_data;
};

// A certificate that cannot be read is reported by its folder, with the reason.
struct Damaged {
  pki::CertificateLocation where;
  std::string error;
};

std::vector<Stored> stored_certificates(const pki::FileStorage& storage, std::vector<Damaged>& damaged) {
  std::vector<Stored> out;
  for (const pki::CertificateLocation& where : pki::list_certificates(storage)) {
    try {
      const auto cert = pki::load_certificate(storage, where.issuer_key, where.name);
      if (!cert) continue;
      Stored s{where.issuer_key, where.name, cert->sans, {}, json::object()};
      s.info = pki::describe_certificate(*pki::certificates_from_pem(cert->chain_pem, where.name).front());
      if (s.sans.empty()) s.sans = s.info.dns_names;
      if (!cert->issuer_data_json.empty()) s.issuer_data = json::parse(cert->issuer_data_json, nullptr, false);
      out.push_back(std::move(s));
    } catch (const pki::Error& e) {
      damaged.push_back({where, e.what()});
    }
  }
  return out;
}

bool selected(const RenewArgs& args, const Stored& cert) {
  if (args.all) return true;
  for (const std::string& name : args.names) {
    const std::string wanted = pki::qualify_name(name).name;
    if (pki::keys::safe(wanted) == cert.folder) return true;
    for (const std::string& san : cert.sans) {
      if (san == wanted) return true;
    }
  }
  return false;
}

// Due by the flags alone: --force, or --days. nullopt when neither decides (then the
// certificate's own rule does: ARI, or a third of its lifetime).
std::optional<bool> due_by_flags(const RenewArgs& args, const Stored& cert) {
  if (args.force) return true;
  if (args.days > 0) return cert.info.not_after - std::chrono::system_clock::now() < std::chrono::days(args.days);
  return std::nullopt;
}


acme::ObtainSettings acme_settings(const Stored& cert, const RenewArgs& args, const Context& ctx) {
  acme::ObtainSettings settings;
  if (!args.cas.empty()) {
    for (const std::string& ca : args.cas) settings.directory_urls.push_back(acme::directory_url_for(ca));
  } else {
    settings.directory_urls = {cert.issuer_data.value("ca", "")};
  }
  settings.ca_root = args.ca_root;
  settings.account.email = cert.issuer_data.value("email", "");
  const std::string recorded = cert.issuer_data.value("challenge", "");
  if (!args.challenges.empty()) {
    settings.challenges = args.challenges;
  } else if (!args.dns.provider.empty()) {
    settings.challenges = {"dns-01"};
  } else if (!recorded.empty()) {
    settings.challenges.clear();  // "http-01" or "http-01,tls-alpn-01"
    for (size_t start = 0; start <= recorded.size();) {
      const size_t comma = std::min(recorded.find(',', start), recorded.size());
      settings.challenges.push_back(recorded.substr(start, comma - start));
      start = comma + 1;
    }
  }
  settings.http_port = args.http_port;
  settings.tls_port = args.tls_port;
  settings.webroot = args.webroot;
  settings.key_type = pki::parse_key_type(cert.issuer_data.value("key_type", "p256")).value_or(pki::KeyType::P256);
  settings.force = true;  // due was decided here
  settings.retry_now = args.force;
  settings.reuse_key = cert.issuer_data.value("reuse_key", false);
  settings.profile = cert.issuer_data.value("profile", "");
  settings.user_agent = "acmetool/" ACMETOOL_VERSION;
  settings.progress = progress_printer(ctx);
  apply_dns_flags(args.dns, cert.issuer_data.value("dns_provider", ""), settings, "renew");
  return settings;
}

// What became of one certificate: "not-due", "renewed" or "failed", and the reason or error.
struct Result {
  std::string status;
  std::string reason;
};

// An ACME certificate: due by the flags, else by the CA's renewal window (ARI, fetched when
// stale) or a third of its lifetime; renewed from its CA (or --ca) when due.
Result renew_acme(pki::FileStorage& storage, const Stored& cert, const RenewArgs& args, const Context& ctx) {
  acme::Obtainer obtainer(storage, acme_settings(cert, args, ctx));
  Result result{"not-due", ""};
  if (const std::optional<bool> due = due_by_flags(args, cert)) {
    if (!*due) return result;
    result.reason = args.force ? "forced" : "fewer than " + std::to_string(args.days) + " days left";
  } else {
    const acme::RenewalCheck check = obtainer.check_renewal(cert.sans);
    result.reason = check.reason;
    if (check.status != acme::RenewalCheck::Status::Due) return result;
  }
  // Interrupted mid-order: DNS records and webroot files presented so far are taken back.
  const InterruptGuard guard([&obtainer] { obtainer.withdraw_challenges(); });
  const acme::ObtainOutcome outcome = obtainer.obtain(cert.sans);
  if (outcome.status == acme::ObtainOutcome::Status::Failed) return {"failed", outcome.error};
  return {"renewed", result.reason};
}

Result renew_local(pki::FileStorage& storage, const Stored& cert, const RenewArgs& args) {
  const auto now = std::chrono::system_clock::now();
  if (!due_by_flags(args, cert).value_or(acme::renewal_due(cert.info.not_before, cert.info.not_after, now))) {
    return {"not-due", "renews when a third of its lifetime is left"};
  }
  const pki::LocalCa ca = pki::LocalCa::open(storage, {.name = cert.issuer_key});
  const auto lifetime = std::chrono::duration_cast<std::chrono::seconds>(cert.info.not_after - cert.info.not_before);
  const pki::IssuedLeaf leaf = ca.issue({cert.sans, lifetime});
  pki::store_certificate(storage, cert.issuer_key,
                         {cert.sans, pki::chain_to_pem(leaf.chain), pki::private_key_to_pem(*leaf.key), ""});
  return {"renewed", ""};
}

int run_renew(const RenewArgs& args, Context& ctx) {
  if (args.names.empty() && !args.all) throw UsageError("renew: name a certificate or pass --all");
  pki::FileStorage storage(ctx.storage_root());
  json rows = json::array();
  int failed = 0, done = 0;
  std::vector<Damaged> damaged;
  for (const Stored& cert : stored_certificates(storage, damaged)) {
    if (!selected(args, cert)) continue;
    Result result;
    try {
      result = cert.issuer_data.contains("ca") ? renew_acme(storage, cert, args, ctx) : renew_local(storage, cert, args);
    } catch (const std::exception& e) {
      result = {"failed", e.what()};
    }
    const std::string& status = result.status;
    const std::string detail =
        status == "failed" ? result.reason : storage.path_of(pki::keys::cert_file(cert.issuer_key, cert.folder)).string();
    status == "failed" ? ++failed : ++done;
    std::string names;
    for (const std::string& n : cert.sans) names += (names.empty() ? "" : ",") + n;
    if (ctx.global.json) {
      json row = {{"names", cert.sans}, {"issuer", cert.issuer_key}, {"status", status},
                  {status == "failed" ? "error" : "certificate", detail}};
      if (status != "failed" && !result.reason.empty()) row["reason"] = result.reason;
      rows.push_back(std::move(row));
    } else {
      std::cout << status << '\t' << names << '\t' << detail << '\n';
    }
  }
  for (const Damaged& d : damaged) {
    if (!args.all && std::find(args.names.begin(), args.names.end(), d.where.name) == args.names.end()) continue;
    ++failed;
    if (ctx.global.json) {
      rows.push_back({{"names", {d.where.name}}, {"issuer", d.where.issuer_key}, {"status", "failed"}, {"error", d.error}});
    } else {
      std::cout << "failed\t" << d.where.name << '\t' << d.error << '\n';
    }
  }
  if (ctx.global.json) std::cout << rows.dump(2) << '\n';
  if (failed + done == 0 && !args.names.empty()) throw std::runtime_error("renew: no stored certificate for the names given");
  if (failed == 0) return kExitOk;
  return done == 0 ? kExitFailed : kExitPartial;
}

}  // namespace

void add_renew(CLI::App& root, Context& ctx) {
  auto args = std::make_shared<RenewArgs>();
  CLI::App* sub = root.add_subcommand("renew", "Renew stored certificates that are due");
  sub->add_option("names", args->names, "Certificates to renew, by name")->type_name("NAME");
  sub->add_flag("--all", args->all, "Consider every stored certificate");
  sub->add_flag("--force", args->force, "Renew even when the certificate is not due yet");
  sub->add_option("--days", args->days, "Renew when fewer than N days are left (default: the last third of its life)")
      ->type_name("N")
      ->check(CLI::PositiveNumber);
  sub->add_option("--ca", args->cas, "CA to use instead of the recorded one, repeatable for fallback")
      ->type_name("CA")
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  sub->add_option("--ca-root", args->ca_root, "PEM roots to trust for the CA's own TLS")->type_name("FILE");
  sub->add_option("--challenge", args->challenges, "Challenge types instead of the recorded one")
      ->check(CLI::IsMember({"http-01", "tls-alpn-01", "dns-01"}))
      ->delimiter(',')
      ->type_name("TYPE")
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  sub->add_option("--http-port", args->http_port, "Port of the http-01 listener")->capture_default_str();
  sub->add_option("--tls-port", args->tls_port, "Port of the tls-alpn-01 listener")->capture_default_str();
  sub->add_option("--webroot", args->webroot, "Answer http-01 by writing into DIR/.well-known/acme-challenge/")
      ->type_name("DIR");
  add_dns_flags(*sub, args->dns);
  sub->callback([args, &ctx] { ctx.exit_code = run_renew(*args, ctx); });
}

}  // namespace acmetool::cmd
