// cmd/validate.cpp: `acmetool validate` parses and checks a Caddyfile without serving it.
#include <CLI/CLI.hpp>

#include <string>

#include "common.h"

namespace acmetool::cmd {
namespace {

struct ValidateArgs {
  std::string config = "Caddyfile";
  std::string envfile;
};

int run_validate(const ValidateArgs&, Context&) { throw NotImplementedError("validate"); }

}  // namespace

void add_validate(CLI::App& root, Context& ctx) {
  auto args = std::make_shared<ValidateArgs>();
  CLI::App* sub = root.add_subcommand("validate", "Check a Caddyfile for errors");
  sub->add_option("-c,--config", args->config, "Caddyfile to check")->capture_default_str()->type_name("FILE");
  sub->add_option("--envfile", args->envfile, "Load environment variables from FILE first")->type_name("FILE");
  sub->callback([args, &ctx] { ctx.exit_code = run_validate(*args, ctx); });
}

}  // namespace acmetool::cmd
