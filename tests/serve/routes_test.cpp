// Routing (issue 8): a site's routes evaluated for one request, from real Caddyfile text through
// the adapter, with the answers Caddy gives.
#include "acmetool/serve/routes.h"

#include <crypt.h>
#include <openssl/evp.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <memory>

#include "../caddyfile/adapt_helpers.h"
#include "acmetool/serve/error.h"

namespace serve = acmetool::serve;
namespace caddyfile = acmetool::caddyfile;
using Kind = serve::RouteResult::Kind;

namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

// The only site of "example.com { <body> }".
caddyfile::Site site_of(const std::string& body) {
  std::vector<caddyfile::Warning> warnings;
  caddyfile::Config config =
      caddyfile::test::adapt_text("example.com {\n" + body + "\n}\n", &warnings);
  REQUIRE(config.sites.size() == 1);
  return std::move(config.sites[0]);
}

serve::RouteRequest request(std::string target, std::string method = "GET", Headers headers = {}) {
  serve::RouteRequest r;
  r.method = std::move(method);
  r.target = std::move(target);
  r.host = "example.com";
  r.scheme = "https";
  r.port = 443;
  r.remote_ip = "203.0.113.7";
  r.remote_port = 50123;
  for (const auto& [name, value] : headers) r.headers.emplace_back(name, value);
  r.headers.emplace_back("Host", "example.com");
  return r;
}

serve::RouteResult run(const std::string& body, const serve::RouteRequest& r) {
  return serve::evaluate_routes(site_of(body), r);
}

// The body a respond answered, "<empty>" when nothing answered, or the kind otherwise.
std::string answer(const std::string& body, const serve::RouteRequest& r) {
  const serve::RouteResult result = run(body, r);
  if (result.kind == Kind::Respond) return result.body;
  if (result.kind == Kind::Empty) return "<empty>";
  if (result.kind == Kind::Files) return "<files " + result.path + ">";
  return "<other>";
}

}  // namespace

TEST_CASE("root and file_server give the root, the encoded path, the query and the options",
          "[routes]") {
  const serve::RouteResult result = run("root * /srv\nfile_server browse", request("/a%20b/c?x=1"));
  REQUIRE(result.kind == Kind::Files);
  CHECK(result.files.root == "/srv");
  CHECK(result.path == "/a%20b/c");
  CHECK(result.query == "x=1");
  CHECK(result.files.browse);
  CHECK(result.files.index_names == std::vector<std::string>{"index.html", "index.txt"});
  CHECK(result.files.hide == std::vector<std::string>{"./Caddyfile"});  // Caddy hides its Caddyfile
  CHECK(result.status == 0);
}

TEST_CASE("file_server options and its own root win over the root directive", "[routes]") {
  const serve::RouteResult result =
      run("root * /srv\n"
          "file_server {\n root /www/{host}\n hide .git *.bak\n index home.html\n precompressed br "
          "gzip\n status 203\n}",
          request("/"));
  REQUIRE(result.kind == Kind::Files);
  CHECK(result.files.root == "/www/example.com");
  CHECK(result.files.hide == std::vector<std::string>{".git", "*.bak", "./Caddyfile"});
  CHECK(result.files.index_names == std::vector<std::string>{"home.html"});
  CHECK(result.files.precompressed == std::vector<std::string>{"br", "gzip"});
  CHECK_FALSE(result.files.browse);
  CHECK(result.status == 203);
}

TEST_CASE("file_server without any root serves the working directory, as Caddy does", "[routes]") {
  const serve::RouteResult result = run("file_server", request("/x"));
  REQUIRE(result.kind == Kind::Files);
  CHECK(result.files.root == ".");
}

TEST_CASE("several root directives: the first matching one applies", "[routes]") {
  const std::string body = "root * /srv\nroot /a/* /srv/a\nfile_server";
  CHECK(run(body, request("/a/x")).files.root == "/srv/a");
  CHECK(run(body, request("/b")).files.root == "/srv");
}

