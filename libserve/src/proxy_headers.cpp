// reverse_proxy's header rules (issue 9): hop-by-hop removal, X-Forwarded-*, header_up and
// header_down, after Caddy's reverseproxy.go and headers/headers.go.
#include "acmetool/serve/proxy_headers.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <regex>

#include "acmetool/serve/error.h"
#include "ascii_internal.h"

namespace acmetool::serve {
namespace {

using caddyfile::HeaderOp;
using Expand = std::function<std::string(std::string_view)>;

std::string lowered(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), ascii_lower);
  return out;
}

// Inline: most names compared differ in length, which costs no call to find out.
inline bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && equal_ignoring_case(a, b);
}

// Caddy's hopHeaders: Go's list (RFC 9110 §7.6.1 plus the non-standard Proxy-Connection) and
// Alt-Svc, which describes the upstream's endpoints, not ours. By length first: most fields are
// told apart by their length alone, and the others by one or two comparisons.
bool is_hop_by_hop(std::string_view name) {
  switch (name.size()) {
    case 2: return iequals(name, "Te");
    case 7: return iequals(name, "Alt-Svc") || iequals(name, "Trailer") || iequals(name, "Upgrade");
    case 10: return iequals(name, "Connection") || iequals(name, "Keep-Alive");
    case 16: return iequals(name, "Proxy-Connection");
    case 17: return iequals(name, "Transfer-Encoding");
    case 18: return iequals(name, "Proxy-Authenticate");
    case 19: return iequals(name, "Proxy-Authorization");
    default: return false;
  }
}

// Calls `each` with every non-empty element of a comma-separated list value (RFC 9110 §5.6.1).
template <class F>
void for_each_element(std::string_view value, F each) {
  while (!value.empty()) {
    const std::size_t comma = std::min(value.find(','), value.size());
    if (const std::string_view element = trim_blanks(value.substr(0, comma)); !element.empty()) each(element);
    value.remove_prefix(std::min(comma + 1, value.size()));
  }
}

// Appends the non-empty elements of a comma-separated list value.
void add_elements(std::string_view value, std::vector<std::string>& elements) {
  for_each_element(value, [&elements](std::string_view element) { elements.emplace_back(element); });
}

// The non-empty elements of every `name` line's comma-separated list.
std::vector<std::string> list_elements(const HeaderFields& fields, std::string_view name) {
  std::vector<std::string> elements;
  for (const auto& [field, value] : fields) {
    if (iequals(field, name)) add_elements(value, elements);
  }
  return elements;
}

bool has_element(const HeaderFields& fields, std::string_view name, std::string_view element) {
  const std::vector<std::string> elements = list_elements(fields, name);
  return std::any_of(elements.begin(), elements.end(),
                     [&](const std::string& e) { return iequals(e, element); });
}

std::optional<std::string_view> first_value(const HeaderFields& fields, std::string_view name) {
  for (const auto& [field, value] : fields) {
    if (iequals(field, name)) return value;
  }
  return std::nullopt;
}

std::optional<std::string_view> last_value(const HeaderFields& fields, std::string_view name) {
  std::optional<std::string_view> last;
  for (const auto& [field, value] : fields) {
    if (iequals(field, name)) last = value;
  }
  return last;
}

void erase_field(HeaderFields& fields, std::string_view name) {
  fields.erase_if([&](const HeaderFields::Line& line) { return iequals(line.name, name); });
}

// Go's Header.Set: one line with `value`, where the first such line was, else at the end.
void set_field(HeaderFields& fields, std::string_view name, std::string_view value) {
  const auto first = std::find_if(fields.begin(), fields.end(), [&](const auto& f) { return iequals(f.name, name); });
  if (first == fields.end()) {
    fields.emplace_back(name, value);
    return;
  }
  const std::size_t at = first.index();
  fields.set_value(at, value);
  std::size_t i = 0;
  fields.erase_if([&](const HeaderFields::Line& line) { return i++ > at && iequals(line.name, name); });
}

