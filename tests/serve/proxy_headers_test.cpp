// reverse_proxy's header rules (issue 9): what the upstream request carries and what the client
// gets back, with the answers Caddy 2.6-2.8 gives.
#include "acmetool/serve/proxy_headers.h"

#include <catch2/catch.hpp>

#include "../caddyfile/adapt_helpers.h"
#include "acmetool/serve/error.h"

namespace serve = acmetool::serve;
namespace caddyfile = acmetool::caddyfile;
using serve::HeaderFields;
using Kind = caddyfile::HeaderOp::Kind;

namespace {

serve::ClientRequestFacts client(std::string ip = "203.0.113.7", bool tls = true) {
  return serve::ClientRequestFacts{
      .remote_ip = std::move(ip), .tls = tls, .host = "example.com:8443"};
}

// Every value of `name`, in order (names compared case-insensitively, as HTTP does).
std::vector<std::string> values(const HeaderFields& fields, std::string name) {
  std::vector<std::string> out;
  const auto lower = [](std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  for (const auto& [field, value] : fields) {
    if (lower(std::string(field)) == lower(name)) out.emplace_back(value);
  }
  return out;
}

using Values = std::vector<std::string>;

caddyfile::HeaderOp op(Kind kind, std::string field, std::string value = "",
                       std::string replacement = "", bool regexp = false) {
  return caddyfile::HeaderOp{.kind = kind,
                             .field = std::move(field),
                             .value = std::move(value),
                             .replacement = std::move(replacement),
                             .regexp = regexp};
}

// Placeholders as the router expands them: {remote_host} and {http.request.uri.path}.
std::string expand_test_placeholders(std::string_view text) {
  std::string out(text);
  using namespace std::string_literals;
  const std::pair<std::string, std::string> known[] = {
      {"{remote_host}", "203.0.113.7"},
      {"{http.request.remote.host}", "203.0.113.7"},
      {"{http.request.uri.path}", "/a\r\nSet-Cookie: x=1\0"s}};
  for (const auto& [name, value] : known) {
    for (std::size_t at = out.find(name); at != std::string::npos;
         at = out.find(name, at + value.size())) {
      out.replace(at, name.size(), value);
    }
  }
  return out;
}

}  // namespace

TEST_CASE("hop-by-hop fields and the fields Connection names do not reach the upstream",
          "[proxy_headers]") {
  const HeaderFields in = {{"Host", "ignored.example"},
                           {"connection", "keep-alive, X-Secret ,close"},
                           {"Keep-Alive", "timeout=5"},
                           {"x-secret", "hunter2"},
                           {"PROXY-CONNECTION", "keep-alive"},
                           {"Proxy-Authorization", "Basic Zm9vOmJhcg=="},
                           {"Transfer-Encoding", "chunked"},
                           {"Trailer", "X-Sum"},
                           {"Upgrade", "h2c"},
                           {"TE", "gzip"},
                           {"Alt-Svc", "h3=\":443\""},
                           {"Accept", "text/html"}};
  const HeaderFields out =
      serve::upstream_request_headers(in, client(), serve::ProxyHeaderOptions{});
  const HeaderFields want = {{"Host", "example.com:8443"},
                             {"Accept", "text/html"},
                             {"X-Forwarded-For", "203.0.113.7"},
                             {"X-Forwarded-Proto", "https"},
                             {"X-Forwarded-Host", "example.com:8443"}};
  CHECK(out == want);
}

TEST_CASE("a Connection list naming Host does not remove the Host the upstream gets", "[proxy_headers]") {
  // Go keeps the Host apart from the header map, so removeConnectionHeaders cannot touch it; with
  // header_up rules and without, the upstream gets the client's Host first.
  const HeaderFields in = {{"Connection", "Host, X-Drop"}, {"X-Drop", "1"}, {"Accept", "*/*"}};
  const HeaderFields want = {{"Host", "example.com:8443"},
                             {"Accept", "*/*"},
                             {"X-Forwarded-For", "203.0.113.7"},
                             {"X-Forwarded-Proto", "https"},
                             {"X-Forwarded-Host", "example.com:8443"}};
  CHECK(serve::upstream_request_headers(in, client(), serve::ProxyHeaderOptions{}) == want);
  serve::ProxyHeaderOptions with_rules;
  with_rules.header_up = {op(Kind::Set, "X-Up", "1")};
  HeaderFields want_with_rules = want;
  want_with_rules.emplace_back("X-Up", "1");
  CHECK(serve::upstream_request_headers(in, client(), with_rules) == want_with_rules);
}

TEST_CASE("Te: trailers survives, other Te values do not", "[proxy_headers]") {
  const auto te = [](std::string value) {
    return values(serve::upstream_request_headers({{"TE", value}}, client(), {}), "Te");
  };
  CHECK(te("gzip, Trailers") == Values{"trailers"});
  CHECK(te("gzip").empty());
}

TEST_CASE("a websocket upgrade keeps Upgrade and Connection: Upgrade", "[proxy_headers]") {
  const HeaderFields in = {{"Connection", "keep-alive, Upgrade"},
                           {"Upgrade", "WebSocket"},
                           {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}};
  CHECK(serve::upgrade_protocol(in) == "websocket");
  CHECK(serve::upgrade_protocol({{"Upgrade", "websocket"}}).empty());
  const HeaderFields out = serve::upstream_request_headers(in, client(), {});
  CHECK(values(out, "Connection") == Values{"Upgrade"});
  CHECK(values(out, "Upgrade") == Values{"websocket"});
  CHECK(values(out, "Sec-WebSocket-Key") == Values{"dGhlIHNhbXBsZSBub25jZQ=="});
}

TEST_CASE("X-Forwarded-* from an untrusted client are replaced, from a trusted proxy kept",
          "[proxy_headers]") {
  const HeaderFields spoofed = {{"X-Forwarded-For", "198.51.100.1"},
                                {"X-Forwarded-For", "10.0.0.9"},
                                {"X-Forwarded-Proto", "https"},
                                {"X-Forwarded-Host", "evil.example"}};
  serve::ProxyHeaderOptions options;
  options.trusted_proxies = serve::parse_trusted_proxies({"10.0.0.0/8", "2001:db8::/32"});

  const HeaderFields untrusted =
      serve::upstream_request_headers(spoofed, client("203.0.113.7", false), options);
  CHECK(values(untrusted, "X-Forwarded-For") == Values{"203.0.113.7"});
  CHECK(values(untrusted, "X-Forwarded-Proto") == Values{"http"});
  CHECK(values(untrusted, "X-Forwarded-Host") == Values{"example.com:8443"});

  const HeaderFields trusted =
      serve::upstream_request_headers(spoofed, client("10.1.2.3", false), options);
  CHECK(values(trusted, "X-Forwarded-For") == Values{"198.51.100.1, 10.0.0.9, 10.1.2.3"});
  CHECK(values(trusted, "X-Forwarded-Proto") == Values{"https"});
  CHECK(values(trusted, "X-Forwarded-Host") == Values{"evil.example"});

  const HeaderFields v6 =
      serve::upstream_request_headers(spoofed, client("2001:db8::1%eth0", false), options);
  CHECK(values(v6, "X-Forwarded-For") == Values{"198.51.100.1, 10.0.0.9, 2001:db8::1"});

  const HeaderFields unknown = serve::upstream_request_headers(spoofed, client("", false), options);
  CHECK(values(unknown, "X-Forwarded-For").empty());
  CHECK(values(unknown, "X-Forwarded-Host").empty());
  CHECK_THROWS_AS(serve::upstream_request_headers(spoofed, client("not-an-ip"), options),
                  serve::Error);
}

TEST_CASE("trusted_proxies ranges match IPv4, IPv6 and IPv4-mapped addresses", "[proxy_headers]") {
  struct Case {
    std::string range, ip;
    bool in;
  };
  const Case cases[] = {
      {"10.0.0.0/8", "10.255.0.1", true},
      {"10.0.0.0/8", "11.0.0.1", false},
      {"10.0.0.0/8", "::ffff:10.1.1.1", true},
      {"192.0.2.77", "192.0.2.77", true},
      {"192.0.2.77", "192.0.2.78", false},
      {"172.16.0.0/12", "172.31.255.255", true},
      {"172.16.0.0/12", "172.32.0.0", false},
      {"2001:db8::/32", "2001:db8:ffff::1", true},
      {"2001:db8::/32", "2001:db9::1", false},
      {"::1", "::1", true},
      {"::ffff:192.0.2.0/120", "192.0.2.9", true},
      {"fe80::/10", "fe80::1%lo", true},
      {"0.0.0.0/0", "198.51.100.1", true},
      {"0.0.0.0/0", "2001:db8::1", false},
      {"::/0", "2001:db8::1", true},
      {"10.0.0.5/8", "10.9.9.9", true},
      {"10.0.0.0/8", "garbage", false},
  };
  for (const Case& c : cases) {
    INFO(c.range << " " << c.ip);
    const std::optional<serve::Cidr> range = serve::parse_cidr(c.range);
    REQUIRE(range);
    CHECK(serve::contains({*range}, c.ip) == c.in);
  }
}

TEST_CASE("invalid trusted_proxies ranges are refused by name", "[proxy_headers]") {
  for (const std::string bad : {"10.0.0.0/33", "2001:db8::/129", "10.0.0/8", "example.com",
                                "10.0.0.0/", "[::1]", "::1%lo", "10.0.0.1:80", "", "1.2.3.4/-1"}) {
    INFO(bad);
    CHECK_FALSE(serve::parse_cidr(bad));
  }
  CHECK_THROWS_WITH(serve::parse_trusted_proxies({"10.0.0.0/8", "10.0.0.0/33"}),
                    "trusted_proxies: invalid IP address or CIDR range '10.0.0.0/33'");
}

TEST_CASE("header_up sets, adds, deletes, replaces with placeholders expanded", "[proxy_headers]") {
  const HeaderFields in = {{"X-Request-Id", "abc"},  {"X-Debug", "1"},
                           {"Trace-Id", "t1"},       {"Accept", "text/html"},
                           {"User-Agent", "curl/8"}, {"Cookie", "a=1; b=2"}};
  serve::ProxyHeaderOptions options;
  options.expand = expand_test_placeholders;
  options.header_up = {
      op(Kind::Set, "X-Real-IP", "{remote_host}"),
      op(Kind::Add, "Accept", "application/json"),
      op(Kind::Delete, "X-*"),
      op(Kind::Delete, "*-id"),
      op(Kind::Replace, "User-Agent", "curl", "client"),
      op(Kind::Replace, "Cookie", "(\\w)=(\\d)", "$1:$2", true),
  };
  const HeaderFields out = serve::upstream_request_headers(in, client(), options);
  // Caddy's order: add and set run before delete, so "X-*" also removes the new X-Real-IP and
  // the X-Forwarded-* fields.
  const HeaderFields want = {{"Host", "example.com:8443"},
                             {"Accept", "text/html"},
                             {"User-Agent", "client/8"},
                             {"Cookie", "a:1; b:2"},
                             {"Accept", "application/json"}};
  CHECK(out == want);
}

TEST_CASE("header_up Set replaces every line of a field and Delete is exact", "[proxy_headers]") {
  serve::ProxyHeaderOptions options;
  options.expand = expand_test_placeholders;
  options.header_up = {op(Kind::Set, "accept", "{remote_host}"),
                       op(Kind::Delete, "X-Forwarded-Proto")};
  const HeaderFields out = serve::upstream_request_headers(
      {{"Accept", "a"}, {"Accept", "b"}, {"X-Forwarded-Protocol", "x"}}, client(), options);
  CHECK(values(out, "Accept") == Values{"203.0.113.7"});
  CHECK(values(out, "X-Forwarded-Proto").empty());
  CHECK(values(out, "X-Forwarded-Protocol") == Values{"x"});
}

TEST_CASE("Host is the client's, the upstream's for TLS upstreams, or what header_up sets",
          "[proxy_headers]") {
  serve::ProxyHeaderOptions options;
  options.upstream_host = "backend.internal:443";
  CHECK(values(serve::upstream_request_headers({}, client(), options), "Host") ==
        Values{"example.com:8443"});
  options.upstream_tls = true;
  const HeaderFields tls = serve::upstream_request_headers({}, client(), options);
  REQUIRE(!tls.empty());
  CHECK(tls[0] == HeaderFields::Line{"Host", "backend.internal:443"});
  CHECK(values(tls, "X-Forwarded-Host") == Values{"example.com:8443"});
  options.header_up = {op(Kind::Set, "Host", "app.example")};
  CHECK(values(serve::upstream_request_headers({}, client(), options), "Host") ==
        Values{"app.example"});
  options.header_up = {op(Kind::Delete, "Host")};
  CHECK(values(serve::upstream_request_headers({}, client(), options), "Host") ==
        Values{"backend.internal:443"});
}

TEST_CASE("CR, LF and NUL from a placeholder cannot inject a field", "[proxy_headers]") {
  serve::ProxyHeaderOptions options;
  options.expand = expand_test_placeholders;
  options.header_up = {op(Kind::Set, "X-Path", "{http.request.uri.path}")};
  options.header_down = {op(Kind::Add, "X-Path", "{http.request.uri.path}")};
  const HeaderFields out = serve::upstream_request_headers({}, client(), options);
  CHECK(values(out, "X-Path") == Values{"/a  Set-Cookie: x=1 "});
  CHECK(values(out, "Set-Cookie").empty());
  HeaderFields response;
  serve::apply_response_headers(response, 200, options);
  CHECK(response == HeaderFields{{"X-Path", "/a  Set-Cookie: x=1 "}});
}

TEST_CASE("the upstream response loses hop-by-hop fields, then header_down runs",
          "[proxy_headers]") {
  serve::ProxyHeaderOptions options;
  options.header_down = {
      op(Kind::Delete, "Server"), op(Kind::Set, "X-Frame-Options", "DENY"),
      op(Kind::Default, "Cache-Control", "no-store"),
      op(Kind::Default, "Content-Type", "text/plain"),
      op(Kind::Replace, "Location", "http://backend.internal", "https://example.com")};
  HeaderFields response = {{"Server", "gunicorn"},
                           {"Content-Type", "text/html"},
                           {"Connection", "close, X-Internal"},
                           {"X-Internal", "1"},
                           {"Keep-Alive", "timeout=5"},
                           {"Te", "trailers"},
                           {"Location", "http://backend.internal/login"}};
  serve::apply_response_headers(response, 302, options);
  const HeaderFields want = {{"Content-Type", "text/html"},
                             {"Location", "https://example.com/login"},
                             {"X-Frame-Options", "DENY"},
                             {"Cache-Control", "no-store"}};
  CHECK(response == want);

  HeaderFields switching = {
      {"Connection", "Upgrade"}, {"Upgrade", "websocket"}, {"Keep-Alive", "x"}};
  serve::apply_response_headers(switching, 101, {});
  CHECK(switching == HeaderFields{{"Connection", "Upgrade"}, {"Upgrade", "websocket"}});
  HeaderFields not_switching = {{"Connection", "Upgrade"}, {"Upgrade", "websocket"}};
  serve::apply_response_headers(not_switching, 200, {});
  CHECK(not_switching.empty());
}

TEST_CASE("options come from the adapted reverse_proxy block", "[proxy_headers]") {
  const caddyfile::Config config = caddyfile::test::adapt_text(
      "example.com {\n"
      "  reverse_proxy https://backend.internal {\n"
      "    trusted_proxies 10.0.0.0/8 ::ffff:192.0.2.0/120\n"
      "    header_up X-Real-IP {remote_host}\n"
      "    header_up -Cookie\n"
      "    header_up User-Agent ^curl/(.*)$ \"curl $1\"\n"
      "    header_down -Server\n"
      "  }\n"
      "}\n");
  const caddyfile::ReverseProxyHandler* handler = nullptr;
  for (const caddyfile::Route& route : config.sites.at(0).routes) {
    if (const auto* rp =
            std::get_if<caddyfile::Boxed<caddyfile::ReverseProxyHandler>>(&route.handler)) {
      handler = &**rp;
    }
  }
  REQUIRE(handler);
  serve::ProxyHeaderOptions options = serve::proxy_header_options(*handler);
  options.expand = expand_test_placeholders;
  options.upstream_host = "backend.internal:443";
  CHECK(options.upstream_tls);
  const HeaderFields out = serve::upstream_request_headers(
      {{"Cookie", "a=1"}, {"User-Agent", "curl/8.5"}, {"X-Forwarded-For", "1.1.1.1"}},
      client("10.2.3.4"), options);
  const HeaderFields want = {
      {"Host", "backend.internal:443"},         {"User-Agent", "curl 8.5"},
      {"X-Forwarded-For", "1.1.1.1, 10.2.3.4"}, {"X-Forwarded-Proto", "https"},
      {"X-Forwarded-Host", "example.com:8443"}, {"X-Real-IP", "203.0.113.7"}};
  CHECK(out == want);

  caddyfile::ReverseProxyHandler bad_regexp;
  bad_regexp.header_down = {op(Kind::Replace, "Location", "(", "x", true)};
  CHECK_THROWS_AS(serve::proxy_header_options(bad_regexp), serve::Error);
}

namespace {

// upstream_request_headers' lines as the HTTP/1.1 request head carries them: values trimmed,
// no framing fields (the head's writer adds its own).
std::string as_field_lines(const HeaderFields& fields) {
  std::string out;
  for (const auto& [name, value] : fields) {
    std::string lower(name);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower == "content-length" || lower == "transfer-encoding") continue;
    const std::size_t first = value.find_first_not_of(" \t");
    const std::size_t last = value.find_last_not_of(" \t");
    out.append(name).append(": ");
    if (first != std::string::npos) out.append(value.substr(first, last - first + 1));
    out += "\r\n";
  }
  return out;
}

}  // namespace

