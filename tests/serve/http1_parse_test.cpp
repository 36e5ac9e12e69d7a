// The server's plain request-head parser (libserve/src/http1_parse.cpp): what it takes it reads
// as Beast's parser does, and every head that frames a body, upgrades, folds a line or is in any
// way doubtful it leaves to Beast's parser (returns 0), which then judges it as it always has.
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "http1_parse_internal.h"

namespace http = boost::beast::http;
namespace http1 = acmetool::serve::http1;

namespace {

constexpr std::size_t kLimit = 16 * 1024;

std::size_t quick(const std::string& bytes, http::request_header<>& head, bool& keep_alive) {
  return http1::parse_plain_request_head(bytes, kLimit, head, keep_alive);
}

}  // namespace

TEST_CASE("a plain request head is read without Beast's parser, as Beast reads it", "[http1_parse]") {
  const std::string bytes =
      "GET /a%20b/c?x=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8 (x86_64)\r\n"
      "Accept:  */*  \r\nConnection: keep-alive\r\nX-Empty:\r\n\r\nGET /next HTTP/1.1\r\n";
  http::request_header<> head;
  bool keep_alive = false;
  const std::size_t used = quick(bytes, head, keep_alive);
  REQUIRE(used == bytes.find("GET /next"));

  http::request_parser<http::empty_body> beast;
  boost::system::error_code ec;
  REQUIRE(beast.put(boost::asio::buffer(bytes.data(), used), ec) == used);
  REQUIRE_FALSE(ec);
  CHECK(head.method() == http::verb::get);
  CHECK(head.target() == beast.get().target());
  CHECK(head.version() == 11);
  CHECK(keep_alive == beast.keep_alive());
  std::vector<std::pair<std::string, std::string>> ours, theirs;
  for (const auto& f : head) ours.emplace_back(f.name_string(), f.value());
  for (const auto& f : beast.get()) theirs.emplace_back(f.name_string(), f.value());
  CHECK(ours == theirs);
  CHECK(head[http::field::accept] == "*/*");

  http::request_header<> old;
  CHECK(quick("GET / HTTP/1.0\r\nHost: a\r\n\r\n", old, keep_alive) > 0);
  CHECK_FALSE(keep_alive);  // HTTP/1.0 without keep-alive
  CHECK(quick("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", old, keep_alive) > 0);
  CHECK(keep_alive);
  http::request_header<> closing;
  CHECK(quick("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", closing, keep_alive) > 0);
  CHECK_FALSE(keep_alive);
  http::request_header<> custom;
  CHECK(quick("PURGE /x HTTP/1.1\r\n\r\n", custom, keep_alive) > 0);
  CHECK(custom.method_string() == "PURGE");
}

TEST_CASE("a request head that frames a body or is doubtful is left to Beast's parser", "[http1_parse]") {
  const std::vector<std::string> heads = {
      "POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
      "POST /x HTTP/1.1\r\ncontent-length: 0\r\n\r\n",
      "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
      "GET / HTTP/1.1\r\nX-Folded: a\r\n b\r\n\r\n",              // obs-fold
      "GET / HTTP/1.1\r\nConnection: close;x\r\n\r\n",            // not a token list
      "GET / HTTP/1.1\r\nConnection: keep-alive,,close\r\n\r\n",  // an empty element
      "GET / HTTP/1.2\r\n\r\n",
      "GET / HTTP/2.0\r\n\r\n",
      "GET /a b HTTP/1.1\r\n\r\n",
      "GET /\x80 HTTP/1.1\r\n\r\n",
      "GET  / HTTP/1.1\r\n\r\n",
      "\r\nGET / HTTP/1.1\r\n\r\n",
      "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
      "GET / HTTP/1.1\r\nX: a\nb\r\n\r\n",
      std::string("GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", 26),
      "GET / HTTP/1.1\nHost: a\n\n",
      "GET / HTTP/1.1\r\nHost: a\r\n",  // not whole yet
  };
  for (const std::string& bytes : heads) {
    INFO(bytes);
    http::request_header<> head;
    bool keep_alive = false;
    CHECK(quick(bytes, head, keep_alive) == 0);
  }
  // A head as long as the limit is Beast's to refuse (431).
  http::request_header<> head;
  bool keep_alive = false;
  const std::string big = "GET / HTTP/1.1\r\nX-Big: " + std::string(kLimit, 'a') + "\r\n\r\n";
  CHECK(quick(big, head, keep_alive) == 0);
}

// An upstream response head with more lines than the field list first has room for, and a
// folded line among them: the list grows while the parser reads (a use after free under ASan
// when the parser read the list's own copy of the lines).
TEST_CASE("an upstream response head with many fields parses whole", "[http1_parse]") {
  std::string bytes = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n";
  for (int i = 0; i < 40; ++i) bytes += "X-Field-" + std::to_string(i) + ": value " + std::to_string(i) + "\r\n";
  bytes += "X-Folded: first\r\n  second\r\n\r\n";
  acmetool::serve::UpstreamResponseHead head;
  http1::Framing framing;
  std::string why;
  REQUIRE(http1::parse_head(bytes, false, head, framing, why) == http1::Parsed::Done);
  REQUIRE(head.fields.size() == 42);
  CHECK(head.fields[0] == acmetool::serve::HeaderFields::Line{"Content-Length", "0"});
  CHECK(head.fields[40] == acmetool::serve::HeaderFields::Line{"X-Field-39", "value 39"});
  CHECK(head.fields[41] == acmetool::serve::HeaderFields::Line{"X-Folded", "first second"});
  CHECK(framing.kind == http1::Framing::Kind::None);
  CHECK(framing.keep_alive);
}
