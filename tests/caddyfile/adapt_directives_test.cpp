// Site directives: each handler with its options, matchers and matcher tokens, the directive
// order, handle groups, and the errors for unknown directives and subdirectives.
#include <catch2/catch.hpp>

#include "acmetool/caddyfile/config_json.h"
#include "adapt_helpers.h"

using namespace acmetool::caddyfile;
using namespace std::chrono_literals;
using acmetool::caddyfile::test::adapt_error;
using acmetool::caddyfile::test::adapt_text;
using acmetool::caddyfile::test::handler_as;
using acmetool::caddyfile::test::routes_of;

namespace {

Config site(const std::string& body, std::vector<Warning>* warnings = nullptr) {
  return adapt_text("example.com {\n" + body + "}\n", warnings);
}

std::string site_error(const std::string& body) { return adapt_error("example.com {\n" + body + "}\n"); }

// A copy of the first route's handler of a site with `body` (the Config dies here).
template <class T>
T handler_of(const std::string& body) {
  const Config config = site(body);
  return handler_as<T>(routes_of(config).at(0));
}

std::vector<std::string> directives_of(const std::vector<Route>& routes) {
  std::vector<std::string> out;
  for (const Route& r : routes) out.push_back(r.directive + (r.matcher_token.empty() ? "" : " " + r.matcher_token));
  return out;
}

}  // namespace

TEST_CASE("directives are sorted in Caddy's default order, stable for equal directives",
          "[caddyfile][adapt][directives]") {
  const Config with_route = adapt_text(
      "&(shared) {\n\trespond shared\n}\nexample.com {\n"
      "\tfile_server\n\treverse_proxy /api/* localhost:9000\n\trespond /health 200\n\troute {\n\t\trespond a\n\t}\n"
      "\tencode\n\tbasic_auth /admin/* {\n\t\tbob hash\n\t}\n\turi strip_prefix /x\n\tredir /old /new\n"
      "\theader X-A b\n\troot * /srv\n\tinvoke shared\n\theader X-C d\n}\n");
  const std::vector<std::string> expected = {"root *",    "header",  "header", "redir /old", "uri",
                                             "basic_auth /admin/*", "encode", "invoke", "route", "respond /health",
                                             "reverse_proxy /api/*", "file_server"};
  CHECK(directives_of(routes_of(with_route)) == expected);
  CHECK(handler_as<HeaderHandler>(routes_of(with_route)[1]).ops[0].field == "X-A");
  CHECK(handler_as<HeaderHandler>(routes_of(with_route)[2]).ops[0].field == "X-C");
  REQUIRE(with_route.named_routes.count("shared") == 1);
  CHECK(handler_as<RespondHandler>(with_route.named_routes.at("shared").at(0)).body == "shared");
}

TEST_CASE("the same directive sorts the longer single path first, matched before unmatched",
          "[caddyfile][adapt][directives]") {
  const Config config = site(
      "\t@api path /api/*\n\treverse_proxy localhost:9001\n\treverse_proxy /a* localhost:9003\n"
      "\treverse_proxy @api localhost:9000\n\treverse_proxy /a/* localhost:9004\n\treverse_proxy /api/v2/* localhost:9002\n"
      "\t@post method POST\n\treverse_proxy @post localhost:9005\n");
  std::vector<std::string> upstreams;
  for (const Route& r : routes_of(config)) upstreams.push_back(handler_as<ReverseProxyHandler>(r).upstreams.at(0).dial);
  // /api/v2 (7) > /api/ (5) > /a/ and /a: same trimmed prefix "/a" vs "/a/" -> longer first;
  // @post has a matcher but no path, so it goes before the catch-all and keeps its place.
  CHECK(upstreams == std::vector<std::string>{"localhost:9002", "localhost:9000", "localhost:9004", "localhost:9003",
                                              "localhost:9005", "localhost:9001"});
}

TEST_CASE("route keeps the written order, and handle and handle_path sort inside", "[caddyfile][adapt][directives]") {
  const Config config = site(
      "\troute {\n\t\trespond /x 404\n\t\theader X-A b\n\t\tfile_server\n\t\troot * /srv\n\t}\n"
      "\thandle /h/* {\n\t\tfile_server\n\t\troot * /srv\n\t}\n");
  const auto& routes = routes_of(config);
  REQUIRE(routes.size() == 2);
  CHECK(routes[0].directive == "handle");
  const auto& handle = handler_as<Subroute>(routes[0]);
  CHECK(handle.kind == Subroute::Kind::Handle);
  CHECK(directives_of(handle.routes) == std::vector<std::string>{"root *", "file_server"});
  const auto& route = handler_as<Subroute>(routes[1]);
  CHECK(route.kind == Subroute::Kind::Route);
  CHECK(directives_of(route.routes) == std::vector<std::string>{"respond /x", "header", "file_server", "root *"});
}

TEST_CASE("handle blocks form one mutually exclusive group, and root too when repeated", "[caddyfile][adapt][directives]") {
  const Config config = site(
      "\troot * /srv\n\troot /a /srv/a\n\thandle /b* {\n\t\trespond b\n\t}\n\thandle_path /static/* {\n\t\tfile_server\n\t}\n"
      "\thandle {\n\t\trespond 404\n\t}\n\treverse_proxy /x localhost:1\n");
  const auto& routes = routes_of(config);
  REQUIRE(routes.size() == 6);
  CHECK(directives_of(routes) ==
        std::vector<std::string>{"root /a", "root *", "handle_path /static/*", "handle /b*", "handle", "reverse_proxy /x"});
  REQUIRE(routes[2].group);
  CHECK(routes[2].group == routes[3].group);
  CHECK(routes[3].group == routes[4].group);
  REQUIRE(routes[0].group);
  CHECK(routes[0].group == routes[1].group);
  CHECK(routes[0].group != routes[2].group);
  CHECK_FALSE(routes[5].group);
  const auto& path = handler_as<Subroute>(routes[2]);
  CHECK(path.kind == Subroute::Kind::HandlePath);
  CHECK(path.strip_prefix == "/static");
  REQUIRE(routes[2].matcher);
  CHECK(routes[2].matcher->path == std::vector<std::string>{"/static/*"});
  // A single handle gets no group.
  CHECK_FALSE(routes_of(site("\thandle {\n\t\trespond a\n\t}\n"))[0].group);
}

