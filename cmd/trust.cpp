// cmd/trust.cpp: `acmetool trust` installs the local CA's root into the system, NSS and Java stores.
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "common.h"
#include "trust_args.h"

namespace acmetool::cmd {

void add_trust_flags(CLI::App& sub, TrustArgs& args) {
  sub.add_option("--ca", args.ca_name, "Local CA whose root to use")->type_name("NAME")->capture_default_str();
  sub.add_option("--store", args.stores, "Trust stores to change")
      ->type_name("STORE")
      ->check(CLI::IsMember({"system", "nss", "java"}))
      ->delimiter(',')
      ->capture_default_str();
  sub.add_flag("--dry-run", args.dry_run, "Print what would change and change nothing");
}

namespace {
int run_trust(const TrustArgs&, Context&) { throw NotImplementedError("trust"); }
}  // namespace

void add_trust(CLI::App& root, Context& ctx) {
  auto args = std::make_shared<TrustArgs>();
  CLI::App* sub = root.add_subcommand("trust", "Install the local CA's root into trust stores");
  add_trust_flags(*sub, *args);
  sub->callback([args, &ctx] { ctx.exit_code = run_trust(*args, ctx); });
}

}  // namespace acmetool::cmd
