// What the providers share beyond option_or_env (dns_providers_internal.h): required options and
// lego's RAW mode switch, and, for the HTTP-API providers (httpreq, acme-dns, pdns, cloudflare),
// sending a request and the URL, header and message helpers around it. Implemented in
// dns_provider.cpp.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

#include "acmetool/acme/dns_provider.h"
#include "acmetool/acme/http.h"

namespace acmetool::acme::detail {

/// option_or_env(settings, key, env_name), or throws Error naming the provider, the --dns-opt key
/// and the environment variable: `httpreq: missing option "endpoint" (--dns-opt endpoint=... or
/// HTTPREQ_ENDPOINT)`.
std::string required_option(const DnsProviderSettings& settings, std::string_view key,
                            std::string_view env_name);

/// lego's `<PREFIX>_MODE` switch, as option "mode" or `env_name`: false when unset, true for
/// "RAW"; throws Error for anything else.
bool raw_mode(const DnsProviderSettings& settings, std::string_view env_name);

/// The `domain` lego's RAW modes pass to a program or endpoint: `fqdn` without a leading
/// "_acme-challenge." and without its trailing dot ("_acme-challenge.www.example.com." ->
/// "www.example.com").
std::string raw_mode_domain(std::string_view fqdn);

/// `name` without one trailing dot.
std::string_view without_trailing_dot(std::string_view name);

/// Sends `request` (GET, POST, PUT, PATCH or DELETE) through make_http_client() and returns the
/// response, whatever its status: http and https only, TLS verified against the system store, no
/// proxy, no redirects. Makes a client per call, so any thread may call it. Transport failures and malformed requests
/// are rethrown as DnsError(provider, zone, "<METHOD> <url>: <detail>").
HttpResponse send_api_request(std::string_view provider, std::string_view zone,
                              const HttpRequest& request);

/// `base` without trailing slashes, then `path` (which starts with '/'): lego's path.Join of an
/// endpoint and "/present".
std::string join_url(std::string_view base, std::string_view path);

/// The value of an RFC 7617 Authorization field: "Basic " + base64(user ":" password).
std::string basic_authorization(std::string_view user, std::string_view password);

/// `body` cut down for an error message: its first line, at most 200 bytes; "(empty body)" when
/// there is nothing to show.
std::string short_body(std::string_view body);

/// `object[key]` when `object` is an object holding a string there, else "": for reading API
/// answers without trusting their shape.
std::string string_field(const nlohmann::json& object, std::string_view key);

/// True for 2xx.
inline bool is_success(long status) { return status >= 200 && status < 300; }

}  // namespace acmetool::acme::detail
