#include "acmetool/serve/challenge_responder.h"

#include <algorithm>

#include "acmetool/acme/error.h"

namespace acmetool::serve {

void Http01Responder::present(std::string_view identifier, std::string_view token,
                              std::string_view key_authorization) {
  const bool base64url = !token.empty() && std::all_of(token.begin(), token.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
  if (!base64url) throw acme::Error("http-01 for " + std::string(identifier) + ": the token is not base64url");
  std::lock_guard lock(mutex_);
  answers_.insert_or_assign(std::string(token), std::string(key_authorization));
}

void Http01Responder::cleanup(std::string_view, std::string_view token) noexcept {
  std::lock_guard lock(mutex_);
  if (auto it = answers_.find(token); it != answers_.end()) answers_.erase(it);
}

void Http01Responder::withdraw_all() noexcept {
  std::lock_guard lock(mutex_);
  answers_.clear();
}

std::optional<std::string> Http01Responder::answer(std::string_view token) const {
  std::lock_guard lock(mutex_);
  if (auto it = answers_.find(token); it != answers_.end()) return it->second;
  return std::nullopt;
}

}  // namespace acmetool::serve
