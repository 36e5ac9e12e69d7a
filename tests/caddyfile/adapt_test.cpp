// The adapter as a whole: site keys, duplicate and conflicting sites, listeners, which issuer
// each name gets (internal vs ACME), the tls directive, auto_https, named routes, the JSON form
// and environment files.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "acmetool/caddyfile/config_json.h"
#include "acmetool/caddyfile/env_file.h"
#include "adapt_helpers.h"
#include "process.h"

using namespace acmetool::caddyfile;
using namespace std::chrono_literals;
using acmetool::caddyfile::test::adapt_error;
using acmetool::caddyfile::test::adapt_text;
using acmetool::caddyfile::test::handler_as;

namespace {

// A copy: callers often pass a temporary Config.
SiteAddress first_address(const Config& config) {
  REQUIRE_FALSE(config.sites.empty());
  REQUIRE_FALSE(config.sites[0].addresses.empty());
  return config.sites[0].addresses[0];
}

}  // namespace

TEST_CASE("several addresses share one site, and each is decided on its own", "[caddyfile][adapt]") {
  const Config config = adapt_text("example.com, www.example.com localhost,\n:8080 {\n\trespond ok\n}\n");
  REQUIRE(config.sites.size() == 1);
  const Site& s = config.sites[0];
  CHECK(s.file == "Caddyfile");
  CHECK(s.line == 1);
  REQUIRE(s.addresses.size() == 4);
  CHECK(s.addresses[0].cert_source == CertSource::Acme);
  CHECK(s.addresses[1].address.host == "www.example.com");
  CHECK(s.addresses[2].cert_source == CertSource::Internal);
  CHECK(s.addresses[3].scheme == "http");
  CHECK(s.addresses[3].line == 2);
}

TEST_CASE("names go to the local CA or to ACME as the Caddyfile adapter decides", "[caddyfile][adapt][tls]") {
  struct Row {
    const char* address;
    CertSource source;
  };
  const Row rows[] = {
      {"example.com", CertSource::Acme},      {"*.example.com", CertSource::Acme},
      {"sub.example.co.uk", CertSource::Acme}, {"localhost", CertSource::Internal},
      {"app.localhost", CertSource::Internal}, {"printer.local", CertSource::Internal},
      {"db.internal", CertSource::Internal},   {"nas.home.arpa", CertSource::Internal},
      {"127.0.0.1", CertSource::Internal},     {"192.168.1.10", CertSource::Internal},
      {"8.8.8.8", CertSource::Internal},       {"[::1]", CertSource::Internal},
      {"[2001:db8::1]", CertSource::Internal}, {"*.*.example.com", CertSource::Internal},
      {"local", CertSource::Acme},             {"intranet", CertSource::Acme},
  };
  for (const Row& row : rows) {
    INFO(row.address);
    const SiteAddress& a = first_address(adapt_text(std::string(row.address) + " {\n}\n"));
    CHECK(a.cert_source == row.source);
    CHECK(a.automatic_https);
    CHECK(a.redirect_http);
  }
}

TEST_CASE("local_certs, cert_issuer and the tls directive force the issuer", "[caddyfile][adapt][tls]") {
  CHECK(first_address(adapt_text("{\n\tlocal_certs\n}\nexample.com {\n}\n")).cert_source == CertSource::Internal);
  CHECK(first_address(adapt_text("{\n\tcert_issuer internal\n}\nexample.com {\n}\n")).cert_source == CertSource::Internal);
  CHECK(first_address(adapt_text("{\n\tcert_issuer acme\n}\nlocalhost {\n}\n")).cert_source == CertSource::Acme);
  CHECK(first_address(adapt_text("example.com {\n\ttls internal\n}\n")).cert_source == CertSource::Internal);
  CHECK(first_address(adapt_text("localhost {\n\ttls {\n\t\tissuer acme\n\t}\n}\n")).cert_source == CertSource::Acme);
  CHECK(first_address(adapt_text("*.*.example.com {\n\ttls {\n\t\ton_demand\n\t}\n}\n")).cert_source == CertSource::Acme);

  const Config email = adapt_text("example.com {\n\ttls ops@example.com\n}\n");
  REQUIRE(email.sites[0].tls);
  REQUIRE(email.sites[0].tls->issuers.size() == 1);
  CHECK(std::get<AcmeIssuer>(email.sites[0].tls->issuers[0]).email == "ops@example.com");

  const Config manual = adapt_text("example.com {\n\ttls /etc/ssl/site.crt /etc/ssl/site.key\n}\n");
  CHECK(manual.sites[0].tls->cert_file == "/etc/ssl/site.crt");
  CHECK(manual.sites[0].tls->key_file == "/etc/ssl/site.key");
  CHECK(first_address(manual).cert_source == CertSource::Manual);
  CHECK_FALSE(first_address(manual).automatic_https);
  CHECK(first_address(manual).redirect_http);
}

