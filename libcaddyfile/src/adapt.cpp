// adapt(): the passes over the server blocks, in upstream's order (httpcaddyfile/httptype.go):
// global options, site keys, site directives, site addresses and listeners, then certificates.
#include "acmetool/caddyfile/adapt.h"

#include <algorithm>
#include <charconv>
#include <unordered_map>

#include "acmetool/caddyfile/duration.h"
#include "acmetool/caddyfile/format.h"
#include "adapt_internal.h"

namespace acmetool::caddyfile {
namespace detail {

const std::string& require_arg(Dispenser& d) {
  if (!d.next_arg()) throw d.arg_error();
  return d.val();
}

void expect_no_more_args(Dispenser& d) {
  if (d.next_arg()) throw d.arg_error();
}

std::chrono::nanoseconds duration_value(const Dispenser& d, std::string_view what) {
  const auto parsed = parse_duration(d.val());
  if (!parsed) throw d.error(std::string(what) + ": invalid duration '" + d.val() + "'");
  return *parsed;
}

int int_value(const Dispenser& d, std::string_view what, long long min, long long max) {
  const std::string& text = d.val();
  long long value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc::result_out_of_range) {
    throw d.error(std::string(what) + ": " + text + " is out of range (" + std::to_string(min) + ".." +
                  std::to_string(max) + ")");
  }
  if (ec != std::errc() || end != text.data() + text.size()) {
    throw d.error(std::string(what) + ": invalid number '" + text + "'");
  }
  if (value < min || value > max) {
    throw d.error(std::string(what) + ": " + text + " is out of range (" + std::to_string(min) + ".." +
                  std::to_string(max) + ")");
  }
  return static_cast<int>(value);
}

ParseError unknown_subdirective(const Dispenser& d, std::string_view context,
                                std::span<const std::string_view> known) {
  return d.error(std::string(context) + ": unrecognized subdirective: " + d.val() + did_you_mean(d.val(), known));
}

void warn(std::vector<Warning>& warnings, const Token& at, std::string message) {
  warnings.push_back({at.file_name() + ":" + std::to_string(at.line), std::move(message)});
}

std::vector<std::string> ip_ranges(Dispenser& d) {
  // caddyhttp.PrivateRangesCIDR().
  static constexpr std::string_view kPrivate[] = {"192.168.0.0/16", "172.16.0.0/12", "10.0.0.0/8",
                                                   "127.0.0.1/8",    "fd00::/8",      "::1"};
  std::vector<std::string> out;
  while (d.next_arg()) {
    if (d.val() == "private_ranges") {
      out.insert(out.end(), std::begin(kPrivate), std::end(kPrivate));
    } else {
      out.push_back(d.val());
    }
  }
  return out;
}

}  // namespace detail

