// A fault-injecting HTTPS reverse proxy for tests: it sits in front of pebble's ACME listener on
// a free 127.0.0.1 port, forwards what the client sends, counts every request by kind and, when a
// test scripts it, answers with the failures pebble 2.4 never produces (429 with Retry-After,
// 503, 500, a dropped connection) instead of forwarding. It can also play the parts of a CA that
// pebble 2.4 lacks: ACME Renewal Information (RFC 9773) and directory fields such as profiles,
// and make pebble's answers say "still pending, come back later".
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace acmetool::test {

/// What a request asks for, from its path on pebble (pebble 2.4's URL layout).
enum class RequestKind {
  NewNonce,    ///< /nonce-plz (HEAD or GET)
  NewAccount,  ///< /sign-me-up
  NewOrder,    ///< /order-plz
  Authz,       ///< /authZ/...
  Challenge,   ///< /chalZ/...
  Finalize,    ///< /finalize-order/...
  Order,       ///< /my-order/...
  Cert,        ///< /certZ/...
  RenewalInfo, ///< /renewal-info/... (served by the proxy itself, see offer_renewal_info)
  Other,       ///< the directory, /my-account/..., revocation, anything else
};

/// An answer the proxy gives instead of forwarding a request.
struct Fault {
  /// The HTTP status, e.g. 429, 503, 500. Ignored when drop_connection is set.
  int status = 503;
  /// The Retry-After field's value ("1", "3600", an HTTP-date); empty sends none.
  std::string retry_after_header;
  /// The problem document's type, e.g. "urn:ietf:params:acme:error:rateLimited": the answer is
  /// then application/problem+json and carries a Replay-Nonce freshly taken from pebble, as a CA's
  /// error does. Empty answers as a load balancer would: a text/plain body and no Replay-Nonce.
  std::string problem_type;
  /// Read the request, then close the connection without answering a byte.
  bool drop_connection = false;
};

/// An answer the proxy makes up for a request it serves itself.
struct CannedAnswer {
  int status = 200;
  std::string body;              ///< sent as application/json
  std::string retry_after_header;  ///< empty sends none
};

/// The proxy. It answers "Connection: close" after every request, so each request comes on a new
/// connection: a dropped connection is then never one that libcurl silently retries by itself (it
/// resends on a dead *reused* connection), and any retry the proxy sees is the client's own.
///
/// Requests go upstream with the proxy's "Host", since pebble checks a JWS's "url" against the
/// Host it was sent to; pebble's own origin is rewritten to the proxy's in response bodies and in
/// Location and Link fields all the same, so the client only ever learns the proxy's URLs.
///
/// Every method is thread-safe. Not copyable or movable.
class FaultProxy {
 public:
  /// Makes a throwaway CA and a leaf for 127.0.0.1 (with the openssl command), listens on a free
  /// loopback port and starts serving. `upstream_directory_url` is pebble's
  /// "https://127.0.0.1:P/dir"; `upstream_ca_file` the CA its listener's certificate chains to.
  /// Throws std::runtime_error when the certificates cannot be made or the port cannot be bound.
  FaultProxy(const std::string& upstream_directory_url, std::filesystem::path upstream_ca_file);
  /// Stops accepting, shuts down open connections and joins every thread; bounded by the
  /// upstream request timeout (10 s) of a request still in flight.
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  /// "https://127.0.0.1:P/dir", P being the proxy's port.
  std::string directory_url() const;
  /// "https://127.0.0.1:P".
  std::string origin() const;
  /// PEM of the CA that signed the proxy's certificate: give it to clients as their CA file.
  const std::filesystem::path& ca_file() const;

  /// Answers the next `count` requests of `kind` with `fault` instead of forwarding them; adds to
  /// faults already scripted for that kind, which come first.
  void fail(RequestKind kind, int count, const Fault& fault);
  /// Scripted faults of `kind` not yet used.
  int pending_faults(RequestKind kind) const;

  /// Forwards to another pebble from now on, at the same proxy URL: a CA restarted with a clean
  /// slate (pebble forgets every account and order when it stops).
  void set_upstream(const std::string& upstream_directory_url, std::filesystem::path upstream_ca_file);

  /// From now on, the directory carries "renewalInfo": origin() + "/renewal-info", and a GET of
  /// /renewal-info/<certificate id> is answered by `answer(certificate id)`.
  void offer_renewal_info(std::function<CannedAnswer(const std::string& certificate_id)> answer);
  /// From now on, `patch` edits every directory document pebble sends before it goes out (to
  /// add meta.profiles, say).
  void patch_directory(std::function<void(nlohmann::json&)> patch);
  /// The next `count` forwarded answers of `kind` that carry a "status" have it replaced by
  /// `status` ("pending", "processing"), with a Retry-After field when `retry_after_header` is not
  /// empty: a CA that takes its time, deterministically.
  void hold(RequestKind kind, int count, std::string status, std::string retry_after_header);

  /// Requests of `kind` received so far, faulted or forwarded; only those with `method` ("POST",
  /// "HEAD", "GET") when it is not empty.
  int count(RequestKind kind, std::string_view method = {}) const;
  /// When each request of `kind` (with `method`, when not empty) arrived, in order.
  std::vector<std::chrono::steady_clock::time_point> times(RequestKind kind, std::string_view method = {}) const;
  /// The bodies of the requests of `kind` received so far, in order (JWS documents for POSTs).
  std::vector<std::string> bodies(RequestKind kind) const;
  /// The decoded JWS payloads of the POSTs of `kind` received so far, in order; a POST-as-GET
  /// gives an empty object.
  std::vector<nlohmann::json> payloads(RequestKind kind) const;
  /// Requests received so far, of every kind.
  int total() const;
  /// One line per request received, in order: "POST /order-plz -> 429 (injected)", "... -> 201",
  /// "... -> dropped", "... -> upstream failed: <why>". For failure messages.
  std::vector<std::string> log() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace acmetool::test
