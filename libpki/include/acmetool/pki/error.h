// Errors thrown by libpki. Every message is one line saying what was being done to what.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>

namespace acmetool::pki {

/// Root of every libpki error.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A file-system call failed. The message is "<what> <path>: <strerror(errno)>".
class IoError : public Error {
 public:
  /// `what` says what was being done ("writing", "locking"); `err` is the errno value.
  IoError(const std::string& what, const std::filesystem::path& path, int err);
  const std::filesystem::path& path() const noexcept { return path_; }
  int error_number() const noexcept { return errno_; }

 private:
  std::filesystem::path path_;
  int errno_;
};

/// An OpenSSL call failed. The constructor drains the thread's OpenSSL error queue into the message,
/// so the queue is empty afterwards: "signing CSR for example.com: <reason>; <reason>".
class CryptoError : public Error {
 public:
  explicit CryptoError(const std::string& what);
};

/// A storage lock could not be taken before the deadline passed.
class LockTimeoutError : public Error {
 public:
  using Error::Error;
};

}  // namespace acmetool::pki
