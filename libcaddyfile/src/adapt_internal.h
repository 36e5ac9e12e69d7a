// Private pieces of the Caddyfile adapter, shared by adapt*.cpp. Every parse_* function takes a
// Dispenser over one segment (directive or option line plus its block), throws ParseError at the
// offending token, and consumes exactly its segment.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "acmetool/caddyfile/config.h"
#include "acmetool/caddyfile/dispenser.h"
#include "acmetool/caddyfile/parse.h"

namespace acmetool::caddyfile::detail {

// ---- suggest.cpp ----

/// Optimal-string-alignment distance (insertions, deletions, substitutions, adjacent swaps).
std::size_t edit_distance(std::string_view a, std::string_view b);
/// The candidate closest to `word`, if within max(1, |word|/3) edits.
std::optional<std::string_view> closest_match(std::string_view word, std::span<const std::string_view> candidates);
/// " (did you mean 'x'?)" for the closest candidate, "" when none is close.
std::string did_you_mean(std::string_view word, std::span<const std::string_view> candidates);

// ---- adapt.cpp: argument helpers ----

/// Moves to the next argument on the line and returns it; arg_error() when there is none.
const std::string& require_arg(Dispenser& d);
/// arg_error() when another argument follows on the line.
void expect_no_more_args(Dispenser& d);
/// The current token as a duration (Go syntax plus "d"); "<what>: invalid duration 'x'".
std::chrono::nanoseconds duration_value(const Dispenser& d, std::string_view what);
/// The current token as an integer in [min, max]; "<what>: invalid number 'x'" or "... out of range".
int int_value(const Dispenser& d, std::string_view what, long long min, long long max);
/// "unrecognized subdirective: x (did you mean 'y'?)" located at the current token, with
/// "<context>: " in front ("reverse_proxy: unrecognized ...").
ParseError unknown_subdirective(const Dispenser& d, std::string_view context, std::span<const std::string_view> known);
/// A Caddy feature acmetool reads but cannot run yet (`header match`, `uri query`, ...). Thrown
/// while parsing a directive; the directive's caller turns it into a warning, keeping the
/// directive as an UnsupportedHandler, so that a valid Caddyfile still validates.
class UnsupportedError : public ParseError {
 public:
  UnsupportedError(const Token& at, std::string feature)
      : ParseError(at.file_name(), at.line, 0, feature + " is not supported by acmetool yet"),
        at_(at),
        feature_(std::move(feature)) {}
  const Token& at() const noexcept { return at_; }
  const std::string& feature() const noexcept { return feature_; }

 private:
  Token at_;
  std::string feature_;
};

/// Appends a warning located at `at`.
void warn(std::vector<Warning>& warnings, const Token& at, std::string message);
/// Remaining arguments with "private_ranges" replaced by the private IPv4 and IPv6 ranges.
std::vector<std::string> ip_ranges(Dispenser& d);

// ---- adapt_global.cpp ----

/// Reads the global options block (keys empty).
GlobalOptions adapt_global_options(const ServerBlock& block, std::vector<Warning>& warnings);

// ---- adapt_tls.cpp ----

/// After `dns`/`acme_dns`: reads "<provider> [args...] [{ key args... }]".
DnsProvider parse_dns_provider(Dispenser& d);
/// After `issuer`/`cert_issuer`: reads "acme|internal [args] [{ ... }]".
Issuer parse_issuer(Dispenser& d);
/// The whole `tls` segment, cursor before its first token.
TlsPolicy parse_tls(Dispenser& d);
/// certmagic.SubjectQualifiesForCert.
bool subject_qualifies_for_cert(std::string_view subject);
/// certmagic.SubjectIsInternal (localhost, *.local, *.internal, *.home.arpa, private IPs).
bool subject_is_internal(std::string_view subject);
/// Fills cert_source, automatic_https, redirect_http and on_demand of every https address.
/// Throws for a managed name that cannot have a certificate.
void assign_cert_sources(Site& site, const GlobalOptions& global, const std::vector<Token>& keys);

// ---- adapt_site.cpp / adapt_directives.cpp: routes ----

using MatcherDefs = std::map<std::string, std::shared_ptr<const MatcherSet>>;

/// State that lives for one adapt() call.
struct AdaptContext {
  std::vector<Warning>& warnings;
  int next_group = 0;
  /// Named routes used by `invoke`, with the token that used them (checked at the end).
  std::vector<std::pair<std::string, Token>> invoked;
};

/// A site block's directives (tls, bind, log, matchers, routes); addresses are filled in later.
Site adapt_site(const ServerBlock& block, AdaptContext& ctx);
/// Parses a `@name ...` definition segment into `defs`. Throws on redefinition.
void parse_matcher_definition(const Segment& segment, MatcherDefs& defs);
/// One handler directive segment (its first token is a known handler directive) as a Route.
Route parse_route(const Segment& segment, const MatcherDefs& defs, AdaptContext& ctx);
/// The block of a handle/route/named route: cursor on the directive name (matcher removed).
/// Nested matcher definitions are scoped to the block. `sorted` applies the directive order.
std::vector<Route> parse_nested_routes(Dispenser& d, const MatcherDefs& defs, AdaptContext& ctx, bool sorted);
/// Sorts (when `sorted`) by Caddy's directive order and path specificity, then groups
/// handle/handle_path and root routes when a list has several.
void order_routes(std::vector<Route>& routes, bool sorted, AdaptContext& ctx);

// ---- adapt_directives.cpp ----

enum class DirectiveKind {
  Handler,      ///< becomes a Route; takes an optional matcher token
  Site,         ///< tls, bind, log: site settings, not routes
  Unsupported,  ///< a Caddy directive acmetool does not implement
};
/// The kind of `name`, or nullopt for a name Caddy does not know either.
std::optional<DirectiveKind> directive_kind(std::string_view name);
/// Position in Caddy's default directive order (handle_path sorts as handle); -1 when unordered.
int directive_position(std::string_view name);
/// Every directive name Caddy knows (for "did you mean" and site-key checks).
std::span<const std::string_view> known_directives();
/// Parses one handler, cursor before the directive name of a segment without its matcher token.
Handler parse_handler(std::string_view directive, Dispenser& d, const MatcherDefs& defs, AdaptContext& ctx);
/// Parses `handle_errors`.
ErrorRoutes parse_handle_errors(Dispenser& d, const MatcherDefs& defs, AdaptContext& ctx);
/// Parses `bind` into the site.
void parse_bind(Dispenser& d, Site& site);
/// Parses `log`.
LogConfig parse_log(Dispenser& d);
/// "+Field value", "-Field", "?Field value", ">Field value", "Field find replace" -> HeaderOp.
HeaderOp header_op(const Dispenser& d, std::string field, const std::vector<std::string>& args, bool response);
/// Expands "{host}", "{header.X}", ... to Caddy's full placeholder names in place.
void expand_placeholder_shorthands(std::string& text);

// ---- adapt_proxy.cpp ----

/// `reverse_proxy`; handle_response blocks are parsed as nested routes with the site's matchers.
ReverseProxyHandler parse_reverse_proxy(Dispenser& d, const MatcherDefs& defs, AdaptContext& ctx);
/// A response matcher, cursor on its name (`@name`, `match`): the rest of the line and/or a block
/// of `status <code|Nxx...>` and `header <field> [<value>]`. Errors start with "<context>: ".
ResponseMatcher parse_response_matcher(Dispenser& d, std::string_view context);

}  // namespace acmetool::caddyfile::detail
