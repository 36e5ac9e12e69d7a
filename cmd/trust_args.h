// What `acmetool trust` and `acmetool untrust` share: their flags and their run function.
#pragma once

#include <string>
#include <vector>

#include "acmetool/pki/storage.h"
#include "acmetool/pki/trust.h"

namespace CLI {
class App;
}

namespace acmetool::cmd {

struct Context;

struct TrustArgs {
  std::string ca_name = "local";
  std::vector<std::string> stores = {"system", "nss", "java"};
  /// --store was on the command line: a skipped store then counts as not done.
  bool stores_given = false;
  bool dry_run = false;
};

/// Installs or removes the CA's root (storage key pki/authorities/<safe(ca)>/root.crt), prints one
/// line per location (or a JSON array), records the result in trust.json and returns the exit code:
/// 0 when every location is done, 3 when some failed (or were skipped although named by --store),
/// 1 when none is done. Throws when the CA does not exist or its root is unreadable.
int run_trust(pki::TrustAction action, const TrustArgs& args, Context& ctx);

/// The CA's root from `storage` (key pki/authorities/<safe(ca)>/root.crt). Throws
/// std::runtime_error naming the storage when there is none ("run 'acmetool ca init' first").
pki::RootCertificate load_ca_root(const pki::FileStorage& storage, const std::string& ca_name);

/// pki::record_trust after a real apply_trust(); a failure is a warning on stderr, since the stores
/// did change (say after `sudo` left a trust.json the user cannot read).
void record_trust_or_warn(pki::FileStorage& storage, pki::TrustAction action, const pki::RootCertificate& root,
                          const std::vector<pki::TrustEntry>& entries);

/// Registers `name` ("trust" or "untrust") with --ca, --store and --dry-run, running run_trust()
/// with `action` (defined in cmd/trust.cpp).
void add_trust_command(CLI::App& root, Context& ctx, const char* name, const char* help,
                       pki::TrustAction action);

}  // namespace acmetool::cmd
