// Shared by the trust-store installers (trust_system.cpp, trust_nss.cpp, trust_java.cpp) and the
// small program runner they use (trust_process.cpp).
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "acmetool/pki/trust.h"

namespace acmetool::pki::trust_detail {

/// What a finished program did.
struct ProgramResult {
  int exit_code = -1;  ///< exit status, or -1 when a signal killed it
  int signal = 0;      ///< the signal that killed it (SIGKILL after the timeout), or 0
  std::string output;  ///< stdout and stderr, interleaved
};

/// Runs `argv` without a shell (argv[0] looked up in PATH unless it holds a '/') with `input` on
/// stdin, in a new session: with no controlling terminal a password prompt fails instead of
/// hanging. Kills the program's process group after `timeout`. Throws Error when it cannot be
/// started.
ProgramResult run_program(const std::vector<std::string>& argv, std::string_view input,
                          std::chrono::milliseconds timeout);

/// The executable `name` in $PATH, then in `extra_dirs`; a name holding a '/' is checked as it is.
std::optional<std::filesystem::path> find_program(
    std::string_view name, const std::vector<std::filesystem::path>& extra_dirs = {});

/// `commands` as one POSIX shell line ("a && b"), quoting where needed, each behind "sudo " when
/// `sudo` is set and this process is not root: for suggested commands.
std::string shell_line(const std::vector<std::vector<std::string>>& commands, bool sudo = false);

/// "<what> exited with status N: <first non-empty line of its output>" (or "was killed by signal
/// N"): a one-line reason.
std::string failure_reason(std::string_view what, const ProgramResult& result);

/// Why this process cannot create files in `dir` (or in its nearest existing ancestor, when `dir`
/// does not exist yet), or nullopt when it can: "cannot write into /etc/x: Read-only file system".
/// With `system_path`, a permission problem of a non-root process adds "(run as root)".
std::optional<std::string> write_problem(const std::filesystem::path& dir, bool system_path);

/// The root's file as suggested commands name it: its path, or "ROOT.crt" when unknown.
std::string root_file_argument(const RootCertificate& root);

/// An entry with its reason or command still empty.
TrustEntry make_entry(TrustStore store, TrustOutcome outcome, std::string location,
                      std::string name);

/// `e` made Failed with `reason` and the commands to run instead (see shell_line()).
TrustEntry fail(TrustEntry e, std::string reason,
                const std::vector<std::vector<std::string>>& commands, bool sudo);

/// A change made by a tool that edits a database in place (certutil, keytool).
struct ToolChange {
  std::function<bool()> present;  ///< whether the root is in the location now
  std::vector<std::string> argv;  ///< adds or removes it
  std::string_view input;         ///< argv's stdin: the root's PEM for an add
  /// The same change as a user would type it, naming the root's file.
  std::vector<std::vector<std::string>> shown;
  bool needs_root = false;  ///< "sudo" goes before `shown` in a Failed entry
};

/// Finishes `e` (store, location and name set): Already when `present()` already says so; else,
/// unless dry_run, runs the change and reads it back with `present()`: Changed or Failed.
TrustEntry apply_tool_change(TrustEntry e, TrustAction action, const ToolChange& change,
                             const TrustOptions& options);

std::vector<TrustEntry> apply_system(TrustAction action, const RootCertificate& root,
                                     const TrustOptions& options);
std::vector<TrustEntry> apply_nss(TrustAction action, const RootCertificate& root,
                                  const TrustOptions& options);
std::vector<TrustEntry> apply_java(TrustAction action, const RootCertificate& root,
                                   const TrustOptions& options);

}  // namespace acmetool::pki::trust_detail
