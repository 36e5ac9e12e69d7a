// NSS databases, which Chromium (~/.pki/nssdb) and Firefox (one per profile) read instead of the
// system store, changed with certutil from libnss3-tools.
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "acmetool/pki/error.h"
#include "acmetool/pki/files.h"
#include "trust_internal.h"

namespace fs = std::filesystem;

namespace acmetool::pki::trust_detail {
namespace {

fs::path home_directory(const TrustOptions& options) {
  if (!options.home.empty()) return options.home;
  if (const char* home = std::getenv("HOME"); home && *home) return home;
  if (const passwd* pw = ::getpwuid(::geteuid())) return pw->pw_dir;
  throw Error("finding the home directory for the NSS databases: $HOME is not set");
}

bool has_database(const fs::path& dir) {
  std::error_code ec;
  return fs::exists(dir / "cert9.db", ec);
}

// ~/.pki/nssdb first (created on install when missing), then every other database that exists:
// the newer Chromium location, Snap Chromium, and Firefox profiles (plain, Snap, Flatpak).
std::vector<fs::path> nss_databases(const fs::path& home) {
  std::vector<fs::path> out{home / ".pki/nssdb"};
  for (const char* dir : {".local/share/pki/nssdb", "snap/chromium/current/.pki/nssdb"}) {
    if (has_database(home / dir)) out.push_back(home / dir);
  }
  for (const char* profiles : {".mozilla/firefox", "snap/firefox/common/.mozilla/firefox",
                               ".var/app/org.mozilla.firefox/.mozilla/firefox"}) {
    std::vector<fs::path> found;
    std::error_code ec;
    for (auto it = fs::directory_iterator(home / profiles, ec);
         !ec && it != fs::directory_iterator(); it.increment(ec)) {
      if (has_database(it->path())) found.push_back(it->path());
    }
    std::sort(found.begin(), found.end());
    out.insert(out.end(), found.begin(), found.end());
  }
  return out;
}

// certutil adding the root as a trusted CA for TLS servers ("C,,"), or deleting it.
std::vector<std::string> certutil_change(const std::string& certutil, const std::string& db,
                                         TrustAction action, const std::string& name) {
  if (action == TrustAction::Install) return {certutil, "-A", "-d", db, "-t", "C,,", "-n", name};
  return {certutil, "-D", "-d", db, "-n", name};
}

// An empty database without a password, as Chromium makes on its first start.
std::optional<std::string> create_database(const fs::path& dir, const fs::path& certutil,
                                           const TrustOptions& options) {
  try {
    make_dirs(dir, 0700);
  } catch (const IoError& error) {
    return error.what();
  }
  const ProgramResult created =
      run_program({certutil.string(), "-N", "--empty-password", "-d", "sql:" + dir.string()}, "",
                  options.command_timeout);
  if (created.exit_code != 0) return failure_reason("certutil -N", created);
  return std::nullopt;
}

TrustEntry apply_database(TrustAction action, const fs::path& dir, const RootCertificate& root,
                          const TrustOptions& options) {
  const std::string db = "sql:" + dir.string();
  const std::string name = root.entry_name();
  const bool install = action == TrustAction::Install;
  const bool exists = has_database(dir);
  TrustEntry e = make_entry(TrustStore::Nss, TrustOutcome::Changed, dir.string(), name);
  if (!install && !exists) {
    e.outcome = TrustOutcome::Already;
    return e;
  }
  std::vector<std::vector<std::string>> shown;
  if (!exists) {
    shown = {{"mkdir", "-p", dir.string()}, {"certutil", "-N", "--empty-password", "-d", db}};
  }
  shown.push_back(certutil_change("certutil", db, action, name));
  if (install) shown.back().insert(shown.back().end(), {"-i", root_file_argument(root)});

  const std::optional<fs::path> certutil = find_program(options.certutil);
  std::optional<std::string> problem =
      certutil ? write_problem(dir, false)
               : options.certutil + " not found (install libnss3-tools, or nss-tools)";
  if (!problem && !exists && options.dry_run) {
    e.command = shell_line(shown);
    return e;
  }
  if (!problem && !exists) problem = create_database(dir, *certutil, options);
  if (problem) return fail(std::move(e), *problem, shown, false);

  const std::vector<std::string> list{certutil->string(), "-L", "-d", db, "-n", name};
  ToolChange change;
  change.present = [&] { return run_program(list, "", options.command_timeout).exit_code == 0; };
  change.argv = certutil_change(certutil->string(), db, action, name);
  change.input = install ? std::string_view(root.pem) : std::string_view();
  change.shown = {shown.back()};
  TrustEntry done = apply_tool_change(std::move(e), action, change, options);
  if (!exists && done.outcome != TrustOutcome::Failed) done.command = shell_line(shown);
  return done;
}

}  // namespace

std::vector<TrustEntry> apply_nss(TrustAction action, const RootCertificate& root,
                                  const TrustOptions& options) {
  std::vector<TrustEntry> out;
  for (const fs::path& dir : nss_databases(home_directory(options))) {
    out.push_back(apply_database(action, dir, root, options));
  }
  return out;
}

}  // namespace acmetool::pki::trust_detail
