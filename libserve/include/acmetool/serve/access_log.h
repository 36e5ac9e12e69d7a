// The access log of `acmetool serve` (issue 8, the `log` directive), as Caddy 2.6–2.8 writes it:
// one "handled request" entry per request, JSON with Caddy's field names and order (or Caddy's
// `format console`), to stdout, stderr, nowhere, or a file that is rolled like lumberjack rolls
// it (Caddy's `output file` with roll_size, roll_keep, roll_keep_for, roll_local_time,
// roll_uncompressed, roll_disabled and mode).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "acmetool/caddyfile/config.h"

namespace acmetool::serve {

/// What Caddy records about one handled request.
struct AccessLogEntry {
  std::chrono::system_clock::time_point start;  ///< when the request arrived ("ts")
  std::chrono::nanoseconds duration{0};         ///< until the response was written
  std::string logger = "http.log.access";       ///< "http.log.access.log0" for the first site's log
  std::string remote_ip;
  int remote_port = 0;            ///< written as a string, as Caddy does; 0 (a Unix socket) as ""
  std::string proto;              ///< "HTTP/1.1", "HTTP/2.0"
  std::string method, host, uri;  ///< uri: the request target as received
  /// As received, names as sent; the log groups them by canonical name.
  std::vector<std::pair<std::string, std::string>> request_headers;
  struct Tls {
    bool resumed = false;
    int version = 0;       ///< IANA number: 772 for TLS 1.3
    int cipher_suite = 0;  ///< IANA number: 4865 for TLS_AES_128_GCM_SHA256
    std::string proto;     ///< the ALPN protocol: "h2", "http/1.1" or ""
    std::string server_name;
  };
  std::optional<Tls> tls;        ///< absent for plain HTTP
  std::uint64_t bytes_read = 0;  ///< request body bytes read
  std::string user_id;           ///< the authenticated user, or ""
  std::uint64_t size = 0;        ///< response body bytes written
  int status = 0;
  std::vector<std::pair<std::string, std::string>> response_headers;
};

/// Caddy's level for an entry: "error" when status >= 400, else "info".
std::string_view access_log_level(int status) noexcept;

/// The entry as Caddy's JSON encoder writes it: one line without the trailing newline, keys in
/// Caddy's order (level, ts, logger, msg, request{remote_ip, remote_port, client_ip, proto,
/// method, host, uri, headers, tls}, bytes_read, user_id, duration, size, status,
/// resp_headers). ts is Unix seconds and duration seconds, both as the shortest decimal that
/// reads back as the same double. Headers are grouped under Go's canonical names
/// ("content-type" -> "Content-Type") into arrays in the order received; names appear in the
/// order of their first occurrence. Cookie, Set-Cookie, Authorization and Proxy-Authorization
/// become ["REDACTED"], as Caddy does without log_credentials. Strings are escaped as zap
/// escapes them; each byte of invalid UTF-8 becomes \ufffd, so the line is valid UTF-8.
std::string format_access_log(const AccessLogEntry& entry);

/// Caddy's `format console`, tab-separated: local time to the millisecond
/// ("2022/03/09 21:30:01.524"), the level in capitals without colour ("INFO"), the logger,
/// "handled request", then the fields of format_access_log() after msg as zap's console encoder
/// writes them: {"request": {...}, "bytes_read": 0, ...}.
std::string format_access_log_console(const AccessLogEntry& entry);

/// How `output file` rolls, after Caddy's defaults are applied.
struct FileLogOptions {
  bool roll = true;  ///< false with `roll_disabled`: the file only grows
  /// Roll before a write would take the file past this. Caddy's resolution is MiB: `roll_size`
  /// is rounded up to whole MiB ("1KiB" rolls at 1 MiB); FileLogOptions built by hand may use
  /// any byte count.
  std::uint64_t roll_size_bytes = 100 * 1024 * 1024;
  /// Rolled files to keep (compressed or not); negative keeps any number.
  int roll_keep = 10;
  /// Rolled files older than this (by the time in their name) are deleted; whole days in Caddy.
  std::chrono::hours roll_keep_for{90 * 24};
  bool roll_local_time = false;  ///< name rolled files in local time instead of UTC
  bool roll_compress = true;     ///< gzip rolled files (false with `roll_uncompressed`)
  std::filesystem::perms mode =
      std::filesystem::perms::owner_read | std::filesystem::perms::owner_write;
};

/// Reads the `output file <path> { ... }` options of `config` as Caddy does: roll_size takes
/// sizes like "100MiB", "10MB", "1.5G" (go-humanize); roll_keep an integer; roll_keep_for a
/// duration ("720h", "30d") rounded up to whole days; mode 1 to 4 octal digits. Zero values mean
/// the default. Throws serve::Error naming the file and the option for a bad value, a wrong
/// number of arguments or an unknown option (Caddy ignores unknown ones; they are typos).
FileLogOptions file_log_options(const caddyfile::LogConfig& config);

/// Where the entries of one `log` directive go. Thread-safe: any thread may call any method.
class AccessLogWriter {
 public:
  /// The writer for `config.output`: "stdout", "stderr", "discard" or "file" (created with
  /// config's mode when missing, chmod-ed to it when not). Writers opened for the same file
  /// path share it (and its rolling) while any of them lives, as Caddy shares them; the first
  /// one's FileLogOptions apply. Throws serve::Error naming the file when it cannot be opened,
  /// and for an unknown output, format or level.
  static std::unique_ptr<AccessLogWriter> open(const caddyfile::LogConfig& config);
  /// A JSON, level INFO writer to `path` with `options` (tests, and callers without a Caddyfile).
  static std::unique_ptr<AccessLogWriter> open_file(const std::filesystem::path& path,
                                                    const FileLogOptions& options);
  /// Waits for the compression and clean-up of rolled files still in progress.
  ~AccessLogWriter();
  AccessLogWriter(const AccessLogWriter&) = delete;
  AccessLogWriter& operator=(const AccessLogWriter&) = delete;

  /// Formats `entry` as the config's format says and writes it, unless its level is below the
  /// config's `level` (DEBUG, INFO — the default —, WARN, ERROR, PANIC, FATAL).
  void log(const AccessLogEntry& entry) noexcept;
  /// Writes `line` + "\n" with one write(2), so that lines from concurrent callers never mix.
  /// A file that would pass roll_size is first renamed to "<name>-<time>.<ext>" (time as
  /// 2006-01-02T15-04-05.000, lumberjack's backup name) and a new one started; a background
  /// thread then deletes rolled files beyond roll_keep and roll_keep_for and gzips the rest
  /// (through libz.so.1, loaded on first use; without it rolled files stay uncompressed). A
  /// line longer than roll_size gets a file of its own. Never throws: a line that cannot be
  /// written is dropped and counted.
  void write(std::string_view line) noexcept;
  /// Lines dropped because writing failed.
  std::uint64_t dropped() const noexcept;

 private:
  struct Impl;
  explicit AccessLogWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace acmetool::serve
