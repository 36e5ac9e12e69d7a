// The decisions of the `file_server` handler (issue 8), as Caddy 2.6–2.8 makes them: which file a
// request path leads to (index files, `browse`, `hide`, trailing-slash redirects, a root that no
// path escapes), MIME types, validators and conditional requests (RFC 9110 §8.8, §13), byte
// ranges (RFC 9110 §14), precompressed sidecars and directory listings. No sockets here: the
// server (server.cpp) sends what these functions choose. All functions are thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "acmetool/pki/unique_fd.h"

namespace acmetool::serve {

struct FileServerOptions {
  /// The site root. Made absolute against the working directory when relative.
  std::filesystem::path root;
  /// Files tried, in order, when a directory is requested; empty for Caddy's default,
  /// index.html then index.txt (a default-made FileServerOptions, as every route result holds
  /// one, allocates nothing).
  std::vector<std::string> index_names;
  /// Caddy's `hide`: never served, never listed (404, as if absent). An entry without '/' is a
  /// glob (fnmatch: * ? [..]) matched against each path component below the root (".git",
  /// "*.bak"); an entry with '/' is a file system path (relative ones against the working
  /// directory, as in Caddy), maybe a glob, that hides what it matches and everything under it.
  std::vector<std::string> hide;
  /// List directories that have no index file.
  bool browse = false;
  /// Precompressed sidecars to look for, in order of preference among equal q-values: "br"
  /// (file.br), "zstd" (file.zst), "gzip" (file.gz). Other names are ignored.
  std::vector<std::string> precompressed;
  /// Follow symlinks whose target lies outside the root's real path (Caddy always does).
  bool allow_symlinks_outside_root = false;
};

/// Where a request path leads.
struct FileTarget {
  enum class Kind { File, Listing, Redirect, NotFound, Forbidden, BadRequest };
  Kind kind = Kind::NotFound;
  /// File: the file to send (the index file for a directory), the root joined with the cleaned
  /// path, symlinks not resolved, so that its name gives the MIME type and its sidecars sit
  /// beside it. Listing: the directory.
  std::filesystem::path path;
  /// The decoded, cleaned request path the decision was made on: "/", "/sub/", "/a b.txt".
  std::string clean_path;
  /// Redirect: the percent-encoded path to send in Location with 308 Permanent Redirect (Caddy's
  /// status): clean_path + "/" for a directory requested without the slash, clean_path for a file
  /// requested with one. Never starts with "//". Appending the query is the caller's job.
  std::string redirect_location;
  std::uintmax_t size = 0;                     ///< File: its size in bytes
  std::filesystem::file_time_type modified{};  ///< File, Listing: the modification time
  /// Why, for logs: "NUL in path", "symlink leaves the root", "hidden", "Permission denied"...
  std::string reason;
  /// File: `path` already open for reading when the fast path found it (no symlink on the way),
  /// so that the server reads what was checked; null when the caller must open `path` itself.
  std::shared_ptr<pki::UniqueFd> file;
};

/// Resolves `raw_path`, the request target's path exactly as received (percent-encoded, starting
/// with '/', without query), under the root: decodes percent-escapes once ("%2f" becomes a
/// separator, "%252e" the literal "%2e"; a bad escape or a decoded NUL is BadRequest), cleans the
/// result as Go's path.Clean does (collapses "//", resolves "." and ".." lexically, never above
/// "/"; '\\' is an ordinary character), joins it to the root, then asks the file system.
///  - missing (ENOENT, ENOTDIR, too long), hidden, or neither a directory nor a regular file:
///    NotFound. Permission denied (also unreadable files), symlink loops: Forbidden. A path whose
///    real path leaves the root's real path: Forbidden, unless allow_symlinks_outside_root.
///  - a directory: its first index file that exists and is not hidden (File; Forbidden when
///    that file leaves the root or cannot be read), else Listing when browse is on and the
///    directory is readable, else NotFound; either is a Redirect when the request lacked the
///    trailing slash.
///  - a regular file: File, or a Redirect when the request had a trailing slash.
/// Paths without symlinks take a fast path: one openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)
/// beneath the root's descriptor, which each thread opens once and reopens after a second (a root
/// swapped by a deploy is seen within a second). The others walk the file system as described.
/// Never throws for I/O errors.
FileTarget resolve_file(const FileServerOptions& options, std::string_view raw_path);

/// The Content-Type for a file name's extension (case-insensitive), from a built-in table of the
/// common web types with the values Go's mime package gives on Debian; text types carry
/// "; charset=utf-8". "application/octet-stream" when unknown (Caddy sends none; we do not want
/// browsers to sniff).
std::string mime_type(const std::filesystem::path& file);

/// The modification time to send as Last-Modified and to compare with conditional requests;
/// nullopt for the times Caddy considers useless (Unix seconds 0 and 1, as some packagers set).
std::optional<std::chrono::system_clock::time_point> useful_mod_time(
    std::filesystem::file_time_type modified);

/// Caddy 2.6–2.8's strong ETag: '"' + base 36 of the Unix seconds of `modified` + base 36 of
/// `size` + '"', e.g. "\"s6m5utya\"". Empty (send no ETag) when the time is not useful.
std::string file_etag(std::filesystem::file_time_type modified, std::uintmax_t size);

/// `t` as an IMF-fixdate (RFC 9110 §5.6.7): "Sun, 06 Nov 1994 08:49:37 GMT".
std::string http_date(std::chrono::system_clock::time_point t);

/// An HTTP-date in any of the three forms RFC 9110 §5.6.7 says to accept (IMF-fixdate, RFC 850,
/// asctime); nullopt when it is none of them.
std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view text);

