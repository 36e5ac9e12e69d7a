// cmd/qualify.cpp: `acmetool qualify` tells, for each name, whether and how it can get a certificate.
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "common.h"

namespace acmetool::cmd {
namespace {

struct QualifyArgs {
  std::vector<std::string> names;
};

int run_qualify(const QualifyArgs&, Context&) { throw NotImplementedError("qualify"); }

}  // namespace

void add_qualify(CLI::App& root, Context& ctx) {
  auto args = std::make_shared<QualifyArgs>();
  CLI::App* sub = root.add_subcommand("qualify", "Classify names: public, internal, ip or invalid");
  sub->add_option("names", args->names, "Names to check ('--' ends options)")->required()->type_name("NAME");
  sub->callback([args, &ctx] { ctx.exit_code = run_qualify(*args, ctx); });
}

}  // namespace acmetool::cmd
