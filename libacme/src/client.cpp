#include "acmetool/acme/client.h"

#include <arpa/inet.h>
#include <openssl/evp.h>

#include <algorithm>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "acmetool/acme/error.h"
#include "acmetool/acme/jws.h"
#include "acmetool/pki/error.h"
#include "acmetool/pki/key.h"
#include "acmetool/pki/x509.h"
#include "client_internal.h"

namespace acmetool::acme {

using nlohmann::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

Identifier identifier_for(std::string_view name) {
  const std::string text(name);
  unsigned char buf[16];
  if (inet_pton(AF_INET, text.c_str(), buf) == 1 || inet_pton(AF_INET6, text.c_str(), buf) == 1) {
    return {"ip", text};
  }
  return {"dns", text};
}

namespace {

using pki::share_key;

json parse_json(const HttpResponse& response, const std::string& url) {
  auto doc = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) throw Error("reading " + url + ": the CA's answer is not a JSON object");
  return doc;
}

std::string problem_detail(const json& doc) {
  if (auto error = doc.find("error"); error != doc.end() && error->is_object()) {
    return error->value("detail", error->value("type", "invalid"));
  }
  return "";
}

Challenge challenge_from(const json& doc) {
  Challenge c{doc.value("type", ""), doc.value("url", ""), doc.value("token", ""), doc.value("status", ""),
              problem_detail(doc)};
  // The token ends up in URLs and file names: refuse anything but base64url (RFC 8555 §8.1).
  if (!c.token.empty() && !is_base64url(c.token)) throw Error("the CA sent a challenge token that is not base64url");
  return c;
}

Identifier identifier_from(const json& doc) { return {doc.value("type", ""), doc.value("value", "")}; }

Order order_from(const json& doc, std::string url) {
  Order order;
  order.url = std::move(url);
  order.status = doc.value("status", "");
  for (const auto& id : doc.value("identifiers", json::array())) order.identifiers.push_back(identifier_from(id));
  for (const auto& authz : doc.value("authorizations", json::array())) order.authorizations.push_back(authz);
  order.finalize = doc.value("finalize", "");
  order.certificate = doc.value("certificate", "");
  order.error = problem_detail(doc);
  return order;
}

Account account_from(const json& doc, std::string url) {
  Account account{std::move(url), doc.value("status", ""), {}};
  for (const auto& contact : doc.value("contact", json::array())) account.contact.push_back(contact);
  return account;
}

// Retries of one request after badNonce, beyond ClientOptions::max_attempts.
constexpr int kMaxBadNonceRetries = 16;

// Delay before attempt `attempt` (1-based) of a retried request, when the CA gave no Retry-After.
milliseconds backoff(int attempt) { return milliseconds(250) * (1 << std::min(attempt - 1, 4)); }

}  // namespace

struct AcmeClient::Impl {
  ClientOptions options;
  std::once_flag directory_once;
  Directory directory;

  std::mutex mu;  // guards everything below
  std::vector<std::string> nonces;
  std::vector<std::unique_ptr<HttpClient>> idle_http;
  pki::PkeyPtr account_key;
  std::string account_url;
  std::deque<Clock::time_point> recent_orders;

  // An HTTP client from the pool, returned when the lease ends.
  class Lease {
   public:
    explicit Lease(Impl& impl) : impl_(impl) {
      std::lock_guard lock(impl_.mu);
      if (!impl_.idle_http.empty()) {
        client_ = std::move(impl_.idle_http.back());
        impl_.idle_http.pop_back();
      }
      if (!client_) client_ = impl_.options.make_http();
    }
    ~Lease() {
      std::lock_guard lock(impl_.mu);
      impl_.idle_http.push_back(std::move(client_));
    }
    HttpClient* operator->() { return client_.get(); }

   private:
    Impl& impl_;
    std::unique_ptr<HttpClient> client_;
  };

  void note(const std::string& line) const {
    if (options.progress) options.progress(line);
  }

  HttpResponse send(HttpRequest request) {
    request.timeout = options.request_timeout;
    Lease http(*this);
    return http->send(request);
  }

