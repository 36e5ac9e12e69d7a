// The access log (access_log.h): Caddy's zap encoders written by hand, so that field order and
// number formats match Caddy byte for byte, and lumberjack's rolling of `output file`.
#include "acmetool/serve/access_log.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <mutex>
#include <thread>

#include "acmetool/caddyfile/duration.h"
#include "acmetool/pki/unique_fd.h"
#include "acmetool/serve/error.h"

namespace acmetool::serve {
namespace {

namespace fs = std::filesystem;
using std::chrono::system_clock;
using Headers = std::vector<std::pair<std::string, std::string>>;

// The length of the valid UTF-8 sequence `s` starts with, or 0 when it starts with none, by the
// rules of Go's utf8.DecodeRuneInString: no overlong forms, surrogates or code points past
// U+10FFFF.
std::size_t utf8_sequence_length(std::string_view s) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned lead = byte(0);
  std::size_t length = 0;
  unsigned low = 0x80, high = 0xbf;  // the range of the second byte
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead == 0xe0) low = 0xa0;   // overlong
    if (lead == 0xed) high = 0x9f;  // surrogates
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead == 0xf0) low = 0x90;   // overlong
    if (lead == 0xf4) high = 0x8f;  // past U+10FFFF
  } else {
    return 0;
  }
  if (s.size() < length || byte(1) < low || byte(1) > high) return 0;
  for (std::size_t i = 2; i < length; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xbf) return 0;
  }
  return length;
}

// Appends `s` quoted as zap's JSON encoder quotes it (safeAddString): '"', '\\' and control bytes
// escaped, each byte of invalid UTF-8 replaced with \ufffd; '<', '>', '&' and DEL stay as they are.
void append_quoted(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b >= 0x80) {
      const std::size_t length = utf8_sequence_length(s.substr(i));
      if (length == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(s.substr(i, length));
        i += length;
      }
      continue;
    }
    if (b == '"' || b == '\\') {
      out += '\\';
      out += static_cast<char>(b);
    } else if (b >= 0x20) {
      out += static_cast<char>(b);
    } else if (b == '\n') {
      out += "\\n";
    } else if (b == '\r') {
      out += "\\r";
    } else if (b == '\t') {
      out += "\\t";
    } else {
      out += "\\u00";
      out += kHex[b >> 4];
      out += kHex[b & 0xf];
    }
    ++i;
  }
  out += '"';
}

// Writes JSON compact, as zap's JSON encoder does, or spaced (", " between elements, ": " after
// keys), as zap's console encoder writes the fields of an entry.
class JsonOut {
 public:
  JsonOut(std::string& out, bool spaced) : out_(out), spaced_(spaced) {}
  void begin(char bracket) {
    separate();
    out_ += bracket;
    first_ = true;
  }
  void end(char bracket) {
    out_ += bracket;
    first_ = false;
  }
  void key(std::string_view name) {
    separate();
    append_quoted(out_, name);
    out_ += spaced_ ? ": " : ":";
    after_key_ = true;
  }
  void string(std::string_view value) {
    separate();
    append_quoted(out_, value);
  }
  void literal(std::string_view text) {
    separate();
    out_ += text;
  }
  void string_field(std::string_view name, std::string_view value) {
    key(name);
    string(value);
  }
  void literal_field(std::string_view name, std::string_view text) {
    key(name);
    literal(text);
  }

 private:
  void separate() {
    if (after_key_) {
      after_key_ = false;
    } else if (!first_) {
      out_ += spaced_ ? ", " : ",";
    }
    first_ = false;
  }

  std::string& out_;
  bool spaced_;
  bool first_ = true;
  bool after_key_ = false;
};

// Seconds as zap's EpochTimeEncoder and SecondsDurationEncoder write them: float64(ns) / 1e9 in
// Go's strconv 'f' format with the shortest digits that read back the same.
std::string seconds_text(std::int64_t nanoseconds) {
  std::array<char, 64> buffer{};
  const double seconds = static_cast<double>(nanoseconds) / 1e9;
  const auto [end, ec] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), seconds,
                                       std::chars_format::fixed);
  return ec == std::errc() ? std::string(buffer.data(), end) : std::string("0");
}

