// The access log (issue 8, `log`): Caddy's JSON and console lines, and the writers — stdout,
// discard, and files rolled, pruned and gzipped as Caddy's lumberjack does it.
#include "acmetool/serve/access_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "acmetool/serve/error.h"
#include "fixture_util.h"
#include "process.h"

namespace fs = std::filesystem;
namespace serve = acmetool::serve;
using serve::AccessLogEntry;
using serve::AccessLogWriter;
using serve::FileLogOptions;
using std::chrono::system_clock;
using namespace std::chrono_literals;

namespace {

system_clock::time_point unix_ns(std::int64_t ns) {
  return system_clock::time_point(
      std::chrono::duration_cast<system_clock::duration>(std::chrono::nanoseconds(ns)));
}

// The request of Caddy's documentation example, over HTTP/2 and TLS 1.3.
AccessLogEntry sample_entry() {
  AccessLogEntry e;
  e.start = unix_ns(1646861401524102400);
  e.duration = 929675ns;
  e.logger = "http.log.access.log0";
  e.remote_ip = "127.0.0.1";
  e.remote_port = 41342;
  e.proto = "HTTP/2.0";
  e.method = "GET";
  e.host = "localhost";
  e.uri = "/";
  e.request_headers = {{"user-agent", "curl/7.82.0"}, {"accept", "*/*"}};
  e.tls = AccessLogEntry::Tls{false, 772, 4865, "h2", "example.com"};
  e.size = 10900;
  e.status = 200;
  e.response_headers = {{"Server", "Caddy"}, {"Content-Type", "text/html; charset=utf-8"}};
  return e;
}

std::string read_all(const fs::path& path) { return acmetool::test::read_text(path); }

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Files in `dir` whose names match `pattern`, sorted by name (oldest rolled file first).
std::vector<fs::path> files_matching(const fs::path& dir, const std::string& pattern) {
  std::vector<fs::path> found;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (std::regex_match(entry.path().filename().string(), std::regex(pattern)))
      found.push_back(entry.path());
  }
  std::sort(found.begin(), found.end());
  return found;
}

std::string gunzip(const fs::path& path) {
  const acmetool::test::CommandResult r =
      acmetool::test::run_command({"gzip", "-dc", path.string()});
  REQUIRE(r.exit_code == 0);
  return r.out;
}

acmetool::caddyfile::LogConfig file_config(
    const fs::path& path,
    std::vector<std::pair<std::string, std::vector<std::string>>> options = {}) {
  acmetool::caddyfile::LogConfig config;
  config.output = "file";
  config.file_path = path.string();
  config.file_options = std::move(options);
  return config;
}

// The name lumberjack gives a file rolled at `t`.
std::string backup_stamp(system_clock::time_point t, bool local) {
  const std::time_t seconds = system_clock::to_time_t(t);
  std::tm tm{};
  if (local) {
    localtime_r(&seconds, &tm);
  } else {
    gmtime_r(&seconds, &tm);
  }
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H-%M-%S", &tm);
  return text;
}

constexpr const char* kRolledLog = R"(access-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}\.log)";
constexpr const char* kRolledGz = R"(access-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}\.log\.gz)";

// Small files for the rolling tests; the rest stays at Caddy's defaults.
FileLogOptions small_files(std::uint64_t roll_size_bytes, int roll_keep, bool compress) {
  FileLogOptions options;
  options.roll_size_bytes = roll_size_bytes;
  options.roll_keep = roll_keep;
  options.roll_compress = compress;
  return options;
}

}  // namespace