TEST_CASE("the tls directive reads its options", "[caddyfile][adapt][tls]") {
  const Config config = adapt_text(
      "example.com {\n\ttls {\n\t\tprotocols tls1.2 tls1.3\n\t\tciphers TLS_AES_128_GCM_SHA256\n\t\tcurves x25519\n"
      "\t\talpn h2\n\t\tkey_type ed25519\n\t\tca https://acme.example/dir\n\t\tca_root /ca.pem\n\t\teab kid mac\n"
      "\t\tdns cloudflare {env.TOKEN}\n\t\tpropagation_delay 2m\n\t\tresolvers 1.1.1.1 8.8.8.8\n"
      "\t\treuse_private_keys\n\t\tload /etc/certs\n\t}\n}\n");
  const TlsPolicy& tls = *config.sites[0].tls;
  CHECK(tls.protocol_min == "tls1.2");
  CHECK(tls.protocol_max == "tls1.3");
  CHECK(tls.ciphers == std::vector<std::string>{"TLS_AES_128_GCM_SHA256"});
  CHECK(tls.curves == std::vector<std::string>{"x25519"});
  CHECK(tls.alpn == std::vector<std::string>{"h2"});
  CHECK(tls.key_type == "ed25519");
  CHECK(tls.reuse_private_keys);
  CHECK(tls.load == std::vector<std::string>{"/etc/certs"});
  REQUIRE(tls.issuers.size() == 1);
  const auto& acme = std::get<AcmeIssuer>(tls.issuers[0]);
  CHECK(acme.directory == "https://acme.example/dir");
  CHECK(acme.trusted_roots == std::vector<std::string>{"/ca.pem"});
  CHECK(acme.eab->mac_key == "mac");
  CHECK(acme.dns->provider->name == "cloudflare");
  CHECK(acme.dns->provider->args == std::vector<std::string>{"{env.TOKEN}"});
  CHECK(acme.dns->propagation_delay == 2min);
  CHECK(acme.dns->resolvers == std::vector<std::string>{"1.1.1.1", "8.8.8.8"});
  CHECK(first_address(config).cert_source == CertSource::Acme);
}

TEST_CASE("tls errors name the line", "[caddyfile][adapt][tls]") {
  struct Row {
    const char* body;
    const char* error;
  };
  const Row rows[] = {
      {"\ttls\n", "Caddyfile:2: wrong argument count or unexpected line ending after 'tls'"},
      {"\ttls yes\n", "Caddyfile:2: single argument must either be 'internal', 'force_automate', or an email address"},
      {"\ttls a b c\n", "Caddyfile:2: wrong argument count or unexpected line ending after 'c'"},
      {"\ttls internal {\n\t\tca https://x\n\t}\n", "Caddyfile:4: tls: cannot create both ACME and internal certificate issuers"},
      {"\ttls {\n\t\tissuer internal\n\t\temail a@b\n\t}\n",
       "Caddyfile:5: tls: cannot mix issuer subdirective (explicit issuers) with other issuer-specific subdirectives "
       "(implicit issuers)"},
      {"\ttls {\n\t\tprotocols tls1.1\n\t}\n", "Caddyfile:3: tls: wrong protocol name or protocol not supported: 'tls1.1'"},
      {"\ttls {\n\t\ton_demnd\n\t}\n", "Caddyfile:3: tls: unrecognized subdirective: on_demnd (did you mean 'on_demand'?)"},
      {"\ttls {\n\t\tpropagation_timeout forever\n\t}\n", "Caddyfile:3: tls propagation_timeout: invalid duration 'forever'"},
      {"\ttls internal\n\ttls internal\n", "Caddyfile:3: tls: the tls directive may be used only once per site"},
      {"\ttls {\n\t\tissuer acme {\n\t\t\tdisable_http_challenge yes\n\t\t}\n\t}\n",
       "Caddyfile:4: wrong argument count or unexpected line ending after 'yes'"},
  };
  for (const Row& row : rows) {
    INFO(row.body);
    CHECK(adapt_error("example.com {\n" + std::string(row.body) + "}\n") == row.error);
  }
  CHECK(adapt_error("{env.SITE} {\n}\n") == "Caddyfile:1: subject does not qualify for certificate: '{env.SITE}'");
}

