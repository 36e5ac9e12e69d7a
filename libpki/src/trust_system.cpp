// The operating system's trust store: an anchor file plus the distribution's update command, which
// rebuilds the bundle that OpenSSL, GnuTLS and curl read.
#include <unistd.h>

#include <cerrno>

#include "acmetool/pki/error.h"
#include "acmetool/pki/files.h"
#include "trust_internal.h"

namespace fs = std::filesystem;

namespace acmetool::pki::trust_detail {
namespace {

struct SystemLayout {
  std::string_view anchor_dir;  ///< relative to the root prefix
  std::string_view extension;   ///< update-ca-certificates on Debian reads only *.crt
  std::vector<std::string> update;
  std::string_view bundle;   ///< what `update` writes, read back to check the change
  std::string_view package;  ///< where `update` comes from, for messages
  /// Where `update` links each anchor (by name and by subject hash), when it leaves the links of a
  /// removed anchor behind; empty when it rebuilds the directory.
  std::string_view links_dir;
};

const SystemLayout kDebian{"usr/local/share/ca-certificates",
                           ".crt",
                           {"update-ca-certificates"},
                           "etc/ssl/certs/ca-certificates.crt",
                           "ca-certificates",
                           "etc/ssl/certs"};
const SystemLayout kRhel{"etc/pki/ca-trust/source/anchors",
                         ".pem",
                         {"update-ca-trust", "extract"},
                         "etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
                         "ca-certificates"};
// Arch's `trust anchor --store` would name the file itself; an anchor file we name is one we can
// find and remove exactly, so we do what mkcert does there.
const SystemLayout kArch{"etc/ca-certificates/trust-source/anchors",
                         ".crt",
                         {"trust", "extract-compat"},
                         "etc/ssl/certs/ca-certificates.crt",
                         "p11-kit"};
const SystemLayout kSuse{"etc/pki/trust/anchors",
                         ".pem",
                         {"update-ca-certificates"},
                         "var/lib/ca-certificates/ca-bundle.pem",
                         "ca-certificates"};

// ID and then ID_LIKE of os-release(5), in order.
std::vector<std::string> os_release_ids(const fs::path& prefix) {
  for (const char* name : {"etc/os-release", "usr/lib/os-release"}) {
    std::optional<std::string> text;
    try {
      text = read_file(prefix / name);
    } catch (const IoError&) {
      continue;  // unreadable counts as absent: the directories below still tell
    }
    if (!text) continue;
    std::string id, id_like;
    for (size_t start = 0; start < text->size();) {
      const size_t end = std::min(text->find('\n', start), text->size());
      const std::string line = text->substr(start, end - start);
      start = end + 1;
      const size_t eq = line.find('=');
      if (eq == std::string::npos) continue;
      std::string value = line.substr(eq + 1);
      std::erase_if(value, [](char c) { return c == '"' || c == '\''; });
      if (line.compare(0, eq, "ID") == 0) id = value;
      if (line.compare(0, eq, "ID_LIKE") == 0) id_like = value;
    }
    std::vector<std::string> ids{id};
    for (size_t start = 0; start < id_like.size();) {
      const size_t end = std::min(id_like.find(' ', start), id_like.size());
      if (end > start) ids.push_back(id_like.substr(start, end - start));
      start = end + 1;
    }
    return ids;
  }
  return {};
}

const SystemLayout* layout_for_id(std::string_view id) {
  if (id == "debian" || id == "ubuntu" || id == "alpine") return &kDebian;
  if (id == "rhel" || id == "fedora" || id == "centos") return &kRhel;
  if (id == "arch") return &kArch;
  if (id == "suse" || id == "sles" || id.starts_with("opensuse")) return &kSuse;
  return nullptr;
}

// os-release names the family; without one we go by which anchor directory exists.
const SystemLayout* detect_layout(const fs::path& prefix) {
  for (const std::string& id : os_release_ids(prefix)) {
    if (const SystemLayout* layout = layout_for_id(id)) return layout;
  }
  for (const SystemLayout* layout : {&kRhel, &kSuse, &kArch, &kDebian}) {
    std::error_code ec;
    if (fs::is_directory(prefix / layout->anchor_dir, ec)) return layout;
  }
  return nullptr;
}

// Whether the bundle holds the certificate's base64 body: bundles may add comments and headers.
bool bundle_lists(const fs::path& bundle, const std::string& pem) {
  const size_t body_start = pem.find('\n') + 1;
  const size_t body_end = pem.rfind("-----END");
  std::optional<std::string> text;
  try {
    text = read_file(bundle);
  } catch (const IoError&) {
    return false;
  }
  return text && text->find(pem.substr(body_start, body_end - body_start)) != std::string::npos;
}

// Debian's update-ca-certificates rebuilds the bundle, but when nothing was added it leaves the
// links of a removed anchor in /etc/ssl/certs (NAME.pem and the hash link to it) dangling. Removes
// those dangling links that name `name`, and no others.
void remove_dangling_links(const fs::path& links_dir, const std::string& name) {
  const std::string prefix = name + ".";
  std::error_code ec;
  for (auto it = fs::directory_iterator(links_dir, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    std::error_code link_ec;
    if (!it->is_symlink(link_ec)) continue;
    const fs::path target = fs::read_symlink(it->path(), link_ec);
    const bool ours = it->path().filename().string().starts_with(prefix) ||
                      target.filename().string().starts_with(prefix);
    if (!link_ec && ours && !fs::exists(it->path(), link_ec)) fs::remove(it->path(), link_ec);
  }
}

struct SystemPlan {
  const SystemLayout& layout;
  fs::path dir;
  fs::path file;
  fs::path bundle;
  bool live;  ///< the real root: run the update command and read the bundle back
};

// Failed when the change cannot be made by this process: no update command, no permission.
std::optional<std::string> blocker(const SystemPlan& plan) {
  if (plan.live && !find_program(plan.layout.update[0], {"/usr/sbin", "/sbin"})) {
    return plan.layout.update[0] + " not found (install the " + std::string(plan.layout.package) +
           " package)";
  }
  return write_problem(plan.dir, true);
}

// Runs the update command; nullopt when it worked and the bundle now does (or no longer does) list
// the root.
std::optional<std::string> refresh(const SystemPlan& plan, const RootCertificate& root, bool listed,
                                   const TrustOptions& options) {
  if (!plan.live) return std::nullopt;
  std::vector<std::string> argv = plan.layout.update;
  argv[0] = find_program(argv[0], {"/usr/sbin", "/sbin"}).value_or(argv[0]).string();
  const ProgramResult result = run_program(argv, "", options.command_timeout);
  if (result.exit_code != 0) return failure_reason(plan.layout.update[0], result);
  if (!listed && !plan.layout.links_dir.empty()) {
    remove_dangling_links(fs::path("/") / plan.layout.links_dir, root.entry_name());
  }
  if (bundle_lists(plan.bundle, root.pem) != listed) {
    return plan.layout.update[0] + " ran, but " + plan.bundle.string() +
           (listed ? " does not list" : " still lists") + " the root";
  }
  return std::nullopt;
}

TrustEntry install(const SystemPlan& plan, const RootCertificate& root,
                   const TrustOptions& options) {
  TrustEntry e =
      make_entry(TrustStore::System, TrustOutcome::Changed, plan.file.string(), root.entry_name());
  const std::vector<std::string> copy{"install", "-m", "644", root_file_argument(root),
                                      plan.file.string()};
  e.command = shell_line({copy, plan.layout.update});
  std::optional<std::string> present;
  try {
    present = read_file(plan.file);
  } catch (const IoError&) {
    // Unreadable counts as absent: writing it again below either works or says why not.
  }
  if (present == root.pem && (!plan.live || bundle_lists(plan.bundle, root.pem))) {
    return make_entry(TrustStore::System, TrustOutcome::Already, plan.file.string(),
                      root.entry_name());
  }
  std::optional<std::string> failure = blocker(plan);
  if (!failure && options.dry_run) return e;
  if (!failure) {
    try {
      make_dirs(plan.dir, 0755);
      write_file_atomic(plan.file, root.pem, 0644);
    } catch (const IoError& error) {
      failure = error.what();
    }
  }
  if (!failure) failure = refresh(plan, root, true, options);
  return failure ? fail(std::move(e), *failure, {copy, plan.layout.update}, true) : e;
}

TrustEntry remove(const SystemPlan& plan, const RootCertificate& root,
                  const TrustOptions& options) {
  std::error_code ec;
  if (!fs::exists(plan.file, ec)) {
    return make_entry(TrustStore::System, TrustOutcome::Already, plan.file.string(),
                      root.entry_name());
  }
  TrustEntry e =
      make_entry(TrustStore::System, TrustOutcome::Changed, plan.file.string(), root.entry_name());
  const std::vector<std::string> rm{"rm", "-f", plan.file.string()};
  e.command = shell_line({rm, plan.layout.update});
  std::optional<std::string> failure = blocker(plan);
  if (!failure && options.dry_run) return e;
  if (!failure && ::unlink(plan.file.c_str()) != 0) {
    failure = IoError("removing", plan.file, errno).what();
  }
  if (!failure) failure = refresh(plan, root, false, options);
  return failure ? fail(std::move(e), *failure, {rm, plan.layout.update}, true) : e;
}

}  // namespace

std::vector<TrustEntry> apply_system(TrustAction action, const RootCertificate& root,
                                     const TrustOptions& options) {
  const fs::path prefix = options.root_prefix.empty() ? fs::path("/") : options.root_prefix;
  const SystemLayout* layout = detect_layout(prefix);
  if (!layout) {
    TrustEntry e = make_entry(TrustStore::System, TrustOutcome::Skipped, "", root.entry_name());
    e.reason =
        "no supported system trust store found (Debian, Ubuntu, Alpine, RHEL, Fedora, Arch, "
        "openSUSE)";
    return {e};
  }
  const fs::path dir = prefix / layout->anchor_dir;
  const SystemPlan plan{*layout, dir, dir / (root.entry_name() + std::string(layout->extension)),
                        prefix / layout->bundle, prefix.lexically_normal() == "/"};
  return {action == TrustAction::Install ? install(plan, root, options)
                                         : remove(plan, root, options)};
}

}  // namespace acmetool::pki::trust_detail
