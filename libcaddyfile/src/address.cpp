#include "acmetool/caddyfile/address.h"

#include <arpa/inet.h>

#include <cstdint>
#include <cstdio>
#include <optional>

namespace acmetool::caddyfile {
namespace {

constexpr std::size_t kMaxAddressLength = 4096;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

struct HostPort {
  std::string host;
  std::string port;
};

// Go's net.SplitHostPort: the port follows the last ':'; a host with ':' must be bracketed.
// nullopt where Go returns an error.
std::optional<HostPort> split_host_port(std::string_view hostport) {
  const std::size_t colon = hostport.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;  // missing port
  std::string_view host;
  std::size_t after_open = 0;
  std::size_t after_close = 0;
  if (!hostport.empty() && hostport.front() == '[') {
    const std::size_t end = hostport.find(']');
    if (end == std::string_view::npos) return std::nullopt;  // missing ']'
    if (end + 1 != colon) return std::nullopt;               // missing port, or too many colons
    host = hostport.substr(1, end - 1);
    after_open = 1;
    after_close = end + 1;
  } else {
    host = hostport.substr(0, colon);
    if (host.find(':') != std::string_view::npos) return std::nullopt;  // too many colons
  }
  if (hostport.find('[', after_open) != std::string_view::npos) return std::nullopt;
  if (hostport.find(']', after_close) != std::string_view::npos) return std::nullopt;
  return HostPort{std::string(host), std::string(hostport.substr(colon + 1))};
}

// Go's strconv.Atoi plus ParseAddress's range check.
void check_port(const std::string& port) {
  std::size_t i = (port[0] == '+' || port[0] == '-') ? 1 : 0;
  if (i == port.size()) throw AddressError("invalid port '" + port + "': not a number");
  long long value = 0;
  for (; i < port.size(); ++i) {
    if (port[i] < '0' || port[i] > '9') throw AddressError("invalid port '" + port + "': not a number");
    value = value * 10 + (port[i] - '0');
    if (value > 0xFFFFFFFFLL) throw AddressError("invalid port '" + port + "': value out of range");
  }
  if (port[0] == '-') value = -value;
  if (value < 0 || value > 65535) throw AddressError("port " + std::to_string(value) + " is out of range");
}

int port_number(const std::string& port) { return std::stoi(port); }

// RFC 5952 text for a 16-byte IPv6 address, as Go's netip.Addr.String() writes it: lower-case
// hex, the longest run (first on a tie) of two or more zero groups compressed to "::".
std::string format_ipv6(const unsigned char bytes[16]) {
  std::uint16_t groups[8];
  for (int i = 0; i < 8; ++i) groups[i] = static_cast<std::uint16_t>(bytes[2 * i] << 8 | bytes[2 * i + 1]);
  int best_start = -1;
  int best_length = 0;
  for (int i = 0; i < 8;) {
    if (groups[i] != 0) {
      ++i;
      continue;
    }
    int j = i;
    while (j < 8 && groups[j] == 0) ++j;
    if (j - i > best_length) best_start = i, best_length = j - i;
    i = j;
  }
  if (best_length < 2) best_start = -1;
  std::string out;
  char buffer[8];
  for (int i = 0; i < 8; ++i) {
    if (i == best_start) {
      out += "::";
      i += best_length - 1;
      continue;
    }
    if (!out.empty() && out.back() != ':') out += ':';
    std::snprintf(buffer, sizeof buffer, "%x", groups[i]);
    out += buffer;
  }
  return out;
}

bool is_ipv4_mapped(const unsigned char bytes[16]) {
  for (int i = 0; i < 10; ++i) {
    if (bytes[i] != 0) return false;
  }
  return bytes[10] == 0xff && bytes[11] == 0xff;
}

// netip.ParseAddr accepts an IPv6 zone ("fe80::1%eth0") and keeps it in String().
std::optional<std::string> canonical_ipv6(std::string_view host) {
  const std::size_t percent = host.find('%');
  const std::string address(host.substr(0, percent));
  unsigned char bytes[16];
  if (inet_pton(AF_INET6, address.c_str(), bytes) != 1) return std::nullopt;
  if (is_ipv4_mapped(bytes)) return std::nullopt;  // Caddy leaves these as written
  std::string out = format_ipv6(bytes);
  if (percent != std::string_view::npos) out += host.substr(percent);
  return out;
}

}  // namespace

std::string Address::to_string() const {
  if (host.empty() && port.empty()) return "";
  std::string s = scheme;
  if (s.empty()) s = port == "443" ? "https" : "http";
  const bool default_port = (s == "https" && port == "443") || (s == "http" && port == "80");
  s += "://";
  s += !port.empty() && !default_port ? join_host_port(host, port) : host;
  return s + path;
}

Address parse_address(std::string_view text) {
  if (text.size() > kMaxAddressLength) text = text.substr(0, kMaxAddressLength);
  std::string_view remaining = trim(text);
  Address a;
  a.original = std::string(remaining);

  if (const std::size_t sep = remaining.find("://"); sep != std::string_view::npos) {
    a.scheme = std::string(remaining.substr(0, sep));
    remaining.remove_prefix(sep + 3);
  }

  const std::size_t slash = remaining.find('/');
  const std::string_view hostport = remaining.substr(0, slash);
  if (auto hp = split_host_port(hostport)) {
    a.host = std::move(hp->host);
    a.port = std::move(hp->port);
  } else if (auto hp2 = split_host_port(std::string(hostport) + ":")) {
    a.host = std::move(hp2->host);
  } else {
    a.host = std::string(hostport);
  }
  if (slash != std::string_view::npos) a.path = std::string(remaining.substr(slash));

  if (!a.port.empty()) check_port(a.port);
  return a;
}

std::string lower_except_placeholders(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool escaped = false;
  bool in_placeholder = false;
  for (const char c : text) {
    if (c == '\\' && !escaped) {
      escaped = true;
      out += c;
      continue;
    }
    if (c == '{' && !escaped) in_placeholder = true;
    if (c == '}' && in_placeholder && !escaped) in_placeholder = false;
    out += (!in_placeholder && c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    escaped = false;
  }
  return out;
}

Address normalize_address(const Address& address) {
  Address out = address;
  std::string host(trim(address.host));
  if (auto canonical = canonical_ipv6(host)) host = std::move(*canonical);
  out.scheme = lower_except_placeholders(address.scheme);
  out.host = lower_except_placeholders(host);
  return out;
}

ImpliedAddress imply_address(const Address& address, const PortConfig& ports) {
  const std::string& scheme = address.scheme;
  if (scheme == "wss") throw AddressError("the scheme wss:// is only supported in browsers; use https:// instead");
  if (scheme == "ws") throw AddressError("the scheme ws:// is only supported in browsers; use http:// instead");
  if (!scheme.empty() && scheme != "http" && scheme != "https") {
    throw AddressError("unsupported URL scheme " + scheme + "://");
  }

  ImpliedAddress out;
  out.port = ports.https_port;
  if (!address.port.empty()) {
    out.port = port_number(address.port);
  } else if (scheme == "http") {
    out.port = ports.http_port;
  }
  if ((scheme == "http" && out.port == ports.https_port) || (scheme == "https" && out.port == ports.http_port)) {
    throw AddressError("[" + address.to_string() + "] scheme and port violate convention");
  }

  if (!scheme.empty()) {
    out.scheme = scheme;
  } else if (out.port == ports.http_port) {
    out.scheme = "http";
  } else if (out.port == ports.https_port || !address.host.empty()) {
    out.scheme = "https";
  } else {
    out.scheme = "http";
  }
  out.host_matcher = !address.host.empty();
  out.automatic_https = out.host_matcher && out.scheme == "https" && out.port != ports.http_port;
  return out;
}

std::string join_host_port(std::string_view host, std::string_view port) {
  std::string out;
  if (host.find(':') != std::string_view::npos) {
    out = "[" + std::string(host) + "]";
  } else {
    out = std::string(host);
  }
  return out + ":" + std::string(port);
}

bool is_ip_literal(std::string_view host) {
  const std::string text(host);
  unsigned char bytes[16];
  return inet_pton(AF_INET, text.c_str(), bytes) == 1 || inet_pton(AF_INET6, text.c_str(), bytes) == 1;
}

}  // namespace acmetool::caddyfile
