#include "acmetool/pki/hostname.h"

#include <arpa/inet.h>
#include <idn2.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <vector>

namespace acmetool::pki {

namespace {

constexpr size_t kMaxNameLength = 253;  // RFC 1035 §2.3.4 (255 octets on the wire)
constexpr size_t kMaxLabelLength = 63;

// ---------------------------------------------------------------------------------------------
// Text helpers.

bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool is_non_ascii(char c) { return static_cast<unsigned char>(c) >= 0x80; }

char lower_ascii(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// a-z 0-9 '-' '.' '*': everything a valid name may contain once in A-label form.
bool is_name_byte(char c) { return (c >= 'a' && c <= 'z') || is_digit(c) || c == '-' || c == '.' || c == '*'; }

std::string_view trim(std::string_view text) {
  while (!text.empty() && is_ascii_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_ascii_space(text.back())) text.remove_suffix(1);
  return text;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower_ascii(x) == lower_ascii(y); });
}

bool all_digits(std::string_view text) { return !text.empty() && std::all_of(text.begin(), text.end(), is_digit); }

// `text` with control bytes as "\xNN", so that it prints as one line.
std::string printable(std::string_view text) {
  std::string out;
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", byte);
      out += escaped;
    } else {
      out += c;
    }
  }
  return out;
}

std::string quote(std::string_view text) { return "'" + printable(text) + "'"; }

std::vector<std::string_view> split_labels(std::string_view name) {
  std::vector<std::string_view> labels;
  for (size_t start = 0;;) {
    const size_t dot = name.find('.', start);
    labels.push_back(name.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) return labels;
    start = dot + 1;
  }
}

// ---------------------------------------------------------------------------------------------
// IP addresses.

struct IpAddress {
  bool v4 = false;
  std::array<std::uint8_t, 16> bytes{};  // IPv4 in the first four
};

struct IpRange {
  bool v4;
  std::array<std::uint8_t, 16> prefix;
  int bits;
  const char* cidr;
  const char* what;
};

// The ranges only a local CA can serve. See hostname.h for where they differ from CertMagic.
const IpRange kInternalRanges[] = {
    {true, {0}, 8, "0.0.0.0/8", "this network"},
    {true, {10}, 8, "10.0.0.0/8", "private"},
    {true, {127}, 8, "127.0.0.0/8", "loopback"},
    {true, {169, 254}, 16, "169.254.0.0/16", "link-local"},
    {true, {172, 16}, 12, "172.16.0.0/12", "private"},
    {true, {192, 168}, 16, "192.168.0.0/16", "private"},
    {false, {}, 128, "::/128", "unspecified"},
    {false, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, "::1/128", "loopback"},
    {false, {0xfc}, 7, "fc00::/7", "unique local"},
    {false, {0xfe, 0x80}, 10, "fe80::/10", "link-local"},
};

std::optional<IpAddress> parse_ip(std::string_view text) {
  // inet_pton reads a C string: an embedded NUL would hide whatever follows it.
  if (text.find('\0') != std::string_view::npos) return std::nullopt;
  const std::string c_text(text);
  IpAddress ip;
  if (inet_pton(AF_INET, c_text.c_str(), ip.bytes.data()) == 1) {
    ip.v4 = true;
    return ip;
  }
  if (inet_pton(AF_INET6, c_text.c_str(), ip.bytes.data()) == 1) return ip;
  return std::nullopt;
}

// RFC 5952 text: lower-case, longest zero run as "::", IPv4-mapped as "::ffff:a.b.c.d".
std::string format_ip(const IpAddress& ip) {
  char text[INET6_ADDRSTRLEN];
  inet_ntop(ip.v4 ? AF_INET : AF_INET6, ip.bytes.data(), text, sizeof text);
  return text;
}

bool is_v4_mapped(const IpAddress& ip) {
  static constexpr std::uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return !ip.v4 && std::equal(std::begin(kMappedPrefix), std::end(kMappedPrefix), ip.bytes.begin());
}

bool in_range(const std::uint8_t* address, const IpRange& range) {
  const int whole_bytes = range.bits / 8;
  if (!std::equal(address, address + whole_bytes, range.prefix.begin())) return false;
  const int rest = range.bits % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (address[whole_bytes] & mask) == (range.prefix[whole_bytes] & mask);
}

