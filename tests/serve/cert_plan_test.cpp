// plan_certificates (issue 7, "Managed names: from config, each with an issuer policy"): Caddyfile
// text through the real parser and adapter, then the names and CertManagerOptions it asks for.
#include "acmetool/serve/cert_plan.h"

#include <catch2/catch.hpp>

#include "acmetool/caddyfile/adapt.h"
#include "acmetool/caddyfile/parse.h"
#include "acmetool/serve/error.h"

namespace caddyfile = acmetool::caddyfile;
namespace pki = acmetool::pki;
namespace serve = acmetool::serve;
using serve::IssuerPolicy;
using serve::ManagedName;
using namespace std::chrono_literals;
using Lines = std::vector<std::string>;

namespace {

constexpr const char* kLetsEncrypt = "https://acme-v02.api.letsencrypt.org/directory";

serve::CertificatePlan plan(std::string_view text) {
  std::vector<caddyfile::Warning> warnings;
  return serve::plan_certificates(caddyfile::adapt(caddyfile::parse(text, "Caddyfile"), warnings));
}

// The what() of the serve::Error planning `text` throws; fails the test when nothing is thrown.
std::string plan_error(std::string_view text) {
  try {
    plan(text);
  } catch (const serve::Error& e) {
    return e.what();
  }
  FAIL("no error for:\n" << text);
  return "";
}

// "<name> acme", "<name> internal" or "<name> manual <cert> <key>" per name, in plan order.
Lines summary(const std::vector<ManagedName>& names) {
  Lines out;
  for (const ManagedName& m : names) {
    switch (m.policy) {
      case IssuerPolicy::Acme:
        out.push_back(m.name + " acme");
        break;
      case IssuerPolicy::Internal:
        out.push_back(m.name + " internal");
        break;
      case IssuerPolicy::Manual:
        out.push_back(m.name + " manual " + m.cert_file.string() + " " + m.key_file.string());
        break;
    }
  }
  return out;
}

}  // namespace

TEST_CASE("public names get the ACME CA, internal names and IP addresses the local CA",
          "[serve][plan][issue-7]") {
  const serve::CertificatePlan p = plan(R"(Example.COM, www.example.com {
	respond ok
}
localhost, app.internal, printer.home.arpa, 192.168.1.5, [::1]:8443 {
	respond ok
}
http://plain.example.com, :8080 {
	respond ok
}
)");
  CHECK(summary(p.names) == Lines{"192.168.1.5 internal", "::1 internal", "app.internal internal",
                                  "example.com acme", "localhost internal",
                                  "printer.home.arpa internal", "www.example.com acme"});
  CHECK(p.options.local_ca.name == "local");
  CHECK(p.options.internal_lifetime == 12h);
  CHECK_FALSE(p.options.on_demand);
  CHECK(p.warnings.empty());
}

TEST_CASE("an internationalised host is managed under its A-label", "[serve][plan][issue-7]") {
  CHECK(summary(plan("bücher.example.com {\n\trespond ok\n}\n").names) ==
        Lines{"xn--bcher-kva.example.com acme"});
}

TEST_CASE("tls cert key makes manual names with the paths as written, even with auto_https off",
          "[serve][plan][issue-7]") {
  const char* const site = R"(example.com, WWW.example.com {
	tls certs/site.pem /etc/keys/site.key
}
other.example.com {
	respond ok
}
)";
  serve::CertificatePlan p = plan(site);
  CHECK(summary(p.names) == Lines{"example.com manual certs/site.pem /etc/keys/site.key",
                                  "other.example.com acme",
                                  "www.example.com manual certs/site.pem /etc/keys/site.key"});
  p = plan(std::string("{\n\tauto_https off\n}\n") + site);
  CHECK(summary(p.names) == Lines{"example.com manual certs/site.pem /etc/keys/site.key",
                                  "www.example.com manual certs/site.pem /etc/keys/site.key"});
  CHECK(p.options.acme.directory_urls.empty());
}

TEST_CASE("auto_https disable_certs leaves nothing to manage", "[serve][plan][issue-7]") {
  const serve::CertificatePlan p = plan(R"({
	auto_https disable_certs
}
example.com, localhost {
	respond ok
}
)");
  CHECK(p.names.empty());
  CHECK(p.options.acme.directory_urls.empty());
}