  void keep_nonce(const HttpResponse& response) {
    if (auto nonce = response.header("replay-nonce"); nonce && is_base64url(*nonce)) {
      std::lock_guard lock(mu);
      if (nonces.size() < 64) nonces.push_back(*nonce);
    }
  }

  // A nonce from the pool, else from newNonce. When newNonce answers an error status, returns
  // nullopt with that answer in `failure`, for post() to retry as it retries its own answers.
  std::optional<std::string> take_nonce(HttpResponse& failure) {
    {
      std::lock_guard lock(mu);
      if (!nonces.empty()) {
        std::string nonce = std::move(nonces.back());
        nonces.pop_back();
        return nonce;
      }
    }
    const std::string& url = directory_ref().new_nonce;
    HttpResponse response = send({"HEAD", url, {}, {}});
    if (response.status >= 400) {
      failure = std::move(response);
      return std::nullopt;
    }
    auto nonce = response.header("replay-nonce");
    if (!nonce || !is_base64url(*nonce)) throw Error("HEAD " + url + ": no Replay-Nonce in the answer");
    return *nonce;
  }

  const Directory& directory_ref() {
    std::call_once(directory_once, [this] { directory = fetch_directory(); });
    return directory;
  }

  Directory fetch_directory();
  HttpResponse get(const std::string& url);
  HttpResponse post(const std::string& url, const std::string& payload, const EVP_PKEY* jwk_key = nullptr,
                    std::vector<HttpHeader> headers = {});
  void wait_for_order_slot();
};

// An unauthenticated GET (the directory, renewalInfo), retried on 5xx a bounded number of times;
// anything but 200 in the end becomes a ProblemError.
HttpResponse AcmeClient::Impl::get(const std::string& url) {
  HttpResponse response;
  for (int attempt = 1;; ++attempt) {
    response = send({"GET", url, {}, {}});
    if (response.status < 500 || attempt >= options.max_attempts) break;
    std::this_thread::sleep_for(backoff(attempt));
  }
  if (response.status != 200) throw problem_from(response);
  return response;
}

Directory AcmeClient::Impl::fetch_directory() {
  note("fetching directory " + options.directory_url);
  const HttpResponse response = get(options.directory_url);
  const json doc = parse_json(response, options.directory_url);
  Directory d;
  d.new_nonce = doc.value("newNonce", "");
  d.new_account = doc.value("newAccount", "");
  d.new_order = doc.value("newOrder", "");
  d.revoke_cert = doc.value("revokeCert", "");
  d.key_change = doc.value("keyChange", "");
  d.renewal_info = doc.value("renewalInfo", "");
  if (auto meta = doc.find("meta"); meta != doc.end() && meta->is_object()) {
    d.terms_of_service = meta->value("termsOfService", "");
    d.external_account_required = meta->value("externalAccountRequired", false);
    for (const auto& caa : meta->value("caaIdentities", json::array())) d.caa_identities.push_back(caa);
    if (auto profiles = meta->find("profiles"); profiles != meta->end() && profiles->is_object()) {
      for (const auto& [name, _] : profiles->items()) d.profiles.push_back(name);
    }
  }
  if (d.new_nonce.empty() || d.new_account.empty() || d.new_order.empty()) {
    throw Error(options.directory_url + " is not an ACME directory: newNonce, newAccount or newOrder is missing");
  }
  return d;
}