TEST_CASE("the usual request's field lines are written at once, as upstream_request_headers gives them",
          "[proxy_headers]") {
  const std::vector<HeaderFields> usual = {
      {},
      {{"Host", "example.com:8443"}, {"User-Agent", "curl/7.88"}, {"Accept", "*/*"}},
      {{"accept", "  text/html , */*\t"}, {"HOST", "other.example"}, {"Content-Length", "3"}},
      {{"Connection", "keep-alive, X-Drop, close, keep-alive"}, {"X-Drop", "1"}, {"x-drop", "2"}, {"Keep-Alive", "5"},
       {"X-Keep", "3"}, {"Proxy-Authorization", "Basic eA=="}, {"Transfer-Encoding", "chunked"}},
      {{"Connection", "Host"}, {"Cookie", "a=1"}, {"Cookie", "b=2"}, {"Alt-Svc", "h3"}, {"Trailer", "X"}},
  };
  const std::vector<serve::ClientRequestFacts> clients = {
      client(), client("198.51.100.1", false), client("fe80::1%eth0"),
      serve::ClientRequestFacts{.remote_ip = "192.0.2.9", .tls = false, .host = ""}};
  for (const bool tls_upstream : {false, true}) {
    serve::ProxyHeaderOptions options;
    options.upstream_tls = tls_upstream;
    for (const auto& fields : usual) {
      for (const auto& c : clients) {
        std::string out = "before\r\n";
        REQUIRE(serve::write_upstream_request_fields(out, fields, c, options, "10.0.0.5:8080"));
        CHECK(out == "before\r\n" + as_field_lines(serve::upstream_request_headers(fields, c, options, "10.0.0.5:8080", {})));
      }
    }
  }
}

