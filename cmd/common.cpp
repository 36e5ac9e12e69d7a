#include "common.h"

#include "acmetool/pki/hostname.h"
#include "acmetool/pki/storage.h"

namespace acmetool::cmd {

std::filesystem::path Context::storage_root() const {
  return global.storage.empty() ? pki::default_storage_root() : global.storage;
}

std::vector<std::string> certificate_names(std::string_view argument, std::string_view command) {
  std::vector<std::string> names;
  for (size_t start = 0; start <= argument.size();) {
    const size_t comma = std::min(argument.find(',', start), argument.size());
    const pki::NameQualification q = pki::qualify_name(argument.substr(start, comma - start));
    if (q.name_class == pki::NameClass::Invalid) {
      throw UsageError(std::string(command) + ": " + q.name + ": " + q.reason);
    }
    names.push_back(q.name);
    start = comma + 1;
  }
  return names;
}

}  // namespace acmetool::cmd
