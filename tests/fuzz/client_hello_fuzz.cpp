// Fuzzes the ClientHello parser, which reads the first bytes of every connection to the HTTPS port
// before anything else has checked them (issue 8). Properties, on every input:
//  - each answer carries what its status promises: bytes_wanted >= 1 with NeedMore, a one-line
//    error with Invalid and TooLarge, a server_name obeying the header's rules with Complete;
//  - answers are monotonic: a prefix answered with anything but NeedMore gets the whole input's
//    answer, and no answer comes sooner than a prefix's bytes_wanted promised;
//  - a Complete ClientHello re-framed into records of another size gives the same info.
#include <arpa/inet.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include "acmetool/serve/client_hello.h"

namespace serve = acmetool::serve;
using serve::ClientHelloResult;
using serve::HelloStatus;

namespace {

using Bytes = std::span<const std::uint8_t>;

void require(bool holds) {
  if (!holds) std::abort();
}

bool is_ip_literal(const std::string& name) {
  unsigned char address[16];
  return ::inet_pton(AF_INET, name.c_str(), address) == 1 ||
         ::inet_pton(AF_INET6, name.c_str(), address) == 1;
}

void check_server_name(const std::string& name) {
  if (name.empty()) return;
  require(name.size() <= 253);
  for (const char c : name) require(c >= 0x21 && c <= 0x7e && !(c >= 'A' && c <= 'Z'));
  require(!is_ip_literal(name));
}

// What each status promises about the other fields.
void check_contract(Bytes input, const ClientHelloResult& result) {
  const bool no_info = result.info == serve::ClientHelloInfo{};
  switch (result.status) {
    case HelloStatus::NeedMore:
      require(result.bytes_wanted >= 1 && no_info && result.error.empty());
      break;
    case HelloStatus::Complete:
      require(result.bytes_wanted == 0 && result.error.empty() && !result.looks_like_http);
      check_server_name(result.info.server_name);
      for (const std::string& protocol : result.info.alpn) {
        require(!protocol.empty() && protocol.size() <= 255);
      }
      break;
    case HelloStatus::NotTls:
      require(!input.empty() && input[0] != 0x16 && no_info && result.error.empty());
      if (result.looks_like_http) require(input[0] >= 'A' && input[0] <= 'Z');
      break;
    case HelloStatus::Invalid:
    case HelloStatus::TooLarge:
      require(!result.error.empty() && result.error.find('\n') == std::string::npos && no_info);
      break;
  }
  require(result.status == HelloStatus::NotTls || !result.looks_like_http);
}

// The answer for `prefix` bytes of the input against the answer for all of them.
void check_prefix(Bytes input, std::size_t prefix, const ClientHelloResult& whole) {
  const ClientHelloResult early = serve::parse_client_hello(input.first(prefix));
  check_contract(input.first(prefix), early);
  if (early.status != HelloStatus::NeedMore) {
    require(early.status == whole.status && early.info == whole.info &&
            early.looks_like_http == whole.looks_like_http && early.error == whole.error);
  } else if (input.size() < prefix + early.bytes_wanted) {
    require(whole.status == HelloStatus::NeedMore);
    require(input.size() + whole.bytes_wanted >= prefix + early.bytes_wanted);
  }
}

// The handshake message of a Complete input: its records' payloads up to the message's end.
std::vector<std::uint8_t> handshake_message(Bytes input) {
  std::vector<std::uint8_t> message;
  std::size_t wanted = 4;
  for (std::size_t at = 0; message.size() < wanted;) {
    const std::size_t length = (std::size_t{input[at + 3]} << 8) | input[at + 4];
    at += 5;
    for (std::size_t i = 0; i < length && message.size() < wanted; ++i) {
      message.push_back(input[at + i]);
      if (message.size() == 4) {
        wanted =
            4 + ((std::size_t{message[1]} << 16) | (std::size_t{message[2]} << 8) | message[3]);
      }
    }
    at += length;
  }
  return message;
}

// `message` again, in records of `record_size` payload bytes.
std::vector<std::uint8_t> reframed(const std::vector<std::uint8_t>& message,
                                   std::size_t record_size) {
  std::vector<std::uint8_t> out;
  for (std::size_t at = 0; at < message.size(); at += record_size) {
    const std::size_t length = std::min(record_size, message.size() - at);
    out.insert(out.end(), {0x16, 0x03, 0x03, static_cast<std::uint8_t>(length >> 8),
                           static_cast<std::uint8_t>(length)});
    out.insert(out.end(), message.begin() + at, message.begin() + at + length);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Bytes input(data, size);
  const ClientHelloResult whole = serve::parse_client_hello(input);
  check_contract(input, whole);
  // Every prefix of a short input; about 128 spread over a long one, and the last few.
  const std::size_t stride = size <= 128 ? 1 : size / 128;
  for (std::size_t prefix = 0; prefix < size; prefix += stride) check_prefix(input, prefix, whole);
  for (std::size_t back = 1; back <= 4 && back <= size; ++back)
    check_prefix(input, size - back, whole);

  if (whole.status == HelloStatus::Complete) {
    const std::vector<std::uint8_t> message = handshake_message(input);
    const std::size_t record_size = 1 + (size == 0 ? 0 : data[size - 1] * 37u % 700);
    const ClientHelloResult again = serve::parse_client_hello(reframed(message, record_size));
    require(again.status == HelloStatus::Complete && again.info == whole.info);
  }
  return 0;
}
