// cmd/validate.cpp: `acmetool validate` parses and checks a Caddyfile without serving it.
#include <CLI/CLI.hpp>

#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "caddyfile_input.h"

namespace acmetool::cmd {
namespace {

struct ValidateArgs {
  std::string config = "Caddyfile";
  std::string envfile;
};

// Reads, adapts and checks the Caddyfile; a bad one throws caddyfile::ParseError (exit 2), an
// unreadable one caddyfile::Error (exit 1). Prints "Valid configuration" on stdout, warnings on
// stderr.
int run_validate(const ValidateArgs& args, Context& ctx) {
  const AdaptedCaddyfile adapted = adapt_caddyfile(args.config, args.envfile, ctx);
  if (ctx.global.json) {
    nlohmann::json out{{"valid", true}, {"sites", adapted.config.sites.size()}, {"warnings", nlohmann::json::array()}};
    for (const caddyfile::Warning& w : adapted.warnings) out["warnings"].push_back({{"where", w.where}, {"message", w.message}});
    std::cout << out.dump() << '\n';
  } else {
    std::cout << "Valid configuration\n";
  }
  return kExitOk;
}

}  // namespace

void add_validate(CLI::App& root, Context& ctx) {
  auto args = std::make_shared<ValidateArgs>();
  CLI::App* sub = root.add_subcommand("validate", "Check a Caddyfile for errors");
  sub->add_option("-c,--config", args->config, "Caddyfile to check")->capture_default_str()->type_name("FILE");
  sub->add_option("--envfile", args->envfile, "Load environment variables from FILE first")->type_name("FILE");
  sub->callback([args, &ctx] { ctx.exit_code = run_validate(*args, ctx); });
}

}  // namespace acmetool::cmd
