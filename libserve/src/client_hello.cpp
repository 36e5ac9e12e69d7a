// The ClientHello parser (issue 8). Two layers: the record layer gathers the handshake message
// from as many records as it spans, deciding only at fixed points (a whole record header, a whole
// handshake header, the whole message) so that bytes_wanted is exact and answers are monotonic;
// then the message body is parsed in one pass.
#include "acmetool/serve/client_hello.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <bitset>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace acmetool::serve {
namespace {

using Bytes = std::span<const std::uint8_t>;

constexpr std::uint8_t kHandshakeRecord = 0x16;
constexpr std::uint8_t kClientHelloType = 1;
constexpr std::size_t kRecordHeaderSize = 5;
constexpr std::size_t kHandshakeHeaderSize = 4;
constexpr std::size_t kMaxHostName = 253;         // RFC 1035 §2.3.4, without the trailing dot
constexpr std::size_t kMaxHttpMethod = 24;        // longer tokens are not taken for an HTTP method
constexpr std::uint16_t kServerName = 0;          // RFC 6066 §3
constexpr std::uint16_t kAlpn = 16;               // RFC 7301 §3.1
constexpr std::uint16_t kPreSharedKey = 41;       // RFC 8446 §4.2.11
constexpr std::uint16_t kSupportedVersions = 43;  // RFC 8446 §4.2.1
constexpr std::uint16_t kTls13 = 0x0304;

// Reads big-endian fields and length-prefixed vectors from a span, never past its end. Every
// read returns false, consuming nothing, when the span holds too few bytes.
class Reader {
 public:
  explicit Reader(Bytes bytes) : bytes_(bytes) {}

  std::size_t left() const { return bytes_.size(); }
  bool empty() const { return bytes_.empty(); }

  bool number(std::size_t width, std::uint32_t& out) {
    if (bytes_.size() < width) return false;
    out = 0;
    for (std::size_t i = 0; i < width; ++i) out = (out << 8) | bytes_[i];
    bytes_ = bytes_.subspan(width);
    return true;
  }
  bool take(std::size_t count, Bytes& out) {
    if (bytes_.size() < count) return false;
    out = bytes_.first(count);
    bytes_ = bytes_.subspan(count);
    return true;
  }
  // A vector<floor..ceiling> with a `width`-byte length prefix (RFC 8446 §3.4).
  bool vector(std::size_t width, Bytes& out) {
    Reader copy = *this;
    std::uint32_t length = 0;
    if (!copy.number(width, length) || !copy.take(length, out)) return false;
    *this = copy;
    return true;
  }

