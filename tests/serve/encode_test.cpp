// The `encode` handler (issue 8): gzip and zstd streams decoded by the real zlib and libzstd,
// Accept-Encoding negotiation, the decision to compress, and the ETag and Vary changes.
#include "acmetool/serve/encode.h"

#include <zlib.h>
// ZSTD_getFrameHeader is in libzstd's experimental API (exported by the shared library too).
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <vector>

#include "../caddyfile/adapt_helpers.h"
#include "acmetool/serve/error.h"

namespace serve = acmetool::serve;
namespace caddyfile = acmetool::caddyfile;

namespace {

std::string gunzip(const std::string& compressed) {
  z_stream stream{};
  REQUIRE(inflateInit2(&stream, 15 + 16) == Z_OK);
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  stream.avail_in = static_cast<uInt>(compressed.size());
  std::string out;
  int rc = Z_OK;
  while (rc == Z_OK) {
    char buffer[16384];
    stream.next_out = reinterpret_cast<Bytef*>(buffer);
    stream.avail_out = sizeof buffer;
    rc = inflate(&stream, Z_NO_FLUSH);
    out.append(buffer, sizeof buffer - stream.avail_out);
  }
  const bool all_used = stream.avail_in == 0;
  inflateEnd(&stream);
  CHECK(rc == Z_STREAM_END);
  CHECK(all_used);
  return out;
}

std::string unzstd(const std::string& compressed, std::size_t expected_size) {
  std::string out(expected_size + 1, '\0');
  const std::size_t size = ZSTD_decompress(out.data(), out.size(), compressed.data(), compressed.size());
  REQUIRE_FALSE(ZSTD_isError(size));
  out.resize(size);
  return out;
}

std::string decode(const std::string& format, const std::string& compressed, std::size_t expected_size) {
  return format == "gzip" ? gunzip(compressed) : unzstd(compressed, expected_size);
}

std::string random_bytes(std::size_t size) {
  std::mt19937 generator(42);
  std::string out(size, '\0');
  for (char& c : out) c = static_cast<char>(generator());
  return out;
}

std::string repetitive_text(std::size_t size) {
  std::string out;
  while (out.size() < size) out += "<li class=\"entry\">acmetool serves this line again</li>\n";
  out.resize(size);
  return out;
}

// `data` through one encoder in pieces of 1, 7, 4093 and 65537 bytes, in turn.
std::string encode_in_pieces(serve::Encoder& encoder, std::string_view data) {
  static constexpr std::size_t kPieces[] = {1, 7, 4093, 65537};
  std::string out;
  for (std::size_t i = 0; !data.empty(); ++i) {
    const std::string_view piece = data.substr(0, kPieces[i % 4]);
    encoder.write(piece, out);
    data.remove_prefix(piece.size());
  }
  encoder.finish(out);
  return out;
}

serve::EncodeOptions options_of(const std::string& directive) {
  const caddyfile::Config config = caddyfile::test::adapt_text("example.com {\n" + directive + "\n}\n");
  const auto& routes = caddyfile::test::routes_of(config);
  REQUIRE(routes.size() == 1);
  return serve::encode_options(caddyfile::test::handler_as<caddyfile::EncodeHandler>(routes[0]));
}

}  // namespace

TEST_CASE("gzip and zstd streams decode to the input, whatever the pieces", "[encode]") {
  const std::string format = GENERATE(as<std::string>{}, "gzip", "zstd");
  const std::vector<std::pair<const char*, std::string>> inputs = {
      {"empty", ""},
      {"small", "hello, encode"},
      {"1 MiB random", random_bytes(1 << 20)},
      {"1 MiB repetitive", repetitive_text(1 << 20)},
  };
  const auto encoder = serve::make_encoder(format, format == "gzip" ? 5 : 3);
  for (const auto& [name, input] : inputs) {
    INFO(format << " " << name);
    const std::string compressed = encode_in_pieces(*encoder, input);
    CHECK(decode(format, compressed, input.size()) == input);
    CHECK(decode(format, serve::encode_all(format, 1, input), input.size()) == input);
    encoder->reset();
  }
  const std::string text = repetitive_text(1 << 20);
  CHECK(serve::encode_all(format, 9, text).size() < text.size() / 100);
}

