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

DnsError::DnsError(std::string provider, std::string zone, const std::string& message)
    : Error(provider + " (zone " + zone + "): " + message),
      provider_(std::move(provider)),
      zone_(std::move(zone)) {}

}  // namespace acmetool::acme
