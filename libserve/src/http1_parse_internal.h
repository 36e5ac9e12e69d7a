// HTTP/1.x parsing without Beast's parser (private to libserve).
// - An upstream's response: the head is parsed once it is whole, straight into the field lines
//   the proxy relays (a HeaderFields: one block, no tree of fields), and the body is decoded by
//   its framing (RFC 9112 §6). The rules are Beast's, which the proxy used before: CRLF line
//   ends, a Content-Length together with a Transfer-Encoding refused, several Content-Lengths
//   only when they agree, a Transfer-Encoding not ending in "chunked" read until the connection
//   closes.
// - A client's request head, when it is plainly valid and frames no body (see
//   parse_plain_request_head); Beast's parser reads every other request.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/beast/http/message.hpp>

#include "acmetool/serve/upstream_client.h"

namespace acmetool::serve::http1 {

/// How a response's body ends (RFC 9112 §6.3).
struct Framing {
  enum class Kind { None, Length, Chunked, UntilClose };
  Kind kind = Kind::None;
  std::uint64_t length = 0;  ///< Kind::Length: the Content-Length
  bool keep_alive = false;   ///< the connection may carry another request after this response
};

enum class Parsed { NeedMore, Done, Invalid };

/// The offset just past the blank line ending the head that starts `bytes`, or npos while it
/// has not all arrived. `from`: where the previous call stopped looking (0 at first), so that a
/// head arriving in many pieces is scanned once.
std::size_t head_end(std::string_view bytes, std::size_t& from);

/// Parses the whole head `bytes` (up to and with its blank line, as head_end found it) into
/// `head` and `framing`. `head_request`: the response to a HEAD, which has no body whatever its
/// fields say; 1xx, 204 and 304 responses have none either. Invalid: `why` says what (one line).
Parsed parse_head(std::string_view bytes, bool head_request, UpstreamResponseHead& head, Framing& framing,
                  std::string& why);

/// Parses field lines ("Name: value" CRLF each, then the blank line) into `fields`, replacing
/// what it held: the head's
/// and a chunked body's trailer section. Values lose their leading and trailing blanks; a line
/// folded onto the next (obs-fold) is joined with a space (RFC 9112 §5.2). False, with `why`,
/// for a line that is not a field.
bool parse_fields(std::string_view lines, HeaderFields& fields, std::string& why);

/// A client's request head read without Beast's parser when that is plainly safe (its fields
/// then go into Beast's, where the handlers read them): the whole head is at the start of
/// `bytes`, shorter than `limit`; its request line is a token method, a target of visible
/// characters and HTTP/1.0 or 1.1; its fields are well-formed, without obs-fold; and it has no
/// Content-Length, Transfer-Encoding or Upgrade field and no Connection list Beast could judge
/// otherwise. Returns the head's length, with `head` filled and `keep_alive` as Beast's parser
/// would say; 0 for everything else, which Beast's parser then reads, accepts or refuses as it
/// always has.
std::size_t parse_plain_request_head(std::string_view bytes, std::size_t limit,
                                     boost::beast::http::request_header<>& head, bool& keep_alive);

/// Decodes a body by its framing from the bytes read so far, which may end anywhere.
class BodyDecoder {
 public:
  BodyDecoder() = default;
  /// `limit`: the longest chunk-size line or trailer section accepted.
  BodyDecoder(const Framing& framing, std::size_t limit);

  /// Appends to `out` what `in` holds of the body, at most `room` bytes; returns how many bytes of
  /// `in` it used. A line not yet whole (a chunk size, the trailers) is left in `in` for the next
  /// call, with more bytes after it.
  std::size_t decode(std::string_view in, std::string& out, std::size_t room);
  /// The connection ended: the end of a body read until then, and for others an error.
  void end_of_input();

  bool done() const { return state_ == State::Done; }
  bool failed() const { return state_ == State::Failed; }
  const std::string& error() const { return error_; }  ///< when failed()
  HeaderFields& trailers() { return trailers_; }       ///< after a chunked body, once done()

 private:
  enum class State { Length, UntilClose, ChunkSize, ChunkData, ChunkDataEnd, Trailers, Done, Failed };
  std::size_t fail(std::string why);

  State state_ = State::Done;
  std::uint64_t left_ = 0;  // of the body (Length) or of the chunk (ChunkData)
  std::size_t limit_ = 0;
  HeaderFields trailers_;
  std::string error_;
};

}  // namespace acmetool::serve::http1