/// The request's precondition fields; empty means absent. (If-Range: see if_range_matches.)
struct ConditionalHeaders {
  std::string if_match, if_none_match, if_modified_since, if_unmodified_since;
};
enum class Precondition { Proceed, NotModified, Failed };  ///< 2xx as usual, 304, 412

/// RFC 9110 §13.2.2, as Go's http.ServeContent evaluates it: If-Match (strong comparison, '*'
/// matches), else If-Unmodified-Since, failing with 412; then If-None-Match (weak comparison, '*'
/// matches), which answers 304 to GET and HEAD and 412 to other methods; else, for GET and HEAD
/// only, If-Modified-Since. Dates are compared in whole seconds; unparsable dates, and dates
/// when `modified` is nullopt, are ignored. `etag` is the response's ETag ("" when none).
Precondition evaluate_preconditions(std::string_view method, const ConditionalHeaders& headers,
                                    std::string_view etag,
                                    std::optional<std::chrono::system_clock::time_point> modified);

/// An inclusive byte range of a representation.
struct ByteRange {
  std::uint64_t first = 0, last = 0;
};

/// Parses a Range field (RFC 9110 §14.1.2) against a representation of `size` bytes, as Go's
/// http.ServeContent does, except that it ignores what Go rejects with 416.
///  - nullopt, ignore the field and send 200 with everything: absent, another unit than
///    "bytes", invalid syntax, a zero-size representation, more than 100 ranges, or ranges that
///    add up to more than `size` (overlaps: likely an attack).
///  - an empty vector: nothing satisfiable (416 with "Content-Range: bytes */size").
///  - else the satisfiable ranges in request order, ends clamped to the size; unsatisfiable ones
///    ("500-" of 100 bytes, a suffix of 0) dropped. One range: 206 with Content-Range; more:
///    multipart/byteranges (plan_multipart).
std::optional<std::vector<ByteRange>> parse_range(std::string_view range_header,
                                                  std::uint64_t size);

/// Whether the Range applies given If-Range (RFC 9110 §13.1.5): true when `if_range` is empty,
/// an entity tag strongly equal to `etag`, or an HTTP-date equal to `modified` to the second.
bool if_range_matches(std::string_view if_range, std::string_view etag,
                      std::optional<std::chrono::system_clock::time_point> modified);