TEST_CASE("auto_https off, disable_redirects and disable_certs change what is managed", "[caddyfile][adapt][tls]") {
  SiteAddress a = first_address(adapt_text("{\n\tauto_https off\n}\nexample.com {\n}\n"));
  CHECK(a.scheme == "https");
  CHECK_FALSE(a.automatic_https);
  CHECK_FALSE(a.redirect_http);
  CHECK(a.cert_source == CertSource::None);
  a = first_address(adapt_text("{\n\tauto_https disable_redirects\n}\nexample.com {\n}\n"));
  CHECK(a.automatic_https);
  CHECK_FALSE(a.redirect_http);
  a = first_address(adapt_text("{\n\tauto_https disable_certs\n}\nexample.com {\n}\n"));
  CHECK_FALSE(a.automatic_https);
  CHECK(a.redirect_http);
  CHECK(a.cert_source == CertSource::None);
}

TEST_CASE("on-demand TLS manages names of a catch-all site at handshake time", "[caddyfile][adapt][tls]") {
  const Config config = adapt_text(
      "{\n\ton_demand_tls {\n\t\task http://localhost:5555/check\n\t}\n}\nhttps:// {\n\ttls {\n\t\ton_demand\n\t}\n"
      "\treverse_proxy app:8080\n}\n");
  const SiteAddress& a = first_address(config);
  CHECK(a.scheme == "https");
  CHECK(a.on_demand);
  CHECK(a.automatic_https);
  CHECK(a.cert_source == CertSource::Acme);
  CHECK_FALSE(a.host_matcher);
  CHECK(config.global.on_demand_tls->ask == "http://localhost:5555/check");
}

TEST_CASE("site keys that are matchers or directives are rejected", "[caddyfile][adapt]") {
  CHECK(adapt_error("handle {\n\tfile_server\n}\n") ==
        "Caddyfile:1: parsed 'handle' as a site address, but it is a known directive; directives must appear in a "
        "site block");
  CHECK(adapt_error("example.com {\n}\nreverse_proxy localhost:9000 localhost:9001 {\n\tfile_server\n}\n") ==
        "Caddyfile:3: parsed 'reverse_proxy' as a site address, but it is a known directive; directives must appear "
        "in a site block");
  CHECK(adapt_error("@api path /api\n") ==
        "Caddyfile:1: request matchers may not be defined globally, they must be in a site block; found @api");
}

TEST_CASE("the same address in two sites is ambiguous, and both locations are named", "[caddyfile][adapt]") {
  CHECK(adapt_error("example.com {\n}\n\nexample.com {\n}\n") ==
        "Caddyfile:4: ambiguous site definition: example.com (also defined at Caddyfile:1)");
  CHECK(adapt_error("a.example, B.example {\n}\nb.EXAMPLE {\n}\n") ==
        "Caddyfile:3: ambiguous site definition: b.EXAMPLE (also defined at Caddyfile:1)");
  CHECK(adapt_error("http://a.example {\n}\na.example:80 {\n}\n") ==
        "Caddyfile:3: ambiguous site definition: a.example:80 (also defined at Caddyfile:1)");
  // Other port, other path, other bind address: all distinct.
  CHECK(adapt_text("a.example {\n}\na.example:8443 {\n}\na.example/x {\n}\n").sites.size() == 3);
  CHECK(adapt_text("a.example {\n\tbind 127.0.0.1\n}\na.example {\n\tbind 127.0.0.2\n}\n").sites.size() == 2);
}

TEST_CASE("paths and unspecified IPs in site addresses are accepted with upstream's warnings", "[caddyfile][adapt]") {
  std::vector<Warning> warnings;
  const Config config = adapt_text("example.com/api/* {\n\trespond a\n}\n\n0.0.0.0 {\n\trespond b\n}\n", &warnings);
  CHECK(config.sites[0].addresses[0].address.path == "/api/*");
  REQUIRE(warnings.size() == 2);
  CHECK(warnings[0].where == "Caddyfile:1");
  CHECK(warnings[0].message == "Using a path in a site address is deprecated; please use the 'handle' directive instead");
  CHECK(warnings[1].where == "Caddyfile:5");
  CHECK(warnings[1].message.starts_with("Site block has an unspecified IP address"));
}

