#include "acmetool/serve/dns_config.h"

#include <algorithm>
#include <map>

#include "acmetool/acme/dns_lookup.h"

namespace acmetool::serve {
namespace {

struct Mapping {
  std::string_view provider;                        ///< acmetool's provider name
  std::vector<std::string_view> positional;         ///< option names of the module's arguments
  std::map<std::string_view, std::string_view> fields;  ///< Caddy field → acmetool option
};

// Caddy module name → how its configuration maps to acmetool's provider.
const std::map<std::string_view, Mapping>& caddy_modules() {
  static const std::map<std::string_view, Mapping> modules = {
      {"rfc2136",
       {"rfc2136", {}, {{"key_name", "tsig_key"}, {"key_alg", "tsig_algorithm"}, {"key", "tsig_secret"},
                        {"server", "nameserver"}}}},
      {"cloudflare", {"cloudflare", {"api_token"}, {}}},
      {"powerdns",
       {"pdns", {"api_url", "api_key"}, {{"server_url", "api_url"}, {"api_token", "api_key"}, {"server_id", "server_name"}}}},
      {"acmedns", {"acme-dns", {}, {{"server_url", "api_base"}, {"config_file_path", "storage_path"}}}},
  };
  return modules;
}

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

}  // namespace

acme::DnsProviderSettings dns_provider_settings(const caddyfile::DnsProvider& provider) {
  acme::DnsProviderSettings settings;
  settings.name = provider.name;
  const auto module = caddy_modules().find(provider.name);
  const Mapping* mapping = module == caddy_modules().end() ? nullptr : &module->second;
  if (mapping) settings.name = std::string(mapping->provider);
  for (size_t i = 0; mapping && i < provider.args.size() && i < mapping->positional.size(); ++i) {
    settings.options[std::string(mapping->positional[i])] = provider.args[i];
  }
  for (const auto& [field, values] : provider.options) {
    if (values.empty()) continue;
    std::string key = lower(field);
    if (mapping) {
      if (auto renamed = mapping->fields.find(key); renamed != mapping->fields.end()) key = renamed->second;
    }
    settings.options[key] = values.front();
  }
  return settings;
}

acme::Dns01Options dns01_options(const caddyfile::DnsChallenge& challenge) {
  acme::Dns01Options options;
  options.lookup.resolvers = challenge.resolvers;
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  if (challenge.propagation_delay) options.propagation_delay = duration_cast<milliseconds>(*challenge.propagation_delay);
  if (challenge.propagation_timeout) {
    if (challenge.propagation_timeout->count() < 0) {
      options.skip_propagation = true;
    } else {
      options.propagation_timeout = duration_cast<milliseconds>(*challenge.propagation_timeout);
    }
  }
  if (challenge.ttl) options.ttl = std::chrono::duration_cast<std::chrono::seconds>(*challenge.ttl);
  if (challenge.override_domain) options.override_domain = acme::absolute_name(*challenge.override_domain);
  return options;
}

}  // namespace acmetool::serve
