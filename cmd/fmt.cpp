// cmd/fmt.cpp: `acmetool fmt` formats a Caddyfile the way `caddy fmt` does.
#include <CLI/CLI.hpp>

#include <string>

#include "common.h"

namespace acmetool::cmd {
namespace {

struct FmtArgs {
  std::string path = "Caddyfile";
  bool overwrite = false;
  bool diff = false;
};

int run_fmt(const FmtArgs& args, Context&) {
  if (args.overwrite && args.diff) throw UsageError("fmt: --overwrite and --diff cannot be combined");
  throw NotImplementedError("fmt");
}

}  // namespace

void add_fmt(CLI::App& root, Context& ctx) {
  auto args = std::make_shared<FmtArgs>();
  CLI::App* sub = root.add_subcommand("fmt", "Format a Caddyfile (exit 1 if it was not formatted)");
  sub->add_option("path", args->path, "Caddyfile to format ('-' reads stdin)")->capture_default_str()
      ->type_name("FILE");
  sub->add_flag("--overwrite", args->overwrite, "Write the result back to FILE");
  sub->add_flag("--diff", args->diff, "Print a diff instead of the formatted file");
  sub->callback([args, &ctx] { ctx.exit_code = run_fmt(*args, ctx); });
}

}  // namespace acmetool::cmd
