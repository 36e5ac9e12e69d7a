// cmd/serve.cpp: `acmetool serve` runs the automatic-HTTPS server. This far: the quick file-server
// mode (`--domain NAME --root DIR`, like `caddy file-server --domain`); serving a Caddyfile is
// issue 8's next step.
#include <CLI/CLI.hpp>

#include <csignal>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "acmetool/pki/hostname.h"
#include "acmetool/pki/storage.h"
#include "acmetool/serve/cert_manager.h"
#include "acmetool/serve/challenge_responder.h"
#include "acmetool/serve/server.h"
#include "common.h"

namespace acmetool::cmd {
namespace {

struct ServeArgs {
  std::string config = "Caddyfile";
  std::string envfile;
  std::string domain;
  std::string root = ".";
  bool browse = false;
  std::vector<std::string> listen;
  int http_port = 80;
  int https_port = 443;
  std::vector<std::string> cas;
  std::string ca_root;
  std::string email;
};

// Blocks SIGINT and SIGTERM in this thread (and the threads it starts), so that wait_for_signal()
// receives them.
sigset_t block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

int run_quick_file_server(const ServeArgs& args, Context& ctx) {
  const pki::NameQualification name = pki::qualify_name(args.domain);
  if (name.name_class == pki::NameClass::Invalid) {
    throw UsageError("serve: --domain " + args.domain + ": " + name.reason);
  }
  std::error_code ec;
  const std::filesystem::path root = std::filesystem::canonical(args.root, ec);
  if (ec || !std::filesystem::is_directory(root)) throw UsageError("serve: --root " + args.root + ": not a directory");

  const sigset_t stop_signals = block_stop_signals();
  pki::FileStorage storage(ctx.storage_root());
  auto http01 = std::make_shared<serve::Http01Responder>();
  serve::CertManagerOptions cert_options;
  const bool public_name = name.name_class == pki::NameClass::Public;
  if (public_name) {
    for (const std::string& ca : args.cas) cert_options.acme.directory_urls.push_back(ca_directory_url(ca, "serve"));
    if (cert_options.acme.directory_urls.empty()) {
      cert_options.acme.directory_urls = {ca_directory_url("letsencrypt", "serve")};
    }
    cert_options.acme.ca_root = args.ca_root;
    cert_options.acme.account.email = args.email;
    cert_options.acme.challenges = {"http-01"};
    cert_options.acme.http01_solver = http01;
    cert_options.acme.user_agent = "acmetool/" ACMETOOL_VERSION;
  }
  cert_options.log = progress_printer(ctx);
  serve::CertManager certificates(storage, std::move(cert_options));
  certificates.manage({{name.name, public_name ? serve::IssuerPolicy::Acme : serve::IssuerPolicy::Internal}});

  serve::ServerOptions options;
  options.listen_addresses = args.listen;
  options.http_port = args.http_port;
  options.https_port = args.https_port;
  serve::SiteOptions site;
  site.hosts = {name.name};
  site.files.root = root;
  site.files.browse = args.browse;
  options.sites = {site};
  options.http01 = http01;
  options.log = progress_printer(ctx);
  serve::Server server(std::move(options), certificates);
  server.start();
  certificates.start();
  if (const auto print = progress_printer(ctx)) {
    print("serving https://" + name.name + (server.https_port() == 443 ? "" : ":" + std::to_string(server.https_port())) +
          "/ from " + root.string());
  }
  int signal = 0;
  sigwait(&stop_signals, &signal);
  server.stop();
  return kExitOk;
}

int run_serve(const ServeArgs& args, Context& ctx) {
  if (!args.domain.empty()) return run_quick_file_server(args, ctx);
  throw NotImplementedError("serve with a Caddyfile");
}

}  // namespace

void add_serve(CLI::App& root, Context& ctx) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* sub = root.add_subcommand("serve", "Serve the sites of a Caddyfile over automatic HTTPS");
  sub->add_option("-c,--config", args->config, "Caddyfile to serve")->capture_default_str()->type_name("FILE");
  sub->add_option("--envfile", args->envfile, "Load environment variables from FILE first")->type_name("FILE");
  sub->add_option("--domain", args->domain, "Serve files for this name with a managed certificate (quick mode)")
      ->type_name("NAME");
  sub->add_option("--root", args->root, "Directory to serve in quick mode")->capture_default_str()->type_name("DIR");
  sub->add_flag("--browse", args->browse, "List directories without an index file");
  sub->add_option("--listen", args->listen, "Address to listen on, repeatable (default: every address)")
      ->type_name("ADDR");
  sub->add_option("--http-port", args->http_port, "Port for HTTP (redirects and http-01)")->capture_default_str();
  sub->add_option("--https-port", args->https_port, "Port for HTTPS")->capture_default_str();
  sub->add_option("--ca", args->cas, "ACME CA for public names, repeatable for fallback (default: letsencrypt)")
      ->type_name("CA");
  sub->add_option("--ca-root", args->ca_root, "PEM roots to trust for the CA's own TLS")->type_name("FILE");
  sub->add_option("--email", args->email, "Account email for the ACME CA")->type_name("EMAIL");
  sub->callback([args, &ctx] { ctx.exit_code = run_serve(*args, ctx); });
}

}  // namespace acmetool::cmd
