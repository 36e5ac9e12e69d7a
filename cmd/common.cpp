#include "common.h"

#include "acmetool/pki/storage.h"

namespace acmetool::cmd {

std::filesystem::path Context::storage_root() const {
  return global.storage.empty() ? pki::default_storage_root() : global.storage;
}

}  // namespace acmetool::cmd