TEST_CASE("the streams carry gzip's header and zstd's frame with Caddy's window and a checksum",
          "[encode]") {
  const std::string gzip = serve::encode_all("gzip", 5, "x");
  REQUIRE(gzip.size() > 10);
  CHECK(static_cast<unsigned char>(gzip[0]) == 0x1f);
  CHECK(static_cast<unsigned char>(gzip[1]) == 0x8b);

  const std::string zstd = serve::encode_all("zstd", 19, random_bytes(1 << 20));
  ZSTD_frameHeader header{};
  REQUIRE(ZSTD_getFrameHeader(&header, zstd.data(), zstd.size()) == 0);
  CHECK(header.windowSize <= 128 * 1024);
  CHECK(header.checksumFlag == 1);
  CHECK_FALSE(serve::encode_all("zstd", 3, "").empty());  // an empty body is still a frame
}

TEST_CASE("flush makes everything written so far decodable", "[encode]") {
  const std::string head = repetitive_text(3000);
  SECTION("gzip") {
    const auto encoder = serve::make_encoder("gzip", 5);
    std::string out;
    encoder->write(head, out);
    encoder->flush(out);
    z_stream stream{};
    REQUIRE(inflateInit2(&stream, 15 + 16) == Z_OK);
    std::string decoded(head.size() + 16, '\0');
    stream.next_in = reinterpret_cast<Bytef*>(out.data());
    stream.avail_in = static_cast<uInt>(out.size());
    stream.next_out = reinterpret_cast<Bytef*>(decoded.data());
    stream.avail_out = static_cast<uInt>(decoded.size());
    CHECK(inflate(&stream, Z_SYNC_FLUSH) == Z_OK);
    decoded.resize(decoded.size() - stream.avail_out);
    inflateEnd(&stream);
    CHECK(decoded == head);
  }
  SECTION("zstd") {
    const auto encoder = serve::make_encoder("zstd", 3);
    std::string out;
    encoder->write(head, out);
    encoder->flush(out);
    ZSTD_DCtx* context = ZSTD_createDCtx();
    std::string decoded(head.size() + 16, '\0');
    ZSTD_inBuffer input{out.data(), out.size(), 0};
    ZSTD_outBuffer output{decoded.data(), decoded.size(), 0};
    CHECK_FALSE(ZSTD_isError(ZSTD_decompressStream(context, &output, &input)));
    ZSTD_freeDCtx(context);
    decoded.resize(output.pos);
    CHECK(decoded == head);
  }
}

TEST_CASE("make_encoder refuses formats it does not have", "[encode]") {
  CHECK_THROWS_AS(serve::make_encoder("br", 5), serve::Error);
  CHECK_THROWS_AS(serve::encode_all("deflate", 5, "x"), serve::Error);
}

TEST_CASE("negotiation ranks by q-value, then by the configured order", "[encode]") {
  struct Row {
    const char* accept;
    const char* expected;  // "" for none
  };
  const Row rows[] = {
      {"gzip, deflate, br, zstd", "zstd"},
      {"gzip, deflate, br", "gzip"},
      {"", ""},
      {"identity", ""},
      {"identity, gzip;q=0.5", "gzip"},  // as Caddy: identity is never chosen over a format
      {"gzip;q=0.5, zstd;q=0.8", "zstd"},
      {"zstd;q=0.5, gzip;q=0.8", "gzip"},
      {"gzip;q=0, zstd;q=0", ""},
      {"gzip;q=0, zstd", "zstd"},
      {"gzip;q=0.000001", ""},  // below Caddy's threshold: excluded
      {"*", "zstd"},
      {"*;q=0", ""},
      {"gzip, *;q=0", "gzip"},
      {"*;q=0.5, gzip", "gzip"},
      {"gzip;q=0, *", "zstd"},
      {"br, deflate, compress", ""},
      {"x-gzip", "gzip"},
      {"GZip", "gzip"},
      {"gzip;q=1.5, zstd;q=0.9", "gzip"},  // out of range counts as 1
      {"gzip;q=abc, zstd;q=0.9", "gzip"},
      {"gzip;level=1;q=0.2, zstd;q=0.1", "gzip"},
      {" gzip ; q=0.4 ,zstd;Q=0.3", "gzip"},
      {"zstd;q=0.5, gzip;q=0.500001", "zstd"},  // equal within Caddy's 0.00001: order decides
  };
  const serve::EncodeOptions options;  // zstd, then gzip
  for (const Row& row : rows) {
    INFO(row.accept);
    const auto chosen = serve::negotiate_encoding(options, row.accept);
    CHECK((chosen ? chosen->name : "") == row.expected);
  }

  serve::EncodeOptions gzip_first;
  gzip_first.formats = {{"gzip", 9}, {"zstd", 3}};
  const auto tie = serve::negotiate_encoding(gzip_first, "zstd, gzip");
  REQUIRE(tie);
  CHECK(tie->name == "gzip");
  CHECK(tie->level == 9);
  CHECK(serve::negotiate_encoding(gzip_first, "zstd;q=0.5, gzip;q=0.500001")->name == "gzip");
}

