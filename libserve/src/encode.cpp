// The `encode` handler (encode.h), after Caddy's modules/caddyhttp/encode (encode.go, gzip/,
// zstd/): negotiation, the decision to compress, the field changes, and the gzip (zlib) and zstd
// (libzstd) streams.
#include "acmetool/serve/encode.h"

#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <charconv>

#include "acmetool/serve/error.h"
#include "encode_internal.h"
#include "routes_internal.h"

namespace acmetool::serve {

using routes_detail::iequals;
using routes_detail::lower_char;

// ---- Accept-Encoding

namespace encode_detail {
namespace {

// Without optional whitespace (RFC 9110 §5.6.3) at either end.
std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The text before the next `separator`, which is consumed; all of `rest` when there is none.
std::string_view next_item(std::string_view& rest, char separator) {
  const std::size_t at = rest.find(separator);
  const std::string_view item = rest.substr(0, at);
  rest = at == std::string_view::npos ? std::string_view() : rest.substr(at + 1);
  return item;
}

// The weight of `params` (what follows the coding's first ';'): its "q=" parameter, else 1.
double weight(std::string_view params) {
  double q = 1.0;
  while (!params.empty()) {
    const std::string_view param = trim_ows(next_item(params, ';'));
    if (param.size() < 2 || !iequals(param.substr(0, 2), "q=")) continue;
    const std::string_view value = param.substr(2);
    double parsed = 0;
    const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), parsed);
    const bool valid = error == std::errc() && end == value.data() + value.size();
    q = valid && parsed >= 0 && parsed <= 1 ? parsed : 1.0;
  }
  return q;
}

}  // namespace

std::vector<AcceptedCoding> parse_accept_encoding(std::string_view field) {
  std::vector<AcceptedCoding> accepted;
  while (!field.empty()) {
    std::string_view element = next_item(field, ',');
    AcceptedCoding a;
    const std::string_view coding = trim_ows(next_item(element, ';'));
    if (coding.empty()) continue;
    a.coding.resize(coding.size());
    std::transform(coding.begin(), coding.end(), a.coding.begin(), lower_char);
    if (a.coding == "x-gzip") a.coding = "gzip";
    a.q = weight(element);
    accepted.push_back(std::move(a));
  }
  return accepted;
}

double accepted_q(const std::vector<AcceptedCoding>& accepted, std::string_view coding) {
  const AcceptedCoding* wildcard = nullptr;
  for (const AcceptedCoding& a : accepted) {
    if (a.coding == coding) return a.q;
    if (a.coding == "*" && wildcard == nullptr) wildcard = &a;
  }
  return wildcard != nullptr ? wildcard->q : 0.0;
}

}  // namespace encode_detail

// ---- Options

namespace {

// encode.go Provision's default match, in its order.
constexpr std::string_view kDefaultTypes[] = {
    "application/atom+xml*",      "application/eot*",
    "application/font*",          "application/geo+json*",
    "application/graphql+json*",  "application/javascript*",
    "application/json*",          "application/ld+json*",
    "application/manifest+json*", "application/opentype*",
    "application/otf*",           "application/rss+xml*",
    "application/truetype*",      "application/ttf*",
    "application/vnd.api+json*",  "application/vnd.ms-fontobject*",
    "application/wasm*",          "application/x-httpd-cgi*",
    "application/x-javascript*",  "application/x-opentype*",
    "application/x-otf*",         "application/x-perl*",
    "application/x-protobuf*",    "application/x-ttf*",
    "application/xhtml+xml*",     "application/xml*",
    "font/ttf*",                  "font/otf*",
    "image/svg+xml*",             "image/vnd.microsoft.icon*",
    "image/x-icon*",              "multipart/bag*",
    "multipart/mixed*",           "text/*",
};

// A level as the adapter checked it: a number, or one of zstd's names (klauspost's
// EncoderLevelFromZstd maps levels 3-5 to SpeedDefault, 6-9 to Better, 10 and up to Best).
int parse_level(std::string_view format, std::string_view text) {
  if (format == "zstd") {
    if (text == "fastest") return 1;
    if (text == "better") return 7;
    if (text == "best") return 11;
    if (text == "default") return kDefaultZstdLevel;
  }
  int level = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), level);
  if (error != std::errc() || end != text.data() + text.size() || level <= 0) {
    // gzip 0 is Caddy's default too (Gzip.Provision).
    return format == "gzip" ? kDefaultGzipLevel : kDefaultZstdLevel;
  }
  return level;
}

}  // namespace

