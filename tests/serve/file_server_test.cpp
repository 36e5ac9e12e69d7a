// The file server's decisions (issue 8, `file_server`): path resolution against a real directory
// tree — including the traversal vectors that must never leave the root — MIME types, validators,
// conditional requests, ranges, precompressed sidecars and listings.
#include "acmetool/serve/file_server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "acmetool/serve/error.h"
#include "fixture_util.h"
#include "process.h"

namespace fs = std::filesystem;
namespace serve = acmetool::serve;
using Kind = serve::FileTarget::Kind;
using serve::ByteRange;
using serve::Precondition;
using std::chrono::system_clock;
using namespace std::chrono_literals;

namespace {

constexpr const char* kSecret = "TOP-SECRET-CONTENT";

system_clock::time_point utc(int y, unsigned mo, unsigned d, int h, int mi, int s) {
  using namespace std::chrono;
  return sys_days{year{y} / month{mo} / day{d}} + hours{h} + minutes{mi} + seconds{s};
}

fs::file_time_type file_time(system_clock::time_point t) {
  return std::chrono::file_clock::from_sys(t);
}

// Writes `text` to `path`, creating the directories above it.
void write_file(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  acmetool::test::write_file(path, text);
}

std::string kind_name(Kind kind) {
  switch (kind) {
    case Kind::File:
      return "File";
    case Kind::Listing:
      return "Listing";
    case Kind::Redirect:
      return "Redirect";
    case Kind::NotFound:
      return "NotFound";
    case Kind::Forbidden:
      return "Forbidden";
    case Kind::BadRequest:
      return "BadRequest";
  }
  return "?";
}

// A site root with every kind of entry the resolver meets, and secrets beside it:
//   base/secret, base/outside/secret.txt   what no request may reach
//   base/site/                             the root (no index file)
struct Site {
  acmetool::test::TempDir base{"acmetool-files"};
  fs::path root = base.path() / "site";
  fs::path outside = base.path() / "outside";
  serve::FileServerOptions options;

  Site() {
    write_file(base.path() / "secret", kSecret);
    write_file(outside / "secret.txt", kSecret);
    write_file(root / "file.txt", "hello");
    write_file(root / "sub" / "index.html", "<h1>sub</h1>");
    write_file(root / "sub" / "page.txt", "page");
    write_file(root / "my dir" / "index.html", "spaced");
    write_file(root / "nodir" / "a.txt", "a");
    write_file(root / ".hidden", "hidden");
    write_file(root / "private" / "doc.txt", "private");
    write_file(root / "a b \xC3\xBC.txt", "unicode");
    write_file(root / "back\\slash.txt", "backslash");
    write_file(root / "100%.txt", "percent");
    write_file(root / "%2e%2e" / "secret", "decoy");  // what "/%252e%252e/secret" means
    for (const char* suffix : {"", ".gz", ".br", ".zst"}) {
      write_file(root / (std::string("style.css") + suffix), std::string("css") + suffix);
    }
    write_file(root / "app.js", "js");
    write_file(root / "app.js.gz", "js.gz");
    write_file(root / "leak.txt", "leak");
    fs::create_symlink(outside / "secret.txt", root / "leak.txt.gz");
    fs::create_directories(root / "dir.txt.gz");
    write_file(root / "dir.txt", "dir");
    fs::create_symlink(outside / "secret.txt", root / "link-out");
    fs::create_symlink(outside, root / "dir-link-out");
    fs::create_symlink("../secret", root / "relative-out");
    fs::create_symlink("link-out", root / "link-chain");
    fs::create_symlink("file.txt", root / "link-in");
    fs::create_symlink("sub", root / "dir-link-in");
    fs::create_symlink(".hidden", root / "link-hidden");
    options.root = root;
    options.hide = {".hidden", (root / "private").string()};
  }

  serve::FileTarget resolve(std::string_view raw) const {
    return serve::resolve_file(options, raw);
  }
};

std::string read_all(const fs::path& path) { return acmetool::test::read_text(path); }

// What the descriptor the resolver handed over reads (from the start).
std::string read_fd(const acmetool::pki::UniqueFd& fd) {
  std::string text(4096, '\0');
  const ssize_t got = ::pread(fd.get(), text.data(), text.size(), 0);
  text.resize(got > 0 ? static_cast<std::size_t>(got) : 0);
  return text;
}

}  // namespace

