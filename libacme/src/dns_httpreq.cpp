// lego's `httpreq` provider: POSTs the record as JSON to ENDPOINT/present and ENDPOINT/cleanup,
// for a small web service of the user's that changes the zone.
#include <nlohmann/json.hpp>

#include "acmetool/acme/error.h"
#include "dns_http_internal.h"
#include "dns_providers_internal.h"

namespace acmetool::acme {
namespace {

using nlohmann::json;

constexpr std::string_view kName = "httpreq";

struct HttpreqConfig {
  std::string endpoint;  // "https://dns-api.example.net/acme", without trailing slashes
  bool raw = false;
  std::string username, password;  // basic auth when both are set, as lego does
};

class HttpreqProvider final : public DnsProvider {
 public:
  explicit HttpreqProvider(HttpreqConfig config) : config_(std::move(config)) {}

  std::string_view name() const override { return kName; }
  void present(const TxtRecord& record) override { post("/present", record); }
  void cleanup(const TxtRecord& record) override { post("/cleanup", record); }

 private:
  std::string body(const TxtRecord& record) const;
  void post(std::string_view path, const TxtRecord& record) const;

  HttpreqConfig config_;
};

// lego's default mode sends {"fqdn": "_acme-challenge.example.com.", "value": "..."}. Its RAW mode
// sends {"domain", "token", "keyAuth"} for the endpoint to derive the record from; a TxtRecord
// holds no token or key authorization (the solver hands providers the finished record), so RAW
// sends the domain lego would (the name under `_acme-challenge.`, no trailing dot), an empty
// token, and the TXT value as "keyAuth". An endpoint that hashes keyAuth must use it as it is.
std::string HttpreqProvider::body(const TxtRecord& record) const {
  if (config_.raw) {
    return json{
        {"domain", detail::raw_mode_domain(record.fqdn)}, {"token", ""}, {"keyAuth", record.value}}
        .dump();
  }
  return json{{"fqdn", record.fqdn}, {"value", record.value}}.dump();
}

void HttpreqProvider::post(std::string_view path, const TxtRecord& record) const {
  HttpRequest request;
  request.method = "POST";
  request.url = detail::join_url(config_.endpoint, path);
  request.headers.push_back({"Content-Type", "application/json"});
  if (!config_.username.empty() && !config_.password.empty()) {
    request.headers.push_back(
        {"Authorization", detail::basic_authorization(config_.username, config_.password)});
  }
  request.body = body(record);
  const HttpResponse response = detail::send_api_request(kName, record.zone, request);
  // lego accepts anything below 400; a 3xx is refused here as well, since redirects are not
  // followed and the record would silently not be changed.
  if (!detail::is_success(response.status)) {
    throw DnsError(std::string(kName), record.zone,
                   "POST " + request.url + " for " + record.fqdn + ": HTTP " +
                       std::to_string(response.status) + ": " + detail::short_body(response.body));
  }
}

}  // namespace

namespace detail {

std::unique_ptr<DnsProvider> make_httpreq_provider(const DnsProviderSettings& settings) {
  HttpreqConfig config;
  config.endpoint = required_option(settings, "endpoint", "HTTPREQ_ENDPOINT");
  if (!config.endpoint.starts_with("http://") && !config.endpoint.starts_with("https://")) {
    throw Error("httpreq: option \"endpoint\" (--dns-opt endpoint=... or HTTPREQ_ENDPOINT) is \"" +
                config.endpoint + "\"; expected an http:// or https:// URL");
  }
  config.raw = raw_mode(settings, "HTTPREQ_MODE");
  config.username = option_or_env(settings, "username", "HTTPREQ_USERNAME").value_or("");
  config.password = option_or_env(settings, "password", "HTTPREQ_PASSWORD").value_or("");
  return std::make_unique<HttpreqProvider>(std::move(config));
}

}  // namespace detail
}  // namespace acmetool::acme
