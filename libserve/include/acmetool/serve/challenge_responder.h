// http-01 answered by the server itself (issue 8): the ACME obtainer presents key authorizations
// here (ObtainSettings::http01_solver) and the server's HTTP port answers
// GET /.well-known/acme-challenge/<token> from them, so no second listener needs port 80.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "acmetool/acme/solver.h"

namespace acmetool::serve {

/// Thread-safe: the obtainer presents from its threads while the server answers from its own.
class Http01Responder : public acme::Solver {
 public:
  std::string_view type() const override { return "http-01"; }
  /// Throws acme::Error for a token that is not base64url.
  void present(std::string_view identifier, std::string_view token, std::string_view key_authorization) override;
  void cleanup(std::string_view identifier, std::string_view token) noexcept override;
  void withdraw_all() noexcept override;

  /// The key authorization for `token`, while presented.
  std::optional<std::string> answer(std::string_view token) const;

  /// The path prefix the answers live under.
  static constexpr std::string_view kPathPrefix = "/.well-known/acme-challenge/";

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::string, std::less<>> answers_;  ///< token -> key authorization
};

}  // namespace acmetool::serve
