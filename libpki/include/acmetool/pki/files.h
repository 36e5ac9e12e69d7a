// The only way acmetool writes keys, certificates and other state to disk (STYLE.md §6).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>

namespace acmetool::pki {

/// Prefix of the temp files write_file_atomic() leaves only if the process dies mid-write;
/// directory listings skip them.
inline constexpr std::string_view kTempFilePrefix = ".acmetool-tmp-";

/// Replaces `path` with `bytes` atomically and durably: writes a temp file in the same directory
/// (created O_EXCL with `mode` from the first byte, whatever the umask), fsyncs it, renames it over
/// `path` and fsyncs the directory. On failure the temp file is removed and `path` is untouched.
/// The directory must exist. Throws IoError.
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes, mode_t mode = 0600);

/// The whole file, or nullopt when it does not exist. Throws IoError for other failures.
std::optional<std::string> read_file(const std::filesystem::path& path);

/// Creates `dir` and its missing parents with `mode` (0700 by default) whatever the umask; existing
/// directories are left as they are. Throws IoError.
void make_dirs(const std::filesystem::path& dir, mode_t mode = 0700);

}  // namespace acmetool::pki
