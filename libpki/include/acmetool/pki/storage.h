// Certificate storage: a key/value store with '/'-separated keys and named locks, the same model as
// CertMagic's Storage interface, so acmetool and Caddy can share one storage directory.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace acmetool::pki {

/// What stat() knows about a key.
struct KeyInfo {
  std::string key;
  std::chrono::system_clock::time_point modified;
  std::uint64_t size = 0;    ///< bytes; 0 for a prefix
  bool is_terminal = true;   ///< false when the key is a prefix of other keys (a directory)
};

/// Abstract storage. Keys are relative, '/'-separated, with no empty, "." or ".." component;
/// build them with the functions in storage_keys.h. Implementations are safe to call from several
/// threads and, through locks, from several processes. Every method throws IoError (or another
/// pki::Error) when the backing store fails; an invalid key throws pki::Error.
class Storage {
 public:
  virtual ~Storage() = default;

  /// Stores `value` under `key`, replacing any old value atomically: a reader (or a crash) sees
  /// the whole old value or the whole new one, never a mix or a truncated file.
  virtual void store(std::string_view key, std::string_view value) = 0;

  /// The value under `key`, or nullopt when there is none.
  virtual std::optional<std::string> load(std::string_view key) const = 0;

  /// Deletes `key` and, when it is a prefix, everything below it. Returns false when nothing was there.
  virtual bool erase(std::string_view key) = 0;

  virtual bool exists(std::string_view key) const = 0;

  /// Keys directly below `prefix` (values and prefixes), or with `recursive` every value key below
  /// it. Sorted. An absent prefix gives an empty list.
  virtual std::vector<std::string> list(std::string_view prefix, bool recursive) const = 0;

  /// Size, modification time and kind of `key`, or nullopt when there is none.
  virtual std::optional<KeyInfo> stat(std::string_view key) const = 0;

  /// Takes the named lock, waiting at most `timeout`; throws LockTimeoutError after that. Locks
  /// exclude holders in this process and in other processes sharing the storage. A lock must be
  /// released with unlock() by the same Storage object.
  virtual void lock(std::string_view name, std::chrono::milliseconds timeout) = 0;

  /// Takes the named lock if it is free now; returns whether it did.
  virtual bool try_lock(std::string_view name) = 0;

  /// Releases a lock taken by lock() or try_lock(). Unlocking a lock not held is a no-op.
  virtual void unlock(std::string_view name) = 0;

  /// Where the storage lives, for messages: "/var/lib/acmetool".
  virtual std::string describe() const = 0;
};

/// Holds a storage lock for its lifetime.
class StorageLock {
 public:
  StorageLock(Storage& storage, std::string name, std::chrono::milliseconds timeout)
      : storage_(&storage), name_(std::move(name)) {
    storage_->lock(name_, timeout);
  }
  ~StorageLock() {
    if (storage_) storage_->unlock(name_);
  }
  StorageLock(const StorageLock&) = delete;
  StorageLock& operator=(const StorageLock&) = delete;

 private:
  Storage* storage_;
  std::string name_;
};

/// Tunables of FileStorage's lock files; the defaults are CertMagic's.
struct FileStorageOptions {
  /// How often a held lock file's "updated" stamp is rewritten.
  std::chrono::milliseconds lock_refresh_interval{5000};
  /// A lock file whose newest stamp is older than this is stale and may be taken over.
  std::chrono::milliseconds lock_stale_after{10000};
  /// How often a waiter looks at a lock held by someone else.
  std::chrono::milliseconds lock_poll_interval{250};
};

/// Storage in a directory, laid out as CertMagic's file storage: key "a/b" is file ROOT/a/b.
/// Files are 0600 and directories 0700 whatever the umask. Lock "name" is the file
/// ROOT/locks/<safe(name)>.lock holding CertMagic's JSON {"created","updated"}; the holder also keeps
/// a kernel flock on it, so a holder that dies releases the lock at once for processes on this host,
/// while Caddy, or a host sharing the directory over NFS, sees the CertMagic freshness protocol.
/// A background thread refreshes held locks; it runs only while at least one lock is held.
class FileStorage : public Storage {
 public:
  explicit FileStorage(std::filesystem::path root, FileStorageOptions options = {});
  ~FileStorage() override;  // releases every lock still held
  FileStorage(const FileStorage&) = delete;
  FileStorage& operator=(const FileStorage&) = delete;

  void store(std::string_view key, std::string_view value) override;
  std::optional<std::string> load(std::string_view key) const override;
  bool erase(std::string_view key) override;
  bool exists(std::string_view key) const override;
  std::vector<std::string> list(std::string_view prefix, bool recursive) const override;
  std::optional<KeyInfo> stat(std::string_view key) const override;
  void lock(std::string_view name, std::chrono::milliseconds timeout) override;
  bool try_lock(std::string_view name) override;
  void unlock(std::string_view name) override;
  std::string describe() const override;

  const std::filesystem::path& root() const noexcept;
  /// The file that holds `key`; throws pki::Error for an invalid key (absolute, "..", empty part).
  std::filesystem::path path_of(std::string_view key) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The default storage directory: $ACMETOOL_STORAGE, else $XDG_DATA_HOME/acmetool, else
/// ~/.local/share/acmetool (home from $HOME, else the password database).
std::filesystem::path default_storage_root();

}  // namespace acmetool::pki
