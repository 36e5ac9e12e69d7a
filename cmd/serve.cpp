// cmd/serve.cpp: `acmetool serve` runs the automatic-HTTPS server: the sites of a Caddyfile, or
// in quick mode (`--domain NAME --root DIR`, like `caddy file-server --domain`) one directory.
#include <CLI/CLI.hpp>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <functional>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "acmetool/pki/ca.h"
#include "acmetool/pki/files.h"
#include "acmetool/pki/hostname.h"
#include "acmetool/pki/storage.h"
#include "acmetool/pki/trust.h"
#include "acmetool/caddyfile/adapt.h"
#include "acmetool/caddyfile/parse.h"
#include "acmetool/serve/admin.h"
#include "acmetool/serve/cert_manager.h"
#include "acmetool/serve/cert_plan.h"
#include "acmetool/serve/error.h"
#include "acmetool/serve/metrics.h"
#include "acmetool/serve/routes.h"
#include "acmetool/serve/challenge_responder.h"
#include "acmetool/serve/server.h"
#include "caddyfile_input.h"
#include "common.h"
#include "trust_args.h"

namespace acmetool::cmd {
namespace {

struct ServeArgs {
  std::string config = "Caddyfile";
  std::string envfile;
  std::string domain;
  std::string root = ".";
  bool browse = false;
  std::vector<std::string> listen;
  std::optional<int> http_port;   ///< default 80, or the Caddyfile's http_port
  std::optional<int> https_port;  ///< default 443, or the Caddyfile's https_port
  std::vector<std::string> cas;
  std::string ca_root;
  std::string email;
  std::string pidfile;  ///< default: <storage>/serve.pid
  bool reload = false;
  bool trust = false;  ///< install the local CA's root into the trust stores first
  std::string admin;   ///< admin endpoint address; overrides the Caddyfile's `admin`
  // Quick reverse proxy (`--from NAME --to UPSTREAM`, like `caddy reverse-proxy`).
  std::string from = "localhost";
  std::vector<std::string> to;
  bool change_host_header = false;
  std::vector<std::string> header_up;    ///< "Field: value"
  std::vector<std::string> header_down;  ///< "Field: value"
  bool internal_certs = false;
};

std::filesystem::path pidfile_of(const ServeArgs& args, const Context& ctx) {
  return args.pidfile.empty() ? ctx.storage_root() / "serve.pid" : std::filesystem::path(args.pidfile);
}

// Records this process's PID for `serve --reload`; removed again when serving ends.
class PidFile {
 public:
  explicit PidFile(std::filesystem::path path) : path_(std::move(path)) {
    if (path_.has_parent_path()) pki::make_dirs(path_.parent_path());
    pki::write_file_atomic(path_, std::to_string(::getpid()) + "\n", 0644);
  }
  ~PidFile() {
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
  }
  PidFile(const PidFile&) = delete;
  PidFile& operator=(const PidFile&) = delete;