TEST_CASE("the first argument is a matcher when it is *, a path or a named matcher", "[caddyfile][adapt][matchers]") {
  const Config config = site(
      "\t@get method get head\n\troot * /srv\n\troot /srv2\n\tfile_server /static/*\n\trespond @get \"hi\"\n"
      "\tredir /old /new 308\n");
  const auto& routes = routes_of(config);
  REQUIRE(routes.size() == 5);
  // root with one argument: the argument is the path, not a matcher (upstream parseRoot).
  CHECK(routes[0].matcher_token == "*");
  CHECK_FALSE(routes[0].matcher);
  CHECK(handler_as<RootHandler>(routes[0]).path == "/srv");
  CHECK(routes[1].matcher_token.empty());
  CHECK(handler_as<RootHandler>(routes[1]).path == "/srv2");
  CHECK(routes[2].directive == "redir");
  CHECK(routes[2].matcher->path == std::vector<std::string>{"/old"});
  CHECK(handler_as<RedirHandler>(routes[2]).to == "/new");
  CHECK(handler_as<RedirHandler>(routes[2]).code == "308");
  CHECK(routes[3].matcher->method == std::vector<std::string>{"GET", "HEAD"});
  CHECK(routes[4].matcher->path == std::vector<std::string>{"/static/*"});

  CHECK(site_error("\trespond @missing 404\n") == "Caddyfile:2: unrecognized matcher name: @missing");
  CHECK(site_error("\t@api path /api\n\trespond @apo 404\n") ==
        "Caddyfile:3: unrecognized matcher name: @apo (did you mean '@api'?)");
}

TEST_CASE("named matchers: single line, block, repeated types, header, not", "[caddyfile][adapt][matchers]") {
  const Config config = site(
      "\t@a path /a /b\n"
      "\t@b {\n\t\tpath /x\n\t\tpath /y\n\t\thost Example.com\n\t\tmethod post\n\t\theader X-Token abc*\n"
      "\t\theader !X-Debug\n\t\tnot path /x/private/*\n\t\tnot {\n\t\t\tmethod GET\n\t\t\theader Accept text/html\n\t\t}\n"
      "\t\tquery debug=1 v=*\n\t\tprotocol https\n\t\tremote_ip 10.0.0.0/8 private_ranges\n\t}\n"
      "\trespond @a 200\n\trespond @b 201\n");
  const Site& s = config.sites[0];
  REQUIRE(s.named_matchers.size() == 2);
  CHECK(s.named_matchers.at("@a")->path == std::vector<std::string>{"/a", "/b"});
  const MatcherSet& b = *s.named_matchers.at("@b");
  CHECK(b.path == std::vector<std::string>{"/x", "/y"});
  CHECK(b.host == std::vector<std::string>{"Example.com"});
  CHECK(b.method == std::vector<std::string>{"POST"});
  REQUIRE(b.header.size() == 2);
  CHECK(b.header[0] == std::pair<std::string, std::vector<std::string>>{"X-Token", {"abc*"}});
  CHECK(b.header[1] == std::pair<std::string, std::vector<std::string>>{"X-Debug", {}});
  REQUIRE(b.not_.size() == 2);
  CHECK(b.not_[0].path == std::vector<std::string>{"/x/private/*"});
  CHECK(b.not_[1].method == std::vector<std::string>{"GET"});
  CHECK(b.not_[1].header.at(0).first == "Accept");
  CHECK(b.query.at(0) == std::pair<std::string, std::vector<std::string>>{"debug", {"1"}});
  CHECK(b.query.at(1) == std::pair<std::string, std::vector<std::string>>{"v", {"*"}});
  CHECK(b.protocol == std::vector<std::string>{"https"});
  CHECK(b.remote_ip.size() == 7);
  CHECK(b.remote_ip.front() == "10.0.0.0/8");
  // Routes carry a copy of the definition; both have matchers without a single path, so they
  // keep the written order.
  CHECK(routes_of(config)[0].matcher_token == "@a");
  CHECK(routes_of(config)[1].matcher->path == std::vector<std::string>{"/x", "/y"});
  CHECK(routes_of(config)[1].matcher_token == "@b");
}

TEST_CASE("matcher definitions are checked", "[caddyfile][adapt][matchers]") {
  CHECK(site_error("\t@a path /a\n\t@a path /b\n") == "Caddyfile:3: matcher is defined more than once: @a");
  CHECK(site_error("\t@a paht /a\n") == "Caddyfile:2: unrecognized matcher type: paht (did you mean 'path'?)");
  CHECK(site_error("\t@a header X-Only\n") == "Caddyfile:2: malformed header matcher: expected both field and value");
  CHECK(site_error("\t@a header !X a\n") ==
        "Caddyfile:2: malformed header matcher: null matching headers cannot have a field value");
  CHECK(site_error("\t@a query nokey\n") ==
        "Caddyfile:2: malformed query matcher token: nokey; must be in param=val format");
  CHECK(site_error("\t@a path\n") == "Caddyfile:2: wrong argument count or unexpected line ending after 'path'");
}