bool is_token_byte(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

// Go's textproto.CanonicalMIMEHeaderKey: "x-forwarded-for" -> "X-Forwarded-For"; a name with a
// byte outside the RFC 9110 token set is left as it is.
std::string canonical_header_name(std::string_view name) {
  std::string canonical(name);
  if (!std::all_of(canonical.begin(), canonical.end(),
                   [](char c) { return c != '\0' && is_token_byte(c); })) {
    return canonical;
  }
  bool upper = true;
  for (char& c : canonical) {
    if (upper && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (!upper && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    upper = c == '-';
  }
  return canonical;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// Caddy's LoggableHTTPHeader without log_credentials: these are logged as ["REDACTED"].
bool is_credential(std::string_view name) {
  for (std::string_view secret : {"Cookie", "Set-Cookie", "Authorization", "Proxy-Authorization"}) {
    if (equals_ignoring_case(name, secret)) return true;
  }
  return false;
}

// Go keeps headers in a map of canonical name to values; its order is random, ours is that of
// each name's first occurrence.
void write_headers(JsonOut& json, const Headers& headers) {
  std::vector<std::pair<std::string, std::vector<std::string_view>>> groups;
  for (const auto& [name, value] : headers) {
    std::string canonical = canonical_header_name(name);
    auto group = std::find_if(groups.begin(), groups.end(),
                              [&](const auto& g) { return g.first == canonical; });
    if (group == groups.end()) group = groups.insert(groups.end(), {std::move(canonical), {}});
    group->second.push_back(value);
  }
  json.begin('{');
  for (const auto& [name, values] : groups) {
    json.key(name);
    json.begin('[');
    if (is_credential(name)) {
      json.string("REDACTED");
    } else {
      for (std::string_view value : values) json.string(value);
    }
    json.end(']');
  }
  json.end('}');
}

// Caddy's LoggableHTTPRequest (with 2.7's client_ip) and LoggableTLSConnState.
void write_request(JsonOut& json, const AccessLogEntry& entry) {
  json.begin('{');
  json.string_field("remote_ip", entry.remote_ip);
  json.string_field("remote_port", entry.remote_port == 0 ? "" : std::to_string(entry.remote_port));
  json.string_field("client_ip", entry.remote_ip);
  json.string_field("proto", entry.proto);
  json.string_field("method", entry.method);
  json.string_field("host", entry.host);
  json.string_field("uri", entry.uri);
  json.key("headers");
  write_headers(json, entry.request_headers);
  if (entry.tls) {
    json.key("tls");
    json.begin('{');
    json.literal_field("resumed", entry.tls->resumed ? "true" : "false");
    json.literal_field("version", std::to_string(entry.tls->version));
    json.literal_field("cipher_suite", std::to_string(entry.tls->cipher_suite));
    json.string_field("proto", entry.tls->proto);
    json.string_field("server_name", entry.tls->server_name);
    json.end('}');
  }
  json.end('}');
}

// The fields Caddy's server.go logs with "handled request", in its order.
void write_fields(JsonOut& json, const AccessLogEntry& entry) {
  json.key("request");
  write_request(json, entry);
  json.literal_field("bytes_read", std::to_string(entry.bytes_read));
  json.string_field("user_id", entry.user_id);
  json.literal_field("duration", seconds_text(entry.duration.count()));
  json.literal_field("size", std::to_string(entry.size));
  json.literal_field("status", std::to_string(entry.status));
  json.key("resp_headers");
  write_headers(json, entry.response_headers);
}

std::int64_t unix_nanoseconds(system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// `t` to the millisecond in `format`'s fields (year, month, day, hour, minute, second, ms).
std::string format_time(system_clock::time_point t, bool local, const char* format) {
  const std::int64_t ms =
      std::chrono::floor<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t seconds = static_cast<std::time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  std::tm tm{};
  if (local) {
    ::localtime_r(&seconds, &tm);
  } else {
    ::gmtime_r(&seconds, &tm);
  }
  std::array<char, 64> text{};
  std::snprintf(text.data(), text.size(), format, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms - std::int64_t{seconds} * 1000));
  return text.data();
}

// zap's levels as Caddy names them (case-insensitive; "" is INFO), ranked.
std::optional<int> level_rank(std::string_view name) {
  static constexpr std::string_view kLevels[] = {"debug", "info",  "warn",
                                                 "error", "panic", "fatal"};
  if (name.empty()) return 1;
  for (int rank = 0; rank < 6; ++rank) {
    if (equals_ignoring_case(name, kLevels[rank])) return rank;
  }
  return std::nullopt;
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

std::string_view access_log_level(int status) noexcept { return status >= 400 ? "error" : "info"; }

std::string format_access_log(const AccessLogEntry& entry) {
  std::string line;
  JsonOut json(line, false);
  json.begin('{');
  json.string_field("level", access_log_level(entry.status));
  json.literal_field("ts", seconds_text(unix_nanoseconds(entry.start)));
  json.string_field("logger", entry.logger);
  json.string_field("msg", "handled request");
  write_fields(json, entry);
  json.end('}');
  return line;
}

std::string format_access_log_console(const AccessLogEntry& entry) {
  // Caddy's console encoder defaults to time_format wall_milli, in local time.
  std::string line = format_time(entry.start, true, "%04d/%02d/%02d %02d:%02d:%02d.%03d");
  line += entry.status >= 400 ? "\tERROR\t" : "\tINFO\t";
  line += entry.logger;
  line += "\thandled request\t";
  JsonOut json(line, true);
  json.begin('{');
  write_fields(json, entry);
  json.end('}');
  return line;
}

// Reading `output file` options and rolling files, as Caddy's FileWriter (modules/logging/
// filewriter.go) and the lumberjack.v2 logger under it do.
namespace {

[[noreturn]] void option_error(const caddyfile::LogConfig& config, std::string_view option,
                               std::string_view why) {
  throw Error("log output file " + config.file_path.value_or("") + ": " + std::string(option) +
              ": " + std::string(why));
}

// go-humanize's ParseBytes: a number (',' ignored) and an optional unit, any case: b, k/kb
// (1000), ki/kib (1024), and so on through e/eb/ei/eib.
std::optional<std::uint64_t> parse_bytes(std::string_view text) {
  std::size_t digits = 0;
  std::string number;
  for (; digits < text.size() && (std::isdigit(static_cast<unsigned char>(text[digits])) ||
                                  text[digits] == '.' || text[digits] == ',');
       ++digits) {
    if (text[digits] != ',') number += text[digits];
  }
  double value = 0;
  const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (number.empty() || ec != std::errc() || end != number.data() + number.size()) {
    return std::nullopt;
  }
  std::string unit;
  for (char c : text.substr(digits)) {
    unit += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  unit.erase(0, unit.find_first_not_of(" \t"));
  unit.erase(unit.find_last_not_of(" \t") + 1);
  if (!unit.empty() && unit.back() == 'b') unit.pop_back();
  double multiplier = 1;
  if (!unit.empty()) {
    const std::size_t power = std::string_view("kmgtpe").find(unit[0]);
    const bool binary = unit.size() == 2 && unit[1] == 'i';
    if (power == std::string_view::npos || (unit.size() == 2 && !binary) || unit.size() > 2) {
      return std::nullopt;
    }
    multiplier = std::pow(binary ? 1024.0 : 1000.0, static_cast<double>(power + 1));
  }
  value *= multiplier;
  if (value >= 18446744073709551616.0) return std::nullopt;
  return static_cast<std::uint64_t>(value);
}

// chmod's 1 to 4 octal digits.
std::optional<fs::perms> parse_mode(std::string_view text) {
  unsigned mode = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), mode, 8);
  if (text.empty() || text.size() > 4 || ec != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return static_cast<fs::perms>(mode);
}

}  // namespace

FileLogOptions file_log_options(const caddyfile::LogConfig& config) {
  FileLogOptions options;
  for (const auto& [option, args] : config.file_options) {
    const auto arg = [&, &option = option, &args = args]() -> std::string_view {
      if (args.size() != 1) option_error(config, option, "expects one argument");
      return args[0];
    };
    const auto no_args = [&, &option = option, &args = args] {
      if (!args.empty()) option_error(config, option, "takes no arguments");
    };
    if (option == "mode") {
      const std::optional<fs::perms> mode = parse_mode(arg());
      if (!mode) {
        option_error(config, option, "'" + std::string(arg()) + "' is not an octal file mode");
      }
      if (*mode != fs::perms::none) options.mode = *mode;
    } else if (option == "roll_disabled") {
      no_args();
      options.roll = false;
    } else if (option == "roll_size") {
      const std::optional<std::uint64_t> bytes = parse_bytes(arg());
      if (!bytes) {
        option_error(config, option, "'" + std::string(arg()) + "' is not a size like 100MiB");
      }
      // Caddy rounds up to whole MiB: lumberjack counts in MiB.
      const std::uint64_t mib = (*bytes >> 20) + ((*bytes & ((1u << 20) - 1)) != 0 ? 1 : 0);
      if (mib != 0) options.roll_size_bytes = mib << 20;
    } else if (option == "roll_uncompressed") {
      no_args();
      options.roll_compress = false;
    } else if (option == "roll_local_time") {
      no_args();
      options.roll_local_time = true;
    } else if (option == "roll_keep") {
      int keep = 0;
      const std::string_view text = arg();
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), keep);
      if (ec != std::errc() || end != text.data() + text.size()) {
        option_error(config, option, "'" + std::string(text) + "' is not an integer");
      }
      if (keep != 0) options.roll_keep = keep;
    } else if (option == "roll_keep_for") {
      const std::optional<std::chrono::nanoseconds> keep_for = caddyfile::parse_duration(arg());
      if (!keep_for || keep_for->count() < 0) {
        option_error(config, option, "'" + std::string(arg()) + "' is not a duration like 720h");
      }
      // Caddy rounds up to whole days: lumberjack counts in days.
      const auto days = std::chrono::ceil<std::chrono::days>(*keep_for);
      if (days.count() != 0) options.roll_keep_for = days;
    } else {
      option_error(config, option,
                   "unknown option (expected mode, roll_disabled, roll_size, roll_uncompressed, "
                   "roll_local_time, roll_keep or roll_keep_for)");
    }
  }
  return options;
}

namespace {

// zlib, loaded at the first compression as libcurl is (libacme/src/http_curl.cpp): nothing to
// link, and a host without libz.so.1 keeps its rolled logs uncompressed instead of failing.
struct Zlib {
  decltype(&::deflateInit2_) init = nullptr;
  decltype(&::deflate) deflate = nullptr;
  decltype(&::deflateEnd) end = nullptr;
};

const Zlib* zlib() {
  static const Zlib* const loaded = []() -> const Zlib* {
    void* library = ::dlopen("libz.so.1", RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr) return nullptr;
    static Zlib api;
    api.init = reinterpret_cast<decltype(api.init)>(::dlsym(library, "deflateInit2_"));
    api.deflate = reinterpret_cast<decltype(api.deflate)>(::dlsym(library, "deflate"));
    api.end = reinterpret_cast<decltype(api.end)>(::dlsym(library, "deflateEnd"));
    if (api.init == nullptr || api.deflate == nullptr || api.end == nullptr) {
      ::dlclose(library);
      return nullptr;
    }
    return &api;  // loaded for good
  }();
  return loaded;
}

// Deflates all of `in` into `out` as gzip (zlib's zpipe.c).
bool deflate_fd(const Zlib& z, int in, int out) {
  z_stream stream{};
  if (z.init(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY,
             ZLIB_VERSION, static_cast<int>(sizeof(z_stream))) != Z_OK) {
    return false;
  }
  std::vector<unsigned char> input(1 << 16), output(1 << 16);
  bool ok = true;
  for (int flush = Z_NO_FLUSH; ok && flush != Z_FINISH;) {
    ssize_t n = 0;
    do {
      n = ::read(in, input.data(), input.size());
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      ok = false;
      break;
    }
    flush = n == 0 ? Z_FINISH : Z_NO_FLUSH;
    stream.next_in = input.data();
    stream.avail_in = static_cast<uInt>(n);
    do {
      stream.next_out = output.data();
      stream.avail_out = static_cast<uInt>(output.size());
      ok = z.deflate(&stream, flush) != Z_STREAM_ERROR &&
           write_all(out, std::string_view(reinterpret_cast<const char*>(output.data()),
                                           output.size() - stream.avail_out));
    } while (ok && stream.avail_out == 0);
  }
  z.end(&stream);
  return ok;
}

// Replaces `source` with `source`.gz, as lumberjack's compressLogFile does; false (and `source`
// left alone) when zlib is missing or anything fails.
bool gzip_file(const fs::path& source, fs::perms mode) {
  const Zlib* z = zlib();
  if (z == nullptr) return false;
  pki::UniqueFd in(::open(source.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) return false;
  const fs::path target = source.string() + ".gz";
  pki::UniqueFd out(
      ::open(target.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, static_cast<mode_t>(mode)));
  if (!out) return false;
  if (!deflate_fd(*z, in.get(), out.get()) || ::fsync(out.get()) != 0) {
    ::unlink(target.c_str());
    return false;
  }
  return ::unlink(source.c_str()) == 0;
}

// Opens (creating) the log file for appending with the configured mode.
pki::UniqueFd open_append(const fs::path& path, fs::perms mode, bool truncate) {
  const int flags = O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : 0);
  pki::UniqueFd fd(::open(path.c_str(), flags, static_cast<mode_t>(mode)));
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0) return {};
  // Caddy chmods an existing file to the configured mode; devices such as /dev/null keep theirs.
  if (S_ISREG(st.st_mode) && (st.st_mode & 07777) != static_cast<mode_t>(mode) &&
      ::fchmod(fd.get(), static_cast<mode_t>(mode)) != 0) {
    return {};
  }
  return fd;
}

// lumberjack's backup name parts: "access.log" -> {"access-", ".log"}; the time goes between.
std::pair<std::string, std::string> backup_affixes(const fs::path& path) {
  const std::string name = path.filename().string();
  const std::size_t dot = name.rfind('.');
  if (dot == std::string::npos) return {name + "-", ""};
  return {name.substr(0, dot) + "-", name.substr(dot)};
}

constexpr const char* kBackupTimeFormat = "%04d-%02d-%02dT%02d-%02d-%02d.%03d";

// Whether `stamp` has the shape of kBackupTimeFormat: 2006-01-02T15-04-05.000.
bool is_backup_time(std::string_view stamp) {
  static constexpr std::string_view kShape = "dddd-dd-ddTdd-dd-dd.ddd";
  if (stamp.size() != kShape.size()) return false;
  for (std::size_t i = 0; i < stamp.size(); ++i) {
    const bool digit = std::isdigit(static_cast<unsigned char>(stamp[i])) != 0;
    if (kShape[i] == 'd' ? !digit : stamp[i] != kShape[i]) return false;
  }
  return true;
}

// One log file and the files rolled from it, shared by every writer opened for its path.
class LogFile {
 public:
  LogFile(fs::path path, const FileLogOptions& options)
      : path_(std::move(path)), options_(options), fd_(open_append(path_, options.mode, false)) {
    struct stat st {};
    if (!fd_ || ::fstat(fd_.get(), &st) != 0) {
      const int error = errno;
      throw Error("opening access log " + path_.string() + ": " + std::strerror(error));
    }
    size_ = static_cast<std::uint64_t>(st.st_size);
  }

  ~LogFile() {
    {
      std::lock_guard lock(mill_mutex_);
      stopping_ = true;
    }
    mill_wanted_.notify_one();
    if (miller_.joinable()) miller_.join();
  }

  // Writes `data` whole, rolling first when it would take the file past roll_size.
  bool write(std::string_view data) {
    bool rolled = false;
    bool written = false;
    {
      std::lock_guard lock(mutex_);
      if (options_.roll && size_ > 0 && size_ + data.size() > options_.roll_size_bytes) {
        rolled = roll();
      }
      written = write_all(fd_.get(), data);
      if (written) size_ += data.size();
    }
    if (rolled) request_mill();
    return written;
  }

 private:
  // Renames the file to a backup name no other backup has and starts a new one. Called with
  // mutex_ held. On failure the current file goes on growing.
  bool roll() {
    const auto [prefix, extension] = backup_affixes(path_);
    // Names must grow with each roll, or a new backup could take the name of a deleted old one
    // and be deleted as the oldest.
    auto when = std::max(system_clock::now(), last_roll_ + std::chrono::milliseconds(1));
    fs::path backup;
    std::error_code ec;
    for (;; when += std::chrono::milliseconds(1)) {
      backup =
          path_.parent_path() /
          (prefix + format_time(when, options_.roll_local_time, kBackupTimeFormat) + extension);
      if (!fs::exists(backup, ec) && !fs::exists(backup.string() + ".gz", ec)) break;
    }
    if (::rename(path_.c_str(), backup.c_str()) != 0) return false;
    pki::UniqueFd fresh = open_append(path_, options_.mode, true);
    if (!fresh) {
      ::rename(backup.c_str(), path_.c_str());
      return false;
    }
    fd_ = std::move(fresh);
    size_ = 0;
    last_roll_ = std::chrono::floor<std::chrono::milliseconds>(when);
    return true;
  }

  // Wakes the thread that deletes and compresses rolled files, starting it the first time.
  void request_mill() {
    std::lock_guard lock(mill_mutex_);
    mill_pending_ = true;
    if (!miller_.joinable()) {
      try {
        miller_ = std::thread([this] { mill_loop(); });
      } catch (const std::system_error&) {
        mill_pending_ = false;
        mill();  // no thread to spare: do it here
        return;
      }
    }
    mill_wanted_.notify_one();
  }

  void mill_loop() {
    std::unique_lock lock(mill_mutex_);
    for (;;) {
      mill_wanted_.wait(lock, [this] { return mill_pending_ || stopping_; });
      if (!mill_pending_) return;
      mill_pending_ = false;
      lock.unlock();
      mill();
      lock.lock();
    }
  }

  struct Rolled {
    std::string stamp;
    fs::path path;
    bool compressed = false;
  };

  // The rolled files beside the log, newest first.
  std::vector<Rolled> list_rolled() const {
    const auto [prefix, extension] = backup_affixes(path_);
    const fs::path dir = path_.parent_path().empty() ? fs::path(".") : path_.parent_path();
    std::vector<Rolled> rolled;
    std::error_code ec;
    for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
      std::string name = entry.path().filename().string();
      if (!name.starts_with(prefix)) continue;
      const bool compressed = name.ends_with(extension + ".gz");
      if (!compressed && !name.ends_with(extension)) continue;
      name.erase(name.size() - extension.size() - (compressed ? 3 : 0));
      name.erase(0, prefix.size());
      if (is_backup_time(name)) rolled.push_back({name, entry.path(), compressed});
    }
    std::sort(rolled.begin(), rolled.end(),
              [](const Rolled& a, const Rolled& b) { return a.stamp > b.stamp; });
    return rolled;
  }

  // lumberjack's millRunOnce: deletes rolled files beyond roll_keep (a file and its .gz count
  // once) and older than roll_keep_for, then gzips the rest. The time in a name is read as UTC,
  // as lumberjack reads it, even with roll_local_time.
  void mill() noexcept {
    try {
      const std::string cutoff =
          format_time(system_clock::now() - options_.roll_keep_for, false, kBackupTimeFormat);
      std::vector<std::string> kept;
      for (const Rolled& file : list_rolled()) {
        if (std::find(kept.begin(), kept.end(), file.stamp) == kept.end()) {
          kept.push_back(file.stamp);
        }
        const bool too_many =
            options_.roll_keep >= 0 && kept.size() > static_cast<std::size_t>(options_.roll_keep);
        if (too_many || file.stamp < cutoff) {
          std::error_code ec;
          fs::remove(file.path, ec);
        } else if (options_.roll_compress && !file.compressed) {
          gzip_file(file.path, options_.mode);
        }
      }
    } catch (const std::exception&) {
      // Out of memory while listing: the next roll tries again.
    }
  }

  const fs::path path_;
  const FileLogOptions options_;
  std::mutex mutex_;  // guards fd_, size_ and last_roll_
  pki::UniqueFd fd_;
  std::uint64_t size_ = 0;
  system_clock::time_point last_roll_{};
  std::mutex mill_mutex_;  // guards mill_pending_, stopping_ and miller_
  std::condition_variable mill_wanted_;
  bool mill_pending_ = false;
  bool stopping_ = false;
  std::thread miller_;
};

// The LogFile for `path`, shared while any writer holds it, as Caddy shares writers by file name.
std::shared_ptr<LogFile> shared_log_file(const fs::path& path, const FileLogOptions& options) {
  static std::mutex mutex;
  static std::map<std::string, std::weak_ptr<LogFile>> files;
  std::error_code ec;
  const fs::path absolute = fs::absolute(path, ec);
  const std::string key = (ec ? path : absolute).lexically_normal().string();
  std::lock_guard lock(mutex);
  std::erase_if(files, [](const auto& file) { return file.second.expired(); });
  if (std::shared_ptr<LogFile> file = files[key].lock()) return file;
  auto file = std::make_shared<LogFile>(path, options);
  files[key] = file;
  return file;
}

}  // namespace

struct AccessLogWriter::Impl {
  int fd = -1;                    // stdout or stderr
  std::shared_ptr<LogFile> file;  // output file; neither: discard
  bool console = false;
  int min_level = 1;  // INFO
  std::atomic<std::uint64_t> dropped{0};
};

AccessLogWriter::AccessLogWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

AccessLogWriter::~AccessLogWriter() = default;

std::unique_ptr<AccessLogWriter> AccessLogWriter::open(const caddyfile::LogConfig& config) {
  auto impl = std::make_unique<Impl>();
  if (config.format != "json" && config.format != "console") {
    throw Error("log: format '" + config.format + "' is not supported (expected json or console)");
  }
  impl->console = config.format == "console";
  const std::optional<int> rank = level_rank(config.level.value_or(""));
  if (!rank) {
    throw Error("log: unknown level '" + config.level.value_or("") +
                "' (expected DEBUG, INFO, WARN, ERROR, PANIC or FATAL)");
  }
  impl->min_level = *rank;
  if (config.output == "stdout") {
    impl->fd = STDOUT_FILENO;
  } else if (config.output == "stderr") {
    impl->fd = STDERR_FILENO;
  } else if (config.output == "file") {
    if (!config.file_path) throw Error("log: output file needs a file name");
    impl->file = shared_log_file(*config.file_path, file_log_options(config));
  } else if (config.output != "discard") {
    throw Error("log: output '" + config.output +
                "' is not supported (expected stdout, stderr, discard or file)");
  }
  return std::unique_ptr<AccessLogWriter>(new AccessLogWriter(std::move(impl)));
}

std::unique_ptr<AccessLogWriter> AccessLogWriter::open_file(const fs::path& path,
                                                            const FileLogOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->file = shared_log_file(path, options);
  return std::unique_ptr<AccessLogWriter>(new AccessLogWriter(std::move(impl)));
}

void AccessLogWriter::log(const AccessLogEntry& entry) noexcept {
  if (*level_rank(access_log_level(entry.status)) < impl_->min_level) return;
  try {
    write(impl_->console ? format_access_log_console(entry) : format_access_log(entry));
  } catch (const std::bad_alloc&) {
    ++impl_->dropped;
  }
}

void AccessLogWriter::write(std::string_view line) noexcept {
  try {
    std::string data;
    data.reserve(line.size() + 1);
    data.append(line);
    data += '\n';
    const bool written =
        impl_->file ? impl_->file->write(data) : impl_->fd < 0 || write_all(impl_->fd, data);
    if (!written) ++impl_->dropped;
  } catch (const std::exception&) {
    ++impl_->dropped;
  }
}

std::uint64_t AccessLogWriter::dropped() const noexcept { return impl_->dropped; }

}  // namespace acmetool::serve
