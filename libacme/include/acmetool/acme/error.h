// Errors thrown by libacme.
#pragma once

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace acmetool::acme {

/// Root of every libacme error.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// An RFC 8555 §6.7 problem document returned by the CA, with the HTTP status it came with.
class ProblemError : public Error {
 public:
  struct Subproblem {
    std::string type;
    std::string detail;
    std::string identifier;
  };
  ProblemError(std::string type, std::string detail, int http_status,
               std::vector<Subproblem> subproblems = {},
               std::optional<std::chrono::seconds> retry_after = std::nullopt);

  /// The full URN, e.g. "urn:ietf:params:acme:error:rateLimited".
  const std::string& type() const noexcept { return type_; }
  const std::string& detail() const noexcept { return detail_; }
  int http_status() const noexcept { return http_status_; }
  const std::vector<Subproblem>& subproblems() const noexcept { return subproblems_; }
  /// The server's Retry-After, when it sent one.
  std::optional<std::chrono::seconds> retry_after() const noexcept { return retry_after_; }

 private:
  std::string type_;
  std::string detail_;
  int http_status_;
  std::vector<Subproblem> subproblems_;
  std::optional<std::chrono::seconds> retry_after_;
};

/// The CA found challenges unanswered: an authorization became invalid with every challenge type
/// tried. Counts against the CA's failed-validation limit (and ours, acme/failures.h).
class ValidationError : public ProblemError {
 public:
  ValidationError(std::string detail, int failed_validations);
  /// Authorizations the CA marked invalid in the attempts this error sums up.
  int failed_validations() const noexcept { return failed_validations_; }

 private:
  int failed_validations_;
};

/// A DNS provider or DNS lookup failed; names the provider ("dns" for lookups) and the zone,
/// when there is one: "rfc2136 (zone example.com.): ...", "dns: CNAME loop: ...".
class DnsError : public Error {
 public:
  DnsError(std::string provider, std::string zone, const std::string& message);
  const std::string& provider() const noexcept { return provider_; }
  const std::string& zone() const noexcept { return zone_; }

 private:
  std::string provider_;
  std::string zone_;
};

}  // namespace acmetool::acme
