#include "acmetool/pki/error.h"

#include <openssl/err.h>

#include <cstring>

namespace acmetool::pki {

IoError::IoError(const std::string& what, const std::filesystem::path& path, int err)
    : Error(what + " " + path.string() + ": " + std::strerror(err)), path_(path), errno_(err) {}

namespace {

std::string drain_openssl_errors(const std::string& what) {
  std::string message = what;
  const char* separator = ": ";
  while (unsigned long code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    message += separator;
    message += buf;
    separator = "; ";
  }
  return message;
}

}  // namespace

CryptoError::CryptoError(const std::string& what) : Error(drain_openssl_errors(what)) {}

}  // namespace acmetool::pki
