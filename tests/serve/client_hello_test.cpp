// The ClientHello parser (issue 8): ClientHellos captured at test time from real clients (openssl
// s_client, curl) on a loopback socket of our own, every split of them into reads and records,
// hand-built malformed hellos, the size limits, and the alert records.
#include "acmetool/serve/client_hello.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "process.h"

namespace serve = acmetool::serve;
using acmetool::test::ChildProcess;
using acmetool::test::TempDir;
using serve::ClientHelloResult;
using serve::HelloStatus;
using Bytes = std::vector<std::uint8_t>;
using namespace std::chrono_literals;

namespace {

// ---- Building ClientHellos by hand ----

void put(Bytes& out, std::size_t value, int width) {
  for (int shift = 8 * (width - 1); shift >= 0; shift -= 8) {
    out.push_back(static_cast<std::uint8_t>(value >> shift));
  }
}

void append(Bytes& out, const Bytes& more) { out.insert(out.end(), more.begin(), more.end()); }

Bytes bytes_of(const std::string& text) { return Bytes(text.begin(), text.end()); }

// A TLS vector: `body` after a `width`-byte length (RFC 8446 §3.4).
Bytes vec(int width, const Bytes& body) {
  Bytes out;
  put(out, body.size(), width);
  append(out, body);
  return out;
}

struct Extension {
  std::uint16_t type = 0;
  Bytes data;
};

// A ClientHello, field by field. The defaults make a valid one with an empty extensions block.
struct HelloBuilder {
  std::uint8_t handshake_type = 1;
  std::uint16_t legacy_version = 0x0303;
  Bytes session_id = Bytes(32, 0xaa);
  Bytes cipher_suites = {0x13, 0x01, 0x13, 0x02};
  Bytes compression_methods = {0};
  std::vector<Extension> extensions;
  bool omit_extensions = false;     // TLS 1.2 style: no extensions block at all
  int extensions_length_delta = 0;  // added to the extensions block's length field
  std::optional<Bytes> raw_block;   // the extensions block as given, instead of `extensions`

