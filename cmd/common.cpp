#include "common.h"

#include <iostream>
#include <mutex>

#include "acmetool/acme/issuance.h"
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

std::string ca_directory_url(const std::string& ca, std::string_view command) {
  std::string url = acme::directory_url_for(ca);
  if (!url.starts_with("https://")) {
    throw UsageError(std::string(command) + ": --ca " + ca +
                     ": expected letsencrypt, letsencrypt-staging, zerossl or an https:// URL");
  }
  return url;
}

std::function<void(std::string_view)> progress_printer(const Context& ctx) {
  if (ctx.global.quiet) return {};
  return [](std::string_view line) {
    static std::mutex output_mu;
    std::lock_guard lock(output_mu);
    std::cerr << "acmetool: " << line << '\n';
  };
}

}  // namespace acmetool::cmd
