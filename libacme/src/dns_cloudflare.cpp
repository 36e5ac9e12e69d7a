// Cloudflare's v4 API (developers.cloudflare.com/api): one TXT record per value, created in the
// zone found by name and deleted by id. The requests and answers are pure functions
// (dns_cloudflare_internal.h); the provider only sends them and remembers ids.
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "acmetool/acme/error.h"
#include "dns_cloudflare_internal.h"
#include "dns_http_internal.h"
#include "dns_providers_internal.h"

namespace acmetool::acme {
namespace detail::cloudflare {
namespace {

using nlohmann::json;

constexpr std::string_view kName = "cloudflare";
constexpr int kDuplicateRecordCode = 81058;  // "An identical record already exists."

std::vector<HttpHeader> auth_headers(const Credentials& credentials, bool zone_read) {
  const std::string& token =
      zone_read && !credentials.zone_token.empty() ? credentials.zone_token : credentials.dns_token;
  if (!token.empty()) return {{"Authorization", "Bearer " + token}};
  return {{"X-Auth-Email", credentials.email}, {"X-Auth-Key", credentials.api_key}};
}

HttpRequest api_request(const Config& config, std::string method, std::string_view path,
                        bool zone_read = false) {
  HttpRequest request;
  request.method = std::move(method);
  request.url = join_url(config.base_url, path);
  request.headers = auth_headers(config.credentials, zone_read);
  request.headers.push_back({"Accept", "application/json"});
  return request;
}

std::string records_path(std::string_view zone_id) {
  return "/zones/" + url_query_value(zone_id) + "/dns_records";
}

json parse_body(const HttpResponse& response) {
  return json::parse(response.body, nullptr, /*allow_exceptions=*/false);
}

// "10000 Authentication error" for each error and each entry of its error_chain.
void append_errors(const json& errors, std::string& out) {
  if (!errors.is_array()) return;
  for (const json& error : errors) {
    if (!error.is_object()) continue;
    if (!out.empty()) out += "; ";
    const auto code = error.find("code");
    if (code != error.end() && code->is_number_integer()) {
      out += std::to_string(code->get<int>()) + " ";
    }
    const std::string message = string_field(error, "message");
    out += message.empty() ? "(no message)" : message;
    if (const auto chain = error.find("error_chain"); chain != error.end()) {
      append_errors(*chain, out);
    }
  }
}

// The "result" of a successful answer; throws DnsError(zone) "<what>: <api_failure>" otherwise.
json result_of(const HttpResponse& response, std::string_view zone, const std::string& what) {
  if (std::optional<std::string> failure = api_failure(response)) {
    throw DnsError(std::string(kName), std::string(zone), what + ": " + *failure);
  }
  const json doc = parse_body(response);
  return doc.contains("result") ? doc["result"] : json();
}

}  // namespace

HttpRequest zone_lookup_request(const Config& config, std::string_view zone) {
  return api_request(config, "GET",
                     "/zones?name=" + url_query_value(without_trailing_dot(zone)) + "&per_page=50",
                     /*zone_read=*/true);
}

HttpRequest create_record_request(const Config& config, std::string_view zone_id,
                                  const TxtRecord& record) {
  HttpRequest request = api_request(config, "POST", records_path(zone_id));
  request.headers.push_back({"Content-Type", "application/json"});
  const long long ttl = std::max<long long>(kMinTtl, record.ttl.count());
  request.body = json{
      {"type", "TXT"},
      {"name", without_trailing_dot(record.fqdn)},
      {"content", record.value},
      {"ttl", ttl}}.dump();
  return request;
}

HttpRequest find_record_request(const Config& config, std::string_view zone_id,
                                const TxtRecord& record) {
  return api_request(config, "GET",
                     records_path(zone_id) +
                         "?type=TXT&name=" + url_query_value(without_trailing_dot(record.fqdn)) +
                         "&content=" + url_query_value(record.value));
}

HttpRequest delete_record_request(const Config& config, std::string_view zone_id,
                                  std::string_view record_id) {
  return api_request(config, "DELETE", records_path(zone_id) + "/" + url_query_value(record_id));
}

std::optional<std::string> api_failure(const HttpResponse& response) {
  const json doc = parse_body(response);
  const bool success = doc.is_object() && doc.contains("success") && doc["success"] == true;
  if (is_success(response.status) && success) return std::nullopt;
  std::string errors;
  if (doc.is_object()) append_errors(doc.value("errors", json()), errors);
  if (errors.empty()) errors = short_body(response.body);
  return "HTTP " + std::to_string(response.status) + ": " + errors;
}

std::string zone_id_from(const HttpResponse& response, std::string_view zone) {
  const std::string name(without_trailing_dot(zone));
  const json zones = result_of(response, zone, "looking up zone " + name);
  if (zones.is_array()) {
    for (const json& entry : zones) {
      if (string_field(entry, "name") == name && !string_field(entry, "id").empty()) {
        return string_field(entry, "id");
      }
    }
  }
  throw DnsError(
      std::string(kName), std::string(zone),
      "zone " + name + " not found: the API token cannot read it or it is not on Cloudflare");
}

std::string created_record_id(const HttpResponse& response, const TxtRecord& record) {
  const json created = result_of(response, record.zone, "creating TXT " + record.fqdn);
  const std::string id = string_field(created, "id");
  if (id.empty()) {
    throw DnsError(std::string(kName), record.zone,
                   "creating TXT " + record.fqdn + ": the answer has no record id");
  }
  return id;
}

bool is_duplicate_record(const HttpResponse& response) {
  const json doc = parse_body(response);
  if (is_success(response.status) || !doc.is_object() || !doc.contains("errors")) return false;
  for (const json& error : doc["errors"]) {
    if (error.is_object() && error.contains("code") && error["code"] == kDuplicateRecordCode) {
      return true;
    }
  }
  return false;
}

std::optional<std::string> found_record_id(const HttpResponse& response, const TxtRecord& record) {
  const json records = result_of(response, record.zone, "finding TXT " + record.fqdn);
  if (!records.is_array() || records.empty()) return std::nullopt;
  const std::string id = string_field(records[0], "id");
  if (id.empty()) return std::nullopt;
  return id;
}

void check_deleted(const HttpResponse& response, const TxtRecord& record) {
  if (response.status == 404) return;  // deleted already: cleanup's contract
  result_of(response, record.zone, "deleting TXT " + record.fqdn);
}

namespace {

class CloudflareProvider final : public DnsProvider {
 public:
  explicit CloudflareProvider(Config config) : config_(std::move(config)) {}