  Bytes body() const {
    Bytes out;
    put(out, legacy_version, 2);
    append(out, Bytes(32, 0x42));
    append(out, vec(1, session_id));
    append(out, vec(2, cipher_suites));
    append(out, vec(1, compression_methods));
    if (omit_extensions) return out;
    Bytes block;
    for (const Extension& extension : extensions) {
      put(block, extension.type, 2);
      append(block, vec(2, extension.data));
    }
    if (raw_block) block = *raw_block;
    put(out, static_cast<std::size_t>(static_cast<int>(block.size()) + extensions_length_delta), 2);
    append(out, block);
    return out;
  }
  // The handshake message: type, 24-bit length, body.
  Bytes message() const {
    Bytes out{handshake_type};
    const Bytes content = body();
    put(out, content.size(), 3);
    append(out, content);
    return out;
  }
};

// `payload` as one record of `type` and `version`.
Bytes record(const Bytes& payload, std::uint8_t type = 0x16, std::uint16_t version = 0x0301) {
  Bytes out{type};
  put(out, version, 2);
  append(out, vec(2, payload));
  return out;
}

// `message` in records of the given payload sizes, the last one taking whatever is left.
Bytes framed(const Bytes& message, const std::vector<std::size_t>& sizes = {},
             std::uint16_t version = 0x0301) {
  Bytes out;
  std::size_t at = 0;
  for (const std::size_t size : sizes) {
    append(out, record(Bytes(message.begin() + at, message.begin() + at + size), 0x16, version));
    at += size;
  }
  append(out, record(Bytes(message.begin() + at, message.end()), 0x16, version));
  return out;
}

Bytes framed(const HelloBuilder& hello) { return framed(hello.message()); }

// The payloads of the whole records in `bytes`, concatenated: the handshake bytes.
Bytes unframed(const Bytes& bytes) {
  Bytes out;
  for (std::size_t at = 0; at + 5 <= bytes.size();) {
    const std::size_t length = (std::size_t{bytes[at + 3]} << 8) | bytes[at + 4];
    REQUIRE(at + 5 + length <= bytes.size());
    out.insert(out.end(), bytes.begin() + at + 5, bytes.begin() + at + 5 + length);
    at += 5 + length;
  }
  return out;
}

// server_name extension data with the given (name_type, name) entries.
Bytes sni_entries(const std::vector<std::pair<std::uint8_t, Bytes>>& entries) {
  Bytes list;
  for (const auto& [type, name] : entries) {
    list.push_back(type);
    append(list, vec(2, name));
  }
  return vec(2, list);
}

Extension sni(const std::string& name) { return {0, sni_entries({{0, bytes_of(name)}})}; }
Extension sni_raw(const Bytes& name) { return {0, sni_entries({{0, name}})}; }

Extension alpn(const std::vector<std::string>& names) {
  Bytes list;
  for (const std::string& name : names) append(list, vec(1, bytes_of(name)));
  return {16, vec(2, list)};
}

Extension versions(const std::vector<std::uint16_t>& list) {
  Bytes body;
  for (const std::uint16_t version : list) put(body, version, 2);
  return {43, vec(1, body)};
}

HelloBuilder with_extensions(std::vector<Extension> extensions) {
  HelloBuilder hello;
  hello.extensions = std::move(extensions);
  return hello;
}

ClientHelloResult parse(const Bytes& bytes) { return serve::parse_client_hello(bytes); }

// ---- Capturing ClientHellos from real clients ----

// A loopback listener of our own that takes one connection and reads a ClientHello from it.
class HelloCatcher {
 public:
  HelloCatcher() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof address;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&address), size) != 0 ||
        ::listen(fd_, 4) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
      throw std::runtime_error(std::string("loopback listener: ") + std::strerror(errno));
    }
    port_ = ntohs(address.sin_port);
  }
  HelloCatcher(const HelloCatcher&) = delete;
  HelloCatcher& operator=(const HelloCatcher&) = delete;
  ~HelloCatcher() { ::close(fd_); }

  int port() const { return port_; }

  // Accepts one connection and reads until the parser is done with NeedMore or 5 s have passed,
  // then closes it. Returns what was read (empty when no client came).
  Bytes catch_hello() {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    if (!wait_readable(fd_, deadline)) return {};
    const int connection = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (connection < 0) return {};
    Bytes bytes;
    while (parse(bytes).status == HelloStatus::NeedMore && wait_readable(connection, deadline)) {
      std::uint8_t chunk[4096];
      const ssize_t n = ::read(connection, chunk, sizeof chunk);
      if (n <= 0) break;
      bytes.insert(bytes.end(), chunk, chunk + n);
    }
    ::close(connection);
    return bytes;
  }

 private:
  static bool wait_readable(int fd, std::chrono::steady_clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left <= 0ms) return false;
    pollfd entry{fd, POLLIN, 0};
    return ::poll(&entry, 1, static_cast<int>(left.count())) == 1;
  }

  int fd_ = -1;
  int port_ = 0;
};

// One real client and what its ClientHello must say.
struct RealClient {
  std::string label;
  std::vector<std::string> argv;  // "PORT" is replaced with the catcher's port
  std::string server_name;
  std::vector<std::string> alpn;
  bool tls13_offered = true;
  std::string sent;  // text the ClientHello must contain as sent (the SNI before normalising)
};

struct CapturedHello {
  RealClient client;
  Bytes bytes;
};

std::vector<RealClient> real_clients() {
  const std::vector<std::string> s_client = {"openssl", "s_client", "-connect", "127.0.0.1:PORT"};
  auto openssl = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = s_client;
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  };
  const std::vector<std::string> curl = {"curl", "-sS", "-k", "--http2", "--max-time", "10"};
  auto curl_to = [&](const std::string& host, std::vector<std::string> args) {
    std::vector<std::string> argv = curl;
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("https://" + host + ":PORT/");
    return argv;
  };
  return {
      {"openssl s_client, TLS 1.3",
       openssl({"-servername", "example.test", "-alpn", "h2,http/1.1"}),
       "example.test",
       {"h2", "http/1.1"}},
      {"openssl s_client -tls1_2",
       openssl({"-tls1_2", "-servername", "example.test", "-alpn", "h2,http/1.1"}),
       "example.test",
       {"h2", "http/1.1"},
       false},
      {"openssl s_client, upper case and a trailing dot",
       openssl({"-servername", "Mixed.Example.TEST.", "-alpn", "acme-tls/1"}),
       "mixed.example.test",
       {"acme-tls/1"},
       true,
       "Mixed.Example.TEST."},
      {"openssl s_client -noservername", openssl({"-noservername"}), "", {}},
      {"openssl s_client with an IP literal as SNI, which counts as none",
       openssl({"-servername", "127.0.0.1"}),
       "",
       {},
       true,
       "127.0.0.1"},
      {"curl --http2 by name",
       curl_to("a.example.test", {"--resolve", "a.example.test:PORT:127.0.0.1"}),
       "a.example.test",
       {"h2", "http/1.1"}},
      {"curl --http2 to an IP address (no SNI)", curl_to("127.0.0.1", {}), "", {"h2", "http/1.1"}},
  };
}

