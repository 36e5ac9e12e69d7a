// The TLS ClientHello parser (issue 8): the HTTPS server peeks at the first bytes of a connection
// and reads SNI and ALPN before any SSL object exists (DESIGN.md §3, "Certificate selection happens
// before OpenSSL sees the connection"), then replays those bytes into OpenSSL's handshake. Pure
// functions over bytes: no I/O, no OpenSSL, no Asio. Fuzzed by tests/fuzz/client_hello_fuzz.cpp.
//
// Parsing is strict, as OpenSSL would be later, so that a connection we would refuse anyway costs
// no certificate lookup (RFC 8446 §4.1.2, §4.2, §5.1; RFC 5246 §6.2.1, §7.4.1.2; RFC 6066 §3;
// RFC 7301 §3.1). Choices where the RFCs leave room:
//  - A record carries at most 2^14 payload bytes, the RFCs' limit for plaintext records: OpenSSL,
//    which gets the same bytes, refuses a larger one (record_overflow), so slack would only let a
//    client make us wait for bytes OpenSSL rejects. Empty handshake records are refused (§5.1).
//  - server_name follows OpenSSL, not Go: the list holds exactly one entry, of type host_name.
//    Go skips other name types; OpenSSL refuses them, and it would refuse the handshake anyway.
//  - An SNI that is an IPv4 or IPv6 literal (RFC 6066 §3 forbids them, yet some clients send
//    them: openssl s_client -servername 127.0.0.1 does) counts as absent: server_name is empty,
//    and the server chooses as it does for a ClientHello without SNI.
//  - pre_shared_key must be the last extension (RFC 8446 §4.2.11), as OpenSSL checks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace acmetool::serve {

/// What the server needs from a ClientHello before any SSL object exists.
struct ClientHelloInfo {
  /// SNI host_name (RFC 6066 §3), as sent minus one trailing dot, ASCII lower-cased: 1..253 bytes
  /// of 0x21-0x7e, never an IP literal. Empty when absent or an IP literal.
  std::string server_name;
  /// ALPN protocol names offered (RFC 7301), in order, byte for byte; each 1..255 bytes. Empty when
  /// the extension is absent.
  std::vector<std::string> alpn;
  /// supported_versions (RFC 8446 §4.2.1) lists 0x0304, TLS 1.3.
  bool tls13_offered = false;

  bool operator==(const ClientHelloInfo&) const = default;
};

/// Outcome of looking at the bytes read so far from a new TLS connection.
enum class HelloStatus {
  /// A valid prefix: read more (ClientHelloResult::bytes_wanted says at least how many more).
  /// Also the answer for a prefix of uppercase letters, which may yet be an HTTP method.
  NeedMore,
  /// The whole ClientHello is here; info is filled. The bytes stay as read: they are replayed
  /// into OpenSSL, which also judges any bytes after the ClientHello.
  Complete,
  /// The first byte is not a TLS handshake record (0x16): plain HTTP sent to the TLS port, an
  /// SSLv2-style hello (first byte 0x80), anything else.
  NotTls,
  /// Malformed: a bad record header, not a ClientHello, bad lengths, a bad SNI (not host_name,
  /// non-ASCII or control bytes, empty, over 253 bytes, several names), duplicate extensions...
  Invalid,
  /// The ClientHello's handshake length exceeds kMaxClientHello.
  TooLarge,
};

/// The answer of parse_client_hello().
struct ClientHelloResult {
  HelloStatus status = HelloStatus::NeedMore;
  ClientHelloInfo info;          ///< filled when Complete, empty otherwise
  std::size_t bytes_wanted = 0;  ///< with NeedMore: no decision before this many more bytes (>= 1)
  /// With NotTls: the bytes start with 1..24 uppercase ASCII letters and a space, like an HTTP/1.x
  /// request line ("GET ", "POST ", "PRI ").
  bool looks_like_http = false;
  /// With Invalid and TooLarge: one line saying what is wrong where, e.g. "SNI extension: name
  /// contains a NUL byte". Empty otherwise.
  std::string error;
};

/// The largest TLS record payload accepted: 2^14, the limit for plaintext records (RFC 8446 §5.1,
/// RFC 5246 §6.2.1). A longer record is Invalid.
inline constexpr std::size_t kMaxTlsRecordPayload = 16384;
/// The largest ClientHello accepted: its handshake length (the 24-bit length after the type byte).
/// A longer one is TooLarge (DESIGN.md §3: 64 KiB).
inline constexpr std::size_t kMaxClientHello = 64 * 1024;

/// Parses `bytes`, everything read so far from the connection. Handles a ClientHello split across
/// several handshake records (each of type 0x16 with a record version 0x0300..0x0304) and a
/// record holding only part of it; never reads past `bytes`. What follows the ClientHello's last
/// byte is not looked at. Deterministic and monotonic: once a prefix gets an answer other than
/// NeedMore, every longer input gets the same answer. Pure and O(n); throws only std::bad_alloc.
ClientHelloResult parse_client_hello(std::span<const std::uint8_t> bytes);

/// The TLS alert record to send before closing for a name we do not serve: fatal
/// unrecognized_name (112), record version 0x0303: 15 03 03 00 02 02 70. Static storage.
std::span<const std::uint8_t> unrecognized_name_alert();
/// The fatal handshake_failure (40) alert record, 15 03 03 00 02 02 28: for other refusals.
std::span<const std::uint8_t> handshake_failure_alert();
/// The fatal internal_error (80) alert record, 15 03 03 00 02 02 50: when we fail, not the client.
std::span<const std::uint8_t> internal_error_alert();

}  // namespace acmetool::serve
