// cmd/untrust.cpp: `acmetool untrust` removes exactly what `acmetool trust` installed.
#include <CLI/CLI.hpp>

#include "common.h"
#include "trust_args.h"

namespace acmetool::cmd {

namespace {
int run_untrust(const TrustArgs&, Context&) { throw NotImplementedError("untrust"); }
}  // namespace

void add_untrust(CLI::App& root, Context& ctx) {
  auto args = std::make_shared<TrustArgs>();
  CLI::App* sub = root.add_subcommand("untrust", "Remove the local CA's root from trust stores");
  add_trust_flags(*sub, *args);
  sub->callback([args, &ctx] { ctx.exit_code = run_untrust(*args, ctx); });
}

}  // namespace acmetool::cmd
