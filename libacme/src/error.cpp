#include "acmetool/acme/error.h"

namespace acmetool::acme {

ProblemError::ProblemError(std::string type, std::string detail, int http_status,
                           std::vector<Subproblem> subproblems,
                           std::optional<std::chrono::seconds> retry_after)
    : Error(detail.empty() ? type : type + ": " + detail),
      type_(std::move(type)),
      detail_(std::move(detail)),
      http_status_(http_status),
      subproblems_(std::move(subproblems)),
      retry_after_(retry_after) {}

ValidationError::ValidationError(std::string detail, int failed_validations)
    : ProblemError("urn:ietf:params:acme:error:unauthorized", std::move(detail), 403),
      failed_validations_(failed_validations) {}

DnsError::DnsError(std::string provider, std::string zone, const std::string& message)
    : Error(zone.empty() ? provider + ": " + message : provider + " (zone " + zone + "): " + message),
      provider_(std::move(provider)),
      zone_(std::move(zone)) {}

}  // namespace acmetool::acme