// Runs `client` against a listener of our own and returns the bytes it sent first. Stops the
// client by PID whether or not it has given up by itself.
CapturedHello capture(const RealClient& client) {
  HelloCatcher catcher;
  std::vector<std::string> argv = client.argv;
  for (std::string& arg : argv) {
    if (const auto at = arg.find("PORT"); at != std::string::npos) {
      arg.replace(at, 4, std::to_string(catcher.port()));
    }
  }
  TempDir dir("client-hello");
  const auto log = dir.path() / "client.log";
  ChildProcess process = ChildProcess::start(argv, log);
  Bytes bytes = catcher.catch_hello();
  process.stop(SIGTERM, 2s);
  if (bytes.empty()) {
    throw std::runtime_error(client.label + " sent nothing; its log:\n" +
                             acmetool::test::read_text(log));
  }
  return {client, std::move(bytes)};
}

// Every real client's ClientHello, captured once per test process.
const std::vector<CapturedHello>& real_hellos() {
  static const std::vector<CapturedHello> hellos = [] {
    std::vector<CapturedHello> out;
    for (const RealClient& client : real_clients()) out.push_back(capture(client));
    return out;
  }();
  return hellos;
}

void check_info(const serve::ClientHelloInfo& info, const RealClient& client) {
  CHECK(info.server_name == client.server_name);
  CHECK(info.alpn == client.alpn);
  CHECK(info.tls13_offered == client.tls13_offered);
}

// Every proper prefix of `bytes` is NeedMore, with a bytes_wanted that never overshoots the next
// answer; the whole is Complete with the client's info.
void check_every_prefix(const Bytes& bytes, const RealClient& client) {
  std::size_t decision_not_before = 0;
  for (std::size_t size = 0; size < bytes.size(); ++size) {
    const ClientHelloResult result =
        serve::parse_client_hello(std::span<const std::uint8_t>(bytes).first(size));
    INFO("prefix of " << size << " of " << bytes.size() << " bytes");
    REQUIRE(result.status == HelloStatus::NeedMore);
    REQUIRE(result.bytes_wanted >= 1);
    REQUIRE(size + result.bytes_wanted <= bytes.size());
    // Its promise: no answer before size + bytes_wanted; earlier promises still hold.
    REQUIRE(size + result.bytes_wanted >= decision_not_before);
    decision_not_before = size + result.bytes_wanted;
  }
  const ClientHelloResult whole = parse(bytes);
  REQUIRE(whole.status == HelloStatus::Complete);
  check_info(whole.info, client);
}

}  // namespace

TEST_CASE("ClientHellos of real clients give their SNI, ALPN and TLS 1.3 offer",
          "[serve][client_hello]") {
  for (const CapturedHello& hello : real_hellos()) {
    INFO(hello.client.label << ": " << hello.bytes.size() << " bytes");
    const ClientHelloResult result = parse(hello.bytes);
    REQUIRE(result.status == HelloStatus::Complete);
    CHECK(result.error.empty());
    check_info(result.info, hello.client);
    const std::string raw(hello.bytes.begin(), hello.bytes.end());
    CHECK(raw.find(hello.client.sent) != std::string::npos);
  }
}

TEST_CASE("a real ClientHello read a byte at a time is NeedMore until its last byte",
          "[serve][client_hello]") {
  for (const CapturedHello& hello : real_hellos()) {
    INFO(hello.client.label);
    check_every_prefix(hello.bytes, hello.client);
  }
}