namespace {

using detail::AdaptContext;

// Site keys that are matchers or directives mean the user left out a site block's braces or
// put a directive at the top level.
void check_site_keys(const ServerBlock& block) {
  for (std::size_t i = 0; i < block.keys.size(); ++i) {
    const Token& key = block.keys[i];
    if (i == 0 && key.text.starts_with("@")) {
      throw error_at(key, "request matchers may not be defined globally, they must be in a site block; found " +
                              key.text);
    }
    if (detail::directive_kind(key.text)) {
      throw error_at(key, "parsed '" + key.text +
                              "' as a site address, but it is a known directive; directives must appear in a site block");
    }
  }
}

std::vector<Route> adapt_named_route(const ServerBlock& block, AdaptContext& ctx) {
  // The segment holds the block with its braces; put the name in front so it reads like a
  // `route` directive.
  std::vector<Token> tokens{block.keys.at(0)};
  for (const Segment& segment : block.segments) tokens.insert(tokens.end(), segment.begin(), segment.end());
  for (std::size_t i = 1; i < tokens.size(); ++i) {
    if (tokens[i].text.find('{') != std::string::npos) detail::expand_placeholder_shorthands(tokens[i].text);
  }
  Dispenser d(std::move(tokens));
  d.next();
  return detail::parse_nested_routes(d, {}, ctx, true);
}

// Parses and normalises every key; implies scheme, port and listeners before the listener pass.
void adapt_addresses(Site& site, const ServerBlock& block, const GlobalOptions& global, std::vector<Warning>& warnings) {
  const PortConfig ports{global.effective_http_port(), global.effective_https_port()};
  const std::vector<std::string> default_hosts{""};
  const std::vector<std::string>& hosts =
      !site.bind.empty() ? site.bind : (!global.default_bind.empty() ? global.default_bind : default_hosts);
  for (const Token& key : block.keys) {
    SiteAddress out;
    try {
      out.address = normalize_address(parse_address(key.text));
      const ImpliedAddress implied = imply_address(out.address, ports);
      out.scheme = implied.scheme;
      out.port = implied.port;
      out.host_matcher = implied.host_matcher;
    } catch (const AddressError& e) {
      throw error_at(key, "invalid site address '" + key.text + "': " + e.what());
    }
    if (!out.address.path.empty()) {
      detail::warn(warnings, key, "Using a path in a site address is deprecated; please use the 'handle' directive instead");
    }
    if (out.address.host == "0.0.0.0" || out.address.host == "::") {
      detail::warn(warnings, key,
                   "Site block has an unspecified IP address which only matches requests having that Host header; you "
                   "probably want the 'bind' directive to configure the socket");
    }
    const std::string port = std::to_string(out.port);
    for (std::string host : hosts) {
      if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
      const std::size_t slash = host.find('/');
      if (slash == std::string::npos) {
        out.listeners.push_back(join_host_port(host, port));
      } else if (host.starts_with("unix")) {
        out.listeners.push_back(host);  // a socket has no port
      } else {
        out.listeners.push_back(host.substr(0, slash + 1) + join_host_port(host.substr(slash + 1), port));
      }
    }
    out.file = key.file_name();
    out.line = key.line;
    site.addresses.push_back(std::move(out));
  }
}

// What one listener has seen so far, for upstream's detectConflictingSchemes.
struct ListenerState {
  bool has_tls_directive = false;
  bool strong_http = false;  // http:// or the HTTP port
  bool http = false;         // also hostless addresses on other ports
  bool https = false;
  bool undecided = false;    // a host on a non-standard port without a scheme
};

enum class SchemeClass { StrongHttp, Http, Https, Undecided };

SchemeClass classify(const SiteAddress& a, bool tls_on_listener, const GlobalOptions& global) {
  if (a.address.scheme == "http" || a.port == global.effective_http_port()) return SchemeClass::StrongHttp;
  if (a.address.scheme == "https" || a.port == global.effective_https_port() || tls_on_listener) {
    return SchemeClass::Https;
  }
  if (a.address.host.empty()) return SchemeClass::Http;
  return SchemeClass::Undecided;
}

// A listener serves HTTP or HTTPS, never both (upstream detectConflictingSchemes); the scheme
// of each address becomes its listener's.
void resolve_listeners(std::vector<Site>& sites, const std::vector<const ServerBlock*>& blocks,
                       const GlobalOptions& global) {
  std::unordered_map<std::string, ListenerState> listeners;
  for (const Site& site : sites) {
    for (const SiteAddress& a : site.addresses) {
      for (const std::string& l : a.listeners) listeners[l].has_tls_directive |= site.tls.has_value();
    }
  }
  for (std::size_t s = 0; s < sites.size(); ++s) {
    for (std::size_t k = 0; k < sites[s].addresses.size(); ++k) {
      const SiteAddress& a = sites[s].addresses[k];
      const Token& key = blocks[s]->keys[k];
      for (const std::string& l : a.listeners) {
        ListenerState& state = listeners[l];
        const SchemeClass c = classify(a, state.has_tls_directive, global);
        const std::string server = "server listening on [" + l + "]";
        if (c == SchemeClass::StrongHttp && state.has_tls_directive) {
          throw error_at(key, server + " is HTTP, but attempts to configure TLS connection policies");
        }
        if ((c == SchemeClass::StrongHttp || c == SchemeClass::Http) && state.https) {
          std::string message = server + " is configured for HTTPS and cannot natively multiplex HTTP and HTTPS: " +
                                a.address.original;
          if (a.address.scheme.empty() && a.address.host.empty()) message += " (try specifying https:// in the address)";
          throw error_at(key, message);
        }
        if (c == SchemeClass::Https && state.http) {
          throw error_at(key, server + " is configured for HTTP and cannot natively multiplex HTTP and HTTPS: " +
                                  a.address.original);
        }
        state.strong_http |= c == SchemeClass::StrongHttp;
        state.http |= c == SchemeClass::StrongHttp || c == SchemeClass::Http;
        state.https |= c == SchemeClass::Https;
        state.undecided |= c == SchemeClass::Undecided;
      }
    }
  }
  for (Site& site : sites) {
    for (SiteAddress& a : site.addresses) {
      if (a.listeners.empty()) continue;
      const ListenerState& state = listeners[a.listeners.front()];
      a.scheme = !state.strong_http && (state.https || state.undecided) ? "https" : "http";
    }
  }
}

// The same host and path on the same listener in two sites: Caddy cannot tell which one serves.
void check_ambiguous_sites(const std::vector<Site>& sites, const std::vector<const ServerBlock*>& blocks) {
  std::unordered_map<std::string, std::pair<std::size_t, const Token*>> seen;
  for (std::size_t s = 0; s < sites.size(); ++s) {
    for (std::size_t k = 0; k < sites[s].addresses.size(); ++k) {
      const SiteAddress& a = sites[s].addresses[k];
      const Token& key = blocks[s]->keys[k];
      for (const std::string& l : a.listeners) {
        const std::string id = l + '\x1f' + a.address.host + '\x1f' + a.address.path;
        const auto [it, inserted] = seen.try_emplace(id, s, &key);
        if (!inserted && it->second.first != s) {
          const Token& other = *it->second.second;
          throw error_at(key, "ambiguous site definition: " + key.text + " (also defined at " + other.file_name() +
                                  ":" + std::to_string(other.line) + ")");
        }
      }
    }
  }
}

}  // namespace

