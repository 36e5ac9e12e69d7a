// cmd/dns_flags.h: the dns-01 flags `obtain` and `renew` share (--dns, --dns-opt, --dns-zone...),
// and the provider and solver options they make.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "acmetool/acme/obtainer.h"

namespace acmetool::cmd {

struct DnsArgs {
  std::string provider;                    ///< --dns PROVIDER
  std::vector<std::string> options;        ///< --dns-opt KEY=VALUE, repeatable
  std::string zone;                        ///< --dns-zone
  std::string override_domain;             ///< --dns-override-domain
  std::string propagation_timeout = "2m";  ///< --dns-propagation-timeout (a Caddy-style duration)
  std::string propagation_interval = "2s"; ///< --dns-propagation-interval
  std::string propagation_delay;           ///< --dns-propagation-delay; "" = the provider's own
  std::vector<std::string> resolvers;      ///< --dns-resolvers IP[:PORT],...
  int nameserver_port = 53;                ///< --dns-nameserver-port
  std::string ttl = "60s";                 ///< --dns-ttl
  bool skip_propagation = false;           ///< --dns-skip-propagation
};

/// Adds the --dns* flags to `command`.
void add_dns_flags(CLI::App& command, DnsArgs& args);

/// Sets settings.dns_provider and settings.dns from the flags when dns-01 is among
/// settings.challenges; the provider is --dns, else `recorded_provider` (what a certificate's
/// metadata says was used), with its options from --dns-opt and the environment. Throws
/// UsageError naming the flag for a bad value, a missing provider or a provider option.
void apply_dns_flags(const DnsArgs& args, std::string_view recorded_provider, acme::ObtainSettings& settings,
                     std::string_view command);

}  // namespace acmetool::cmd
