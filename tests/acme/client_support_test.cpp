// The pure parts of the ACME client: Retry-After, Link headers, problem documents, poll delays.
#include <catch2/catch.hpp>

#include "acmetool/acme/client.h"
#include "client_internal.h"

using namespace acmetool::acme;
using namespace std::chrono_literals;
using std::chrono::system_clock;

TEST_CASE("Retry-After is read as seconds or as an HTTP-date", "[acme][client]") {
  const auto now = system_clock::from_time_t(784111777);  // Sun, 06 Nov 1994 08:49:37 GMT
  CHECK(parse_retry_after("120", now) == 120s);
  CHECK(parse_retry_after(" 0 ", now) == 0s);
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now) == 60s);
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:40:00 GMT", now) == 0s);  // already past
  CHECK(parse_retry_after("99999999999999", now) == 999'999'999s);       // absurd, but not an overflow
  CHECK_FALSE(parse_retry_after("", now).has_value());
  CHECK_FALSE(parse_retry_after("soon", now).has_value());
  CHECK_FALSE(parse_retry_after("-5", now).has_value());
  CHECK_FALSE(parse_retry_after("Sun, 06 Nov 1994 08:50:37 UTC", now).has_value());
}

TEST_CASE("polling waits what Retry-After says, within bounds, and backs off without it", "[acme][client]") {
  CHECK(next_poll_delay(std::nullopt, 400ms) == 400ms);
  CHECK(next_poll_delay(3s, 400ms) == 3000ms);
  CHECK(next_poll_delay(0s, 400ms) == 100ms);      // never hammer the CA
  CHECK(next_poll_delay(3600s, 400ms) == 60000ms);  // the caller's timeout still applies
}

TEST_CASE("Link headers give every target with its rel, several per field", "[acme][client]") {
  const auto links = parse_links({"<https://ca.test/cert/1/alt/1>;rel=\"alternate\", <https://ca.test/dir>;rel=\"index\"",
                                  "<https://ca.test/cert/1/alt/2>; rel=alternate"});
  REQUIRE(links.size() == 3);
  CHECK(links[0] == std::pair<std::string, std::string>{"https://ca.test/cert/1/alt/1", "alternate"});
  CHECK(links[1] == std::pair<std::string, std::string>{"https://ca.test/dir", "index"});
  CHECK(links[2] == std::pair<std::string, std::string>{"https://ca.test/cert/1/alt/2", "alternate"});
  CHECK(parse_links({"garbage", ""}).empty());
}

TEST_CASE("problem documents become ProblemError with subproblems and Retry-After", "[acme][client]") {
  HttpResponse response;
  response.status = 400;
  response.headers = {{"retry-after", "30"}};
  response.body = R"({"type":"urn:ietf:params:acme:error:rejectedIdentifier","detail":"2 names refused",
    "subproblems":[{"type":"urn:ietf:params:acme:error:caa","detail":"CAA forbids","identifier":{"type":"dns","value":"a.test"}},
                   {"type":"urn:ietf:params:acme:error:malformed","detail":"bad name","identifier":{"type":"dns","value":"b..test"}}]})";
  const ProblemError problem = problem_from(response);
  CHECK(problem.type() == "urn:ietf:params:acme:error:rejectedIdentifier");
  CHECK(problem.detail() == "2 names refused");
  CHECK(problem.http_status() == 400);
  CHECK(problem.retry_after() == 30s);
  REQUIRE(problem.subproblems().size() == 2);
  CHECK(problem.subproblems()[0].identifier == "a.test");
  CHECK(problem.subproblems()[1].type == "urn:ietf:params:acme:error:malformed");
  CHECK(std::string(problem.what()) == "urn:ietf:params:acme:error:rejectedIdentifier: 2 names refused");

  response.body = "<html>Bad Gateway</html>";
  response.status = 502;
  response.headers.clear();
  const ProblemError plain = problem_from(response);
  CHECK(plain.type() == "about:blank");
  CHECK(plain.detail() == "HTTP 502");
  CHECK_FALSE(plain.retry_after().has_value());
}

TEST_CASE("identifiers are ip for address literals and dns otherwise", "[acme][client]") {
  CHECK(identifier_for("127.0.0.1") == Identifier{"ip", "127.0.0.1"});
  CHECK(identifier_for("2001:db8::1") == Identifier{"ip", "2001:db8::1"});
  CHECK(identifier_for("example.com") == Identifier{"dns", "example.com"});
  CHECK(identifier_for("*.example.com") == Identifier{"dns", "*.example.com"});
  CHECK(identifier_for("01.2.3.4") == Identifier{"dns", "01.2.3.4"});
}