TEST_CASE("tls internal and issuer internal give the local CA, with its name and lifetime",
          "[serve][plan][issue-7]") {
  serve::CertificatePlan p = plan("example.com {\n\ttls internal\n}\n");
  CHECK(summary(p.names) == Lines{"example.com internal"});
  CHECK(p.options.acme.directory_urls.empty());  // no ACME client, no challenge listeners
  CHECK(p.options.local_ca.name == "local");

  p = plan(R"(example.com {
	tls {
		issuer internal {
			ca corp
			lifetime 1h
		}
	}
}
)");
  CHECK(summary(p.names) == Lines{"example.com internal"});
  CHECK(p.options.local_ca.name == "corp");
  CHECK(p.options.internal_lifetime == 1h);
}

TEST_CASE("local_certs puts every name on the local CA", "[serve][plan][issue-7]") {
  const serve::CertificatePlan p = plan(R"({
	local_certs
}
example.com, *.example.com, localhost {
	respond ok
}
)");
  CHECK(summary(p.names) ==
        Lines{"*.example.com internal", "example.com internal", "localhost internal"});
  CHECK(p.options.acme.directory_urls.empty());
}

TEST_CASE("by default Let's Encrypt alone, by HTTP-01 and TLS-ALPN-01 on ports 80 and 443",
          "[serve][plan][issue-7]") {
  const serve::CertificatePlan p = plan("example.com {\n\trespond ok\n}\n");
  const acmetool::acme::ObtainSettings& acme = p.options.acme;
  CHECK(acme.directory_urls == Lines{kLetsEncrypt});
  CHECK(acme.challenges == Lines{"http-01", "tls-alpn-01"});
  CHECK(acme.http_port == 80);
  CHECK(acme.tls_port == 443);
  CHECK(acme.account.email.empty());
  CHECK(acme.ca_root.empty());
  CHECK(acme.key_type == pki::KeyType::P256);
  CHECK_FALSE(acme.dns_provider);
}

TEST_CASE("acme_ca, email, acme_eab, acme_ca_root and key_type become the ACME settings",
          "[serve][plan][issue-7]") {
  const serve::CertificatePlan p = plan(R"({
	email admin@example.com
	acme_ca https://ca.example.net/acme/directory
	acme_ca_root /etc/ssl/private-ca.pem
	key_type p384
	acme_eab {
		key_id kid-1
		mac_key c2VjcmV0
	}
}
example.com {
	respond ok
}
)");
  const acmetool::acme::ObtainSettings& acme = p.options.acme;
  CHECK(acme.directory_urls == Lines{"https://ca.example.net/acme/directory"});
  CHECK(acme.account.email == "admin@example.com");
  CHECK(acme.account.eab_kid == "kid-1");
  CHECK(acme.account.eab_hmac_key == "c2VjcmV0");
  CHECK(acme.ca_root == "/etc/ssl/private-ca.pem");
  CHECK(acme.key_type == pki::KeyType::P384);
}

TEST_CASE("cert_issuer acme lines are the CAs in their order", "[serve][plan][issue-7]") {
  const serve::CertificatePlan p = plan(R"({
	email ops@example.com
	cert_issuer acme https://first.example.net/directory
	cert_issuer acme {
		dir https://second.example.net/directory
		email second@example.com
	}
}
example.com {
	respond ok
}
)");
  CHECK(p.options.acme.directory_urls ==
        Lines{"https://first.example.net/directory", "https://second.example.net/directory"});
  CHECK(p.options.acme.account.email ==
        "ops@example.com");  // the first issuer's, from the global option
}

TEST_CASE("http_port and https_port are the challenge ports, and alt ports and disabled challenges win",
          "[serve][plan][issue-7]") {
  serve::CertificatePlan p =
      plan("{\n\thttp_port 8080\n\thttps_port 8443\n}\nexample.com {\n\trespond ok\n}\n");
  CHECK(p.options.acme.http_port == 8080);
  CHECK(p.options.acme.tls_port == 8443);

  p = plan(R"(example.com {
	tls {
		issuer acme {
			alt_http_port 5002
			alt_tlsalpn_port 5001
			disable_http_challenge
		}
	}
}
)");
  CHECK(p.options.acme.http_port == 5002);
  CHECK(p.options.acme.tls_port == 5001);
  CHECK(p.options.acme.challenges == Lines{"tls-alpn-01"});

  CHECK(plan_error(R"(example.com {
	tls {
		issuer acme {
			disable_http_challenge
			disable_tlsalpn_challenge
		}
	}
}
)") == "Caddyfile:1: every ACME challenge is disabled and no DNS provider is set");
}

TEST_CASE("acme_dns turns on DNS-01 alone with a provider, which wildcards need",
          "[serve][plan][issue-7]") {
  const serve::CertificatePlan p = plan(R"({
	acme_dns rfc2136 {
		key_name "acme-key"
		key_alg "hmac-sha256"
		key "c2VjcmV0LXNlY3JldC1zZWNyZXQ="
		server "192.0.2.53:53"
	}
}
example.com, *.example.com {
	respond ok
}
)");
  CHECK(summary(p.names) == Lines{"*.example.com acme", "example.com acme"});
  CHECK(p.options.acme.challenges == Lines{"dns-01"});
  REQUIRE(p.options.acme.dns_provider);
  CHECK(p.options.acme.dns_provider->name() == "rfc2136");
}