TEST_CASE("requests with no-transform or a WebSocket key get no coding", "[encode]") {
  const serve::EncodeOptions options;
  CHECK(serve::choose_encoding(options, {.accept_encoding = "gzip", .cache_control = "no-cache"})->name ==
        "gzip");
  CHECK_FALSE(serve::choose_encoding(options, {.accept_encoding = "gzip", .cache_control = "max-age=0, No-Transform"}));
  CHECK_FALSE(serve::choose_encoding(options, {.accept_encoding = "gzip", .websocket = true}));
}

TEST_CASE("should_encode follows Caddy's rules for status, length, type and existing coding",
          "[encode]") {
  struct Row {
    int status;
    std::vector<std::pair<std::string_view, std::string_view>> headers;
    std::uint64_t length;
    bool expected;
  };
  using Fields = std::vector<std::pair<std::string_view, std::string_view>>;
  const Fields html = {{"Content-Type", "text/html; charset=utf-8"}};
  const Row rows[] = {
      {200, html, 1000, true},
      {200, {{"content-type", "Text/HTML"}}, 1000, true},
      {200, {{"Content-Type", "application/json; charset=utf-8"}}, 1000, true},
      {200, {{"Content-Type", "image/svg+xml"}}, 1000, true},
      {200, {{"Content-Type", "application/wasm"}}, 1000, true},
      {200, {{"Content-Type", "image/png"}}, 1000, false},
      {200, {{"Content-Type", "application/octet-stream"}}, 1000, false},
      {200, {}, 1000, false},
      {200, html, 511, false},
      {200, html, 512, false},  // Caddy compares with '>'
      {200, html, 513, true},
      {200, {{"Content-Type", "text/css"}, {"Content-Encoding", "gzip"}}, 1000, false},
      {200, {{"Content-Type", "text/css"}, {"Content-Encoding", ""}}, 1000, true},
      {200, {{"Content-Type", "text/css"}, {"Cache-Control", "public, no-transform"}}, 1000, false},
      {200, {{"Content-Type", "text/css"}, {"Content-Range", "bytes 0-999/5000"}}, 1000, false},
      {206, html, 1000, false},
      {204, html, 1000, false},
      {304, html, 1000, false},
      {103, html, 1000, false},
      {404, html, 1000, true},
      {500, html, 1000, true},
  };
  const serve::EncodeOptions options;
  for (const Row& row : rows) {
    INFO(row.status << " " << row.length << " " << (row.headers.empty() ? "" : row.headers[0].second));
    CHECK(serve::should_encode(options, {row.status, row.headers, row.length}) == row.expected);
  }
}

TEST_CASE("a match block replaces the default types", "[encode]") {
  const serve::EncodeOptions images =
      options_of("encode {\n match {\n  status 2xx\n  header Content-Type image/*\n }\n}");
  const auto check = [&](const serve::EncodeOptions& options, int status, std::string_view type) {
    return serve::should_encode(options, {status, {{"Content-Type", type}}, 1000});
  };
  CHECK(check(images, 200, "image/png"));
  CHECK(check(images, 201, "IMAGE/PNG"));
  CHECK_FALSE(check(images, 200, "text/html"));
  CHECK_FALSE(check(images, 404, "image/png"));

  const serve::EncodeOptions statuses = options_of("encode {\n match status 200 404\n}");
  CHECK(check(statuses, 404, "image/png"));
  CHECK_FALSE(check(statuses, 201, "text/html"));

  const serve::EncodeOptions present = options_of("encode {\n match header X-Compress\n}");
  CHECK(serve::should_encode(present, {200, {{"x-compress", "yes"}}, 1000}));
  CHECK_FALSE(serve::should_encode(present, {200, {{"Content-Type", "text/html"}}, 1000}));
}

