// Memory BIOs for PEM and DER encoding inside libpki.
#pragma once

#include <openssl/bio.h>

#include <string>
#include <string_view>

#include "acmetool/pki/error.h"
#include "acmetool/pki/ossl.h"

namespace acmetool::pki {

/// A growable memory BIO to write PEM or DER into.
class MemoryBio {
 public:
  MemoryBio() : bio_(BIO_new(BIO_s_mem())) {
    if (!bio_) throw CryptoError("allocating a memory BIO");
  }
  BIO* get() const noexcept { return bio_.get(); }
  /// Everything written so far; the BIO is left empty.
  std::string take_contents() {
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio_.get(), &data);
    std::string out(data, static_cast<size_t>(size));
    (void)BIO_reset(bio_.get());
    return out;
  }

 private:
  OsslPtr<BIO> bio_;
};

/// A read-only BIO over `bytes`, which must outlive it.
class ReadOnlyBio {
 public:
  explicit ReadOnlyBio(std::string_view bytes) : bio_(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size()))) {
    if (!bio_) throw CryptoError("allocating a memory BIO");
  }
  BIO* get() const noexcept { return bio_.get(); }

 private:
  OsslPtr<BIO> bio_;
};

}  // namespace acmetool::pki