// The internal range `ip` falls in, judging IPv4-mapped IPv6 as IPv4; nullptr when public.
const IpRange* internal_range(const IpAddress& ip) {
  const bool mapped = is_v4_mapped(ip);
  const std::uint8_t* address = mapped ? ip.bytes.data() + 12 : ip.bytes.data();
  for (const IpRange& range : kInternalRanges) {
    if (range.v4 == (ip.v4 || mapped) && in_range(address, range)) return &range;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// IDNA (libidn2).

struct Idn2Free {
  void operator()(char* p) const noexcept { idn2_free(p); }
};
using Idn2String = std::unique_ptr<char, Idn2Free>;

struct IdnaResult {
  std::string ascii;          // "" on failure
  std::string error;          // libidn2's message for the non-transitional attempt
  bool transitional = false;  // only UTS #46 transitional processing accepted it
};

// libidn2's message for `rc`, in our terms where its own is obscure or off by two octets.
std::string idn2_reason(int rc) {
  switch (rc) {
    case IDN2_ENCODING_ERROR:
      return "the name is not valid UTF-8";
    case IDN2_PUNYCODE_BIG_OUTPUT:  // "punycode encoded data will be too large"
    case IDN2_TOO_BIG_LABEL:
      return "a label is over 63 characters in A-label form";
    case IDN2_TOO_BIG_DOMAIN:  // "domain name longer than 255 characters", said of 254
      return "the name is over 253 characters in A-label form";
    default:
      return idn2_strerror(rc);
  }
}

// IDNA2008 non-transitional first: it keeps 'ß' and final sigma, as current browsers and curl do.
// Transitional second, for names IDNA2008 disallows that clients still resolve (emoji).
IdnaResult to_a_labels(const std::string& name) {
  IdnaResult result;
  char* raw = nullptr;
  int rc = idn2_to_ascii_8z(name.c_str(), &raw, IDN2_NONTRANSITIONAL);
  Idn2String out(raw);
  if (rc != IDN2_OK) {
    result.error = idn2_reason(rc);
    raw = nullptr;
    rc = idn2_to_ascii_8z(name.c_str(), &raw, IDN2_TRANSITIONAL);
    out.reset(raw);
    if (rc != IDN2_OK) return result;
    result.transitional = true;
  }
  result.ascii = out.get();
  return result;
}

// ---------------------------------------------------------------------------------------------
// Rules. Each returns the reason a name is invalid, or nullopt.

std::optional<std::string> colon_problem(std::string_view name) {
  if (const size_t percent = name.find('%'); percent != std::string_view::npos) {
    const std::optional<IpAddress> ip = parse_ip(name.substr(0, percent));
    if (ip && !ip->v4) {
      return "has a zone: remove " + quote(name.substr(percent)) + " (a certificate cannot name an interface)";
    }
  }
  if (name.front() == '[') {
    if (const size_t close = name.find("]:"); close != std::string_view::npos) {
      return "has a port: remove " + quote(name.substr(close + 1));
    }
  }
  const size_t colon = name.find(':');
  if (name.find(':', colon + 1) == std::string_view::npos) {
    return "has a port: remove " + quote(name.substr(colon));
  }
  return "contains ':' but is not a valid IPv6 address";
}

// Characters a name may not contain, with the most likely fix first. Bytes of non-ASCII
// characters pass when `allow_non_ascii`: they are judged by IDNA afterwards.
std::optional<std::string> character_problem(std::string_view name, bool allow_non_ascii) {
  if (const size_t scheme = name.find("://"); scheme != std::string_view::npos) {
    return "is a URL: remove the scheme " + quote(name.substr(0, scheme + 3));
  }
  if (const size_t slash = name.find('/'); slash != std::string_view::npos) {
    return "has a path: remove " + quote(name.substr(slash));
  }
  if (const size_t at = name.find('@'); at != std::string_view::npos) {
    return "has a user part: remove " + quote(name.substr(0, at + 1));
  }
  if (name.find(':') != std::string_view::npos) return colon_problem(name);
  for (char c : name) {
    if (is_name_byte(c) || (allow_non_ascii && is_non_ascii(c))) continue;
    if (is_ascii_space(c)) return "contains whitespace: remove it";
    if (c == '[' || c == ']') return "has brackets, which only an IPv6 address may have";
    if (c == '_') return "contains '_', which host names may not (RFC 1123): use '-'";
    return "contains " + quote(std::string_view(&c, 1)) + ": use only letters, digits, '-', '.' and a leading '*.'";
  }
  return std::nullopt;
}

std::optional<std::string> label_problem(std::string_view label, size_t index, bool final) {
  if (label.empty()) return "has an empty label ('..'): remove the extra dot";
  if (label.find('*') != std::string_view::npos) {
    if (label != "*") return "label " + quote(label) + " mixes '*' with other characters: use '*.example.com'";
    if (index != 0) return "has '*' below the left-most label: only '*.example.com' is a wildcard";
    return std::nullopt;
  }
  if (final && label.size() > kMaxLabelLength) {
    return "label " + quote(label) + " is " + std::to_string(label.size()) + " characters long; the limit is 63";
  }
  if (label.front() == '-') return "label " + quote(label) + " starts with a hyphen";
  if (label.back() == '-') return "label " + quote(label) + " ends with a hyphen";
  const bool ascii = std::none_of(label.begin(), label.end(), is_non_ascii);
  if (ascii && label.size() >= 4 && label.substr(2, 2) == "--" && !label.starts_with("xn--")) {
    return "label " + quote(label) + " has '--' in positions 3-4, which is reserved for IDNA (RFC 5890)";
  }
  return std::nullopt;
}

// The rules about dots, labels and lengths. Before IDNA conversion (`final` false) lengths are
// not checked: they count in A-labels.
std::optional<std::string> structure_problem(std::string_view name, bool final) {
  if (name.empty()) return "empty name";
  if (name.front() == '.') return "starts with a dot: remove it";
  if (name.back() == '.') return "ends with a dot: remove it";
  if (name == "*") return "a lone '*' covers no domain: use '*.example.com'";
  if (final && name.size() > kMaxNameLength) {
    return "is " + std::to_string(name.size()) + " characters long; the limit is 253";
  }
  const std::vector<std::string_view> labels = split_labels(name);
  for (size_t i = 0; i < labels.size(); ++i) {
    if (std::optional<std::string> problem = label_problem(labels[i], i, final)) return problem;
  }
  if (final && all_digits(labels.back())) {
    // RFC 3696 §2; URL parsers (WHATWG) read a host ending in a number as an IPv4 address.
    if (std::all_of(name.begin(), name.end(), [](char c) { return is_digit(c) || c == '.'; })) {
      return "is not an IP address (IPv4 is four numbers 0-255 without leading zeros) nor a host name (its last "
             "label is all digits)";
    }
    return "last label " + quote(labels.back()) + " is all digits, which no top-level domain is";
  }
  return std::nullopt;
}

// Every "xn--" label must be valid punycode whose decoding IDNA accepts as a U-label (libidn2
// checks both when given an A-label). Sets `transitional` when one needed UTS #46 transitional
// processing.
std::optional<std::string> a_label_problem(std::string_view name, bool& transitional) {
  for (std::string_view label : split_labels(name)) {
    if (!label.starts_with("xn--")) continue;
    const IdnaResult result = to_a_labels(std::string(label));
    if (result.ascii.empty()) return "label " + quote(label) + " is not a valid A-label: " + result.error;
    transitional = transitional || result.transitional;
  }
  return std::nullopt;
}

// Why a valid DNS name is internal, or nullopt when it is public.
std::optional<std::string> internal_reason(std::string_view name) {
  struct Zone {
    std::string_view name;
    std::string_view why;
  };
  static constexpr Zone kZones[] = {
      {"localhost", "the loopback name (RFC 6761 §6.3)"},
      {"local", "the multicast DNS domain (RFC 6762)"},
      {"internal", "reserved for private networks (ICANN, 2024)"},
      {"home.arpa", "reserved for home networks (RFC 8375)"},
  };
  for (const Zone& zone : kZones) {
    if (name == zone.name) return std::string(zone.name) + ": " + std::string(zone.why);
    if (name.size() > zone.name.size() && name.ends_with(zone.name) &&
        name[name.size() - zone.name.size() - 1] == '.') {
      return "under ." + std::string(zone.name) + ", " + std::string(zone.why);
    }
  }
  if (name.find('.') == std::string_view::npos) {
    return "single-label name: no public CA validates a name without a dot";
  }
  if (name.starts_with("*.") && name.find('.', 2) == std::string_view::npos) {
    return "wildcard over a top-level domain: no public CA issues " + quote(name);
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Verdicts.

NameQualification verdict(NameQualification q, std::string_view name, NameClass name_class, std::string reason) {
  q.name = name_class == NameClass::Invalid ? printable(name) : std::string(name);
  q.name_class = name_class;
  if (name_class == NameClass::Public) q.issuer = kAcmeIssuer;
  if (name_class == NameClass::Internal || name_class == NameClass::Ip) q.issuer = kLocalIssuer;
  q.reason = std::move(reason);
  return q;
}

NameQualification ip_verdict(NameQualification q, const IpAddress& ip) {
  const IpRange* range = internal_range(ip);
  std::string reason;
  if (range == nullptr) {
    reason = "public IP address: public CAs issue IP certificates only on request, so the local CA signs it";
  } else {
    reason = std::string(is_v4_mapped(ip) ? "IPv4-mapped IP address" : "IP address") + " in " + range->cidr + ": " +
             range->what;
  }
  return verdict(std::move(q), format_ip(ip), NameClass::Ip, std::move(reason));
}

// The checks a DNS name goes through, before and after IDNA conversion (see qualify_name).
NameQualification dns_verdict(NameQualification q, std::string name) {
  const auto invalid = [&](const std::string& reason) {
    return verdict(std::move(q), name, NameClass::Invalid, reason);
  };
  if (auto problem = character_problem(name, true)) return invalid(*problem);
  if (auto problem = structure_problem(name, false)) return invalid(*problem);
  bool transitional = false;
  if (std::any_of(name.begin(), name.end(), is_non_ascii)) {
    IdnaResult idna = to_a_labels(name);
    if (idna.ascii.empty()) return invalid("not a valid internationalised name: " + idna.error);
    name = std::move(idna.ascii);
    transitional = idna.transitional;
  }
  // UTS #46 mapping can produce ASCII that was not there ('＿' becomes '_'): check again.
  if (auto problem = character_problem(name, false)) return invalid(*problem);
  if (auto problem = structure_problem(name, true)) return invalid(*problem);
  if (auto problem = a_label_problem(name, transitional)) return invalid(*problem);

  const std::string note = transitional ? " (IDNA2008 disallows it; converted with UTS #46 transitional rules)" : "";
  if (std::optional<std::string> why = internal_reason(name)) {
    return verdict(std::move(q), name, NameClass::Internal, *why + note);
  }
  const std::string what =
      name.starts_with("*.") ? "public wildcard name: needs the DNS-01 challenge" : "public DNS name";
  return verdict(std::move(q), name, NameClass::Public, what + note);
}

}  // namespace

std::string_view to_string(NameClass name_class) {
  switch (name_class) {
    case NameClass::Public:
      return "public";
    case NameClass::Internal:
      return "internal";
    case NameClass::Ip:
      return "ip";
    case NameClass::Invalid:
      break;
  }
  return "invalid";
}

NameQualification qualify_name(std::string_view input) {
  NameQualification q;
  q.input = std::string(input);
  std::string name(trim(input));
  std::transform(name.begin(), name.end(), name.begin(), lower_ascii);

  if (name.size() >= 2 && name.front() == '[' && name.back() == ']') {
    std::string inner = name.substr(1, name.size() - 2);
    const std::optional<IpAddress> ip = parse_ip(inner);
    if (ip && !ip->v4) return ip_verdict(std::move(q), *ip);
    const std::string reason = inner.find(':') != std::string::npos
                                   ? *colon_problem(inner)
                                   : "has brackets, which only an IPv6 address may have";
    return verdict(std::move(q), name, NameClass::Invalid, reason);
  }
  if (const std::optional<IpAddress> ip = parse_ip(name)) return ip_verdict(std::move(q), *ip);
  return dns_verdict(std::move(q), std::move(name));
}

bool is_ip_address(std::string_view name) { return parse_ip(name).has_value(); }

bool is_internal_name(std::string_view name) {
  const NameQualification q = qualify_name(name);
  if (q.name_class == NameClass::Internal) return true;
  if (q.name_class != NameClass::Ip) return false;
  const std::optional<IpAddress> ip = parse_ip(q.name);
  return ip && internal_range(*ip) != nullptr;
}

bool qualifies_for_public_cert(std::string_view name) { return qualify_name(name).name_class == NameClass::Public; }

bool match_wildcard(std::string_view name, std::string_view pattern) {
  if (iequals(name, pattern)) return true;
  if (!pattern.starts_with("*.") || pattern.size() == 2) return false;
  const size_t dot = name.find('.');
  if (dot == std::string_view::npos || dot == 0) return false;
  return iequals(name.substr(dot + 1), pattern.substr(2));
}

}  // namespace acmetool::pki
