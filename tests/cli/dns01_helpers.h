// Helpers for end-to-end dns-01 tests of `acmetool obtain`: labels no other run uses, TSIG-signed
// updates to the test BIND 9, the TXT records a zone still holds (by zone transfer), and the
// flags that point acmetool's own lookups at a loopback nameserver.
#pragma once

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bind9.h"
#include "process.h"

namespace acmetool::test {

/// Eight random lower-case hex digits: a DNS label that no earlier run or other case has used.
inline std::string random_label() {
  static std::mt19937_64 generator{std::random_device{}()};
  static const char kHex[] = "0123456789abcdef";
  std::string label;
  for (int i = 0; i < 8; ++i) label += kHex[generator() % 16];
  return label;
}

/// Applies nsupdate `commands` ("update add NAME TTL TYPE DATA\n"...) to the authoritative server
/// of `bind` as one TSIG-signed update. Throws std::runtime_error with nsupdate's stderr when it
/// fails.
inline void nsupdate(const Bind9Server& bind, const std::string& commands) {
  const CommandResult result =
      run_command({"nsupdate", "-k", bind.tsig_key_file().string()},
                  "server 127.0.0.1 " + std::to_string(bind.port()) + "\n" + commands + "send\n");
  if (result.exit_code != 0) throw std::runtime_error("nsupdate: " + result.err + result.out);
}

/// Records the test adds to a BIND 9 zone for its setup (CNAMEs, NS), removed again when this
/// object dies, even when an assertion ended the test early. Errors while removing are ignored:
/// the names are unique to the test, so a leftover harms nobody.
class ScopedRecords {
 public:
  /// Adds `add` ("update add ...\n" lines) now; `remove` undoes them in the destructor.
  ScopedRecords(const Bind9Server& bind, const std::string& add, std::string remove)
      : bind_(bind), remove_(std::move(remove)) {
    nsupdate(bind_, add);
  }
  ~ScopedRecords() {
    try {
      nsupdate(bind_, remove_);
    } catch (...) {
      // See the class comment.
    }
  }
  ScopedRecords(const ScopedRecords&) = delete;
  ScopedRecords& operator=(const ScopedRecords&) = delete;

 private:
  const Bind9Server& bind_;
  std::string remove_;
};

/// One TXT record of a zone transfer.
struct TxtRecordLine {
  std::string owner;  ///< absolute, "_acme-challenge.a.example.test."
  std::string line;   ///< the whole line dig printed, for messages
};

/// Every TXT record of `zone` at the nameserver on 127.0.0.1:`port`, by AXFR. Throws
/// std::runtime_error when the transfer fails (no SOA in the answer), so that an empty result
/// always means an empty zone and never a refused transfer.
inline std::vector<TxtRecordLine> zone_txt_records(int port, const std::string& zone) {
  const CommandResult axfr =
      run_command({"dig", "-b", "127.0.0.1", "@127.0.0.1", "-p", std::to_string(port), zone, "AXFR",
                   "+nocmd", "+nostats", "+time=2", "+tries=1"});
  std::vector<TxtRecordLine> records;
  bool soa = false;
  std::istringstream lines(axfr.out);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string owner, ttl, klass, type;
    if (!(fields >> owner >> ttl >> klass >> type) || owner.starts_with(";")) continue;
    soa = soa || type == "SOA";
    if (type == "TXT") records.push_back({owner, line});
  }
  if (axfr.exit_code != 0 || !soa) {
    throw std::runtime_error("AXFR " + zone + " from 127.0.0.1:" + std::to_string(port) +
                             " failed: " + axfr.out + axfr.err);
  }
  return records;
}

/// The TXT records of `zone` (at 127.0.0.1:`port`) whose owner name contains `needle`, one line
/// each: "" when there are none.
inline std::string txt_records_containing(int port, const std::string& zone,
                                          const std::string& needle) {
  std::string found;
  for (const TxtRecordLine& record : zone_txt_records(port, zone)) {
    if (record.owner.find(needle) != std::string::npos) found += record.line + "\n";
  }
  return found;
}

/// `_acme-challenge` TXT records left in either zone of `bind`, and any TXT record whose owner
/// contains `label` (a case's random label): "" when the run cleaned up after itself.
inline std::string records_left(const Bind9Server& bind, const std::string& label) {
  std::string left;
  for (const std::string& zone : bind.zones()) {
    left += txt_records_containing(bind.port(), zone, "_acme-challenge");
    if (!label.empty()) left += txt_records_containing(bind.port(), zone, label);
  }
  return left;
}

/// Flags that send acmetool's own lookups (zones, CNAMEs, NS addresses) to `resolver` and its
/// propagation checks to the nameservers' addresses on `nameserver_port`, polling every 100 ms,
/// with a TTL of 1 s on the records.
inline std::vector<std::string> dns_lookup_flags(const std::string& resolver, int nameserver_port) {
  std::vector<std::string> flags = {"--dns-resolvers", resolver};
  flags.insert(flags.end(), {"--dns-nameserver-port", std::to_string(nameserver_port)});
  flags.insert(flags.end(), {"--dns-propagation-interval", "100ms", "--dns-ttl", "1s"});
  return flags;
}

/// Writes `text` to `path` as an executable (0755) file.
inline void write_executable(const std::filesystem::path& path, const std::string& text) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out.flush()) throw std::runtime_error("writing " + path.string());
  }
  namespace fs = std::filesystem;
  fs::permissions(path, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                            fs::perms::others_read | fs::perms::others_exec);
}

/// Replaces each @NAME@ in `text` with its value: scripts read like the files they become.
inline std::string fill_template(std::string text,
                                 const std::vector<std::pair<std::string, std::string>>& vars) {
  for (const auto& [name, value] : vars) {
    const std::string marker = "@" + name + "@";
    for (size_t at; (at = text.find(marker)) != std::string::npos;) {
      text.replace(at, marker.size(), value);
    }
  }
  return text;
}

}  // namespace acmetool::test
