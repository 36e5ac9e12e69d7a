// The Java runtime's keystore of trusted CAs (lib/security/cacerts), changed with keytool.
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "acmetool/pki/error.h"
#include "trust_internal.h"

namespace fs = std::filesystem;

namespace acmetool::pki::trust_detail {
namespace {

// Every JDK ships cacerts with this password; keytool needs it even to list entries.
constexpr const char* kStorePassword = "changeit";

// TrustOptions::java_home, else $JAVA_HOME, else the installation whose bin/ holds the keytool on
// PATH (/usr/bin/keytool is a chain of links into it). Empty when there is no Java.
fs::path find_java_home(const TrustOptions& options) {
  if (!options.java_home.empty()) return options.java_home;
  if (const char* env = std::getenv("JAVA_HOME"); env && *env) return env;
  const std::optional<fs::path> keytool = find_program("keytool");
  if (!keytool) return {};
  std::error_code ec;
  const fs::path real = fs::canonical(*keytool, ec);
  return ec ? fs::path() : real.parent_path().parent_path();
}

// Java 9 and later keep cacerts in lib/security, Java 8 in jre/lib/security.
fs::path find_keystore(const fs::path& java_home) {
  std::error_code ec;
  for (const char* relative : {"lib/security/cacerts", "jre/lib/security/cacerts"}) {
    if (fs::exists(java_home / relative, ec)) return java_home / relative;
  }
  return {};
}

// keytool running `args` on `keystore`.
std::vector<std::string> keytool_argv(const fs::path& keytool, std::vector<std::string> args,
                                      const std::string& keystore) {
  args.insert(args.begin(), keytool.string());
  args.insert(args.end(), {"-keystore", keystore, "-storepass", kStorePassword});
  return args;
}

// Why keytool cannot change `keystore` (empty when there is none), or nullopt when it can.
std::optional<std::string> keystore_problem(const fs::path& java_home, const fs::path& keytool,
                                            const fs::path& keystore) {
  if (!find_program(keytool.string())) return "no keytool in " + keytool.parent_path().string();
  if (keystore.empty()) return "no cacerts keystore in " + java_home.string();
  if (::access(keystore.c_str(), W_OK) == 0) return std::nullopt;
  const int err = errno;
  return IoError("cannot write", keystore, err).what() +
         std::string(err == EACCES && ::geteuid() != 0 ? " (run as root)" : "");
}

}  // namespace

std::vector<TrustEntry> apply_java(TrustAction action, const RootCertificate& root,
                                   const TrustOptions& options) {
  const std::string name = root.entry_name();
  const fs::path java_home = find_java_home(options);
  if (java_home.empty()) {
    TrustEntry e = make_entry(TrustStore::Java, TrustOutcome::Skipped, "", name);
    e.reason = "no Java found (JAVA_HOME is not set and keytool is not on PATH)";
    return {e};
  }
  const fs::path keystore = find_keystore(java_home);
  const fs::path keytool = java_home / "bin/keytool";
  const std::string location =
      keystore.empty() ? (java_home / "lib/security/cacerts").string() : keystore.string();
  const bool install = action == TrustAction::Install;
  TrustEntry e = make_entry(TrustStore::Java, TrustOutcome::Changed, location, name);
  if (keystore.empty() && !install) {
    e.outcome = TrustOutcome::Already;
    return {e};
  }

  ToolChange change;
  change.argv =
      keytool_argv(keytool,
                   install ? std::vector<std::string>{"-importcert", "-noprompt", "-alias", name}
                           : std::vector<std::string>{"-delete", "-alias", name},
                   location);
  change.shown = {change.argv};
  if (install) {
    change.shown.front().insert(change.shown.front().end(), {"-file", root_file_argument(root)});
  }
  change.input = install ? std::string_view(root.pem) : std::string_view();
  change.needs_root = true;
  if (const std::optional<std::string> problem = keystore_problem(java_home, keytool, keystore)) {
    return {fail(std::move(e), *problem, change.shown, true)};
  }
  const std::vector<std::string> list = keytool_argv(keytool, {"-list", "-alias", name}, location);
  change.present = [&] { return run_program(list, "", options.command_timeout).exit_code == 0; };
  return {apply_tool_change(std::move(e), action, change, options)};
}

}  // namespace acmetool::pki::trust_detail
