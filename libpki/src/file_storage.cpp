#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>

#include "acmetool/pki/error.h"
#include "acmetool/pki/files.h"
#include "acmetool/pki/storage.h"
#include "acmetool/pki/storage_keys.h"
#include "file_lock_internal.h"

namespace fs = std::filesystem;

namespace acmetool::pki {

struct FileStorage::Impl {
  fs::path root;
  FileStorageOptions options;

  std::mutex mu;                            // guards held, refresher
  std::map<std::string, LockFile> held;     // lock name -> our lock file
  std::condition_variable_any refresh_cv;
  std::jthread refresher;                   // started with the first lock; stopped in ~Impl

  fs::path lock_path(std::string_view name) const { return root / "locks" / (keys::safe(name) + ".lock"); }

  void start_refresher_locked() {
    if (refresher.joinable()) return;
    refresher = std::jthread([this](std::stop_token stop) {
      std::unique_lock lock(mu);
      while (!stop.stop_requested()) {
        // Wakes early only when stop is requested; the predicate never ends the wait by itself.
        refresh_cv.wait_for(lock, stop, options.lock_refresh_interval, [] { return false; });
        if (stop.stop_requested()) return;
        for (auto& [name, file] : held) {
          try {
            file.refresh();
          } catch (const Error&) {
            // A failed refresh only makes the lock look older to other hosts; the flock still holds.
          }
        }
      }
    });
  }

  ~Impl() {
    refresher.request_stop();
    if (refresher.joinable()) refresher.join();
    held.clear();  // releases every lock file
  }
};

FileStorage::FileStorage(fs::path root, FileStorageOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->root = std::move(root);
  impl_->options = options;
}

FileStorage::~FileStorage() = default;

const fs::path& FileStorage::root() const noexcept { return impl_->root; }

std::string FileStorage::describe() const { return impl_->root.string(); }

fs::path FileStorage::path_of(std::string_view key) const {
  if (key.empty()) throw Error("invalid storage key: empty");
  fs::path path = impl_->root;
  size_t start = 0;
  while (start <= key.size()) {
    const size_t slash = std::min(key.find('/', start), key.size());
    const std::string_view part = key.substr(start, slash - start);
    if (part.empty() || part == "." || part == ".." || part.find('\0') != std::string_view::npos) {
      throw Error("invalid storage key \"" + std::string(key) + "\": empty, '.' or '..' component");
    }
    path /= part;
    start = slash + 1;
  }
  return path;
}

void FileStorage::store(std::string_view key, std::string_view value) {
  const fs::path path = path_of(key);
  make_dirs(path.parent_path());
  write_file_atomic(path, value, 0600);
}

std::optional<std::string> FileStorage::load(std::string_view key) const {
  const fs::path path = path_of(key);
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return std::nullopt;
  return read_file(path);
}

bool FileStorage::erase(std::string_view key) {
  const fs::path path = path_of(key);
  std::error_code ec;
  const auto removed = fs::remove_all(path, ec);
  if (ec) throw IoError("removing", path, ec.value());
  return removed > 0;
}

bool FileStorage::exists(std::string_view key) const {
  struct stat st {};
  return ::lstat(path_of(key).c_str(), &st) == 0;
}

std::optional<KeyInfo> FileStorage::stat(std::string_view key) const {
  const fs::path path = path_of(key);
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
    throw IoError("inspecting", path, errno);
  }
  KeyInfo info;
  info.key = std::string(key);
  info.is_terminal = !S_ISDIR(st.st_mode);
  info.size = info.is_terminal ? static_cast<std::uint64_t>(st.st_size) : 0;
  info.modified = std::chrono::system_clock::time_point{std::chrono::seconds{st.st_mtim.tv_sec} +
                                                        std::chrono::nanoseconds{st.st_mtim.tv_nsec}};
  return info;
}

std::vector<std::string> FileStorage::list(std::string_view prefix, bool recursive) const {
  const fs::path dir = prefix.empty() ? impl_->root : path_of(prefix);
  const std::string key_prefix = prefix.empty() ? "" : std::string(prefix) + "/";
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;

  auto visit = [&](const fs::directory_entry& entry, const fs::path& relative) {
    if (relative.filename().string().starts_with(kTempFilePrefix)) return;
    if (!recursive || !entry.is_directory()) out.push_back(key_prefix + relative.generic_string());
  };
  if (recursive) {
    for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      visit(*it, fs::relative(it->path(), dir));
    }
  } else {
    for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
      visit(*it, it->path().filename());
    }
  }
  if (ec) throw IoError("listing", dir, ec.value());
  std::sort(out.begin(), out.end());
  return out;
}

bool FileStorage::try_lock(std::string_view name) {
  const fs::path path = impl_->lock_path(name);
  make_dirs(path.parent_path());
  std::optional<LockFile> file = LockFile::try_acquire(path, impl_->options.lock_stale_after);
  if (!file) return false;
  std::lock_guard lock(impl_->mu);
  impl_->held.insert_or_assign(std::string(name), std::move(*file));
  impl_->start_refresher_locked();
  return true;
}

void FileStorage::lock(std::string_view name, std::chrono::milliseconds timeout) {
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + timeout;
  for (;;) {
    if (try_lock(name)) return;
    const auto now = clock::now();
    if (now >= deadline) {
      throw LockTimeoutError("waiting for lock \"" + std::string(name) + "\" in " + describe() +
                             ": still held by another process after " +
                             std::to_string(timeout.count()) + " ms");
    }
    std::this_thread::sleep_for(std::min<clock::duration>(impl_->options.lock_poll_interval, deadline - now));
  }
}

void FileStorage::unlock(std::string_view name) {
  std::lock_guard lock(impl_->mu);
  impl_->held.erase(std::string(name));  // ~LockFile releases it
}

std::filesystem::path default_storage_root() {
  if (const char* explicit_root = std::getenv("ACMETOOL_STORAGE"); explicit_root && *explicit_root) {
    return explicit_root;
  }
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg) return fs::path(xdg) / "acmetool";
  fs::path home;
  if (const char* env_home = std::getenv("HOME"); env_home && *env_home) {
    home = env_home;
  } else if (const passwd* pw = ::getpwuid(::getuid()); pw && pw->pw_dir) {
    home = pw->pw_dir;
  } else {
    throw Error("cannot find a home directory for the default storage; pass --storage DIR");
  }
  return home / ".local" / "share" / "acmetool";
}

}  // namespace acmetool::pki