TEST_CASE("a real ClientHello re-framed into 2 to 5 records parses the same",
          "[serve][client_hello]") {
  std::mt19937 rng(8);  // fixed seed: the same splits every run
  for (const CapturedHello& hello : real_hellos()) {
    INFO(hello.client.label);
    const Bytes message = unframed(hello.bytes);
    REQUIRE(message.size() > 8);
    // The handshake header itself split at each byte, then random cuts.
    for (std::size_t cut = 1; cut <= 5; ++cut) {
      check_every_prefix(framed(message, {cut}), hello.client);
    }
    for (int round = 0; round < 40; ++round) {
      const std::size_t records = 2 + rng() % 4;
      std::vector<std::size_t> cuts;
      for (std::size_t i = 1; i < records; ++i) cuts.push_back(1 + rng() % (message.size() - 1));
      std::sort(cuts.begin(), cuts.end());
      cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
      std::vector<std::size_t> sizes;
      for (std::size_t i = 0; i < cuts.size(); ++i) {
        sizes.push_back(cuts[i] - (i ? cuts[i - 1] : 0));
      }
      const auto version = static_cast<std::uint16_t>(0x0300 + rng() % 5);
      INFO("record sizes from cuts at " << Catch::Detail::stringify(cuts) << ", version "
                                        << version);
      check_every_prefix(framed(message, sizes, version), hello.client);
    }
  }
}

TEST_CASE("bytes_wanted counts to the next record or handshake boundary", "[serve][client_hello]") {
  const Bytes message = with_extensions({sni("example.test")}).message();  // 4 + body bytes
  const Bytes one_record = framed(message);
  auto wanted = [](const Bytes& bytes, std::size_t size) {
    const ClientHelloResult result =
        serve::parse_client_hello(std::span<const std::uint8_t>(bytes).first(size));
    REQUIRE(result.status == HelloStatus::NeedMore);
    return result.bytes_wanted;
  };
  CHECK(wanted(one_record, 0) == 1);  // the first byte decides TLS or not
  CHECK(wanted(one_record, 1) == 4);  // the rest of the record header
  CHECK(wanted(one_record, 5) == 4);  // the handshake header
  CHECK(wanted(one_record, 7) == 2);
  CHECK(wanted(one_record, 9) == message.size() - 4);  // the whole body
  CHECK(wanted(one_record, one_record.size() - 1) == 1);
  // The first record ends 6 bytes into the body: after it, the next record's header.
  const Bytes two_records = framed(message, {10});
  CHECK(wanted(two_records, 9) == 6 + 5);
  CHECK(wanted(two_records, 15) == 5);
  CHECK(wanted(two_records, 20) == message.size() - 10);
}

TEST_CASE("bytes that are not a TLS handshake record are NotTls, HTTP recognised",
          "[serve][client_hello]") {
  struct Case {
    const char* what;
    Bytes input;
    bool looks_like_http;
  };
  const Case cases[] = {
      {"an HTTP GET", bytes_of("GET / HTTP/1.1\r\nHost: example.test\r\n\r\n"), true},
      {"a request line cut after the method", bytes_of("OPTIONS "), true},
      {"the HTTP/2 preface", bytes_of("PRI * HTTP/2.0\r\n"), true},
      {"lower-case method", bytes_of("get / HTTP/1.1\r\n"), false},
      {"method without its space", bytes_of("GET/ HTTP/1.1\r\n"), false},
      {"a token too long for a method", bytes_of(std::string(25, 'A') + " "), false},
      {"random binary", {0x00, 0xff, 0x13, 0x37, 0x8c, 0x01, 0x16, 0x03}, false},
      {"an application_data record", record({1, 2, 3}, 0x17, 0x0303), false},
      {"an alert record", record({2, 40}, 0x15, 0x0303), false},
      {"an SSLv2-style hello",
       {0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10},
       false},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    const ClientHelloResult result = parse(c.input);
    CHECK(result.status == HelloStatus::NotTls);
    CHECK(result.looks_like_http == c.looks_like_http);
    CHECK(result.error.empty());
  }
  // Only uppercase letters so far: the method's space may still come.
  for (const char* partial : {"G", "GE", "GET", "POST"}) {
    INFO(partial);
    const ClientHelloResult result = parse(bytes_of(partial));
    CHECK(result.status == HelloStatus::NeedMore);
    CHECK(result.bytes_wanted == 1);
  }
}

