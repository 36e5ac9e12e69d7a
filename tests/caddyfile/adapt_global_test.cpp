// The global options block: every option of issue 3 with its value, and the errors for unknown
// options, bad arguments, durations and ports.
#include <catch2/catch.hpp>

#include "acmetool/caddyfile/config_json.h"
#include "adapt_helpers.h"

using namespace acmetool::caddyfile;
using namespace std::chrono_literals;
using acmetool::caddyfile::test::adapt_error;
using acmetool::caddyfile::test::adapt_text;

namespace {

GlobalOptions global_of(const std::string& body, std::vector<Warning>* warnings = nullptr) {
  return adapt_text("{\n" + body + "}\nexample.com {\n\trespond ok\n}\n", warnings).global;
}

std::string global_error(const std::string& body) { return adapt_error("{\n" + body + "}\n:80 {\n}\n"); }

}  // namespace

TEST_CASE("a Caddyfile without global options gets the defaults", "[caddyfile][adapt][global]") {
  const GlobalOptions g = adapt_text("example.com {\n}\n").global;
  CHECK_FALSE(g.debug);
  CHECK_FALSE(g.email);
  CHECK_FALSE(g.http_port);
  CHECK(g.effective_http_port() == 80);
  CHECK(g.effective_https_port() == 443);
  CHECK_FALSE(g.local_certs);
  CHECK_FALSE(g.skip_install_trust);
  CHECK_FALSE(g.auto_https.off);
  CHECK(g.cert_issuers.empty());
  CHECK_FALSE(g.admin.disabled);
  CHECK_FALSE(g.admin.listen);
}

TEST_CASE("simple global options take one value each", "[caddyfile][adapt][global]") {
  const GlobalOptions g = global_of(
      "\tdebug\n\temail admin@example.com\n\tacme_ca https://ca.example/dir\n\tacme_ca_root /etc/ca.pem\n"
      "\tlocal_certs\n\thttp_port 8080\n\thttps_port 8443\n\tkey_type p384\n\trenew_interval 30m\n"
      "\tgrace_period 10s\n\tshutdown_delay 1d\n\tadmin off\n\tskip_install_trust\n");
  CHECK(g.debug);
  CHECK(g.skip_install_trust);
  CHECK(g.email == "admin@example.com");
  CHECK(g.acme_ca == "https://ca.example/dir");
  CHECK(g.acme_ca_root == "/etc/ca.pem");
  CHECK(g.local_certs);
  CHECK(g.http_port == 8080);
  CHECK(g.https_port == 8443);
  CHECK(g.key_type == "p384");
  CHECK(g.renew_interval == 30min);
  CHECK(g.grace_period == 10s);
  CHECK(g.shutdown_delay == 24h);
  CHECK(g.admin.disabled);
  CHECK_FALSE(g.admin.listen);
}

TEST_CASE("acme_eab, acme_dns and storage read their blocks", "[caddyfile][adapt][global]") {
  const GlobalOptions g = global_of(
      "\tacme_eab {\n\t\tkey_id kid-1\n\t\tmac_key c2VjcmV0\n\t}\n"
      "\tacme_dns cloudflare {env.CF_API_TOKEN}\n"
      "\tstorage file_system /var/lib/acmetool\n");
  REQUIRE(g.acme_eab);
  CHECK(g.acme_eab->key_id == "kid-1");
  CHECK(g.acme_eab->mac_key == "c2VjcmV0");
  REQUIRE(g.acme_dns);
  CHECK(g.acme_dns->name == "cloudflare");
  CHECK(g.acme_dns->args == std::vector<std::string>{"{env.CF_API_TOKEN}"});
  CHECK(g.storage_root == "/var/lib/acmetool");

  const GlobalOptions block = global_of(
      "\tacme_dns route53 {\n\t\tregion eu-west-1\n\t\tprofile prod\n\t}\n"
      "\tstorage file_system {\n\t\troot /srv/certs\n\t}\n");
  REQUIRE(block.acme_dns);
  CHECK(block.acme_dns->name == "route53");
  CHECK(block.acme_dns->args.empty());
  REQUIRE(block.acme_dns->options.size() == 2);
  CHECK(block.acme_dns->options[0] == std::pair<std::string, std::vector<std::string>>{"region", {"eu-west-1"}});
  CHECK(block.acme_dns->options[1] == std::pair<std::string, std::vector<std::string>>{"profile", {"prod"}});
  CHECK(block.storage_root == "/srv/certs");
}

