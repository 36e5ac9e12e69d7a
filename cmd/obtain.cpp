// cmd/obtain.cpp: `acmetool obtain` gets certificates from ACME CAs: one per NAME argument, where
// "a.example,www.a.example" is one certificate for both names. Certificates are ordered
// concurrently; each tries the CAs in --ca order.
#include <CLI/CLI.hpp>

#include <atomic>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "acmetool/acme/client.h"
#include "acmetool/acme/error.h"
#include "acmetool/acme/issuance.h"
#include "acmetool/acme/solver.h"
#include "acmetool/pki/cert_storage.h"
#include "acmetool/pki/files.h"
#include "acmetool/pki/hostname.h"
#include "acmetool/pki/storage_keys.h"
#include "acmetool/pki/x509.h"
#include "common.h"

namespace acmetool::cmd {
namespace {

using nlohmann::ordered_json;

// Certificates ordered at once; the CA's own limiter paces new orders further.
constexpr size_t kMaxConcurrentOrders = 16;
// How long to wait for another process obtaining the same names.
constexpr auto kIssueLockTimeout = std::chrono::minutes(5);

struct ObtainArgs {
  std::vector<std::string> certificates;   ///< one per argument; commas join names
  std::vector<std::string> cas = {"letsencrypt"};
  std::string ca_root;
  std::string email;
  std::string eab_kid, eab_hmac;
  std::vector<std::string> challenges = {"http-01", "tls-alpn-01"};
  int http_port = 80;
  int tls_port = 443;
  std::string webroot;
  std::string key_type = "p256";
  std::string preferred_chain;
  std::string out;
  bool force = false;
};

struct Outcome {
  std::vector<std::string> names;
  std::string status;   ///< obtained, reused, failed
  std::string issuer;   ///< issuer key of the CA that issued it
  std::string certificate, key;
  std::string error;
};

std::vector<std::string> split_names(const std::string& argument) {
  std::vector<std::string> names;
  size_t start = 0;
  while (start <= argument.size()) {
    const size_t comma = std::min(argument.find(',', start), argument.size());
    const pki::NameQualification q = pki::qualify_name(argument.substr(start, comma - start));
    if (q.name_class == pki::NameClass::Invalid) throw UsageError("obtain: " + q.name + ": " + q.reason);
    names.push_back(q.name);
    start = comma + 1;
  }
  return names;
}

// A stored certificate for exactly `names` with more than a third of its life left, if any.
std::optional<Outcome> reusable(const pki::FileStorage& storage, const std::string& issuer,
                                const std::vector<std::string>& names) {
  const auto stored = pki::load_certificate(storage, issuer, pki::keys::names_key(names));
  if (!stored) return std::nullopt;
  std::vector<std::string> want = names, have = stored->sans;
  std::sort(want.begin(), want.end());
  std::sort(have.begin(), have.end());
  if (want != have) return std::nullopt;
  const pki::CertificateInfo info = pki::describe_certificate(*pki::certificates_from_pem(stored->chain_pem, "stored").front());
  const auto now = std::chrono::system_clock::now();
  if (info.not_after - now <= (info.not_after - info.not_before) / 3) return std::nullopt;
  return Outcome{names, "reused", issuer, storage.path_of(pki::keys::cert_file(issuer, pki::keys::names_key(names))).string(),
                 storage.path_of(pki::keys::cert_key_file(issuer, pki::keys::names_key(names))).string(), ""};
}

// One CA: its client, logged in, shared by the certificates ordered concurrently.
struct Issuer {
  std::string directory_url;
  std::string key;   ///< storage issuer key
  std::unique_ptr<acme::AcmeClient> client;
  std::once_flag login;
};

class Obtainer {
 public:
  Obtainer(const ObtainArgs& args, Context& ctx) : args_(args), ctx_(ctx), storage_(ctx.storage_root()) {
    for (const std::string& ca : args.cas) {
      auto issuer = std::make_unique<Issuer>();
      issuer->directory_url = acme::directory_url_for(ca);
      issuer->key = pki::keys::acme_issuer_key(issuer->directory_url);
      acme::ClientOptions options;
      options.directory_url = issuer->directory_url;
      options.http.ca_file = args.ca_root;
      options.http.user_agent = "acmetool/" ACMETOOL_VERSION;
      if (!ctx.global.quiet) {
        options.progress = [this](std::string_view line) { say(line); };
      }
      issuer->client = std::make_unique<acme::AcmeClient>(options);
      issuers_.push_back(std::move(issuer));
    }
  }