TEST_CASE("no traversal vector resolves to anything outside the root", "[file_server]") {
  Site site;
  site.options.browse = true;  // the most permissive configuration
  const std::string deep = [] {
    std::string path = "/";
    for (int i = 0; i < 10000; ++i) path += "../";
    return path + "secret";
  }();
  struct Vector {
    std::string raw;
    Kind expected;
  };
  const std::vector<Vector> vectors = {
      {"/../secret", Kind::NotFound},
      {"/..%2fsecret", Kind::NotFound},
      {"/..%2Fsecret", Kind::NotFound},
      {"/%2e%2e/secret", Kind::NotFound},
      {"/%2E%2E/%2E%2E/secret", Kind::NotFound},
      {"/%2e%2e%2fsecret", Kind::NotFound},
      {"/%2e%2e%5c%2e%2e%5csecret", Kind::NotFound},
      {"/%252e%252e/secret", Kind::File},  // one decode: the in-root directory named "%2e%2e"
      {"/..%252fsecret", Kind::NotFound},
      {"/..\\secret", Kind::NotFound},
      {"/..\\..\\secret", Kind::NotFound},
      {"/%5c..%5csecret", Kind::NotFound},
      {"/....//secret", Kind::NotFound},
      {"/..;/secret", Kind::NotFound},
      {"/./../secret", Kind::NotFound},
      {"/sub/../../secret", Kind::NotFound},
      {"/sub/%2e%2e/%2e%2e/secret", Kind::NotFound},
      {"/sub/%2e%2e%2f%2e%2e%2fsecret", Kind::NotFound},
      {"/dir-link-in/../../secret", Kind::NotFound},
      {"/dir-link-out/../secret", Kind::NotFound},
      {"//secret", Kind::NotFound},
      {"///..//..//secret", Kind::NotFound},
      {"/%2fsecret", Kind::NotFound},
      {"/%2f%2e%2e%2f%2e%2e%2fsecret", Kind::NotFound},
      {"/.%2e/secret", Kind::NotFound},
      {"/%2e./secret", Kind::NotFound},
      {"/%c0%ae%c0%ae/secret", Kind::NotFound},
      {"/%c0%af..%c0%afsecret", Kind::NotFound},
      {"/%e0%80%ae%e0%80%ae/secret", Kind::NotFound},
      {"/secret%00.html", Kind::BadRequest},
      {"/%00", Kind::BadRequest},
      {"/sub/..%00/secret", Kind::BadRequest},
      {"/link-out%00", Kind::BadRequest},
      {"/%%32%65%%32%65/secret", Kind::BadRequest},
      {"/%u002e%u002e/secret", Kind::BadRequest},
      {"/%2", Kind::BadRequest},
      {"/%zz", Kind::BadRequest},
      {"../secret", Kind::BadRequest},
      {"", Kind::BadRequest},
      {"/link-out", Kind::Forbidden},
      {"/link-out/", Kind::Forbidden},
      {"/link-chain", Kind::Forbidden},
      {"/relative-out", Kind::Forbidden},
      {"/dir-link-out/secret.txt", Kind::Forbidden},
      {"/dir-link-out%2fsecret.txt", Kind::Forbidden},
      {"/dir-link-out/", Kind::Forbidden},
      {"/dir-link-out", Kind::Forbidden},
      {"/etc/passwd", Kind::NotFound},
      {"/proc/self/root/etc/passwd", Kind::NotFound},
      {"/C:/secret", Kind::NotFound},
      {"/C:\\secret", Kind::NotFound},
      {"/secret#", Kind::NotFound},
      {"/%23/../../secret", Kind::NotFound},
      {"/ /../secret", Kind::NotFound},
      {"/~/secret", Kind::NotFound},
      {"/" + std::string(300, 'a'), Kind::NotFound},
      {deep, Kind::NotFound},
      {"/..", Kind::Listing},  // the root itself
      {"/%2e%2e", Kind::Listing},
      {"/sub/../..", Kind::Listing},
  };
  REQUIRE(vectors.size() >= 40);
  const fs::path real_root = fs::canonical(site.root);
  for (const auto& vector : vectors) {
    INFO("request path " << (vector.raw.size() > 80 ? vector.raw.substr(0, 80) + "..."
                                                    : vector.raw));
    const auto target = site.resolve(vector.raw);
    INFO("reason: " << target.reason);
    CHECK(kind_name(target.kind) == kind_name(vector.expected));
    if (target.kind == Kind::File || target.kind == Kind::Listing) {
      const fs::path real = fs::canonical(target.path);
      CHECK(std::mismatch(real_root.begin(), real_root.end(), real.begin(), real.end()).first ==
            real_root.end());
      if (target.kind == Kind::File) CHECK(read_all(target.path) != kSecret);
      if (target.file) CHECK(read_fd(*target.file) != kSecret);
    }
  }
  CHECK(read_all(site.resolve("/%252e%252e/secret").path) == "decoy");
  CHECK(site.resolve("/link-out").reason == "symlink leaves the root");
  CHECK(site.resolve("/%00").reason == "NUL in path");
}

TEST_CASE("symlinks may leave the root only when allowed", "[file_server]") {
  Site site;
  site.options.allow_symlinks_outside_root = true;
  const auto target = site.resolve("/link-out");
  REQUIRE(target.kind == Kind::File);
  CHECK(target.path == site.root / "link-out");
  CHECK(read_all(target.path) == kSecret);
  CHECK(site.resolve("/dir-link-out/secret.txt").kind == Kind::File);
  // Lexical cleaning still comes first: ".." never climbs out through a link.
  CHECK(site.resolve("/dir-link-out/../secret").kind == Kind::NotFound);
}

