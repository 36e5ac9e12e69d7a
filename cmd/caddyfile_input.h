// cmd/caddyfile_input.h: reading a Caddyfile the way every Caddyfile subcommand does
// (validate, adapt, and later serve).
#pragma once

#include <string>
#include <vector>

#include "acmetool/caddyfile/adapt.h"
#include "common.h"

namespace acmetool::cmd {

struct AdaptedCaddyfile {
  caddyfile::Config config;
  std::vector<caddyfile::Warning> warnings;
};

/// Adapts the Caddyfile at `path`, with `{$VAR}` values from `envfile` (KEY=VALUE lines) before
/// the environment when it is not empty. Prints each warning to stderr unless -q. Throws as
/// caddyfile::adapt_file() and caddyfile::read_env_file() do.
AdaptedCaddyfile adapt_caddyfile(const std::string& path, const std::string& envfile, const Context& ctx);

}  // namespace acmetool::cmd