TEST_CASE("tls dns and its solver settings become the provider and the DNS-01 options",
          "[serve][plan][issue-7]") {
  const serve::CertificatePlan p = plan(R"(*.example.com {
	tls {
		dns cloudflare abc123token
		resolvers 1.1.1.1
		propagation_timeout 5m
		dns_ttl 2m
	}
}
)");
  CHECK(summary(p.names) == Lines{"*.example.com acme"});
  CHECK(p.options.acme.challenges == Lines{"dns-01"});
  REQUIRE(p.options.acme.dns_provider);
  CHECK(p.options.acme.dns_provider->name() == "cloudflare");
  CHECK(p.options.acme.dns.lookup.resolvers == Lines{"1.1.1.1"});
  CHECK(p.options.acme.dns.propagation_timeout == 5min);
  CHECK(p.options.acme.dns.ttl == 2min);
  CHECK(p.warnings.empty());
}

TEST_CASE("a wildcard without a DNS provider, or with one acmetool lacks, is an error at its site",
          "[serve][plan][issue-7]") {
  CHECK(plan_error(R"(example.com {
	respond ok
}
*.example.com {
	respond ok
}
)") == "Caddyfile:4: *.example.com needs the DNS challenge: set acme_dns or tls { dns ... }");
  const std::string unknown = plan_error("*.example.com {\n\ttls {\n\t\tdns route53\n\t}\n}\n");
  CHECK_THAT(unknown, Catch::StartsWith("Caddyfile:1: unknown DNS provider \"route53\""));
}

TEST_CASE(
    "on-demand sites with an ask endpoint fill OnDemandOptions and are not managed at start-up",
    "[serve][plan][issue-7]") {
  const serve::CertificatePlan p = plan(R"({
	on_demand_tls {
		ask http://127.0.0.1:9123/check
	}
}
https:// {
	tls {
		on_demand
	}
}
customer.example.net {
	tls {
		on_demand
	}
}
example.com {
	respond ok
}
)");
  CHECK(summary(p.names) == Lines{"example.com acme"});
  REQUIRE(p.options.on_demand);
  CHECK(p.options.on_demand->ask_url == "http://127.0.0.1:9123/check");
  CHECK(p.options.on_demand_policy == IssuerPolicy::Acme);
  CHECK(p.options.on_demand->cooldown == 0ns);
  CHECK(p.options.on_demand->interval == 0ns);
  CHECK(p.options.acme.directory_urls == Lines{kLetsEncrypt});
  CHECK(p.options.on_demand_hosts.empty());  // `https://` takes any name
}

TEST_CASE("on-demand sites with hosts limit on-demand TLS to those names and patterns", "[serve][plan][issue-7]") {
  const serve::CertificatePlan p = plan(R"({
	on_demand_tls {
		ask http://127.0.0.1:9123/check
	}
}
customer.example.net, *.tenants.example.org {
	tls {
		on_demand
	}
}
)");
  CHECK(p.names.empty());
  CHECK(p.options.on_demand_hosts == Lines{"customer.example.net", "*.tenants.example.org"});
}

TEST_CASE("permission http gives the ask URL, inline or in its block", "[serve][plan][issue-7]") {
  const std::string site = "https:// {\n\ttls {\n\t\ton_demand\n\t}\n}\n";
  serve::CertificatePlan p = plan(
      "{\n\ton_demand_tls {\n\t\tpermission http https://auth.example.net/ok?tenant=1\n\t}\n}\n" +
      site);
  REQUIRE(p.options.on_demand);
  CHECK(p.options.on_demand->ask_url == "https://auth.example.net/ok?tenant=1");
  p = plan(
      "{\n\ton_demand_tls {\n\t\tpermission http {\n\t\t\tendpoint "
      "https://auth.example.net/v2\n\t\t}\n\t}\n}\n" +
      site);
  REQUIRE(p.options.on_demand);
  CHECK(p.options.on_demand->ask_url == "https://auth.example.net/v2");
}

