// cmd/renew.cpp: `acmetool renew` renews stored certificates that are inside their renewal window.
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "common.h"

namespace acmetool::cmd {
namespace {

struct RenewArgs {
  std::vector<std::string> names;
  bool all = false;
  bool force = false;
};

int run_renew(const RenewArgs& args, Context&) {
  if (args.names.empty() && !args.all) throw UsageError("renew: name a certificate or pass --all");
  throw NotImplementedError("renew");
}

}  // namespace

void add_renew(CLI::App& root, Context& ctx) {
  auto args = std::make_shared<RenewArgs>();
  CLI::App* sub = root.add_subcommand("renew", "Renew stored certificates that are due");
  sub->add_option("names", args->names, "Certificates to renew, by name")->type_name("NAME");
  sub->add_flag("--all", args->all, "Renew every stored certificate that is due");
  sub->add_flag("--force", args->force, "Renew even when the certificate is not due yet");
  sub->callback([args, &ctx] { ctx.exit_code = run_renew(*args, ctx); });
}

}  // namespace acmetool::cmd