std::span<const std::string_view> default_encode_types() { return kDefaultTypes; }

EncodeOptions encode_options(const caddyfile::EncodeHandler& handler) {
  EncodeOptions options;
  options.formats.clear();
  for (const std::string& name : handler.formats) {
    EncodeFormat format{name, name == "gzip" ? kDefaultGzipLevel : kDefaultZstdLevel};
    for (const auto& [level_format, level] : handler.levels) {
      if (level_format == name) format.level = parse_level(name, level);
    }
    options.formats.push_back(std::move(format));
  }
  if (handler.minimum_length && *handler.minimum_length > 0) {
    options.minimum_length = static_cast<std::uint64_t>(*handler.minimum_length);
  }
  options.match = handler.match;
  return options;
}

// ---- Negotiation

std::optional<EncodeFormat> negotiate_encoding(const EncodeOptions& options,
                                               std::string_view accept_encoding) {
  using encode_detail::kQEpsilon;
  const auto accepted = encode_detail::parse_accept_encoding(accept_encoding);
  const EncodeFormat* best = nullptr;
  double best_q = 0;
  for (const EncodeFormat& format : options.formats) {
    const double q = encode_detail::accepted_q(accepted, format.name);
    // A later format must be clearly preferred to beat an earlier one: ties go to the order.
    if (q >= kQEpsilon && (best == nullptr || q - best_q >= kQEpsilon)) {
      best = &format;
      best_q = q;
    }
  }
  if (best == nullptr) return std::nullopt;
  return *best;
}

namespace {

bool contains_no_transform(std::string_view cache_control) {
  std::string_view rest = cache_control;
  while (!rest.empty()) {
    if (iequals(encode_detail::trim_ows(encode_detail::next_item(rest, ',')), "no-transform")) {
      return true;
    }
  }
  return false;
}

}  // namespace

std::optional<EncodeFormat> choose_encoding(const EncodeOptions& options,
                                            const EncodeRequest& request) {
  if (request.websocket || contains_no_transform(request.cache_control)) return std::nullopt;
  return negotiate_encoding(options, request.accept_encoding);
}

// ---- The decision

namespace {

using FieldList = std::vector<std::pair<std::string_view, std::string_view>>;

bool has_value(const FieldList& fields, std::string_view name) {
  return std::any_of(fields.begin(), fields.end(), [&](const auto& field) {
    return iequals(field.first, name) && !field.second.empty();
  });
}

// `s` in lower case: itself when it has no upper-case letter, else a copy in `buffer`.
std::string_view lowered(std::string_view s, std::string& buffer) {
  if (std::none_of(s.begin(), s.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) return s;
  buffer.resize(s.size());
  std::transform(s.begin(), s.end(), buffer.begin(), lower_char);
  return buffer;
}

// Caddy's matchHeaders for one field: any line's value against any pattern; no pattern: the
// field must be present.
template <class Patterns>
bool field_matches(const FieldList& fields, std::string_view name, const Patterns& patterns) {
  std::string value_buffer, pattern_buffer;
  bool present = false;
  for (const auto& [field, value] : fields) {
    if (!iequals(field, name)) continue;
    present = true;
    const std::string_view actual = lowered(value, value_buffer);
    for (const auto& pattern : patterns) {
      if (routes_detail::match_header_value(actual, lowered(pattern, pattern_buffer))) return true;
    }
  }
  return present && std::empty(patterns);
}

// Caddy's StatusCodeMatches: a code below 100 stands for its class (2 for 2xx).
bool status_matches(int status, int wanted) {
  return status == wanted || (wanted < 100 && status / 100 == wanted);
}

bool response_matches(const caddyfile::ResponseMatcher& match, const EncodeResponse& response) {
  if (!match.status.empty() &&
      std::none_of(match.status.begin(), match.status.end(),
                   [&](int wanted) { return status_matches(response.status, wanted); })) {
    return false;
  }
  return std::all_of(match.header.begin(), match.header.end(), [&](const auto& entry) {
    return field_matches(response.headers, entry.first, entry.second);
  });
}

bool no_transform(const FieldList& fields) {
  return std::any_of(fields.begin(), fields.end(), [](const auto& field) {
    return iequals(field.first, "Cache-Control") && contains_no_transform(field.second);
  });
}

}  // namespace

bool encode_detail::matches_response(const caddyfile::ResponseMatcher& match, const EncodeResponse& response) {
  return response_matches(match, response);
}

bool should_encode(const EncodeOptions& options, const EncodeResponse& response) {
  const int status = response.status;
  if (status < 200 || status == 204 || status == 206 || status == 304) return false;
  if (response.length <= options.minimum_length) return false;
  const FieldList& fields = response.headers;
  if (has_value(fields, "Content-Encoding") || has_value(fields, "Content-Range")) return false;
  if (no_transform(fields)) return false;
  if (options.match) return response_matches(*options.match, response);
  return field_matches(fields, "Content-Type", kDefaultTypes);
}

// ---- Field changes

std::string encoded_etag(std::string_view etag, std::string_view encoding) {
  if (etag.size() < 2 || etag.front() != '"' || etag.back() != '"') return std::string(etag);
  std::string out(etag.substr(0, etag.size() - 1));
  out += '-';
  out += encoding;
  out += '"';
  return out;
}

namespace {

// The next element of an entity-tag list (RFC 9110 §8.8.3): a quoted tag, maybe with "W/",
// kept whole even when its opaque part holds a comma; else up to the next comma.
std::string_view next_entity_tag(std::string_view& rest) {
  while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t' || rest.front() == ',')) {
    rest.remove_prefix(1);
  }
  const std::size_t quote = rest.starts_with("W/\"") ? 2 : rest.starts_with('"') ? 0 : std::string_view::npos;
  const std::size_t close = quote == std::string_view::npos ? quote : rest.find('"', quote + 1);
  const std::size_t end = close != std::string_view::npos ? close + 1 : std::min(rest.find(','), rest.size());
  const std::string_view tag = encode_detail::trim_ows(rest.substr(0, end));
  rest.remove_prefix(end);
  return tag;
}

}  // namespace