TEST_CASE("respond expands known placeholders in the body and keeps unknown ones", "[routes]") {
  serve::RouteResult result = run("respond \"hi {host} {x.y}\" 201", request("/"));
  REQUIRE(result.kind == Kind::Respond);
  CHECK(result.status == 201);
  CHECK(result.body == "hi example.com {x.y}");
  CHECK_FALSE(result.close);

  result = run("respond 404", request("/"));
  CHECK(result.status == 404);
  CHECK(result.body.empty());

  result = run("respond \"bye\" {\n close\n}", request("/"));
  CHECK(result.status == 200);
  CHECK(result.body == "bye");
  CHECK(result.close);
}

TEST_CASE("redir expands the target and maps permanent, temporary and html", "[routes]") {
  serve::RouteResult result =
      run("redir https://example.net{uri} permanent", request("/a%20b?q=1"));
  REQUIRE(result.kind == Kind::Redirect);
  CHECK(result.status == 301);
  CHECK(result.location == "https://example.net/a%20b?q=1");

  result = run("redir * /new", request("/"));
  CHECK(result.status == 302);
  CHECK(result.location == "/new");

  result = run("redir * /to?a=1&b=<x> html", request("/"));
  REQUIRE(result.kind == Kind::Redirect);
  CHECK(result.status == 200);
  CHECK(result.location.empty());
  CHECK(result.body.find(
            "<meta http-equiv=\"refresh\" content=\"0; URL='/to?a=1&amp;b=&lt;x&gt;'\">") !=
        std::string::npos);
  REQUIRE(result.response_headers.size() == 1);
  CHECK(result.response_headers[0].field == "Content-Type");
  CHECK(result.response_headers[0].value == "text/html; charset=utf-8");
}

TEST_CASE("matchers select the routes a request runs", "[routes]") {
  struct Case {
    std::string body;
    std::string target;
    std::string method;
    Headers headers;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"respond /api/* API", "/api/users", "GET", {}, "API"},
      {"respond /api/* API", "/apix", "GET", {}, "<empty>"},
      {"respond /api/* API", "/API/x", "GET", {}, "API"},    // case-insensitive
      {"respond /api/* API", "/%61pi/x", "GET", {}, "API"},  // decoded before matching
      {"respond /api/* API", "//api//x", "GET", {}, "API"},  // cleaned before matching
      {"respond /api/* API", "/api/../secret", "GET", {}, "<empty>"},
      {"@php path *.php\nrespond @php PHP", "/a/b.PHP", "GET", {}, "PHP"},
      {"respond /x/*/y GLOB", "/x/q/y", "GET", {}, "GLOB"},
      {"respond /x/*/y GLOB", "/x/q/r/y", "GET", {}, "<empty>"},
      {"@post method POST\nrespond @post POSTED", "/", "POST", {}, "POSTED"},
      {"@post method POST\nrespond @post POSTED", "/", "GET", {}, "<empty>"},
      {"@h host *.example.org example.com\nrespond @h HOST", "/", "GET", {}, "HOST"},
      {"@h host other.com\nrespond @h HOST", "/", "GET", {}, "<empty>"},
      {"@j header Accept *json*\nrespond @j JSON",
       "/",
       "GET",
       {{"accept", "application/json"}},
       "JSON"},
      {"@j header Accept *json*\nrespond @j JSON",
       "/",
       "GET",
       {{"Accept", "text/html"}},
       "<empty>"},
      {"@n header !X-Token\nrespond @n NOTOKEN", "/", "GET", {}, "NOTOKEN"},
      {"@n header !X-Token\nrespond @n NOTOKEN", "/", "GET", {{"X-Token", "t"}}, "<empty>"},
      {"@nx not path /x\nrespond @nx NOTX", "/y", "GET", {}, "NOTX"},
      {"@nx not path /x\nrespond @nx NOTX", "/x", "GET", {}, "<empty>"},
      {"@q query a=1 a=2 b=*\nrespond @q Q", "/?a=2&b=", "GET", {}, "Q"},
      {"@q query a=1 a=2 b=*\nrespond @q Q", "/?a=2", "GET", {}, "<empty>"},
      {"@q query a=1 a=2 b=*\nrespond @q Q", "/?a=3&b=x", "GET", {}, "<empty>"},
      {"@q query name=a%20b\nrespond @q Q", "/?name=a+b", "GET", {}, "<empty>"},
      {"@q query name={http.request.header.X-N}\nrespond @q Q",
       "/?name=a+b",
       "GET",
       {{"X-N", "a b"}},
       "Q"},
      {"@ip remote_ip 203.0.113.0/24\nrespond @ip IP", "/", "GET", {}, "IP"},
      {"@ip remote_ip private_ranges\nrespond @ip IP", "/", "GET", {}, "<empty>"},
      {"@s protocol https\nrespond @s TLS", "/", "GET", {}, "TLS"},
      {"@both {\n path /a/*\n method GET\n}\nrespond @both BOTH", "/a/1", "POST", {}, "<empty>"},
  };
  for (const Case& c : cases) {
    INFO(c.body << "\n" << c.method << " " << c.target);
    CHECK(answer(c.body, request(c.target, c.method, c.headers)) == c.expected);
  }
}

