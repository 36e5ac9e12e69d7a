#include "acmetool/serve/file_server.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <system_error>
#include <utility>

#include "acmetool/pki/rfc3339.h"
#include "acmetool/serve/error.h"
#include "file_server_internal.h"

namespace acmetool::serve {

namespace fs = std::filesystem;
using std::chrono::system_clock;
using Kind = FileTarget::Kind;

// ---- Text (the shared helpers are in file_server_internal.h)

using file_server_detail::iequals;
using file_server_detail::lower;
using file_server_detail::trim_ows;

namespace {

// `text` with each character found in `specials` replaced by the string of the same index.
std::string replace_chars(std::string_view text, std::string_view specials,
                          const char* const* replacements) {
  std::string out;
  for (const char c : text) {
    const auto special = specials.find(c);
    if (special == std::string_view::npos) {
      out += c;
    } else {
      out += replacements[special];
    }
  }
  return out;
}

// ---- Request paths

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes %XX escapes once, as Go's url.PathUnescape; nullopt when a '%' is not followed by two
// hex digits. '+' stays '+' in a path.
std::optional<std::string> percent_decode(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '%') {
      out += raw[i];
      continue;
    }
    if (i + 2 >= raw.size()) return std::nullopt;
    const int high = hex_value(raw[i + 1]), low = hex_value(raw[i + 2]);
    if (high < 0 || low < 0) return std::nullopt;
    out += static_cast<char>(high * 16 + low);
    i += 2;
  }
  return out;
}

// Go's path.Clean("/" + decoded): "/" or "/a/b", with no empty, "." or ".." segment; ".." at
// the top stays at "/". Only '/' separates: '\\' is an ordinary byte on POSIX.
std::string clean_path(std::string_view decoded) {
  std::vector<std::string_view> segments;
  size_t start = 0;
  while (start <= decoded.size()) {
    size_t end = decoded.find('/', start);
    if (end == std::string_view::npos) end = decoded.size();
    const std::string_view segment = decoded.substr(start, end - start);
    if (segment == "..") {
      if (!segments.empty()) segments.pop_back();
    } else if (!segment.empty() && segment != ".") {
      segments.push_back(segment);
    }
    start = end + 1;
  }
  std::string out;
  for (const auto segment : segments) out.append("/").append(segment);
  return out.empty() ? "/" : out;
}

// Percent-encodes what Go's URL.EscapedPath encodes: everything but unreserved characters and
// "$&+,/:;=@".
std::string escape_path(std::string_view path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : path) {
    const auto u = static_cast<unsigned char>(c);
    const bool plain = (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') ||
                       std::string_view("-._~$&+,/:;=@").find(c) != std::string_view::npos;
    if (plain) {
      out += c;
    } else {
      out.append("%").append(1, kHex[u >> 4]).append(1, kHex[u & 15]);
    }
  }
  return out;
}

// ---- The file system

// Absolute, lexically normal, without a trailing separator.
fs::path normal_absolute(const fs::path& p) {
  std::error_code ec;
  fs::path abs = fs::absolute(p, ec);
  if (ec) abs = p;
  abs = abs.lexically_normal();
  if (!abs.has_filename() && abs != abs.root_path()) abs = abs.parent_path();
  return abs;
}

// Whether `inner` is `outer` or lies below it; both absolute and normal.
bool is_within(const fs::path& inner, const fs::path& outer) {
  return std::mismatch(outer.begin(), outer.end(), inner.begin(), inner.end()).first == outer.end();
}

// stat(2) or lstat(2): 0, or the errno.
int stat_errno(const fs::path& p, struct stat& st, bool follow = true) {
  return (follow ? ::stat(p.c_str(), &st) : ::lstat(p.c_str(), &st)) == 0 ? 0 : errno;
}

// Whether the server's effective user may `mode` (R_OK, X_OK) the path: 0 or the errno.
int access_errno(const fs::path& p, int mode) {
  return ::faccessat(AT_FDCWD, p.c_str(), mode, AT_EACCESS) == 0 ? 0 : errno;
}