std::string strip_encoded_etags(std::string_view field_value, std::string_view encoding) {
  const std::string suffix = "-" + std::string(encoding) + "\"";
  std::string out;
  for (std::string_view rest = field_value; !rest.empty();) {
    const std::string_view tag = next_entity_tag(rest);
    if (tag.empty()) continue;
    if (!out.empty()) out += ", ";
    if (tag.starts_with('"') && tag.size() >= suffix.size() + 1 && tag.ends_with(suffix)) {
      out += tag.substr(0, tag.size() - suffix.size());
      out += '"';
    } else {
      out += tag;
    }
  }
  return out;
}

bool vary_lists(std::string_view vary, std::string_view field) {
  while (!vary.empty()) {
    const std::string_view item = encode_detail::trim_ows(encode_detail::next_item(vary, ','));
    if (item == "*" || iequals(item, field)) return true;
  }
  return false;
}

// ---- Compressors

namespace {

// Input handed to one deflate call, so that the room made in `out` stays bounded.
constexpr std::size_t kMaxPiece = std::size_t{1} << 20;
// Enough room that a flush never stalls on a full buffer (zlib asks for more than 6 bytes).
constexpr std::size_t kMinRoom = 256;

class GzipEncoder final : public Encoder {
 public:
  explicit GzipEncoder(int level) {
    // windowBits 15 + 16 asks for the gzip wrapper (RFC 1952) rather than zlib's; memLevel 8 is
    // zlib's default.
    if (deflateInit2(&stream_, std::clamp(level, 1, 9), Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
      throw Error("starting a gzip stream: out of memory");
    }
  }
  GzipEncoder(const GzipEncoder&) = delete;  // zlib's state points back at stream_
  GzipEncoder& operator=(const GzipEncoder&) = delete;
  ~GzipEncoder() override { deflateEnd(&stream_); }

  void write(std::string_view in, std::string& out) override {
    do {
      const std::string_view piece = in.substr(0, kMaxPiece);
      in.remove_prefix(piece.size());
      deflate_into(piece, Z_NO_FLUSH, out);
    } while (!in.empty());
  }
  void flush(std::string& out) override { deflate_into({}, Z_SYNC_FLUSH, out); }
  void finish(std::string& out) override { deflate_into({}, Z_FINISH, out); }
  void reset() override { deflateReset(&stream_); }

 private:
  // zlib's usage: call again while the output filled up (and, finishing, until the end).
  void deflate_into(std::string_view in, int mode, std::string& out) {
    stream_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    stream_.avail_in = static_cast<uInt>(in.size());
    int rc = Z_OK;
    do {
      const std::size_t old_size = out.size();
      const std::size_t room = std::max<std::size_t>(deflateBound(&stream_, stream_.avail_in), kMinRoom);
      out.resize(old_size + room);
      stream_.next_out = reinterpret_cast<Bytef*>(out.data() + old_size);
      stream_.avail_out = static_cast<uInt>(room);
      rc = deflate(&stream_, mode);
      out.resize(old_size + room - stream_.avail_out);
      if (rc == Z_STREAM_ERROR) throw Error("gzip: the stream is in an invalid state");
      // With room to spare, zlib refuses input only after the end: finish() without reset().
      if (rc == Z_BUF_ERROR && stream_.avail_in != 0) throw Error("gzip: write after finish");
    } while (stream_.avail_out == 0 || (mode == Z_FINISH && rc != Z_STREAM_END));
  }

  z_stream stream_{};
};

class ZstdEncoder final : public Encoder {
 public:
  explicit ZstdEncoder(int level) : context_(ZSTD_createCCtx()) {
    if (!context_) throw Error("starting a zstd stream: out of memory");
    set(ZSTD_c_compressionLevel, std::clamp(level, ZSTD_minCLevel(), ZSTD_maxCLevel()));
    // Caddy's WithWindowSize(128<<10): "the default of 8MB for the window is too large for many
    // clients". klauspost's encoder writes a checksum by default.
    set(ZSTD_c_windowLog, 17);
    set(ZSTD_c_checksumFlag, 1);
  }
  void write(std::string_view in, std::string& out) override { compress(in, ZSTD_e_continue, out); }
  void flush(std::string& out) override { compress({}, ZSTD_e_flush, out); }
  void finish(std::string& out) override { compress({}, ZSTD_e_end, out); }
  void reset() override { ZSTD_CCtx_reset(context_.get(), ZSTD_reset_session_only); }

