// cmd/fmt.cpp: `acmetool fmt` formats a Caddyfile the way `caddy fmt` does.
#include <CLI/CLI.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <system_error>

#include "acmetool/caddyfile/diff.h"
#include "acmetool/caddyfile/format.h"
#include "acmetool/pki/error.h"
#include "acmetool/pki/files.h"
#include "common.h"

namespace acmetool::cmd {
namespace {

struct FmtArgs {
  std::string path = "Caddyfile";
  bool overwrite = false;
  bool diff = false;
};

// The whole input in one allocation and, for a regular file, one read (a 10,000-site Caddyfile
// is over a megabyte; copying it through a small buffer costs a good part of formatting it).
std::string read_input(const std::string& path) {
  const bool is_stdin = path == "-";
  const std::filesystem::path shown = is_stdin ? "standard input" : path;
  const int fd = is_stdin ? STDIN_FILENO : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw pki::IoError("reading", shown, errno);
  struct stat st {};
  std::string text;
  // Read straight into the string, sized to the file, growing only for pipes or a file that grows.
  std::size_t used = 0;
  text.resize(::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? static_cast<std::size_t>(st.st_size) + 1 : 65536);
  for (;;) {
    if (used == text.size()) text.resize(text.size() * 2);
    const ssize_t n = ::read(fd, text.data() + used, text.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      if (!is_stdin) ::close(fd);
      throw pki::IoError("reading", shown, err);
    }
    if (n == 0) break;
    used += static_cast<std::size_t>(n);
  }
  if (!is_stdin) ::close(fd);
  text.resize(used);
  return text;
}

void print(const std::string& text) { std::fwrite(text.data(), 1, text.size(), stdout); }

// Writes the result over the file it came from, keeping its permission bits; a symlink keeps
// pointing at the same, now formatted, file.
void overwrite(const std::string& path, const std::string& formatted) {
  std::filesystem::path target = path;
  std::error_code ec;
  if (std::filesystem::is_symlink(target, ec)) target = std::filesystem::canonical(target, ec);
  struct stat st {};
  if (::stat(target.c_str(), &st) != 0) throw pki::IoError("reading", target, errno);
  pki::write_file_atomic(target, formatted, st.st_mode & 07777);
}

// Prints the formatted Caddyfile (or, with --diff, a unified diff; with --overwrite, nothing) and
// returns 0 when the input was already formatted, 1 when it was not (0 with --overwrite).
int run_fmt(const FmtArgs& args, Context&) {
  if (args.overwrite && args.diff) throw UsageError("fmt: --overwrite and --diff cannot be combined");
  if (args.overwrite && args.path == "-") throw UsageError("fmt: --overwrite needs a FILE, not standard input");
  const std::string input = read_input(args.path);
  const std::string formatted = caddyfile::format(input);
  // The same comparison as upstream's FormattingDifference; cheap next to reading the file.
  const std::size_t line = input.find('\r') == std::string::npos ? caddyfile::first_difference_line(input, formatted)
                                                                  : caddyfile::unformatted_line(input);
  if (args.overwrite) {
    if (formatted != input) overwrite(args.path, formatted);
    return kExitOk;
  }
  if (args.diff) {
    if (line == 0) return kExitOk;
    print(caddyfile::unified_diff(input, formatted, args.path, args.path));
    return kExitFailed;
  }
  print(formatted);
  if (line == 0) return kExitOk;
  std::fflush(stdout);
  std::cerr << args.path << ':' << line
            << ": Caddyfile input is not formatted; use --overwrite to fix it or --diff to see the changes\n";
  return kExitFailed;
}

}  // namespace

void add_fmt(CLI::App& root, Context& ctx) {
  auto args = std::make_shared<FmtArgs>();
  CLI::App* sub = root.add_subcommand("fmt", "Format a Caddyfile (exit 1 if it was not formatted)");
  sub->add_option("path", args->path, "Caddyfile to format ('-' reads stdin)")->capture_default_str()
      ->type_name("FILE");
  sub->add_flag("--overwrite", args->overwrite, "Write the result back to FILE");
  sub->add_flag("--diff", args->diff, "Print a diff instead of the formatted file");
  sub->callback([args, &ctx] { ctx.exit_code = run_fmt(*args, ctx); });
}

}  // namespace acmetool::cmd