TEST_CASE("encode options take the adapter's formats, levels and minimum length", "[encode]") {
  const serve::EncodeOptions defaults = options_of("encode");
  REQUIRE(defaults.formats.size() == 2);
  CHECK((defaults.formats[0].name == "zstd" && defaults.formats[0].level == 3));
  CHECK((defaults.formats[1].name == "gzip" && defaults.formats[1].level == 5));
  CHECK(defaults.minimum_length == 512);
  CHECK_FALSE(defaults.match);

  const serve::EncodeOptions tuned = options_of("encode zstd {\n gzip 9\n minimum_length 1024\n}");
  REQUIRE(tuned.formats.size() == 2);
  CHECK((tuned.formats[0].name == "gzip" && tuned.formats[0].level == 9));
  CHECK(tuned.formats[1].name == "zstd");
  CHECK(tuned.minimum_length == 1024);
  CHECK(serve::should_encode(tuned, {200, {{"Content-Type", "text/plain"}}, 1025}));
  CHECK_FALSE(serve::should_encode(tuned, {200, {{"Content-Type", "text/plain"}}, 1024}));

  struct Level {
    const char* block;
    int level;
  };
  for (const Level& row : {Level{"zstd fastest", 1}, Level{"zstd default", 3}, Level{"zstd better", 7},
                           Level{"zstd best", 11}, Level{"gzip 0", 5}, Level{"gzip 1", 1}}) {
    INFO(row.block);
    CHECK(options_of(std::string("encode {\n ") + row.block + "\n}").formats.at(0).level == row.level);
  }
  CHECK(options_of("encode {\n minimum_length 0\n}").minimum_length == 512);  // as Caddy: 0 is unset

  const auto types = serve::default_encode_types();
  CHECK(types.size() == 34);
  CHECK(std::find(types.begin(), types.end(), "text/*") != types.end());
  CHECK(std::find(types.begin(), types.end(), "application/javascript*") != types.end());
}

TEST_CASE("strong ETags get the coding and lose it again in conditional requests", "[encode]") {
  CHECK(serve::encoded_etag("\"abc\"", "gzip") == "\"abc-gzip\"");
  CHECK(serve::encoded_etag("\"\"", "zstd") == "\"-zstd\"");
  CHECK(serve::encoded_etag("W/\"abc\"", "gzip") == "W/\"abc\"");
  CHECK(serve::encoded_etag("", "gzip").empty());
  CHECK(serve::encoded_etag("abc", "gzip") == "abc");

  struct Row {
    const char* field;
    const char* encoding;
    const char* expected;
  };
  const Row rows[] = {
      {"\"abc-gzip\"", "gzip", "\"abc\""},
      {"\"abc-zstd\"", "gzip", "\"abc-zstd\""},
      {"\"abc\"", "gzip", "\"abc\""},
      {"\"a-gzip\", \"b-zstd\",\"c-gzip\"", "gzip", "\"a\", \"b-zstd\", \"c\""},
      {"W/\"abc-gzip\"", "gzip", "W/\"abc-gzip\""},
      {"*", "gzip", "*"},
      {"\"a,b-gzip\"", "gzip", "\"a,b\""},
      {"\"-gzip\"", "gzip", "\"\""},
      {"", "gzip", ""},
  };
  for (const Row& row : rows) {
    INFO(row.field);
    CHECK(serve::strip_encoded_etags(row.field, row.encoding) == row.expected);
  }
  const std::string etag = "\"s6m5utya\"";
  CHECK(serve::strip_encoded_etags(serve::encoded_etag(etag, "zstd"), "zstd") == etag);
}

TEST_CASE("vary_lists finds Accept-Encoding among Vary's members", "[encode]") {
  CHECK(serve::vary_lists("Accept-Encoding", "Accept-Encoding"));
  CHECK(serve::vary_lists("Origin, accept-encoding", "Accept-Encoding"));
  CHECK(serve::vary_lists("*", "Accept-Encoding"));
  CHECK_FALSE(serve::vary_lists("Origin", "Accept-Encoding"));
  CHECK_FALSE(serve::vary_lists("", "Accept-Encoding"));
}