 private:
  Bytes bytes_;
};

std::string as_string(Bytes bytes) { return std::string(bytes.begin(), bytes.end()); }

// "0x0304" for width 4, "0x7f" for width 2.
std::string hex(std::uint32_t value, int width = 4) {
  char text[12];
  std::snprintf(text, sizeof text, "0x%0*x", width, static_cast<unsigned>(value));
  return text;
}

ClientHelloResult need_more(std::size_t bytes_wanted) {
  ClientHelloResult result;
  result.bytes_wanted = bytes_wanted;
  return result;
}

ClientHelloResult failure(HelloStatus status, std::string error) {
  ClientHelloResult result;
  result.status = status;
  result.error = std::move(error);
  return result;
}

ClientHelloResult invalid(std::string error) {
  return failure(HelloStatus::Invalid, std::move(error));
}

bool is_upper(std::uint8_t byte) { return byte >= 'A' && byte <= 'Z'; }

// The first byte is not 0x16. An HTTP/1.x request line starts with a method token and a space;
// while the bytes are only uppercase letters, the space may still come, so wait for it rather than
// judge a short read.
ClientHelloResult not_tls(Bytes bytes) {
  const auto token_end = std::find_if_not(bytes.begin(), bytes.end(), is_upper);
  const auto token_size = static_cast<std::size_t>(token_end - bytes.begin());
  if (token_end == bytes.end() && token_size <= kMaxHttpMethod) return need_more(1);
  ClientHelloResult result;
  result.status = HelloStatus::NotTls;
  result.looks_like_http = token_size >= 1 && token_size <= kMaxHttpMethod && *token_end == ' ';
  return result;
}

// Checks a 5-byte record header (RFC 8446 §5.1) and returns its payload length, or nullopt with
// `error` set.
std::optional<std::size_t> record_length(Bytes header, std::string& error) {
  Reader reader(header);
  std::uint32_t type = 0, version = 0, length = 0;
  reader.number(1, type);
  reader.number(2, version);
  reader.number(2, length);
  if (type != kHandshakeRecord) {
    error = "record header: content type " + std::to_string(type) +
            " inside the ClientHello, expected handshake (22)";
  } else if (version < 0x0300 || version > 0x0304) {
    error = "record header: version " + hex(version) + " is not SSL 3.0 to TLS 1.3";
  } else if (length == 0) {
    error = "record header: empty handshake record";
  } else if (length > kMaxTlsRecordPayload) {
    error = "record header: length " + std::to_string(length) + " over the " +
            std::to_string(kMaxTlsRecordPayload) + "-byte limit";
  } else {
    return length;
  }
  return std::nullopt;
}

// Checks the 4-byte handshake header. A good one sets `message_size` (header included) and gives
// a NeedMore result, meaning "go on"; a bad one gives the Invalid or TooLarge answer.
ClientHelloResult check_handshake_header(Bytes header, std::size_t& message_size) {
  Reader reader(header);
  std::uint32_t type = 0, length = 0;
  reader.number(1, type);
  reader.number(3, length);
  if (type != kClientHelloType) {
    return invalid("handshake header: message type " + std::to_string(type) +
                   " is not client_hello (1)");
  }
  if (length > kMaxClientHello) {
    return failure(HelloStatus::TooLarge, "handshake header: ClientHello length " +
                                              std::to_string(length) + " over the " +
                                              std::to_string(kMaxClientHello) + "-byte limit");
  }
  message_size = kHandshakeHeaderSize + length;
  return {};
}

// Checks a server_name host_name and stores it normalised; an IP literal is ignored (see header).
std::string take_host_name(Bytes name, ClientHelloInfo& info) {
  for (const std::uint8_t byte : name) {
    if (byte == 0) return "name contains a NUL byte";
    if (byte < 0x21 || byte > 0x7e) return "name contains byte " + hex(byte, 2);
  }
  std::string host = as_string(name);
  if (!host.empty() && host.back() == '.') host.pop_back();
  if (host.empty()) return "empty name";
  if (host.size() > kMaxHostName) {
    return "name of " + std::to_string(host.size()) + " bytes, over " +
           std::to_string(kMaxHostName);
  }
  for (char& c : host) {
    if (is_upper(static_cast<std::uint8_t>(c))) c = static_cast<char>(c - 'A' + 'a');
  }
  std::array<unsigned char, 16> address;
  if (::inet_pton(AF_INET, host.c_str(), address.data()) == 1 ||
      ::inet_pton(AF_INET6, host.c_str(), address.data()) == 1) {
    return "";
  }
  info.server_name = std::move(host);
  return "";
}

// RFC 6066 §3: a ServerNameList holding exactly one host_name.
std::string parse_server_name(Bytes data, ClientHelloInfo& info) {
  Reader reader(data);
  Bytes list;
  if (!reader.vector(2, list) || !reader.empty()) {
    return "list length does not match the extension length";
  }
  Reader entries(list);
  std::uint32_t name_type = 0;
  Bytes name;
  if (!entries.number(1, name_type)) return "empty server_name_list";
  if (name_type != 0) return "name_type " + std::to_string(name_type) + " is not host_name (0)";
  if (!entries.vector(2, name)) return "name length runs past the list";
  if (!entries.empty()) return "more than one name";
  return take_host_name(name, info);
}

// RFC 7301 §3.1: a non-empty ProtocolNameList of non-empty names.
std::string parse_alpn(Bytes data, ClientHelloInfo& info) {
  Reader reader(data);
  Bytes list;
  if (!reader.vector(2, list) || !reader.empty()) {
    return "list length does not match the extension length";
  }
  if (list.empty()) return "empty protocol_name_list";
  Reader names(list);
  while (!names.empty()) {
    Bytes name;
    if (!names.vector(1, name)) return "protocol name length runs past the list";
    if (name.empty()) return "empty protocol name";
    info.alpn.push_back(as_string(name));
  }
  return "";
}

// RFC 8446 §4.2.1: the ClientHello form, a list of 2-byte versions, 2..254 bytes.
std::string parse_supported_versions(Bytes data, ClientHelloInfo& info) {
  Reader reader(data);
  Bytes list;
  if (!reader.vector(1, list) || !reader.empty()) {
    return "list length does not match the extension length";
  }
  if (list.size() < 2 || list.size() % 2 != 0) {
    return "list length " + std::to_string(list.size()) + " is not a positive even number";
  }
  for (std::size_t i = 0; i < list.size(); i += 2) {
    if (((list[i] << 8) | list[i + 1]) == kTls13) info.tls13_offered = true;
  }
  return "";
}

// Parses one extension's body into `info`; returns an error line or "".
std::string parse_extension(std::uint32_t type, Bytes data, ClientHelloInfo& info) {
  std::string error;
  if (type == kServerName) {
    error = parse_server_name(data, info);
    return error.empty() ? "" : "SNI extension: " + error;
  }
  if (type == kAlpn) {
    error = parse_alpn(data, info);
    return error.empty() ? "" : "ALPN extension: " + error;
  }
  if (type == kSupportedVersions) {
    error = parse_supported_versions(data, info);
    return error.empty() ? "" : "supported_versions extension: " + error;
  }
  return "";
}

// The extensions block (RFC 8446 §4.2): each type at most once, pre_shared_key last.
std::string parse_extensions(Bytes block, ClientHelloInfo& info) {
  Reader reader(block);
  std::bitset<65536> seen;
  while (!reader.empty()) {
    std::uint32_t type = 0;
    Bytes data;
    if (!reader.number(2, type)) return "ClientHello: truncated extension type";
    if (!reader.vector(2, data)) {
      return "ClientHello: extension " + hex(type) + " runs past the extensions block";
    }
    if (seen.test(type)) return "ClientHello: extension " + hex(type) + " appears twice";
    seen.set(type);
    if (type == kPreSharedKey && !reader.empty()) {
      return "ClientHello: pre_shared_key is not the last extension";
    }
    if (std::string error = parse_extension(type, data, info); !error.empty()) return error;
  }
  return "";
}

// The ClientHello body (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2). Extensions are optional before TLS
// 1.3, but when the block is there it must fill the rest of the message exactly.
ClientHelloResult parse_body(Bytes body) {
  Reader reader(body);
  std::uint32_t legacy_version = 0;
  Bytes random, session_id, cipher_suites, compression_methods, extensions;
  if (!reader.number(2, legacy_version)) return invalid("ClientHello: truncated in legacy_version");
  if ((legacy_version >> 8) != 3) {
    return invalid("ClientHello: legacy_version " + hex(legacy_version) + " is not TLS");
  }
  if (!reader.take(32, random)) return invalid("ClientHello: truncated in random");
  if (!reader.vector(1, session_id)) return invalid("ClientHello: truncated in legacy_session_id");
  if (session_id.size() > 32) {
    return invalid("ClientHello: legacy_session_id of " + std::to_string(session_id.size()) +
                   " bytes, over 32");
  }
  if (!reader.vector(2, cipher_suites)) return invalid("ClientHello: truncated in cipher_suites");
  if (cipher_suites.size() < 2 || cipher_suites.size() % 2 != 0) {
    return invalid("ClientHello: cipher_suites length " + std::to_string(cipher_suites.size()) +
                   " is not a positive even number");
  }
  if (!reader.vector(1, compression_methods)) {
    return invalid("ClientHello: truncated in legacy_compression_methods");
  }
  if (compression_methods.empty()) return invalid("ClientHello: empty legacy_compression_methods");
  ClientHelloResult result;
  result.status = HelloStatus::Complete;
  if (reader.empty()) return result;
  std::uint32_t declared = 0;
  if (!reader.number(2, declared)) return invalid("ClientHello: truncated in extensions length");
  if (declared != reader.left()) {
    return invalid("ClientHello: extensions length " + std::to_string(declared) +
                   " does not match the " + std::to_string(reader.left()) + " bytes after it");
  }
  reader.take(declared, extensions);
  if (std::string error = parse_extensions(extensions, result.info); !error.empty()) {
    return invalid(std::move(error));
  }
  return result;
}

}  // namespace

