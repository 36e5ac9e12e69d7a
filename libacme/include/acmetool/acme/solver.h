// Challenge solvers: what makes an ACME challenge answerable while the CA validates it.
//
// http-01 (RFC 8555 §8.3) by our own listener or by files in a web server's root, and tls-alpn-01
// (RFC 8737) by our own TLS listener; both also for IP identifiers (RFC 8738). dns-01 solvers live
// with the DNS providers.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

struct ssl_st;  // OpenSSL's SSL

namespace acmetool::acme {

/// Makes a challenge answerable while the CA validates it. Implementations are thread-safe:
/// several orders may present and clean up tokens concurrently on one solver.
class Solver {
 public:
  virtual ~Solver() = default;

  /// The challenge type this solver answers: "http-01", "tls-alpn-01" or "dns-01".
  virtual std::string_view type() const = 0;

  /// Makes `key_authorization` answerable for `identifier` (a DNS name or an IP address literal)
  /// and `token`, until cleanup() with the same identifier and token. Throws acme::Error when it
  /// cannot: the token is not base64url ([A-Za-z0-9_-]+), the identifier cannot appear in a
  /// certificate, a file cannot be written.
  virtual void present(std::string_view identifier, std::string_view token,
                       std::string_view key_authorization) = 0;

  /// Returns once everything presented so far can be validated, before the CA is told to look:
  /// dns-01 waits here for its records to reach every authoritative nameserver. Throws
  /// acme::Error when that does not happen within `timeout`. The default returns at once.
  virtual void wait_presented(std::chrono::milliseconds timeout) { (void)timeout; }

  /// Undoes present(); does nothing for a token that is not presented. Never throws.
  virtual void cleanup(std::string_view identifier, std::string_view token) noexcept = 0;

  /// Undoes every present() not yet cleaned up: for a process about to exit mid-order (SIGINT).
  /// Later cleanup() calls for those tokens do nothing. Never throws. The default does nothing,
  /// for solvers whose presentations die with the process (the standalone listeners).
  virtual void withdraw_all() noexcept {}
};

/// http-01 served by our own listener on `address:port`. `address` is an IP address literal
/// ("127.0.0.1", "::1") or "" for every IPv4 and IPv6 address (IPv4 alone where the host has no
/// IPv6). The socket is bound (SO_REUSEADDR) here and served by a thread until the solver is
/// destroyed; the destructor closes every connection and joins the thread.
///
/// It answers `GET /.well-known/acme-challenge/<token>` for a presented token with 200,
/// Content-Type text/plain and exactly the key authorization as body (RFC 8555 §8.3), and
/// everything else with 404 (400 for a request line that does not parse, 431 for a request head
/// over 8 KiB). The Host header is ignored: the CA may validate any presented identifier.
/// Connections are served concurrently, each closed after one response or after 10 s, whichever
/// comes first.
///
/// Throws acme::Error naming the address and port when it cannot listen:
/// "listening on :80 for http-01: Permission denied".
std::unique_ptr<Solver> make_http01_standalone(std::string address, int port);

/// http-01 for a web server that already serves `webroot`: present() writes the key authorization
/// to `<webroot>/.well-known/acme-challenge/<token>` (mode 0644, atomically, missing directories
/// created 0755); cleanup() removes that file and nothing else. Nothing is touched until present().
std::unique_ptr<Solver> make_http01_webroot(std::filesystem::path webroot);

/// tls-alpn-01 served by our own TLS listener on `address:port` (address, binding, threads,
/// timeouts and errors as for make_http01_standalone; the error says "for tls-alpn-01").
///
/// present() makes a self-signed certificate with a fresh P-256 key whose only subjectAltName is
/// the identifier (a dNSName, or an iPAddress for an IP identifier) and which carries the critical
/// id-pe-acmeIdentifier extension holding SHA-256(key_authorization) (RFC 8737 §3). A ClientHello
/// offering ALPN "acme-tls/1" whose SNI is a presented DNS identifier, or the reverse-DNS name of a
/// presented IP identifier ("1.0.0.127.in-addr.arpa", RFC 8738 §6), gets that certificate, TLS 1.2
/// or later and acme-tls/1; the connection is closed once the handshake completes. Other
/// ClientHellos are refused with a fatal alert: no_application_protocol without acme-tls/1,
/// unrecognized_name for an SNI that is missing or not presented. When one identifier is presented
/// with several tokens, the latest presentation is served until it is cleaned up.
std::unique_ptr<Solver> make_tlsalpn01_standalone(std::string address, int port);

/// tls-alpn-01 answered by a TLS server of the caller's (`acmetool serve` on its HTTPS port).
/// present() makes the challenge certificate exactly as make_tlsalpn01_standalone's does; the
/// server, seeing a ClientHello that offers acme-tls/1, asks use_for() to put it on the
/// connection, negotiates acme-tls/1 with TLS 1.2 or later, and closes after the handshake.
class TlsAlpn01Responder : public Solver {
 public:
  TlsAlpn01Responder();
  ~TlsAlpn01Responder() override;
  TlsAlpn01Responder(const TlsAlpn01Responder&) = delete;
  TlsAlpn01Responder& operator=(const TlsAlpn01Responder&) = delete;

  std::string_view type() const override;
  void present(std::string_view identifier, std::string_view token,
               std::string_view key_authorization) override;
  void cleanup(std::string_view identifier, std::string_view token) noexcept override;
  void withdraw_all() noexcept override;

  /// Gives `ssl` (an OpenSSL SSL*) the latest certificate and key presented for `server_name`
  /// (the ClientHello's SNI, lower case; an IP identifier's reverse-DNS name); false when none is
  /// presented for it. Thread-safe.
  bool use_for(ssl_st* ssl, std::string_view server_name) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace acmetool::acme
