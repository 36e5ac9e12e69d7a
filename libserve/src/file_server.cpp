#include "acmetool/serve/file_server.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
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
#include "encode_internal.h"
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

// FileServerOptions::index_names, or Caddy's default when empty.
const std::vector<std::string>& index_names_of(const FileServerOptions& options) {
  static const std::vector<std::string> kDefault = {"index.html", "index.txt"};
  return options.index_names.empty() ? kDefault : options.index_names;
}

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

// The working directory, asked at most once a second per thread: relative `hide` entries (the
// Caddyfile's own name) are made absolute on every request, and getcwd() is a system call.
const fs::path& working_directory() {
  thread_local fs::path cwd;
  thread_local std::chrono::steady_clock::time_point asked;
  const auto now = std::chrono::steady_clock::now();
  if (cwd.empty() || now - asked >= std::chrono::seconds(1)) {
    std::error_code ec;
    cwd = fs::current_path(ec);
    asked = now;
  }
  return cwd;
}

// Absolute, lexically normal, without a trailing separator.
fs::path normal_absolute(const fs::path& p) {
  fs::path abs = p.is_absolute() ? p : working_directory() / p;
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

// ---- resolve_file: the fast path

// openat2(2) of `relative` beneath `dir`, refusing every symlink and every ".." that would climb
// above `dir`: the descriptor, or -errno. O_NONBLOCK so that a FIFO in the root cannot hang the
// caller; it changes nothing for regular files.
int open_beneath(int dir, const char* relative) {
  open_how how{};
  how.flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  const long fd = ::syscall(SYS_openat2, dir, relative, &how, sizeof how);
  return fd >= 0 ? static_cast<int>(fd) : -errno;
}

// A site root opened once: its descriptor, and its lexical and real paths.
struct OpenRoot {
  std::string configured;  // FileServerOptions::root as given, the cache key
  fs::path lexical, real;
  pki::UniqueFd fd;
  std::chrono::steady_clock::time_point opened;
};

// This thread's descriptor for `configured`, or null when the root cannot be opened (the slow
// path then says why). Reopened after a second, so that a deploy which swaps the root (a symlink
// pointing at a new release) is seen within a second. Per thread, so no lock; at most 64 roots
// (a root with placeholders may name many), the least recently opened replaced first.
const OpenRoot* open_root(const fs::path& configured) {
  thread_local std::vector<OpenRoot> roots;
  const auto now = std::chrono::steady_clock::now();
  OpenRoot* entry = nullptr;
  for (auto& root : roots) {
    if (root.configured == configured.native()) entry = &root;
  }
  if (entry != nullptr && now - entry->opened < std::chrono::seconds(1)) return entry;
  if (entry == nullptr) {
    if (roots.size() < 64) {
      entry = &roots.emplace_back();
    } else {
      entry = &*std::min_element(roots.begin(), roots.end(), [](const OpenRoot& a, const OpenRoot& b) {
        return a.opened < b.opened;
      });
    }
    entry->configured = configured.native();
    entry->lexical = normal_absolute(configured);
  }
  entry->opened = now;
  entry->fd.reset(::open(entry->lexical.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  std::error_code ec;
  entry->real = fs::canonical(entry->lexical, ec);
  if (ec) entry->fd.reset();
  return entry->fd ? entry : nullptr;
}

// Whether `relative` (below the root, as the request cleaned it) is hidden, by its lexical path
// or by its real one, which differ only when the root itself lies behind a symlink.
bool hidden_beneath(const FileServerOptions& options, const OpenRoot& root, const fs::path& lexical,
                    std::string_view relative) {
  if (options.hide.empty()) return false;
  return is_hidden(options.hide, root.lexical, lexical) ||
         is_hidden(options.hide, root.real, relative.empty() ? root.real : root.real / relative);
}

// A File target for `path`, already open as `file`, whose fstat() gave `st`.
FileTarget open_file_target(const std::string& clean, const fs::path& path, const struct stat& st,
                            std::shared_ptr<pki::UniqueFd> file) {
  FileTarget target = make_target(Kind::File, clean, "");
  target.path = path;
  target.size = static_cast<std::uintmax_t>(st.st_size);
  target.modified = file_time(st);
  target.file = std::move(file);
  return target;
}

// The common case in two or three system calls and no path walking in user space: every
// component of the path is a plain directory or file (no symlink), so its real path is the root's
// real path joined with the clean path and lies inside the root. nullopt when the slow path must
// decide: a symlink on the way, an error other than "absent", a directory to list, a kernel
// without openat2.
std::optional<FileTarget> resolve_fast(const FileServerOptions& options, const std::string& clean,
                                       bool trailing_slash) {
  const OpenRoot* root = open_root(options.root);
  if (root == nullptr) return std::nullopt;
  const std::string_view relative = std::string_view(clean).substr(1);
  const fs::path path = relative.empty() ? root->lexical : root->lexical / relative;
  if (hidden_beneath(options, *root, path, relative)) return make_target(Kind::NotFound, clean, "hidden");
  const int fd = open_beneath(root->fd.get(), relative.empty() ? "." : relative.data());
  if (fd == -ENOENT || fd == -ENOTDIR || fd == -ENAMETOOLONG) return refusal_for_errno(-fd, clean);
  if (fd < 0) return std::nullopt;
  auto file = std::make_shared<pki::UniqueFd>(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return std::nullopt;
  if (S_ISREG(st.st_mode) && !relative.empty()) {
    if (trailing_slash) return std::nullopt;  // the redirect: rare, the slow path words it
    return open_file_target(clean, path, st, std::move(file));
  }
  if (!S_ISDIR(st.st_mode) || !trailing_slash) return std::nullopt;
  for (const auto& name : index_names_of(options)) {
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) continue;
    const std::string index_relative = relative.empty() ? name : std::string(relative) + "/" + name;
    const fs::path index = path / name;
    if (hidden_beneath(options, *root, index, index_relative)) continue;
    const int index_fd = open_beneath(fd, name.c_str());
    if (index_fd == -ENOENT) continue;
    if (index_fd < 0) return std::nullopt;
    auto index_file = std::make_shared<pki::UniqueFd>(index_fd);
    struct stat index_st {};
    if (::fstat(index_fd, &index_st) != 0) return std::nullopt;
    if (!S_ISREG(index_st.st_mode)) continue;
    return open_file_target(clean, index, index_st, std::move(index_file));
  }
  if (options.browse) return std::nullopt;  // listings are the slow path's
  return make_target(Kind::NotFound, clean, "directory without an index file");
}

// ---- resolve_file: the slow path

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
    for (const auto& name : index_names_of(options_)) {
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
  if (auto fast = resolve_fast(options, clean, trailing_slash)) return std::move(*fast);
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

}  // namespace

std::optional<Sidecar> choose_precompressed(const FileServerOptions& options, const fs::path& file,
                                            std::string_view accept_encoding) {
  const auto accepted = encode_detail::parse_accept_encoding(accept_encoding);
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
    if (const double q = encode_detail::accepted_q(accepted, coding->token); q >= encode_detail::kQEpsilon) {
      candidates.push_back({coding, q});
    }
  }
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const Candidate& a, const Candidate& b) { return a.q > b.q; });
  if (candidates.empty()) return std::nullopt;
  const OpenRoot* open = open_root(options.root);
  std::optional<Root> root;  // for the slow path, computed when first needed
  for (const auto& candidate : candidates) {
    const fs::path path = file.native() + std::string(candidate.coding->suffix);
    // The fast path, as in resolve_fast: no symlink on the way, so inside the root.
    const fs::path relative = open != nullptr ? path.lexically_relative(open->lexical) : fs::path();
    if (!relative.empty() && *relative.begin() != "..") {
      const int fd = open_beneath(open->fd.get(), relative.c_str());
      if (fd == -ENOENT || fd == -ENOTDIR) continue;
      if (fd >= 0) {
        auto sidecar_file = std::make_shared<pki::UniqueFd>(fd);
        struct stat st {};
        if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        return Sidecar{path, std::string(candidate.coding->token), static_cast<std::uintmax_t>(st.st_size),
                       file_time(st), std::move(sidecar_file)};
      }
    }
    if (!root) root = site_root(options);
    struct stat st {};
    fs::path real;
    if (stat_errno(path, st) != 0 || !S_ISREG(st.st_mode) ||
        !may_follow(options, *root, path, real) || access_errno(path, R_OK) != 0) {
      continue;
    }
    return Sidecar{path, std::string(candidate.coding->token),
                   static_cast<std::uintmax_t>(st.st_size), file_time(st), nullptr};
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
