// Caddy's `basic_auth` (caddyauth/basicauth.go, 2.6-2.8): HTTP Basic credentials (RFC 7617)
// checked against bcrypt hashes with libxcrypt's crypt_r, with Caddy's cache of successes.
#include "basic_auth_internal.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <deque>
#include <memory>
#include <mutex>
#include <set>

#include "routes_internal.h"

namespace acmetool::serve::routes_detail {
namespace {

// The six bits of a base64 character (RFC 4648 §4, and §5 when `url_safe`), or -1.
int base64_value(char c, bool url_safe) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || (url_safe && c == '-')) return 62;
  if (c == '/' || (url_safe && c == '_')) return 63;
  return -1;
}

// Base64 as Go decodes it: with `padding_required`, Go's StdEncoding (the length a multiple of
// four, '=' as needed); otherwise padding may be left out but, when present, must be right.
// `url_safe` also accepts '-' and '_' (RawURLEncoding). Bits after the last byte are ignored.
std::optional<std::string> base64_decode(std::string_view in, bool padding_required,
                                         bool url_safe) {
  std::size_t padding = 0;
  while (padding < 2 && in.size() > padding && in[in.size() - 1 - padding] == '=') ++padding;
  if ((padding > 0 || padding_required) && in.size() % 4 != 0) return std::nullopt;
  const std::string_view body = in.substr(0, in.size() - padding);
  if (body.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(body.size() * 3 / 4);
  unsigned bits = 0;
  int count = 0;
  for (const char c : body) {
    const int value = base64_value(c, url_safe);
    if (value < 0) return std::nullopt;
    bits = (bits << 6) | static_cast<unsigned>(value);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out += static_cast<char>((bits >> count) & 0xff);
    }
  }
  return out;
}

// "$2a$NN$" + 22 salt and 31 hash characters of bcrypt's alphabet, cost 4 to 31: the forms
// libxcrypt computes ($2a$, $2b$, $2x$, $2y$).
bool is_bcrypt_hash(std::string_view hash) {
  const auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (hash.size() != 60 || !hash.starts_with("$2") ||
      std::string_view("abxy").find(hash[2]) == std::string_view::npos || hash[3] != '$' ||
      !digit(hash[4]) || !digit(hash[5]) || hash[6] != '$') {
    return false;
  }
  const int cost = (hash[4] - '0') * 10 + (hash[5] - '0');
  return cost >= 4 && cost <= 31 && std::all_of(hash.begin() + 7, hash.end(), [](char c) {
           return c == '.' || c == '/' || base64_value(c, false) >= 0;
         });
}