// removeConnectionHeaders and hopHeaders. `keep_te_trailers`: requests tell the upstream that
// the client accepts trailers (golang/go#21096). The first `ours` fields are left alone.
void strip_hop_by_hop(HeaderFields& fields, bool keep_te_trailers, std::size_t ours = 0) {
  // One pass finds the hop-by-hop fields (most messages have one or none), what Connection names
  // and whether a Te offers trailers; a second one keeps the others, in order.
  std::uint64_t hop = 0;  // bit i: fields[i] is hop-by-hop (the first 64; later ones are asked again)
  bool te_trailers = false, te_named = false;
  std::vector<std::string> named;  // by Connection, but for its options and hop-by-hop names
  for (std::size_t i = ours; i < fields.size(); ++i) {
    const auto [name, value] = fields[i];
    if (!is_hop_by_hop(name)) continue;
    if (i < 64) hop |= std::uint64_t{1} << i;
    if (iequals(name, "Connection")) {
      for_each_element(value, [&](std::string_view element) {
        te_named = te_named || iequals(element, "Te");
        if (!iequals(element, "close") && !is_hop_by_hop(element)) named.emplace_back(element);
      });
    } else if (keep_te_trailers && iequals(name, "Te")) {
      for_each_element(value, [&](std::string_view offer) { te_trailers = te_trailers || iequals(offer, "trailers"); });
    }
  }
  if (hop == 0 && fields.size() <= 64) return;
  std::size_t i = 0;
  fields.erase_if([&](const HeaderFields::Line& line) {
    const std::size_t at = i++;
    if (at < ours) return false;
    return (at < 64 ? (hop >> at & 1) != 0 : is_hop_by_hop(line.name)) ||
           std::any_of(named.begin(), named.end(), [&](const std::string& n) { return iequals(n, line.name); });
  });
  // A Te that Connection named is gone, and with it the offer of trailers.
  if (te_trailers && !te_named) fields.emplace_back("Te", "trailers");
}

void keep_upgrade(HeaderFields& fields, const std::string& protocol) {
  if (protocol.empty()) return;
  set_field(fields, "Connection", "Upgrade");
  set_field(fields, "Upgrade", protocol);
}

// CR, LF and NUL are not allowed in a field line (RFC 9110 §5.5); a placeholder that decodes the
// path ("%0d%0a") must not split the message. Replaced with spaces, as the routes code does.
// One comparison for the usual character; CR (13) is the largest of the three.
bool is_unsafe(char c) { return static_cast<unsigned char>(c) <= '\r' && (c == '\r' || c == '\n' || c == '\0'); }
std::string made_safe(std::string_view text) {
  std::string safe(text);
  std::replace_if(safe.begin(), safe.end(), is_unsafe, ' ');
  return safe;
}
void make_fields_safe(HeaderFields& fields) {
  for (std::size_t i = 0; i < fields.size(); ++i) {
    const auto [name, value] = fields[i];
    const auto safe = [](std::string_view text) { return std::none_of(text.begin(), text.end(), is_unsafe); };
    if (safe(name) && safe(value)) continue;
    fields.replace(i, made_safe(name), made_safe(value));
  }
}

// RFC 9110 §5.1: a field name is a token. An expanded name that is not one is dropped, as Go's
// transport would refuse to send it.
bool is_token(std::string_view name) {
  constexpr std::string_view kSymbols = "!#$%&'*+-.^_`|~";
  return !name.empty() && std::all_of(name.begin(), name.end(), [&](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           kSymbols.find(c) != std::string_view::npos;
  });
}

std::string expanded(const Expand& expand, std::string_view text) {
  return expand ? expand(text) : std::string(text);
}

// headers.go's Delete patterns, case-insensitive: "*" all, "*x*" containing, "*x" suffix,
// "x*" prefix, else the exact name.
bool matches_pattern(std::string_view field, std::string_view pattern) {
  if (pattern == "*") return true;
  const std::string name = lowered(field);
  const std::string want = lowered(pattern);
  const bool lead = want.size() > 1 && want.front() == '*';
  const bool trail = want.size() > 1 && want.back() == '*';
  if (lead && trail) return name.find(want.substr(1, want.size() - 2)) != std::string::npos;
  if (lead) return name.ends_with(std::string_view(want).substr(1));
  if (trail) return name.starts_with(std::string_view(want).substr(0, want.size() - 1));
  return name == want;
}