TEST_CASE("matchers defined inside handle are scoped to the block", "[caddyfile][adapt][matchers]") {
  const Config config = site("\thandle /api/* {\n\t\t@post method POST\n\t\trespond @post 201\n\t\trespond 200\n\t}\n");
  const auto& inner = handler_as<Subroute>(routes_of(config)[0]).routes;
  REQUIRE(inner.size() == 2);
  CHECK(inner[0].matcher->method == std::vector<std::string>{"POST"});
  CHECK(site_error("\thandle {\n\t\t@post method POST\n\t}\n\trespond @post 201\n") ==
        "Caddyfile:5: unrecognized matcher name: @post");
}

TEST_CASE("file_server, root, redir, respond read their arguments and blocks", "[caddyfile][adapt][directives]") {
  const Config config = site(
      "\tfile_server browse {\n\t\troot /srv/public\n\t\thide .git *.bak\n\t\tindex index.htm\n"
      "\t\tprecompressed\n\t\tstatus 200\n\t\tpass_thru\n\t}\n");
  const auto& fs = handler_as<FileServerHandler>(routes_of(config)[0]);
  CHECK(fs.browse);
  CHECK(fs.root == "/srv/public");
  CHECK(fs.hide == std::vector<std::string>{".git", "*.bak"});
  CHECK(fs.index == std::vector<std::string>{"index.htm"});
  CHECK(fs.precompressed == std::vector<std::string>{"br", "zstd", "gzip"});
  CHECK(fs.status == "200");
  CHECK(fs.pass_thru);
  CHECK(handler_as<FileServerHandler>(routes_of(site("\tfile_server {\n\t\tprecompressed gzip\n\t}\n"))[0]).precompressed ==
        std::vector<std::string>{"gzip"});

  struct RedirRow {
    const char* line;
    const char* to;
    const char* code;
  };
  for (const RedirRow& row : {RedirRow{"redir https://x{uri}", "https://x{http.request.uri}", "302"},
                              RedirRow{"redir * https://x permanent", "https://x", "301"},
                              RedirRow{"redir https://x temporary", "https://x", "302"},
                              RedirRow{"redir https://x html", "https://x", "html"},
                              RedirRow{"redir https://x 401", "https://x", "401"},
                              RedirRow{"redir https://x {http.vars.code}", "https://x", "{http.vars.code}"}}) {
    INFO(row.line);
    const auto redir = handler_of<RedirHandler>("\t" + std::string(row.line) + "\n");
    CHECK(redir.to == row.to);
    CHECK(redir.code == row.code);
  }

  struct RespondRow {
    const char* line;
    std::optional<std::string> status;
    const char* body;
    bool close;
  };
  for (const RespondRow& row : {RespondRow{"respond 404", "404", "", false}, RespondRow{"respond \"Not here\"", {}, "Not here", false},
                                RespondRow{"respond \"Gone\" 410", "410", "Gone", false},
                                RespondRow{"respond 4040", {}, "4040", false},
                                RespondRow{"respond 200 {\n\t\tbody \"ok\"\n\t\tclose\n\t}", "200", "ok", true}}) {
    INFO(row.line);
    const auto respond = handler_of<RespondHandler>("\t" + std::string(row.line) + "\n");
    CHECK(respond.status == row.status);
    CHECK(respond.body == row.body);
    CHECK(respond.close == row.close);
  }
}

TEST_CASE("header, encode, uri and basic_auth read their forms", "[caddyfile][adapt][directives]") {
  Config config = site(
      "\theader {\n\t\t-Server\n\t\t+Link \"</a>\"\n\t\t?Cache-Control max-age=60\n\t\t>X-Late 1\n"
      "\t\tX-Frame-Options: DENY\n\t\tLocation http:// https://\n\t}\n");
  const auto& header = handler_as<HeaderHandler>(routes_of(config)[0]);
  CHECK(header.deferred);
  REQUIRE(header.ops.size() == 6);
  CHECK((header.ops[0].kind == HeaderOp::Kind::Delete && header.ops[0].field == "Server"));
  CHECK((header.ops[1].kind == HeaderOp::Kind::Add && header.ops[1].field == "Link" && header.ops[1].value == "</a>"));
  CHECK((header.ops[2].kind == HeaderOp::Kind::Default && header.ops[2].field == "Cache-Control"));
  CHECK((header.ops[3].kind == HeaderOp::Kind::Set && header.ops[3].field == "X-Late"));
  CHECK((header.ops[4].kind == HeaderOp::Kind::Set && header.ops[4].field == "X-Frame-Options" &&
         header.ops[4].value == "DENY"));
  CHECK((header.ops[5].kind == HeaderOp::Kind::Replace && header.ops[5].value == "http://" &&
         header.ops[5].replacement == "https://" && header.ops[5].regexp));
  CHECK_FALSE(handler_as<HeaderHandler>(routes_of(site("\theader X-A b\n"))[0]).deferred);
  CHECK(site_error("\theader X-A b {\n\t\tX-B c\n\t}\n") ==
        "Caddyfile:3: header: cannot specify headers in both arguments and block");

  config = site("\tencode zstd gzip {\n\t\tminimum_length 256\n\t}\n");
  const auto& encode = handler_as<EncodeHandler>(routes_of(config)[0]);
  CHECK(encode.formats == std::vector<std::string>{"zstd", "gzip"});
  CHECK(encode.minimum_length == 256);
  const auto levels = handler_of<EncodeHandler>("\tencode {\n\t\tgzip 5\n\t}\n");
  CHECK(levels.formats == std::vector<std::string>{"gzip"});
  CHECK(levels.levels == std::vector<std::pair<std::string, std::string>>{{"gzip", "5"}});
  CHECK(site_error("\tencode br\n") ==
        "Caddyfile:2: encode: encoding format 'br' is not supported (acmetool has zstd and gzip)");

  const auto strip = handler_of<UriHandler>("\turi strip_prefix api\n");
  CHECK(strip.op == UriHandler::Op::StripPrefix);
  CHECK(strip.target == "/api");
  const auto replace = handler_of<UriHandler>("\turi replace /a /b 2\n");
  CHECK((replace.op == UriHandler::Op::Replace && replace.replacement == "/b" && replace.limit == 2));
  CHECK(site_error("\turi strip_prefx /a\n") ==
        "Caddyfile:2: uri: unrecognized URI manipulation 'strip_prefx' (did you mean 'strip_prefix'?)");

  std::vector<Warning> warnings;
  config = site("\tbasicauth /admin/* bcrypt Admins {\n\t\tbob $2a$14$hash\n\t\talice $2a$14$other\n\t}\n", &warnings);
  const auto& auth = handler_as<BasicAuthHandler>(routes_of(config)[0]);
  CHECK(auth.realm == "Admins");
  CHECK(auth.accounts == std::vector<std::pair<std::string, std::string>>{{"bob", "$2a$14$hash"}, {"alice", "$2a$14$other"}});
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].where == "Caddyfile:2");
  CHECK(warnings[0].message == "the 'basicauth' directive is deprecated, please use 'basic_auth' instead");
  CHECK(site_error("\tbasic_auth md5 {\n\t\tbob x\n\t}\n") == "Caddyfile:2: basic_auth: unrecognized hash algorithm: md5");
  CHECK(site_error("\tbasic_auth {\n\t\tbob\n\t}\n") ==
        "Caddyfile:3: basic_auth: username and password cannot be empty or missing");
}