// Signs and sends a POST (RFC 8555 §6.2), retrying a bounded number of times on badNonce (at
// once, with the fresh nonce the error carried), on 429 and 5xx (after Retry-After, or backoff),
// and on transport failures. Signed with the account (kid), or with `jwk_key` embedded as a JWK.
HttpResponse AcmeClient::Impl::post(const std::string& url, const std::string& payload, const EVP_PKEY* jwk_key,
                                    std::vector<HttpHeader> headers) {
  headers.push_back({"content-type", "application/jose+json"});
  int bad_nonces = 0;
  for (int attempt = 1;; ++attempt) {
    pki::PkeyPtr key;
    std::string kid;
    {
      std::lock_guard lock(mu);
      key = share_key(jwk_key ? *jwk_key : static_cast<const EVP_PKEY&>(*account_key));
      if (!jwk_key) kid = account_url;
    }
    // The newNonce request this may need is retried like the POST itself: it is the first request
    // of a fresh client, so an overloaded CA answers it first.
    HttpResponse response;
    bool posted = false;  // else `response`, or the HttpError, is newNonce's
    try {
      if (const std::optional<std::string> nonce = take_nonce(response)) {
        posted = true;
        response = send({"POST", url, headers, sign_jws(*key, payload, url, *nonce, kid)});
      }
    } catch (const HttpError& e) {
      if (attempt >= options.max_attempts) throw;
      note("retrying " + (posted ? "POST " + url : "HEAD " + directory_ref().new_nonce) + " after: " + e.what());
      std::this_thread::sleep_for(backoff(attempt));
      continue;
    }
    keep_nonce(response);
    if (response.status < 400) return response;

    ProblemError problem = problem_from(response);
    const bool bad_nonce = problem.type() == problem_type("badNonce");
    const bool overloaded = response.status == 429 || response.status >= 500;
    // A rejected nonce costs one round trip and the error carried a fresh one, so it has a budget
    // of its own (RFC 8555 §6.5: clients should retry); other failures use max_attempts.
    if (bad_nonce && ++bad_nonces <= kMaxBadNonceRetries) {
      --attempt;
      continue;
    }
    if (attempt >= options.max_attempts || !overloaded) throw problem;
    // A long Retry-After (a rate limit for hours) is for the caller to schedule, not to sleep on.
    const auto wait = problem.retry_after() ? std::chrono::duration_cast<milliseconds>(*problem.retry_after())
                                            : backoff(attempt);
    if (wait > std::chrono::seconds(60)) throw problem;
    note("CA answered " + std::to_string(response.status) + " to " + (posted ? url : directory_ref().new_nonce) +
         "; retrying in " + std::to_string(wait.count()) + " ms");
    std::this_thread::sleep_for(wait);
  }
}

void AcmeClient::Impl::wait_for_order_slot() {
  for (;;) {
    Clock::duration wait{};
    {
      std::lock_guard lock(mu);
      const auto now = Clock::now();
      while (!recent_orders.empty() && now - recent_orders.front() >= options.order_window) recent_orders.pop_front();
      if (static_cast<int>(recent_orders.size()) < options.orders_per_window) {
        recent_orders.push_back(now);
        return;
      }
      wait = recent_orders.front() + options.order_window - now;
    }
    note("waiting for the order rate limit (" + std::to_string(options.orders_per_window) + " per " +
         std::to_string(options.order_window.count()) + " ms)");
    std::this_thread::sleep_for(wait);
  }
}

AcmeClient::AcmeClient(ClientOptions options) : impl_(std::make_unique<Impl>()) {
  if (!options.directory_url.starts_with("https://")) {
    throw Error("ACME directory " + options.directory_url + ": only https:// CA URLs are allowed");
  }
  if (!options.make_http) {
    options.make_http = [http = options.http] { return make_http_client(http); };
  }
  impl_->options = std::move(options);
}

AcmeClient::~AcmeClient() = default;

const Directory& AcmeClient::directory() { return impl_->directory_ref(); }

size_t AcmeClient::pooled_nonces() const {
  std::lock_guard lock(impl_->mu);
  return impl_->nonces.size();
}

const std::string& AcmeClient::account_url() const { return impl_->account_url; }

pki::PkeyPtr AcmeClient::account_key() const {
  std::lock_guard lock(impl_->mu);
  if (!impl_->account_key) throw Error("no ACME account in use yet");
  return share_key(*impl_->account_key);
}

Account AcmeClient::new_account(const EVP_PKEY& account_key, const NewAccountRequest& request) {
  const Directory& d = directory();
  json payload = json::object();
  if (!request.contact.empty()) payload["contact"] = request.contact;
  if (request.terms_agreed) payload["termsOfServiceAgreed"] = true;
  if (request.only_return_existing) payload["onlyReturnExisting"] = true;
  if (!request.eab_kid.empty()) {
    payload["externalAccountBinding"] =
        json::parse(sign_eab(request.eab_kid, request.eab_hmac_key, account_key, d.new_account));
  }
  impl_->note("registering account at " + d.new_account);
  const HttpResponse response = impl_->post(d.new_account, payload.dump(), &account_key);
  auto location = response.header("location");
  if (!location) throw Error("newAccount: the CA sent no account URL (Location)");
  use_account(account_key, *location);
  return account_from(parse_json(response, d.new_account), *location);
}