std::regex compile(const std::string& pattern) {
  try {
    return std::regex(pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    throw Error("header replace: invalid regular expression '" + pattern + "': " + e.what());
  }
}

std::string replaced_in(std::string value, const HeaderOp& op, const Expand& expand) {
  const std::string replacement = expanded(expand, op.replacement);
  if (op.regexp) return std::regex_replace(value, compile(op.value), replacement);
  const std::string search = expanded(expand, op.value);
  if (search.empty()) return value;
  for (std::size_t at = value.find(search); at != std::string::npos;
       at = value.find(search, at + replacement.size())) {
    value.replace(at, search.size(), replacement);
  }
  return value;
}

void apply_op(HeaderFields& fields, const HeaderOp& op, const std::string& field,
              const Expand& expand) {
  switch (op.kind) {
    case HeaderOp::Kind::Add:
      fields.emplace_back(field, expanded(expand, op.value));
      break;
    case HeaderOp::Kind::Set:
      set_field(fields, field, expanded(expand, op.value));
      break;
    case HeaderOp::Kind::Delete:
      fields.erase_if([&](const HeaderFields::Line& line) { return matches_pattern(line.name, field); });
      break;
    case HeaderOp::Kind::Replace:
      for (std::size_t i = 0; i < fields.size(); ++i) {
        const auto [name, value] = fields[i];
        if (field == "*" || iequals(name, field)) fields.set_value(i, replaced_in(std::string(value), op, expand));
      }
      break;
    case HeaderOp::Kind::Default:
      if (!first_value(fields, field)) fields.emplace_back(field, expanded(expand, op.value));
      break;
  }
}

// headers.go's ApplyTo runs its operations grouped, whatever order they were written in:
// delete "*", add, set, delete, replace. Defaults (the `header` directive's "?") come last, as
// Caddy defers them until the response is written.
void apply_header_ops(HeaderFields& fields, const std::vector<HeaderOp>& ops,
                      const Expand& expand) {
  if (ops.empty()) return;
  using Kind = HeaderOp::Kind;
  const auto run = [&](Kind kind, bool star_delete) {
    for (const HeaderOp& op : ops) {
      if (op.kind != kind) continue;
      const std::string field = expanded(expand, op.field);
      if (kind == Kind::Delete && (field == "*") != star_delete) continue;
      if (is_token(field)) apply_op(fields, op, field, expand);
    }
  };
  run(Kind::Delete, true);
  run(Kind::Add, false);
  run(Kind::Set, false);
  run(Kind::Delete, false);
  run(Kind::Replace, false);
  run(Kind::Default, false);
}

struct IpAddress {
  std::array<std::uint8_t, 16> bytes{};
  bool v4 = false;
};

// A dotted quad as inet_pton takes it (four decimal parts of at most 255, no leading zeros),
// without copying it to a NUL-terminated buffer first: the X-Forwarded-For of every request.
bool parse_dotted_quad(std::string_view text, std::array<std::uint8_t, 4>& out) {
  for (std::size_t part = 0; part < 4; ++part) {
    if (part > 0) {
      if (text.empty() || text.front() != '.') return false;
      text.remove_prefix(1);
    }
    std::size_t digits = 0;
    unsigned value = 0;
    while (digits < text.size() && digits < 4 && text[digits] >= '0' && text[digits] <= '9') {
      value = value * 10 + static_cast<unsigned>(text[digits] - '0');
      ++digits;
    }
    if (digits == 0 || digits > 3 || value > 255 || (digits > 1 && text.front() == '0')) return false;
    out[part] = static_cast<std::uint8_t>(value);
    text.remove_prefix(digits);
  }
  return text.empty();
}

std::optional<IpAddress> parse_ip(std::string_view text) {
  if (std::array<std::uint8_t, 4> v4{}; parse_dotted_quad(text, v4)) {
    IpAddress ip;
    ip.v4 = true;
    ip.bytes[10] = ip.bytes[11] = 0xff;
    std::copy(v4.begin(), v4.end(), ip.bytes.begin() + 12);
    return ip;
  }
  if (text.find(':') == std::string_view::npos) return std::nullopt;
  std::array<char, INET6_ADDRSTRLEN + 1> z{};  // inet_pton wants it NUL-terminated; no address is longer
  if (text.size() >= z.size()) return std::nullopt;
  std::copy(text.begin(), text.end(), z.begin());
  IpAddress ip;
  if (inet_pton(AF_INET6, z.data(), ip.bytes.data()) == 1) return ip;
  return std::nullopt;
}

bool in_range(const Cidr& range, const std::array<std::uint8_t, 16>& address) {
  const int whole = range.prefix_bits / 8;
  if (!std::equal(address.begin(), address.begin() + whole, range.address.begin())) return false;
  const int rest = range.prefix_bits % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (address[whole] & mask) == (range.address[whole] & mask);
}

std::string_view without_zone(std::string_view ip) { return ip.substr(0, ip.find('%')); }

// X-Forwarded-For, X-Forwarded-Proto or X-Forwarded-Host (or another 15 to 17 letters long).
bool is_forwarded_field(std::string_view name) {
  return name.size() >= 15 && name.size() <= 17 && iequals(name.substr(0, 12), "X-Forwarded-");
}

// addForwardedHeaders: a trusted proxy's X-Forwarded-* are kept (For appended to), anyone
// else's are replaced so a client cannot spoof them.
void add_forwarded_fields(HeaderFields& fields, const ClientRequestFacts& client,
                          const std::vector<Cidr>& trusted_proxies) {
  if (client.remote_ip.empty()) {
    for (std::string_view name : {"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"}) {
      erase_field(fields, name);
    }
    return;
  }
  const std::string ip(without_zone(client.remote_ip));
  if (!parse_ip(ip))
    throw Error("proxying request: invalid client IP address '" + client.remote_ip + "'");
  const bool trusted = !trusted_proxies.empty() && contains(trusted_proxies, ip);
  // The usual request carries none of the three: they go at the end as they are.
  const bool any_prior =
      std::any_of(fields.begin(), fields.end(), [](const auto& field) { return is_forwarded_field(field.name); });
  if (!any_prior) {
    fields.emplace_back("X-Forwarded-For", ip);
    fields.emplace_back("X-Forwarded-Proto", client.tls ? "https" : "http");
    fields.emplace_back("X-Forwarded-Host", client.host);
    return;
  }

  std::string prior_for;
  for (const auto& [field, value] : fields) {
    if (iequals(field, "X-Forwarded-For")) (prior_for.empty() ? prior_for : prior_for.append(", ")).append(value);
  }
  set_field(fields, "X-Forwarded-For", trusted && !prior_for.empty() ? prior_for + ", " + ip : ip);

  const auto keep_trusted = [&](std::string_view name, std::string_view own) {
    const std::optional<std::string_view> prior = last_value(fields, name);
    set_field(fields, name, trusted && prior && !prior->empty() ? *prior : own);
  };
  keep_trusted("X-Forwarded-Proto", client.tls ? "https" : "http");
  keep_trusted("X-Forwarded-Host", client.host);
}

bool sets_host(const std::vector<HeaderOp>& ops) {
  return std::any_of(ops.begin(), ops.end(), [](const HeaderOp& op) {
    return op.kind == HeaderOp::Kind::Set && iequals(op.field, "Host");
  });
}

}  // namespace