TEST_CASE("files resolve to the root joined with the cleaned path", "[file_server]") {
  Site site;
  const auto target = site.resolve("/file.txt");
  REQUIRE(target.kind == Kind::File);
  CHECK(target.path == site.root / "file.txt");
  CHECK(target.clean_path == "/file.txt");
  CHECK(target.size == 5);
  CHECK(target.modified == fs::last_write_time(site.root / "file.txt"));

  CHECK(site.resolve("//sub/./page.txt").path == site.root / "sub" / "page.txt");
  CHECK(read_all(site.resolve("/a%20b%20%C3%BC.txt").path) == "unicode");
  CHECK(read_all(site.resolve("/a b \xC3\xBC.txt").path) == "unicode");
  CHECK(read_all(site.resolve("/back%5Cslash.txt").path) == "backslash");
  CHECK(read_all(site.resolve("/back\\slash.txt").path) == "backslash");
  CHECK(read_all(site.resolve("/100%25.txt").path) == "percent");
  CHECK(site.resolve("/100%.txt").kind == Kind::BadRequest);
  // A symlink inside the root is served under its own name (its name gives the MIME type).
  const auto link = site.resolve("/link-in");
  REQUIRE(link.kind == Kind::File);
  CHECK(link.path == site.root / "link-in");
  CHECK(read_all(link.path) == "hello");
  CHECK(site.resolve("/missing.txt").kind == Kind::NotFound);
  CHECK(site.resolve("/file.txt/more").kind == Kind::NotFound);
}

TEST_CASE("paths without symlinks come back open, and a swapped root is seen within a second", "[file_server]") {
  Site site;
  const auto file = site.resolve("/file.txt");
  REQUIRE(file.file);
  CHECK(read_fd(*file.file) == "hello");
  const auto index = site.resolve("/sub/");
  REQUIRE(index.kind == Kind::File);
  REQUIRE(index.file);
  CHECK(read_fd(*index.file) == "<h1>sub</h1>");
  // A symlink on the way takes the slow path, which leaves opening to the caller.
  const auto link = site.resolve("/link-in");
  REQUIRE(link.kind == Kind::File);
  CHECK_FALSE(link.file);

  // A deploy that points the root's symlink at a new release.
  const fs::path releases = site.base.path() / "releases";
  write_file(releases / "1" / "page.txt", "one");
  write_file(releases / "2" / "page.txt", "two");
  const fs::path current = site.base.path() / "current";
  fs::create_symlink(releases / "1", current);
  serve::FileServerOptions options;
  options.root = current;
  CHECK(read_fd(*serve::resolve_file(options, "/page.txt").file) == "one");
  fs::create_symlink(releases / "2", site.base.path() / "next");
  fs::rename(site.base.path() / "next", current);
  std::this_thread::sleep_for(1100ms);
  CHECK(read_fd(*serve::resolve_file(options, "/page.txt").file) == "two");
}

TEST_CASE("directories serve their index file and redirect to add the slash", "[file_server]") {
  Site site;
  const auto index = site.resolve("/sub/");
  REQUIRE(index.kind == Kind::File);
  CHECK(index.path == site.root / "sub" / "index.html");
  CHECK(index.size == 12);
  CHECK(site.resolve("/dir-link-in/").path == site.root / "dir-link-in" / "index.html");

  const auto redirect = site.resolve("/sub");
  REQUIRE(redirect.kind == Kind::Redirect);
  CHECK(redirect.redirect_location == "/sub/");
  CHECK(site.resolve("/sub/.").redirect_location == "/sub/");
  CHECK(site.resolve("//sub").redirect_location == "/sub/");  // never "//sub/": no open redirect
  CHECK(site.resolve("/my%20dir").redirect_location == "/my%20dir/");

  SECTION("a file requested with a trailing slash redirects without it") {
    const auto target = site.resolve("/file.txt/");
    REQUIRE(target.kind == Kind::Redirect);
    CHECK(target.redirect_location == "/file.txt");
    CHECK(site.resolve("/a%20b%20%C3%BC.txt/").redirect_location == "/a%20b%20%C3%BC.txt");
  }
  SECTION("index names are tried in order") {
    site.options.index_names = {"missing.html", "page.txt", "index.html"};
    CHECK(site.resolve("/sub/").path == site.root / "sub" / "page.txt");
  }
  SECTION("a hidden index file is skipped") {
    site.options.hide.push_back("index.html");
    CHECK(site.resolve("/sub/").kind == Kind::NotFound);
    site.options.browse = true;
    CHECK(site.resolve("/sub/").kind == Kind::Listing);
  }
}

