// cmd/revoke.cpp: `acmetool revoke` asks the CA to revoke a certificate.
#include <CLI/CLI.hpp>

#include <string>

#include "common.h"

namespace acmetool::cmd {
namespace {

struct RevokeArgs {
  std::string name;
  std::string cert_file;
  std::string reason = "unspecified";
};

int run_revoke(const RevokeArgs& args, Context&) {
  if (args.name.empty() == args.cert_file.empty()) throw UsageError("revoke: give either NAME or --cert FILE");
  throw NotImplementedError("revoke");
}

}  // namespace

void add_revoke(CLI::App& root, Context& ctx) {
  auto args = std::make_shared<RevokeArgs>();
  CLI::App* sub = root.add_subcommand("revoke", "Revoke a stored certificate or a certificate file");
  sub->add_option("name", args->name, "Stored certificate to revoke")->type_name("NAME");
  sub->add_option("--cert", args->cert_file, "Certificate file (PEM) to revoke")->type_name("FILE");
  sub->add_option("--reason", args->reason, "RFC 5280 revocation reason")
      ->type_name("REASON")
      ->check(CLI::IsMember({"unspecified", "keyCompromise", "superseded", "cessationOfOperation"}))
      ->capture_default_str();
  sub->callback([args, &ctx] { ctx.exit_code = run_revoke(*args, ctx); });
}

}  // namespace acmetool::cmd
