// What the dns-01 tests share: the fixture's BIND 9 (never the system resolver, never port 53),
// lookup options pointed at it, labels no other case uses, and reading what it serves.
#pragma once

#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "acmetool/acme/dns_lookup.h"
#include "acmetool/acme/dns_provider.h"
#include "bind9.h"

namespace acmetool::test::dns {

inline Bind9Server& bind9() { return Bind9Server::shared(); }

/// Lookups through the fixture's resolver, propagation checks on its authoritative port.
inline acme::DnsLookupOptions lookup_options() {
  acme::DnsLookupOptions options;
  options.resolvers = {bind9().resolver()};
  options.authoritative_port = bind9().port();
  options.query_timeout = std::chrono::seconds(2);
  return options;
}

/// "prefix-1a2b3c4d": a label no other case (or earlier run of this one) uses.
inline std::string unique_label(const std::string& prefix) {
  static std::mt19937_64 random{std::random_device{}()};
  static const char kHex[] = "0123456789abcdef";
  std::string label = prefix + "-";
  for (int i = 0; i < 8; ++i) label += kHex[random() % 16];
  return label;
}

/// The TXT values the authoritative server serves at `fqdn`.
inline std::vector<std::string> served_txt(const std::string& fqdn) {
  return acme::query_txt(fqdn, bind9().server(), lookup_options());
}

// The rfc2136 settings that work with the fixture, `changes` applied ("" removes an option); no
// environment at all unless `env` says so.
inline acme::DnsProviderSettings rfc2136_settings(const std::map<std::string, std::string>& changes = {},
                                           std::map<std::string, std::string> env = {}) {
  acme::DnsProviderSettings settings;
  settings.name = "rfc2136";
  settings.options = {{"nameserver", bind9().server()},
                      {"tsig_key", bind9().tsig_name()},
                      {"tsig_secret", bind9().tsig_secret()},
                      {"tsig_algorithm", bind9().tsig_algorithm()}};
  for (const auto& [key, value] : changes) {
    if (value.empty()) {
      settings.options.erase(key);
    } else {
      settings.options[key] = value;
    }
  }
  settings.getenv = [env = std::move(env)](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  return settings;
}

}  // namespace acmetool::test::dns