TEST_CASE("an access log line has Caddy's fields in Caddy's order", "[access_log]") {
  CHECK(serve::format_access_log(sample_entry()) ==
        R"({"level":"info","ts":1646861401.5241024,"logger":"http.log.access.log0",)"
        R"("msg":"handled request","request":{"remote_ip":"127.0.0.1","remote_port":"41342",)"
        R"("client_ip":"127.0.0.1","proto":"HTTP/2.0","method":"GET","host":"localhost","uri":"/",)"
        R"("headers":{"User-Agent":["curl/7.82.0"],"Accept":["*/*"]},"tls":{"resumed":false,)"
        R"("version":772,"cipher_suite":4865,"proto":"h2","server_name":"example.com"}},)"
        R"("bytes_read":0,"user_id":"","duration":0.000929675,"size":10900,"status":200,)"
        R"("resp_headers":{"Server":["Caddy"],"Content-Type":["text/html; charset=utf-8"]}})");
}

TEST_CASE("headers are grouped under Go's canonical names in the order received", "[access_log]") {
  AccessLogEntry e = sample_entry();
  e.request_headers = {{"x-forwarded-for", "203.0.113.1"},
                       {"ACCEPT", "text/html"},
                       {"X-FORWARDED-FOR", "198.51.100.2"},
                       {"accept-encoding", "gzip"},
                       {"bad name", "kept"},
                       {"x_under", "1"}};
  e.response_headers = {{"content-type", "text/plain"}, {"vary", "Accept"}, {"Vary", "Origin"}};
  const auto line = nlohmann::ordered_json::parse(serve::format_access_log(e));
  CHECK(line["request"]["headers"].dump() ==
        R"({"X-Forwarded-For":["203.0.113.1","198.51.100.2"],"Accept":["text/html"],)"
        R"("Accept-Encoding":["gzip"],"bad name":["kept"],"X_under":["1"]})");
  CHECK(line["resp_headers"].dump() ==
        R"({"Content-Type":["text/plain"],"Vary":["Accept","Origin"]})");
}

TEST_CASE("credentials in headers are logged as REDACTED", "[access_log]") {
  AccessLogEntry e = sample_entry();
  e.request_headers = {{"authorization", "Bearer s3cret-token"},
                       {"Cookie", "session=s3cret-cookie"},
                       {"cookie", "b=s3cret-2"},
                       {"Proxy-Authorization", "Basic s3cret"},
                       {"Accept", "*/*"}};
  e.response_headers = {{"set-cookie", "id=s3cret-set"}, {"Set-Cookie", "x=s3cret-set2"}};
  const std::string text = serve::format_access_log(e);
  CHECK(text.find("s3cret") == std::string::npos);
  const auto line = nlohmann::ordered_json::parse(text);
  CHECK(line["request"]["headers"].dump() ==
        R"({"Authorization":["REDACTED"],"Cookie":["REDACTED"],)"
        R"("Proxy-Authorization":["REDACTED"],"Accept":["*/*"]})");
  CHECK(line["resp_headers"].dump() == R"({"Set-Cookie":["REDACTED"]})");
}

TEST_CASE("plain HTTP has no tls object and statuses from 400 log at level error", "[access_log]") {
  const auto [status, level] = GENERATE(table<int, std::string>({{200, "info"},
                                                                 {304, "info"},
                                                                 {399, "info"},
                                                                 {400, "error"},
                                                                 {404, "error"},
                                                                 {502, "error"}}));
  AccessLogEntry e = sample_entry();
  e.tls.reset();
  e.status = status;
  e.remote_port = 0;
  const auto line = nlohmann::ordered_json::parse(serve::format_access_log(e));
  CHECK(line["level"] == level);
  CHECK(serve::access_log_level(status) == level);
  CHECK(line["status"] == status);
  CHECK(line["request"]["remote_port"] == "");
  std::vector<std::string> keys;
  for (const auto& [key, value] : line["request"].items()) keys.push_back(key);
  CHECK(keys == std::vector<std::string>{"remote_ip", "remote_port", "client_ip", "proto", "method",
                                         "host", "uri", "headers"});
}

TEST_CASE("ts and duration are seconds with Go's shortest fixed-point digits", "[access_log]") {
  struct Case {
    std::int64_t start_ns;
    std::int64_t duration_ns;
    std::string ts, duration;
  };
  const Case c = GENERATE(values<Case>({
      {0, 0, "0", "0"},
      {1646861401524000000, 1, "1646861401.524", "0.000000001"},
      {1700000000000000000, 1500000000, "1700000000", "1.5"},
      {1646861401524102400, 929675, "1646861401.5241024", "0.000929675"},
      {1646861401000000001, 120000000000, "1646861401", "120"},
  }));
  AccessLogEntry e = sample_entry();
  e.start = unix_ns(c.start_ns);
  e.duration = std::chrono::nanoseconds(c.duration_ns);
  const std::string line = serve::format_access_log(e);
  CHECK_THAT(line, Catch::Contains("\"ts\":" + c.ts + ",\"logger\""));
  CHECK_THAT(line, Catch::Contains("\"duration\":" + c.duration + ",\"size\""));
}

TEST_CASE(
    "invalid UTF-8 becomes U+FFFD and control bytes are escaped, so the "
    "line is valid JSON",
    "[access_log]") {
  AccessLogEntry e = sample_entry();
  // é, two stray bytes, a truncated euro sign, a surrogate, an overlong '/', then a valid emoji.
  e.uri = "/caf\xc3\xa9/\xff\xfe/\xe2\x82/\xed\xa0\x80/\xc0\xaf/\xf0\x9f\x94\x92";
  e.request_headers = {{"x-\xffname", "ok\x80"}};
  e.user_id =
      "a\x01"
      "b\t\"\\<&>\x7f";
  const std::string line = serve::format_access_log(e);
  CHECK_THAT(line, Catch::Contains(R"("uri":"/caf)"
                                   "\xc3\xa9"
                                   R"(/\ufffd\ufffd/\ufffd\ufffd/\ufffd\ufffd\ufffd/\ufffd\ufffd/)"
                                   "\xf0\x9f\x94\x92\""));
  CHECK_THAT(line, Catch::Contains(R"("headers":{"x-\ufffdname":["ok\ufffd"]})"));
  CHECK_THAT(line, Catch::Contains(R"("user_id":"a\u0001b\t\"\\<&>)"
                                   "\x7f\""));
  const auto parsed = nlohmann::json::parse(line);  // throws on invalid UTF-8
  CHECK(parsed["request"]["uri"] ==
        "/caf\xc3\xa9/\xef\xbf\xbd\xef\xbf\xbd/\xef\xbf\xbd\xef\xbf\xbd/"
        "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd/"
        "\xef\xbf\xbd\xef\xbf\xbd/\xf0\x9f\x94\x92");
}

TEST_CASE("the console format is wall time, level, logger, message and the fields",
          "[access_log]") {
  REQUIRE(setenv("TZ", "UTC", 1) == 0);  // each TEST_CASE runs in its own process
  tzset();
  AccessLogEntry e = sample_entry();
  CHECK(
      serve::format_access_log_console(e) ==
      "2022/03/09 21:30:01.524\tINFO\thttp.log.access.log0\thandled request\t"
      R"({"request": {"remote_ip": "127.0.0.1", "remote_port": "41342", "client_ip": "127.0.0.1", )"
      R"("proto": "HTTP/2.0", "method": "GET", "host": "localhost", "uri": "/", )"
      R"("headers": {"User-Agent": ["curl/7.82.0"], "Accept": ["*/*"]}, "tls": {"resumed": false, )"
      R"("version": 772, "cipher_suite": 4865, "proto": "h2", "server_name": "example.com"}}, )"
      R"("bytes_read": 0, "user_id": "", "duration": 0.000929675, "size": 10900, "status": 200, )"
      R"("resp_headers": {"Server": ["Caddy"], "Content-Type": ["text/html; charset=utf-8"]}})");
  e.status = 503;
  CHECK_THAT(serve::format_access_log_console(e),
             Catch::StartsWith("2022/03/09 21:30:01.524\tERROR\t"));
}

TEST_CASE("output file options are read as Caddy reads them", "[access_log]") {
  constexpr std::uint64_t kMiB = 1 << 20;
  const FileLogOptions defaults = serve::file_log_options(file_config("/var/log/a.log"));
  CHECK(defaults.roll);
  CHECK(defaults.roll_size_bytes == 100 * kMiB);
  CHECK(defaults.roll_keep == 10);
  CHECK(defaults.roll_keep_for == std::chrono::hours(2160));
  CHECK_FALSE(defaults.roll_local_time);
  CHECK(defaults.roll_compress);
  CHECK(defaults.mode == (fs::perms::owner_read | fs::perms::owner_write));

  const auto [size, bytes] = GENERATE(table<std::string, std::uint64_t>({
      {"1KiB", 1 * kMiB},  // Caddy's resolution is whole MiB, rounded up
      {"100MiB", 100 * kMiB},
      {"100MB", 96 * kMiB},  // 10^8 bytes
      {"1.5 GiB", 1536 * kMiB},
      {"2g", 1908 * kMiB},  // 2 * 10^9 bytes
      {"1,048,577", 2 * kMiB},
      {"0", 100 * kMiB},  // zero: the default
  }));
  const FileLogOptions o =
      serve::file_log_options(file_config("/var/log/a.log", {{"roll_size", {size}},
                                                             {"roll_keep", {"3"}},
                                                             {"roll_keep_for", {"36h"}},
                                                             {"roll_local_time", {}},
                                                             {"roll_uncompressed", {}},
                                                             {"mode", {"644"}}}));
  CHECK(o.roll_size_bytes == bytes);
  CHECK(o.roll_keep == 3);
  CHECK(o.roll_keep_for == std::chrono::hours(48));  // whole days, rounded up
  CHECK(o.roll_local_time);
  CHECK_FALSE(o.roll_compress);
  CHECK(o.mode == static_cast<fs::perms>(0644));
  CHECK_FALSE(serve::file_log_options(file_config("/var/log/a.log", {{"roll_disabled", {}}})).roll);
  CHECK(serve::file_log_options(file_config("/var/log/a.log", {{"roll_keep_for", {"30d"}}}))
            .roll_keep_for == std::chrono::hours(720));
}

TEST_CASE("bad output file options are refused naming the file and the option", "[access_log]") {
  const auto [option, args, message] =
      GENERATE(table<std::string, std::vector<std::string>, std::string>({
          {"roll_size", {"10 parsecs"}, "roll_size: '10 parsecs' is not a size"},
          {"roll_size", {}, "roll_size: expects one argument"},
          {"roll_keep", {"many"}, "roll_keep: 'many' is not an integer"},
          {"roll_keep_for", {"-1h"}, "roll_keep_for: '-1h' is not a duration"},
          {"roll_keep_for", {"90"}, "roll_keep_for: '90' is not a duration"},
          {"mode", {"0999"}, "mode: '0999' is not an octal file mode"},
          {"roll_disabled", {"yes"}, "roll_disabled: takes no arguments"},
          {"roll_sise", {"1MiB"}, "roll_sise: unknown option"},
      }));
  CHECK_THROWS_WITH(serve::file_log_options(file_config("/var/log/a.log", {{option, args}})),
                    Catch::StartsWith("log output file /var/log/a.log: " + message));
}

TEST_CASE("open refuses what it cannot write, naming the file", "[access_log]") {
  acmetool::test::TempDir dir;
  const fs::path missing = dir.path() / "no-such-dir" / "access.log";
  CHECK_THROWS_MATCHES(
      AccessLogWriter::open(file_config(missing)), serve::Error,
      Catch::Message("opening access log " + missing.string() + ": No such file or directory"));
  acmetool::caddyfile::LogConfig config;
  config.level = "verbose";
  CHECK_THROWS_WITH(AccessLogWriter::open(config),
                    Catch::StartsWith("log: unknown level 'verbose'"));
  config.level = "warn";
  config.output = "net";
  CHECK_THROWS_WITH(AccessLogWriter::open(config),
                    Catch::StartsWith("log: output 'net' is not supported"));
}

TEST_CASE("a writer skips entries below its level and writes its config's format", "[access_log]") {
  acmetool::test::TempDir dir;
  const fs::path path = dir.path() / "access.log";
  acmetool::caddyfile::LogConfig config = file_config(path);
  config.level = "WARN";
  config.format = "console";
  AccessLogEntry ok = sample_entry(), failed = sample_entry();
  failed.status = 503;
  {
    auto writer = AccessLogWriter::open(config);
    writer->log(ok);
    writer->log(failed);
  }
  const std::vector<std::string> lines = lines_of(read_all(path));
  REQUIRE(lines.size() == 1);
  CHECK_THAT(lines[0],
             Catch::Contains("\tERROR\thttp.log.access.log0\thandled request\t{\"request\": {"));

  config.level.reset();
  config.format = "json";
  fs::remove(path);
  {
    auto writer = AccessLogWriter::open(config);
    writer->log(ok);
    writer->log(failed);
  }
  CHECK(read_all(path) ==
        serve::format_access_log(ok) + "\n" + serve::format_access_log(failed) + "\n");
}

TEST_CASE("output stdout writes whole lines to file descriptor 1", "[access_log]") {
  acmetool::test::TempDir dir;
  const fs::path path = dir.path() / "stdout";
  acmetool::caddyfile::LogConfig config;
  config.output = "stdout";
  auto writer = AccessLogWriter::open(config);
  std::fflush(stdout);
  const int saved = dup(STDOUT_FILENO);
  const int file = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  REQUIRE((saved >= 0 && file >= 0));
  dup2(file, STDOUT_FILENO);
  writer->write("first");
  writer->log(sample_entry());
  dup2(saved, STDOUT_FILENO);
  close(saved);
  close(file);
  CHECK(read_all(path) == "first\n" + serve::format_access_log(sample_entry()) + "\n");
  CHECK(writer->dropped() == 0);
}

TEST_CASE(
    "output discard writes nothing and drops nothing; a failed write is "
    "dropped and counted",
    "[access_log]") {
  acmetool::caddyfile::LogConfig config;
  config.output = "discard";
  auto discard = AccessLogWriter::open(config);
  discard->write("gone");
  CHECK(discard->dropped() == 0);

  // /dev/full fails every write with ENOSPC.
  auto full = AccessLogWriter::open(file_config("/dev/full", {{"roll_disabled", {}}}));
  full->write("first");
  full->log(sample_entry());
  CHECK(full->dropped() == 2);
  struct stat st {};
  REQUIRE(stat("/dev/full", &st) == 0);
  CHECK((st.st_mode & 0777) == 0666);  // a device keeps its mode
}

TEST_CASE(
    "an output file is created 0600, appended to, and given the "
    "configured mode",
    "[access_log]") {
  acmetool::test::TempDir dir;
  const fs::path fresh = dir.path() / "fresh.log";
  AccessLogWriter::open(file_config(fresh))->write("one");
  CHECK((fs::status(fresh).permissions() & fs::perms::all) == static_cast<fs::perms>(0600));

  const fs::path existing = dir.path() / "existing.log";
  acmetool::test::write_file(existing, "old\n");
  fs::permissions(existing, static_cast<fs::perms>(0644));
  AccessLogWriter::open(file_config(existing, {{"mode", {"0640"}}}))->write("new");
  CHECK(read_all(existing) == "old\nnew\n");
  CHECK((fs::status(existing).permissions() & fs::perms::all) == static_cast<fs::perms>(0640));
}

TEST_CASE(
    "a file that would pass roll_size is rolled to lumberjack's backup "
    "name and gzipped",
    "[access_log]") {
  acmetool::test::TempDir dir;
  const fs::path path = dir.path() / "access.log";
  const std::string line(39, 'a');  // 40 bytes with the newline: the third passes 100
  const auto before = system_clock::now();
  {
    auto writer = AccessLogWriter::open_file(path, small_files(100, 10, true));
    writer->write(line + "1");
    writer->write(line + "2");
    CHECK(files_matching(dir.path(), R"(access-.*)").empty());
    writer->write(line + "3");
  }  // the destructor waits for the compression
  const auto after = system_clock::now();
  CHECK(read_all(path) == line + "3\n");
  CHECK(files_matching(dir.path(), kRolledLog).empty());
  const std::vector<fs::path> rolled = files_matching(dir.path(), kRolledGz);
  REQUIRE(rolled.size() == 1);
  CHECK(gunzip(rolled[0]) == line + "1\n" + line + "2\n");
  const std::string stamp = rolled[0].filename().string().substr(7, 19);
  CHECK(stamp >= backup_stamp(before, false));
  CHECK(stamp <= backup_stamp(after + 1s, false));
}

TEST_CASE(
    "roll_uncompressed keeps rolled files as written; roll_local_time "
    "names them in local time",
    "[access_log]") {
  REQUIRE(setenv("TZ", "ACM-10", 1) == 0);  // UTC+10, whatever the host says
  tzset();
  acmetool::test::TempDir dir;
  const fs::path path = dir.path() / "access.log";
  acmetool::test::write_file(path, std::string(97, 'o') + "\n");  // 98 bytes: near the limit
  FileLogOptions options = small_files(100, 10, false);
  options.roll_local_time = true;
  const auto before = system_clock::now();
  {
    auto writer = AccessLogWriter::open_file(path, options);
    writer->write("new");
  }
  const auto after = system_clock::now();
  CHECK(read_all(path) == "new\n");
  const std::vector<fs::path> rolled = files_matching(dir.path(), kRolledLog);
  REQUIRE(rolled.size() == 1);
  CHECK(read_all(rolled[0]) == std::string(97, 'o') + "\n");
  const std::string stamp = rolled[0].filename().string().substr(7, 19);
  CHECK(stamp >= backup_stamp(before, true));
  CHECK(stamp <= backup_stamp(after + 1s, true));
  CHECK(files_matching(dir.path(), kRolledGz).empty());
}

TEST_CASE("only the newest roll_keep rolled files are kept", "[access_log]") {
  const bool compress = GENERATE(false, true);
  acmetool::test::TempDir dir;
  const fs::path path = dir.path() / "access.log";
  {
    // Every line passes roll_size, so each write after the first rolls.
    auto writer = AccessLogWriter::open_file(path, small_files(10, 3, compress));
    for (int i = 1; i <= 8; ++i) writer->write("line number " + std::to_string(i));
  }
  CHECK(read_all(path) == "line number 8\n");
  const std::vector<fs::path> rolled =
      files_matching(dir.path(), compress ? kRolledGz : kRolledLog);
  REQUIRE(rolled.size() == 3);
  CHECK(files_matching(dir.path(), R"(access-.*)").size() == 3);
  for (int i = 0; i < 3; ++i) {
    const std::string expected = "line number " + std::to_string(5 + i) + "\n";
    CHECK((compress ? gunzip(rolled[i]) : read_all(rolled[i])) == expected);
  }
}

TEST_CASE("rolled files older than roll_keep_for are deleted, other files are not",
          "[access_log]") {
  acmetool::test::TempDir dir;
  const fs::path path = dir.path() / "access.log";
  const std::string recent = "access-" + backup_stamp(system_clock::now() - 1h, false) + ".000.log";
  for (const char* name :
       {"access-2001-02-03T04-05-06.000.log", "access-2001-02-03T04-05-07.000.log.gz",
        "access-notes.log", "other-2001-02-03T04-05-06.000.log"}) {
    acmetool::test::write_file(dir.path() / name, "x\n");
  }
  acmetool::test::write_file(dir.path() / recent, "recent\n");
  FileLogOptions options = small_files(10, 10, false);
  options.roll_keep_for = 24h;
  {
    auto writer = AccessLogWriter::open_file(path, options);
    writer->write("first line");
    writer->write("second line");
  }
  CHECK_FALSE(fs::exists(dir.path() / "access-2001-02-03T04-05-06.000.log"));
  CHECK_FALSE(fs::exists(dir.path() / "access-2001-02-03T04-05-07.000.log.gz"));
  CHECK(read_all(dir.path() / recent) == "recent\n");
  CHECK(fs::exists(dir.path() / "access-notes.log"));
  CHECK(fs::exists(dir.path() / "other-2001-02-03T04-05-06.000.log"));
  const std::vector<fs::path> rolled = files_matching(dir.path(), kRolledLog);
  REQUIRE(rolled.size() == 2);
  CHECK(read_all(rolled[1]) == "first line\n");  // the newest name
}

TEST_CASE("four threads writing at once leave only whole lines, across rolls", "[access_log]") {
  acmetool::test::TempDir dir;
  const fs::path path = dir.path() / "access.log";
  constexpr int kThreads = 4, kLines = 500;
  std::multiset<std::string> expected;
  std::uint64_t dropped = 0;
  {
    auto writer = AccessLogWriter::open_file(path, small_files(4096, -1, false));
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&writer, t] {
        for (int i = 0; i < kLines; ++i) {
          writer->write("thread=" + std::to_string(t) + " line=" + std::to_string(i) + " " +
                        std::string(static_cast<std::size_t>(i % 97), static_cast<char>('a' + t)));
        }
      });
      for (int i = 0; i < kLines; ++i) {
        expected.insert("thread=" + std::to_string(t) + " line=" + std::to_string(i) + " " +
                        std::string(static_cast<std::size_t>(i % 97), static_cast<char>('a' + t)));
      }
    }
    for (std::thread& thread : threads) thread.join();
    dropped = writer->dropped();
  }
  CHECK(dropped == 0);
  std::vector<fs::path> files = files_matching(dir.path(), kRolledLog);
  CHECK(files.size() > 10);
  files.push_back(path);
  std::multiset<std::string> found;
  for (const fs::path& file : files) {
    const std::string text = read_all(file);
    CHECK(text.size() <= 4096);
    for (const std::string& line : lines_of(text)) found.insert(line);
  }
  CHECK(found == expected);
}

TEST_CASE("writers opened for the same file share it and its rolling", "[access_log]") {
  acmetool::test::TempDir dir;
  const fs::path path = dir.path() / "access.log";
  const std::string line(29, 'x');  // 30 bytes: two pass 50
  {
    auto first = AccessLogWriter::open_file(path, small_files(50, 10, false));
    auto second =
        AccessLogWriter::open_file(dir.path() / "." / "access.log", small_files(50, 10, false));
    first->write(line + "1");
    second->write(line + "2");
  }
  CHECK(read_all(path) == line + "2\n");
  const std::vector<fs::path> rolled = files_matching(dir.path(), kRolledLog);
  REQUIRE(rolled.size() == 1);
  CHECK(read_all(rolled[0]) == line + "1\n");
}