fs::file_time_type file_time(const struct stat& st) {
  const auto since_epoch =
      std::chrono::seconds(st.st_mtim.tv_sec) + std::chrono::nanoseconds(st.st_mtim.tv_nsec);
  return std::chrono::file_clock::from_sys(
      system_clock::time_point(std::chrono::duration_cast<system_clock::duration>(since_epoch)));
}

// Caddy's fileHidden, with two differences: name entries match the components below the root
// only (hiding "www" must not hide a site rooted at /srv/www), and a path glob that matches a
// directory hides its tree, as a literal path does.
bool is_hidden(const std::vector<std::string>& hide, const fs::path& root, const fs::path& file) {
  if (hide.empty()) return false;
  const fs::path relative = file.lexically_relative(root);
  for (const auto& entry : hide) {
    if (entry.empty()) continue;
    if (entry.find('/') == std::string::npos) {
      for (const auto& component : relative) {
        if (component != "." && ::fnmatch(entry.c_str(), component.c_str(), 0) == 0) return true;
      }
    } else if (::fnmatch(normal_absolute(entry).c_str(), file.c_str(),
                         FNM_PATHNAME | FNM_LEADING_DIR) == 0) {
      return true;  // the entry, or a directory above it ("/srv/www/private" hides ".../private/a")
    }
  }
  return false;
}

// The root, lexically and as real path (the lexical one when it cannot be resolved).
struct Root {
  fs::path lexical, real;
  int error = 0;
};

Root site_root(const FileServerOptions& options) {
  Root root;
  root.lexical = normal_absolute(options.root);
  std::error_code ec;
  root.real = fs::canonical(root.lexical, ec);
  if (ec) {
    root.real = root.lexical;
    root.error = ec.value();
  }
  return root;
}

// Whether the real path of `path` (which exists) may be followed: inside the root, or allowed.
bool may_follow(const FileServerOptions& options, const Root& root, const fs::path& path,
                fs::path& real) {
  std::error_code ec;
  real = fs::canonical(path, ec);
  return !ec && (options.allow_symlinks_outside_root || is_within(real, root.real));
}

FileTarget make_target(Kind kind, std::string clean_path, std::string reason) {
  FileTarget target;
  target.kind = kind;
  target.clean_path = std::move(clean_path);
  target.reason = std::move(reason);
  return target;
}

FileTarget refusal_for_errno(int error, std::string clean_path) {
  const Kind kind = error == ENOENT || error == ENOTDIR || error == ENAMETOOLONG ? Kind::NotFound
                                                                                 : Kind::Forbidden;
  return make_target(kind, std::move(clean_path), std::generic_category().message(error));
}

// ---- resolve_file

// One request path's way through the file system.
class Resolver {
 public:
  Resolver(const FileServerOptions& options, std::string clean_path, bool trailing_slash)
      : options_(options),
        root_(site_root(options)),
        clean_(std::move(clean_path)),
        trailing_slash_(trailing_slash) {}

  FileTarget resolve() const {
    if (root_.error != 0) return refusal_for_errno(root_.error, clean_);
    const fs::path path = clean_ == "/" ? root_.lexical : root_.lexical / clean_.substr(1);
    struct stat st {};
    if (auto refused = inspect(path, st)) return *refused;
    if (S_ISDIR(st.st_mode)) return directory(path, st);
    if (!S_ISREG(st.st_mode) || clean_ == "/") {
      return make_target(Kind::NotFound, clean_, "not a regular file");
    }
    // Caddy's canonical URIs: a file never ends in '/' (relative links in it would break).
    if (trailing_slash_) return redirect(escape_path(clean_));
    return file(path, st);
  }