std::optional<Cidr> parse_cidr(std::string_view text) {
  const std::size_t slash = text.find('/');
  const std::optional<IpAddress> ip = parse_ip(text.substr(0, slash));
  if (!ip) return std::nullopt;
  Cidr range{.address = ip->bytes, .prefix_bits = 128};
  if (slash == std::string_view::npos) return range;
  const std::string_view bits = text.substr(slash + 1);
  if (bits.empty() || bits.size() > 3 ||
      !std::all_of(bits.begin(), bits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  const int length = std::stoi(std::string(bits));
  if (length > (ip->v4 ? 32 : 128)) return std::nullopt;
  range.prefix_bits = ip->v4 ? length + 96 : length;
  return range;
}

std::vector<Cidr> parse_trusted_proxies(const std::vector<std::string>& texts) {
  std::vector<Cidr> ranges;
  for (const std::string& text : texts) {
    const std::optional<Cidr> range = parse_cidr(text);
    if (!range) throw Error("trusted_proxies: invalid IP address or CIDR range '" + text + "'");
    ranges.push_back(*range);
  }
  return ranges;
}

bool contains(const std::vector<Cidr>& ranges, std::string_view ip) {
  const std::optional<IpAddress> address = parse_ip(without_zone(ip));
  return address && std::any_of(ranges.begin(), ranges.end(),
                                [&](const Cidr& range) { return in_range(range, address->bytes); });
}

ProxyHeaderOptions proxy_header_options(const caddyfile::ReverseProxyHandler& handler) {
  ProxyHeaderOptions options;
  options.trusted_proxies = parse_trusted_proxies(handler.trusted_proxies);
  options.header_up = handler.header_up;
  options.header_down = handler.header_down;
  for (const auto* ops : {&options.header_up, &options.header_down}) {
    for (const HeaderOp& op : *ops) {
      if (op.kind == HeaderOp::Kind::Replace && op.regexp) compile(op.value);
    }
  }
  options.upstream_tls = handler.transport.tls;
  return options;
}

bool relayable_trailer(std::string_view name) {
  // Go's badTrailer (net/http/server.go), with the hop-by-hop fields.
  static constexpr std::string_view kRefused[] = {
      "Authorization", "Cache-Control",  "Content-Encoding", "Content-Length", "Content-Range", "Content-Type",
      "Expect",        "Host",           "Max-Forwards",     "Pragma",         "Range",         "Realm",
      "Www-Authenticate"};
  const auto named = [&](std::string_view refused) { return iequals(name, refused); };
  return !name.empty() && std::none_of(std::begin(kRefused), std::end(kRefused), named) && !is_hop_by_hop(name);
}

std::string upgrade_protocol(const HeaderFields& fields) {
  if (!has_element(fields, "Connection", "upgrade")) return "";
  const std::optional<std::string_view> upgrade = first_value(fields, "Upgrade");
  return upgrade ? lowered(*upgrade) : "";
}

HeaderFields upstream_request_headers(const HeaderFields& client_fields,
                                      const ClientRequestFacts& client,
                                      const ProxyHeaderOptions& options) {
  return upstream_request_headers(client_fields, client, options, options.upstream_host, options.expand);
}

HeaderFields upstream_request_headers(const HeaderFields& client_fields, const ClientRequestFacts& client,
                                      const ProxyHeaderOptions& options, const std::string& upstream_host,
                                      const std::function<std::string(std::string_view)>& expand) {
  HeaderFields fields;
  // With X-Forwarded-For, -Proto, -Host and Host (96: the names and an IP address).
  fields.reserve(client_fields.size() + 4,
                 client_fields.text().size() + client.host.size() + upstream_host.size() + 96);
  const bool host_of_upstream = options.upstream_tls && !sets_host(options.header_up);
  // Without rules the Host line goes first at once, and the client's fields can name it in
  // Connection without removing it (Go keeps the Host apart from the header map).
  const bool rules = !options.header_up.empty();
  if (!rules) fields.emplace_back("Host", host_of_upstream || client.host.empty() ? upstream_host : client.host);
  const std::size_t ours = fields.size();
  for (const auto& [name, value] : client_fields) {
    if (!iequals(name, "Host")) fields.emplace_back(name, value);
  }
  const std::string upgrade = upgrade_protocol(fields);
  strip_hop_by_hop(fields, true, ours);
  keep_upgrade(fields, upgrade);
  add_forwarded_fields(fields, client, options.trusted_proxies);
  if (!rules) return fields;

  // ApplyToRequest: while header_up runs, the request's Host is the last Host line.
  fields.emplace_back("Host", host_of_upstream ? upstream_host : client.host);
  apply_header_ops(fields, options.header_up, expand);
  const std::optional<std::string_view> last_host = last_value(fields, "Host");
  const std::string_view host = last_host && !last_host->empty() ? *last_host : upstream_host;
  erase_field(fields, "Host");  // the text stays: `host` is still valid
  fields.insert(0, "Host", host);
  // Only header_up's placeholders can bring CR, LF or NUL: the client's fields passed Beast's or
  // nghttp2's checks, which refuse them, and the X-Forwarded-* values are ours.
  if (!options.header_up.empty()) make_fields_safe(fields);
  return fields;
}

bool write_upstream_request_fields(std::string& out, const HeaderFields& client_fields,
                                   const ClientRequestFacts& client, const ProxyHeaderOptions& rules,
                                   const std::string& upstream_host) {
  if (!rules.header_up.empty() || client.remote_ip.empty()) return false;
  // A first look: whether the request takes this path, and which fields its Connection lines
  // name (strip_hop_by_hop's rules: not "close", not a hop-by-hop field, which goes anyway).
  std::array<std::string_view, 8> named;
  std::size_t named_count = 0;
  bool too_many_named = false;
  std::size_t size = 0;
  for (const auto& [name, value] : client_fields) {
    if (name.size() + 2 > 0xffff || value.size() + 2 > 0xffff) return false;  // request_head refuses them
    size += name.size() + value.size() + 4;
    switch (name.size()) {
      case 2:
      case 7:
        if (iequals(name, "Te") || iequals(name, "Upgrade")) return false;
        break;
      case 10:
        if (iequals(name, "Connection")) {
          for_each_element(value, [&](std::string_view element) {
            if (iequals(element, "close") || is_hop_by_hop(element)) return;
            if (named_count == named.size()) too_many_named = true;
            else named[named_count++] = element;
          });
        }
        break;
    }
    if (is_forwarded_field(name)) return false;
  }
  if (too_many_named) return false;
  const std::string_view ip = without_zone(client.remote_ip);
  if (!parse_ip(ip)) return false;  // upstream_request_headers says why

  const std::string& host = rules.upstream_tls || client.host.empty() ? upstream_host : client.host;
  // Sized for the most it can take, written in place, then cut to what was written.
  const std::size_t at = out.size();
  out.resize(at + size + host.size() + ip.size() + client.host.size() + 96);  // 96: the names, ": ", CRLFs
  char* p = out.data() + at;
  const auto line = [&p](std::string_view name, std::string_view value) {
    std::memcpy(p, name.data(), name.size());
    p += name.size();
    *p++ = ':';
    *p++ = ' ';
    std::memcpy(p, value.data(), value.size());
    p += value.size();
    *p++ = '\r';
    *p++ = '\n';
  };
  line("Host", host);
  for (const auto& [name, value] : client_fields) {
    if (iequals(name, "Host") || is_hop_by_hop(name) || iequals(name, "Content-Length")) continue;
    const auto is_name = [name = name](std::string_view n) { return iequals(n, name); };
    if (std::any_of(named.begin(), named.begin() + static_cast<std::ptrdiff_t>(named_count), is_name)) continue;
    line(name, trim_blanks(value));
  }
  line("X-Forwarded-For", ip);
  line("X-Forwarded-Proto", client.tls ? "https" : "http");
  line("X-Forwarded-Host", client.host);
  out.resize(static_cast<std::size_t>(p - out.data()));
  return true;
}

void apply_response_headers(HeaderFields& upstream_response, int status,
                            const ProxyHeaderOptions& options) {
  apply_response_headers(upstream_response, status, options, options.expand);
}

void apply_response_headers(HeaderFields& upstream_response, int status, const ProxyHeaderOptions& options,
                            const std::function<std::string(std::string_view)>& expand) {
  const std::string upgrade = status == 101 ? upgrade_protocol(upstream_response) : "";
  strip_hop_by_hop(upstream_response, false);
  keep_upgrade(upstream_response, upgrade);
  if (options.header_down.empty()) return;  // the upstream's own fields passed our parser's checks
  apply_header_ops(upstream_response, options.header_down, expand);
  make_fields_safe(upstream_response);
}

}  // namespace acmetool::serve
