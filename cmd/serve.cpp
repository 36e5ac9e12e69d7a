// cmd/serve.cpp: `acmetool serve` runs the automatic-HTTPS server for a Caddyfile.
#include <CLI/CLI.hpp>

#include <string>

#include "common.h"

namespace acmetool::cmd {
namespace {

struct ServeArgs {
  std::string config = "Caddyfile";
  std::string envfile;
};

int run_serve(const ServeArgs&, Context&) { throw NotImplementedError("serve"); }

}  // namespace

void add_serve(CLI::App& root, Context& ctx) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* sub = root.add_subcommand("serve", "Serve the sites of a Caddyfile over automatic HTTPS");
  sub->add_option("-c,--config", args->config, "Caddyfile to serve")->capture_default_str()->type_name("FILE");
  sub->add_option("--envfile", args->envfile, "Load environment variables from FILE first")->type_name("FILE");
  sub->callback([args, &ctx] { ctx.exit_code = run_serve(*args, ctx); });
}

}  // namespace acmetool::cmd