 private:
  void set(ZSTD_cParameter parameter, int value) {
    const std::size_t rc = ZSTD_CCtx_setParameter(context_.get(), parameter, value);
    if (ZSTD_isError(rc)) throw Error(std::string("configuring a zstd stream: ") + ZSTD_getErrorName(rc));
  }

  // Calls until the input is taken (and, flushing or ending, nothing is left to write). Room
  // follows libzstd's hint of what remains, doubling while calls fill it.
  void compress(std::string_view in, ZSTD_EndDirective mode, std::string& out) {
    ZSTD_inBuffer input{in.data(), in.size(), 0};
    std::size_t wanted = ZSTD_compressBound(in.size());
    for (;;) {
      const std::size_t old_size = out.size();
      const std::size_t room = std::clamp(wanted, kMinRoom, ZSTD_CStreamOutSize());
      out.resize(old_size + room);
      ZSTD_outBuffer output{out.data() + old_size, room, 0};
      const std::size_t remaining = ZSTD_compressStream2(context_.get(), &output, &input, mode);
      out.resize(old_size + output.pos);
      if (ZSTD_isError(remaining)) throw Error(std::string("zstd: ") + ZSTD_getErrorName(remaining));
      const bool done = mode == ZSTD_e_continue ? input.pos == input.size : remaining == 0;
      if (done) return;
      wanted = output.pos == room ? room * 2 : std::max(remaining, ZSTD_compressBound(input.size - input.pos));
    }
  }

  struct FreeContext {
    void operator()(ZSTD_CCtx* context) const noexcept { ZSTD_freeCCtx(context); }
  };
  std::unique_ptr<ZSTD_CCtx, FreeContext> context_;
};

}  // namespace

std::unique_ptr<Encoder> make_encoder(std::string_view format, int level) {
  if (format == "gzip") return std::make_unique<GzipEncoder>(level);
  if (format == "zstd") return std::make_unique<ZstdEncoder>(level);
  throw Error("encode: unknown format '" + std::string(format) + "'");
}

std::string encode_all(std::string_view format, int level, std::string_view data) {
  const auto encoder = make_encoder(format, level);
  std::string out;
  encoder->write(data, out);
  encoder->finish(out);
  return out;
}

}  // namespace acmetool::serve
