// Flags shared by `acmetool trust` and `acmetool untrust`.
#pragma once

#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace acmetool::cmd {

struct TrustArgs {
  std::string ca_name = "local";
  std::vector<std::string> stores = {"system", "nss", "java"};
  bool dry_run = false;
};

/// Registers --ca, --store and --dry-run on `sub`, bound to `args` (defined in cmd/trust.cpp).
void add_trust_flags(CLI::App& sub, TrustArgs& args);

}  // namespace acmetool::cmd
