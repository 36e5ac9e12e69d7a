// A site block's body: named matchers, the directives that configure the site (tls, bind, log)
// and the handler routes, sorted by Caddy's directive order and grouped as upstream's
// buildSubroute does.
#include <algorithm>

#include "adapt_internal.h"

namespace acmetool::caddyfile::detail {
namespace {

constexpr std::string_view kMatcherTypes[] = {"path",     "host",      "method",    "header",    "not",
                                              "query",    "protocol",  "remote_ip", "client_ip", "expression"};
constexpr std::string_view kUnsupportedMatchers[] = {"path_regexp", "header_regexp", "file", "vars", "vars_regexp", "tls"};

MatcherSet parse_matcher_set(Dispenser& d);

// Each matcher reads the concatenation of its segments ("path /a path /b"), cursor before the
// first token; every segment starts with the matcher's name.
void no_block(Dispenser& d, std::string_view type) {
  if (d.next_block(d.nesting())) {
    throw d.error("malformed " + std::string(type) + " matcher: blocks are not supported");
  }
}

void list_matcher(Dispenser& d, std::string_view type, std::vector<std::string>& out) {
  while (d.next()) {
    if (!d.next_arg()) throw d.arg_error();
    do {
      out.push_back(d.val());
    } while (d.next_arg());
    no_block(d, type);
  }
}

void header_matcher(Dispenser& d, MatcherSet& set) {
  while (d.next()) {
    if (!d.next_arg()) throw d.error("malformed header matcher: expected field");
    std::string field = d.val();
    const bool absent = field.starts_with('!');
    if (absent) {
      if (field.size() == 1) throw d.error("malformed header matcher: must have field name following ! character");
      field.erase(0, 1);
      if (d.next_arg()) throw d.error("malformed header matcher: null matching headers cannot have a field value");
    } else if (!d.next_arg()) {
      throw d.error("malformed header matcher: expected both field and value");
    }
    auto it = std::find_if(set.header.begin(), set.header.end(), [&](const auto& h) { return h.first == field; });
    if (it == set.header.end()) it = set.header.insert(set.header.end(), {field, {}});
    if (!absent) it->second.push_back(d.val());
    expect_no_more_args(d);
    no_block(d, "header");
  }
}

void query_matcher(Dispenser& d, MatcherSet& set) {
  while (d.next()) {
    while (d.next_arg()) {
      const std::size_t eq = d.val().find('=');
      if (eq == std::string::npos) {
        throw d.error("malformed query matcher token: " + d.val() + "; must be in param=val format");
      }
      const std::string key = d.val().substr(0, eq);
      auto it = std::find_if(set.query.begin(), set.query.end(), [&](const auto& q) { return q.first == key; });
      if (it == set.query.end()) it = set.query.insert(set.query.end(), {key, {}});
      it->second.push_back(d.val().substr(eq + 1));
    }
    no_block(d, "query");
  }
}

void ip_matcher(Dispenser& d, std::string_view type, std::vector<std::string>& out) {
  while (d.next()) {
    std::vector<std::string> ranges = ip_ranges(d);
    if (ranges.empty()) throw d.arg_error();
    for (const std::string& r : ranges) {
      if (r == "forwarded") throw d.error("the 'forwarded' option is no longer supported; use the 'client_ip' matcher instead");
    }
    out.insert(out.end(), ranges.begin(), ranges.end());
    no_block(d, type);
  }
}

void not_matcher(Dispenser& d, MatcherSet& set) {
  while (d.next()) set.not_.push_back(parse_matcher_set(d));
}

void apply_matcher(const std::string& type, std::vector<Token> tokens, MatcherSet& set) {
  Dispenser d(std::move(tokens));
  if (type == "path") {
    list_matcher(d, type, set.path);
  } else if (type == "host") {
    list_matcher(d, type, set.host);
  } else if (type == "method") {
    list_matcher(d, type, set.method);
    for (std::string& m : set.method) {
      for (char& c : m) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
    }
  } else if (type == "protocol") {
    list_matcher(d, type, set.protocol);
  } else if (type == "header") {
    header_matcher(d, set);
  } else if (type == "query") {
    query_matcher(d, set);
  } else if (type == "remote_ip") {
    ip_matcher(d, type, set.remote_ip);
  } else if (type == "client_ip") {
    ip_matcher(d, type, set.client_ip);
  } else if (type == "expression") {
    while (d.next()) {
      std::string expression;
      for (const std::string& part : d.remaining_args()) expression += (expression.empty() ? "" : " ") + part;
      if (expression.empty()) throw d.arg_error();
      set.expression.push_back(std::move(expression));
      no_block(d, type);
    }
  } else {
    not_matcher(d, set);
  }
}

// The matchers of one set, cursor on the token before them (a "@name" or "not"): on the same
// line ("@api path /api/*") or in a block, one matcher per line. Segments of the same matcher
// type are concatenated, as upstream does, so "path /a" twice means "path /a /b".
MatcherSet parse_matcher_set(Dispenser& d) {
  std::vector<std::pair<std::string, std::vector<Token>>> by_type;
  std::vector<std::string> unsupported;
  for (int nesting = d.nesting(); d.next_arg() || d.next_block(nesting);) {
    const std::string type = d.val();
    if (std::find(std::begin(kMatcherTypes), std::end(kMatcherTypes), type) == std::end(kMatcherTypes)) {
      if (std::find(std::begin(kUnsupportedMatchers), std::end(kUnsupportedMatchers), type) !=
          std::end(kUnsupportedMatchers)) {
        std::string written;
        const Dispenser segment = d.next_segment();
        for (const Token& t : segment.tokens()) written += (written.empty() ? "" : " ") + t.text;
        unsupported.push_back(std::move(written));
        continue;
      }
      throw d.error("unrecognized matcher type: " + type + did_you_mean(type, kMatcherTypes));
    }
    std::vector<Token> tokens = d.next_segment().tokens();
    auto it = std::find_if(by_type.begin(), by_type.end(), [&](const auto& t) { return t.first == type; });
    if (it == by_type.end()) it = by_type.insert(by_type.end(), {type, {}});
    it->second.insert(it->second.end(), tokens.begin(), tokens.end());
  }
  MatcherSet set;
  for (auto& [type, tokens] : by_type) apply_matcher(type, std::move(tokens), set);
  set.unsupported = std::move(unsupported);
  return set;
}

// The unsupported matchers of a set, including those inside its `not` blocks.
static void collect_unsupported(const MatcherSet& set, std::vector<std::string>& out) {
  out.insert(out.end(), set.unsupported.begin(), set.unsupported.end());
  for (const MatcherSet& inner : set.not_) collect_unsupported(inner, out);
}

bool is_matcher_token(const std::string& text) { return text == "*" || text.starts_with('/') || text.starts_with('@'); }

std::vector<std::string_view> names_of(const MatcherDefs& defs) {
  std::vector<std::string_view> names;
  for (const auto& [name, set] : defs) names.push_back(name);
  return names;
}

// Caddy's sortRoutes: by directive position, then for the same directive the longer single
// path first, a route with a matcher before one without.
bool route_less(const Route& a, const Route& b) {
  const int pa = directive_position(a.directive);
  const int pb = directive_position(b.directive);
  if (pa != pb) return pa < pb;
  const auto single_path = [](const Route& r) -> const std::string* {
    return r.matcher && r.matcher->path.size() == 1 ? &r.matcher->path.front() : nullptr;
  };
  const std::string* ia = single_path(a);
  const std::string* ib = single_path(b);
  if (ia && ib && !ia->empty() && !ib->empty()) {
    const std::string_view ta = std::string_view(*ia).substr(0, ia->size() - (ia->ends_with('*') ? 1 : 0));
    const std::string_view tb = std::string_view(*ib).substr(0, ib->size() - (ib->ends_with('*') ? 1 : 0));
    if (ta == tb) return ia->size() < ib->size();
    if (ta.size() == tb.size()) return ta < tb;
    return ta.size() > tb.size();
  }
  return a.matcher != nullptr && b.matcher == nullptr;
}

void finish_segment(Dispenser& d, std::string_view directive) {
  if (d.next()) throw d.error(std::string(directive) + ": unexpected '" + d.val() + "'");
}

}  // namespace

void parse_matcher_definition(const Segment& segment, MatcherDefs& defs) {
  Dispenser d(segment);
  d.next();
  const std::string name = d.val();
  if (defs.contains(name)) throw d.error("matcher is defined more than once: " + name);
  if (d.next_arg() && d.token().quoted()) {
    // `@name "expression"`: a CEL expression without the matcher name (upstream does the same).
    defs.emplace(name, std::make_shared<const MatcherSet>(MatcherSet{.expression = {d.val()}}));
    finish_segment(d, name);
    return;
  }
  if (d.cursor() > 0) d.prev();
  defs.emplace(name, std::make_shared<const MatcherSet>(parse_matcher_set(d)));
  finish_segment(d, name);
}

Route parse_route(const Segment& segment, const MatcherDefs& defs, AdaptContext& ctx) {
  const Token& head = segment.front();
  Route route;
  route.directive = head.text;
  route.file = head.file_name();
  route.line = head.line;
  std::vector<Token> tokens = segment;
  const bool has_arg = tokens.size() > 1 && !is_next_on_new_line(tokens[0], tokens[1]) && !tokens[1].is_open_brace();
  bool take_matcher = has_arg && is_matcher_token(tokens[1].text) && route.directive != "handle_path";
  if (take_matcher && route.directive == "root") {
    // `root /srv` is a path, `root /static/* /srv` a matcher and a path (upstream parseRoot).
    Dispenser probe(tokens);
    probe.next();
    take_matcher = probe.count_remaining_args() == 2;
  }
  if (take_matcher) {
    const Token& token = tokens[1];
    route.matcher_token = token.text;
    if (token.text.starts_with('/')) {
      route.matcher = std::make_shared<const MatcherSet>(MatcherSet{.path = {token.text}});
    } else if (token.text.starts_with('@')) {
      const auto it = defs.find(token.text);
      if (it == defs.end()) {
        throw error_at(token, "unrecognized matcher name: " + token.text + did_you_mean(token.text, names_of(defs)));
      }
      route.matcher = it->second;
    }
    tokens.erase(tokens.begin() + 1);
  }
  // Read, not run: a directive (or a feature of one) acmetool cannot run yet keeps the file valid
  // for `validate` and `adapt`, as it is for Caddy, with a warning; serve refuses the site.
  const auto keep_unsupported = [&](const Token& at, const std::string& what) {
    warn(ctx.warnings, at, what + " is not supported by acmetool yet; serve will refuse this site");
    UnsupportedHandler unsupported;
    for (std::size_t i = 1; i < tokens.size(); ++i) unsupported.tokens.push_back(tokens[i].text);
    route.handler = std::move(unsupported);
  };
  if (directive_kind(route.directive) == DirectiveKind::Unsupported) {
    keep_unsupported(head, "directive '" + route.directive + "'");
    return route;
  }
  Dispenser d(tokens);
  try {
    route.handler = parse_handler(route.directive, d, defs, ctx);
    finish_segment(d, route.directive);
  } catch (const UnsupportedError& e) {
    keep_unsupported(e.at(), e.feature());
  }
  if (route.directive == "handle_path") {
    route.matcher_token = segment[1].text;
    route.matcher = std::make_shared<const MatcherSet>(MatcherSet{.path = {segment[1].text}});
  }
  return route;
}

void order_routes(std::vector<Route>& routes, bool sorted, AdaptContext& ctx) {
  if (sorted) {
    // Insertion sort, as Go's sort.SliceStable does for short lists: stable, and safe with
    // upstream's comparator, which is not a strict weak order for every input.
    for (std::size_t i = 1; i < routes.size(); ++i) {
      for (std::size_t j = i; j > 0 && route_less(routes[j], routes[j - 1]); --j) std::swap(routes[j], routes[j - 1]);
    }
  }
  // Mutually exclusive directives share a group when there is more than one of them; rewrites
  // always do, so that no rewrite merges with a neighbour (upstream buildSubroute, in its order).
  for (const std::string_view exclusive : {std::string_view("handle"), std::string_view("rewrite"), std::string_view("root")}) {
    const auto member = [&](const Route& r) {
      return r.directive == exclusive || (exclusive == "handle" && r.directive == "handle_path");
    };
    if (std::count_if(routes.begin(), routes.end(), member) < (exclusive == "rewrite" ? 1 : 2)) continue;
    const int group = ctx.next_group++;
    for (Route& r : routes) {
      if (member(r)) r.group = group;
    }
  }
}

std::vector<Route> parse_nested_routes(Dispenser& d, const MatcherDefs& defs, AdaptContext& ctx, bool sorted) {
  const std::string directive = d.val();
  if (d.next_arg()) throw d.arg_error();
  std::vector<Segment> segments;
  for (int nesting = d.nesting(); d.next_block(nesting);) segments.push_back(d.next_segment().tokens());

  MatcherDefs scoped = defs;
  for (const Segment& segment : segments) {
    if (segment.front().text.starts_with('@')) parse_matcher_definition(segment, scoped);
  }
  std::vector<Route> routes;
  for (const Segment& segment : segments) {
    const Token& head = segment.front();
    if (head.text.starts_with('@')) continue;
    const auto kind = directive_kind(head.text);
    if (!kind) {
      const std::string hint = did_you_mean(head.text, known_directives());
      throw error_at(head, "unrecognized directive: " + head.text +
                               (hint.empty() ? " - are you sure your Caddyfile structure (nesting and braces) is correct?"
                                             : hint));
    }
    if (*kind == DirectiveKind::Site) {
      throw error_at(head, "directive '" + head.text + "' is not an ordered HTTP handler, so it cannot be used inside '" +
                               directive + "'");
    }
    routes.push_back(parse_route(segment, scoped, ctx));
  }
  order_routes(routes, sorted, ctx);
  return routes;
}

Site adapt_site(const ServerBlock& block, AdaptContext& ctx) {
  Site site;
  site.file = block.keys.front().file_name();
  site.line = block.keys.front().line;
  // Shorthands are expanded in a copy, made only for sites that have placeholders at all.
  const auto has_brace = [](const Segment& segment) {
    return std::any_of(segment.begin(), segment.end(), [](const Token& t) { return t.text.find('{') != std::string::npos; });
  };
  std::vector<Segment> expanded;
  if (std::any_of(block.segments.begin(), block.segments.end(), has_brace)) {
    expanded = block.segments;
    for (Segment& segment : expanded) {
      for (Token& token : segment) {
        if (token.text.find('{') != std::string::npos) expand_placeholder_shorthands(token.text);
      }
    }
  }
  const std::vector<Segment>& segments = expanded.empty() ? block.segments : expanded;
  for (const Segment& segment : segments) {
    if (!segment.front().text.starts_with('@')) continue;
    parse_matcher_definition(segment, site.named_matchers);
    std::vector<std::string> unsupported;
    collect_unsupported(*site.named_matchers.at(segment.front().text), unsupported);
    for (const std::string& written : unsupported) {
      warn(ctx.warnings, segment.front(),
           "matcher " + segment.front().text + ": '" + written + "' is not supported by acmetool yet; serve will refuse this site");
    }
  }
  for (const Segment& segment : segments) {
    const Token& head = segment.front();
    if (head.text.starts_with('@')) continue;
    const auto kind = directive_kind(head.text);
    if (!kind) {
      std::string message = "unrecognized directive: " + head.text + did_you_mean(head.text, known_directives());
      if (!block.has_braces) {
        message += " - Did you mean to define a second site? If so, you must use curly braces around each site to "
                   "separate their configurations.";
      }
      throw error_at(head, message);
    }
    if (*kind == DirectiveKind::Handler || *kind == DirectiveKind::Unsupported) {
      site.routes.push_back(parse_route(segment, site.named_matchers, ctx));
      continue;
    }
    Dispenser d(segment);
    if (head.text == "tls") {
      if (site.tls) throw error_at(head, "tls: the tls directive may be used only once per site");
      site.tls = parse_tls(d);
    } else if (head.text == "bind") {
      parse_bind(d, site);
    } else if (head.text == "handle_errors") {
      site.error_routes.push_back(parse_handle_errors(d, site.named_matchers, ctx));
    } else {
      try {
        site.logs.push_back(parse_log(d));
      } catch (const UnsupportedError& e) {
        warn(ctx.warnings, e.at(), e.feature() + " is not supported by acmetool yet; this log is left out");
        continue;  // the rest of the segment belongs to the log left out
      }
    }
    finish_segment(d, head.text);
  }
  order_routes(site.routes, true, ctx);
  std::stable_partition(site.error_routes.begin(), site.error_routes.end(),
                        [](const ErrorRoutes& e) { return !e.status.empty(); });
  return site;
}

}  // namespace acmetool::caddyfile::detail

namespace acmetool::caddyfile {

bool MatcherSet::empty() const noexcept {
  return path.empty() && host.empty() && method.empty() && header.empty() && query.empty() && protocol.empty() &&
         remote_ip.empty() && client_ip.empty() && expression.empty() && not_.empty() && unsupported.empty();
}

}  // namespace acmetool::caddyfile