  Outcome obtain(const std::vector<std::string>& names) {
    if (auto reused = find_reusable(names)) return *reused;
    // One issuance per name set at a time, across processes sharing the storage (DESIGN.md §3);
    // whoever waited looks again, since the holder may have obtained it meanwhile.
    pki::StorageLock lock(storage_, pki::keys::issue_lock_name(pki::keys::names_key(names)), kIssueLockTimeout);
    if (auto reused = find_reusable(names)) return *reused;
    Outcome outcome{names, "failed", "", "", "", ""};
    for (const auto& issuer : issuers_) {
      try {
        return issue(*issuer, names);
      } catch (const std::exception& e) {
        outcome.error = issuer->directory_url + ": " + e.what();
        say("obtain " + names.front() + ": " + outcome.error);
      }
    }
    return outcome;
  }

 private:
  void say(std::string_view line) {
    std::lock_guard lock(output_mu_);
    std::cerr << "acmetool: " << line << '\n';
  }

  std::optional<Outcome> find_reusable(const std::vector<std::string>& names) {
    if (args_.force) return std::nullopt;
    for (const auto& issuer : issuers_) {
      if (auto reused = reusable(storage_, issuer->key, names)) {
        if (!args_.out.empty()) {
          const auto stored = pki::load_certificate(storage_, issuer->key, pki::keys::names_key(names));
          write_out(names, stored->chain_pem, stored->private_key_pem, stored->issuer_data_json, *reused);
        }
        return reused;
      }
    }
    return std::nullopt;
  }

  // The listeners open when the first order needs them, so that reusing stored certificates
  // needs neither port 80 nor 443.
  const std::vector<std::unique_ptr<acme::Solver>>& solvers() {
    std::call_once(solvers_once_, [this] { make_solvers(); });
    return solvers_;
  }

  void make_solvers() {
    for (const std::string& type : args_.challenges) {
      if (type == "http-01") {
        solvers_.push_back(args_.webroot.empty() ? acme::make_http01_standalone("", args_.http_port)
                                                 : acme::make_http01_webroot(args_.webroot));
      } else if (type == "tls-alpn-01") {
        solvers_.push_back(acme::make_tlsalpn01_standalone("", args_.tls_port));
      } else {
        throw UsageError("obtain: --challenge dns-01 needs a DNS provider, which this version does not have yet");
      }
    }
  }

  acme::AccountSettings account_settings() const {
    acme::AccountSettings settings;
    settings.email = args_.email;
    settings.eab_kid = args_.eab_kid;
    settings.eab_hmac_key = args_.eab_hmac;
    return settings;
  }

  Outcome issue(Issuer& issuer, const std::vector<std::string>& names) {
    std::call_once(issuer.login,
                   [&] { acme::ensure_account(*issuer.client, storage_, issuer.key, account_settings()); });
    acme::CertificateOrder order;
    order.names = names;
    order.key_type = *pki::parse_key_type(args_.key_type);
    order.preferred_chain = args_.preferred_chain;
    for (const auto& solver : solvers()) order.solvers.push_back(solver.get());

    acme::IssuedCertificate issued;
    try {
      issued = acme::issue_certificate(*issuer.client, order);
    } catch (const acme::ProblemError& e) {
      // The CA forgot the account (a restarted test CA, a deleted account): register again, once.
      if (e.type() != "urn:ietf:params:acme:error:accountDoesNotExist") throw;
      say("the CA does not know the stored account; registering again");
      {
        std::lock_guard lock(relogin_mu_);
        acme::register_account(*issuer.client, storage_, issuer.key, account_settings());
      }
      issued = acme::issue_certificate(*issuer.client, order);
    }
    return store(issuer, names, issued);
  }

  Outcome store(const Issuer& issuer, const std::vector<std::string>& names, const acme::IssuedCertificate& issued) {
    const ordered_json issuer_data = {{"url", issued.certificate_url},
                                      {"ca", issuer.directory_url},
                                      {"account", issuer.client->account_url()},
                                      {"challenge", issued.challenge_type},
                                      {"key_type", args_.key_type}};
    pki::StoredCertificate stored{names, issued.chain_pem, pki::private_key_to_pem(*issued.key), issuer_data.dump()};
    pki::store_certificate(storage_, issuer.key, stored);
    const std::string name = pki::keys::names_key(names);
    Outcome outcome{names, "obtained", issuer.key, storage_.path_of(pki::keys::cert_file(issuer.key, name)).string(),
                    storage_.path_of(pki::keys::cert_key_file(issuer.key, name)).string(), ""};
    if (!args_.out.empty()) write_out(names, issued.chain_pem, stored.private_key_pem, issuer_data.dump(), outcome);
    return outcome;
  }

