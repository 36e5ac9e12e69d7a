// State shared by every subcommand: the global flags and the exit code the command chose.
#pragma once

#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "exit_codes.h"

namespace CLI {
class App;
}

namespace acmetool::cmd {

/// Flags accepted before or after any subcommand.
struct GlobalOptions {
  std::filesystem::path storage;  ///< --storage; empty means pki::default_storage_root()
  bool json = false;              ///< --json: one JSON document on stdout
  int verbosity = 0;              ///< -v, repeatable
  bool quiet = false;             ///< -q: errors only
};

struct Context {
  GlobalOptions global;
  int exit_code = kExitOk;

  /// The storage root to use: --storage when given, else the default location.
  std::filesystem::path storage_root() const;
};

/// The names of one certificate argument, "a.example,www.a.example" → {"a.example", "www.a.example"},
/// normalised to lower-case A-labels; an invalid one throws UsageError("<command>: <name>: <reason>").
std::vector<std::string> certificate_names(std::string_view argument, std::string_view command);

/// The directory URL a --ca value names (letsencrypt, letsencrypt-staging, zerossl or a URL);
/// anything but https:// throws UsageError("<command>: --ca <value>: expected ...").
std::string ca_directory_url(const std::string& ca, std::string_view command);

/// Prints a library's progress lines to stderr as "acmetool: <line>", one whole line at a time
/// even from several threads; empty (nothing printed) with -q.
std::function<void(std::string_view)> progress_printer(const Context& ctx);

/// Thrown by a subcommand whose issue has not landed yet; main maps it to kExitFailed.
class NotImplementedError : public std::runtime_error {
 public:
  explicit NotImplementedError(const std::string& command)
      : std::runtime_error(command + " is not implemented yet") {}
};

/// Thrown for usage errors found after parsing (a flag combination CLI11 cannot express);
/// main maps it to kExitUsage.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One registration function per subcommand file, in the order `acmetool --help` lists them.
void add_obtain(CLI::App& root, Context& ctx);
void add_renew(CLI::App& root, Context& ctx);
void add_revoke(CLI::App& root, Context& ctx);
void add_account(CLI::App& root, Context& ctx);
void add_certs(CLI::App& root, Context& ctx);
void add_ca(CLI::App& root, Context& ctx);
void add_trust(CLI::App& root, Context& ctx);
void add_untrust(CLI::App& root, Context& ctx);
void add_qualify(CLI::App& root, Context& ctx);
void add_fmt(CLI::App& root, Context& ctx);
void add_validate(CLI::App& root, Context& ctx);
void add_adapt(CLI::App& root, Context& ctx);
void add_serve(CLI::App& root, Context& ctx);
void add_version(CLI::App& root, Context& ctx);

}  // namespace acmetool::cmd