 private:
  // Why `path` (lexically under the root) may not be used, or nullopt with `st` filled.
  std::optional<FileTarget> inspect(const fs::path& path, struct stat& st) const {
    if (is_hidden(options_.hide, root_.lexical, path)) {
      return make_target(Kind::NotFound, clean_, "hidden");
    }
    if (const int error = stat_errno(path, st)) return refusal_for_errno(error, clean_);
    fs::path real;
    if (!may_follow(options_, root_, path, real)) {
      return make_target(Kind::Forbidden, clean_,
                         real.empty() ? "cannot resolve the real path" : "symlink leaves the root");
    }
    // A symlink inside the root must not reach what `hide` hides under another name.
    if (is_within(real, root_.real) && is_hidden(options_.hide, root_.real, real)) {
      return make_target(Kind::NotFound, clean_, "hidden");
    }
    return std::nullopt;
  }

  FileTarget directory(const fs::path& dir, const struct stat& dir_st) const {
    for (const auto& name : options_.index_names) {
      if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
        continue;
      }
      const fs::path index = dir / name;
      struct stat st {};
      const auto refused = inspect(index, st);
      if (refused && refused->kind == Kind::NotFound) continue;  // absent or hidden: the next name
      if (refused) return *refused;
      if (!S_ISREG(st.st_mode)) continue;
      if (!trailing_slash_) return redirect(escape_path(clean_) + "/");
      return file(index, st);
    }
    if (!options_.browse) {
      return make_target(Kind::NotFound, clean_, "directory without an index file");
    }
    if (!trailing_slash_) return redirect(escape_path(clean_) + "/");
    if (const int error = access_errno(dir, R_OK | X_OK)) return refusal_for_errno(error, clean_);
    FileTarget target = make_target(Kind::Listing, clean_ == "/" ? clean_ : clean_ + "/", "");
    target.path = dir;
    target.modified = file_time(dir_st);
    return target;
  }

  FileTarget file(const fs::path& path, const struct stat& st) const {
    if (const int error = access_errno(path, R_OK)) return refusal_for_errno(error, clean_);
    FileTarget target = make_target(Kind::File, clean_, "");
    target.path = path;
    target.size = static_cast<std::uintmax_t>(st.st_size);
    target.modified = file_time(st);
    return target;
  }

  FileTarget redirect(std::string location) const {
    FileTarget target = make_target(Kind::Redirect, clean_, "canonical URI");
    target.redirect_location = std::move(location);
    return target;
  }

  const FileServerOptions& options_;
  const Root root_;
  const std::string clean_;
  const bool trailing_slash_;
};

}  // namespace

FileTarget resolve_file(const FileServerOptions& options, std::string_view raw_path) {
  if (raw_path.empty() || raw_path.front() != '/') {
    return make_target(Kind::BadRequest, "", "path does not start with /");
  }
  const auto decoded = percent_decode(raw_path);
  if (!decoded) return make_target(Kind::BadRequest, "", "invalid percent-encoding");
  if (decoded->find('\0') != std::string::npos) {
    return make_target(Kind::BadRequest, "", "NUL in path");
  }
  std::string clean = clean_path(*decoded);
  // "/sub/.." cleans to "/", which has its slash already: never redirect to "//".
  const bool trailing_slash = decoded->back() == '/' || clean == "/";
  return Resolver(options, std::move(clean), trailing_slash).resolve();
}

// ---- MIME types

