#include "dns_flags.h"

#include <algorithm>

#include "acmetool/acme/error.h"
#include "acmetool/caddyfile/duration.h"
#include "common.h"

namespace acmetool::cmd {
namespace {

using std::chrono::milliseconds;

// A Caddy-style duration flag ("90s", "2m", "1h30m", "500ms").
milliseconds duration_flag(const std::string& value, std::string_view flag, std::string_view command) {
  const auto parsed = caddyfile::parse_duration(value);
  if (!parsed || parsed->count() < 0) {
    throw UsageError(std::string(command) + ": " + std::string(flag) + " " + value +
                     ": expected a duration such as 30s, 2m or 1h30m");
  }
  return std::chrono::duration_cast<milliseconds>(*parsed);
}

}  // namespace

void add_dns_flags(CLI::App& command, DnsArgs& args) {
  command.add_option("--dns", args.provider, "DNS provider for dns-01: " + [] {
    std::string names;
    for (const std::string& name : acme::dns_provider_names()) names += (names.empty() ? "" : ", ") + name;
    return names;
  }())->type_name("PROVIDER");
  command.add_option("--dns-opt", args.options, "Provider option KEY=VALUE (repeatable; environment variables as lego names them also work)")
      ->type_name("KEY=VALUE")
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  command.add_option("--dns-zone", args.zone, "Zone of the TXT records (default: found by SOA lookups)")->type_name("ZONE");
  command.add_option("--dns-override-domain", args.override_domain,
                     "Put the TXT record at NAME instead of _acme-challenge.<name> (a delegation target)")
      ->type_name("NAME");
  command.add_option("--dns-propagation-timeout", args.propagation_timeout,
                     "How long to wait for every authoritative nameserver to serve the record")
      ->type_name("DURATION")
      ->capture_default_str();
  command.add_option("--dns-propagation-interval", args.propagation_interval, "Time between propagation checks")
      ->type_name("DURATION")
      ->capture_default_str();
  command.add_option("--dns-propagation-delay", args.propagation_delay, "Wait this long after adding a record before checking")
      ->type_name("DURATION");
  command.add_option("--dns-resolvers", args.resolvers, "Resolvers for zone and nameserver lookups (default: /etc/resolv.conf)")
      ->type_name("IP[:PORT]")
      ->delimiter(',')
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  command.add_option("--dns-nameserver-port", args.nameserver_port, "Port the authoritative nameservers are asked on")
      ->type_name("PORT")
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
  command.add_option("--dns-ttl", args.ttl, "TTL of the TXT records")->type_name("DURATION")->capture_default_str();
  command.add_flag("--dns-skip-propagation", args.skip_propagation, "Do not wait for the nameservers to serve the records");
}

void apply_dns_flags(const DnsArgs& args, std::string_view recorded_provider, acme::ObtainSettings& settings,
                     std::string_view command) {
  const bool dns01 = std::find(settings.challenges.begin(), settings.challenges.end(), "dns-01") != settings.challenges.end();
  if (!dns01) return;
  acme::DnsProviderSettings provider;
  provider.name = args.provider.empty() ? std::string(recorded_provider) : args.provider;
  if (provider.name.empty()) throw UsageError(std::string(command) + ": dns-01 needs a DNS provider: --dns PROVIDER");
  for (const std::string& option : args.options) {
    const size_t equals = option.find('=');
    if (equals == std::string::npos || equals == 0) {
      throw UsageError(std::string(command) + ": --dns-opt " + option + ": expected KEY=VALUE");
    }
    std::string key = option.substr(0, equals);
    std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return std::tolower(c); });
    provider.options[key] = option.substr(equals + 1);
  }
  try {
    settings.dns_provider = acme::make_dns_provider(provider);
  } catch (const acme::Error& e) {
    throw UsageError(std::string(command) + ": --dns " + provider.name + ": " + e.what());
  }
  acme::Dns01Options& dns = settings.dns;
  dns.lookup.resolvers = args.resolvers;
  dns.lookup.authoritative_port = args.nameserver_port;
  dns.zone = args.zone;  // the solver spells names its own way
  dns.override_domain = args.override_domain;
  dns.ttl = std::chrono::duration_cast<std::chrono::seconds>(duration_flag(args.ttl, "--dns-ttl", command));
  dns.propagation_timeout = duration_flag(args.propagation_timeout, "--dns-propagation-timeout", command);
  dns.propagation_interval = duration_flag(args.propagation_interval, "--dns-propagation-interval", command);
  if (!args.propagation_delay.empty()) {
    dns.propagation_delay = duration_flag(args.propagation_delay, "--dns-propagation-delay", command);
  }
  dns.skip_propagation = args.skip_propagation;
}

}  // namespace acmetool::cmd