TEST_CASE("handle blocks are mutually exclusive and a catch-all handle is the fallback",
          "[routes]") {
  const std::string body = "handle /a/* {\n respond A\n}\nhandle {\n respond B\n}";
  CHECK(answer(body, request("/a/x")) == "A");
  CHECK(answer(body, request("/b")) == "B");
}

TEST_CASE("a handle block that does not answer lets the routes after it run", "[routes]") {
  const serve::RouteResult result =
      run("handle /a/* {\n header X-H 1\n}\nrespond R", request("/a/x"));
  REQUIRE(result.kind == Kind::Respond);
  CHECK(result.body == "R");
  REQUIRE(result.response_headers.size() == 1);
  CHECK(result.response_headers[0].field == "X-H");
}

TEST_CASE("handle_path strips its prefix before its routes run", "[routes]") {
  const std::string body =
      "handle_path /static/* {\n root * /s\n file_server\n}\nhandle {\n respond other\n}";
  const serve::RouteResult result = run(body, request("/static/css/a%20b.css?v=2"));
  REQUIRE(result.kind == Kind::Files);
  CHECK(result.files.root == "/s");
  CHECK(result.path == "/css/a%20b.css");
  CHECK(result.query == "v=2");
  CHECK(answer(body, request("/STATIC/x")) == "<files /x>");  // prefixes compare case-insensitively
  CHECK(answer(body, request("/index.html")) == "other");
}

TEST_CASE("route keeps the written order where the site sorts by directive", "[routes]") {
  // Sorted, header runs before respond; inside route, respond answers first.
  CHECK(run("respond A\nheader X 1", request("/")).response_headers.size() == 1);
  const serve::RouteResult result = run("route {\n respond A\n header X 1\n}", request("/"));
  CHECK(result.body == "A");
  CHECK(result.response_headers.empty());
}

TEST_CASE("header handlers that ran are collected in order with placeholders expanded",
          "[routes]") {
  const serve::RouteResult result =
      run("header X-A a\nheader /no/* X-B b\nheader {\n +X-Host {host}\n -Server\n}\nrespond ok",
          request("/"));
  REQUIRE(result.response_headers.size() == 3);
  CHECK(result.response_headers[0].field == "X-A");
  CHECK(result.response_headers[0].value == "a");
  CHECK(result.response_headers[1].kind == caddyfile::HeaderOp::Kind::Add);
  CHECK(result.response_headers[1].value == "example.com");
  CHECK(result.response_headers[2].kind == caddyfile::HeaderOp::Kind::Delete);
  CHECK(result.response_headers[2].field == "Server");
}

