// The Cloudflare v4 API as pure functions: the requests the provider sends and what it reads from
// the answers, so that tests check both against recorded documents without a network.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "acmetool/acme/dns_provider.h"
#include "acmetool/acme/http.h"

namespace acmetool::acme::detail::cloudflare {

inline constexpr std::string_view kDefaultBaseUrl = "https://api.cloudflare.com/client/v4";
/// Cloudflare refuses shorter TTLs on non-Enterprise zones (1 means "automatic").
inline constexpr int kMinTtl = 120;

/// How requests authenticate: API tokens (preferred), else lego's legacy global API key.
struct Credentials {
  std::string dns_token;   ///< "DNS:Edit" token, sent as "Authorization: Bearer ..."
  std::string zone_token;  ///< optional "Zone:Read" token for zone lookups; "" = dns_token
  std::string email;       ///< global API key's account e-mail (X-Auth-Email), without a token
  std::string api_key;     ///< global API key (X-Auth-Key), without a token
};

struct Config {
  std::string base_url{kDefaultBaseUrl};  ///< tests point it at a loopback server
  Credentials credentials;
};

/// GET /zones?name=example.com: finds the id of `zone` ("example.com.", trailing dot optional).
HttpRequest zone_lookup_request(const Config& config, std::string_view zone);
/// POST /zones/ID/dns_records {"type":"TXT","name":fqdn without dot,"content":value,"ttl":...},
/// the TTL raised to kMinTtl.
HttpRequest create_record_request(const Config& config, std::string_view zone_id,
                                  const TxtRecord& record);
/// GET /zones/ID/dns_records?type=TXT&name=...&content=...: finds a record made earlier.
HttpRequest find_record_request(const Config& config, std::string_view zone_id,
                                const TxtRecord& record);
/// DELETE /zones/ID/dns_records/RECORD_ID.
HttpRequest delete_record_request(const Config& config, std::string_view zone_id,
                                  std::string_view record_id);

/// The id of the zone named `zone` in a zone lookup's answer. Throws DnsError("cloudflare", zone)
/// when the API failed (see api_failure) or lists no zone of that exact name.
std::string zone_id_from(const HttpResponse& response, std::string_view zone);
/// The id of the record a create request made; throws DnsError as zone_id_from does.
std::string created_record_id(const HttpResponse& response, const TxtRecord& record);
/// True when a create request failed only because the same record exists already (error 81058).
bool is_duplicate_record(const HttpResponse& response);
/// The id of the first record in a find request's answer, nullopt when it lists none; throws
/// DnsError when the API failed.
std::optional<std::string> found_record_id(const HttpResponse& response, const TxtRecord& record);
/// Throws DnsError unless the record is deleted or was already gone (HTTP 404).
void check_deleted(const HttpResponse& response, const TxtRecord& record);

/// Why an answer is a failure, in one line, or nullopt when it is not one (2xx with "success":
/// true): "HTTP 403: 10000 Authentication error; 6111 Invalid format for Authorization header".
std::optional<std::string> api_failure(const HttpResponse& response);

}  // namespace acmetool::acme::detail::cloudflare