std::string mime_type(const fs::path& file) {
  // Go's built-in types, then Debian 12's /etc/mime.types as Go reads it (text/* gets a charset).
  struct Type {
    std::string_view extension, type;
  };
  // clang-format off
  static constexpr Type kTypes[] = {
      {"7z", "application/x-7z-compressed"}, {"aac", "audio/aac"}, {"apng", "image/apng"},
      {"atom", "application/atom+xml"}, {"avif", "image/avif"}, {"bmp", "image/bmp"},
      {"css", "text/css; charset=utf-8"}, {"csv", "text/csv; charset=utf-8"},
      {"flac", "audio/flac"}, {"gif", "image/gif"}, {"gz", "application/gzip"},
      {"htm", "text/html; charset=utf-8"}, {"html", "text/html; charset=utf-8"},
      {"ico", "image/vnd.microsoft.icon"}, {"ics", "text/calendar; charset=utf-8"},
      {"jpeg", "image/jpeg"}, {"jpg", "image/jpeg"}, {"js", "text/javascript; charset=utf-8"},
      {"json", "application/json"}, {"jsonld", "application/ld+json"}, {"m4a", "audio/mp4"},
      {"markdown", "text/markdown; charset=utf-8"}, {"md", "text/markdown; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"}, {"mov", "video/quicktime"}, {"mp3", "audio/mpeg"},
      {"mp4", "video/mp4"}, {"mpeg", "video/mpeg"}, {"oga", "audio/ogg"}, {"ogg", "audio/ogg"},
      {"ogv", "video/ogg"}, {"opus", "audio/ogg"}, {"otf", "font/otf"}, {"pdf", "application/pdf"},
      {"png", "image/png"}, {"svg", "image/svg+xml"}, {"tar", "application/x-tar"},
      {"tif", "image/tiff"}, {"tiff", "image/tiff"}, {"ttf", "font/ttf"},
      {"txt", "text/plain; charset=utf-8"}, {"vtt", "text/vtt; charset=utf-8"},
      {"wasm", "application/wasm"}, {"wav", "audio/x-wav"}, {"webm", "video/webm"},
      {"webmanifest", "application/manifest+json"}, {"webp", "image/webp"}, {"woff", "font/woff"},
      {"woff2", "font/woff2"}, {"xhtml", "application/xhtml+xml"}, {"xml", "application/xml"},
      {"xz", "application/x-xz"}, {"zip", "application/zip"}, {"zst", "application/zstd"}};
  // clang-format on
  // Go's filepath.Ext: from the last '.' of the name (".bashrc" has the extension "bashrc").
  const std::string name = file.filename().native();
  const auto dot = name.rfind('.');
  if (dot == std::string::npos) return "application/octet-stream";
  const std::string extension = lower(name.substr(dot + 1));
  for (const auto& type : kTypes) {
    if (type.extension == extension) return std::string(type.type);
  }
  return "application/octet-stream";
}

// ---- Precompressed sidecars

namespace {

struct Coding {
  std::string_view token, suffix;
};
constexpr Coding kCodings[] = {{"br", ".br"}, {"zstd", ".zst"}, {"gzip", ".gz"}};

// One element of Accept-Encoding.
struct Accepted {
  std::string coding;  // lower case; "x-gzip" as "gzip"
  double q = 1.0;
};

// RFC 9110 §12.5.3. A q-value that does not parse, or lies outside [0, 1], counts as 1 (Caddy).
std::vector<Accepted> parse_accept_encoding(std::string_view field) {
  std::vector<Accepted> accepted;
  while (!field.empty()) {
    const auto comma = field.find(',');
    std::string_view element = field.substr(0, comma);
    field = comma == std::string_view::npos ? std::string_view() : field.substr(comma + 1);
    const auto semicolon = element.find(';');
    Accepted a;
    a.coding = lower(std::string(trim_ows(element.substr(0, semicolon))));
    if (a.coding.empty()) continue;
    if (a.coding == "x-gzip") a.coding = "gzip";
    std::string_view params =
        semicolon == std::string_view::npos ? std::string_view() : element.substr(semicolon + 1);
    while (!params.empty()) {
      const auto next = params.find(';');
      const std::string_view param = trim_ows(params.substr(0, next));
      params = next == std::string_view::npos ? std::string_view() : params.substr(next + 1);
      if (param.size() < 2 || !iequals(param.substr(0, 2), "q=")) continue;
      double q = 1.0;
      const auto value = param.substr(2);
      const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), q);
      a.q =
          error == std::errc() && end == value.data() + value.size() && q >= 0 && q <= 1 ? q : 1.0;
    }
    accepted.push_back(std::move(a));
  }
  return accepted;
}

// The q-value the client gives `coding`: its own element's, else the '*' element's, else 0.
double q_value(const std::vector<Accepted>& accepted, std::string_view coding) {
  const Accepted* wildcard = nullptr;
  for (const auto& a : accepted) {
    if (a.coding == coding) return a.q;
    if (a.coding == "*" && wildcard == nullptr) wildcard = &a;
  }
  return wildcard != nullptr ? wildcard->q : 0.0;
}

}  // namespace

