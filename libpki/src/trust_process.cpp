// The one way the trust-store installers run external programs (certutil, keytool,
// update-ca-certificates): argv without a shell, output captured, bounded in time.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "acmetool/pki/error.h"
#include "trust_internal.h"
#include "acmetool/pki/unique_fd.h"

extern char** environ;

namespace fs = std::filesystem;

namespace acmetool::pki::trust_detail {
namespace {

// stdin comes from a memory file rather than a pipe: the program may exit without reading it, and
// writing into a pipe nobody reads would raise SIGPIPE in our process.
UniqueFd input_file(std::string_view input) {
  UniqueFd fd(::memfd_create("acmetool-input", MFD_CLOEXEC));
  if (!fd) throw IoError("creating", "a memory file for program input", errno);
  for (size_t done = 0; done < input.size();) {
    const ssize_t n = ::write(fd.get(), input.data() + done, input.size() - done);
    if (n < 0 && errno != EINTR) throw IoError("writing", "a memory file for program input", errno);
    if (n > 0) done += static_cast<size_t>(n);
  }
  if (::lseek(fd.get(), 0, SEEK_SET) != 0) {
    throw IoError("rewinding", "a memory file for program input", errno);
  }
  return fd;
}

// Owns the posix_spawn attribute objects, which need their destroy calls.
struct SpawnSetup {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;

  SpawnSetup(int in_fd, int out_fd) {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_adddup2(&actions, in_fd, 0);
    posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
    posix_spawn_file_actions_adddup2(&actions, out_fd, 2);
    // A new session (no terminal to prompt on, and a process group to kill on timeout), default
    // signal handling and an empty mask whatever the caller set up.
    sigset_t defaults, empty;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigemptyset(&empty);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setsigmask(&attr, &empty);
    posix_spawnattr_setflags(&attr,
                             POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  }
  ~SpawnSetup() {
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&actions);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
};

// Reads `fd` to its end; kills the process group `pid` once `timeout` has passed, and gives up
// reading 5 s later (a grandchild that left the group may still hold the pipe).
std::string drain(int fd, pid_t pid, std::chrono::milliseconds timeout) {
  using Clock = std::chrono::steady_clock;
  const auto kill_at = Clock::now() + timeout;
  const auto give_up_at = kill_at + std::chrono::seconds(5);
  std::string output;
  for (bool killed = false;;) {
    const auto now = Clock::now();
    if (now >= kill_at && !killed) {
      ::kill(-pid, SIGKILL);
      killed = true;
    }
    if (now >= give_up_at) return output;
    const auto left =
        std::chrono::ceil<std::chrono::milliseconds>((killed ? give_up_at : kill_at) - now);
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1000))) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return output;
    output.append(buf, static_cast<size_t>(n));
  }
}

bool is_executable_file(const fs::path& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec) && ::access(path.c_str(), X_OK) == 0;
}

}  // namespace

ProgramResult run_program(const std::vector<std::string>& argv, std::string_view input,
                          std::chrono::milliseconds timeout) {
  const UniqueFd in = input_file(input);
  int out_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    throw IoError("creating", "a pipe for " + argv.at(0), errno);
  }
  UniqueFd out_read(out_pipe[0]);
  UniqueFd out_write(out_pipe[1]);

  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  {
    SpawnSetup setup(in.get(), out_write.get());
    const int err =
        ::posix_spawnp(&pid, args[0], &setup.actions, &setup.attr, args.data(), environ);
    if (err != 0) throw Error("running " + argv[0] + ": " + std::strerror(err));
  }
  out_write.reset();  // so that the read sees EOF once the program (and its children) exit

  ProgramResult result;
  result.output = drain(out_read.get(), pid, timeout);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  return result;
}

std::optional<fs::path> find_program(std::string_view name,
                                     const std::vector<fs::path>& extra_dirs) {
  if (name.find('/') != std::string_view::npos) {
    return is_executable_file(name) ? std::optional<fs::path>(name) : std::nullopt;
  }
  std::vector<fs::path> dirs;
  const char* path = std::getenv("PATH");
  std::string_view rest = path ? path : "/usr/local/bin:/usr/bin:/bin";
  while (!rest.empty()) {
    const size_t colon = std::min(rest.find(':'), rest.size());
    if (colon > 0) dirs.emplace_back(rest.substr(0, colon));
    rest.remove_prefix(std::min(colon + 1, rest.size()));
  }
  dirs.insert(dirs.end(), extra_dirs.begin(), extra_dirs.end());
  for (const fs::path& dir : dirs) {
    if (is_executable_file(dir / name)) return dir / name;
  }
  return std::nullopt;
}

std::string shell_line(const std::vector<std::vector<std::string>>& commands, bool sudo) {
  static constexpr std::string_view kPlain =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-";
  std::string out;
  for (const std::vector<std::string>& argv : commands) {
    if (!out.empty()) out += " && ";
    if (sudo && ::geteuid() != 0) out += "sudo ";
    for (size_t i = 0; i < argv.size(); ++i) {
      const std::string& arg = argv[i];
      if (i > 0) out += ' ';
      if (!arg.empty() && arg.find_first_not_of(kPlain) == std::string::npos) {
        out += arg;
        continue;
      }
      out += '\'';
      for (char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
      out += '\'';
    }
  }
  return out;
}

std::string failure_reason(std::string_view what, const ProgramResult& result) {
  std::string reason =
      std::string(what) + (result.signal != 0
                               ? " was killed by signal " + std::to_string(result.signal)
                               : " exited with status " + std::to_string(result.exit_code));
  std::string_view output = result.output;
  while (!output.empty()) {
    const size_t end = std::min(output.find('\n'), output.size());
    std::string_view line = output.substr(0, end);
    output.remove_prefix(std::min(end + 1, output.size()));
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) {
      line.remove_suffix(1);
    }
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.front()))) {
      line.remove_prefix(1);
    }
    if (!line.empty()) return reason + ": " + std::string(line);
  }
  return reason;
}

std::optional<std::string> write_problem(const fs::path& dir, bool system_path) {
  fs::path existing = dir;
  std::error_code ec;
  while (!fs::exists(existing, ec) && existing.has_parent_path() &&
         existing.parent_path() != existing) {
    existing = existing.parent_path();
  }
  int err = 0;
  if (!fs::is_directory(existing, ec)) {
    err = ENOTDIR;
  } else if (::access(existing.c_str(), W_OK | X_OK) != 0) {
    err = errno;
  } else {
    return std::nullopt;
  }
  return "cannot write into " + existing.string() + ": " + std::strerror(err) +
         (system_path && err == EACCES && ::geteuid() != 0 ? " (run as root)" : "");
}

}  // namespace acmetool::pki::trust_detail