TEST_CASE("auto_https takes any of its four values and default_bind folds", "[caddyfile][adapt][global]") {
  GlobalOptions g = global_of("\tauto_https disable_redirects ignore_loaded_certs\n");
  CHECK_FALSE(g.auto_https.off);
  CHECK(g.auto_https.disable_redirects);
  CHECK_FALSE(g.auto_https.disable_certs);
  CHECK(g.auto_https.ignore_loaded_certs);
  CHECK(global_of("\tauto_https off\n").auto_https.off);
  CHECK(global_of("\tauto_https disable_certs\n").auto_https.disable_certs);
  CHECK(global_error("\tauto_https sometimes\n") ==
        "Caddyfile:2: auto_https must be one of 'off', 'disable_redirects', 'disable_certs', 'ignore_loaded_certs', "
        "or 'prefer_wildcard'");

  g = global_of("\tdefault_bind 127.0.0.1 ::1\n\tdefault_bind 10.0.0.1 {\n\t\tprotocols h1 h2\n\t}\n");
  CHECK(g.default_bind == std::vector<std::string>{"127.0.0.1", "::1", "10.0.0.1"});
}

TEST_CASE("on_demand_tls takes ask or permission, and interval and burst are deprecated", "[caddyfile][adapt][global]") {
  std::vector<Warning> warnings;
  GlobalOptions g = global_of("\ton_demand_tls {\n\t\task http://localhost:9123/check\n\t\tinterval 2m\n"
                              "\t\tburst 5\n\t}\n",
                              &warnings);
  REQUIRE(g.on_demand_tls);
  CHECK(g.on_demand_tls->ask == "http://localhost:9123/check");
  CHECK(g.on_demand_tls->interval == 2min);
  CHECK(g.on_demand_tls->burst == 5);
  REQUIRE(warnings.size() == 2);
  CHECK(warnings[0].where == "Caddyfile:4");
  CHECK(warnings[0].message ==
        "on_demand_tls: 'interval' is deprecated (removed in Caddy 2.9); use 'ask' to limit issuance");
  CHECK(warnings[1].where == "Caddyfile:5");

  g = global_of("\ton_demand_tls {\n\t\tpermission my_module a b\n\t}\n");
  CHECK(g.on_demand_tls->permission == "my_module");
  CHECK(g.on_demand_tls->permission_args == std::vector<std::string>{"a", "b"});
  CHECK(global_error("\ton_demand_tls {\n\t\tpermission my_module {\n\t\t\tendpoint x\n\t\t}\n\t}\n") ==
        "Caddyfile:3: on_demand_tls: permission module options are not supported by acmetool yet");

  CHECK(global_error("\ton_demand_tls {\n\t\task http://a\n\t\task http://b\n\t}\n") ==
        "Caddyfile:4: on-demand TLS permission module (or 'ask') already specified");
  CHECK(global_error("\ton_demand_tls {\n\t}\n") == "Caddyfile:2: expected at least one config parameter for on_demand_tls");
  CHECK(global_error("\ton_demand_tls {\n\t\tinterval soon\n\t}\n") ==
        "Caddyfile:3: on_demand_tls interval: invalid duration 'soon'");
  CHECK(global_error("\ton_demand_tls {\n\t\tasks http://a\n\t}\n") ==
        "Caddyfile:3: on_demand_tls: unrecognized subdirective: asks (did you mean 'ask'?)");
}

