// Session ticket keys that rotate (issue 8: "session resumption with rotating ticket keys"), as
// Caddy does: a new key every 12 hours, the last 4 kept to decrypt tickets issued before, so a key
// stolen from memory exposes at most two days of resumed sessions. OpenSSL alone keeps one
// random key for the life of the SSL_CTX.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>

#include <openssl/types.h>

namespace acmetool::serve {

class TicketKeys {
 public:
  /// Installs itself as `ctx`'s ticket key callback; must outlive `ctx`'s connections.
  TicketKeys(SSL_CTX* ctx, std::chrono::seconds rotate_every = std::chrono::hours(12), std::size_t keep = 4);
  TicketKeys(const TicketKeys&) = delete;
  TicketKeys& operator=(const TicketKeys&) = delete;

  struct Key {
    std::array<unsigned char, 16> name;
    std::array<unsigned char, 32> aes;
    std::array<unsigned char, 32> hmac;
    std::chrono::steady_clock::time_point created;
  };

  /// OpenSSL's callback contract (SSL_CTX_set_tlsext_ticket_key_evp_cb): encrypt with the newest
  /// key; decrypt with the key named, returning 2 (renew the ticket) when it is not the newest,
  /// 0 when unknown (full handshake), -1 on error.
  int callback(unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac, int encrypt);

  /// The number of keys held now (tests).
  std::size_t size() const;

 private:
  void rotate_locked(std::chrono::steady_clock::time_point now);

  const std::chrono::seconds rotate_every_;
  const std::size_t keep_;
  mutable std::mutex mutex_;
  std::deque<Key> keys_;  ///< newest first
};

}  // namespace acmetool::serve