TEST_CASE("directories without an index are listed only with browse", "[file_server]") {
  Site site;
  CHECK(site.resolve("/nodir/").kind == Kind::NotFound);
  CHECK(site.resolve("/nodir").kind == Kind::NotFound);  // no redirect to a 404
  CHECK(site.resolve("/").kind == Kind::NotFound);

  site.options.browse = true;
  const auto listing = site.resolve("/nodir/");
  REQUIRE(listing.kind == Kind::Listing);
  CHECK(listing.path == site.root / "nodir");
  CHECK(listing.clean_path == "/nodir/");
  CHECK(site.resolve("/nodir").redirect_location == "/nodir/");
  const auto root = site.resolve("/");
  REQUIRE(root.kind == Kind::Listing);
  CHECK(root.clean_path == "/");
  CHECK(site.resolve("/sub/..").kind == Kind::Listing);  // "/" already has its slash
}

TEST_CASE("hidden files answer 404 under every name", "[file_server]") {
  Site site;
  site.options.browse = true;
  CHECK(site.resolve("/.hidden").kind == Kind::NotFound);
  CHECK(site.resolve("/.hidden").reason == "hidden");
  CHECK(site.resolve("/%2ehidden").kind == Kind::NotFound);
  CHECK(site.resolve("/sub/../.hidden").kind == Kind::NotFound);
  CHECK(site.resolve("/link-hidden").kind == Kind::NotFound);  // a symlink to it
  CHECK(site.resolve("/private/doc.txt").kind == Kind::NotFound);
  CHECK(site.resolve("/private/").kind == Kind::NotFound);
  CHECK(site.resolve("/private").kind == Kind::NotFound);
  SECTION("globs") {
    site.options.hide = {"*.css"};
    CHECK(site.resolve("/style.css").kind == Kind::NotFound);
    CHECK(site.resolve("/file.txt").kind == Kind::File);
    site.options.hide = {(site.root / "s*").string()};
    CHECK(site.resolve("/style.css").kind == Kind::NotFound);
    CHECK(site.resolve("/sub/page.txt").kind == Kind::NotFound);  // under a hidden directory
    CHECK(site.resolve("/file.txt").kind == Kind::File);
  }
  SECTION("names match below the root only") {
    site.options.hide = {site.root.filename().string()};
    CHECK(site.resolve("/file.txt").kind == Kind::File);
  }
}

TEST_CASE("unreadable files, special files and a missing root are refused", "[file_server]") {
  Site site;
  ::mkfifo((site.root / "fifo").c_str(), 0644);
  CHECK(site.resolve("/fifo").kind == Kind::NotFound);
  CHECK(site.resolve("/fifo").reason == "not a regular file");

  fs::permissions(site.root / "file.txt", fs::perms::none);
  write_file(site.root / "locked" / "f.txt", "f");
  fs::permissions(site.root / "locked", fs::perms::none);
  if (::geteuid() != 0) {  // root reads anything: permissions do not bite
    CHECK(site.resolve("/file.txt").kind == Kind::Forbidden);
    CHECK(site.resolve("/file.txt").reason == "Permission denied");
    CHECK(site.resolve("/locked/f.txt").kind == Kind::Forbidden);
  }
  fs::permissions(site.root / "locked", fs::perms::owner_all);

  site.options.root = site.base.path() / "no-such-root";
  CHECK(site.resolve("/file.txt").kind == Kind::NotFound);
  site.options.root = site.root / "file.txt";  // a file as root: no redirect loop to "/"
  CHECK(site.resolve("/").kind == Kind::NotFound);
  CHECK(site.resolve("/x").kind == Kind::NotFound);
}

TEST_CASE("an index file that leaves the root makes its directory forbidden", "[file_server]") {
  Site site;
  site.options.browse = true;
  write_file(site.root / "trap" / "other.txt", "other");
  fs::create_symlink(site.outside / "secret.txt", site.root / "trap" / "index.html");
  const auto target = site.resolve("/trap/");
  CHECK(kind_name(target.kind) == "Forbidden");
  CHECK(target.reason == "symlink leaves the root");
  site.options.allow_symlinks_outside_root = true;
  CHECK(site.resolve("/trap/").path == site.root / "trap" / "index.html");
}

TEST_CASE("MIME types come from the extension", "[file_server]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"index.html", "text/html; charset=utf-8"},
      {"INDEX.HTM", "text/html; charset=utf-8"},
      {"style.css", "text/css; charset=utf-8"},
      {"app.js", "text/javascript; charset=utf-8"},
      {"mod.mjs", "text/javascript; charset=utf-8"},
      {"data.json", "application/json"},
      {"logo.svg", "image/svg+xml"},
      {"a.png", "image/png"},
      {"a.jpg", "image/jpeg"},
      {"a.JPEG", "image/jpeg"},
      {"a.gif", "image/gif"},
      {"a.webp", "image/webp"},
      {"a.avif", "image/avif"},
      {"favicon.ico", "image/vnd.microsoft.icon"},
      {"notes.txt", "text/plain; charset=utf-8"},
      {"feed.xml", "application/xml"},
      {"doc.pdf", "application/pdf"},
      {"m.wasm", "application/wasm"},
      {"f.woff", "font/woff"},
      {"f.woff2", "font/woff2"},
      {"f.ttf", "font/ttf"},
      {"f.otf", "font/otf"},
      {"v.mp4", "video/mp4"},
      {"v.webm", "video/webm"},
      {"s.mp3", "audio/mpeg"},
      {"s.ogg", "audio/ogg"},
      {"s.wav", "audio/x-wav"},
      {"a.zip", "application/zip"},
      {"a.tar.gz", "application/gzip"},
      {"a.tar", "application/x-tar"},
      {"README.md", "text/markdown; charset=utf-8"},
      {"Makefile", "application/octet-stream"},
      {"a.unknownext", "application/octet-stream"},
      {"dir.d/noext", "application/octet-stream"},
  };
  for (const auto& [name, type] : cases) {
    INFO(name);
    CHECK(serve::mime_type(name) == type);
  }
}

