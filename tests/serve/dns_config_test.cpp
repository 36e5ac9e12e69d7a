// Caddyfiles written for Caddy's DNS modules (caddy-dns/rfc2136, cloudflare, powerdns, acmedns)
// become libacme provider settings that make_dns_provider() accepts, with Caddy's field names
// mapped to acmetool's options.
#include <catch2/catch.hpp>

#include "acmetool/acme/dns_provider.h"
#include "acmetool/caddyfile/adapt.h"
#include "acmetool/caddyfile/parse.h"
#include "acmetool/serve/dns_config.h"

namespace acme = acmetool::acme;
namespace caddyfile = acmetool::caddyfile;
using acmetool::serve::dns01_options;
using acmetool::serve::dns_provider_settings;
using namespace std::chrono_literals;

namespace {

caddyfile::Config adapt(std::string_view text) {
  std::vector<caddyfile::Warning> warnings;
  return caddyfile::adapt(caddyfile::parse(text, "Caddyfile"), warnings);
}

// The ACME issuer of the first site's tls block.
const caddyfile::AcmeIssuer& site_issuer(const caddyfile::Config& config) {
  REQUIRE(!config.sites.empty());
  REQUIRE(config.sites[0].tls);
  REQUIRE(!config.sites[0].tls->issuers.empty());
  const auto* acme_issuer = std::get_if<caddyfile::AcmeIssuer>(&config.sites[0].tls->issuers[0]);
  REQUIRE(acme_issuer);
  return *acme_issuer;
}

}  // namespace

TEST_CASE("Caddy's rfc2136 module block becomes acmetool's rfc2136 options", "[serve][dns]") {
  const caddyfile::Config config = adapt(R"({
	acme_dns rfc2136 {
		key_name "acme-key"
		key_alg "hmac-sha512"
		key "c2VjcmV0LXNlY3JldC1zZWNyZXQ="
		server "192.0.2.53:53"
	}
}
example.com {
	respond ok
}
)");
  REQUIRE(config.global.acme_dns);
  const acme::DnsProviderSettings settings = dns_provider_settings(*config.global.acme_dns);
  CHECK(settings.name == "rfc2136");
  CHECK(settings.options == std::map<std::string, std::string>{{"tsig_key", "acme-key"},
                                                               {"tsig_algorithm", "hmac-sha512"},
                                                               {"tsig_secret", "c2VjcmV0LXNlY3JldC1zZWNyZXQ="},
                                                               {"nameserver", "192.0.2.53:53"}});
  CHECK(acme::make_dns_provider(settings)->name() == "rfc2136");
}

TEST_CASE("tls { dns cloudflare TOKEN } and its DNS settings become provider and solver options", "[serve][dns]") {
  const caddyfile::Config config = adapt(R"(*.example.com {
	tls {
		dns cloudflare abc123token
		resolvers 1.1.1.1 8.8.8.8:53
		propagation_timeout 5m
		propagation_delay 10s
		dns_ttl 2m
		dns_challenge_override_domain _acme-challenge.Delegated.example.net
	}
	respond ok
}
)");
  const caddyfile::AcmeIssuer& issuer = site_issuer(config);
  REQUIRE(issuer.dns);
  REQUIRE(issuer.dns->provider);
  const acme::DnsProviderSettings settings = dns_provider_settings(*issuer.dns->provider);
  CHECK(settings.name == "cloudflare");
  CHECK(settings.options.at("api_token") == "abc123token");
  CHECK(acme::make_dns_provider(settings)->name() == "cloudflare");
  const acme::Dns01Options options = dns01_options(*issuer.dns);
  CHECK(options.lookup.resolvers == std::vector<std::string>{"1.1.1.1", "8.8.8.8:53"});
  CHECK(options.propagation_timeout == 5min);
  CHECK(options.propagation_delay == 10s);
  CHECK(options.ttl == 2min);
  CHECK(options.override_domain == "_acme-challenge.delegated.example.net.");
  CHECK_FALSE(options.skip_propagation);
}

TEST_CASE("a negative propagation_timeout skips the check, as in Caddy", "[serve][dns]") {
  const caddyfile::Config config = adapt(R"(example.com {
	tls {
		dns rfc2136 {
			server 192.0.2.53
		}
		propagation_timeout -1
	}
	respond ok
}
)");
  const caddyfile::AcmeIssuer& issuer = site_issuer(config);
  REQUIRE(issuer.dns);
  CHECK(dns01_options(*issuer.dns).skip_propagation);
}

TEST_CASE("Caddy's powerdns and acmedns modules map to pdns and acme-dns", "[serve][dns]") {
  caddyfile::DnsProvider powerdns{"powerdns", {"https://pdns.example.net", "key-1"}, {{"server_id", {"primary"}}}};
  acme::DnsProviderSettings settings = dns_provider_settings(powerdns);
  CHECK(settings.name == "pdns");
  CHECK(settings.options == std::map<std::string, std::string>{{"api_url", "https://pdns.example.net"},
                                                               {"api_key", "key-1"},
                                                               {"server_name", "primary"}});
  CHECK(acme::make_dns_provider(settings)->name() == "pdns");

  caddyfile::DnsProvider acmedns{"acmedns", {}, {{"username", {"u"}}, {"password", {"p"}}, {"subdomain", {"s"}},
                                                 {"server_url", {"https://auth.acme-dns.io"}}}};
  settings = dns_provider_settings(acmedns);
  CHECK(settings.name == "acme-dns");
  CHECK(settings.options.at("api_base") == "https://auth.acme-dns.io");
  CHECK(acme::make_dns_provider(settings)->name() == "acme-dns");

  // acmetool's own names keep their block's lines as options.
  caddyfile::DnsProvider exec{"exec", {}, {{"path", {"/usr/local/bin/hook"}}}};
  CHECK(dns_provider_settings(exec).options.at("path") == "/usr/local/bin/hook");
}
