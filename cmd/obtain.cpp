// cmd/obtain.cpp: `acmetool obtain` gets certificates from ACME CAs: one per NAME argument, where
// "a.example,www.a.example" is one certificate for both names. Certificates are ordered
// concurrently; each tries the CAs in --ca order.
#include <CLI/CLI.hpp>

#include <atomic>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "acmetool/acme/obtainer.h"
#include "acmetool/pki/cert_storage.h"
#include "acmetool/pki/files.h"
#include "acmetool/pki/hostname.h"
#include "acmetool/pki/storage_keys.h"
#include "acmetool/pki/x509.h"
#include "common.h"
#include "dns_flags.h"
#include "interrupt.h"

namespace acmetool::cmd {
namespace {

using nlohmann::ordered_json;

// Certificates ordered at once; the CA's own limiter paces new orders further.
constexpr size_t kMaxConcurrentOrders = 16;

struct ObtainArgs {
  std::vector<std::string> certificates;   ///< one per argument; commas join names
  std::vector<std::string> cas = {"letsencrypt"};
  std::string ca_root;
  std::string email;
  std::string eab_kid, eab_hmac;
  std::vector<std::string> challenges;     ///< empty: http-01 and tls-alpn-01, or dns-01 with --dns
  int http_port = 80;
  int tls_port = 443;
  std::string webroot;
  std::string key_type = "p256";
  std::string preferred_chain;
  std::string profile;
  std::string out;
  bool force = false;
  bool reuse_key = false;
  DnsArgs dns;
};

// The challenge types to use: --challenge, else dns-01 alone when a DNS provider is given (as
// Caddy's `tls { dns ... }` does), else http-01 and tls-alpn-01.
std::vector<std::string> challenge_types(const ObtainArgs& args) {
  if (!args.challenges.empty()) return args.challenges;
  if (!args.dns.provider.empty()) return {"dns-01"};
  return {"http-01", "tls-alpn-01"};
}

// What a line of output says about one certificate.
struct Outcome {
  acme::ObtainOutcome result;
  std::string certificate, key;  ///< paths: in storage, or in --out
};

// The paths of a stored certificate; with --out, copies it there first: NAME.crt (full chain),
// NAME.key (0600) and NAME.json, named after the first name.
Outcome locate(const pki::FileStorage& storage, const acme::ObtainOutcome& result, const std::string& out_dir) {
  Outcome outcome{result, "", ""};
  if (result.status == acme::ObtainOutcome::Status::Failed) return outcome;
  const std::string name = pki::keys::names_key(result.names);
  outcome.certificate = storage.path_of(pki::keys::cert_file(result.issuer_key, name)).string();
  outcome.key = storage.path_of(pki::keys::cert_key_file(result.issuer_key, name)).string();
  if (out_dir.empty()) return outcome;
  const auto stored = pki::load_certificate(storage, result.issuer_key, name);
  const std::string base = pki::keys::safe(result.names.front());
  const std::filesystem::path out(out_dir);
  pki::make_dirs(out);
  ordered_json meta = {{"sans", result.names}};
  if (!stored->issuer_data_json.empty()) meta["issuer_data"] = ordered_json::parse(stored->issuer_data_json);
  pki::write_file_atomic(out / (base + ".key"), stored->private_key_pem.str(), 0600);
  pki::write_file_atomic(out / (base + ".json"), meta.dump(1, '\t'), 0644);
  pki::write_file_atomic(out / (base + ".crt"), stored->chain_pem, 0644);
  outcome.certificate = (out / (base + ".crt")).string();
  outcome.key = (out / (base + ".key")).string();
  return outcome;
}

acme::ObtainSettings obtain_settings(const ObtainArgs& args, Context& ctx) {
  acme::ObtainSettings settings;
  for (const std::string& ca : args.cas) settings.directory_urls.push_back(ca_directory_url(ca, "obtain"));
  settings.ca_root = args.ca_root;
  settings.account = {args.email, args.eab_kid, args.eab_hmac, pki::KeyType::P256};
  settings.challenges = challenge_types(args);
  settings.http_port = args.http_port;
  settings.tls_port = args.tls_port;
  settings.webroot = args.webroot;
  settings.key_type = *pki::parse_key_type(args.key_type);
  settings.preferred_chain = args.preferred_chain;
  settings.profile = args.profile;
  settings.force = args.force;
  settings.retry_now = args.force;
  settings.reuse_key = args.reuse_key;
  settings.user_agent = "acmetool/" ACMETOOL_VERSION;
  settings.progress = progress_printer(ctx);
  apply_dns_flags(args.dns, "", settings, "obtain");
  return settings;
}

void print(const std::vector<Outcome>& outcomes, bool json) {
  if (json) {
    ordered_json out = ordered_json::array();
    for (const Outcome& o : outcomes) {
      ordered_json row = {{"names", o.result.names}, {"status", acme::to_string(o.result.status)}};
      if (o.result.status == acme::ObtainOutcome::Status::Failed) {
        row["error"] = o.result.error;
      } else {
        row["issuer"] = o.result.issuer_key;
        row["certificate"] = o.certificate;
        row["key"] = o.key;
      }
      out.push_back(row);
    }
    std::cout << out.dump(2) << '\n';
    return;
  }
  for (const Outcome& o : outcomes) {
    std::string names;
    for (const std::string& n : o.result.names) names += (names.empty() ? "" : ",") + n;
    const bool failed = o.result.status == acme::ObtainOutcome::Status::Failed;
    std::cout << acme::to_string(o.result.status) << '\t' << names << '\t' << (failed ? o.result.error : o.certificate)
              << '\n';
  }
}

int run_obtain(const ObtainArgs& args, Context& ctx) {
  std::vector<std::vector<std::string>> certificates;
  const std::vector<std::string> challenges = challenge_types(args);
  const bool dns01 = std::find(challenges.begin(), challenges.end(), "dns-01") != challenges.end();
  for (const std::string& argument : args.certificates) {
    certificates.push_back(certificate_names(argument, "obtain"));
    for (const std::string& name : certificates.back()) {
      // RFC 8555 §8.3, §8.4: only dns-01 can prove control of a whole zone.
      if (name.starts_with("*.") && !dns01) {
        throw UsageError("obtain: " + name + ": a wildcard needs the dns-01 challenge (--dns PROVIDER)");
      }
    }
  }
  for (const std::string& ca : args.cas) ca_directory_url(ca, "obtain");  // usage errors before any work
  pki::FileStorage storage(ctx.storage_root());
  acme::Obtainer obtainer(storage, obtain_settings(args, ctx));
  // Interrupted mid-order: DNS records and webroot files presented so far are taken back.
  const InterruptGuard guard([&obtainer] { obtainer.withdraw_challenges(); });
  std::vector<Outcome> outcomes(certificates.size());
  std::atomic<size_t> next{0};
  {
    std::vector<std::jthread> workers;
    const size_t count = std::min<size_t>(kMaxConcurrentOrders, certificates.size());
    for (size_t w = 0; w < count; ++w) {
      workers.emplace_back([&] {
        for (size_t i; (i = next++) < certificates.size();) {
          const acme::ObtainOutcome result = obtainer.obtain(certificates[i]);
          try {
            outcomes[i] = locate(storage, result, args.out);
          } catch (const std::exception& e) {  // writing --out failed: say so for this one
            outcomes[i] = {{result.names, acme::ObtainOutcome::Status::Failed, result.issuer_key, e.what()}, "", ""};
          }
        }
      });
    }
  }  // joins
  print(outcomes, ctx.global.json);
  const auto failed = std::count_if(outcomes.begin(), outcomes.end(), [](const Outcome& o) {
    return o.result.status == acme::ObtainOutcome::Status::Failed;
  });
  if (failed == 0) return kExitOk;
  return failed == static_cast<long>(outcomes.size()) ? kExitFailed : kExitPartial;
}

}  // namespace

void add_obtain(CLI::App& root, Context& ctx) {
  auto args = std::make_shared<ObtainArgs>();
  CLI::App* sub = root.add_subcommand("obtain", "Obtain certificates from an ACME CA: one per NAME (a,b: one for both)");
  sub->add_option("names", args->certificates, "Names; comma-joined names share one certificate")
      ->required()
      ->type_name("NAME[,NAME...]");
  sub->add_option("--ca", args->cas, "CA to use, repeatable for fallback: letsencrypt, letsencrypt-staging, zerossl or a URL")
      ->type_name("CA")
      ->expected(1)  // one value per occurrence, so that the names after it stay names
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->capture_default_str();
  sub->add_option("--ca-root", args->ca_root, "PEM roots to trust for the CA's own TLS (a private CA like pebble)")
      ->type_name("FILE");
  sub->add_option("--email", args->email, "Account contact email")->type_name("EMAIL");
  sub->add_option("--eab-kid", args->eab_kid, "External Account Binding key identifier")->type_name("KID");
  sub->add_option("--eab-hmac", args->eab_hmac, "External Account Binding HMAC key (base64url)")->type_name("KEY");
  sub->add_option("--challenge", args->challenges,
                  "Challenge types to use (default: http-01,tls-alpn-01; dns-01 alone with --dns)")
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
  sub->add_option("--key-type", args->key_type, "Certificate key type")
      ->check(CLI::IsMember({"p256", "p384", "rsa2048", "rsa3072", "rsa4096", "ed25519"}))
      ->type_name("TYPE")
      ->capture_default_str();
  sub->add_option("--preferred-chain", args->preferred_chain, "Chain whose top certificate has this issuer or subject CN")
      ->type_name("CN");
  sub->add_option("--profile", args->profile, "ACME certificate profile, when the CA offers it (e.g. shortlived)")
      ->type_name("NAME");
  sub->add_option("--out", args->out, "Also write NAME.crt (full chain), NAME.key and NAME.json into DIR")
      ->type_name("DIR");
  sub->add_flag("--force", args->force, "Obtain even when a stored certificate is still good, or while backing off after failures");
  sub->add_flag("--reuse-key", args->reuse_key, "Keep the stored certificate's private key (default: a new key)");
  add_dns_flags(*sub, args->dns);
  sub->callback([args, &ctx] { ctx.exit_code = run_obtain(*args, ctx); });
}

}  // namespace acmetool::cmd