void AcmeClient::use_account(const EVP_PKEY& account_key, std::string account_url) {
  std::lock_guard lock(impl_->mu);
  impl_->account_key = share_key(account_key);
  impl_->account_url = std::move(account_url);
}

Account AcmeClient::fetch_account() {
  const std::string url = account_url();
  return account_from(parse_json(impl_->post(url, ""), url), url);
}

Account AcmeClient::update_contact(const std::vector<std::string>& contact) {
  const std::string url = account_url();
  return account_from(parse_json(impl_->post(url, json{{"contact", contact}}.dump()), url), url);
}

Account AcmeClient::deactivate_account() {
  const std::string url = account_url();
  return account_from(parse_json(impl_->post(url, json{{"status", "deactivated"}}.dump()), url), url);
}

void AcmeClient::rollover(const EVP_PKEY& new_key) {
  const std::string& url = directory().key_change;
  if (url.empty()) throw Error("this CA does not support account key rollover (no keyChange)");
  pki::PkeyPtr old_key;
  {
    std::lock_guard lock(impl_->mu);
    old_key = share_key(*impl_->account_key);
  }
  // RFC 8555 §7.3.5: the inner JWS is signed by the new key, carries its JWK and no nonce.
  const json inner_payload = {{"account", account_url()}, {"oldKey", json::parse(jwk_json(*old_key))}};
  const std::string inner = sign_jws(new_key, inner_payload.dump(), url, "", "");
  impl_->post(url, inner);
  use_account(new_key, account_url());
}

Order AcmeClient::new_order(const std::vector<Identifier>& identifiers, std::string_view replaces,
                            std::string_view profile) {
  const Directory& d = directory();
  json ids = json::array();
  for (const Identifier& id : identifiers) ids.push_back({{"type", id.type}, {"value", id.value}});
  json payload = {{"identifiers", ids}};
  if (!replaces.empty() && !d.renewal_info.empty()) payload["replaces"] = replaces;
  if (!profile.empty() && std::find(d.profiles.begin(), d.profiles.end(), profile) != d.profiles.end()) {
    payload["profile"] = profile;
  }
  impl_->wait_for_order_slot();
  const HttpResponse response = impl_->post(d.new_order, payload.dump());
  auto location = response.header("location");
  if (!location) throw Error("newOrder: the CA sent no order URL (Location)");
  return order_from(parse_json(response, d.new_order), *location);
}

Order AcmeClient::fetch_order(const std::string& url) { return order_from(parse_json(impl_->post(url, ""), url), url); }

namespace {

Authorization authorization_from(const json& doc, std::string url) {
  Authorization authz{std::move(url), identifier_from(doc.value("identifier", json::object())), doc.value("status", ""),
                      doc.value("wildcard", false), {}};
  for (const auto& challenge : doc.value("challenges", json::array())) authz.challenges.push_back(challenge_from(challenge));
  return authz;
}

std::optional<std::chrono::seconds> retry_after_of(const HttpResponse& response) {
  const auto value = response.header("retry-after");
  return value ? parse_retry_after(*value, std::chrono::system_clock::now()) : std::nullopt;
}

}  // namespace

Authorization AcmeClient::fetch_authorization(const std::string& url) {
  return authorization_from(parse_json(impl_->post(url, ""), url), url);
}

Authorization AcmeClient::deactivate_authorization(const std::string& url) {
  impl_->post(url, json{{"status", "deactivated"}}.dump());
  return fetch_authorization(url);
}

std::optional<RenewalInfo> AcmeClient::renewal_info(std::string_view certificate_id) {
  const std::string& base = impl_->directory_ref().renewal_info;
  if (base.empty()) return std::nullopt;
  const std::string url = base + (base.ends_with('/') ? "" : "/") + std::string(certificate_id);
  const HttpResponse response = impl_->get(url);
  const auto now = std::chrono::system_clock::now();
  return parse_renewal_info(response.body, parse_retry_after(response.header("retry-after").value_or(""), now), now);
}