std::optional<Sidecar> choose_precompressed(const FileServerOptions& options, const fs::path& file,
                                            std::string_view accept_encoding) {
  const auto accepted = parse_accept_encoding(accept_encoding);
  struct Candidate {
    const Coding* coding;
    double q;
  };
  std::vector<Candidate> candidates;
  for (const auto& name : options.precompressed) {
    const auto coding = std::find_if(std::begin(kCodings), std::end(kCodings),
                                     [&](const Coding& c) { return c.token == name; });
    if (coding == std::end(kCodings)) continue;
    // Caddy's threshold for "q=0", which excludes a coding.
    if (const double q = q_value(accepted, coding->token); q >= 0.00001) {
      candidates.push_back({coding, q});
    }
  }
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const Candidate& a, const Candidate& b) { return a.q > b.q; });
  const Root root = site_root(options);
  for (const auto& candidate : candidates) {
    const fs::path path = file.native() + std::string(candidate.coding->suffix);
    struct stat st {};
    fs::path real;
    if (stat_errno(path, st) != 0 || !S_ISREG(st.st_mode) ||
        !may_follow(options, root, path, real) || access_errno(path, R_OK) != 0) {
      continue;
    }
    return Sidecar{path, std::string(candidate.coding->token),
                   static_cast<std::uintmax_t>(st.st_size), file_time(st)};
  }
  return std::nullopt;
}

// ---- Directory listings

namespace {

// One directory entry, or nullopt when it vanished or is hidden.
std::optional<DirEntry> describe_entry(const FileServerOptions& options, const Root& root,
                                       const fs::path& path) {
  struct stat st {};
  if (stat_errno(path, st, /*follow=*/false) != 0) return std::nullopt;
  DirEntry entry;
  entry.name = path.filename().native();
  entry.is_dir = S_ISDIR(st.st_mode);
  entry.is_symlink = S_ISLNK(st.st_mode);
  entry.size = static_cast<std::uintmax_t>(st.st_size);
  entry.modified = file_time(st);
  entry.permissions = static_cast<fs::perms>(st.st_mode & 07777);
  struct stat target {};
  fs::path real;
  if (entry.is_symlink && stat_errno(path, target) == 0 && may_follow(options, root, path, real)) {
    if (is_within(real, root.real) && is_hidden(options.hide, root.real, real)) return std::nullopt;
    entry.is_dir = S_ISDIR(target.st_mode);
    entry.size = static_cast<std::uintmax_t>(target.st_size);
  }
  return entry;
}

// Caddy's JSON and template name: a directory's ends in '/'.
std::string display_name(const DirEntry& entry) {
  return entry.is_dir ? entry.name + "/" : entry.name;
}

std::string entry_url(const DirEntry& entry) { return "./" + escape_path(display_name(entry)); }

// Go's html.EscapeString.
std::string escape_html(std::string_view text) {
  static constexpr const char* kEntities[] = {"&amp;", "&lt;", "&gt;", "&#34;", "&#39;"};
  return replace_chars(text, "&<>\"'", kEntities);
}

// go-humanize's IBytes: "512 B", "1.5 KiB", "12 MiB".
std::string human_size(std::uintmax_t size) {
  if (size < 1024) return std::to_string(size) + " B";
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double value = static_cast<double>(size) / 1024;
  size_t unit = 0;
  for (; value >= 1024 && unit + 1 < std::size(kUnits); ++unit) value /= 1024;
  char buf[32];
  std::snprintf(buf, sizeof buf, value < 10 ? "%.1f %s" : "%.0f %s", value, kUnits[unit]);
  return buf;
}

// Go's time.RFC3339Nano in UTC: the fraction without trailing zeros.
std::string rfc3339_nano(fs::file_time_type t) {
  std::string text = pki::format_rfc3339(
      std::chrono::time_point_cast<system_clock::duration>(std::chrono::file_clock::to_sys(t)));
  const auto dot = text.find('.');
  auto end = text.size() - 1;  // the 'Z'
  while (end > dot + 1 && text[end - 1] == '0') --end;
  if (end == dot + 1) end = dot;
  return text.substr(0, end) + "Z";
}

// Go's os.FileMode bits as lstat gives them.
std::uint32_t go_file_mode(const DirEntry& entry) {
  const auto bits = static_cast<std::uint32_t>(entry.permissions);
  std::uint32_t mode = bits & 0777;
  if (bits & 04000) mode |= 1u << 23;  // ModeSetuid
  if (bits & 02000) mode |= 1u << 22;  // ModeSetgid
  if (bits & 01000) mode |= 1u << 20;  // ModeSticky
  if (entry.is_symlink) {
    mode |= 1u << 27;  // ModeSymlink
  } else if (entry.is_dir) {
    mode |= 1u << 31;  // ModeDir
  }
  return mode;
}

}  // namespace

