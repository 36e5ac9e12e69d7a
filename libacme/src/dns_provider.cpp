// The DNS provider registry (make_dns_provider picks a provider by name) and what the providers
// share: option lookup (dns_providers_internal.h) and HTTP API requests (dns_http_internal.h).
#include "acmetool/acme/dns_provider.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>

#include "acmetool/acme/error.h"
#include "dns_http_internal.h"
#include "dns_providers_internal.h"

namespace acmetool::acme {
namespace {

using Factory = std::unique_ptr<DnsProvider> (*)(const DnsProviderSettings&);

struct ProviderEntry {
  std::string_view name;
  Factory make;
};

// Sorted by name: dns_provider_names() lists them in this order.
constexpr ProviderEntry kProviders[] = {
    {"acme-dns", &detail::make_acmedns_provider}, {"cloudflare", &detail::make_cloudflare_provider},
    {"exec", &detail::make_exec_provider},        {"httpreq", &detail::make_httpreq_provider},
    {"pdns", &detail::make_pdns_provider},        {"rfc2136", &detail::make_rfc2136_provider},
};

// Levenshtein distance: how many single-character edits turn `a` into `b`.
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  std::iota(row.begin(), row.end(), size_t{0});
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// Other tools' names for our providers: Caddy's DNS modules (powerdns, acmedns) and BIND's tool.
constexpr std::pair<std::string_view, std::string_view> kOtherNames[] = {
    {"powerdns", "pdns"}, {"acmedns", "acme-dns"}, {"nsupdate", "rfc2136"}};

// The provider `name` most likely meant: another tool's name for it, else the closest name when
// a few edits away (ninja's tool modes do the same), so that "route53" gets no guess.
std::optional<std::string_view> suggestion_for(std::string_view name) {
  for (const auto& [other, ours] : kOtherNames) {
    if (name == other) return ours;
  }
  const ProviderEntry* closest = &kProviders[0];
  for (const ProviderEntry& entry : kProviders) {
    if (edit_distance(name, entry.name) < edit_distance(name, closest->name)) closest = &entry;
  }
  if (edit_distance(name, closest->name) > 3) return std::nullopt;
  return closest->name;
}

// "unknown DNS provider "cloudfare" (did you mean "cloudflare"?); known providers: acme-dns, ...".
std::string unknown_provider_message(std::string_view name) {
  std::string message = "unknown DNS provider \"" + std::string(name) + "\"";
  if (const auto suggestion = suggestion_for(name)) {
    message += " (did you mean \"" + std::string(*suggestion) + "\"?)";
  }
  message += "; known providers: ";
  for (const ProviderEntry& entry : kProviders) {
    if (&entry != &kProviders[0]) message += ", ";
    message += entry.name;
  }
  return message;
}

}  // namespace

std::unique_ptr<DnsProvider> make_dns_provider(const DnsProviderSettings& settings) {
  for (const ProviderEntry& entry : kProviders) {
    if (entry.name == settings.name) return entry.make(settings);
  }
  throw Error(unknown_provider_message(settings.name));
}

std::vector<std::string> dns_provider_names() {
  std::vector<std::string> names;
  for (const ProviderEntry& entry : kProviders) names.emplace_back(entry.name);
  return names;
}

namespace detail {

std::optional<std::string> option_or_env(const DnsProviderSettings& settings, std::string_view key,
                                         std::string_view env_name) {
  if (auto it = settings.options.find(std::string(key));
      it != settings.options.end() && !it->second.empty()) {
    return it->second;
  }
  if (env_name.empty()) return std::nullopt;
  const std::string variable(env_name);
  const char* value =
      settings.getenv ? settings.getenv(variable.c_str()) : std::getenv(variable.c_str());
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

std::string required_option(const DnsProviderSettings& settings, std::string_view key,
                            std::string_view env_name) {
  if (auto value = option_or_env(settings, key, env_name)) return *value;
  throw Error(settings.name + ": missing option \"" + std::string(key) + "\" (--dns-opt " +
              std::string(key) + "=..." + (env_name.empty() ? "" : " or " + std::string(env_name)) + ")");
}

bool raw_mode(const DnsProviderSettings& settings, std::string_view env_name) {
  const std::optional<std::string> mode = option_or_env(settings, "mode", env_name);
  if (!mode) return false;
  if (*mode == "RAW") return true;
  throw Error(settings.name + ": option \"mode\" (--dns-opt mode=... or " + std::string(env_name) +
              ") is \"" + *mode + "\"; expected RAW or nothing");
}

std::string_view without_trailing_dot(std::string_view name) {
  if (name.ends_with('.')) name.remove_suffix(1);
  return name;
}

std::string raw_mode_domain(std::string_view fqdn) {
  constexpr std::string_view kPrefix = "_acme-challenge.";
  if (fqdn.starts_with(kPrefix)) fqdn.remove_prefix(kPrefix.size());
  return std::string(without_trailing_dot(fqdn));
}

}  // namespace detail

namespace detail {

HttpResponse send_api_request(std::string_view provider, std::string_view zone,
                              const HttpRequest& request) {
  try {
    return make_http_client()->send(request);
  } catch (const DnsError&) {
    throw;
  } catch (const Error& e) {
    throw DnsError(std::string(provider), std::string(zone), e.what());
  }
}

std::string join_url(std::string_view base, std::string_view path) {
  while (base.ends_with('/')) base.remove_suffix(1);
  return std::string(base) + std::string(path);
}

std::string basic_authorization(std::string_view user, std::string_view password) {
  const std::string credentials = std::string(user) + ":" + std::string(password);
  std::string encoded(4 * ((credentials.size() + 2) / 3) + 1, '\0');
  const int length = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()),
                                     reinterpret_cast<const unsigned char*>(credentials.data()),
                                     static_cast<int>(credentials.size()));
  encoded.resize(static_cast<size_t>(length));
  return "Basic " + encoded;
}

std::string string_field(const nlohmann::json& object, std::string_view key) {
  if (!object.is_object()) return "";
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string short_body(std::string_view body) {
  constexpr size_t kMaxShown = 200;
  const size_t begin = body.find_first_not_of(" \t\r\n");
  if (begin == std::string_view::npos) return "(empty body)";
  body = body.substr(begin);
  body = body.substr(0, std::min(body.find_first_of("\r\n"), kMaxShown));
  return std::string(body);
}

}  // namespace detail
}  // namespace acmetool::acme