/// A multipart/byteranges body (RFC 9110 §14.6) laid out as Go's mime/multipart writes it:
/// part_headers[i], then the bytes of ranges[i], for each range, then `closing`.
struct MultipartPlan {
  std::string boundary;      ///< 60 random hex digits
  std::string content_type;  ///< "multipart/byteranges; boundary=<boundary>"
  /// "--B\r\nContent-Range: bytes a-b/size\r\nContent-Type: t\r\n\r\n", after the first with
  /// "\r\n" before it (no Content-Type line when content_type is empty).
  std::vector<std::string> part_headers;
  std::string closing;               ///< "\r\n--B--\r\n"
  std::uint64_t content_length = 0;  ///< every byte of the body
};
MultipartPlan plan_multipart(const std::vector<ByteRange>& ranges, std::uint64_t size,
                             std::string_view content_type);

/// A precompressed file to send instead of the original, with Content-Encoding `encoding`. Its
/// size and time give the ETag (file_etag); Content-Type and Last-Modified stay the original's.
/// Send "Vary: Accept-Encoding" with every file response either way, as Caddy does.
struct Sidecar {
  std::filesystem::path path;
  std::string encoding;  ///< "br", "zstd" or "gzip"
  std::uintmax_t size = 0;
  std::filesystem::file_time_type modified{};
  /// The sidecar open for reading when no symlink led to it; null: the caller opens `path`.
  std::shared_ptr<pki::UniqueFd> file;
};

/// The sidecar of `file` (a FileTarget::path) to send for `accept_encoding`: among
/// options.precompressed with a q-value above 0 (RFC 9110 §12.5.3: '*' stands for encodings not
/// named; "x-gzip" is gzip), the highest q first, ties in the options' order, the first whose
/// sidecar is a regular file whose real path is inside the root (unless symlinks may leave it).
/// nullopt when none. As in Caddy, `hide` does not apply to sidecars. Never throws.
std::optional<Sidecar> choose_precompressed(const FileServerOptions& options,
                                            const std::filesystem::path& file,
                                            std::string_view accept_encoding);

/// One entry of a directory listing.
struct DirEntry {
  std::string name;     ///< as on disk, without a trailing '/'
  bool is_dir = false;  ///< a directory, or a symlink to one inside the root
  bool is_symlink = false;
  std::uintmax_t size = 0;  ///< a symlink's: its target's when it may be followed
  std::filesystem::file_time_type modified{};  ///< the entry's own (lstat)
  std::filesystem::perms permissions = std::filesystem::perms::none;
};

/// The entries of `dir` (a Listing target's path), without hidden ones, sorted as Caddy's default
/// ("namedirfirst", ascending): directories first, then by lower-cased name. Symlinks whose real
/// path leaves the root are listed but not followed (unless allowed). Entries that vanish while
/// listing are skipped. Throws serve::Error when the directory cannot be read.
std::vector<DirEntry> list_directory(const FileServerOptions& options,
                                     const std::filesystem::path& dir);

/// A listing page (text/html; charset=utf-8) titled "Index of <clean_path>", with a link to the
/// parent unless at "/". Names are HTML-escaped; hrefs are "./" + the percent-encoded name (and
/// '/' for directories), HTML-escaped.
std::string browse_html(std::string_view clean_path, const std::vector<DirEntry>& entries);

/// Caddy's JSON listing (application/json; charset=utf-8), for requests whose Accept mentions
/// application/json: an array of {"name", "size", "url", "mod_time", "mode", "is_dir",
/// "is_symlink"} as Caddy's fileInfo encodes them: directory names end in '/', url as in
/// browse_html, mod_time RFC 3339 in UTC with trimmed nanoseconds, mode Go's os.FileMode bits.
std::string browse_json(const std::vector<DirEntry>& entries);

}  // namespace acmetool::serve
