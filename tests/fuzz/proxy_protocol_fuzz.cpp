// Fuzzes the PROXY protocol header parser, which reads the first bytes of connections from a load
// balancer before anything else has checked them. Properties, on every input:
//  - each answer carries what its status promises: bytes_wanted >= 1 with NeedMore, a length
//    within the input and kMaxProxyHeader with Complete, a one-line error with Invalid;
//  - answers are monotonic: a prefix answered with anything but NeedMore gets the same answer as
//    the whole input, and a Complete header's own bytes alone are the same Complete header.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "acmetool/serve/proxy_protocol.h"

namespace serve = acmetool::serve;
using serve::ProxyHeaderStatus;

namespace {

void require(bool holds) {
  if (!holds) std::abort();
}

bool same(const serve::ProxyHeaderResult& a, const serve::ProxyHeaderResult& b) {
  return a.status == b.status && a.length == b.length && a.source_ip == b.source_ip &&
         a.source_port == b.source_port && a.error == b.error;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> input(data, size);
  const serve::ProxyHeaderResult whole = serve::parse_proxy_header(input);
  switch (whole.status) {
    case ProxyHeaderStatus::NeedMore: require(whole.bytes_wanted >= 1); break;
    case ProxyHeaderStatus::Complete:
      require(whole.length > 0 && whole.length <= size && whole.length <= serve::kMaxProxyHeader);
      require(whole.source_port >= 0 && whole.source_port <= 65535);
      require(same(serve::parse_proxy_header(input.first(whole.length)), whole));
      break;
    case ProxyHeaderStatus::Invalid:
      require(!whole.error.empty() && whole.error.find('\n') == std::string::npos);
      break;
    case ProxyHeaderStatus::Absent: break;
  }
  for (std::size_t n = 0; n < size && n <= serve::kMaxProxyHeader; n += 1 + n / 8) {
    const serve::ProxyHeaderResult prefix = serve::parse_proxy_header(input.first(n));
    if (prefix.status != ProxyHeaderStatus::NeedMore) require(same(prefix, whole));
  }
  return 0;
}