TEST_CASE("cooldown, ask_include_ip and the deprecated interval and burst are mapped",
          "[serve][plan][issue-7]") {
  const serve::CertificatePlan p = plan(R"({
	on_demand_tls {
		ask http://localhost:9123/check
		cooldown 2m
		ask_include_ip
		interval 1m
		burst 5
	}
}
https:// {
	tls {
		on_demand
	}
}
)");
  REQUIRE(p.options.on_demand);
  CHECK(p.options.on_demand->cooldown == 2min);
  CHECK(p.options.on_demand->ask_include_ip);
  CHECK(p.options.on_demand->interval == 1min);
  CHECK(p.options.on_demand->burst == 5);
  CHECK(p.warnings.empty());  // the adapter has reported the deprecation once already
}

TEST_CASE("on-demand TLS from a public CA without ask or permission is an error at the site",
          "[serve][plan][issue-7]") {
  CHECK(plan_error(R"(example.com {
	respond ok
}
https:// {
	tls {
		on_demand
	}
}
)") == "Caddyfile:4: on-demand TLS with a public CA needs 'ask' or 'permission' in the "
       "on_demand_tls global option");
  CHECK(plan_error(R"({
	on_demand_tls {
		permission my_module a b
	}
}
https:// {
	tls {
		on_demand
	}
}
)") == "Caddyfile:6: on_demand_tls: permission module 'my_module' is not supported (acmetool has "
       "'http')");
  CHECK(plan_error("{\n\ton_demand_tls {\n\t\task ftp://auth.example.net/ok\n\t}\n}\n"
                   "https:// {\n\ttls {\n\t\ton_demand\n\t}\n}\n") ==
        "Caddyfile:6: on_demand_tls: the permission endpoint 'ftp://auth.example.net/ok' is not an "
        "http:// or https:// URL");
}

TEST_CASE("on-demand TLS from the local CA needs no ask endpoint", "[serve][plan][issue-7]") {
  const serve::CertificatePlan p = plan(R"(https:// {
	tls internal {
		on_demand
	}
}
)");
  CHECK(p.names.empty());
  REQUIRE(p.options.on_demand);
  CHECK(p.options.on_demand->ask_url.empty());
  CHECK(p.options.on_demand_policy == IssuerPolicy::Internal);
  CHECK(p.options.acme.directory_urls.empty());
}

TEST_CASE(
    "a host in several sites: the first wins, a different policy is a warning naming both lines",
    "[serve][plan][issue-7]") {
  const serve::CertificatePlan p = plan(R"(example.com {
	respond ok
}
example.com:8443 {
	tls cert.pem key.pem
}
localhost, example.com:9443 {
	respond ok
}
)");
  CHECK(summary(p.names) == Lines{"example.com acme", "localhost internal"});
  CHECK(p.warnings ==
        Lines{"Caddyfile:4: example.com gets its certificate from the ACME CA as Caddyfile:1 says, "
              "not from the files cert.pem and key.pem"});
}

TEST_CASE("sites' own ACME issuers are used when they agree, else the global one with a warning",
          "[serve][plan][issue-7]") {
  const char* const agreeing = R"(a.example.com {
	tls {
		issuer acme {
			dir https://ca.example.net/directory
		}
	}
}
b.example.com {
	tls {
		issuer acme https://ca.example.net/directory
	}
}
)";
  serve::CertificatePlan p = plan(agreeing);
  CHECK(p.options.acme.directory_urls == Lines{"https://ca.example.net/directory"});
  CHECK(p.warnings.empty());

  p = plan(std::string(agreeing) + "c.example.com {\n\trespond ok\n}\n");
  CHECK(p.options.acme.directory_urls == Lines{kLetsEncrypt});
  CHECK(p.warnings == Lines{"Caddyfile:1: per-site ACME issuers are not supported yet; this site "
                            "uses the global issuer",
                            "Caddyfile:8: per-site ACME issuers are not supported yet; this site "
                            "uses the global issuer"});
}

TEST_CASE("a tls key_type acmetool cannot make is an error naming the option",
          "[serve][plan][issue-7]") {
  CHECK(plan_error("example.com {\n\ttls {\n\t\tkey_type dsa1024\n\t}\n}\n") ==
        "Caddyfile:1: tls key_type: unsupported key type 'dsa1024' (expected p256, p384, rsa2048, "
        "rsa3072, rsa4096 "
        "or ed25519)");
  const serve::CertificatePlan p = plan("example.com {\n\ttls {\n\t\tkey_type rsa4096\n\t}\n}\n");
  CHECK(p.options.acme.key_type == pki::KeyType::Rsa4096);
}

TEST_CASE("renew_interval is the maintenance interval", "[serve][plan][issue-7]") {
  CHECK(plan("example.com {\n\trespond ok\n}\n").options.maintenance_interval == 10min);
  CHECK(plan("{\n\trenew_interval 30m\n}\nexample.com {\n\trespond ok\n}\n")
            .options.maintenance_interval == 30min);
}
