// cmd/qualify.cpp: `acmetool qualify` tells, for each name, whether and how it can get a certificate.
#include <CLI/CLI.hpp>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "acmetool/pki/hostname.h"
#include "common.h"

namespace acmetool::cmd {
namespace {

struct QualifyArgs {
  std::vector<std::string> names;
};

int run_qualify(const QualifyArgs& args, Context& ctx) {
  nlohmann::json json = nlohmann::json::array();
  int exit_code = kExitOk;
  for (const std::string& input : args.names) {
    const pki::NameQualification q = pki::qualify_name(input);
    if (q.name_class == pki::NameClass::Invalid) exit_code = kExitPartial;
    if (ctx.global.json) {
      // error_handler_t::replace: a name that is not UTF-8 still yields valid JSON (U+FFFD).
      json.push_back({{"input", q.input},
                      {"name", q.name},
                      {"class", pki::to_string(q.name_class)},
                      {"issuer", q.issuer},
                      {"reason", q.reason}});
    } else {
      std::cout << q.name << '\t' << pki::to_string(q.name_class) << '\t' << q.issuer << '\t' << q.reason << '\n';
    }
  }
  if (ctx.global.json) std::cout << json.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
  return exit_code;
}

}  // namespace

void add_qualify(CLI::App& root, Context& ctx) {
  auto args = std::make_shared<QualifyArgs>();
  CLI::App* sub = root.add_subcommand("qualify", "Classify names: public, internal, ip or invalid");
  sub->add_option("names", args->names, "Names to check ('--' ends options)")->required()->type_name("NAME");
  sub->callback([args, &ctx] { ctx.exit_code = run_qualify(*args, ctx); });
}

}  // namespace acmetool::cmd