TEST_CASE("on_demand_tls takes permission http with its endpoint inline or in a block", "[caddyfile][adapt][global][issue-7]") {
  GlobalOptions g = global_of("\ton_demand_tls {\n\t\tpermission http {\n\t\t\tendpoint http://localhost:9123/check\n"
                              "\t\t}\n\t}\n");
  REQUIRE(g.on_demand_tls);
  CHECK(g.on_demand_tls->permission == "http");
  CHECK(g.on_demand_tls->permission_args == std::vector<std::string>{"http://localhost:9123/check"});
  CHECK_FALSE(g.on_demand_tls->ask);

  g = global_of("\ton_demand_tls {\n\t\tpermission http http://localhost:9123/check\n\t}\n");
  CHECK(g.on_demand_tls->permission == "http");
  CHECK(g.on_demand_tls->permission_args == std::vector<std::string>{"http://localhost:9123/check"});

  CHECK(global_error("\ton_demand_tls {\n\t\tpermission http {\n\t\t\tendpont http://a\n\t\t}\n\t}\n") ==
        "Caddyfile:4: on_demand_tls permission http: unrecognized subdirective: endpont (did you mean 'endpoint'?)");
  CHECK(global_error("\ton_demand_tls {\n\t\tpermission http {\n\t\t\tendpoint\n\t\t}\n\t}\n") ==
        "Caddyfile:4: wrong argument count or unexpected line ending after 'endpoint'");
  CHECK(global_error("\ton_demand_tls {\n\t\tpermission http {\n\t\t\tendpoint http://a http://b\n\t\t}\n\t}\n") ==
        "Caddyfile:4: wrong argument count or unexpected line ending after 'http://b'");
  CHECK(global_error("\ton_demand_tls {\n\t\tpermission http http://a {\n\t\t\tendpoint http://b\n\t\t}\n\t}\n") ==
        "Caddyfile:4: on_demand_tls permission http: endpoint already specified");
  CHECK(global_error("\ton_demand_tls {\n\t\tpermission http\n\t}\n") ==
        "Caddyfile:3: on_demand_tls permission http: expected one endpoint URL");
  CHECK(global_error("\ton_demand_tls {\n\t\tpermission http http://a http://b\n\t}\n") ==
        "Caddyfile:3: on_demand_tls permission http: expected one endpoint URL");
  CHECK(global_error("\ton_demand_tls {\n\t\task http://a\n\t\tpermission http {\n\t\t\tendpoint http://b\n\t\t}\n\t}\n") ==
        "Caddyfile:4: on-demand TLS permission module (or 'ask') already specified");
}

TEST_CASE("on_demand_tls takes acmetool's cooldown and ask_include_ip", "[caddyfile][adapt][global][issue-7]") {
  GlobalOptions g = global_of("\ton_demand_tls {\n\t\task http://localhost:9123/check\n\t\tcooldown 1h30m\n"
                              "\t\task_include_ip\n\t}\n");
  REQUIRE(g.on_demand_tls);
  CHECK(g.on_demand_tls->cooldown == 90min);
  CHECK(g.on_demand_tls->ask_include_ip);

  g = global_of("\ton_demand_tls {\n\t\task http://localhost:9123/check\n\t}\n");
  CHECK_FALSE(g.on_demand_tls->cooldown);
  CHECK_FALSE(g.on_demand_tls->ask_include_ip);

  struct Row {
    const char* body;
    const char* error;
  };
  const Row rows[] = {
      {"\t\tcooldown soon\n", "Caddyfile:3: on_demand_tls cooldown: invalid duration 'soon'"},
      {"\t\tcooldown -5m\n", "Caddyfile:3: on_demand_tls cooldown: negative duration '-5m'"},
      {"\t\tcooldown\n", "Caddyfile:3: wrong argument count or unexpected line ending after 'cooldown'"},
      {"\t\tcooldown 1m 2m\n", "Caddyfile:3: wrong argument count or unexpected line ending after '2m'"},
      {"\t\task_include_ip yes\n", "Caddyfile:3: wrong argument count or unexpected line ending after 'yes'"},
      {"\t\task_include_ip {\n\t\t\tx\n\t\t}\n", "Caddyfile:3: on_demand_tls ask_include_ip: takes no block"},
      {"\t\tcooldwn 1m\n", "Caddyfile:3: on_demand_tls: unrecognized subdirective: cooldwn (did you mean 'cooldown'?)"},
  };
  for (const Row& row : rows) {
    INFO(row.body);
    CHECK(global_error("\ton_demand_tls {\n" + std::string(row.body) + "\t}\n") == row.error);
  }
}

