// cmd/version.cpp: `acmetool version` prints the version (also `acmetool --version`).
#include <CLI/CLI.hpp>

#include <iostream>

#include "common.h"

namespace acmetool::cmd {

void add_version(CLI::App& root, Context& ctx) {
  CLI::App* sub = root.add_subcommand("version", "Print the version");
  sub->callback([&ctx] {
    if (ctx.global.json) {
      std::cout << "{\"version\":\"" << ACMETOOL_VERSION << "\"}\n";
    } else {
      std::cout << "acmetool " << ACMETOOL_VERSION << '\n';
    }
    ctx.exit_code = kExitOk;
  });
}

}  // namespace acmetool::cmd