TEST_CASE("one listener serves HTTP or HTTPS, never both", "[caddyfile][adapt]") {
  CHECK(adapt_error(":8080 {\n}\nhttps://:8080 {\n}\n") ==
        "Caddyfile:3: server listening on [:8080] is configured for HTTP and cannot natively multiplex HTTP and "
        "HTTPS: https://:8080");
  CHECK(adapt_error("https://:8080 {\n}\n:8080 {\n}\n") ==
        "Caddyfile:3: server listening on [:8080] is configured for HTTPS and cannot natively multiplex HTTP and "
        "HTTPS: :8080 (try specifying https:// in the address)");
  CHECK(adapt_error("http://a.example:8080 {\n}\nb.example:8080 {\n\ttls internal\n}\n") ==
        "Caddyfile:1: server listening on [:8080] is HTTP, but attempts to configure TLS connection policies");

  // A host on the same port turns the catch-all into HTTPS too, as Caddy's automatic HTTPS does.
  Config config = adapt_text(":8080 {\n}\nlocalhost:8080 {\n}\n");
  CHECK(config.sites[0].addresses[0].scheme == "https");
  CHECK(config.sites[1].addresses[0].scheme == "https");
  config = adapt_text(":8443 {\n\ttls internal\n}\n");
  CHECK(first_address(config).scheme == "https");
  config = adapt_text("http://a.example:8080 {\n}\nlocalhost:8080 {\n}\n");
  CHECK(config.sites[1].addresses[0].scheme == "http");
  CHECK_FALSE(config.sites[1].addresses[0].automatic_https);
}

TEST_CASE("bind and default_bind decide the listener addresses", "[caddyfile][adapt]") {
  Config config = adapt_text("{\n\tdefault_bind 127.0.0.1\n}\na.example {\n}\nb.example {\n\tbind ::1 unix//run/b.sock\n}\n"
                             "c.example {\n\tbind tcp4/0.0.0.0\n}\n");
  CHECK(config.sites[0].addresses[0].listeners == std::vector<std::string>{"127.0.0.1:443"});
  CHECK(config.sites[1].addresses[0].listeners == std::vector<std::string>{"[::1]:443", "unix//run/b.sock"});
  CHECK(config.sites[2].addresses[0].listeners == std::vector<std::string>{"tcp4/0.0.0.0:443"});
}

TEST_CASE("unknown directives are errors with a suggestion and, without braces, the second-site hint",
          "[caddyfile][adapt]") {
  CHECK(adapt_error("example.com {\n\troot * /srv\n\n\n\n\trevers_proxy localhost:9000\n}\n") ==
        "Caddyfile:6: unrecognized directive: revers_proxy (did you mean 'reverse_proxy'?)");
  CHECK(adapt_error("example.com {\n\tfrobnicate\n}\n") == "Caddyfile:2: unrecognized directive: frobnicate");
  CHECK(adapt_error("example.com\nrespond hi\nwww.example.com\nrespond there\n") ==
        "Caddyfile:3: unrecognized directive: www.example.com - Did you mean to define a second site? If so, you must "
        "use curly braces around each site to separate their configurations.");
}

TEST_CASE("named routes are adapted once and invoked by name", "[caddyfile][adapt]") {
  const Config config = adapt_text(
      "&(app) {\n\theader X-App 1\n\treverse_proxy app:8080\n}\na.example {\n\tinvoke app\n}\nb.example {\n\tinvoke app\n}\n");
  REQUIRE(config.named_routes.count("app") == 1);
  const auto& routes = config.named_routes.at("app");
  REQUIRE(routes.size() == 2);
  CHECK(routes[0].directive == "header");
  CHECK(routes[1].directive == "reverse_proxy");
  CHECK(handler_as<InvokeHandler>(config.sites[1].routes.at(0)).name == "app");
}

TEST_CASE("ten thousand sites adapt, each with its own address", "[caddyfile][adapt]") {
  std::string text = "{\n\temail ops@example.com\n}\n";
  for (int i = 0; i < 10000; ++i) {
    text += "site" + std::to_string(i) + ".example.com {\n\treverse_proxy /api/* 127.0.0.1:" + std::to_string(9000 + i % 100) +
            "\n\tfile_server\n}\n";
  }
  const Config config = adapt_text(text);
  REQUIRE(config.sites.size() == 10000);
  CHECK(config.sites[9999].addresses[0].address.host == "site9999.example.com");
  CHECK(config.sites[9999].routes.size() == 2);
}

