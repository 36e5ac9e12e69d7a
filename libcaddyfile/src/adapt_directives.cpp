// The directive table (Caddy's default order) and the handler directives other than
// reverse_proxy, each as upstream's UnmarshalCaddyfile reads it. Every parser starts with the
// cursor before the directive name; a matcher token has already been removed.
#include <algorithm>
#include <array>

#include "adapt_internal.h"

namespace acmetool::caddyfile::detail {
namespace {

struct DirectiveInfo {
  std::string_view name;
  DirectiveKind kind;
};

// Caddy HEAD's defaultDirectiveOrder (httpcaddyfile/directives.go); the position in this list
// is the sort key. Site directives and other known directives follow, unordered.
constexpr DirectiveInfo kDirectives[] = {
    {"tracing", DirectiveKind::Unsupported},
    {"map", DirectiveKind::Unsupported},
    {"vars", DirectiveKind::Unsupported},
    {"fs", DirectiveKind::Unsupported},
    {"root", DirectiveKind::Handler},
    {"log_append", DirectiveKind::Unsupported},
    {"skip_log", DirectiveKind::Unsupported},
    {"log_skip", DirectiveKind::Unsupported},
    {"log_name", DirectiveKind::Unsupported},
    {"header", DirectiveKind::Handler},
    {"copy_response_headers", DirectiveKind::Handler},
    {"request_body", DirectiveKind::Unsupported},
    {"redir", DirectiveKind::Handler},
    {"method", DirectiveKind::Unsupported},
    {"rewrite", DirectiveKind::Handler},
    {"uri", DirectiveKind::Handler},
    {"try_files", DirectiveKind::Handler},
    {"basicauth", DirectiveKind::Handler},
    {"basic_auth", DirectiveKind::Handler},
    {"forward_auth", DirectiveKind::Unsupported},
    {"request_header", DirectiveKind::Unsupported},
    {"encode", DirectiveKind::Handler},
    {"push", DirectiveKind::Unsupported},
    {"intercept", DirectiveKind::Unsupported},
    {"templates", DirectiveKind::Unsupported},
    {"invoke", DirectiveKind::Handler},
    {"handle", DirectiveKind::Handler},
    {"handle_path", DirectiveKind::Handler},
    {"route", DirectiveKind::Handler},
    {"abort", DirectiveKind::Unsupported},
    {"error", DirectiveKind::Unsupported},
    {"copy_response", DirectiveKind::Handler},
    {"respond", DirectiveKind::Handler},
    {"metrics", DirectiveKind::Unsupported},
    {"reverse_proxy", DirectiveKind::Handler},
    {"php_fastcgi", DirectiveKind::Unsupported},
    {"file_server", DirectiveKind::Handler},
    {"acme_server", DirectiveKind::Unsupported},
    // Not handlers: they configure the site.
    {"tls", DirectiveKind::Site},
    {"bind", DirectiveKind::Site},
    {"log", DirectiveKind::Site},
    {"handle_errors", DirectiveKind::Site},
};
constexpr int kOrderedCount = 38;  // through acme_server
static_assert(kDirectives[kOrderedCount - 1].name == "acme_server");

constexpr auto kNames = [] {
  std::array<std::string_view, std::size(kDirectives)> names{};
  for (std::size_t i = 0; i < names.size(); ++i) names[i] = kDirectives[i].name;
  return names;
}();

const DirectiveInfo* find_directive(std::string_view name) {
  const auto it = std::find_if(std::begin(kDirectives), std::end(kDirectives),
                               [&](const DirectiveInfo& i) { return i.name == name; });
  return it == std::end(kDirectives) ? nullptr : it;
}

bool is_placeholder(std::string_view s) { return s.starts_with('{') && s.ends_with('}'); }

bool is_number(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

RootHandler parse_root(Dispenser& d) {
  d.next();
  const int count = d.count_remaining_args();
  if (count == 0) throw d.error("root: too few arguments; must have at least a root path");
  if (count > 1) throw d.error("root: too many arguments; should only be a matcher and a path");
  return RootHandler{require_arg(d)};
}

FileServerHandler parse_file_server(Dispenser& d) {
  static constexpr std::string_view kKnown[] = {"root", "hide", "index", "browse", "precompressed",
                                                "status", "disable_canonical_uris", "pass_thru"};
  static constexpr std::string_view kFormats[] = {"br", "zstd", "gzip"};
  d.next();
  FileServerHandler fs;
  if (d.next_arg()) {
    if (d.val() != "browse") throw d.arg_error();
    fs.browse = true;
  }
  expect_no_more_args(d);
  for (int nesting = d.nesting(); d.next_block(nesting);) {
    const std::string sub = d.val();
    if (sub == "root") {
      fs.root = require_arg(d);
      expect_no_more_args(d);
    } else if (sub == "hide" || sub == "index") {
      std::vector<std::string> args = d.remaining_args();
      if (args.empty()) throw d.arg_error();
      (sub == "hide" ? fs.hide : fs.index) = std::move(args);
    } else if (sub == "browse") {
      if (fs.browse) throw d.error("file_server: browsing is already configured");
      fs.browse = true;
      if (d.next_arg()) fs.browse_template = d.val();
      expect_no_more_args(d);
      const Token at = d.token();
      if (d.next_block(d.nesting())) throw UnsupportedError(at, "file_server: browse options");
    } else if (sub == "precompressed") {
      for (const Token& t : d.remaining_arg_tokens()) {
        if (std::find(std::begin(kFormats), std::end(kFormats), t.text) == std::end(kFormats)) {
          throw error_at(t, "file_server: unsupported precompressed format '" + t.text + "' (expected br, zstd or gzip)");
        }
        fs.precompressed.push_back(t.text);
      }
      if (fs.precompressed.empty()) fs.precompressed = {"br", "zstd", "gzip"};
    } else if (sub == "status") {
      fs.status = require_arg(d);
      expect_no_more_args(d);
    } else if (sub == "disable_canonical_uris" || sub == "pass_thru") {
      expect_no_more_args(d);
      (sub == "pass_thru" ? fs.pass_thru : fs.disable_canonical_uris) = true;
    } else {
      throw unknown_subdirective(d, "file_server", kKnown);
    }
  }
  return fs;
}

RedirHandler parse_redir(Dispenser& d) {
  d.next();
  RedirHandler redir;
  redir.to = require_arg(d);
  if (d.next_arg()) {
    const std::string code = d.val();
    if (code == "permanent") {
      redir.code = "301";
    } else if (code == "temporary") {
      redir.code = "302";
    } else if (code == "html" || is_placeholder(code)) {
      redir.code = code;
    } else if (!is_number(code) || code.size() > 4) {
      throw d.error("redir: Not a supported redir code type or not valid integer: '" + code + "'");
    } else if (const int n = std::stoi(code); n < 300 || (n > 399 && n != 401)) {
      throw d.error("redir: Redir code not in the 3xx range or 401: '" + code + "'");
    } else {
      redir.code = code;
    }
  }
  expect_no_more_args(d);
  return redir;
}

RespondHandler parse_respond(Dispenser& d) {
  static constexpr std::string_view kKnown[] = {"body", "close"};
  d.next();
  RespondHandler respond;
  const std::vector<Token> args = d.remaining_arg_tokens();
  const auto valid_status = [](const std::string& s) {
    return is_placeholder(s) || (s.size() == 3 && is_number(s) && s[0] != '0');
  };
  if (args.size() == 1) {
    if (args[0].text.size() == 3 && is_number(args[0].text) && args[0].text != "000") {
      respond.status = args[0].text;
    } else {
      respond.body = args[0].text;
    }
  } else if (args.size() == 2) {
    if (!valid_status(args[1].text)) throw error_at(args[1], "respond: invalid status code '" + args[1].text + "'");
    respond.body = args[0].text;
    respond.status = args[1].text;
  } else {
    throw d.arg_error();
  }
  for (int nesting = d.nesting(); d.next_block(nesting);) {
    if (d.val() == "body") {
      if (!respond.body.empty()) throw d.error("respond: body already specified");
      respond.body = require_arg(d);
      expect_no_more_args(d);
    } else if (d.val() == "close") {
      if (respond.close) throw d.error("respond: close already specified");
      expect_no_more_args(d);
      respond.close = true;
    } else {
      throw unknown_subdirective(d, "respond", kKnown);
    }
  }
  return respond;
}

// Upstream CopyResponseHandler.UnmarshalCaddyfile: one positive number as the argument, or a
// `status` subdirective.
CopyResponseHandler parse_copy_response(Dispenser& d) {
  static constexpr std::string_view kKnown[] = {"status"};
  d.next();
  CopyResponseHandler copy;
  const std::vector<Token> args = d.remaining_arg_tokens();
  if (args.size() > 1) throw d.arg_error();
  if (args.size() == 1) {
    if (!is_number(args[0].text) || args[0].text.find_first_not_of('0') == std::string::npos) {
      throw error_at(args[0], "copy_response: invalid status code '" + args[0].text + "'");
    }
    copy.status = args[0].text;
  }
  for (int nesting = d.nesting(); d.next_block(nesting);) {
    if (d.val() != "status") throw unknown_subdirective(d, "copy_response", kKnown);
    copy.status = require_arg(d);
    expect_no_more_args(d);
  }
  return copy;
}

CopyResponseHeadersHandler parse_copy_response_headers(Dispenser& d) {
  static constexpr std::string_view kKnown[] = {"include", "exclude"};
  d.next();
  if (d.next_arg()) throw d.arg_error();
  CopyResponseHeadersHandler copy;
  for (int nesting = d.nesting(); d.next_block(nesting);) {
    const std::string sub = d.val();
    if (sub != "include" && sub != "exclude") throw unknown_subdirective(d, "copy_response_headers", kKnown);
    const std::vector<std::string> fields = d.remaining_args();
    if (fields.empty()) throw d.arg_error();
    std::vector<std::string>& list = sub == "include" ? copy.include : copy.exclude;
    list.insert(list.end(), fields.begin(), fields.end());
  }
  if (!copy.include.empty() && !copy.exclude.empty()) {
    throw error_at(d.tokens().front(), "copy_response_headers: cannot define both include and exclude lists");
  }
  return copy;
}

HeaderHandler parse_header(Dispenser& d) {
  d.next();
  HeaderHandler header;
  const auto add = [&](std::string field, const std::vector<std::string>& args) {
    if (args.size() > 2) throw d.arg_error();
    HeaderOp op = header_op(d, field, args, true);
    header.deferred |= op.kind == HeaderOp::Kind::Delete || field.starts_with('>');
    header.ops.push_back(std::move(op));
  };
  std::vector<std::string> line = d.remaining_args();
  const bool has_args = !line.empty();
  if (has_args) {
    const std::string field = line.front();
    add(field, std::vector<std::string>(line.begin() + 1, line.end()));
  }
  for (int nesting = d.nesting(); d.next_block(nesting);) {
    std::string field = d.val();
    if (field == "defer") {
      expect_no_more_args(d);
      header.deferred = true;
      continue;
    }
    if (field == "match") throw UnsupportedError(d.token(), "header: response matchers");
    if (has_args) throw d.error("header: cannot specify headers in both arguments and block");
    if (field.ends_with(':')) field.pop_back();  // "Field: value", as in a curl command
    add(field, d.remaining_args());
  }
  return header;
}

// Caddy's encode UnmarshalCaddyfile: block formats first, then the arguments, form the
// preference order; Validate refuses a format given twice.
EncodeHandler parse_encode(Dispenser& d) {
  static constexpr std::string_view kFormats[] = {"zstd", "gzip"};
  static constexpr std::string_view kKnown[] = {"zstd", "gzip", "minimum_length", "match"};
  static constexpr std::string_view kZstdLevels[] = {"fastest", "default", "better", "best"};
  d.next();
  EncodeHandler encode;
  encode.formats.clear();
  const auto check_format = [&](const Token& at) {
    if (std::find(std::begin(kFormats), std::end(kFormats), at.text) == std::end(kFormats)) {
      throw error_at(at, "encode: encoding format '" + at.text + "' is not supported (acmetool has zstd and gzip)");
    }
  };
  const auto add_format = [&](const Token& at) {
    check_format(at);
    if (std::find(encode.formats.begin(), encode.formats.end(), at.text) != encode.formats.end()) {
      throw error_at(at, "encode: encoding format '" + at.text + "' is given twice");
    }
    encode.formats.push_back(at.text);
  };
  const std::vector<Token> args = d.remaining_arg_tokens();
  for (int nesting = d.nesting(); d.next_block(nesting);) {
    const std::string sub = d.val();
    if (sub == "minimum_length") {
      require_arg(d);
      encode.minimum_length = int_value(d, "encode minimum_length", 0, 1 << 30);
      expect_no_more_args(d);
    } else if (sub == "match") {
      if (encode.match) throw d.error("encode: match is defined more than once");
      encode.match = parse_response_matcher(d, "encode");
    } else if (sub == "zstd" || sub == "gzip" || sub == "br") {
      const Token format = d.token();
      check_format(format);
      if (d.next_arg()) {
        if (sub == "gzip") {
          int_value(d, "encode gzip level", 0, 9);  // 0: Caddy's default, 5
        } else if (std::find(std::begin(kZstdLevels), std::end(kZstdLevels), d.val()) == std::end(kZstdLevels)) {
          throw d.error("encode: unknown zstd level '" + d.val() + "' (expected fastest, default, better or best)");
        }
        encode.levels.emplace_back(sub, d.val());
      }
      expect_no_more_args(d);
      add_format(format);
    } else {
      throw unknown_subdirective(d, "encode", kKnown);
    }
  }
  if (encode.formats.empty() && args.empty()) encode.formats = {"zstd", "gzip"};
  for (const Token& t : args) add_format(t);
  return encode;
}

UriHandler parse_uri(Dispenser& d) {
  static constexpr std::string_view kOps[] = {"strip_prefix", "strip_suffix", "replace", "path_regexp", "query"};
  d.next();
  const std::vector<std::string> args = d.remaining_args();
  if (args.empty()) throw d.arg_error();
  UriHandler uri;
  const std::string& op = args[0];
  if (op == "strip_prefix" || op == "strip_suffix") {
    if (args.size() != 2) throw d.arg_error();
    uri.op = op == "strip_prefix" ? UriHandler::Op::StripPrefix : UriHandler::Op::StripSuffix;
    uri.target = args[1];
    if (op == "strip_prefix" && !uri.target.starts_with('/')) uri.target.insert(0, "/");
  } else if (op == "replace") {
    if (args.size() != 3 && args.size() != 4) throw d.arg_error();
    uri.op = UriHandler::Op::Replace;
    uri.target = args[1];
    uri.replacement = args[2];
    if (args.size() == 4) {
      if (!is_number(args[3]) || args[3].size() > 9) throw d.error("uri: limit must be an integer: " + args[3]);
      uri.limit = std::stoi(args[3]);
    }
  } else if (op == "path_regexp") {
    if (args.size() != 3) throw d.arg_error();
    uri.op = UriHandler::Op::PathRegexp;
    uri.target = args[1];
    uri.replacement = args[2];
  } else if (op == "query") {
    throw UnsupportedError(d.token(), "uri: query operations");
  } else {
    throw d.error("uri: unrecognized URI manipulation '" + op + "'" + did_you_mean(op, kOps));
  }
  return uri;
}

BasicAuthHandler parse_basic_auth(Dispenser& d, AdaptContext& ctx) {
  d.next();
  if (d.val() == "basicauth") warn(ctx.warnings, d.token(), "the 'basicauth' directive is deprecated, please use 'basic_auth' instead");
  BasicAuthHandler auth;
  const std::vector<std::string> args = d.remaining_args();
  if (args.size() > 2) throw d.arg_error();
  if (!args.empty()) auth.hash_algorithm = args[0];
  if (args.size() == 2) auth.realm = args[1];
  if (auth.hash_algorithm != "bcrypt" && auth.hash_algorithm != "argon2id") {
    throw d.error("basic_auth: unrecognized hash algorithm: " + auth.hash_algorithm);
  }
  for (int nesting = d.nesting(); d.next_block(nesting);) {
    std::string user = d.val();
    std::string hash = d.next_arg() ? d.val() : "";
    expect_no_more_args(d);
    if (user.empty() || hash.empty()) throw d.error("basic_auth: username and password cannot be empty or missing");
    auth.accounts.emplace_back(std::move(user), std::move(hash));
  }
  return auth;
}

RewriteHandler parse_rewrite(Dispenser& d) {
  d.next();
  RewriteHandler rewrite{require_arg(d)};
  expect_no_more_args(d);
  return rewrite;
}

TryFilesHandler parse_try_files(Dispenser& d) {
  static constexpr std::string_view kKnown[] = {"policy"};
  static constexpr std::string_view kPolicies[] = {"first_exist", "first_exist_fallback", "smallest_size", "largest_size",
                                                   "most_recently_modified"};
  d.next();
  TryFilesHandler try_files;
  try_files.files = d.remaining_args();
  if (try_files.files.empty()) throw d.arg_error();
  for (int nesting = d.nesting(); d.next_block(nesting);) {
    if (d.val() != "policy") throw unknown_subdirective(d, "try_files", kKnown);
    try_files.policy = require_arg(d);
    if (std::find(std::begin(kPolicies), std::end(kPolicies), try_files.policy) == std::end(kPolicies)) {
      throw d.error("try_files: unknown policy '" + try_files.policy + "'" + did_you_mean(try_files.policy, kPolicies));
    }
    expect_no_more_args(d);
  }
  return try_files;
}

InvokeHandler parse_invoke(Dispenser& d, AdaptContext& ctx) {
  d.next();
  InvokeHandler invoke{require_arg(d)};
  ctx.invoked.emplace_back(invoke.name, d.token());
  expect_no_more_args(d);
  return invoke;
}

Subroute parse_subroute(std::string_view directive, Dispenser& d, const MatcherDefs& defs, AdaptContext& ctx) {
  d.next();
  Subroute sub;
  if (directive == "handle_path") {
    sub.kind = Subroute::Kind::HandlePath;
    const std::string path = require_arg(d);
    if (!path.starts_with('/')) throw d.error("handle_path: path matcher must begin with '/', got " + path);
    // "/api/*" strips "/api", "/api*" strips "/api", "/api" strips "/api".
    sub.strip_prefix = path.ends_with("/*") ? path.substr(0, path.size() - 2)
                       : path.ends_with('*') ? path.substr(0, path.size() - 1)
                                             : path;
  } else if (directive == "route") {
    sub.kind = Subroute::Kind::Route;
  }
  sub.routes = parse_nested_routes(d, defs, ctx, sub.kind != Subroute::Kind::Route);
  return sub;
}

}  // namespace

std::optional<DirectiveKind> directive_kind(std::string_view name) {
  const DirectiveInfo* info = find_directive(name);
  if (!info) return std::nullopt;
  return info->kind;
}

int directive_position(std::string_view name) {
  if (name == "handle_path") name = "handle";  // upstream normalizeDirectiveName
  const DirectiveInfo* info = find_directive(name);
  if (!info) return -1;
  const int position = static_cast<int>(info - std::begin(kDirectives));
  return position < kOrderedCount ? position : -1;
}

std::span<const std::string_view> known_directives() { return kNames; }

Handler parse_handler(std::string_view directive, Dispenser& d, const MatcherDefs& defs, AdaptContext& ctx) {
  if (directive == "root") return parse_root(d);
  if (directive == "file_server") return parse_file_server(d);
  if (directive == "reverse_proxy") return Boxed<ReverseProxyHandler>(parse_reverse_proxy(d, defs, ctx));
  if (directive == "rewrite") return parse_rewrite(d);
  if (directive == "try_files") return parse_try_files(d);
  if (directive == "redir") return parse_redir(d);
  if (directive == "respond") return parse_respond(d);
  if (directive == "header") return parse_header(d);
  if (directive == "encode") return parse_encode(d);
  if (directive == "uri") return parse_uri(d);
  if (directive == "basic_auth" || directive == "basicauth") return parse_basic_auth(d, ctx);
  if (directive == "invoke") return parse_invoke(d, ctx);
  if (directive == "copy_response") return parse_copy_response(d);
  if (directive == "copy_response_headers") return parse_copy_response_headers(d);
  return parse_subroute(directive, d, defs, ctx);
}

HeaderOp header_op(const Dispenser& d, std::string field, const std::vector<std::string>& args, bool response) {
  // Upstream applyHeaderOp: the prefix decides before a replacement does.
  HeaderOp op;
  op.value = args.empty() ? "" : args[0];
  if (field.starts_with('+')) {
    op.kind = HeaderOp::Kind::Add;
    op.field = field.substr(1);
  } else if (field.starts_with('-')) {
    op.kind = HeaderOp::Kind::Delete;
    op.field = field.substr(1);
    op.value.clear();
  } else if (field.starts_with('?')) {
    if (!response) {
      throw d.error(field + ": the default header modifier ('?') can only be used on response headers; for "
                            "conditional manipulation of request headers, use matchers");
    }
    op.kind = HeaderOp::Kind::Default;
    op.field = field.substr(1);
  } else if (args.size() == 2) {
    op.kind = HeaderOp::Kind::Replace;
    op.field = field.substr(field.find_first_not_of("+-?>") == std::string::npos ? field.size()
                                                                                  : field.find_first_not_of("+-?>"));
    op.replacement = args[1];
    op.regexp = true;
  } else {
    op.kind = HeaderOp::Kind::Set;
    op.field = field.starts_with('>') ? field.substr(1) : field;
  }
  if (op.field.empty()) throw d.error("header field name is empty: '" + field + "'");
  return op;
}

void expand_placeholder_shorthands(std::string& text) {
  // The seed's shorthand table (upstream NewShorthandReplacer).
  static constexpr std::pair<std::string_view, std::string_view> kExact[] = {
      {"client_ip", "http.vars.client_ip"},
      {"dir", "http.request.uri.path.dir"},
      {"file.base", "http.request.uri.path.file.base"},
      {"file.ext", "http.request.uri.path.file.ext"},
      {"file", "http.request.uri.path.file"},
      {"host", "http.request.host"},
      {"hostport", "http.request.hostport"},
      {"method", "http.request.method"},
      {"path", "http.request.uri.path"},
      {"port", "http.request.port"},
      {"query", "http.request.uri.query"},
      {"remote_host", "http.request.remote.host"},
      {"remote_port", "http.request.remote.port"},
      {"remote", "http.request.remote"},
      {"scheme", "http.request.scheme"},
      {"tls_cipher", "http.request.tls.cipher_suite"},
      {"tls_client_certificate_der_base64", "http.request.tls.client.certificate_der_base64"},
      {"tls_client_certificate_pem", "http.request.tls.client.certificate_pem"},
      {"tls_client_fingerprint", "http.request.tls.client.fingerprint"},
      {"tls_client_issuer", "http.request.tls.client.issuer"},
      {"tls_client_serial", "http.request.tls.client.serial"},
      {"tls_client_subject", "http.request.tls.client.subject"},
      {"tls_version", "http.request.tls.version"},
      {"upstream_hostport", "http.reverse_proxy.upstream.hostport"},
      {"uri", "http.request.uri"},
  };
  struct Prefix {
    std::string_view shorthand;
    std::string_view full;
    bool dots;  // the rest may contain '.'
  };
  static constexpr Prefix kPrefixes[] = {
      {"cookie.", "http.request.cookie.", false},    {"err.", "http.error.", true},
      {"file_match.", "http.matchers.file.", false}, {"header.", "http.request.header.", false},
      {"labels.", "http.request.host.labels.", false}, {"path.", "http.request.uri.path.", false},
      {"query.", "http.request.uri.query.", false},  {"re.", "http.regexp.", true},
      {"rp.", "http.reverse_proxy.", true},          {"resp.", "http.intercept.", true},
      {"vars.", "http.vars.", false},
  };
  const auto word_char = [](char c, bool dots) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           (dots && c == '.');
  };
  std::string out;
  std::size_t done = 0;
  for (std::size_t open = text.find('{'); open != std::string::npos; open = text.find('{', open + 1)) {
    const std::size_t close = text.find('}', open + 1);
    if (close == std::string::npos) break;
    const std::string_view name = std::string_view(text).substr(open + 1, close - open - 1);
    std::string replacement;
    for (const auto& [shorthand, full] : kExact) {
      if (name == shorthand) replacement = full;
    }
    for (const Prefix& p : kPrefixes) {
      if (!replacement.empty() || !name.starts_with(p.shorthand)) continue;
      const std::string_view rest = name.substr(p.shorthand.size());
      if (std::all_of(rest.begin(), rest.end(), [&](char c) { return word_char(c, p.dots); })) {
        replacement = std::string(p.full) + std::string(rest);
      }
    }
    if (replacement.empty()) continue;
    out.append(text, done, open + 1 - done);
    out += replacement;
    done = close;
    open = close;
  }
  if (done == 0) return;
  out.append(text, done, std::string::npos);
  text = std::move(out);
}

ErrorRoutes parse_handle_errors(Dispenser& d, const MatcherDefs& defs, AdaptContext& ctx) {
  d.next();
  ErrorRoutes errors;
  errors.file = d.file();
  errors.line = d.line();
  for (const Token& t : d.remaining_arg_tokens()) {
    const std::string& code = t.text;
    const bool valid = code.size() == 3 && code[0] >= '1' && code[0] <= '5' &&
                       (code.ends_with("xx") || (is_number(code) && std::stoi(code) >= 100));
    if (!valid) throw error_at(t, "handle_errors: bad status value '" + code + "'");
    errors.status.push_back(code);
  }
  errors.routes = parse_nested_routes(d, defs, ctx, true);
  return errors;
}

void parse_bind(Dispenser& d, Site& site) {
  static constexpr std::string_view kKnown[] = {"protocols"};
  d.next();
  std::vector<std::string> hosts = d.remaining_args();
  if (hosts.empty()) throw d.arg_error();
  for (int nesting = d.nesting(); d.next_block(nesting);) {
    if (d.val() != "protocols") throw unknown_subdirective(d, "bind", kKnown);
    site.bind_protocols = d.remaining_args();
    if (site.bind_protocols.empty()) throw d.error("bind: protocols requires one or more arguments");
  }
  site.bind.insert(site.bind.end(), hosts.begin(), hosts.end());
}

LogConfig parse_log(Dispenser& d) {
  static constexpr std::string_view kKnown[] = {"output", "format", "level", "hostnames", "no_hostname"};
  d.next();
  LogConfig log;
  if (d.next_arg()) log.name = d.val();
  expect_no_more_args(d);
  for (int nesting = d.nesting(); d.next_block(nesting);) {
    const std::string sub = d.val();
    if (sub == "output") {
      log.output = require_arg(d);
      if (log.output == "file") {
        log.file_path = require_arg(d);
        expect_no_more_args(d);
        for (int inner = d.nesting(); d.next_block(inner);) {
          std::string key = d.val();
          log.file_options.emplace_back(std::move(key), d.remaining_args());
        }
      } else if (log.output == "stdout" || log.output == "stderr" || log.output == "discard") {
        expect_no_more_args(d);
      } else {
        if (log.output == "net") throw UnsupportedError(d.token(), "log: output 'net'");
        throw d.error("log: output '" + log.output + "' is not supported (expected stdout, stderr, discard, file or net)");
      }
    } else if (sub == "format") {
      log.format = require_arg(d);
      // Caddy's own encoders beyond json and console wrap another one; read, not run yet.
      if (log.format == "filter" || log.format == "append") {
        throw UnsupportedError(d.token(), "log: format '" + log.format + "'");
      }
      if (log.format != "json" && log.format != "console") {
        throw d.error("log: format '" + log.format + "' is not supported (expected json or console)");
      }
      expect_no_more_args(d);
      const Token at = d.token();
      if (d.next_block(d.nesting())) throw UnsupportedError(at, "log: format options");
    } else if (sub == "level") {
      log.level = require_arg(d);
      expect_no_more_args(d);
    } else if (sub == "hostnames") {
      log.hostnames = d.remaining_args();
      if (log.hostnames.empty()) throw d.arg_error();
    } else if (sub == "no_hostname") {
      expect_no_more_args(d);
      log.no_hostname = true;
    } else {
      throw unknown_subdirective(d, "log", kKnown);
    }
  }
  return log;
}

}  // namespace acmetool::caddyfile::detail
