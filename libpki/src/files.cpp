#include "acmetool/pki/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <random>

#include "acmetool/pki/error.h"
#include "acmetool/pki/unique_fd.h"
#include "files_internal.h"

namespace fs = std::filesystem;

namespace acmetool::pki {

std::string random_suffix() {
  thread_local std::mt19937_64 rng{std::random_device{}() ^ static_cast<std::uint64_t>(::getpid())};
  static const char kHex[] = "0123456789abcdef";
  std::string out(16, '0');
  std::uint64_t bits = rng();
  for (char& c : out) {
    c = kHex[bits & 0xf];
    bits >>= 4;
  }
  return out;
}

namespace {

void write_all(int fd, std::string_view bytes, const fs::path& path) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw IoError("writing", path, errno);
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

void fsync_dir(const fs::path& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) throw IoError("opening directory", dir, errno);
  if (::fsync(fd.get()) != 0) throw IoError("syncing directory", dir, errno);
}

}  // namespace

void write_file_atomic(const fs::path& path, std::string_view bytes, mode_t mode) {
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  // Keep the temp name within NAME_MAX even for a 253-byte certificate name.
  const std::string base = path.filename().string().substr(0, 120);

  fs::path temp;
  UniqueFd fd;
  for (int attempt = 0; !fd; ++attempt) {
    temp = dir / (std::string(kTempFilePrefix) + base + "." + random_suffix());
    fd.reset(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
    if (!fd && (errno != EEXIST || attempt == 8)) throw IoError("creating", temp, errno);
  }
  try {
    // The umask may have cleared bits of `mode`; private files must not depend on it either way.
    if (::fchmod(fd.get(), mode) != 0) throw IoError("setting mode of", temp, errno);
    write_all(fd.get(), bytes, temp);
    if (::fsync(fd.get()) != 0) throw IoError("syncing", temp, errno);
    if (::close(fd.release()) != 0) throw IoError("closing", temp, errno);
    if (::rename(temp.c_str(), path.c_str()) != 0) throw IoError("renaming into place", path, errno);
  } catch (...) {
    ::unlink(temp.c_str());
    throw;
  }
  // The rename is durable only once the directory entry is on disk.
  fsync_dir(dir);
}

std::optional<std::string> read_file(const fs::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return std::nullopt;
    throw IoError("opening", path, errno);
  }
  std::string out;
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw IoError("reading", path, errno);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

void make_dirs(const fs::path& dir, mode_t mode) {
  if (dir.empty()) return;
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) throw IoError("creating directory", dir, ENOTDIR);
    return;
  }
  if (dir.has_parent_path() && dir.parent_path() != dir) make_dirs(dir.parent_path(), mode);
  if (::mkdir(dir.c_str(), mode) != 0) {
    if (errno == EEXIST) return;  // another process made it meanwhile
    throw IoError("creating directory", dir, errno);
  }
  if (::chmod(dir.c_str(), mode) != 0) throw IoError("setting mode of", dir, errno);
}

}  // namespace acmetool::pki
