// Fuzzes our HTTP/1 parsers (libserve/src/http1_parse.cpp): the parser of upstream responses,
// which reads whatever an upstream sends before the proxy relays it, and the server's parser of
// plain request heads. The first input byte picks the request (HEAD or not) and a split size; the
// rest is the response, or the request. Properties, on every input:
//  - a request head parse_plain_request_head takes, Beast's request parser takes too, with the
//    same length, method, target, version, fields in order and keep-alive, and without a body;
//  - head_end finds the same end whether the bytes arrive at once or a few at a time;
//  - a parsed head has a three-digit status, version 10 or 11, and field names and values
//    without CR, LF or NUL (nothing a client could read as another line);
//  - its body decodes to the same bytes, trailers and outcome whether the decoder is given
//    everything at once or pieces of `split` bytes, and never yields more than the bytes given.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>

#include "http1_parse_internal.h"

namespace serve = acmetool::serve;
namespace http1 = serve::http1;

namespace {

void require(bool holds) {
  if (!holds) std::abort();
}

bool clean(std::string_view text) { return text.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos; }

struct Decoded {
  std::string body;
  serve::HeaderFields trailers;
  bool done = false;
  bool failed = false;
};

// Feeds `bytes` to a decoder `split` bytes at a time, keeping what it does not use for the next
// call as a connection's buffer does, then ends the input.
Decoded decode(const http1::Framing& framing, std::string_view bytes, std::size_t split) {
  http1::BodyDecoder decoder(framing, 4096);
  Decoded out;
  std::string buffer;
  std::size_t fed = 0;
  for (;;) {
    const std::size_t more = std::min(split, bytes.size() - fed);
    buffer.append(bytes.substr(fed, more));
    fed += more;
    // As a reader does: decode until nothing more comes of the buffered bytes.
    for (;;) {
      std::string piece;
      const std::size_t used = decoder.decode(buffer, piece, 1024);
      require(used <= buffer.size() && piece.size() <= 1024);
      buffer.erase(0, used);
      out.body += piece;
      if (decoder.done() || decoder.failed() || (used == 0 && piece.empty())) break;
    }
    if (decoder.done() || decoder.failed() || fed == bytes.size()) break;
  }
  if (!decoder.done() && !decoder.failed()) decoder.end_of_input();
  out.done = decoder.done();
  out.failed = decoder.failed();
  if (out.failed) require(!decoder.error().empty() && clean(decoder.error()));
  if (out.done) out.trailers = decoder.trailers();
  return out;
}

// parse_plain_request_head takes a subset of what Beast's parser takes, and reads it the same.
void check_plain_request(std::string_view input) {
  namespace http = boost::beast::http;
  constexpr std::size_t kLimit = 16 * 1024;
  http::request_header<> head;
  bool keep_alive = false;
  const std::size_t used = http1::parse_plain_request_head(input, kLimit, head, keep_alive);
  if (used == 0) return;
  http::request_parser<http::empty_body> parser;
  parser.header_limit(kLimit);
  boost::system::error_code ec;
  const std::size_t taken = parser.put(boost::asio::buffer(input.data(), used), ec);
  require(!ec && parser.is_header_done() && taken == used);
  require(!parser.chunked() && parser.content_length().value_or(0) == 0);
  require(parser.keep_alive() == keep_alive);
  const auto& beast = parser.get();
  require(beast.method_string() == head.method_string() && beast.target() == head.target());
  require(beast.version() == head.version());
  auto a = beast.begin();
  auto b = head.begin();
  for (; a != beast.end() && b != head.end(); ++a, ++b) {
    require(a->name_string() == b->name_string() && a->value() == b->value());
  }
  require(a == beast.end() && b == head.end());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const bool head_request = (data[0] & 0x80) != 0;
  const std::size_t split = 1 + (data[0] & 0x0f);
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  check_plain_request(input);

  std::size_t from = 0;
  const std::size_t end = http1::head_end(input, from);
  std::size_t scanned = 0, piecewise = std::string_view::npos;
  for (std::size_t have = 0; have < input.size() && piecewise == std::string_view::npos;) {
    have = std::min(input.size(), have + split);
    piecewise = http1::head_end(input.substr(0, have), scanned);
  }
  require(piecewise == end);
  if (end == std::string_view::npos) return 0;
  require(end >= 4 && end <= input.size() && input.substr(end - 4, 4) == "\r\n\r\n");

  serve::UpstreamResponseHead head;
  http1::Framing framing;
  std::string why;
  if (http1::parse_head(input.substr(0, end), head_request, head, framing, why) != http1::Parsed::Done) {
    require(!why.empty() && clean(why));
    return 0;
  }
  require(head.status >= 100 && head.status <= 999);
  require(head.version == 10 || head.version == 11);
  require(clean(head.reason));
  for (const auto& [name, value] : head.fields) require(!name.empty() && clean(name) && clean(value));
  if (head_request || head.status < 200 || head.status == 204 || head.status == 304) {
    require(framing.kind == http1::Framing::Kind::None);
  }

  const std::string_view body = input.substr(end);
  const Decoded whole = decode(framing, body, body.size() + 1);
  const Decoded pieces = decode(framing, body, split);
  require(whole.body == pieces.body && whole.done == pieces.done && whole.failed == pieces.failed);
  require(whole.trailers == pieces.trailers);
  require(whole.body.size() <= body.size());
  for (const auto& [name, value] : whole.trailers) require(clean(name) && clean(value));
  return 0;
}