std::vector<DirEntry> list_directory(const FileServerOptions& options, const fs::path& dir) {
  const Root root = site_root(options);
  std::vector<DirEntry> entries;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path path = it->path();
    if (is_hidden(options.hide, root.lexical, path)) continue;
    if (auto entry = describe_entry(options, root, path)) entries.push_back(std::move(*entry));
  }
  if (ec) throw Error("listing " + dir.string() + ": " + ec.message());
  std::sort(entries.begin(), entries.end(), [](const DirEntry& a, const DirEntry& b) {
    if (a.is_dir != b.is_dir) return a.is_dir;
    const std::string la = lower(display_name(a)), lb = lower(display_name(b));
    return la != lb ? la < lb : a.name < b.name;
  });
  return entries;
}

std::string browse_html(std::string_view clean_path, const std::vector<DirEntry>& entries) {
  const std::string title = "Index of " + escape_html(clean_path);
  std::string html =
      "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>" +
      title + "</title>\n</head>\n<body>\n<h1>" + title +
      "</h1>\n<table>\n<thead><tr><th>Name</th><th>Size</th><th>Modified</th></tr></"
      "thead>\n<tbody>\n";
  if (clean_path != "/") html += "<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n";
  size_t dirs = 0;
  for (const auto& entry : entries) {
    dirs += entry.is_dir ? 1 : 0;
    const std::string when = rfc3339_nano(entry.modified);
    html += "<tr><td><a href=\"" + escape_html(entry_url(entry)) + "\">" +
            escape_html(display_name(entry)) + "</a></td><td>" +
            (entry.is_dir ? "&mdash;" : human_size(entry.size)) + "</td><td><time datetime=\"" +
            when + "\">" + when.substr(0, 10) + " " + when.substr(11, 8) +
            " UTC</time></td></tr>\n";
  }
  html += "</tbody>\n</table>\n<p>" + std::to_string(dirs) + " directories, " +
          std::to_string(entries.size() - dirs) + " files</p>\n</body>\n</html>\n";
  return html;
}

std::string browse_json(const std::vector<DirEntry>& entries) {
  auto items = nlohmann::ordered_json::array();
  for (const auto& entry : entries) {
    nlohmann::ordered_json item;
    item["name"] = display_name(entry);
    item["size"] = entry.size;
    item["url"] = entry_url(entry);
    item["mod_time"] = rfc3339_nano(entry.modified);
    item["mode"] = go_file_mode(entry);
    item["is_dir"] = entry.is_dir;
    item["is_symlink"] = entry.is_symlink;
    items.push_back(std::move(item));
  }
  // Go's json.Encoder: invalid UTF-8 becomes U+FFFD, '<' '>' '&' are escaped, a newline ends it.
  const std::string dumped =
      items.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  static constexpr const char* kEscapes[] = {"\\u003c", "\\u003e", "\\u0026"};
  return replace_chars(dumped, "<>&", kEscapes) + "\n";
}

}  // namespace acmetool::serve
