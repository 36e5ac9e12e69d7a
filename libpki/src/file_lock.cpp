// Lock files shared with CertMagic (Caddy) and with other acmetool processes.
//
// CertMagic's protocol alone (O_EXCL create, JSON stamps refreshed every 5 s, stale after 10 s) makes
// a crashed holder block everybody for 10 s, and two waiters can both decide a lock is stale and
// delete each other's fresh lock (certmagic's own comments call the exclusion "imperfect"). On top of
// it we hold a kernel flock on the lock file:
//   * a lock file is published fully written and already flocked: we write a temp file, flock it, and
//     link() it into place, which fails atomically when the name exists;
//   * a stale lock is only deleted by someone holding its flock, after checking that the path still
//     names the inode they hold, so two takers cannot delete each other's lock;
//   * a lock file written by an acmetool process on this host and boot whose flock is free belongs
//     to a process that died, so it is taken over at once instead of after 10 s.
#include "file_lock_internal.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>

#include "acmetool/pki/error.h"
#include "acmetool/pki/files.h"
#include "acmetool/pki/rfc3339.h"
#include "files_internal.h"

namespace fs = std::filesystem;
using std::chrono::system_clock;

namespace acmetool::pki {
namespace {

struct HostIdentity {
  std::string host;
  std::string boot_id;
};

const HostIdentity& this_host() {
  static const HostIdentity identity = [] {
    HostIdentity id;
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) == 0) id.host = name;
    if (auto boot = read_file("/proc/sys/kernel/random/boot_id")) {
      id.boot_id = *boot;
      while (!id.boot_id.empty() && id.boot_id.back() == '\n') id.boot_id.pop_back();
    }
    return id;
  }();
  return identity;
}

std::string lock_json(system_clock::time_point created, system_clock::time_point updated) {
  const HostIdentity& id = this_host();
  nlohmann::json doc = {
      {"created", format_rfc3339(created)},
      {"updated", format_rfc3339(updated)},
      {"acmetool", {{"host", id.host}, {"boot_id", id.boot_id}, {"pid", ::getpid()}}},
  };
  return doc.dump();
}

void write_at_start(int fd, const std::string& text, const fs::path& path) {
  if (::pwrite(fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
    throw IoError("writing lock file", path, errno);
  }
  if (::ftruncate(fd, static_cast<off_t>(text.size())) != 0) throw IoError("truncating lock file", path, errno);
}

bool same_file(int fd, const fs::path& path) {
  struct stat by_fd {}, by_path {};
  if (::fstat(fd, &by_fd) != 0 || ::stat(path.c_str(), &by_path) != 0) return false;
  return by_fd.st_dev == by_path.st_dev && by_fd.st_ino == by_path.st_ino;
}

std::string read_fd(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  off_t offset = 0;
  while ((n = ::pread(fd, buf, sizeof buf, offset)) > 0) {
    out.append(buf, static_cast<size_t>(n));
    offset += n;
  }
  return out;
}

// Decides whether an unflocked lock file may be taken over.
bool is_abandoned(int fd, std::chrono::milliseconds stale_after) {
  const auto now = system_clock::now();
  const auto doc = nlohmann::json::parse(read_fd(fd), nullptr, /*allow_exceptions=*/false);
  if (doc.is_object()) {
    if (auto holder = doc.find("acmetool"); holder != doc.end() && holder->is_object()) {
      const HostIdentity& id = this_host();
      // Our own kind on this host: the flock is free, so its holder is gone.
      if (holder->value("host", "") == id.host && holder->value("boot_id", "") == id.boot_id &&
          !id.boot_id.empty()) {
        return true;
      }
    }
    std::optional<system_clock::time_point> newest;
    for (const char* field : {"created", "updated"}) {
      if (auto it = doc.find(field); it != doc.end() && it->is_string()) {
        if (auto t = parse_rfc3339(it->get<std::string>())) newest = std::max(newest.value_or(*t), *t);
      }
    }
    if (newest) return now - *newest > stale_after;
  }
  // Empty or unreadable: a creator may be between create and write (CertMagic writes after
  // O_EXCL), so only the file's age can tell.
  struct stat st {};
  if (::fstat(fd, &st) != 0) return false;
  const auto mtime = system_clock::time_point{std::chrono::seconds{st.st_mtim.tv_sec} +
                                              std::chrono::nanoseconds{st.st_mtim.tv_nsec}};
  return now - mtime > stale_after;
}

// Publishes a complete, flocked lock file at `path`. Returns the held fd, or an empty one when the
// path exists already.
UniqueFd create_lock_file(const fs::path& path, system_clock::time_point now) {
  const fs::path temp = path.parent_path() / (std::string(kTempFilePrefix) + "lock-" + random_suffix());
  UniqueFd fd(::open(temp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd) throw IoError("creating lock file", temp, errno);
  struct TempRemover {
    const fs::path& temp;
    ~TempRemover() { ::unlink(temp.c_str()); }
  } remover{temp};
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) throw IoError("locking", temp, errno);
  write_at_start(fd.get(), lock_json(now, now), temp);
  if (::link(temp.c_str(), path.c_str()) != 0) {
    if (errno == EEXIST) return UniqueFd();
    throw IoError("creating lock file", path, errno);
  }
  return fd;
}

enum class Inspection { Held, Gone };

// Looks at an existing lock file; removes it when it is abandoned.
Inspection inspect_existing(const fs::path& path, std::chrono::milliseconds stale_after) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return Inspection::Gone;
    throw IoError("opening lock file", path, errno);
  }
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return Inspection::Held;  // a live holder on this host
    throw IoError("locking", path, errno);
  }
  // We hold the flock of the inode we opened; the path may meanwhile name a newer lock.
  if (!same_file(fd.get(), path)) return Inspection::Gone;
  if (!is_abandoned(fd.get(), stale_after)) return Inspection::Held;
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) throw IoError("removing stale lock file", path, errno);
  return Inspection::Gone;
}

}  // namespace

std::optional<LockFile> LockFile::try_acquire(const fs::path& path, std::chrono::milliseconds stale_after) {
  // Each round either takes the lock, finds it held, or saw it vanish; a few rounds bound the
  // case where other processes keep creating and removing it under us.
  for (int round = 0; round < 8; ++round) {
    const auto now = system_clock::now();
    if (UniqueFd fd = create_lock_file(path, now)) return LockFile(path, std::move(fd), now);
    if (inspect_existing(path, stale_after) == Inspection::Held) return std::nullopt;
  }
  return std::nullopt;
}

void LockFile::refresh() {
  if (!fd_) return;
  write_at_start(fd_.get(), lock_json(created_, system_clock::now()), path_);
}

void LockFile::release() noexcept {
  if (!fd_) return;
  // Unlink before dropping the flock, and only our own inode: after a takeover the path may name
  // somebody else's lock.
  if (same_file(fd_.get(), path_)) ::unlink(path_.c_str());
  fd_.reset();
}

}  // namespace acmetool::pki