TEST_CASE("ETags and HTTP dates are Caddy's", "[file_server]") {
  const auto when = utc(2024, 1, 2, 3, 4, 5) + 123ms;  // Unix 1704164645 = "s6m5ut" in base 36
  CHECK(serve::file_etag(file_time(when), 1234) == "\"s6m5utya\"");
  CHECK(serve::file_etag(file_time(when), 0) == "\"s6m5ut0\"");
  CHECK(serve::file_etag(file_time(system_clock::from_time_t(1)), 10).empty());
  CHECK_FALSE(serve::useful_mod_time(file_time(system_clock::from_time_t(0))));
  CHECK(serve::useful_mod_time(file_time(when)) == when);

  CHECK(serve::http_date(system_clock::from_time_t(784111777) + 999ms) ==
        "Sun, 06 Nov 1994 08:49:37 GMT");
  CHECK(serve::http_date(utc(2024, 2, 29, 23, 0, 9)) == "Thu, 29 Feb 2024 23:00:09 GMT");
  const auto expected = system_clock::from_time_t(784111777);
  CHECK(serve::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == expected);
  CHECK(serve::parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT") == expected);
  CHECK(serve::parse_http_date("Sun Nov  6 08:49:37 1994") == expected);
  // Years system_clock cannot hold are no dates (found by tests/fuzz/http_request_fuzz: they
  // wrapped around, and an If-Modified-Since in 0997 answered 304).
  CHECK_FALSE(serve::parse_http_date("Sun, 06 Nov 0997 08:49:37 GMT"));
  CHECK_FALSE(serve::parse_http_date("Sun, 06 Nov 2997 08:49:37 GMT"));
  for (const char* bad : {"", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 31 Feb 1994 08:49:37 GMT",
                          "Sun, 06 Nov 1994 24:49:37 GMT", "Sun, 06 Nov 1994 08:49:37 GMT x",
                          "1994-11-06T08:49:37Z"}) {
    INFO(bad);
    CHECK_FALSE(serve::parse_http_date(bad));
  }
}

TEST_CASE("preconditions follow RFC 9110 section 13.2.2", "[file_server]") {
  const auto modified = system_clock::from_time_t(784111777) + 500ms;
  const std::string at = "Sun, 06 Nov 1994 08:49:37 GMT", before = "Sun, 06 Nov 1994 08:49:36 GMT";
  struct Case {
    std::string method;
    serve::ConditionalHeaders headers;
    std::string etag;
    Precondition expected;
  };
  const std::string tag = "\"s6m5utya\"";
  const std::vector<Case> cases = {
      {"GET", {}, tag, Precondition::Proceed},
      {"GET", {.if_match = tag}, tag, Precondition::Proceed},
      {"GET", {.if_match = "\"other\", " + tag}, tag, Precondition::Proceed},
      {"GET", {.if_match = "*"}, tag, Precondition::Proceed},
      {"GET", {.if_match = "*"}, "", Precondition::Proceed},
      {"GET", {.if_match = "\"other\""}, tag, Precondition::Failed},
      {"GET", {.if_match = "W/" + tag}, tag, Precondition::Failed},  // strong comparison
      {"GET", {.if_match = tag}, "", Precondition::Failed},
      {"GET", {.if_match = "garbage"}, tag, Precondition::Failed},
      {"GET", {.if_unmodified_since = at}, tag, Precondition::Proceed},
      {"GET", {.if_unmodified_since = before}, tag, Precondition::Failed},
      {"GET", {.if_unmodified_since = "not a date"}, tag, Precondition::Proceed},
      {"PUT", {.if_match = tag, .if_unmodified_since = before}, tag, Precondition::Proceed},
      {"GET", {.if_none_match = tag}, tag, Precondition::NotModified},
      {"HEAD", {.if_none_match = tag}, tag, Precondition::NotModified},
      {"GET", {.if_none_match = "W/" + tag}, tag, Precondition::NotModified},  // weak comparison
      {"GET", {.if_none_match = "\"a\",\"b\" , " + tag}, tag, Precondition::NotModified},
      {"GET", {.if_none_match = "*"}, tag, Precondition::NotModified},
      {"GET", {.if_none_match = "\"other\""}, tag, Precondition::Proceed},
      {"POST", {.if_none_match = tag}, tag, Precondition::Failed},
      {"DELETE", {.if_none_match = "*"}, tag, Precondition::Failed},
      {"GET", {.if_modified_since = at}, tag, Precondition::NotModified},
      {"HEAD",
       {.if_modified_since = "Mon, 07 Nov 1994 00:00:00 GMT"},
       tag,
       Precondition::NotModified},
      {"GET", {.if_modified_since = before}, tag, Precondition::Proceed},
      {"GET",
       {.if_modified_since = "Sunday, 06-Nov-94 08:49:37 GMT"},
       tag,
       Precondition::NotModified},
      {"POST", {.if_modified_since = at}, tag, Precondition::Proceed},  // GET and HEAD only
      {"GET", {.if_none_match = "\"other\"", .if_modified_since = at}, tag, Precondition::Proceed},
      {"GET", {.if_match = "\"other\"", .if_none_match = tag}, tag, Precondition::Failed},
  };
  for (const auto& c : cases) {
    INFO(c.method << " If-Match=" << c.headers.if_match << " If-None-Match="
                  << c.headers.if_none_match << " If-Modified-Since=" << c.headers.if_modified_since
                  << " If-Unmodified-Since=" << c.headers.if_unmodified_since
                  << " etag=" << c.etag);
    CHECK(serve::evaluate_preconditions(c.method, c.headers, c.etag, modified) == c.expected);
  }
  // Without a useful modification time, dates decide nothing.
  CHECK(serve::evaluate_preconditions("GET", {.if_modified_since = at}, tag, std::nullopt) ==
        Precondition::Proceed);
  CHECK(serve::evaluate_preconditions("GET", {.if_unmodified_since = before}, tag, std::nullopt) ==
        Precondition::Proceed);
}

TEST_CASE("byte ranges are parsed as Go's ServeContent does", "[file_server]") {
  using Ranges = std::vector<ByteRange>;
  const auto ranges = [](std::string_view header, std::uint64_t size = 1000) {
    std::string out;
    const auto parsed = serve::parse_range(header, size);
    if (!parsed) return std::string("ignore");
    if (parsed->empty()) return std::string("416");
    for (const auto& r : *parsed)
      out += (out.empty() ? "" : ",") + std::to_string(r.first) + "-" + std::to_string(r.last);
    return out;
  };
  CHECK(ranges("bytes=0-0") == "0-0");
  CHECK(ranges("bytes=-500") == "500-999");
  CHECK(ranges("bytes=500-") == "500-999");
  CHECK(ranges("bytes=0-") == "0-999");
  CHECK(ranges("bytes=990-2000") == "990-999");
  CHECK(ranges("bytes=-2000") == "0-999");
  CHECK(ranges("bytes=0-0,-1") == "0-0,999-999");
  CHECK(ranges("bytes= 0-1 , ,5-6 ") == "0-1,5-6");
  CHECK(ranges("BYTES=0-1") == "0-1");
  CHECK(ranges("bytes=1500-,0-0") == "0-0");  // the unsatisfiable one is dropped
  CHECK(ranges("bytes=0-499,500-999") == "0-499,500-999");
  CHECK(ranges("bytes=0-99999999999999999999999") == "0-999");
  CHECK(ranges("bytes=-99999999999999999999999") == "0-999");
  CHECK(ranges("bytes=10-20,15-25") == "10-20,15-25");  // overlapping but small: served as asked
  // Unsatisfiable: 416.
  CHECK(ranges("bytes=1000-") == "416");
  CHECK(ranges("bytes=-0") == "416");
  CHECK(ranges("bytes=1000-2000,2000-") == "416");
  CHECK(ranges("bytes=99999999999999999999999-") == "416");
  // Ignored: 200 with everything.
  CHECK(ranges("") == "ignore");
  CHECK(ranges("items=0-1") == "ignore");
  CHECK(ranges("bytes") == "ignore");
  CHECK(ranges("bytes=") == "ignore");
  CHECK(ranges("bytes=,") == "ignore");
  CHECK(ranges("bytes=abc") == "ignore");
  CHECK(ranges("bytes=-") == "ignore");
  CHECK(ranges("bytes=5-1") == "ignore");
  CHECK(ranges("bytes=+1-2") == "ignore");
  CHECK(ranges("bytes=0-1,x") == "ignore");
  CHECK(ranges("bytes=0-999,0-999") == "ignore");  // more than the whole: an attack
  CHECK(ranges("bytes=0-", 0) == "ignore");        // a zero-size file has nothing to cut
  CHECK(ranges("bytes=-5", 0) == "ignore");
  std::string many = "bytes=0-0";
  for (int i = 1; i < 100; ++i) many += "," + std::to_string(i) + "-" + std::to_string(i);
  CHECK(serve::parse_range(many, 1000).value_or(Ranges{}).size() == 100);
  CHECK(ranges(many + ",100-100") == "ignore");
}

TEST_CASE("If-Range keeps the range only for the current representation", "[file_server]") {
  const auto modified = system_clock::from_time_t(784111777) + 250ms;
  const std::string tag = "\"abc\"";
  CHECK(serve::if_range_matches("", tag, modified));
  CHECK(serve::if_range_matches(tag, tag, modified));
  CHECK_FALSE(serve::if_range_matches("W/" + tag, "W/" + tag, modified));  // weak tags never match
  CHECK_FALSE(serve::if_range_matches("\"other\"", tag, modified));
  CHECK(serve::if_range_matches("Sun, 06 Nov 1994 08:49:37 GMT", tag, modified));
  CHECK_FALSE(serve::if_range_matches("Sun, 06 Nov 1994 08:49:38 GMT", tag, modified));
  CHECK_FALSE(serve::if_range_matches("Sun, 06 Nov 1994 08:49:37 GMT", tag, std::nullopt));
  CHECK_FALSE(serve::if_range_matches("garbage", tag, modified));
}

TEST_CASE("a multipart plan's length is that of the body it describes", "[file_server]") {
  const std::string content = "0123456789";
  const std::vector<ByteRange> ranges = {{0, 0}, {5, 9}, {2, 3}};
  const auto plan = serve::plan_multipart(ranges, content.size(), "text/plain; charset=utf-8");
  CHECK(std::regex_match(plan.boundary, std::regex("[0-9a-f]{60}")));
  CHECK(plan.content_type == "multipart/byteranges; boundary=" + plan.boundary);
  REQUIRE(plan.part_headers.size() == 3);
  std::string body;
  for (size_t i = 0; i < ranges.size(); ++i) {
    body += plan.part_headers[i] +
            content.substr(ranges[i].first, ranges[i].last - ranges[i].first + 1);
  }
  body += plan.closing;
  CHECK(plan.content_length == body.size());
  const std::string b = plan.boundary;
  CHECK(body ==
        "--" + b +
            "\r\nContent-Range: bytes 0-0/10\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n0" +
            "\r\n--" + b +
            "\r\nContent-Range: bytes 5-9/10\r\nContent-Type: text/plain; "
            "charset=utf-8\r\n\r\n56789" +
            "\r\n--" + b +
            "\r\nContent-Range: bytes 2-3/10\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n23" +
            "\r\n--" + b + "--\r\n");
  CHECK(serve::plan_multipart(ranges, 10, "x").boundary != plan.boundary);
}

TEST_CASE("precompressed sidecars follow q-values, then the configured order", "[file_server]") {
  Site site;
  site.options.precompressed = {"br", "zstd", "gzip"};
  const fs::path css = site.root / "style.css";
  const auto chosen = [&](const fs::path& file, std::string_view accept) {
    const auto sidecar = serve::choose_precompressed(site.options, file, accept);
    return sidecar ? sidecar->encoding : std::string("none");
  };
  CHECK(chosen(css, "gzip, deflate, br, zstd") == "br");
  CHECK(chosen(css, "gzip;q=1, br;q=0.5") == "gzip");
  CHECK(chosen(css, "GZIP;Q=0.5, zstd;q=0.4") == "gzip");
  CHECK(chosen(css, "br;q=0, gzip") == "gzip");
  CHECK(chosen(css, "zstd") == "zstd");
  CHECK(chosen(css, "*") == "br");
  CHECK(chosen(css, "*;q=0, gzip") == "gzip");
  CHECK(chosen(css, "br;q=0.1, *;q=0.5") == "zstd");
  CHECK(chosen(css, "x-gzip") == "gzip");
  CHECK(chosen(css, "gzip;q=abc, br;q=0.9") == "gzip");  // a bad q-value counts as 1, as in Caddy
  CHECK(chosen(css, "") == "none");
  CHECK(chosen(css, "identity, deflate") == "none");
  CHECK(chosen(css, "gzip;q=0, br;q=0, zstd;q=0") == "none");

  const auto sidecar = serve::choose_precompressed(site.options, css, "br");
  REQUIRE(sidecar);
  CHECK(sidecar->path == site.root / "style.css.br");
  CHECK(sidecar->size == 6);
  CHECK(sidecar->modified == fs::last_write_time(site.root / "style.css.br"));

  CHECK(chosen(site.root / "app.js", "br, gzip") == "gzip");  // no .br beside it
  CHECK(chosen(site.root / "dir.txt", "gzip") == "none");     // dir.txt.gz is a directory
  CHECK(chosen(site.root / "leak.txt", "gzip") == "none");    // leak.txt.gz leaves the root
  site.options.precompressed = {"gzip", "br"};
  CHECK(chosen(css, "br, gzip, zstd") == "gzip");
  site.options.precompressed = {};
  CHECK(chosen(css, "br, gzip") == "none");
}

namespace {

// A directory to list: case, dirs first, escaping, symlinks in and out, a hidden entry.
fs::path make_listing(Site& site) {
  const fs::path dir = site.root / "listing";
  for (const char* name : {"B.txt", "a.txt", "<script>.txt", "a b.txt", "x&y.txt", ".hidden"})
    write_file(dir / name, "12345");
  write_file(dir / "Zdir" / "f", "f");
  write_file(dir / "cdir" / "f", "f");
  fs::create_symlink("../file.txt", dir / "link-up");
  fs::create_symlink("../sub", dir / "link-dir");
  fs::create_symlink(site.outside, dir / "outlink");
  fs::last_write_time(dir / "a.txt", file_time(utc(2024, 1, 2, 3, 4, 5) + 500ms));
  fs::permissions(dir / "a.txt", fs::perms(0644), fs::perm_options::replace);
  return dir;
}

}  // namespace

TEST_CASE("listings put directories first and sort names without case", "[file_server]") {
  Site site;
  const fs::path dir = make_listing(site);
  const auto entries = serve::list_directory(site.options, dir);
  std::vector<std::string> names;
  for (const auto& entry : entries) names.push_back(entry.name);
  CHECK(names == std::vector<std::string>{"cdir", "link-dir", "Zdir", "<script>.txt", "a b.txt",
                                          "a.txt", "B.txt", "link-up", "outlink", "x&y.txt"});
  const auto find = [&](std::string_view name) {
    return *std::find_if(entries.begin(), entries.end(),
                         [&](const auto& e) { return e.name == name; });
  };
  CHECK(find("link-dir").is_dir);
  CHECK(find("link-dir").is_symlink);
  CHECK(find("link-up").size == 5);     // the target's size
  CHECK_FALSE(find("outlink").is_dir);  // not followed out of the root
  CHECK(find("outlink").is_symlink);
  CHECK(find("a.txt").modified == file_time(utc(2024, 1, 2, 3, 4, 5) + 500ms));
  CHECK_THROWS_AS(serve::list_directory(site.options, site.root / "missing"), serve::Error);
}

TEST_CASE("the HTML listing escapes every name", "[file_server]") {
  Site site;
  const auto entries = serve::list_directory(site.options, make_listing(site));
  const std::string html = serve::browse_html("/listing/", entries);
  CHECK(html.find("<title>Index of /listing/</title>") != std::string::npos);
  CHECK(html.find("<a href=\"../\">") != std::string::npos);
  CHECK(html.find("<script>") == std::string::npos);
  CHECK(html.find("<a href=\"./%3Cscript%3E.txt\">&lt;script&gt;.txt</a>") != std::string::npos);
  CHECK(html.find("<a href=\"./x&amp;y.txt\">x&amp;y.txt</a>") != std::string::npos);
  CHECK(html.find("<a href=\"./a%20b.txt\">a b.txt</a>") != std::string::npos);
  CHECK(html.find("<a href=\"./cdir/\">cdir/</a>") != std::string::npos);
  CHECK(html.find(".hidden") == std::string::npos);
  CHECK(html.find("3 directories, 7 files") !=
        std::string::npos);  // link-dir counts as a directory
  CHECK(serve::browse_html("/", {}).find("href=\"../\"") == std::string::npos);
  CHECK(serve::browse_html("/<b>/", {}).find("Index of /&lt;b&gt;/") != std::string::npos);
}

TEST_CASE("the JSON listing has Caddy's shape", "[file_server]") {
  Site site;
  const auto entries = serve::list_directory(site.options, make_listing(site));
  const std::string text = serve::browse_json(entries);
  CHECK(text.rfind("[{\"name\":\"cdir/\",\"size\":", 0) == 0);  // Caddy's field order
  CHECK(text.back() == '\n');
  CHECK(text.find("\\u003cscript\\u003e.txt") != std::string::npos);
  const auto json = nlohmann::json::parse(text);
  REQUIRE(json.is_array());
  REQUIRE(json.size() == entries.size());
  const auto item = [&](std::string_view name) {
    for (const auto& i : json) {
      if (i["name"] == name) return i;
    }
    FAIL("no item " << name);
    return nlohmann::json();
  };
  const auto a = item("a.txt");
  CHECK(a == nlohmann::json{{"name", "a.txt"},
                            {"size", 5},
                            {"url", "./a.txt"},
                            {"mod_time", "2024-01-02T03:04:05.5Z"},
                            {"mode", 0644},
                            {"is_dir", false},
                            {"is_symlink", false}});
  CHECK(item("cdir/")["url"] == "./cdir/");
  CHECK(item("cdir/")["is_dir"] == true);
  CHECK((item("cdir/")["mode"].get<std::uint32_t>() & 0x80000000u) != 0);  // os.ModeDir
  CHECK(item("link-up")["is_symlink"] == true);
  CHECK(item("link-up")["mode"] == (1u << 27 | 0777));  // os.ModeSymlink, as lstat gives it
  CHECK(item("<script>.txt")["url"] == "./%3Cscript%3E.txt");
  CHECK(item("x&y.txt")["url"] == "./x&y.txt");
  CHECK(serve::browse_json({}) == "[]\n");
}