TEST_CASE("requests with header_up, X-Forwarded-*, Upgrade or Te take the longer way", "[proxy_headers]") {
  const auto written = [](const HeaderFields& fields, serve::ClientRequestFacts c = client(),
                          serve::ProxyHeaderOptions options = {}) {
    std::string out = "kept";
    const bool done = serve::write_upstream_request_fields(out, fields, c, options, "10.0.0.5:8080");
    CHECK((done || out == "kept"));
    return done;
  };
  CHECK_FALSE(written({{"X-Forwarded-For", "192.0.2.1"}}));
  CHECK_FALSE(written({{"x-forwarded-proto", "https"}}));
  CHECK_FALSE(written({{"X-Forwarded-Host", "a.example"}}));
  CHECK_FALSE(written({{"Connection", "Upgrade"}, {"Upgrade", "websocket"}}));
  CHECK_FALSE(written({{"TE", "trailers"}}));
  CHECK_FALSE(written({}, client("")));
  CHECK_FALSE(written({}, client("not-an-ip")));
  CHECK_FALSE(written({{"X-Big", std::string(70000, 'a')}}));
  CHECK_FALSE(written({{"Connection", "a, b, c, d, e, f, g, h, i"}}));
  serve::ProxyHeaderOptions rules;
  rules.header_up = {op(Kind::Set, "X-Up", "1")};
  CHECK_FALSE(written({}, client(), rules));
  CHECK(written({{"Connection", "a, b, c, d, e, f, g, h"}}));  // eight named: within the fast path
}