TEST_CASE("reverse_proxy reads upstreams and its common subdirectives", "[caddyfile][adapt][proxy]") {
  const Config config = site(
      "\treverse_proxy /api/* http://app1:8080 app2 {\n\t\tto unix//run/app.sock\n\t\tlb_policy cookie lb secret\n"
      "\t\tlb_retries 2\n\t\tlb_try_duration 5s\n\t\tlb_try_interval 250ms\n\t\thealth_uri /healthz\n"
      "\t\thealth_interval 10s\n\t\thealth_timeout 2s\n\t\thealth_status 2xx\n\t\thealth_headers {\n\t\t\tHost app\n\t\t}\n"
      "\t\tfail_duration 30s\n\t\tmax_fails 3\n\t\tunhealthy_status 5xx 429\n\t\tflush_interval -1\n"
      "\t\ttrusted_proxies private_ranges\n\t\theader_up Host {upstream_hostport}\n\t\theader_up -X-Secret\n"
      "\t\theader_down Location http:// https://\n\t\trequest_buffers 4KiB\n"
      "\t\ttransport http {\n\t\t\tdial_timeout 3s\n\t\t\tresponse_header_timeout 30s\n\t\t\tkeepalive off\n"
      "\t\t\tversions 1.1 2\n\t\t\tmax_conns_per_host 64\n\t\t}\n\t}\n");
  const Route& route = routes_of(config)[0];
  CHECK(route.matcher->path == std::vector<std::string>{"/api/*"});
  const auto& rp = handler_as<ReverseProxyHandler>(route);
  REQUIRE(rp.upstreams.size() == 3);
  CHECK(rp.upstreams[0].dial == "app1:8080");
  CHECK(rp.upstreams[1].dial == "app2:80");
  CHECK(rp.upstreams[2].dial == "unix//run/app.sock");
  CHECK(rp.load_balancing.policy == "cookie");
  CHECK(rp.load_balancing.policy_args == std::vector<std::string>{"lb", "secret"});
  CHECK(rp.load_balancing.retries == 2);
  CHECK(rp.load_balancing.try_duration == 5s);
  CHECK(rp.load_balancing.try_interval == 250ms);
  REQUIRE(rp.active_health);
  CHECK(rp.active_health->uri == "/healthz");
  CHECK(rp.active_health->interval == 10s);
  CHECK(rp.active_health->timeout == 2s);
  CHECK(rp.active_health->expect_status == 2);
  CHECK(rp.active_health->headers == std::vector<std::pair<std::string, std::string>>{{"Host", "app"}});
  REQUIRE(rp.passive_health);
  CHECK(rp.passive_health->fail_duration == 30s);
  CHECK(rp.passive_health->max_fails == 3);
  CHECK(rp.passive_health->unhealthy_status == std::vector<int>{5, 429});
  CHECK(rp.flush_interval == std::chrono::nanoseconds(-1));
  CHECK(rp.trusted_proxies.size() == 6);
  REQUIRE(rp.header_up.size() == 2);
  CHECK(rp.header_up[0].value == "{http.reverse_proxy.upstream.hostport}");
  CHECK(rp.header_up[1].kind == HeaderOp::Kind::Delete);
  CHECK(rp.header_down.at(0).kind == HeaderOp::Kind::Replace);
  CHECK(rp.request_buffers == 4096);
  CHECK_FALSE(rp.transport.tls);
  CHECK(rp.transport.dial_timeout == 3s);
  CHECK(rp.transport.response_header_timeout == 30s);
  CHECK(rp.transport.keepalive_off);
  CHECK(rp.transport.versions == std::vector<std::string>{"1.1", "2"});
  CHECK(rp.transport.max_conns_per_host == 64);
}

