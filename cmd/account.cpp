// cmd/account.cpp: `acmetool account` manages the ACME account that `obtain` uses for a CA and an
// email, stored as Caddy stores it: register, show, update (contacts), rollover (key), deactivate.
#include <CLI/CLI.hpp>

#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "acmetool/acme/client.h"
#include "acmetool/acme/error.h"
#include "acmetool/acme/issuance.h"
#include "acmetool/pki/key.h"
#include "acmetool/pki/storage.h"
#include "acmetool/pki/storage_keys.h"
#include "common.h"

namespace acmetool::cmd {
namespace {

struct AccountArgs {
  std::string ca = "letsencrypt";
  std::string ca_root;
  std::string email;                  ///< selects the stored account; "" for the default one
  std::string eab_kid, eab_hmac;      ///< register
  std::string key_type = "p256";      ///< register (a new key), rollover
  std::vector<std::string> contacts;  ///< update
};

acme::ClientOptions client_options(const AccountArgs& args, const Context& ctx) {
  acme::ClientOptions options;
  options.directory_url = ca_directory_url(args.ca, "account");
  options.http.ca_file = args.ca_root;
  options.http.user_agent = "acmetool/" ACMETOOL_VERSION;
  options.progress = progress_printer(ctx);
  return options;
}

// One account at one CA: the client, the storage and the account's place in it.
class Session {
 public:
  Session(const AccountArgs& args, const Context& ctx)
      : args_(args),
        client_(client_options(args, ctx)),
        directory_url_(acme::directory_url_for(args.ca)),
        issuer_key_(pki::keys::acme_issuer_key(directory_url_)),
        storage_(ctx.storage_root()) {}

  acme::AcmeClient& client() { return client_; }
  pki::Storage& storage() { return storage_; }
  const std::string& issuer_key() const { return issuer_key_; }

  // The stored account, or nullopt.
  std::optional<acme::StoredAccount> stored() const {
    return acme::load_account(storage_, issuer_key_, args_.email);
  }

  // The stored account, now used by client(). Throws when none is stored, or when it is deactivated
  // and `usable` is asked for (the CA refuses whatever its key signs, RFC 8555 §7.3.6).
  acme::StoredAccount login(bool usable = true) {
    auto account = stored();
    if (!account) {
      throw acme::Error("account: no account stored for " + who() + " at " + directory_url_ +
                        " in " + storage_.describe() + "; see 'acmetool account register'");
    }
    if (usable && account->registration.status == "deactivated") {
      throw acme::Error("account: the account " + account->registration.url + " is deactivated");
    }
    client_.use_account(*account->key, account->registration.url);
    return std::move(*account);
  }

  std::string key_path() const {
    return storage_.path_of(acme::account_keys(issuer_key_, args_.email).private_key).string();
  }

 private:
  std::string who() const {
    return args_.email.empty() ? "the default account (no --email)" : args_.email;
  }