Challenge AcmeClient::respond(const Challenge& challenge) {
  return challenge_from(parse_json(impl_->post(challenge.url, "{}"), challenge.url));
}

namespace {

// Polls `fetch` until `done` holds. `fetch` returns the value and the answer's Retry-After, which
// sets the next wait when present; otherwise waits start at 200 ms and double up to 2 s.
template <class Fetch, class Done>
auto poll(Fetch fetch, Done done, milliseconds timeout, const std::string& what,
          const std::function<void(std::string_view)>& note) {
  const auto deadline = Clock::now() + timeout;
  milliseconds backoff(200);
  for (;;) {
    auto [value, retry_after] = fetch();
    if (done(value)) return value;
    const milliseconds delay = next_poll_delay(retry_after, backoff);
    if (Clock::now() + delay > deadline) throw Error("timed out after " + std::to_string(timeout.count() / 1000) +
                                                     " s waiting for " + what);
    if (retry_after && note) note("the CA asked to poll " + what + " again in " + std::to_string(delay.count()) + " ms");
    std::this_thread::sleep_for(delay);
    backoff = std::min(backoff * 2, milliseconds(2000));
  }
}

}  // namespace

Authorization AcmeClient::wait_authorization(const std::string& url, milliseconds timeout) {
  impl_->note("waiting for validation of " + url);
  return poll(
      [&] {
        const HttpResponse response = impl_->post(url, "");
        return std::pair{authorization_from(parse_json(response, url), url), retry_after_of(response)};
      },
      [](const Authorization& a) { return a.status != "pending"; }, timeout, "authorization " + url,
      impl_->options.progress);
}

Order AcmeClient::finalize(const Order& order, const std::string& csr_der, milliseconds timeout) {
  impl_->note("finalizing order " + order.url);
  const json payload = {{"csr", base64url_encode(csr_der)}};
  // The finalize answer is the first poll: "processing" with a Retry-After says when to look again.
  std::optional<HttpResponse> response = impl_->post(order.finalize, payload.dump());
  return poll(
      [&] {
        if (!response) response = impl_->post(order.url, "");
        std::pair result{order_from(parse_json(*response, order.url), order.url), retry_after_of(*response)};
        response.reset();
        return result;
      },
      [](const Order& o) { return o.status == "valid" || o.status == "invalid"; }, timeout, "order " + order.url,
      impl_->options.progress);
}

CertificateChains AcmeClient::download(const std::string& certificate_url) {
  impl_->note("downloading certificate " + certificate_url);
  const std::vector<HttpHeader> accept = {{"accept", "application/pem-certificate-chain"}};
  const HttpResponse response = impl_->post(certificate_url, "", nullptr, accept);
  CertificateChains chains{response.body, {}};
  for (const auto& [target, rel] : parse_links(response.headers_named("link"))) {
    if (rel == "alternate") chains.alternates.push_back(impl_->post(target, "", nullptr, accept).body);
  }
  return chains;
}

void AcmeClient::revoke(const std::string& certificate_der, int reason, const EVP_PKEY* certificate_key) {
  const std::string& url = directory().revoke_cert;
  const json payload = {{"certificate", base64url_encode(certificate_der)}, {"reason", reason}};
  impl_->post(url, payload.dump(), certificate_key);
}

const std::string& select_chain(const CertificateChains& chains, std::string_view preferred) {
  if (preferred.empty()) return chains.default_chain;
  auto matches = [&](const std::string& pem) {
    try {
      const pki::CertificateChain certs = pki::certificates_from_pem(pem, "chain");
      const pki::CertificateInfo top = pki::describe_certificate(*certs.back());
      return top.issuer_cn == preferred || top.subject_cn == preferred;
    } catch (const pki::Error&) {
      return false;
    }
  };
  if (matches(chains.default_chain)) return chains.default_chain;
  for (const std::string& chain : chains.alternates) {
    if (matches(chain)) return chain;
  }
  return chains.default_chain;
}

}  // namespace acmetool::acme