TEST_CASE("the JSON form omits what is unset", "[caddyfile][adapt][json]") {
  const Config config = adapt_text("{\n\temail a@b.example\n\trenew_interval 90m\n}\nexample.com {\n\trespond /hi \"hello\" 200\n}\n");
  CHECK(to_json(config).dump() ==
        R"({"global":{"email":"a@b.example","renew_interval":"1h30m0s"},"sites":[{"addresses":[{"address":"example.com",)"
        R"("automatic_https":true,"cert_source":"acme","file":"Caddyfile","host":"example.com","host_matcher":true,)"
        R"("line":5,"listeners":[":443"],"port":443,"redirect_http":true,"scheme":"https"}],"file":"Caddyfile","line":5,)"
        R"("routes":[{"directive":"respond","file":"Caddyfile","handler":{"body":"hello","handler":"respond",)"
        R"("status":"200"},"line":6,"match":{"path":["/hi"]},"matcher":"/hi"}]}]})");
}

TEST_CASE("durations print as Go's time.Duration.String", "[caddyfile][json]") {
  struct Row {
    std::chrono::nanoseconds d;
    const char* text;
  };
  const Row rows[] = {
      {0ns, "0s"},          {1ns, "1ns"},           {1500ns, "1.5\xc2\xb5s"}, {250ms, "250ms"},
      {1234567ns, "1.234567ms"}, {1500ms, "1.5s"},  {90s, "1m30s"},          {90min, "1h30m0s"},
      {168h, "168h0m0s"},   {-5min, "-5m0s"},       {2h + 45min + 30500ms, "2h45m30.5s"}, {-1ns, "-1ns"},
  };
  for (const Row& row : rows) CHECK(format_duration(row.d) == row.text);
}

TEST_CASE("environment files give {$VAR} values without touching the environment", "[caddyfile][envfile]") {
  const auto values = parse_env_file(
      "# comment\n\nDOMAIN=example.com\nexport PORT=8080\nQUOTED=\"a b # c\"\nSINGLE='x'\nTRAIL=v # note\n"
      "MULTI=\"line1\nline2\"\nEMPTY=\n",
      "site.env");
  CHECK(values.at("DOMAIN") == "example.com");
  CHECK(values.at("PORT") == "8080");
  CHECK(values.at("QUOTED") == "a b # c");
  CHECK(values.at("SINGLE") == "x");
  CHECK(values.at("TRAIL") == "v");
  CHECK(values.at("MULTI") == "line1\nline2");
  CHECK(values.at("EMPTY").empty());
  CHECK_THROWS_WITH(parse_env_file("A=1\nnonsense\n", "site.env"), "site.env:2: line should be in KEY=VALUE format");
  CHECK_THROWS_WITH(parse_env_file("=1\n", "e"), "e:1: missing or empty key");
  CHECK_THROWS_WITH(parse_env_file("A B=1\n", "e"), "e:1: invalid key: contains whitespace: A B");
  CHECK_THROWS_WITH(parse_env_file("A= 1\n", "e"), "e:1: invalid value: whitespace before value: ' 1'");

  const EnvLookup lookup = env_lookup_with({{"DOMAIN", "from-file.example"}}, [](std::string_view name) -> std::optional<std::string> {
    if (name == "DOMAIN" || name == "OTHER") return "from-env";
    return std::nullopt;
  });
  CHECK(lookup("DOMAIN") == "from-file.example");
  CHECK(lookup("OTHER") == "from-env");
  CHECK_FALSE(lookup("NONE"));
}

TEST_CASE("adapting a file that is not formatted warns at the first line fmt would change", "[caddyfile][adapt]") {
  acmetool::test::TempDir dir;
  const std::filesystem::path file = dir.path() / "Caddyfile";
  std::ofstream(file) << "example.com {\n\trespond hi\n      log\n}\n";
  std::vector<Warning> warnings;
  adapt_file(file, ParseOptions{}, warnings);
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].where == file.string() + ":3");
  CHECK(warnings[0].message ==
        "Caddyfile input is not formatted; run 'acmetool fmt --overwrite " + file.string() + "' to fix inconsistencies");

  std::ofstream(file) << "example.com {\r\n\trespond hi\r\n}\r\n";  // CRLF counts as formatted
  warnings.clear();
  adapt_file(file, ParseOptions{}, warnings);
  CHECK(warnings.empty());
}