TEST_CASE("reverse_proxy upstream schemes decide the transport", "[caddyfile][adapt][proxy]") {
  auto proxy = [](const std::string& line) { return handler_of<ReverseProxyHandler>("\t" + line + "\n"); };
  ReverseProxyHandler rp = proxy("reverse_proxy https://backend.example");
  CHECK(rp.upstreams[0].dial == "backend.example:443");
  CHECK(rp.transport.tls);
  rp = proxy("reverse_proxy h2c://app:9000");
  CHECK(rp.transport.versions == std::vector<std::string>{"h2c", "2"});
  rp = proxy("reverse_proxy localhost:9000 {\n\t\ttransport http {\n\t\t\ttls_insecure_skip_verify\n"
             "\t\t\ttls_server_name app.internal\n\t\t}\n\t}");
  CHECK(rp.transport.tls);
  CHECK(rp.transport.tls_insecure_skip_verify);
  CHECK(rp.transport.tls_server_name == "app.internal");
  rp = proxy("reverse_proxy {\n\t\tdynamic a app.svc 8080 {\n\t\t\trefresh 30s\n\t\t}\n\t}");
  REQUIRE(rp.dynamic);
  CHECK(rp.dynamic->name == "app.svc");
  CHECK(rp.dynamic->port == "8080");
  CHECK(rp.dynamic->refresh == 30s);

  CHECK(site_error("\treverse_proxy http://a:8080 https://b\n") ==
        "Caddyfile:2: reverse_proxy: for now, all proxy upstreams must use the same scheme (transport protocol); "
        "expecting 'http://' but got 'https://'");
  CHECK(site_error("\treverse_proxy http://a:443\n") ==
        "Caddyfile:2: reverse_proxy: upstream address has conflicting scheme (http://) and port (:443, the HTTPS port)");
  CHECK(site_error("\treverse_proxy http://a/path\n") ==
        "Caddyfile:2: reverse_proxy: for now, URLs for proxy upstreams only support scheme, host, and port components");
  CHECK(site_error("\treverse_proxy\n") == "Caddyfile:2: reverse_proxy: no upstreams: give at least one address or 'dynamic'");
}

TEST_CASE("unknown subdirectives and bad values inside directives name the line", "[caddyfile][adapt][directives]") {
  struct Row {
    const char* body;
    const char* error;
  };
  const Row rows[] = {
      {"\treverse_proxy localhost:9000 {\n\t\tlb_polcy first\n\t}\n",
       "Caddyfile:3: reverse_proxy: unrecognized subdirective: lb_polcy (did you mean 'lb_policy'?)"},
      {"\treverse_proxy localhost:9000 {\n\t\tlb_policy fastest\n\t}\n",
       "Caddyfile:3: reverse_proxy: unknown load balancing policy 'fastest'"},
      {"\treverse_proxy localhost:9000 {\n\t\tlb_try_duration 5 seconds\n\t}\n",
       "Caddyfile:3: reverse_proxy lb_try_duration: invalid duration '5'"},
      {"\treverse_proxy localhost:9000 {\n\t\ttransport http {\n\t\t\tdial_timout 3s\n\t\t}\n\t}\n",
       "Caddyfile:4: reverse_proxy transport http: unrecognized subdirective: dial_timout (did you mean 'dial_timeout'?)"},
      {"\treverse_proxy localhost:9000 {\n\t\ttransport fastcgi\n\t}\n",
       "Caddyfile:3: reverse_proxy: transport 'fastcgi' is not supported (acmetool has http)"},
      {"\tfile_server {\n\t\tbrowse\n\t\tindx index.html\n\t}\n",
       "Caddyfile:4: file_server: unrecognized subdirective: indx (did you mean 'index'?)"},
      {"\tfile_server listing\n", "Caddyfile:2: wrong argument count or unexpected line ending after 'listing'"},
      {"\trespond {\n\t\tbody x\n\t}\n", "Caddyfile:2: wrong argument count or unexpected line ending after 'respond'"},
      {"\trespond \"x\" ok\n", "Caddyfile:2: respond: invalid status code 'ok'"},
      {"\trespond 200 {\n\t\tbdy x\n\t}\n", "Caddyfile:3: respond: unrecognized subdirective: bdy (did you mean 'body'?)"},
      {"\tredir\n", "Caddyfile:2: wrong argument count or unexpected line ending after 'redir'"},
      {"\tredir /old\n", "Caddyfile:2: wrong argument count or unexpected line ending after 'redir'"},
      {"\tredir https://x 200\n", "Caddyfile:2: redir: Redir code not in the 3xx range or 401: '200'"},
      {"\tredir https://x forever\n", "Caddyfile:2: redir: Not a supported redir code type or not valid integer: 'forever'"},
      {"\troot\n", "Caddyfile:2: root: too few arguments; must have at least a root path"},
      {"\troot a b c\n", "Caddyfile:2: root: too many arguments; should only be a matcher and a path"},
      {"\thandle foo {\n\t}\n", "Caddyfile:2: wrong argument count or unexpected line ending after 'foo'"},
      {"\thandle_path api/* {\n\t}\n", "Caddyfile:2: handle_path: path matcher must begin with '/', got api/*"},
      {"\thandle {\n\t\trevers_proxy localhost:1\n\t}\n",
       "Caddyfile:3: unrecognized directive: revers_proxy (did you mean 'reverse_proxy'?)"},
      {"\thandle {\n\t\tfrobnicate\n\t}\n",
       "Caddyfile:3: unrecognized directive: frobnicate - are you sure your Caddyfile structure (nesting and braces) is "
       "correct?"},
      {"\troute {\n\t\ttls internal\n\t}\n",
       "Caddyfile:3: directive 'tls' is not an ordered HTTP handler, so it cannot be used inside 'route'"},
      {"\tbind\n", "Caddyfile:2: wrong argument count or unexpected line ending after 'bind'"},
      {"\tlog {\n\t\toutput file\n\t}\n", "Caddyfile:3: wrong argument count or unexpected line ending after 'file'"},
      {"\tlog {\n\t\tformat logfmt\n\t}\n", "Caddyfile:3: log: format 'logfmt' is not supported (expected json or console)"},
      {"\tinvoke\n", "Caddyfile:2: wrong argument count or unexpected line ending after 'invoke'"},
      {"\tinvoke nothing\n", "Caddyfile:2: cannot invoke named route 'nothing', which was not defined"},
  };
  for (const Row& row : rows) {
    INFO(row.body);
    CHECK(site_error(row.body) == row.error);
  }
}

