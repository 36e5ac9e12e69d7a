// cmd/account.cpp: `acmetool account` registers, shows and deactivates ACME accounts.
#include <CLI/CLI.hpp>

#include <string>

#include "common.h"

namespace acmetool::cmd {
namespace {

struct AccountArgs {
  std::string server = "https://acme-v02.api.letsencrypt.org/directory";
  std::string email;
  bool agree_tos = false;
  std::string eab_kid;
  std::string eab_hmac;
};

int run_account(const std::string& action, const AccountArgs&, Context&) {
  throw NotImplementedError("account " + action);
}

void add_account_action(CLI::App& account, const char* action, const char* help,
                        std::shared_ptr<AccountArgs> args, Context& ctx) {
  CLI::App* sub = account.add_subcommand(action, help);
  sub->callback([action, args, &ctx] { ctx.exit_code = run_account(action, *args, ctx); });
}

}  // namespace

void add_account(CLI::App& root, Context& ctx) {
  auto args = std::make_shared<AccountArgs>();
  CLI::App* sub = root.add_subcommand("account", "Manage ACME accounts");
  sub->require_subcommand(1);
  sub->add_option("--server", args->server, "ACME directory URL")->capture_default_str()->type_name("URL");
  sub->add_option("--email", args->email, "Account contact email")->type_name("EMAIL");
  sub->add_flag("--agree-tos", args->agree_tos, "Agree to the CA's terms of service");
  sub->add_option("--eab-kid", args->eab_kid, "External Account Binding key identifier")->type_name("KID");
  sub->add_option("--eab-hmac", args->eab_hmac, "External Account Binding HMAC key (base64url)")
      ->type_name("KEY");
  add_account_action(*sub, "register", "Register an account (or find the existing one)", args, ctx);
  add_account_action(*sub, "show", "Show the stored account", args, ctx);
  add_account_action(*sub, "deactivate", "Deactivate the account at the CA", args, ctx);
}

}  // namespace acmetool::cmd
