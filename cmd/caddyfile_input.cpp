#include "caddyfile_input.h"

#include <iostream>

#include "acmetool/caddyfile/env_file.h"

namespace acmetool::cmd {

AdaptedCaddyfile adapt_caddyfile(const std::string& path, const std::string& envfile, const Context& ctx) {
  caddyfile::ParseOptions options;
  if (!envfile.empty()) {
    options.env = caddyfile::env_lookup_with(caddyfile::read_env_file(envfile), caddyfile::process_environment());
  }
  AdaptedCaddyfile adapted;
  adapted.config = caddyfile::adapt_file(path, options, adapted.warnings);
  if (!ctx.global.quiet) {
    for (const caddyfile::Warning& w : adapted.warnings) {
      std::cerr << "acmetool: warning: " << w.where << ": " << w.message << '\n';
    }
  }
  return adapted;
}

}  // namespace acmetool::cmd