TEST_CASE("a placeholder decoding CR, LF or NUL never splits a response field", "[routes]") {
  // Found by tests/fuzz/http_request_fuzz: {path} decodes %0d%0a.
  serve::RouteResult result = run("header X-Path {path}\nrespond ok", request("/a%0d%0aSet-Cookie:%20evil=1%00"));
  REQUIRE(result.response_headers.size() == 1);
  CHECK(result.response_headers[0].value == "/a  Set-Cookie: evil=1 ");
  result = run("redir /old/* /new{path} 301", request("/old/x%0d%0aX-Injected:%201"));
  CHECK(result.kind == serve::RouteResult::Kind::Redirect);
  CHECK(result.location.find_first_of("\r\n") == std::string::npos);
}

TEST_CASE("uri strip_prefix, strip_suffix and replace change the path later handlers see",
          "[routes]") {
  CHECK(answer("uri strip_prefix /p\nfile_server", request("/p/a/b")) == "<files /a/b>");
  CHECK(answer("uri strip_prefix /p\nfile_server", request("/q/a")) == "<files /q/a>");
  CHECK(answer("uri strip_suffix .html\nfile_server", request("/a.html")) == "<files /a>");
  CHECK(answer("uri replace /old/ /new/\nfile_server", request("/old/x")) == "<files /new/x>");
  CHECK(answer("uri strip_prefix /p\nrespond /a/* A", request("/p/a/1")) == "A");
}

TEST_CASE("rewrite changes the path, and the query when it has one", "[routes]") {
  serve::RouteResult result = run("rewrite * /index.html\nfile_server", request("/deep/link?x=1"));
  REQUIRE(result.kind == Kind::Files);
  CHECK(result.path == "/index.html");
  CHECK(result.query == "x=1");

  result = run("rewrite /old /new?from={path}&{query}\nfile_server", request("/old?a=b"));
  CHECK(result.path == "/new");
  CHECK(result.query == "from=%2Fold&a=b");

  result = run("rewrite * /x{path}\nrespond {uri}", request("/a%20b"));
  CHECK(result.body == "/x/a%20b");
}

TEST_CASE("encode records its options and the chain goes on, and the last one that ran wins",
          "[routes][encode]") {
  serve::RouteResult result = run("encode gzip {\n minimum_length 100\n}\nfile_server", request("/a.css"));
  REQUIRE(result.kind == Kind::Files);
  REQUIRE(result.encode);
  REQUIRE(result.encode->formats.size() == 1);
  CHECK(result.encode->formats[0].name == "gzip");
  CHECK(result.encode->minimum_length == 100);

  // The inner encode runs after the outer one: its options apply to the answer.
  result = run("encode zstd\nhandle /api/* {\n encode gzip\n respond api\n}\nrespond site",
               request("/api/x"));
  CHECK(result.body == "api");
  REQUIRE(result.encode);
  CHECK(result.encode->formats[0].name == "gzip");
  result = run("encode zstd\nhandle /api/* {\n encode gzip\n respond api\n}\nrespond site",
               request("/other"));
  CHECK(result.body == "site");
  CHECK(result.encode->formats[0].name == "zstd");

  // Not when its matcher fails, nor when the answer came first.
  CHECK_FALSE(run("encode /api/* gzip\nrespond hi", request("/")).encode);
  CHECK_FALSE(run("route {\n respond hi\n encode gzip\n}", request("/")).encode);
  CHECK(run("encode\n", request("/")).kind == Kind::Empty);
}

TEST_CASE("reverse_proxy answers Proxy with its handler and the rewritten path and query", "[routes]") {
  const caddyfile::Site site = site_of("handle_path /api/* {\n reverse_proxy a:1 b:2\n}\nrespond no");
  serve::RouteResult result = serve::evaluate_routes(site, request("/api/v1/x?q=1"));
  REQUIRE(result.kind == Kind::Proxy);
  REQUIRE(result.proxy != nullptr);
  CHECK(result.proxy->upstreams.size() == 2);
  CHECK(result.path == "/v1/x");
  CHECK(result.query == "q=1");
  CHECK(serve::evaluate_routes(site, request("/other")).kind == Kind::Respond);
}