TEST_CASE("bind and log configure the site", "[caddyfile][adapt][directives]") {
  const Config config = site(
      "\tbind 127.0.0.1 [::1] {\n\t\tprotocols h1 h2\n\t}\n"
      "\tlog access {\n\t\toutput file /var/log/site.log {\n\t\t\troll_size 10MiB\n\t\t\troll_keep 5\n\t\t}\n"
      "\t\tformat console\n\t\tlevel INFO\n\t}\n");
  const Site& s = config.sites[0];
  CHECK(s.bind == std::vector<std::string>{"127.0.0.1", "[::1]"});
  CHECK(s.bind_protocols == std::vector<std::string>{"h1", "h2"});
  REQUIRE(s.logs.size() == 1);
  CHECK(s.logs[0].name == "access");
  CHECK(s.logs[0].output == "file");
  CHECK(s.logs[0].file_path == "/var/log/site.log");
  CHECK(s.logs[0].file_options.size() == 2);
  CHECK(s.logs[0].format == "console");
  CHECK(s.logs[0].level == "INFO");
  CHECK(s.routes.empty());
  CHECK(s.addresses[0].listeners == std::vector<std::string>{"127.0.0.1:443", "[::1]:443"});
}

TEST_CASE("placeholder shorthands are expanded to Caddy's full names", "[caddyfile][adapt][directives]") {
  const Config config = site(
      "\trespond \"{host} {path} {query.id} {header.X-Forwarded-For} {re.name.1} {labels.0} {remote_host} "
      "{http.request.uri} {unknown} {uri\"\n");
  CHECK(handler_as<RespondHandler>(routes_of(config)[0]).body ==
        "{http.request.host} {http.request.uri.path} {http.request.uri.query.id} "
        "{http.request.header.X-Forwarded-For} {http.regexp.name.1} {http.request.host.labels.0} "
        "{http.request.remote.host} {http.request.uri} {unknown} {uri");
}

TEST_CASE("rewrite and try_files rewrite the request, and every rewrite is in a group", "[caddyfile][adapt][directives]") {
  const Config config = site(
      "\ttry_files {path} {path}/ /index.php?{query} {\n\t\tpolicy first_exist\n\t}\n\trewrite /old /new?{query}\n"
      "\tfile_server\n");
  const auto& routes = routes_of(config);
  REQUIRE(routes.size() == 3);
  CHECK(routes[0].directive == "rewrite");
  CHECK(handler_as<RewriteHandler>(routes[0]).uri == "/new?{http.request.uri.query}");
  REQUIRE(routes[0].group);
  CHECK(routes[1].directive == "try_files");
  CHECK(handler_as<TryFilesHandler>(routes[1]).files ==
        std::vector<std::string>{"{http.request.uri.path}", "{http.request.uri.path}/", "/index.php?{http.request.uri.query}"});
  CHECK(site_error("\trewrite /only\n") == "Caddyfile:2: wrong argument count or unexpected line ending after 'rewrite'");
  CHECK(site_error("\ttry_files a {\n\t\tpolicy biggest\n\t}\n") == "Caddyfile:3: try_files: unknown policy 'biggest'");
}

TEST_CASE("handle_errors collects error routes, status-specific ones first", "[caddyfile][adapt][directives]") {
  const Config config = site(
      "\thandle_errors {\n\t\t@404 expression {err.status_code} == 404\n\t\trewrite @404 /404.html\n\t\tfile_server\n\t}\n"
      "\thandle_errors 5xx 404 {\n\t\trespond \"{err.status_code} {err.status_text}\"\n\t}\n\trespond ok\n");
  const Site& s = config.sites[0];
  REQUIRE(s.error_routes.size() == 2);
  CHECK(s.error_routes[0].status == std::vector<std::string>{"5xx", "404"});
  CHECK(s.error_routes[0].line == 7);
  CHECK(handler_as<RespondHandler>(s.error_routes[0].routes.at(0)).body == "{http.error.status_code} {http.error.status_text}");
  CHECK(s.error_routes[1].status.empty());
  REQUIRE(s.error_routes[1].routes.size() == 2);
  CHECK(s.error_routes[1].routes[0].matcher->expression == std::vector<std::string>{"{http.error.status_code} == 404"});
  CHECK(s.routes.size() == 1);
  CHECK(site_error("\thandle_errors 4x4 {\n\t}\n") == "Caddyfile:2: handle_errors: bad status value '4x4'");
  CHECK(site_error("\thandle {\n\t\thandle_errors {\n\t\t}\n\t}\n") ==
        "Caddyfile:3: directive 'handle_errors' is not an ordered HTTP handler, so it cannot be used inside 'handle'");
}

TEST_CASE("quoted named matchers are CEL expressions", "[caddyfile][adapt][matchers]") {
  const Config config = site("\t@json `{header.Content-Type}.startsWith(\"application/json\")`\n\trespond @json 415\n");
  CHECK(config.sites[0].named_matchers.at("@json")->expression ==
        std::vector<std::string>{"{http.request.header.Content-Type}.startsWith(\"application/json\")"});
}