  // --out DIR: NAME.crt (full chain), NAME.key (0600) and NAME.json, named after the first name.
  void write_out(const std::vector<std::string>& names, const std::string& chain_pem, const pki::SecretString& key_pem,
                 const std::string& issuer_data_json, Outcome& outcome) {
    const std::string base = pki::keys::safe(names.front());
    const std::filesystem::path out(args_.out);
    pki::make_dirs(out);
    ordered_json meta = {{"sans", names}};
    if (!issuer_data_json.empty()) meta["issuer_data"] = ordered_json::parse(issuer_data_json);
    pki::write_file_atomic(out / (base + ".key"), key_pem.str(), 0600);
    pki::write_file_atomic(out / (base + ".json"), meta.dump(1, '\t'), 0644);
    pki::write_file_atomic(out / (base + ".crt"), chain_pem, 0644);
    outcome.certificate = (out / (base + ".crt")).string();
    outcome.key = (out / (base + ".key")).string();
  }

  const ObtainArgs& args_;
  Context& ctx_;
  pki::FileStorage storage_;
  std::vector<std::unique_ptr<Issuer>> issuers_;
  std::once_flag solvers_once_;
  std::vector<std::unique_ptr<acme::Solver>> solvers_;
  std::mutex output_mu_;
  std::mutex relogin_mu_;
};

void print(const std::vector<Outcome>& outcomes, bool json) {
  if (json) {
    ordered_json out = ordered_json::array();
    for (const Outcome& o : outcomes) {
      ordered_json row = {{"names", o.names}, {"status", o.status}};
      if (o.status == "failed") {
        row["error"] = o.error;
      } else {
        row["issuer"] = o.issuer;
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
    for (const std::string& n : o.names) names += (names.empty() ? "" : ",") + n;
    std::cout << o.status << '\t' << names << '\t' << (o.status == "failed" ? o.error : o.certificate) << '\n';
  }
}

int run_obtain(const ObtainArgs& args, Context& ctx) {
  std::vector<std::vector<std::string>> certificates;
  const bool dns01 = std::find(args.challenges.begin(), args.challenges.end(), "dns-01") != args.challenges.end();
  for (const std::string& argument : args.certificates) {
    certificates.push_back(split_names(argument));
    for (const std::string& name : certificates.back()) {
      // RFC 8555 §8.3, §8.4: only dns-01 can prove control of a whole zone.
      if (name.starts_with("*.") && !dns01) throw UsageError("obtain: " + name + ": a wildcard needs --challenge dns-01");
    }
  }
  for (const std::string& ca : args.cas) {
    if (!acme::directory_url_for(ca).starts_with("https://")) {
      throw UsageError("obtain: --ca " + ca + ": expected letsencrypt, letsencrypt-staging, zerossl or an https:// URL");
    }
  }
  Obtainer obtainer(args, ctx);
  std::vector<Outcome> outcomes(certificates.size());
  std::atomic<size_t> next{0};
  {
    std::vector<std::jthread> workers;
    const size_t count = std::min<size_t>(kMaxConcurrentOrders, certificates.size());
    for (size_t w = 0; w < count; ++w) {
      workers.emplace_back([&] {
        for (size_t i; (i = next++) < certificates.size();) outcomes[i] = obtainer.obtain(certificates[i]);
      });
    }
  }  // joins
  print(outcomes, ctx.global.json);
  const auto failed = std::count_if(outcomes.begin(), outcomes.end(), [](const Outcome& o) { return o.status == "failed"; });
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
  sub->add_option("--challenge", args->challenges, "Challenge types to use")
      ->check(CLI::IsMember({"http-01", "tls-alpn-01", "dns-01"}))
      ->delimiter(',')
      ->type_name("TYPE")
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->capture_default_str();
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
  sub->add_option("--out", args->out, "Also write NAME.crt (full chain), NAME.key and NAME.json into DIR")
      ->type_name("DIR");
  sub->add_flag("--force", args->force, "Obtain even when a stored certificate is still good");
  sub->callback([args, &ctx] { ctx.exit_code = run_obtain(*args, ctx); });
}

}  // namespace acmetool::cmd
