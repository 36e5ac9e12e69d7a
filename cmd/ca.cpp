// cmd/ca.cpp: `acmetool ca` manages the local certificate authority used for internal names.
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "common.h"

namespace acmetool::cmd {
namespace {

struct CaArgs {
  std::string ca_name = "local";
  std::string common_name = "acmetool Local Authority";
  std::vector<std::string> names;
  std::string lifetime = "12h";
  std::string out;
  bool root = false;
  std::string format = "pem";
};

int run_ca(const std::string& action, const CaArgs&, Context&) { throw NotImplementedError("ca " + action); }

CLI::App* add_ca_action(CLI::App& ca, const char* action, const char* help, std::shared_ptr<CaArgs> args,
                        Context& ctx) {
  CLI::App* sub = ca.add_subcommand(action, help);
  sub->callback([action, args, &ctx] { ctx.exit_code = run_ca(action, *args, ctx); });
  return sub;
}

}  // namespace

void add_ca(CLI::App& root, Context& ctx) {
  auto args = std::make_shared<CaArgs>();
  CLI::App* ca = root.add_subcommand("ca", "Manage the local certificate authority");
  ca->require_subcommand(1);
  ca->add_option("--name", args->ca_name, "CA identifier (storage: pki/authorities/NAME)")
      ->type_name("NAME")
      ->capture_default_str();

  CLI::App* init = add_ca_action(*ca, "init", "Create the root and intermediate (never overwrites a root)",
                                 args, ctx);
  init->add_option("--cn", args->common_name, "Root common name")->type_name("CN")->capture_default_str();

  add_ca_action(*ca, "status", "Show fingerprints, validity and where the root is trusted", args, ctx);

  CLI::App* issue = add_ca_action(*ca, "issue", "Issue a leaf certificate for NAME...", args, ctx);
  issue->add_option("names", args->names, "DNS names or IP addresses")->required()->type_name("NAME");
  issue->add_option("--lifetime", args->lifetime, "Leaf lifetime (Go duration: 12h, 90m)")
      ->type_name("DURATION")
      ->capture_default_str();
  issue->add_option("--out", args->out, "Directory for the certificate, chain and key")->type_name("DIR");

  CLI::App* rotate = add_ca_action(*ca, "rotate", "Renew the intermediate now", args, ctx);
  rotate->add_flag("--root", args->root, "Also replace the root (it must then be trusted again)");

  CLI::App* exporter = add_ca_action(*ca, "export", "Write the root certificate", args, ctx);
  exporter->add_option("--format", args->format, "Output format")
      ->type_name("FORMAT")
      ->check(CLI::IsMember({"pem", "der", "p12"}))
      ->capture_default_str();
  exporter->add_option("--out", args->out, "Output file (default: stdout)")->type_name("FILE");
}

}  // namespace acmetool::cmd