ClientHelloResult parse_client_hello(std::span<const std::uint8_t> bytes) {
  if (bytes.empty()) return need_more(1);
  if (bytes[0] != kHandshakeRecord) return not_tls(bytes);
  std::vector<std::uint8_t> message;          // the handshake message, gathered from its records
  std::size_t target = kHandshakeHeaderSize;  // message bytes at the next decision point
  std::size_t at = 0;
  for (;;) {
    if (bytes.size() - at < kRecordHeaderSize) {
      return need_more(kRecordHeaderSize - (bytes.size() - at));
    }
    std::string error;
    const std::optional<std::size_t> record_size =
        record_length(bytes.subspan(at, kRecordHeaderSize), error);
    if (!record_size) return invalid(std::move(error));
    at += kRecordHeaderSize;
    for (std::size_t record_left = *record_size; record_left > 0;) {
      const std::size_t step = std::min(target - message.size(), record_left);
      const std::size_t have = bytes.size() - at;
      if (have < step) {
        // Out of bytes inside this record: the next decision comes when the message reaches
        // `target` in this record or, when `target` lies beyond it, at the next record header.
        const bool target_in_record = target - message.size() <= record_left;
        return need_more((target_in_record ? step : record_left + kRecordHeaderSize) - have);
      }
      message.insert(message.end(), bytes.begin() + at, bytes.begin() + at + step);
      at += step;
      record_left -= step;
      if (message.size() == kHandshakeHeaderSize && target == kHandshakeHeaderSize) {
        ClientHelloResult header = check_handshake_header(message, target);
        if (header.status != HelloStatus::NeedMore) return header;
      }
      if (message.size() == target) return parse_body(Bytes(message).subspan(kHandshakeHeaderSize));
    }
  }
}

namespace {
constexpr std::array<std::uint8_t, 7> kUnrecognizedName = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 112};
constexpr std::array<std::uint8_t, 7> kHandshakeFailure = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 40};
constexpr std::array<std::uint8_t, 7> kInternalError = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 80};
}  // namespace

std::span<const std::uint8_t> unrecognized_name_alert() { return kUnrecognizedName; }
std::span<const std::uint8_t> handshake_failure_alert() { return kHandshakeFailure; }
std::span<const std::uint8_t> internal_error_alert() { return kInternalError; }

}  // namespace acmetool::serve
