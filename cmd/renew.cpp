// cmd/renew.cpp: `acmetool renew` renews stored certificates that are inside their renewal window:
// ACME certificates from the CA, with the settings recorded when they were obtained (flags
// override them), and local-CA certificates from the local CA. One maintenance pass of the
// certificate manager `serve` runs (libserve/cert_manager.h), per group of recorded settings.
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
#include "acmetool/serve/cert_manager.h"
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
  settings.reuse_key = cert.issuer_data.value("reuse_key", false);
  settings.profile = cert.issuer_data.value("profile", "");
  settings.user_agent = "acmetool/" ACMETOOL_VERSION;
  settings.progress = progress_printer(ctx);
  apply_dns_flags(args.dns, cert.issuer_data.value("dns_provider", ""), settings, "renew");
  return settings;
}

// Certificates renewed by one certificate manager: those whose recorded settings agree.
struct Group {
  serve::CertManagerOptions options;
  std::vector<const Stored*> certs;
};

// Sorts the selected certificates into groups by what renewing them needs: the ACME settings
// recorded with each (flags override them), or the local CA and lifetime.
std::map<std::string, Group> group_by_settings(const std::vector<Stored>& certs, const RenewArgs& args,
                                               const Context& ctx) {
  std::map<std::string, Group> groups;
  for (const Stored& cert : certs) {
    serve::CertManagerOptions options;
    json key;
    if (cert.issuer_data.contains("ca")) {
      options.acme = acme_settings(cert, args, ctx);
      key = {cert.issuer_key, options.acme.directory_urls, options.acme.account.email, options.acme.challenges,
             pki::to_string(options.acme.key_type), options.acme.reuse_key, options.acme.profile,
             cert.issuer_data.value("dns_provider", "")};
    } else {
      options.local_ca.name = cert.issuer_key;
      options.internal_lifetime =
          std::chrono::duration_cast<std::chrono::seconds>(cert.info.not_after - cert.info.not_before);
      key = {"local", cert.issuer_key, options.internal_lifetime.count()};
    }
    options.ocsp_stapling = false;  // one pass from the command line: nothing to staple for
    options.clean_storage = false;  // the other groups' certificates are not managed here
    options.log = progress_printer(ctx);
    Group& group = groups.try_emplace(key.dump(), Group{std::move(options), {}}).first->second;
    group.certs.push_back(&cert);
  }
  return groups;
}

int run_renew(const RenewArgs& args, Context& ctx) {
  if (args.names.empty() && !args.all) throw UsageError("renew: name a certificate or pass --all");
  pki::FileStorage storage(ctx.storage_root());
  std::vector<Damaged> damaged;
  std::vector<Stored> certs = stored_certificates(storage, damaged);
  std::erase_if(certs, [&](const Stored& cert) { return !selected(args, cert); });

  // One maintenance pass of the certificate manager `serve` uses, per group of settings.
  serve::MaintenanceRequest request;
  request.force = args.force;
  if (args.days > 0) request.renew_within = std::chrono::days(args.days);
  json rows = json::array();
  int failed = 0, done = 0;
  for (auto& [key, group] : group_by_settings(certs, args, ctx)) {
    const bool local = !group.certs.front()->issuer_data.contains("ca");
    std::map<std::string, const Stored*> by_name;
    std::vector<serve::ManagedName> names;
    for (const Stored* cert : group.certs) {
      serve::ManagedName managed{cert->sans.front(), local ? serve::IssuerPolicy::Internal : serve::IssuerPolicy::Acme};
      managed.also.assign(cert->sans.begin() + 1, cert->sans.end());
      by_name[managed.name] = cert;
      names.push_back(std::move(managed));
    }
    serve::MaintenanceReport report;
    try {
      serve::CertManager manager(storage, std::move(group.options));
      // Interrupted mid-order: DNS records and webroot files presented so far are taken back.
      const InterruptGuard guard([&manager] { manager.withdraw_challenges(); });
      manager.manage(std::move(names));
      report = manager.maintain(request);
    } catch (const std::exception& e) {
      for (const auto& [name, cert] : by_name) report.items.push_back({name, serve::MaintenanceReport::Item::Status::Failed, e.what()});
    }
    for (const auto& item : report.items) {
      const Stored& cert = *by_name.at(item.name);
      using Status = serve::MaintenanceReport::Item::Status;
      const std::string status = item.status == Status::Failed    ? "failed"
                                 : item.status == Status::Renewed ? "renewed"
                                                                  : "not-due";
      const std::string detail =
          item.status == Status::Failed ? item.detail
                                        : storage.path_of(pki::keys::cert_file(cert.issuer_key, cert.folder)).string();
      item.status == Status::Failed ? ++failed : ++done;
      std::string joined;
      for (const std::string& n : cert.sans) joined += (joined.empty() ? "" : ",") + n;
      if (ctx.global.json) {
        json row = {{"names", cert.sans}, {"issuer", cert.issuer_key}, {"status", status},
                    {item.status == Status::Failed ? "error" : "certificate", detail}};
        if (item.status != Status::Failed && !item.detail.empty()) row["reason"] = item.detail;
        rows.push_back(std::move(row));
      } else {
        std::cout << status << '\t' << joined << '\t' << detail << '\n';
      }
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