TEST_CASE("malformed record and handshake headers are Invalid or TooLarge",
          "[serve][client_hello]") {
  const Bytes message = with_extensions({sni("example.test")}).message();
  Bytes bad_second_type = framed(message, {10});
  bad_second_type[5 + 10] = 0x17;
  struct Case {
    const char* what;
    Bytes input;
    HelloStatus status;
    const char* error;
  };
  const Case cases[] = {
      {"record version 0x0200", framed(message, {}, 0x0200), HelloStatus::Invalid,
       "record header: version 0x0200 is not SSL 3.0 to TLS 1.3"},
      {"record version 0x0305", framed(message, {}, 0x0305), HelloStatus::Invalid,
       "version 0x0305"},
      {"an empty record", record({}), HelloStatus::Invalid,
       "record header: empty handshake record"},
      {"a record over 2^14 bytes",
       {0x16, 0x03, 0x01, 0x40, 0x01},
       HelloStatus::Invalid,
       "record header: length 16385 over the 16384-byte limit"},
      {"an application_data record inside the ClientHello", bad_second_type, HelloStatus::Invalid,
       "record header: content type 23 inside the ClientHello, expected handshake (22)"},
      {"a ServerHello", record({2, 0, 0, 2, 3, 3}), HelloStatus::Invalid,
       "handshake header: message type 2 is not client_hello (1)"},
      {"a handshake length over 64 KiB", record({1, 0x01, 0x00, 0x01}), HelloStatus::TooLarge,
       "handshake header: ClientHello length 65537 over the 65536-byte limit"},
      {"an empty ClientHello", record({1, 0, 0, 0}), HelloStatus::Invalid,
       "ClientHello: truncated in legacy_version"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    const ClientHelloResult result = parse(c.input);
    CHECK(result.status == c.status);
    CHECK_THAT(result.error, Catch::Contains(c.error));
  }
  // The limits themselves are accepted: the parser waits for the rest.
  CHECK(parse({0x16, 0x03, 0x01, 0x40, 0x00}).status == HelloStatus::NeedMore);
  CHECK(parse(record({1, 0x01, 0x00, 0x00})).status == HelloStatus::NeedMore);
  CHECK(parse(framed(message, {}, 0x0300)).status == HelloStatus::Complete);
  CHECK(parse(framed(message, {}, 0x0304)).status == HelloStatus::Complete);
}

TEST_CASE("a 64 KiB ClientHello in five full records is Complete, one byte more is TooLarge",
          "[serve][client_hello]") {
  HelloBuilder hello = with_extensions({sni("big.example.test"), {21, {}}});
  const std::size_t body_size = hello.body().size();
  hello.extensions[1].data.assign(serve::kMaxClientHello - body_size, 0);  // padding (RFC 7685)
  const Bytes message = hello.message();
  REQUIRE(message.size() == 4 + serve::kMaxClientHello);
  const std::size_t full = serve::kMaxTlsRecordPayload;
  const ClientHelloResult result = parse(framed(message, {full, full, full, full}));
  CHECK(result.status == HelloStatus::Complete);
  CHECK(result.info.server_name == "big.example.test");

  hello.extensions[1].data.push_back(0);
  const Bytes too_large = framed(hello.message(), {full, full, full, full});
  // Decided from the handshake header alone, before the rest arrives.
  CHECK(parse(Bytes(too_large.begin(), too_large.begin() + 9)).status == HelloStatus::TooLarge);
  CHECK(parse(too_large).status == HelloStatus::TooLarge);
}

TEST_CASE("a ClientHello truncated inside any field is Invalid", "[serve][client_hello]") {
  const HelloBuilder hello =
      with_extensions({sni("example.test"), alpn({"h2"}), versions({0x0304})});
  const Bytes body = hello.body();
  HelloBuilder no_extensions = hello;
  no_extensions.omit_extensions = true;
  const std::size_t before_extensions = no_extensions.body().size();
  for (std::size_t size = 0; size < body.size(); ++size) {
    // The handshake length says `size`: the message is complete but its fields are cut short.
    Bytes message{1};
    put(message, size, 3);
    message.insert(message.end(), body.begin(), body.begin() + size);
    const ClientHelloResult result = parse(framed(message));
    INFO("body cut to " << size << " of " << body.size() << " bytes: " << result.error);
    if (size == before_extensions) {
      CHECK(result.status == HelloStatus::Complete);  // a valid hello without extensions
    } else {
      CHECK(result.status == HelloStatus::Invalid);
      CHECK_FALSE(result.error.empty());
    }
  }
}

TEST_CASE("malformed ClientHello bodies and extensions are Invalid", "[serve][client_hello]") {
  HelloBuilder session_33, odd_suites, no_suites, no_compression, ssl2_version, longer_block,
      shorter_block, extension_past_block, half_extension_type;
  session_33.session_id = Bytes(33, 1);
  odd_suites.cipher_suites = {0x13, 0x01, 0x13};
  no_suites.cipher_suites = {};
  no_compression.compression_methods = {};
  ssl2_version.legacy_version = 0x0200;
  longer_block = shorter_block = with_extensions({sni("example.test")});
  longer_block.extensions_length_delta = 1;
  shorter_block.extensions_length_delta = -1;
  extension_past_block.raw_block = Bytes{0x00, 0x07, 0x00, 0x05, 0x01};
  half_extension_type.raw_block = Bytes{0x00, 0x07, 0x00, 0x00, 0x01};
  Extension sni_list_too_long = sni("example.test");
  sni_list_too_long.data[1] += 1;
  Extension alpn_name_too_long = alpn({"h2"});
  alpn_name_too_long.data[2] = 3;
  struct Case {
    const char* what;
    HelloBuilder hello;
    const char* error;
  };
  const Case cases[] = {
      {"session id of 33 bytes", session_33, "ClientHello: legacy_session_id of 33 bytes, over 32"},
      {"odd cipher_suites length", odd_suites, "ClientHello: cipher_suites length 3 is not"},
      {"no cipher suites", no_suites, "ClientHello: cipher_suites length 0 is not"},
      {"no compression methods", no_compression, "ClientHello: empty legacy_compression_methods"},
      {"legacy_version 0x0200", ssl2_version, "ClientHello: legacy_version 0x0200 is not TLS"},
      {"extensions length one too long", longer_block,
       "ClientHello: extensions length 22 does not match the 21 bytes after it"},
      {"extensions length one too short", shorter_block,
       "ClientHello: extensions length 20 does not match the 21 bytes after it"},
      {"an extension running past the block", extension_past_block,
       "ClientHello: extension 0x0007 runs past the extensions block"},
      {"half an extension type at the end", half_extension_type,
       "ClientHello: truncated extension type"},
      {"duplicate extension", with_extensions({{7, {}}, alpn({"h2"}), {7, {1}}}),
       "ClientHello: extension 0x0007 appears twice"},
      {"duplicate SNI", with_extensions({sni("a.test"), sni("b.test")}),
       "extension 0x0000 appears twice"},
      {"pre_shared_key before another extension", with_extensions({{41, {0, 0}}, sni("a.test")}),
       "ClientHello: pre_shared_key is not the last extension"},
      {"SNI with two names",
       with_extensions({{0, sni_entries({{0, bytes_of("a.test")}, {0, bytes_of("b.test")}})}}),
       "SNI extension: more than one name"},
      {"SNI name_type 1", with_extensions({{0, sni_entries({{1, bytes_of("a.test")}})}}),
       "SNI extension: name_type 1 is not host_name (0)"},
      {"SNI with no data", with_extensions({{0, {}}}), "SNI extension: list length does not match"},
      {"SNI with an empty list", with_extensions({{0, {0, 0}}}),
       "SNI extension: empty server_name_list"},
      {"SNI list length past the extension", with_extensions({sni_list_too_long}),
       "SNI extension: list length does not match"},
      {"SNI with a NUL byte", with_extensions({sni_raw(bytes_of(std::string("a\0b.test", 8)))}),
       "SNI extension: name contains a NUL byte"},
      {"SNI with a control byte", with_extensions({sni("a\x01.test")}),
       "SNI extension: name contains byte 0x01"},
      {"SNI with DEL", with_extensions({sni("a\x7f.test")}),
       "SNI extension: name contains byte 0x7f"},
      {"SNI with a space", with_extensions({sni("a b.test")}),
       "SNI extension: name contains byte 0x20"},
      {"SNI with UTF-8",
       with_extensions({sni("b\xc3\xbc"
                            "cher.test")}),
       "SNI extension: name contains byte 0xc3"},
      {"SNI empty", with_extensions({sni("")}), "SNI extension: empty name"},
      {"SNI a lone dot", with_extensions({sni(".")}), "SNI extension: empty name"},
      {"SNI of 254 bytes", with_extensions({sni(std::string(250, 'a') + ".com")}),
       "SNI extension: name of 254 bytes, over 253"},
      {"ALPN with no data", with_extensions({{16, {}}}),
       "ALPN extension: list length does not match"},
      {"ALPN empty list", with_extensions({alpn({})}), "ALPN extension: empty protocol_name_list"},
      {"ALPN empty name", with_extensions({alpn({"h2", ""})}),
       "ALPN extension: empty protocol name"},
      {"ALPN name past the list", with_extensions({alpn_name_too_long}),
       "ALPN extension: protocol name length runs past the list"},
      {"supported_versions odd", with_extensions({{43, {3, 3, 4, 3}}}),
       "supported_versions extension: list length 3 is not a positive even number"},
      {"supported_versions empty", with_extensions({versions({})}),
       "supported_versions extension: list length 0 is not"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    const ClientHelloResult result = parse(framed(c.hello));
    CHECK(result.status == HelloStatus::Invalid);
    CHECK_THAT(result.error, Catch::Contains(c.error));
    CHECK(result.error.find('\n') == std::string::npos);
    CHECK(result.info == serve::ClientHelloInfo{});
  }
}

TEST_CASE("valid ClientHellos give SNI normalised, IP literals ignored, ALPN in order",
          "[serve][client_hello]") {
  HelloBuilder tls12;
  tls12.omit_extensions = true;
  struct Case {
    const char* what;
    HelloBuilder hello;
    serve::ClientHelloInfo info;
  };
  const Case cases[] = {
      {"no extensions at all (TLS 1.2 style)", tls12, {}},
      {"an empty extensions block", HelloBuilder{}, {}},
      {"a trailing dot stripped",
       with_extensions({sni("example.test.")}),
       {"example.test", {}, false}},
      {"upper case lower-cased",
       with_extensions({sni("WWW.Example.TEST")}),
       {"www.example.test", {}, false}},
      {"253 bytes",
       with_extensions({sni(std::string(249, 'a') + ".com")}),
       {std::string(249, 'a') + ".com", {}, false}},
      {"253 bytes and a trailing dot",
       with_extensions({sni(std::string(249, 'a') + ".com.")}),
       {std::string(249, 'a') + ".com", {}, false}},
      {"any printable ASCII passes to the name rules",
       with_extensions({sni("*_x!.Test")}),
       {"*_x!.test", {}, false}},
      {"an IPv4 literal", with_extensions({sni("192.0.2.1")}), {}},
      {"an IPv6 literal", with_extensions({sni("2001:DB8::1")}), {}},
      {"ALPN in order, one 255-byte name",
       with_extensions({alpn({"http/1.1", std::string(255, 'x'), "h2"})}),
       {"", {"http/1.1", std::string(255, 'x'), "h2"}, false}},
      {"TLS 1.3 offered after GREASE",
       with_extensions({versions({0x0a0a, 0x0304, 0x0303})}),
       {"", {}, true}},
      {"TLS 1.2 and 1.1 only", with_extensions({versions({0x0303, 0x0302})}), {"", {}, false}},
      {"unknown extensions skipped, pre_shared_key last",
       with_extensions(
           {{0xfafa, {}}, sni("a.test"), {21, Bytes(10, 0)}, alpn({"h2"}), {41, {1, 2, 3}}}),
       {"a.test", {"h2"}, false}},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    const ClientHelloResult result = parse(framed(c.hello));
    REQUIRE(result.status == HelloStatus::Complete);
    CHECK(result.info.server_name == c.info.server_name);
    CHECK(result.info.alpn == c.info.alpn);
    CHECK(result.info.tls13_offered == c.info.tls13_offered);
  }
}

TEST_CASE("bytes after the ClientHello are not looked at", "[serve][client_hello]") {
  const HelloBuilder hello = with_extensions({sni("example.test")});
  Bytes same_record = hello.message();
  append(same_record, {0xde, 0xad});  // inside the ClientHello's record
  Bytes next_record = framed(hello);
  append(next_record, {0x17, 0x00, 0x00});  // a broken record header after it
  for (const Bytes& input : {framed(same_record), next_record}) {
    const ClientHelloResult result = parse(input);
    CHECK(result.status == HelloStatus::Complete);
    CHECK(result.info.server_name == "example.test");
  }
}

TEST_CASE("the alert records are fatal unrecognized_name, handshake_failure and internal_error",
          "[serve][client_hello]") {
  auto bytes = [](std::span<const std::uint8_t> alert) {
    return Bytes(alert.begin(), alert.end());
  };
  CHECK(bytes(serve::unrecognized_name_alert()) == Bytes{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x70});
  CHECK(bytes(serve::handshake_failure_alert()) == Bytes{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28});
  CHECK(bytes(serve::internal_error_alert()) == Bytes{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x50});
}