TEST_CASE("handle_response routes run on the request as proxied, with the upstream's response at hand", "[routes]") {
  const caddyfile::Site site = site_of(
      "root * /srv\nheader X-Outer 1\nrewrite /old /new\nreverse_proxy a:1 {\n"
      " @e status 5xx\n handle_response @e {\n  respond \"{rp.status_code}|{rp.status_text}|{rp.header.X-Why}|{path}\" 502\n }\n"
      " @c status 404\n handle_response @c {\n  copy_response_headers {\n   include X-Keep\n  }\n  copy_response 410\n }\n"
      " handle_response {\n  file_server\n }\n}");
  const serve::RouteResult proxied = serve::evaluate_routes(site, request("/old"));
  REQUIRE(proxied.kind == Kind::Proxy);
  CHECK(proxied.root == "/srv");
  const auto& handlers = proxied.proxy->handle_response;
  REQUIRE(handlers.size() == 3);
  serve::RouteRequest req = request("/old");

  serve::UpstreamResponseFacts facts{503, "503 Service Unavailable", {{"X-Why", "busy"}, {"x-why", "really"}}};
  req.upstream = &facts;
  serve::RouteResult r = serve::evaluate_response_routes(handlers[0].routes, req, proxied);
  CHECK(r.kind == Kind::Respond);
  CHECK(r.status == 502);
  CHECK(r.body == "503|503 Service Unavailable|busy,really|/new");
  REQUIRE(r.response_headers.size() == 1);  // the outer `header` still applies
  CHECK(r.response_headers[0].field == "X-Outer");

  // copy_response_headers replaces each included field, every value kept; copy_response answers.
  facts = {404, "404 Not Found", {{"X-Keep", "k1"}, {"X-Drop", "d"}, {"x-keep", "k2"}}};
  r = serve::evaluate_response_routes(handlers[1].routes, req, proxied);
  CHECK(r.kind == Kind::CopyResponse);
  CHECK(r.status == 410);
  std::vector<std::string> ops;
  for (const auto& op : r.response_headers) ops.push_back(std::to_string(static_cast<int>(op.kind)) + op.field + "=" + op.value);
  using Op = caddyfile::HeaderOp::Kind;
  CHECK(ops == std::vector<std::string>{std::to_string(static_cast<int>(Op::Set)) + "X-Outer=1",
                                        std::to_string(static_cast<int>(Op::Delete)) + "X-Keep=",
                                        std::to_string(static_cast<int>(Op::Add)) + "X-Keep=k1",
                                        std::to_string(static_cast<int>(Op::Add)) + "x-keep=k2"});

  // file_server under the outer root, on the rewritten path.
  r = serve::evaluate_response_routes(handlers[2].routes, req, proxied);
  CHECK(r.kind == Kind::Files);
  CHECK(r.files.root == "/srv");
  CHECK(r.path == "/new");

  // Without an upstream response the placeholders are unknown (emptied in a status, kept in a body).
  CHECK(answer("respond \"{rp.status_code}\"", request("/")) == "{http.reverse_proxy.status_code}");
}

TEST_CASE("with no terminal handler the answer is Caddy's empty 200", "[routes]") {
  const serve::RouteResult result = run("root * /srv\nheader X 1", request("/"));
  CHECK(result.kind == Kind::Empty);
  CHECK(result.status == 200);
  CHECK(result.response_headers.size() == 1);
}

TEST_CASE("an unsupported handler answers Unsupported with its file and line when it would run",
          "[routes]") {
  const std::string body = "respond /ok OK\nreverse_proxy /api/* app:80 {\n transport http {\n  versions 3\n }\n}";
  serve::RouteResult result = run(body, request("/api/x"));
  REQUIRE(result.kind == Kind::Unsupported);
  CHECK(result.unsupported == "Caddyfile:3: reverse_proxy transport versions 3 is not supported by serve yet");
  CHECK(answer(body, request("/ok")) == "OK");
  CHECK(answer(body, request("/other")) == "<empty>");

  result = run("@e expression {method} == 'GET'\nrespond @e E", request("/"));
  REQUIRE(result.kind == Kind::Unsupported);
  CHECK(result.unsupported.starts_with("Caddyfile:3: expression matcher"));
}

