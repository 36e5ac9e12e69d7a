// reverse_proxy's `dynamic a NAME PORT` and `dynamic srv NAME` (issue 9): the upstreams a DNS
// answer names, looked up with c-ares. Blocking; the proxy calls it off its io threads and again
// every `refresh` (1 minute by default, as Caddy).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "acmetool/caddyfile/config_proxy.h"

namespace acmetool::serve {

/// The dial addresses ("192.0.2.1:8080", "[2001:db8::1]:8080") `dynamic` stands for, sorted:
///  - `a`: every A and AAAA address of `name`, with `port`;
///  - `srv`: the targets of `name`'s SRV records with their ports, each target's addresses looked
///    up through the same resolvers (so targets need not resolve through the system's), in
///    priority order (lowest first), then by weight (highest first).
/// `dynamic.resolvers` ("IP" or "IP:PORT") are asked instead of /etc/resolv.conf's nameservers.
/// Throws serve::Error "dynamic a app.internal: <reason>" when the name does not resolve or the
/// answer holds no address.
std::vector<std::string> resolve_dynamic_upstreams(const caddyfile::DynamicUpstreams& dynamic,
                                                   std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace acmetool::serve
