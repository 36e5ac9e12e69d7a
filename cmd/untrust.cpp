// cmd/untrust.cpp: `acmetool untrust` removes exactly what `acmetool trust` installed.
#include <CLI/CLI.hpp>

#include "common.h"
#include "trust_args.h"

namespace acmetool::cmd {

void add_untrust(CLI::App& root, Context& ctx) {
  add_trust_command(root, ctx, "untrust", "Remove the local CA's root from trust stores",
                    pki::TrustAction::Remove);
}

}  // namespace acmetool::cmd