TEST_CASE(
    "check_routes_supported refuses unsupported directives anywhere and passes supported sites",
    "[routes]") {
  const auto message = [](const std::string& body) -> std::string {
    try {
      serve::check_routes_supported(site_of(body));
    } catch (const serve::Error& e) {
      return e.what();
    }
    return "";
  };
  CHECK(message("handle /api/* {\n reverse_proxy localhost:9000 {\n  transport http {\n   versions 3\n  }\n }\n}\nfile_server") ==
        "Caddyfile:3: reverse_proxy transport versions 3 is not supported by serve yet");
  CHECK(message("reverse_proxy https://localhost:9443 {\n transport http {\n  tls_trusted_ca_certs /nonexistent/ca.pem\n }\n}") ==
        "Caddyfile:2: reverse_proxy: tls_trusted_ca_certs /nonexistent/ca.pem: cannot be read");
  CHECK(message("reverse_proxy localhost:9000 {\n @e status 5xx\n handle_response @e {\n  respond x\n }\n}").empty());
  CHECK(message("reverse_proxy localhost:9000 {\n handle_response {\n  reverse_proxy localhost:9001\n }\n}") ==
        "Caddyfile:4: reverse_proxy inside handle_response is not supported by serve yet");
  CHECK(message("handle /x {\n copy_response 200\n}") ==
        "Caddyfile:3: copy_response can only be used inside reverse_proxy's handle_response");
  CHECK(message("copy_response_headers {\n include X\n}") ==
        "Caddyfile:2: copy_response_headers can only be used inside reverse_proxy's handle_response");
  CHECK(message("handle_errors {\n\n try_files {path}\n}") ==
        "Caddyfile:4: try_files is not supported by serve yet");
  CHECK(message("try_files {path} /index.html\nfile_server") ==
        "Caddyfile:2: try_files is not supported by serve yet");
  CHECK(message("root * /srv\nheader X 1\nencode\nredir /a /b\nhandle_path /s/* {\n uri strip_prefix /x\n "
                "file_server\n}\n"
                "route {\n rewrite * /i.html\n respond hi\n}")
            .empty());
}

TEST_CASE("placeholders expand from the request as Caddy's replacer does", "[routes]") {
  const serve::RouteRequest r =
      request("/dir/file.tar.gz?name=a+b&x=%2F", "GET",
              {{"X-Multi", "1"}, {"x-multi", "2"}, {"Cookie", "a=1; sid=xyz"}});
  struct Case {
    std::string text, expected;
  };
  const std::vector<Case> cases = {
      {"{http.request.host}", "example.com"},
      {"{http.request.hostport}", "example.com"},
      {"{http.request.uri}", "/dir/file.tar.gz?name=a+b&x=%2F"},
      {"{http.request.uri.path}", "/dir/file.tar.gz"},
      {"{http.request.uri.path.dir}", "/dir/"},
      {"{http.request.uri.path.file}", "file.tar.gz"},
      {"{http.request.uri.path.file.ext}", ".gz"},
      {"{http.request.uri.path.file.base}", "file.tar"},
      {"{http.request.uri.path.1}", "file.tar.gz"},
      {"{http.request.uri.query}", "name=a+b&x=%2F"},
      {"{http.request.uri.query.name}|{http.request.uri.query.x}", "a b|/"},
      {"{http.request.method} {http.request.scheme} {http.request.port}", "GET https 443"},
      {"{http.request.remote.host}:{http.request.remote.port}", "203.0.113.7:50123"},
      {"{http.request.header.x-multi}", "1,2"},
      {"{http.request.cookie.sid}", "xyz"},
      {"{http.request.host.labels.0}.{http.request.host.labels.1}", "com.example"},
      {"a{unknown.thing}b", "ab"},
      {"\\{http.request.host\\}", "{http.request.host}"},
      {"{open", "{open"},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    CHECK(serve::expand_placeholders(c.text, r) == c.expected);
  }
  CHECK(serve::expand_placeholders("a{unknown}b", r, serve::UnknownPlaceholder::Keep) ==
        "a{unknown}b");
}