TEST_CASE("the JSON form shows on_demand_tls's cooldown and ask_include_ip", "[caddyfile][adapt][json][issue-7]") {
  const Config config = adapt_text("{\n\ton_demand_tls {\n\t\tpermission http {\n\t\t\tendpoint http://a/check\n\t\t}\n"
                                   "\t\tcooldown 2m\n\t\task_include_ip\n\t}\n}\nexample.com {\n}\n");
  CHECK(to_json(config)["global"]["on_demand_tls"].dump() ==
        R"({"ask_include_ip":true,"cooldown":"2m0s","permission":"http","permission_args":["http://a/check"]})");
}

TEST_CASE("cert_issuer appends acme and internal issuers with their options", "[caddyfile][adapt][global]") {
  const GlobalOptions g = global_of(
      "\tcert_issuer acme https://acme.example/dir {\n\t\temail ops@example.com\n\t\teab kid mac\n"
      "\t\tdns cloudflare tok\n\t\tpropagation_timeout -1\n\t\tresolvers 1.1.1.1\n\t\tdisable_tlsalpn_challenge\n"
      "\t\talt_http_port 8080\n\t\ttrusted_roots /a.pem /b.pem\n\t\ttimeout 90s\n\t}\n"
      "\tcert_issuer internal {\n\t\tca home\n\t\tlifetime 2d\n\t\tsign_with_root\n\t}\n");
  REQUIRE(g.cert_issuers.size() == 2);
  const auto& acme = std::get<AcmeIssuer>(g.cert_issuers[0]);
  CHECK(acme.directory == "https://acme.example/dir");
  CHECK(acme.email == "ops@example.com");
  REQUIRE(acme.eab);
  CHECK(acme.eab->key_id == "kid");
  REQUIRE(acme.dns);
  CHECK(acme.dns->provider->name == "cloudflare");
  CHECK(acme.dns->provider->args == std::vector<std::string>{"tok"});
  CHECK(acme.dns->propagation_timeout == std::chrono::nanoseconds(-1));
  CHECK(acme.dns->resolvers == std::vector<std::string>{"1.1.1.1"});
  CHECK(acme.disable_tlsalpn_challenge);
  CHECK_FALSE(acme.disable_http_challenge);
  CHECK(acme.alt_http_port == 8080);
  CHECK(acme.trusted_roots == std::vector<std::string>{"/a.pem", "/b.pem"});
  CHECK(acme.timeout == 90s);
  const auto& internal = std::get<InternalIssuer>(g.cert_issuers[1]);
  CHECK(internal.ca == "home");
  CHECK(internal.lifetime == 48h);
  CHECK(internal.sign_with_root);

  CHECK(global_error("\tcert_issuer zerossl KEY\n") ==
        "Caddyfile:2: unsupported certificate issuer 'zerossl' (acmetool has 'acme' and 'internal')");
  CHECK(global_error("\tcert_issuer acme {\n\t\tdirectory https://x\n\t}\n") ==
        "Caddyfile:3: issuer acme: unrecognized subdirective: directory");
  CHECK(global_error("\tcert_issuer acme https://a {\n\t\tdir https://b\n\t}\n") ==
        "Caddyfile:3: issuer acme: directory is already specified");
  CHECK(global_error("\tlocal_certs\n\tcert_issuer internal\n") ==
        "Caddyfile:2: global options are ambiguous: local_certs is confusing when combined with cert_issuer, because "
        "local_certs is also a specific kind of issuer");
}

TEST_CASE("admin takes an address and a block", "[caddyfile][adapt][global]") {
  GlobalOptions g = global_of("\tadmin localhost:2999 {\n\t\tenforce_origin\n\t\torigins a.example b.example\n\t}\n");
  CHECK_FALSE(g.admin.disabled);
  CHECK(g.admin.listen == "localhost:2999");
  CHECK(g.admin.enforce_origin);
  CHECK(g.admin.origins == std::vector<std::string>{"a.example", "b.example"});
  CHECK(global_of("\tadmin\n").admin.listen == "localhost:2019");
  CHECK(global_error("\tadmin off {\n\t\tenforce_origin\n\t}\n") ==
        "Caddyfile:2: No more option is allowed after turning off admin config");
}

TEST_CASE("unknown global options are errors naming the option and line, with a suggestion",
          "[caddyfile][adapt][global]") {
  CHECK(global_error("\temial admin@example.com\n") ==
        "Caddyfile:2: unrecognized global option: emial (did you mean 'email'?)");
  CHECK(global_error("\tdebug\n\thttp_prot 80\n") ==
        "Caddyfile:3: unrecognized global option: http_prot (did you mean 'http_port'?)");
  CHECK(global_error("\tfrobnicate\n") == "Caddyfile:2: unrecognized global option: frobnicate");
  // A site directive in the global block is not an option.
  CHECK(global_error("\treverse_proxy localhost:9000\n") == "Caddyfile:2: unrecognized global option: reverse_proxy");
}

TEST_CASE("Caddy options acmetool does not implement are accepted with a warning", "[caddyfile][adapt][global]") {
  std::vector<Warning> warnings;
  global_of("\tservers {\n\t\tprotocols h1 h2\n\t}\n\tpersist_config off\n", &warnings);
  REQUIRE(warnings.size() == 2);
  CHECK(warnings[0].where == "Caddyfile:3");
  CHECK(warnings[0].message == "servers: 'protocols' is not supported by acmetool yet; ignored");
  CHECK(warnings[1].message == "global option 'persist_config' is not supported by acmetool yet; ignored");
}

TEST_CASE("servers reads the proxy_protocol listener wrapper and timeouts, and skips other server options", "[caddyfile][adapt][global]") {
  std::vector<Warning> warnings;
  const GlobalOptions g = global_of(
      "\tservers :443 {\n\t\ttimeouts {\n\t\t\tread_body 10s\n\t\t}\n\t\tlistener_wrappers {\n"
      "\t\t\tproxy_protocol {\n\t\t\t\ttimeout 2s\n\t\t\t\tallow 10.0.0.0/8 2001:db8::/32\n\t\t\t\tallow 192.0.2.1\n\t\t\t}\n"
      "\t\t\ttls\n\t\t}\n\t}\n\tservers {\n\t\tlistener_wrappers {\n\t\t\tproxy_protocol\n\t\t}\n\t}\n",
      &warnings);
  REQUIRE(g.servers.size() == 2);
  CHECK(g.servers[0].address == ":443");
  REQUIRE(g.servers[0].proxy_protocol);
  CHECK(g.servers[0].proxy_protocol->timeout == 2s);
  CHECK(g.servers[0].proxy_protocol->allow == std::vector<std::string>{"10.0.0.0/8", "2001:db8::/32", "192.0.2.1"});
  CHECK(g.servers[1].address.empty());
  REQUIRE(g.servers[1].proxy_protocol);
  CHECK(g.servers[1].proxy_protocol->allow.empty());
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].where == "Caddyfile:4");  // read_body
  CHECK_FALSE(g.servers[0].idle_timeout);

  const GlobalOptions timed = global_of("\tservers {\n\t\ttimeouts {\n\t\t\tread_header 2s\n\t\t\tidle 90s\n\t\t}\n\t}\n");
  REQUIRE(timed.servers.size() == 1);
  CHECK(timed.servers[0].read_header_timeout == 2s);
  CHECK(timed.servers[0].idle_timeout == 90s);
  CHECK(global_error("\tservers {\n\t\ttimeouts {\n\t\t\tidle 0s\n\t\t}\n\t}\n") ==
        "Caddyfile:4: timeouts idle: must be positive, not '0s'");
  CHECK(global_error("\tservers {\n\t\ttimeouts {\n\t\t\tidel 1s\n\t\t}\n\t}\n") ==
        "Caddyfile:4: timeouts: unrecognized subdirective: idel (did you mean 'idle'?)");

  const std::string wrappers = "\tservers {\n\t\tlistener_wrappers {\n";
  CHECK(global_error(wrappers + "\t\t\ttls\n\t\t\tproxy_protocol\n\t\t}\n\t}\n") ==
        "Caddyfile:5: listener_wrappers: proxy_protocol must come before tls");
  CHECK(global_error(wrappers + "\t\t\tproxy_protocl\n\t\t}\n\t}\n") ==
        "Caddyfile:4: listener_wrappers: unrecognized listener wrapper: proxy_protocl (did you mean 'proxy_protocol'?)");
  CHECK(global_error(wrappers + "\t\t\tproxy_protocol {\n\t\t\t\tallow 10.0.0.0/33\n\t\t\t}\n\t\t}\n\t}\n") ==
        "Caddyfile:5: proxy_protocol allow: invalid IP range '10.0.0.0/33'");
  CHECK(global_error(wrappers + "\t\t\tproxy_protocol {\n\t\t\t\ttimeout soon\n\t\t\t}\n\t\t}\n\t}\n") ==
        "Caddyfile:5: proxy_protocol timeout: invalid duration 'soon'");
  CHECK(global_error("\tservers {\n\t\tprotocol h1\n\t}\n") ==
        "Caddyfile:3: servers: unrecognized subdirective: protocol (did you mean 'protocols'?)");
}