Config adapt(const ParseResult& parsed, std::vector<Warning>& warnings) {
  Config config;
  AdaptContext ctx{warnings};
  std::size_t first = 0;
  const std::vector<ServerBlock>& blocks = parsed.blocks;
  if (!blocks.empty() && blocks[0].keys.empty() && !blocks[0].is_named_route) {
    config.global = detail::adapt_global_options(blocks[0], warnings);
    first = 1;
  }

  std::vector<const ServerBlock*> site_blocks;
  for (std::size_t i = first; i < blocks.size(); ++i) {
    const ServerBlock& block = blocks[i];
    if (block.is_named_route) continue;
    if (block.keys.empty()) {
      const std::string message = "server block without any key is global configuration, and if used, it must be first";
      if (!block.segments.empty() && !block.segments[0].empty()) throw error_at(block.segments[0][0], message);
      throw ParseError("Caddyfile", 0, 0, message);
    }
    check_site_keys(block);
    site_blocks.push_back(&block);
  }

  for (std::size_t i = first; i < blocks.size(); ++i) {
    if (blocks[i].is_named_route) config.named_routes[blocks[i].keys.at(0).text] = adapt_named_route(blocks[i], ctx);
  }
  config.sites.reserve(site_blocks.size());
  for (const ServerBlock* block : site_blocks) config.sites.push_back(detail::adapt_site(*block, ctx));
  for (const auto& [name, at] : ctx.invoked) {
    if (!config.named_routes.contains(name)) {
      throw error_at(at, "cannot invoke named route '" + name + "', which was not defined");
    }
  }

  for (std::size_t s = 0; s < site_blocks.size(); ++s) adapt_addresses(config.sites[s], *site_blocks[s], config.global, warnings);
  resolve_listeners(config.sites, site_blocks, config.global);
  check_ambiguous_sites(config.sites, site_blocks);
  for (std::size_t s = 0; s < site_blocks.size(); ++s) {
    detail::assign_cert_sources(config.sites[s], config.global, site_blocks[s]->keys);
  }
  return config;
}

Config adapt_file(const std::filesystem::path& path, const ParseOptions& options, std::vector<Warning>& warnings) {
  const std::string text = read_caddyfile(path);
  ParseResult parsed = parse(text, path.string(), options);
  // Like `caddy adapt`: a hint, never an error.
  if (const std::size_t line = unformatted_line(text)) {
    warnings.push_back({path.string() + ":" + std::to_string(line),
                        "Caddyfile input is not formatted; run 'acmetool fmt --overwrite " + path.string() +
                            "' to fix inconsistencies"});
  }
  warnings.insert(warnings.end(), parsed.warnings.begin(), parsed.warnings.end());
  return adapt(parsed, warnings);
}

}  // namespace acmetool::caddyfile