namespace {

// A bcrypt hash of `password` at cost 4 (fast), as `caddy hash-password` makes at cost 14.
std::string bcrypt_of(const std::string& password) {
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  REQUIRE(crypt_gensalt_rn("$2b$", 4, nullptr, 0, salt, sizeof salt) != nullptr);
  auto data = std::make_unique<crypt_data>();
  const char* hash = crypt_r(password.c_str(), salt, data.get());
  REQUIRE(hash != nullptr);
  REQUIRE(std::string_view(hash).starts_with("$2b$04$"));
  return hash;
}

std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int size = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                   reinterpret_cast<const unsigned char*>(bytes.data()),
                                   static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(size));
  return out;
}

serve::RouteRequest with_credentials(std::string target, std::string_view user_password) {
  return request(std::move(target), "GET", {{"Authorization", "Basic " + base64(user_password)}});
}

// "basic_auth <args> { alice <hash> }" then a respond naming the user.
std::string guarded(const std::string& args, const std::string& alice_hash) {
  return "basic_auth " + args + " {\n alice " + alice_hash +
         "\n}\nrespond \"hi {http.auth.user.id}\"";
}

void check_challenge(const serve::RouteResult& result, const std::string& realm) {
  REQUIRE(result.kind == Kind::Respond);
  CHECK(result.status == 401);
  CHECK(result.body.empty());
  CHECK(result.user.empty());
  REQUIRE(result.response_headers.size() == 1);
  CHECK(result.response_headers[0].kind == caddyfile::HeaderOp::Kind::Set);
  CHECK(result.response_headers[0].field == "WWW-Authenticate");
  CHECK(result.response_headers[0].value == "Basic realm=\"" + realm + "\"");
}

}  // namespace

TEST_CASE("basic_auth answers 401 with the challenge unless the credentials match", "[routes]") {
  const caddyfile::Site site = site_of(guarded("", bcrypt_of("s3cret")));
  struct Case {
    std::string what;
    Headers headers;
  };
  const std::vector<Case> refused = {
      {"no Authorization", {}},
      {"wrong password", {{"Authorization", "Basic " + base64("alice:guess")}}},
      {"unknown user", {{"Authorization", "Basic " + base64("bob:s3cret")}}},
      {"empty password", {{"Authorization", "Basic " + base64("alice:")}}},
      {"no colon", {{"Authorization", "Basic " + base64("alices3cret")}}},
      {"not base64", {{"Authorization", "Basic alice:s3cret"}}},
      {"padding left out", {{"Authorization", "Basic " + base64("alice:s3cret!").substr(0, 18)}}},
      {"another scheme", {{"Authorization", "Bearer " + base64("alice:s3cret")}}},
      {"password with NUL",
       {{"Authorization", "Basic " + base64(std::string("alice:s3cret\0x", 14))}}},
  };
  for (const Case& c : refused) {
    INFO(c.what);
    check_challenge(serve::evaluate_routes(site, request("/", "GET", c.headers)), "restricted");
  }

  for (const std::string scheme : {"Basic ", "basic ", "BASIC "}) {
    INFO(scheme);
    const serve::RouteResult result = serve::evaluate_routes(
        site, request("/", "GET", {{"Authorization", scheme + base64("alice:s3cret")}}));
    REQUIRE(result.kind == Kind::Respond);
    CHECK(result.status == 200);
    CHECK(result.body == "hi alice");
    CHECK(result.user == "alice");
    CHECK(result.response_headers.empty());
  }
  // Only the first Authorization field counts, as Go's Header.Get.
  check_challenge(
      serve::evaluate_routes(site, request("/", "GET",
                                           {{"Authorization", "Basic " + base64("alice:guess")},
                                            {"Authorization", "Basic " + base64("alice:s3cret")}})),
      "restricted");
}