  std::string_view name() const override { return kName; }
  void present(const TxtRecord& record) override;
  void cleanup(const TxtRecord& record) override;

 private:
  using RecordKey = std::pair<std::string, std::string>;  // (fqdn, value)

  std::string zone_id(const TxtRecord& record);
  std::optional<std::string> find_record(const std::string& zone, const TxtRecord& record) const;
  HttpResponse send(const TxtRecord& record, const HttpRequest& request) const {
    return send_api_request(kName, record.zone, request);
  }

  Config config_;
  std::mutex mutex_;                             // guards the two maps; requests run unlocked
  std::map<std::string, std::string> zone_ids_;  // zone name -> zone id
  std::map<RecordKey, std::string> record_ids_;  // record -> id, from present()
};

void CloudflareProvider::present(const TxtRecord& record) {
  const std::string zone = zone_id(record);
  const HttpResponse response = send(record, create_record_request(config_, zone, record));
  std::optional<std::string> id;
  if (is_duplicate_record(response)) {
    id = find_record(zone, record);  // presented before: adopt it, so cleanup removes it
  }
  if (!id) id = created_record_id(response, record);
  std::lock_guard lock(mutex_);
  record_ids_[{record.fqdn, record.value}] = *id;
}

void CloudflareProvider::cleanup(const TxtRecord& record) {
  const std::string zone = zone_id(record);
  std::optional<std::string> id;
  {
    std::lock_guard lock(mutex_);
    if (auto it = record_ids_.find({record.fqdn, record.value}); it != record_ids_.end()) {
      id = it->second;
    }
  }
  // Not made by this process (an earlier run was interrupted): look it up.
  if (!id) id = find_record(zone, record);
  if (!id) return;
  check_deleted(send(record, delete_record_request(config_, zone, *id)), record);
  std::lock_guard lock(mutex_);
  record_ids_.erase({record.fqdn, record.value});
}

std::string CloudflareProvider::zone_id(const TxtRecord& record) {
  {
    std::lock_guard lock(mutex_);
    if (auto it = zone_ids_.find(record.zone); it != zone_ids_.end()) return it->second;
  }
  std::string id =
      zone_id_from(send(record, zone_lookup_request(config_, record.zone)), record.zone);
  std::lock_guard lock(mutex_);
  zone_ids_[record.zone] = id;
  return id;
}

std::optional<std::string> CloudflareProvider::find_record(const std::string& zone,
                                                           const TxtRecord& record) const {
  return found_record_id(send(record, find_record_request(config_, zone, record)), record);
}

// The first of `env_names` (lego reads CLOUDFLARE_* before CF_*) behind the --dns-opt `key`.
std::optional<std::string> option_or_envs(const DnsProviderSettings& settings, std::string_view key,
                                          std::initializer_list<std::string_view> env_names) {
  if (auto value = option_or_env(settings, key, "")) return value;
  for (std::string_view env_name : env_names) {
    if (auto value = option_or_env(settings, "", env_name)) return value;
  }
  return std::nullopt;
}

Credentials read_credentials(const DnsProviderSettings& settings) {
  Credentials c;
  c.dns_token =
      option_or_envs(settings, "api_token", {"CLOUDFLARE_DNS_API_TOKEN", "CF_DNS_API_TOKEN"})
          .value_or("");
  c.zone_token =
      option_or_envs(settings, "zone_token", {"CLOUDFLARE_ZONE_API_TOKEN", "CF_ZONE_API_TOKEN"})
          .value_or("");
  c.email = option_or_envs(settings, "email", {"CLOUDFLARE_EMAIL", "CF_API_EMAIL"}).value_or("");
  c.api_key =
      option_or_envs(settings, "api_key", {"CLOUDFLARE_API_KEY", "CF_API_KEY"}).value_or("");
  if (c.dns_token.empty() && (c.email.empty() || c.api_key.empty())) {
    throw Error(
        "cloudflare: missing option \"api_token\" (--dns-opt api_token=... or CF_DNS_API_TOKEN "
        "or CLOUDFLARE_DNS_API_TOKEN), or both \"email\" and \"api_key\" (CF_API_EMAIL, "
        "CF_API_KEY)");
  }
  return c;
}

}  // namespace
}  // namespace detail::cloudflare

namespace detail {

std::unique_ptr<DnsProvider> make_cloudflare_provider(const DnsProviderSettings& settings) {
  cloudflare::Config config;
  config.credentials = cloudflare::read_credentials(settings);
  if (auto base_url = option_or_env(settings, "base_url", "")) config.base_url = *base_url;
  return std::make_unique<cloudflare::CloudflareProvider>(std::move(config));
}

}  // namespace detail
}  // namespace acmetool::acme