TEST_CASE("reverse_proxy handle_response and replace_status use response matchers", "[caddyfile][adapt][proxy]") {
  const auto rp = handler_of<ReverseProxyHandler>(
      "\treverse_proxy app:8080 {\n\t\t@error status 5xx 404\n\t\thandle_response @error {\n\t\t\troot * /srv/errors\n"
      "\t\t\trewrite * /{rp.status_code}.html\n\t\t\tfile_server\n\t\t}\n"
      "\t\t@moved {\n\t\t\tstatus 301\n\t\t\theader Location\n\t\t}\n\t\treplace_status @moved 302\n\t}\n");
  REQUIRE(rp.handle_response.size() == 2);
  const ResponseHandler& error = rp.handle_response[0];
  CHECK(error.matcher_name == "@error");
  REQUIRE(error.match);
  CHECK(error.match->status == std::vector<int>{5, 404});
  CHECK(directives_of(error.routes) == std::vector<std::string>{"root *", "rewrite *", "file_server"});
  CHECK(handler_as<RewriteHandler>(error.routes[1]).uri == "/{http.reverse_proxy.status_code}.html");
  const ResponseHandler& moved = rp.handle_response[1];
  CHECK(moved.status == "302");
  CHECK(moved.match->header == std::vector<std::pair<std::string, std::vector<std::string>>>{{"Location", {}}});
  CHECK(moved.routes.empty());

  // copy_response and copy_response_headers, sorted in Caddy's order.
  const auto copying = handler_of<ReverseProxyHandler>(
      "\treverse_proxy app:8080 {\n\t\thandle_response {\n\t\t\tcopy_response 404\n\t\t\tcopy_response_headers {\n"
      "\t\t\t\tinclude X-A X-B\n\t\t\t\tinclude X-C\n\t\t\t}\n\t\t\theader X 1\n\t\t}\n\t}\n");
  REQUIRE(copying.handle_response.size() == 1);
  const std::vector<Route>& copy_routes = copying.handle_response[0].routes;
  CHECK(directives_of(copy_routes) == std::vector<std::string>{"header", "copy_response_headers", "copy_response"});
  CHECK(handler_as<CopyResponseHeadersHandler>(copy_routes[1]).include == std::vector<std::string>{"X-A", "X-B", "X-C"});
  CHECK(handler_as<CopyResponseHandler>(copy_routes[2]).status == "404");
  CHECK(handler_as<CopyResponseHandler>(handler_of<ReverseProxyHandler>(
                                            "\treverse_proxy app:8080 {\n\t\thandle_response {\n\t\t\tcopy_response {\n"
                                            "\t\t\t\tstatus {rp.status_code}\n\t\t\t}\n\t\t}\n\t}\n")
                                            .handle_response[0]
                                            .routes[0])
            .status == "{http.reverse_proxy.status_code}");
  CHECK(site_error("\tcopy_response ok\n") == "Caddyfile:2: copy_response: invalid status code 'ok'");
  CHECK(site_error("\tcopy_response 200 201\n") == "Caddyfile:2: wrong argument count or unexpected line ending after '201'");
  CHECK(site_error("\tcopy_response_headers {\n\t\tinclude A\n\t\texclude B\n\t}\n") ==
        "Caddyfile:2: copy_response_headers: cannot define both include and exclude lists");
  CHECK(site_error("\tcopy_response_headers {\n\t\tinclde A\n\t}\n") ==
        "Caddyfile:3: copy_response_headers: unrecognized subdirective: inclde (did you mean 'include'?)");

  CHECK(site_error("\treverse_proxy app:8080 {\n\t\thandle_response @nope {\n\t\t\trespond x\n\t\t}\n\t}\n") ==
        "Caddyfile:3: reverse_proxy: unrecognized response matcher name: @nope");
  CHECK(site_error("\treverse_proxy app:8080 {\n\t\t@x stauts 500\n\t}\n") ==
        "Caddyfile:3: reverse_proxy: unrecognized response matcher stauts (did you mean 'status'?)");
}

TEST_CASE("directives and matchers acmetool cannot run yet are kept with a warning, not refused",
          "[caddyfile][adapt]") {
  // A typical PHP site: Caddy reads it, so validate must too; serve refuses it later.
  const std::string text =
      "example.com {\n"
      "\troot * /srv/www\n"
      "\t@notFound {\n\t\tnot file {path}\n\t}\n"
      "\tphp_fastcgi @notFound unix//run/php/php-fpm.sock\n"
      "\tfile_server\n"
      "}\n";
  std::vector<Warning> warnings;
  const Config config = acmetool::caddyfile::test::adapt_text(text, &warnings);
  REQUIRE(warnings.size() == 2);
  CHECK(warnings[0].where == "Caddyfile:3");
  CHECK(warnings[0].message ==
        "matcher @notFound: 'file {http.request.uri.path}' is not supported by acmetool yet; serve will refuse this site");
  CHECK(warnings[1].where == "Caddyfile:6");
  CHECK(warnings[1].message == "directive 'php_fastcgi' is not supported by acmetool yet; serve will refuse this site");

  REQUIRE(config.sites.size() == 1);
  const std::vector<Route>& routes = config.sites[0].routes;
  REQUIRE(routes.size() == 3);
  // Caddy's order: root, php_fastcgi, file_server.
  CHECK(routes[1].directive == "php_fastcgi");
  CHECK(routes[1].matcher_token == "@notFound");
  const auto* unsupported = std::get_if<UnsupportedHandler>(&routes[1].handler);
  REQUIRE(unsupported != nullptr);
  CHECK(unsupported->tokens == std::vector<std::string>{"unix//run/php/php-fpm.sock"});
  REQUIRE(routes[1].matcher != nullptr);
  REQUIRE(routes[1].matcher->not_.size() == 1);
  CHECK(routes[1].matcher->not_[0].unsupported == std::vector<std::string>{"file {http.request.uri.path}"});
}

