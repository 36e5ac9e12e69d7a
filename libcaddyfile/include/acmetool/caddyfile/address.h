// Site addresses ("example.com", "http://:8080", "[::1]:8443/api"): parsing as Caddy's
// httpcaddyfile ParseAddress does, normalisation, and what an address implies for serving it
// (scheme, listening port, Host matcher, automatic HTTPS). Pure functions, no I/O.
#pragma once

#include <string>
#include <string_view>

#include "acmetool/caddyfile/error.h"

namespace acmetool::caddyfile {

/// A site address split into its parts. Nothing is filled in: an address without a port has an
/// empty port, whatever its scheme.
struct Address {
  std::string original;  ///< the input with surrounding white space trimmed
  std::string scheme;    ///< before "://", e.g. "http"; "" when none
  std::string host;      ///< without IPv6 brackets; "" for a catch-all
  std::string port;      ///< digits only (validated 0..65535); "" when none
  std::string path;      ///< from the first '/' on, "" when none

  /// Caddy's Address.String(): "scheme://host[:port]path" with the scheme inferred from the
  /// port (443 -> https, anything else -> http) and the port dropped when it is the scheme's
  /// default; "" when host and port are both empty. Used in error messages.
  std::string to_string() const;

  bool operator==(const Address&) const = default;
};

/// Thrown for an address that cannot be parsed or served. what() is the bare reason (no
/// location): "invalid port 'http': not a number", "port 70000 is out of range". The adapter
/// rethrows it as a ParseError at the address's token.
class AddressError : public Error {
 public:
  using Error::Error;
};

/// Splits `text` like upstream ParseAddress: input longer than 4096 bytes is cut there, white
/// space trimmed; the scheme is everything before the first "://"; host[:port] is everything
/// before the next '/', split as Go's net.SplitHostPort does (IPv6 needs brackets when a port
/// follows; a bare "::1" is a host); the path keeps its leading '/'. A port must be a decimal
/// number in 0..65535: service names (":http") are errors. Throws AddressError.
Address parse_address(std::string_view text);

/// Caddy's Address.Normalize(): scheme and host lower-cased except inside {placeholders}, an
/// IPv6 host in canonical RFC 5952 form ("[0:0::1]" -> "::1"), IPv4 and IPv4-mapped hosts as they
/// are. Port, path and original are unchanged.
Address normalize_address(const Address& address);

/// Lower-cases ASCII letters outside unescaped `{...}` spans (upstream lowerExceptPlaceholders).
std::string lower_except_placeholders(std::string_view text);

/// The ports automatic HTTPS works with: the `http_port` and `https_port` global options.
struct PortConfig {
  int http_port = 80;
  int https_port = 443;
};

/// What an address implies, before any directive is considered.
struct ImpliedAddress {
  /// "http" or "https". An explicit scheme wins; else the HTTP port means http and the HTTPS
  /// port https; else an address with a host is https (automatic HTTPS applies to it on any
  /// port, "localhost:8080"), and a catch-all on another port is http (":8080").
  std::string scheme;
  /// The port to listen on: the explicit port, else the HTTP port for "http://", else the HTTPS
  /// port.
  int port = 0;
  /// True when requests must carry this host: the address has one. "http://127.0.0.1" matches
  /// only that Host header, not "localhost".
  bool host_matcher = false;
  /// True when automatic HTTPS manages a certificate for the host (and redirects HTTP to it): a
  /// host is given, the scheme is https, and the port is not the HTTP port. The auto_https
  /// option and the tls directive can still turn it off.
  bool automatic_https = false;
};

/// Decides scheme, port, Host matcher and automatic HTTPS for a normalised address. Throws
/// AddressError for "ws://" and "wss://" (with upstream's hint), any other scheme than http and
/// https ("unsupported URL scheme ftp://"), and "[http://x:443] scheme and port violate
/// convention" when the scheme is http on the HTTPS port or https on the HTTP port.
ImpliedAddress imply_address(const Address& address, const PortConfig& ports = {});

/// "host:port", bracketing hosts that contain ':' ("[::1]:443"); ":443" for an empty host.
std::string join_host_port(std::string_view host, std::string_view port);

/// True for an IPv4 dotted quad or an IPv6 address (no brackets, no zone), as Go's
/// net.ParseIP accepts them.
bool is_ip_literal(std::string_view host);

}  // namespace acmetool::caddyfile
