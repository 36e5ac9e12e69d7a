// The `encode` handler (issue 8) as Caddy 2.6–2.8 runs it (modules/caddyhttp/encode): which
// content coding a request gets, which responses are compressed, how their header fields change,
// and the gzip and zstd streams. No sockets: the server (server.cpp) applies these to the
// responses of the handlers after an `encode` route (RouteResult::encode). Thread-safe, except
// that one Encoder serves one response at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "acmetool/caddyfile/config_routes.h"

namespace acmetool::serve {

/// Caddy's default levels: gzip 5 (its defaultGzipLevel), zstd 3 (klauspost's SpeedDefault,
/// "roughly the default Zstandard mode (level 3)").
inline constexpr int kDefaultGzipLevel = 5;
inline constexpr int kDefaultZstdLevel = 3;

/// One content coding the handler offers.
struct EncodeFormat {
  std::string name;  ///< "zstd" or "gzip", as written in Accept-Encoding and Content-Encoding
  int level = 0;     ///< zlib's 1–9 for gzip, libzstd's for zstd
};

/// An `encode` handler with Caddy's defaults filled in.
struct EncodeOptions {
  /// The codings offered, most preferred first: the order breaks ties between equal q-values.
  std::vector<EncodeFormat> formats = {{"zstd", kDefaultZstdLevel}, {"gzip", kDefaultGzipLevel}};
  /// Bytes; only longer bodies are compressed (Caddy compares with '>', so 512 itself is not).
  std::uint64_t minimum_length = 512;
  /// `match { header ...; status ... }`, which replaces the default; nullopt: Caddy's default,
  /// a Content-Type matching one of default_encode_types() with any status.
  std::optional<caddyfile::ResponseMatcher> match;
};

/// The options of an adapted `encode` directive: its formats in order, levels ("7"; zstd's
/// "fastest", "default", "better", "best" are 1, 3, 7 and 11, the libzstd levels klauspost's
/// names approximate), minimum_length (absent or 0 is 512, as in Caddy's Provision) and match.
EncodeOptions encode_options(const caddyfile::EncodeHandler& handler);

/// Caddy's default Content-Type patterns (encode.go Provision, from Cloudflare's list of
/// compressible types): "text/*", "application/json*", "image/svg+xml*", ... (34 entries).
std::span<const std::string_view> default_encode_types();

/// The offered format the client prefers for `accept_encoding` (RFC 9110 §12.5.3), as Caddy's
/// AcceptedEncodings ranks them: the highest q-value first, ties in the order of
/// options.formats; q=0 (below 0.00001) excludes a coding; a q-value that does not parse or lies
/// outside [0, 1] counts as 1. Like choose_precompressed (file_server.h), and unlike Caddy,
/// "x-gzip" is gzip (RFC 9110 §8.4.1.3) and '*' gives its q-value to every format not named.
/// `identity` is never chosen: the caller sends the body as is. nullopt: nothing acceptable.
std::optional<EncodeFormat> negotiate_encoding(const EncodeOptions& options,
                                               std::string_view accept_encoding);

/// The request fields that decide the coding; empty means absent (first field line of each).
struct EncodeRequest {
  std::string_view accept_encoding;
  std::string_view cache_control;
  bool websocket = false;  ///< a Sec-WebSocket-Key field is present
};

/// negotiate_encoding, unless the request forbids transforming the response (Cache-Control
/// no-transform, RFC 9111 §5.2.1.6) or is a WebSocket handshake, as in Caddy's ServeHTTP.
std::optional<EncodeFormat> choose_encoding(const EncodeOptions& options,
                                            const EncodeRequest& request);

/// A response as it stands when its body starts.
struct EncodeResponse {
  int status = 200;
  /// Its header fields (names case-insensitive; one entry per field line).
  std::vector<std::pair<std::string_view, std::string_view>> headers;
  /// Bytes: the Content-Length it would have (also for HEAD), else the size of the first piece
  /// of a streamed body, since Caddy decides on the first write.
  std::uint64_t length = 0;
};

/// Whether the response may be compressed, as Caddy's responseWriter decides, whatever the
/// client accepts: no Content-Encoding field yet (a precompressed sidecar keeps its own), no
/// Cache-Control no-transform, length > minimum_length, and the match (status codes, or a class
/// N for Nxx; header patterns "*", "pre*", "*suf", "*in*" or exact, case-insensitive where Caddy
/// compares bytes: media types are case-insensitive, RFC 9110 §8.3.1). Never a 1xx, 204 or 304,
/// which have no body. Unlike Caddy, never a 206 or a response with Content-Range either: its
/// ranges count identity bytes, and a compressed slice would not be the range of the compressed
/// representation that RFC 9110 §14.1.2 defines.
bool should_encode(const EncodeOptions& options, const EncodeResponse& response);

/// The ETag of the response encoded with `encoding`: a strong tag gets "-<encoding>" inside its
/// quotes ("\"abc\"" -> "\"abc-gzip\""), as Caddy's encode.go does after 2.6 (2.6.2 sends the
/// handler's tag unchanged), because RFC 9110 §8.8.3.3 wants distinct strong tags for distinct
/// codings. Weak, empty or malformed tags are unchanged.
std::string encoded_etag(std::string_view etag, std::string_view encoding);

/// An If-None-Match or If-Match value with the "-<encoding>" that encoded_etag adds removed
/// from each strong tag, so that the handler that made the ETag can compare it with its own.
/// Call with the coding the request negotiated, before the handler runs; tags of other codings,
/// weak tags and '*' are kept. (Caddy strips only a single If-None-Match tag.) Not for If-Range:
/// an encoded response offers no ranges, and a range of the identity body is another
/// representation than "abc-gzip" names.
std::string strip_encoded_etags(std::string_view field_value, std::string_view encoding);

/// Whether a Vary value lists `field` (case-insensitive), or is "*": Caddy adds
/// "Vary: Accept-Encoding" only when no Vary line lists it yet.
bool vary_lists(std::string_view vary, std::string_view field);

/// A streaming compressor for one response at a time. Output is appended to `out`, which the
/// caller owns and may reuse; no other buffer is allocated per call. Throws serve::Error when
/// the library fails (out of memory).
class Encoder {
 public:
  virtual ~Encoder() = default;
  /// Compresses `in`; appends what the compressor emits now (it may hold some back).
  virtual void write(std::string_view in, std::string& out) = 0;
  /// Appends everything held back, decodable as it stands, for a streamed response that waits
  /// (Caddy flushes its encoder when the handler flushes).
  virtual void flush(std::string& out) = 0;
  /// Ends the stream: appends the rest and the trailer (gzip's CRC and size, zstd's checksum).
  virtual void finish(std::string& out) = 0;
  /// Starts a new stream with the same settings, keeping the allocated state (Caddy pools its
  /// encoders): reuse one per connection or thread rather than making one per response.
  virtual void reset() = 0;
};

/// A gzip (RFC 1952, through zlib: level 1–9, out-of-range levels are clamped) or zstd
/// (RFC 8878, through libzstd, with Caddy's 128 KiB window so clients need little memory, and a
/// content checksum) compressor. Throws serve::Error for another format.
std::unique_ptr<Encoder> make_encoder(std::string_view format, int level);

/// `data` compressed in one go: make_encoder, write, finish.
std::string encode_all(std::string_view format, int level, std::string_view data);

}  // namespace acmetool::serve
