// One lock file of FileStorage: CertMagic's lock-file protocol plus a kernel flock.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>

#include "acmetool/pki/unique_fd.h"

namespace acmetool::pki {

/// A held lock file. The file holds CertMagic's JSON {"created","updated"} and, for acmetool
/// processes on the same host, {"acmetool":{"host","boot_id","pid"}}; the holder keeps an exclusive
/// flock on it for as long as it holds the lock.
class LockFile {
 public:
  /// Tries once to take the lock at `path` (its directory must exist). Returns nullopt when another
  /// holder has it. A lock file counts as abandoned, and is replaced, when its flock is free and
  /// either an acmetool process of this host and boot wrote it (so that process has died), or its
  /// newest stamp (or, when unreadable, its mtime) is older than `stale_after`. Throws IoError.
  static std::optional<LockFile> try_acquire(const std::filesystem::path& path,
                                             std::chrono::milliseconds stale_after);

  LockFile(LockFile&&) noexcept = default;
  LockFile& operator=(LockFile&&) noexcept = default;
  ~LockFile() { release(); }

  /// Rewrites the "updated" stamp so that other hosts and Caddy keep seeing the lock as fresh.
  void refresh();

  /// Removes the lock file (only if it is still ours) and drops the flock. Idempotent.
  void release() noexcept;

 private:
  LockFile(std::filesystem::path path, UniqueFd fd, std::chrono::system_clock::time_point created)
      : path_(std::move(path)), fd_(std::move(fd)), created_(created) {}

  std::filesystem::path path_;
  UniqueFd fd_;
  std::chrono::system_clock::time_point created_;
};

}  // namespace acmetool::pki