// bcrypt of `password` with the salt and cost of `setting` ("$2a$NN$<22 salt characters>...");
// "" when libxcrypt refuses the setting.
std::string bcrypt(const char* password, std::string_view setting) {
  // crypt_data is 32 KiB: too large for a coroutine-driven thread's stack.
  auto data = std::make_unique<crypt_data>();
  const char* hash = crypt_r(password, std::string(setting).c_str(), data.get());
  // A failure is NULL or a token starting with '*', depending on how libxcrypt was built.
  std::string result = hash && hash[0] != '*' ? hash : "";
  OPENSSL_cleanse(data.get(), sizeof(crypt_data));
  return result;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

using CacheKey = std::array<unsigned char, 32>;

// SHA-256 of the user, the password and the stored hash, each preceded by its length.
CacheKey cache_key(std::string_view user, std::string_view password, std::string_view hash) {
  std::string input;
  for (const std::string_view part : {user, password, hash}) {
    input += std::to_string(part.size()) + ":";
    input += part;
  }
  CacheKey key{};
  const bool ok =
      EVP_Digest(input.data(), input.size(), key.data(), nullptr, EVP_sha256(), nullptr) == 1;
  OPENSSL_cleanse(input.data(), input.size());
  // Without SHA-256 nothing is cached: an all-zero key is never stored.
  if (!ok) key.fill(0);
  return key;
}

// Caddy's HTTPBasicAuth cache: successful checks, so that a client sending its credentials with
// every request pays for bcrypt (about a second at cost 14) once. Failures are never stored: a
// guess must always cost a full bcrypt.
class SuccessCache {
 public:
  static constexpr std::size_t kMaxEntries = 1000;

  bool contains(const CacheKey& key) {
    const std::lock_guard lock(mutex_);
    return keys_.contains(key);
  }

  void insert(const CacheKey& key) {
    if (key == CacheKey{}) return;
    const std::lock_guard lock(mutex_);
    if (!keys_.insert(key).second) return;
    order_.push_back(key);
    if (order_.size() > kMaxEntries) {
      keys_.erase(order_.front());
      order_.pop_front();
    }
  }

 private:
  std::mutex mutex_;
  std::set<CacheKey> keys_;
  std::deque<CacheKey> order_;  // oldest first
};

SuccessCache& success_cache() {
  static SuccessCache cache;
  return cache;
}

// Clears a buffer that held a password when it goes out of scope.
class ClearOnExit {
 public:
  explicit ClearOnExit(std::string& bytes) : bytes_(bytes) {}
  ClearOnExit(const ClearOnExit&) = delete;
  ClearOnExit& operator=(const ClearOnExit&) = delete;
  ~ClearOnExit() { OPENSSL_cleanse(bytes_.data(), bytes_.size()); }

 private:
  std::string& bytes_;
};

// Go's Request.BasicAuth (RFC 7617 §2): "Basic " in any case, then standard padded base64 of
// "user:password"; the first Authorization field counts.
std::optional<std::string> basic_credentials(const RouteRequest& request) {
  const auto values = header_values(request, "Authorization");
  if (values.empty()) return std::nullopt;
  const std::string_view field = values.front();
  constexpr std::string_view kScheme = "Basic ";
  if (field.size() < kScheme.size() || !iequals(field.substr(0, kScheme.size()), kScheme))
    return std::nullopt;
  auto decoded = base64_decode(field.substr(kScheme.size()), true, false);
  if (decoded && decoded->find(':') == std::string::npos) {
    OPENSSL_cleanse(decoded->data(), decoded->size());
    return std::nullopt;
  }
  return decoded;
}

// Caddy's fake hash (the salt of its bcrypt FakeHash) at `cost`: what an unknown user is checked
// against.
std::string dummy_setting(const caddyfile::BasicAuthHandler& auth) {
  std::string cost = "14";
  for (const auto& [user, encoded] : auth.accounts) {
    if (const auto hash = bcrypt_hash(encoded)) {
      cost = hash->substr(4, 2);
      break;
    }
  }
  return "$2a$" + cost + "$X3ulqf/iGxnf1k6oMZ.RZe";
}

}  // namespace

std::optional<std::string> bcrypt_hash(std::string_view encoded) {
  if (encoded.starts_with("$2")) {
    if (!is_bcrypt_hash(encoded)) return std::nullopt;
    return std::string(encoded);
  }
  auto decoded = base64_decode(encoded, false, true);
  if (!decoded || !is_bcrypt_hash(*decoded)) return std::nullopt;
  return decoded;
}

std::optional<std::string> unsupported_basic_auth(const caddyfile::BasicAuthHandler& auth) {
  if (auth.hash_algorithm != "bcrypt") return "basic_auth with " + auth.hash_algorithm;
  for (const auto& [user, encoded] : auth.accounts) {
    if (!bcrypt_hash(encoded))
      return "basic_auth hash of user '" + user + "' (not bcrypt, raw or base64)";
  }
  return std::nullopt;
}

std::optional<std::string> authenticate(const caddyfile::BasicAuthHandler& auth,
                                        const RouteRequest& request) {
  auto credentials = basic_credentials(request);
  if (!credentials) return std::nullopt;
  const ClearOnExit clear(*credentials);
  const std::size_t colon = credentials->find(':');
  const std::string_view user = std::string_view(*credentials).substr(0, colon);
  const std::string_view password = std::string_view(*credentials).substr(colon + 1);
  // crypt_r reads up to a NUL; Go's bcrypt would hash the bytes after it, so no stored hash can
  // be meant for such a password.
  if (password.find('\0') != std::string_view::npos) return std::nullopt;
  const char* password_c = credentials->c_str() + colon + 1;

  const auto account = std::find_if(auth.accounts.begin(), auth.accounts.end(),
                                    [&](const auto& entry) { return entry.first == user; });
  const std::optional<std::string> stored =
      account == auth.accounts.end() ? std::nullopt : bcrypt_hash(account->second);
  if (!stored) {
    // Spend the same time as for a known user (Caddy's fake password).
    bcrypt(password_c, dummy_setting(auth));
    return std::nullopt;
  }
  const CacheKey key = cache_key(user, password, *stored);
  if (success_cache().contains(key)) return std::string(user);
  if (!constant_time_equal(bcrypt(password_c, *stored), *stored)) return std::nullopt;
  success_cache().insert(key);
  return std::string(user);
}

}  // namespace acmetool::serve::routes_detail
