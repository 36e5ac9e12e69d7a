// cmd/adapt.cpp: `acmetool adapt` prints the typed configuration a Caddyfile turns into, as JSON.
#include <CLI/CLI.hpp>

#include <iostream>
#include <string>

#include "acmetool/caddyfile/config_json.h"
#include "caddyfile_input.h"

namespace acmetool::cmd {
namespace {

struct AdaptArgs {
  std::string config = "Caddyfile";
  std::string envfile;
  bool pretty = false;
  bool validate = false;  // adapting already runs every check `validate` does
};

// Prints the Config as one JSON document on stdout (schema in acmetool-adapt(1)); warnings go to
// stderr. Errors as in run_validate.
int run_adapt(const AdaptArgs& args, Context& ctx) {
  const AdaptedCaddyfile adapted = adapt_caddyfile(args.config, args.envfile, ctx);
  std::cout << caddyfile::to_json(adapted.config).dump(args.pretty ? 2 : -1) << '\n';
  return kExitOk;
}

}  // namespace

void add_adapt(CLI::App& root, Context& ctx) {
  auto args = std::make_shared<AdaptArgs>();
  CLI::App* sub = root.add_subcommand("adapt", "Print the configuration a Caddyfile adapts to, as JSON");
  sub->add_option("-c,--config", args->config, "Caddyfile to adapt")->capture_default_str()->type_name("FILE");
  sub->add_option("--envfile", args->envfile, "Load environment variables from FILE first")->type_name("FILE");
  sub->add_flag("--pretty", args->pretty, "Indent the JSON");
  sub->add_flag("--validate", args->validate, "Also validate the result (always done; for caddy compatibility)");
  sub->callback([args, &ctx] { ctx.exit_code = run_adapt(*args, ctx); });
}

}  // namespace acmetool::cmd
