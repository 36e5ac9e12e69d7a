// cmd/validate.cpp: `acmetool validate` parses and checks a Caddyfile without serving it.
#include <CLI/CLI.hpp>

#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "acmetool/caddyfile/adapt.h"
#include "acmetool/caddyfile/env_file.h"
#include "common.h"

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
  caddyfile::ParseOptions options;
  if (!args.envfile.empty()) {
    options.env = caddyfile::env_lookup_with(caddyfile::read_env_file(args.envfile), caddyfile::process_environment());
  }
  std::vector<caddyfile::Warning> warnings;
  const caddyfile::Config config = caddyfile::adapt_file(args.config, options, warnings);
  if (!ctx.global.quiet) {
    for (const caddyfile::Warning& w : warnings) std::cerr << "acmetool: warning: " << w.where << ": " << w.message << '\n';
  }
  if (ctx.global.json) {
    nlohmann::json out{{"valid", true}, {"sites", config.sites.size()}, {"warnings", nlohmann::json::array()}};
    for (const caddyfile::Warning& w : warnings) out["warnings"].push_back({{"where", w.where}, {"message", w.message}});
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