TEST_CASE("basic_auth takes bcrypt hashes raw or base64-encoded in either alphabet", "[routes]") {
  const std::string hash = bcrypt_of("pa55 word:x");
  std::string url_safe = base64(hash);
  std::replace(url_safe.begin(), url_safe.end(), '+', '-');
  std::replace(url_safe.begin(), url_safe.end(), '/', '_');
  while (url_safe.ends_with('=')) url_safe.pop_back();
  for (const std::string& encoded : {hash, base64(hash), url_safe}) {
    INFO(encoded);
    const caddyfile::Site site = site_of(guarded("", encoded));
    serve::check_routes_supported(site);
    CHECK(serve::evaluate_routes(site, with_credentials("/", "alice:pa55 word:x")).body ==
          "hi alice");
    check_challenge(serve::evaluate_routes(site, with_credentials("/", "alice:pa55 word")),
                    "restricted");
  }
}

TEST_CASE("a remembered success is tied to the hash it was checked against", "[routes]") {
  const serve::RouteRequest r = with_credentials("/", "alice:first");
  CHECK(answer(guarded("", bcrypt_of("first")), r) == "hi alice");
  CHECK(answer(guarded("", bcrypt_of("first")), r) == "hi alice");
  check_challenge(run(guarded("", bcrypt_of("second")), r), "restricted");
}

TEST_CASE("basic_auth with a matcher guards only the paths it matches, with its realm",
          "[routes]") {
  const std::string body = "basic_auth /admin/* bcrypt \"Admin area\" {\n alice " +
                           bcrypt_of("s3cret") +
                           "\n}\nrespond /admin/* \"admin {http.auth.user.id}\"\n"
                           "respond \"public {http.auth.user.id}\"";
  check_challenge(run(body, request("/admin/users")), "Admin area");
  check_challenge(run(body, with_credentials("/admin/users", "alice:nope")), "Admin area");
  CHECK(answer(body, with_credentials("/admin/users", "alice:s3cret")) == "admin alice");
  // Not authenticated: the placeholder is unknown and the respond body keeps it.
  const serve::RouteResult open = run(body, request("/index.html"));
  CHECK(open.body == "public {http.auth.user.id}");
  CHECK(open.user.empty());
  CHECK(open.status == 200);
}

TEST_CASE("check_routes_supported accepts bcrypt and refuses argon2id and foreign hashes",
          "[routes]") {
  const auto message = [](const std::string& body) -> std::string {
    try {
      serve::check_routes_supported(site_of(body));
    } catch (const serve::Error& e) {
      return e.what();
    }
    return "";
  };
  const std::string hash = bcrypt_of("s3cret");
  CHECK(message(guarded("", hash)).empty());
  CHECK(message("handle /a/* {\n" + guarded("bcrypt", base64(hash)) + "\n}").empty());
  const std::string argon2 = "$argon2id$v=19$m=47104,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";
  CHECK(message(guarded("argon2id", argon2)) ==
        "Caddyfile:2: basic_auth with argon2id is not supported by serve yet");
  CHECK(message("route {\n" + guarded("", "$1$abc$def") + "\n}") ==
        "Caddyfile:3: basic_auth hash of user 'alice' (not bcrypt, raw or base64) is not "
        "supported by serve yet");
  CHECK(message(guarded("", base64("plain text"))) ==
        "Caddyfile:2: basic_auth hash of user 'alice' (not bcrypt, raw or base64) is not "
        "supported by serve yet");

  const serve::RouteResult result =
      run(guarded("argon2id", argon2), with_credentials("/", "alice:s3cret"));
  REQUIRE(result.kind == Kind::Unsupported);
  CHECK(result.unsupported ==
        "Caddyfile:2: basic_auth with argon2id is not supported by serve yet");
}
