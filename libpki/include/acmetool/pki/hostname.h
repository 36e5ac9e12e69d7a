// Hostname rules: which names can get a certificate, and from which issuer. Pure functions, no I/O.
//
// The spec is the "Hostname requirements" of Caddy's Automatic HTTPS page; CertMagic's
// SubjectQualifiesForCert / SubjectIsInternal / SubjectQualifiesForPublicCert / MatchWildcard are the
// reference behaviour. We are stricter than CertMagic wherever a CA or a client would refuse the
// name later anyway, so the user hears about it before any order is placed. Deliberate deviations:
//  - Characters: only a-z 0-9 '-' '.' '*' (the spec's "alphanumerics, hyphens, dots, and wildcard").
//    CertMagic only rejects a blacklist, so "localhost:8080", "a/b", "a_b" and "a..b" qualify there.
//  - Labels: none empty, none over 63 octets, the name at most 253 (RFC 1035 §2.3.4); no label
//    starts or ends with '-' (RFC 1123 §2.1); no "??--" label other than a valid "xn--" A-label
//    (RFC 5890 §2.3.1, as Let's Encrypt checks). CertMagic checks none of these.
//  - The last label is never all digits (RFC 3696 §2): "01.2.3.4" is neither an IP address nor a
//    host name, since URL parsers read such a host as an IPv4 address. CertMagic calls it public.
//  - '*' only as the whole left-most label: "*.*.example.com" is invalid (CertMagic: internal).
//  - Internationalised names are converted to A-labels (IDNA2008 with UTS #46 mapping; see
//    qualify_name). CertMagic passes non-ASCII through.
//  - Internal: the bare "local", "internal" and "home.arpa" are internal too (CertMagic: only names
//    under them); so is every other single-label name, which no public CA validates. 0.0.0.0/8
//    is internal (CertMagic: 0.0.0.0/16), and of ::/8 only :: and ::1 (CertMagic's "::1/7" makes
//    all of ::/7 internal, NAT64 64:ff9b::/96 included).
//  - Every IP address, public or not, gets class Ip and the local issuer, as Caddy's Caddyfile
//    adapter decides; CertMagic alone would call a public IP publicly qualified.
// Not internal, as in CertMagic: CGNAT 100.64.0.0/10, documentation ranges (192.0.2.0/24,
// 2001:db8::/32), multicast and broadcast addresses (all public IPs here), and names under other
// special-use TLDs (.test, .example, .invalid), which a CA refuses with its own error.
#pragma once

#include <string>
#include <string_view>

namespace acmetool::pki {

/// Which kind of certificate a name can get.
enum class NameClass {
  Public,    ///< a DNS name a public ACME CA can validate
  Internal,  ///< a DNS name only a local CA can serve (localhost, .internal, single labels, ...)
  Ip,        ///< an IPv4 or IPv6 address, private or public
  Invalid,   ///< no certificate can name it
};

/// "public", "internal", "ip" or "invalid": the spelling of `acmetool qualify` and its JSON.
std::string_view to_string(NameClass name_class);

/// The issuer key for public names (an ACME CA, the first configured one).
inline constexpr std::string_view kAcmeIssuer = "acme";
/// The issuer key for internal names and IP addresses: the local CA, named as in Caddy.
inline constexpr std::string_view kLocalIssuer = "local";

/// The verdict on one name.
struct NameQualification {
  /// The name exactly as given.
  std::string input;
  /// The normalised form: trimmed, lower-case, IPv6 without brackets and in RFC 5952 form, DNS
  /// names in A-labels ("bücher.example" -> "xn--bcher-kva.example"). For an invalid name, as far
  /// as normalising got (a name IDNA rejects stays in Unicode), with bytes below 0x20 and 0x7f as
  /// "\xNN" so it prints as one line; "" only for a blank input.
  std::string name;
  NameClass name_class = NameClass::Invalid;
  /// kAcmeIssuer for Public, kLocalIssuer for Internal and Ip, "" for Invalid.
  std::string issuer;
  /// One line, no trailing period, saying why this class; for Invalid also what to fix:
  /// "public DNS name", "IP address in 10.0.0.0/8: private", "has a port: remove ':8080'",
  /// "label 'a-' ends with a hyphen". Bytes below 0x20 and 0x7f appear as "\xNN".
  std::string reason;
};

/// Classifies `input` (any text: a host name, a U-label or A-label name, an IPv4 or IPv6 address,
/// with or without brackets). Steps:
///  1. Trim ASCII whitespace, lower-case ASCII, strip "[...]" around an IPv6 address.
///  2. An IPv4 dotted quad (inet_pton rules: no leading zeros, no shorthand) or an IPv6 address
///     (no zone) is class Ip; IPv4-mapped IPv6 is judged by its IPv4 address. Internal ranges:
///     0/8, 10/8, 127/8, 169.254/16, 172.16/12, 192.168/16, ::/128, ::1, fc00::/7, fe80::/10.
///  3. A name with non-ASCII characters is converted with libidn2: IDNA2008 non-transitional first
///     (so "straße.de" stays "xn--strae-oqa.de", the name browsers look up), then UTS #46
///     transitional, which admits names IDNA2008 disallows but browsers and curl still resolve
///     (emoji; the reason then says so). Rejected by both: Invalid, with libidn2's message.
///     Every "xn--" label must be a valid A-label: punycode whose decoding IDNA accepts.
///  4. The A-label form is checked against the rules in the file comment, then classed:
///     Internal for localhost, local, internal, home.arpa and names under them, single-label
///     names and a wildcard over one label ("*.com"); Public otherwise.
/// Never throws except std::bad_alloc.
NameQualification qualify_name(std::string_view input);

/// True when `name` is exactly an IPv4 dotted quad or an IPv6 address in text form (Go's
/// net.ParseIP as CertMagic uses it): no brackets, no zone, no port, no surrounding space.
bool is_ip_address(std::string_view name);

/// True when `name` (any form qualify_name accepts) can only get a certificate from a local CA
/// because of what it names: qualify_name classes it Internal, or it is an IP address in one of
/// the internal ranges. False for public names, public IPs and invalid names.
bool is_internal_name(std::string_view name);

/// True when qualify_name classes `name` Public: a valid DNS name, not internal, not an IP, with a
/// wildcard only as "*." followed by at least two labels ("*.example.com", not "*.com").
bool qualifies_for_public_cert(std::string_view name);

/// True when a certificate for `pattern` covers `name`, case-insensitively (ASCII): equal names
/// match, and "*.example.com" matches exactly one more label ("a.example.com"; not
/// "example.com", "a.b.example.com" or ".example.com"). No other use of '*' matches anything
/// but itself. Both arguments should be normalised (A-labels, no trailing dot); nothing is
/// converted here, so this is cheap enough for a certificate cache lookup.
bool match_wildcard(std::string_view name, std::string_view pattern);

}  // namespace acmetool::pki