  const AccountArgs& args_;
  acme::AcmeClient client_;
  std::string directory_url_;
  std::string issuer_key_;
  pki::FileStorage storage_;
};

// One line per field, or one JSON object.
void print(const acme::Account& account, const EVP_PKEY& key, const std::string& key_path,
           bool as_json) {
  const auto type = pki::key_type_of(key);
  const std::string key_type = type ? std::string(pki::to_string(*type)) : "unknown";
  if (as_json) {
    const nlohmann::ordered_json out = {{"url", account.url},
                                        {"status", account.status},
                                        {"contact", account.contact},
                                        {"key", key_path},
                                        {"key_type", key_type}};
    std::cout << out.dump(2) << '\n';
    return;
  }
  std::cout << "url\t" << account.url << "\nstatus\t" << account.status << '\n';
  for (const std::string& contact : account.contact) std::cout << "contact\t" << contact << '\n';
  std::cout << "key\t" << key_path << "\nkey_type\t" << key_type << '\n';
}

int run_register(const AccountArgs& args, Context& ctx) {
  Session session(args, ctx);
  acme::AccountSettings settings;
  settings.email = args.email;
  settings.eab_kid = args.eab_kid;
  settings.eab_hmac_key = args.eab_hmac;
  settings.key_type = *pki::parse_key_type(args.key_type);
  if (const auto old = session.stored();
      old && old->registration.status == "deactivated" && !ctx.global.quiet) {
    std::cerr << "acmetool: the stored account " << old->registration.url
              << " is deactivated; registering a new key\n";
  }
  // newAccount with a known key finds its account (RFC 8555 §7.3.1): registers at most once.
  acme::register_account(session.client(), session.storage(), session.issuer_key(), settings);
  const acme::StoredAccount account = session.login();
  print(account.registration, *account.key, session.key_path(), ctx.global.json);
  return kExitOk;
}

int run_show(const AccountArgs& args, Context& ctx) {
  Session session(args, ctx);
  const acme::StoredAccount stored = session.login(/*usable=*/false);
  acme::Account account = stored.registration;
  // A deactivated account cannot even read itself (RFC 8555 §7.3.6): show what was stored.
  if (account.status != "deactivated") {
    account = session.client().fetch_account();
    if (account.status != stored.registration.status ||
        account.contact != stored.registration.contact) {
      acme::store_registration(session.storage(), session.issuer_key(), args.email, account);
    }
  }
  print(account, *stored.key, session.key_path(), ctx.global.json);
  return kExitOk;
}

int run_update(const AccountArgs& args, Context& ctx) {
  std::vector<std::string> contacts;
  for (const std::string& contact : args.contacts) {
    if (contact.empty()) throw UsageError("account update: --contact must not be empty");
    contacts.push_back(contact.find(':') == std::string::npos ? "mailto:" + contact : contact);
  }
  Session session(args, ctx);
  const acme::StoredAccount stored = session.login();
  const acme::Account account = session.client().update_contact(contacts);
  acme::store_registration(session.storage(), session.issuer_key(), args.email, account);
  print(account, *stored.key, session.key_path(), ctx.global.json);
  return kExitOk;
}

int run_rollover(const AccountArgs& args, Context& ctx) {
  Session session(args, ctx);
  const acme::StoredAccount stored = session.login();
  const pki::PkeyPtr new_key = pki::generate_key(*pki::parse_key_type(args.key_type));
  session.client().rollover(*new_key);
  // Only now that the CA knows the new key may it replace the old one; the store is atomic.
  try {
    session.storage().store(stored.keys.private_key, pki::private_key_to_pem(*new_key).str());
  } catch (const std::exception& e) {
    throw acme::Error("account rollover: the CA accepted the new key, but storing it failed: " +
                      std::string(e.what()));
  }
  print(stored.registration, *new_key, session.key_path(), ctx.global.json);
  return kExitOk;
}

int run_deactivate(const AccountArgs& args, Context& ctx) {
  Session session(args, ctx);
  const acme::StoredAccount stored = session.login();
  const acme::Account account = session.client().deactivate_account();
  acme::store_registration(session.storage(), session.issuer_key(), args.email, account);
  print(account, *stored.key, session.key_path(), ctx.global.json);
  return kExitOk;
}

CLI::App* add_action(CLI::App& account, const char* name, const char* help,
                     int (*run)(const AccountArgs&, Context&), std::shared_ptr<AccountArgs> args,
                     Context& ctx) {
  CLI::App* sub = account.add_subcommand(name, help);
  sub->callback([name, run, args, &ctx] {
    try {
      ctx.exit_code = run(*args, ctx);
    } catch (const acme::ProblemError& e) {
      throw acme::Error("account " + std::string(name) + ": " + e.what());
    }
  });
  return sub;
}

void add_key_type(CLI::App& sub, AccountArgs& args, const char* help) {
  sub.add_option("--key-type", args.key_type, help)
      ->check(CLI::IsMember({"p256", "p384", "rsa2048", "rsa3072", "rsa4096", "ed25519"}))
      ->type_name("TYPE")
      ->capture_default_str();
}

}  // namespace

void add_account(CLI::App& root, Context& ctx) {
  auto args = std::make_shared<AccountArgs>();
  CLI::App* account =
      root.add_subcommand("account", "Manage the ACME account of a CA and an email");
  account->require_subcommand(1);
  account
      ->add_option("--ca", args->ca,
                   "CA of the account: letsencrypt, letsencrypt-staging, zerossl or a URL")
      ->type_name("CA")
      ->capture_default_str();
  account
      ->add_option("--ca-root", args->ca_root,
                   "PEM roots to trust for the CA's own TLS (a private CA like pebble)")
      ->type_name("FILE");
  account
      ->add_option("--email", args->email,
                   "Email of the stored account (none: the default account)")
      ->type_name("EMAIL");

  CLI::App* reg = add_action(*account, "register", "Register an account, or find the existing one",
                             run_register, args, ctx);
  auto* kid = reg->add_option("--eab-kid", args->eab_kid, "External Account Binding key identifier")
                  ->type_name("KID");
  auto* hmac =
      reg->add_option("--eab-hmac", args->eab_hmac, "External Account Binding HMAC key (base64url)")
          ->type_name("KEY");
  kid->needs(hmac);
  hmac->needs(kid);
  add_key_type(*reg, *args, "Key type of a new account key");

  add_action(*account, "show", "Show the account as the CA has it", run_show, args, ctx);
  CLI::App* update = add_action(*account, "update", "Replace the account's contacts at the CA",
                                run_update, args, ctx);
  update->add_option("--contact", args->contacts, "New contact (an email, or a URI), repeatable")
      ->type_name("EMAIL")
      ->required()
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  CLI::App* rollover =
      add_action(*account, "rollover", "Replace the account key (RFC 8555 key change)",
                 run_rollover, args, ctx);
  add_key_type(*rollover, *args, "Key type of the new account key");
  add_action(*account, "deactivate", "Deactivate the account at the CA, for good", run_deactivate,
             args, ctx);
}

}  // namespace acmetool::cmd
