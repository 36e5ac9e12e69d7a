// PowerDNS Authoritative's HTTP API (doc.powerdns.com/authoritative/http-api): reads the zone's TXT
// RRset at the name and PATCHes it whole, with the value added or removed.
#include <charconv>
#include <mutex>
#include <nlohmann/json.hpp>

#include "acmetool/acme/error.h"
#include "dns_http_internal.h"
#include "dns_providers_internal.h"

namespace acmetool::acme {
namespace {

using nlohmann::json;

constexpr std::string_view kName = "pdns";

struct PdnsConfig {
  std::string api_url;  // "http://127.0.0.1:8081", the webserver the API runs in
  std::string api_key;
  std::string server_name = "localhost";
  int api_version = 1;  // 0: the pre-4.0 URLs without the /api/v1 prefix
};

// TXT content in the API is presentation format: the value as one quoted character-string. A
// dns-01 value is base64url, which needs no escaping.
std::string txt_content(const TxtRecord& record) { return "\"" + record.value + "\""; }

class PdnsProvider final : public DnsProvider {
 public:
  explicit PdnsProvider(PdnsConfig config) : config_(std::move(config)) {}

  std::string_view name() const override { return kName; }
  void present(const TxtRecord& record) override;
  void cleanup(const TxtRecord& record) override;

 private:
  std::string zone_url(const TxtRecord& record) const;
  json txt_records(const TxtRecord& record) const;
  void replace(const TxtRecord& record, const json& records) const;
  HttpResponse send(const TxtRecord& record, std::string method, std::string url,
                    std::string body = "") const;

  PdnsConfig config_;
  // Serializes each read-modify-write of an RRset: two orders may add values at one name at once.
  std::mutex mutex_;
};

void PdnsProvider::present(const TxtRecord& record) {
  std::lock_guard lock(mutex_);
  json records = txt_records(record);
  for (const json& existing : records) {
    if (detail::string_field(existing, "content") == txt_content(record)) return;
  }
  records.push_back({{"content", txt_content(record)}, {"disabled", false}});
  replace(record, records);
}

void PdnsProvider::cleanup(const TxtRecord& record) {
  std::lock_guard lock(mutex_);
  const json records = txt_records(record);
  json remaining = json::array();
  for (const json& existing : records) {
    if (detail::string_field(existing, "content") != txt_content(record)) {
      remaining.push_back(existing);
    }
  }
  if (remaining.size() != records.size()) replace(record, remaining);
}

// ".../api/v1/servers/localhost/zones/example.com." (zone ids are names with the trailing dot).
std::string PdnsProvider::zone_url(const TxtRecord& record) const {
  const std::string prefix =
      config_.api_version > 0 ? "/api/v" + std::to_string(config_.api_version) : "";
  return detail::join_url(config_.api_url,
                          prefix + "/servers/" + config_.server_name + "/zones/" + record.zone);
}

// The records of the TXT RRset at record.fqdn ([] when there is none), each
// {"content": "\"...\"", "disabled": false}, from GET zone.
json PdnsProvider::txt_records(const TxtRecord& record) const {
  const HttpResponse response = send(record, "GET", zone_url(record));
  const json zone = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (!zone.is_object() || !zone.contains("rrsets") || !zone["rrsets"].is_array()) {
    throw DnsError(std::string(kName), record.zone,
                   "GET " + zone_url(record) + ": the answer has no rrsets array");
  }
  for (const json& rrset : zone["rrsets"]) {
    if (detail::string_field(rrset, "name") == record.fqdn &&
        detail::string_field(rrset, "type") == "TXT") {
      const auto records = rrset.find("records");
      if (records != rrset.end() && records->is_array()) return *records;
    }
  }
  return json::array();
}

// PATCH with changetype REPLACE sets the whole RRset; DELETE removes it when nothing remains.
void PdnsProvider::replace(const TxtRecord& record, const json& records) const {
  json rrset = {{"name", record.fqdn}, {"type", "TXT"}};
  if (records.empty()) {
    rrset["changetype"] = "DELETE";
  } else {
    rrset["changetype"] = "REPLACE";
    rrset["ttl"] = record.ttl.count();
    rrset["records"] = records;
  }
  send(record, "PATCH", zone_url(record), json{{"rrsets", json::array({rrset})}}.dump());
}

// Sends one API request; a non-2xx answer becomes a DnsError with the API's "error" text.
HttpResponse PdnsProvider::send(const TxtRecord& record, std::string method, std::string url,
                                std::string body) const {
  HttpRequest request;
  request.method = std::move(method);
  request.url = std::move(url);
  request.headers = {{"X-API-Key", config_.api_key}, {"Accept", "application/json"}};
  if (!body.empty()) request.headers.push_back({"Content-Type", "application/json"});
  request.body = std::move(body);
  HttpResponse response = detail::send_api_request(kName, record.zone, request);
  if (detail::is_success(response.status)) return response;
  const json doc = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  std::string reason = detail::string_field(doc, "error");
  if (reason.empty()) reason = detail::short_body(response.body);
  throw DnsError(std::string(kName), record.zone,
                 request.method + " " + request.url + " for " + record.fqdn + ": HTTP " +
                     std::to_string(response.status) + ": " + reason);
}

int parse_api_version(const std::string& text) {
  int version = -1;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), version);
  if (ec != std::errc() || end != text.data() + text.size() || version < 0) {
    throw Error(
        "pdns: option \"api_version\" (--dns-opt api_version=... or PDNS_API_VERSION) is \"" +
        text + "\"; expected 0 or 1");
  }
  return version;
}

}  // namespace

namespace detail {

std::unique_ptr<DnsProvider> make_pdns_provider(const DnsProviderSettings& settings) {
  PdnsConfig config;
  config.api_url = required_option(settings, "api_url", "PDNS_API_URL");
  config.api_key = required_option(settings, "api_key", "PDNS_API_KEY");
  if (auto server = option_or_env(settings, "server_name", "PDNS_SERVER_NAME")) {
    config.server_name = *server;
  }
  if (auto version = option_or_env(settings, "api_version", "PDNS_API_VERSION")) {
    config.api_version = parse_api_version(*version);
  }
  return std::make_unique<PdnsProvider>(std::move(config));
}

}  // namespace detail
}  // namespace acmetool::acme