TEST_CASE("global option arguments are checked: counts, ports, durations, key types", "[caddyfile][adapt][global]") {
  struct Row {
    const char* body;
    const char* error;
  };
  const Row rows[] = {
      {"\temail\n", "Caddyfile:2: wrong argument count or unexpected line ending after 'email'"},
      {"\temail a@b c@d\n", "Caddyfile:2: wrong argument count or unexpected line ending after 'c@d'"},
      {"\tdebug yes\n", "Caddyfile:2: wrong argument count or unexpected line ending after 'yes'"},
      {"\thttp_port http\n", "Caddyfile:2: http_port: invalid number 'http'"},
      {"\thttp_port 0\n", "Caddyfile:2: http_port: 0 is out of range (1..65535)"},
      {"\thttps_port 65536\n", "Caddyfile:2: https_port: 65536 is out of range (1..65535)"},
      {"\trenew_interval 10\n", "Caddyfile:2: renew_interval: invalid duration '10'"},
      {"\tgrace_period 5x\n", "Caddyfile:2: grace_period: invalid duration '5x'"},
      {"\tkey_type rsa1024\n",
       "Caddyfile:2: key_type: unsupported key type 'rsa1024' (expected ed25519, p256, p384, rsa2048 or rsa4096)"},
      {"\tstorage redis\n",
       "Caddyfile:2: storage: module 'redis' is not supported (acmetool stores in 'file_system' only)"},
      {"\tstorage file_system\n", "Caddyfile:2: storage file_system: a root path is required"},
      {"\tacme_eab {\n\t\tkey_id k\n\t}\n", "Caddyfile:2: acme_eab: both key_id and mac_key are required"},
      {"\tacme_eab {\n\t\tkeyid k\n\t}\n", "Caddyfile:3: acme_eab: unrecognized subdirective: keyid (did you mean 'key_id'?)"},
      {"\tacme_dns\n", "Caddyfile:2: wrong argument count or unexpected line ending after 'acme_dns'"},
      {"\temail a@b {\n\t\tx\n\t}\n", "Caddyfile:2: email: unexpected '{'"},
  };
  for (const Row& row : rows) {
    INFO(row.body);
    CHECK(global_error(row.body) == row.error);
  }
}

TEST_CASE("the global options block must come first", "[caddyfile][adapt][global]") {
  CHECK(adapt_error("example.com {\n\trespond ok\n}\n{\n\tdebug\n}\n") ==
        "Caddyfile:5: server block without any key is global configuration, and if used, it must be first");
}
