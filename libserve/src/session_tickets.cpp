#include "session_tickets_internal.h"

#include <algorithm>
#include <cstring>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "acmetool/serve/error.h"

namespace acmetool::serve {
namespace {

int ex_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

int ticket_callback(SSL* ssl, unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac,
                    int encrypt) {
  auto* keys = static_cast<TicketKeys*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ex_index()));
  return keys ? keys->callback(name, iv, cipher, mac, encrypt) : -1;
}

}  // namespace

TicketKeys::TicketKeys(SSL_CTX* ctx, std::chrono::seconds rotate_every, std::size_t keep)
    : rotate_every_(rotate_every), keep_(std::max<std::size_t>(keep, 1)) {
  {
    std::lock_guard lock(mutex_);
    rotate_locked(std::chrono::steady_clock::now());
  }
  if (SSL_CTX_set_ex_data(ctx, ex_index(), this) != 1 ||
      SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_callback) != 1) {
    throw Error("setting up session ticket keys failed");
  }
}

void TicketKeys::rotate_locked(std::chrono::steady_clock::time_point now) {
  Key key;
  if (RAND_bytes(key.name.data(), static_cast<int>(key.name.size())) != 1 ||
      RAND_priv_bytes(key.aes.data(), static_cast<int>(key.aes.size())) != 1 ||
      RAND_priv_bytes(key.hmac.data(), static_cast<int>(key.hmac.size())) != 1) {
    return;  // keep the keys we have; the next ticket tries again
  }
  key.created = now;
  keys_.push_front(key);
  while (keys_.size() > keep_) {
    OPENSSL_cleanse(&keys_.back(), sizeof(Key));
    keys_.pop_back();
  }
}

int TicketKeys::callback(unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac,
                         int encrypt) {
  Key key;
  bool newest = true;
  {
    std::lock_guard lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
    if (keys_.empty() || now - keys_.front().created >= rotate_every_) rotate_locked(now);
    if (keys_.empty()) return -1;
    if (encrypt) {
      key = keys_.front();
    } else {
      const auto it = std::find_if(keys_.begin(), keys_.end(), [&](const Key& k) {
        return std::memcmp(k.name.data(), name, k.name.size()) == 0;
      });
      if (it == keys_.end()) return 0;  // unknown (or expired) key: a full handshake
      key = *it;
      newest = it == keys_.begin();
    }
  }
  if (encrypt) {
    std::memcpy(name, key.name.data(), key.name.size());
    if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1) return -1;
  }
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key.hmac.data(), key.hmac.size()),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_end()};
  const bool ok =
      EVP_MAC_CTX_set_params(mac, params) == 1 &&
      (encrypt ? EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.aes.data(), iv)
               : EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.aes.data(), iv)) == 1;
  OPENSSL_cleanse(&key, sizeof key);
  if (!ok) return -1;
  return encrypt || newest ? 1 : 2;
}

std::size_t TicketKeys::size() const {
  std::lock_guard lock(mutex_);
  return keys_.size();
}

}  // namespace acmetool::serve
