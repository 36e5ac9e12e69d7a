// cmd/obtain.cpp: `acmetool obtain` gets a certificate for one or more names from an ACME CA.
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "common.h"

namespace acmetool::cmd {
namespace {

struct ObtainArgs {
  std::vector<std::string> names;
  std::string server = "https://acme-v02.api.letsencrypt.org/directory";
  std::string email;
  std::string key_type = "p256";
  std::vector<std::string> challenges;
  std::string ca_bundle;
  bool agree_tos = false;
  std::string out_dir;
};

int run_obtain(const ObtainArgs&, Context&) { throw NotImplementedError("obtain"); }

}  // namespace

void add_obtain(CLI::App& root, Context& ctx) {
  auto args = std::make_shared<ObtainArgs>();
  CLI::App* sub = root.add_subcommand("obtain", "Obtain a certificate for NAME... from an ACME CA");
  sub->add_option("names", args->names, "Domain names or IP addresses for the certificate")
      ->required()
      ->type_name("NAME");
  sub->add_option("--server", args->server, "ACME directory URL")->capture_default_str()->type_name("URL");
  sub->add_option("--email", args->email, "Account contact email")->type_name("EMAIL");
  sub->add_option("--key-type", args->key_type, "Certificate key type")
      ->type_name("TYPE")
      ->check(CLI::IsMember({"p256", "p384", "rsa2048", "rsa3072", "rsa4096", "ed25519"}))
      ->capture_default_str();
  sub->add_option("--challenge", args->challenges, "Challenge types to try, in order")
      ->check(CLI::IsMember({"http-01", "tls-alpn-01", "dns-01"}))
      ->delimiter(',')
      ->type_name("TYPE");
  sub->add_option("--ca-bundle", args->ca_bundle, "PEM file of roots to trust for the ACME server's TLS")
      ->type_name("FILE");
  sub->add_flag("--agree-tos", args->agree_tos, "Agree to the CA's terms of service");
  sub->add_option("--out", args->out_dir, "Also copy the certificate, chain and key into DIR")
      ->type_name("DIR");
  sub->callback([args, &ctx] { ctx.exit_code = run_obtain(*args, ctx); });
}

}  // namespace acmetool::cmd
