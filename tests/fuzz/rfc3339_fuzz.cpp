// Fuzzes the RFC 3339 parser, which reads lock files written by other hosts and by Caddy.
// Property: whatever parses, formats back to a string that parses to the same instant.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "acmetool/pki/rfc3339.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (const auto parsed = acmetool::pki::parse_rfc3339(text)) {
    const auto again = acmetool::pki::parse_rfc3339(acmetool::pki::format_rfc3339(*parsed));
    if (!again || *again != *parsed) std::abort();
  }
  return 0;
}