TEST_CASE("encode reads its formats in Caddy's preference order, levels and a match block",
          "[caddyfile][adapt][directives]") {
  const auto encode = handler_of<EncodeHandler>(
      "\tencode zstd {\n\t\tgzip 9\n\t\tmatch {\n\t\t\theader Content-Type text/*\n"
      "\t\t\theader Content-Type application/json*\n\t\t\tstatus 2xx 404\n\t\t}\n\t}\n");
  CHECK(encode.formats == std::vector<std::string>{"gzip", "zstd"});  // block first, as Caddy
  CHECK(encode.levels == std::vector<std::pair<std::string, std::string>>{{"gzip", "9"}});
  REQUIRE(encode.match);
  CHECK(encode.match->status == std::vector<int>{2, 404});
  REQUIRE(encode.match->header.size() == 1);
  CHECK(encode.match->header[0].first == "Content-Type");
  CHECK(encode.match->header[0].second == std::vector<std::string>{"text/*", "application/json*"});
  const Config config = site("\tencode {\n\t\tmatch {\n\t\t\tstatus 2xx\n\t\t\theader Content-Type text/*\n\t\t}\n\t}\n");
  CHECK(to_json(config).dump().find(R"("match":{"header":{"Content-Type":["text/*"]},"status":[2]})") !=
        std::string::npos);

  const auto one_line = handler_of<EncodeHandler>("\tencode {\n\t\tmatch status 200\n\t\tzstd best\n\t}\n");
  CHECK(one_line.formats == std::vector<std::string>{"zstd"});
  REQUIRE(one_line.match);
  CHECK(one_line.match->status == std::vector<int>{200});
  CHECK(one_line.match->header.empty());
  CHECK_FALSE(handler_of<EncodeHandler>("\tencode\n").match);
  CHECK(handler_of<EncodeHandler>("\tencode {\n\t\tgzip 0\n\t}\n").levels[0].second == "0");

  struct Row {
    const char* body;
    const char* error;
  };
  const Row rows[] = {
      {"\tencode gzip {\n\t\tgzip 5\n\t}\n", "Caddyfile:2: encode: encoding format 'gzip' is given twice"},
      {"\tencode zstd zstd\n", "Caddyfile:2: encode: encoding format 'zstd' is given twice"},
      {"\tencode gzip br\n", "Caddyfile:2: encode: encoding format 'br' is not supported (acmetool has zstd and gzip)"},
      {"\tencode {\n\t\tbr 5\n\t}\n",
       "Caddyfile:3: encode: encoding format 'br' is not supported (acmetool has zstd and gzip)"},
      {"\tencode {\n\t\tgzip 10\n\t}\n", "Caddyfile:3: encode gzip level: 10 is out of range (0..9)"},
      {"\tencode {\n\t\tzstd 19\n\t}\n",
       "Caddyfile:3: encode: unknown zstd level '19' (expected fastest, default, better or best)"},
      {"\tencode {\n\t\tminimum_length many\n\t}\n", "Caddyfile:3: encode minimum_length: invalid number 'many'"},
      {"\tencode {\n\t\tgzipp\n\t}\n",
       "Caddyfile:3: encode: unrecognized subdirective: gzipp (did you mean 'gzip'?)"},
      {"\tencode {\n\t\tmatch {\n\t\t\tstauts 200\n\t\t}\n\t}\n",
       "Caddyfile:4: encode: unrecognized response matcher stauts (did you mean 'status'?)"},
      {"\tencode {\n\t\tmatch {\n\t\t\tstatus ok\n\t\t}\n\t}\n",
       "Caddyfile:4: encode: response matcher status: invalid number 'ok'"},
      {"\tencode {\n\t\tmatch {\n\t\t\tstatus\n\t\t}\n\t}\n", "Caddyfile:4: wrong argument count or unexpected line ending after 'status'"},
      {"\tencode {\n\t\tmatch status 200\n\t\tmatch status 404\n\t}\n",
       "Caddyfile:4: encode: match is defined more than once"},
  };
  for (const Row& row : rows) {
    INFO(row.body);
    CHECK(site_error(row.body) == row.error);
  }
}

TEST_CASE("features of supported directives that acmetool cannot run yet are kept with a warning",
          "[caddyfile][adapt]") {
  struct Row {
    const char* body;
    const char* warning;
  };
  const Row rows[] = {
      {"\theader {\n\t\tmatch {\n\t\t\tstatus 200\n\t\t}\n\t\tX-A 1\n\t}\n",
       "Caddyfile:3: header: response matchers is not supported by acmetool yet; serve will refuse this site"},
      {"\turi query +a b\n", "Caddyfile:2: uri: query operations is not supported by acmetool yet; serve will refuse this site"},
      {"\treverse_proxy a:1 b:2 {\n\t\tlb_policy cookie lb {\n\t\t\tfallback first\n\t\t}\n\t}\n",
       "Caddyfile:3: reverse_proxy: lb_policy option blocks is not supported by acmetool yet; serve will refuse this "
       "site"},
      {"\tlog {\n\t\tformat filter {\n\t\t\trequest>headers>Cookie delete\n\t\t}\n\t}\n",
       "Caddyfile:3: log: format 'filter' is not supported by acmetool yet; this log is left out"},
      {"\tlog {\n\t\tformat console {\n\t\t\ttime_format iso8601\n\t\t}\n\t}\n",
       "Caddyfile:3: log: format options is not supported by acmetool yet; this log is left out"},
      {"\tlog {\n\t\toutput net localhost:9999\n\t}\n",
       "Caddyfile:3: log: output 'net' is not supported by acmetool yet; this log is left out"},
  };
  for (const Row& row : rows) {
    INFO(row.body);
    std::vector<Warning> warnings;
    const Config config = adapt_text(std::string("example.com {\n") + row.body + "}\n", &warnings);
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].where + ": " + warnings[0].message == row.warning);
    REQUIRE(config.sites.size() == 1);
    if (std::string(row.body).starts_with("\tlog")) {
      CHECK(config.sites[0].logs.empty());
    } else {
      REQUIRE(config.sites[0].routes.size() == 1);
      CHECK(std::holds_alternative<UnsupportedHandler>(config.sites[0].routes[0].handler));
    }
  }
}