 private:
  std::filesystem::path path_;
};

// Blocks SIGINT, SIGTERM and SIGHUP in this thread (and the threads it starts), so that sigwait()
// receives them: the first two stop the server, SIGHUP reloads its configuration.
sigset_t block_server_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

// Waits for SIGINT or SIGTERM, calling `reload` for each SIGHUP meanwhile.
void wait_for_stop(const sigset_t& signals, const std::function<void()>& reload) {
  for (;;) {
    int signal = 0;
    sigwait(&signals, &signal);
    if (signal != SIGHUP) return;
    if (reload) reload();
  }
}

// Caddy's automatic trust: before serving names from the local CA, its root goes into the system,
// NSS and Java stores as `acmetool trust` puts it there — when --trust asks, or on an interactive
// first run: as root (Caddy would prompt for sudo), on a terminal (scripts and CI change trust
// stores only when they say so), with no record of the CA being trusted, and without
// skip_install_trust in the Caddyfile. A store that cannot be changed is a warning: serving goes on.
void trust_local_ca(pki::FileStorage& storage, const pki::CaOptions& ca, bool asked, bool skip,
                    const std::function<void(std::string_view)>& print) {
  const bool first_interactive_run =
      !skip && ::geteuid() == 0 && ::isatty(STDIN_FILENO) == 1 && pki::load_trust_record(storage, ca.name).empty();
  if (!asked && !first_interactive_run) return;
  pki::LocalCa::open(storage, ca);  // creates the CA on its first use
  const pki::RootCertificate root = load_ca_root(storage, ca.name);
  const std::vector<pki::TrustEntry> entries = pki::apply_trust(pki::TrustAction::Install, root, {});
  record_trust_or_warn(storage, pki::TrustAction::Install, root, entries);
  for (const pki::TrustEntry& e : entries) {
    if (!print) break;
    const std::string store(pki::to_string(e.store));
    switch (e.outcome) {
      case pki::TrustOutcome::Changed: print("trusted the local CA in " + store + ": " + e.location); break;
      case pki::TrustOutcome::Already: break;
      case pki::TrustOutcome::Skipped: break;  // no such store here (no Java)
      case pki::TrustOutcome::Failed:
        print("warning: could not trust the local CA in " + store + ": " + e.reason +
              (e.command.empty() ? "" : "; run instead: " + e.command));
        break;
    }
  }
}

// The admin endpoint (/metrics, /health) when asked for: --admin, the Caddyfile's `admin ADDRESS`,
// or an `admin { ... }` block (then Caddy's localhost:2019). Caddy runs it by default; serve only when
// asked, since it reveals the names served. Null otherwise.
std::unique_ptr<serve::AdminServer> start_admin(const caddyfile::AdminOptions& admin, serve::ServerMetrics& metrics,
                                                const serve::CertManager& certificates,
                                                const std::atomic<bool>& serving,
                                                const std::function<void(std::string_view)>& print) {
  const bool asked = admin.listen || admin.enforce_origin || !admin.origins.empty();
  if (admin.disabled || !asked) return nullptr;
  serve::AdminServerOptions options;
  options.listen = admin.listen.value_or("localhost:2019");
  options.enforce_origin = admin.enforce_origin;
  options.origins = admin.origins;
  options.metrics = [&metrics, &certificates] { return serve::render_prometheus(metrics, certificates.stats()); };
  options.healthy = [&serving] { return serving.load(); };
  options.log = print;
  auto server = std::make_unique<serve::AdminServer>(std::move(options));
  server->start();
  if (print) print("admin endpoint on " + server->address() + ": /metrics, /health");
  return server;
}

int run_quick_file_server(const ServeArgs& args, Context& ctx) {
  const pki::NameQualification name = pki::qualify_name(args.domain);
  if (name.name_class == pki::NameClass::Invalid) {
    throw UsageError("serve: --domain " + args.domain + ": " + name.reason);
  }
  std::error_code ec;
  const std::filesystem::path root = std::filesystem::canonical(args.root, ec);
  if (ec || !std::filesystem::is_directory(root)) throw UsageError("serve: --root " + args.root + ": not a directory");

  const sigset_t signals = block_server_signals();
  pki::FileStorage storage(ctx.storage_root());
  auto http01 = std::make_shared<serve::Http01Responder>();
  auto tlsalpn01 = std::make_shared<acme::TlsAlpn01Responder>();
  serve::CertManagerOptions cert_options;
  const bool public_name = name.name_class == pki::NameClass::Public;
  if (public_name) {
    for (const std::string& ca : args.cas) cert_options.acme.directory_urls.push_back(ca_directory_url(ca, "serve"));
    if (cert_options.acme.directory_urls.empty()) {
      cert_options.acme.directory_urls = {ca_directory_url("letsencrypt", "serve")};
    }
    cert_options.acme.ca_root = args.ca_root;
    cert_options.acme.account.email = args.email;
    cert_options.acme.challenges = {"http-01", "tls-alpn-01"};
    cert_options.acme.http01_solver = http01;
    cert_options.acme.tlsalpn01_solver = tlsalpn01;
    cert_options.acme.user_agent = "acmetool/" ACMETOOL_VERSION;
  }
  cert_options.log = progress_printer(ctx);
  if (!public_name) trust_local_ca(storage, cert_options.local_ca, args.trust, false, progress_printer(ctx));
  serve::CertManager certificates(storage, std::move(cert_options));
  certificates.manage({{name.name, public_name ? serve::IssuerPolicy::Acme : serve::IssuerPolicy::Internal}});

  serve::ServerOptions options;
  options.listen_addresses = args.listen;
  options.http_port = args.http_port.value_or(80);
  options.https_port = args.https_port.value_or(443);
  serve::SiteOptions site;
  site.hosts = {name.name};
  site.files.root = root;
  site.files.browse = args.browse;
  options.sites = {site};
  options.http01 = http01;
  options.tlsalpn01 = tlsalpn01;
  options.log = progress_printer(ctx);
  auto metrics = std::make_shared<serve::ServerMetrics>();
  options.metrics = metrics;
  serve::Server server(std::move(options), certificates);
  server.start();
  certificates.start();
  std::atomic<bool> serving{true};
  caddyfile::AdminOptions admin_options;
  if (!args.admin.empty()) admin_options.listen = args.admin;
  const std::unique_ptr<serve::AdminServer> admin =
      start_admin(admin_options, *metrics, certificates, serving, progress_printer(ctx));
  if (const auto print = progress_printer(ctx)) {
    print("serving https://" + name.name + (server.https_port() == 443 ? "" : ":" + std::to_string(server.https_port())) +
          "/ from " + root.string());
  }
  const PidFile pidfile(pidfile_of(args, ctx));
  wait_for_stop(signals, nullptr);  // nothing to reload without a Caddyfile
  serving = false;
  server.stop();
  if (admin) admin->stop();
  return kExitOk;
}

// The sites of an adapted Caddyfile, for the server: one SiteOptions per site and scheme. Only
// the HTTP and HTTPS ports are served yet; another port is a configuration error.
std::vector<serve::SiteOptions> sites_of(const caddyfile::Config& config, int http_port, int https_port) {
  std::vector<serve::SiteOptions> out;
  for (const caddyfile::Site& site : config.sites) {
    serve::check_routes_supported(site);
    auto routes = std::make_shared<const caddyfile::Site>(site);
    serve::SiteOptions https_site, http_site;
    https_site.routes = http_site.routes = routes;
    if (!site.logs.empty()) https_site.access_log = http_site.access_log = serve::AccessLogWriter::open(site.logs.front());
    http_site.https = false;
    bool any_https = false, any_http = false, catch_all_https = false, catch_all_http = false;
    for (const caddyfile::SiteAddress& a : site.addresses) {
      const bool https = a.scheme == "https";
      if (a.port != (https ? https_port : http_port)) {
        throw UsageError("serve: " + a.file + ":" + std::to_string(a.line) + ": " + a.address.to_string() +
                         ": only the HTTP port (" + std::to_string(http_port) + ") and the HTTPS port (" +
                         std::to_string(https_port) + ") are served yet");
      }
      const std::string host = pki::qualify_name(a.address.host).name;
      (https ? any_https : any_http) = true;
      if (host.empty()) (https ? catch_all_https : catch_all_http) = true;
      else (https ? https_site : http_site).hosts.push_back(host);
    }
    if (catch_all_https) https_site.hosts.clear();
    if (catch_all_http) http_site.hosts.clear();
    if (any_https) out.push_back(https_site);
    if (any_http) out.push_back(http_site);
  }
  return out;
}

// One `bind` host as an IP literal for the listeners: "127.0.0.1", "[::1]", "tcp4/0.0.0.0",
// "localhost" (127.0.0.1). Host names other than localhost and unix sockets are
// refused with the site's file:line.
std::vector<std::string> bind_addresses(std::string host, const caddyfile::Site& site) {
  const std::string where = site.file + ":" + std::to_string(site.line) + ": bind " + host;
  for (const std::string_view network : {"tcp/", "tcp4/", "tcp6/"}) {
    if (host.starts_with(network)) host.erase(0, network.size());
  }
  if (host.starts_with("unix/") || host.starts_with("unixgram/") || host.starts_with("udp")) {
    throw UsageError("serve: " + where + ": only TCP addresses are served yet");
  }
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host == "localhost") return {"127.0.0.1"};  // as Go's net.Listen binds it, for Caddy
  if (pki::qualify_name(host).name_class != pki::NameClass::Ip) {
    throw UsageError("serve: " + where + ": not an IP address (serve binds addresses, not names)");
  }
  return {host};
}

// The addresses to listen on: the union of the sites' `bind` hosts (else the global default_bind),
// or every address (an empty list) as soon as one site binds nothing. The listeners are shared:
// a site is reachable on every address another site binds (Caddy gives each its own listener).
std::vector<std::string> listen_addresses_of(const caddyfile::Config& config) {
  std::vector<std::string> out;
  for (const caddyfile::Site& site : config.sites) {
    const std::vector<std::string>& binds = !site.bind.empty() ? site.bind : config.global.default_bind;
    if (binds.empty()) return {};
    for (const std::string& host : binds) {
      for (std::string& address : bind_addresses(host, site)) {
        if (std::find(out.begin(), out.end(), address) == out.end()) out.push_back(std::move(address));
      }
    }
  }
  return out;
}

// A Caddyfile token for `text`: quoted when it holds spaces, quotes or braces. Control characters
// (a newline would start a new directive) are refused.
std::string caddyfile_token(const std::string& text, const std::string& flag) {
  if (std::any_of(text.begin(), text.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; })) {
    throw UsageError("serve: " + flag + ": control characters are not allowed");
  }
  if (!text.empty() && text.find_first_of(" \t\"{}\\#`") == std::string::npos) return text;
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// "Field: value" of --header-up/--header-down as the two tokens of a header_up/down line.
std::string header_line(const std::string& flag, const std::string& text) {
  const std::size_t colon = text.find(':');
  const auto trim = [](std::string v) {
    v.erase(0, v.find_first_not_of(' '));
    v.erase(v.find_last_not_of(' ') + 1);
    return v;
  };
  const std::string field = colon == std::string::npos ? "" : trim(text.substr(0, colon));
  if (field.empty()) throw UsageError("serve: " + flag + " " + text + ": expected \"Field: value\"");
  return caddyfile_token(field, flag) + " " + caddyfile_token(trim(text.substr(colon + 1)), flag);
}

// The Caddyfile `serve --from NAME --to UPSTREAM...` stands for, as `caddy reverse-proxy` builds
// its config: one site proxying to the upstreams, with the header flags as header_up/down.
std::string quick_proxy_caddyfile(const ServeArgs& args) {
  std::string text = "{\n";
  if (args.http_port) text += "\thttp_port " + std::to_string(*args.http_port) + "\n";
  if (args.https_port) text += "\thttps_port " + std::to_string(*args.https_port) + "\n";
  text += "}\n\n" + caddyfile_token(args.from, "--from") + " {\n\treverse_proxy";
  for (const std::string& upstream : args.to) text += " " + caddyfile_token(upstream, "--to");
  text += " {\n";
  if (args.change_host_header) text += "\t\theader_up Host {upstream_hostport}\n";
  for (const std::string& h : args.header_up) text += "\t\theader_up " + header_line("--header-up", h) + "\n";
  for (const std::string& h : args.header_down) text += "\t\theader_down " + header_line("--header-down", h) + "\n";
  text += "\t}\n";
  if (args.internal_certs) text += "\ttls internal\n";
  return text + "}\n";
}

caddyfile::Config adapt_quick_proxy(const ServeArgs& args) {
  const caddyfile::ParseResult parsed = caddyfile::parse(quick_proxy_caddyfile(args), "serve --from/--to");
  std::vector<caddyfile::Warning> warnings;
  return caddyfile::adapt(parsed, warnings);
}

// A Caddyfile read, adapted and checked: what the server and the certificate manager need.
struct LoadedConfig {
  caddyfile::Config config;
  serve::CertificatePlan plan;
  std::vector<serve::SiteOptions> sites;
  bool redirect_http = true;
};

LoadedConfig load_caddyfile(const ServeArgs& args, const Context& ctx) {
  LoadedConfig loaded;
  loaded.config = args.to.empty() ? adapt_caddyfile(args.config, args.envfile, ctx).config : adapt_quick_proxy(args);
  const caddyfile::GlobalOptions& global = loaded.config.global;
  try {
    loaded.plan = serve::plan_certificates(loaded.config);
    loaded.sites = sites_of(loaded.config, global.effective_http_port(), global.effective_https_port());
  } catch (const serve::Error& e) {
    throw UsageError(std::string("serve: ") + e.what());
  }
  loaded.redirect_http = !global.auto_https.off && !global.auto_https.disable_redirects;
  return loaded;
}

// `serve --reload`: checks the Caddyfile, then asks the running server to load it (SIGHUP).
int signal_reload(const ServeArgs& args, Context& ctx) {
  load_caddyfile(args, ctx);  // a broken file is reported here, and the server is not bothered
  const std::filesystem::path path = pidfile_of(args, ctx);
  const std::optional<std::string> text = pki::read_file(path);
  if (!text) throw std::runtime_error("serve --reload: no running server (" + path.string() + " not found)");
  const pid_t pid = static_cast<pid_t>(std::atol(text->c_str()));
  if (pid <= 0 || ::kill(pid, SIGHUP) != 0) {
    throw std::runtime_error("serve --reload: no server runs as pid " + std::to_string(pid) + " (stale " +
                             path.string() + ")");
  }
  if (const auto print = progress_printer(ctx)) print("asked the server (pid " + std::to_string(pid) + ") to reload");
  return kExitOk;
}

int run_caddyfile(const ServeArgs& args, Context& ctx) {
  LoadedConfig loaded = load_caddyfile(args, ctx);
  const caddyfile::Config& config = loaded.config;
  serve::CertificatePlan& plan = loaded.plan;
  serve::ServerOptions options;
  options.listen_addresses = args.listen.empty() ? listen_addresses_of(config) : args.listen;
  options.http_port = args.http_port.value_or(config.global.effective_http_port());
  options.https_port = args.https_port.value_or(config.global.effective_https_port());
  const auto print = progress_printer(ctx);
  for (const std::string& warning : plan.warnings) {
    if (print) print("warning: " + warning);
  }
  for (const std::string& warning : serve::apply_server_blocks(config.global.servers, options)) {
    if (print) print("warning: " + warning);
  }
  // http-01 is answered on the server's own HTTP port, tls-alpn-01 on its HTTPS port.
  auto http01 = std::make_shared<serve::Http01Responder>();
  auto tlsalpn01 = std::make_shared<acme::TlsAlpn01Responder>();
  plan.options.acme.http01_solver = http01;
  plan.options.acme.tlsalpn01_solver = tlsalpn01;
  plan.options.acme.http_port = options.http_port;
  plan.options.acme.tls_port = options.https_port;
  plan.options.acme.user_agent = "acmetool/" ACMETOOL_VERSION;
  plan.options.log = print;

  const sigset_t signals = block_server_signals();
  const std::filesystem::path storage_root = !ctx.global.storage.empty() || !config.global.storage_root
                                                 ? ctx.storage_root()
                                                 : std::filesystem::path(*config.global.storage_root);
  pki::FileStorage storage(storage_root);
  const bool uses_local_ca = std::any_of(plan.names.begin(), plan.names.end(), [](const serve::ManagedName& n) {
    return n.policy == serve::IssuerPolicy::Internal;
  });
  if (uses_local_ca) {
    trust_local_ca(storage, plan.options.local_ca, args.trust, config.global.skip_install_trust, print);
  }
  serve::CertManager certificates(storage, std::move(plan.options));
  certificates.manage(plan.names);
  options.sites = loaded.sites;
  options.redirect_http = loaded.redirect_http;
  auto metrics = std::make_shared<serve::ServerMetrics>();
  options.metrics = metrics;
  options.http01 = http01;
  options.tlsalpn01 = tlsalpn01;
  options.log = print;
  serve::Server server(std::move(options), certificates);
  server.start();
  certificates.start();
  std::atomic<bool> serving{true};
  std::unique_ptr<serve::AdminServer> admin;
  try {
    caddyfile::AdminOptions admin_options = config.global.admin;
    if (!args.admin.empty()) {
      admin_options.disabled = false;
      admin_options.listen = args.admin;
    }
    admin = start_admin(admin_options, *metrics, certificates, serving, print);
  } catch (const serve::Error&) {
    server.stop(std::chrono::milliseconds(0));
    throw;
  }
  if (print) {
    print("serving " + std::to_string(config.sites.size()) + " site(s) from " +
          (args.to.empty() ? args.config : "--from " + args.from + " --to " + args.to.front()) + ": HTTPS on port " +
          std::to_string(server.https_port()) + ", HTTP on port " + std::to_string(server.http_port()));
  }
  const PidFile pidfile(pidfile_of(args, ctx));
  // SIGHUP: the new sites and names take over, connections stay open; a file that fails to load
  // leaves the running configuration alone. Ports and certificate settings (CAs, on-demand) are
  // kept from the start.
  wait_for_stop(signals, [&] {
    try {
      LoadedConfig next = load_caddyfile(args, ctx);
      certificates.manage(next.plan.names);
      server.replace_sites(std::move(next.sites), next.redirect_http);
      metrics->record_reload(true);
      if (print) print("reloaded " + args.config + ": " + std::to_string(next.config.sites.size()) + " site(s)");
    } catch (const std::exception& e) {
      metrics->record_reload(false);
      if (print) print("reload failed, keeping the running configuration: " + std::string(e.what()));
    }
  });
  serving = false;  // /health says so while connections drain
  server.stop();
  if (admin) admin->stop();
  return kExitOk;
}

int run_serve(const ServeArgs& args, Context& ctx) {
  if (!args.to.empty() && !args.domain.empty()) throw UsageError("serve: --to and --domain cannot be used together");
  if (args.to.empty() && (args.change_host_header || !args.header_up.empty() || !args.header_down.empty() ||
                          args.internal_certs)) {
    throw UsageError("serve: --change-host-header, --header-up, --header-down and --internal-certs need --to");
  }
  if (args.reload) return signal_reload(args, ctx);
  if (!args.domain.empty()) return run_quick_file_server(args, ctx);
  return run_caddyfile(args, ctx);
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
  sub->add_option("--http-port", args->http_port, "Port for HTTP (redirects and http-01; default 80)")->type_name("N");
  sub->add_option("--https-port", args->https_port, "Port for HTTPS (default 443)")->type_name("N");
  sub->add_option("--ca", args->cas, "ACME CA for public names, repeatable for fallback (default: letsencrypt)")
      ->type_name("CA");
  sub->add_option("--ca-root", args->ca_root, "PEM roots to trust for the CA's own TLS")->type_name("FILE");
  sub->add_option("--email", args->email, "Account email for the ACME CA")->type_name("EMAIL");
  sub->add_option("--pidfile", args->pidfile, "Where the server writes its PID (default: STORAGE/serve.pid)")
      ->type_name("FILE");
  sub->add_flag("--reload", args->reload, "Check the Caddyfile and make the running server load it");
  sub->add_option("--admin", args->admin,
                  "Serve /metrics and /health on this address (e.g. localhost:2019; overrides the Caddyfile)")
      ->type_name("ADDR");
  sub->add_flag("--trust", args->trust,
                "Install the local CA's root into the system, NSS and Java trust stores before serving");
  sub->add_option("--from", args->from, "Quick reverse proxy: the site address to receive traffic on")
      ->capture_default_str()
      ->type_name("ADDR");
  sub->add_option("--to", args->to, "Quick reverse proxy: upstream to proxy to, repeatable (host:port, unix//path)")
      ->type_name("UPSTREAM");
  sub->add_flag("--change-host-header", args->change_host_header,
                "Quick reverse proxy: send the upstream's host:port as Host instead of the client's");
  sub->add_option("--header-up", args->header_up, "Quick reverse proxy: set a request field, \"Field: value\"")
      ->type_name("HEADER");
  sub->add_option("--header-down", args->header_down, "Quick reverse proxy: set a response field, \"Field: value\"")
      ->type_name("HEADER");
  sub->add_flag("--internal-certs", args->internal_certs,
                "Quick reverse proxy: certificates from the local CA even for public names");
  sub->callback([args, &ctx] { ctx.exit_code = run_serve(*args, ctx); });
}

}  // namespace acmetool::cmd
