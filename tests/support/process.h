// Child processes for tests: real servers and the acmetool binary. Every child is owned by a
// ChildProcess, stopped by PID in its destructor, and dies with the test (PR_SET_PDEATHSIG).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace acmetool::test {

/// A running child process. Move-only; the destructor stops it (SIGTERM, then SIGKILL after 5 s)
/// and reaps it.
class ChildProcess {
 public:
  /// Starts argv[0] (looked up in PATH) with `argv`. Output (stdout and stderr) goes to `log_file`
  /// (appended), or to /dev/null when empty. `env` adds or overrides environment variables.
  /// Throws std::runtime_error when the program cannot be started.
  static ChildProcess start(const std::vector<std::string>& argv, const std::filesystem::path& log_file = {},
                            const std::map<std::string, std::string>& env = {});

  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ~ChildProcess();

  pid_t pid() const noexcept { return pid_; }
  /// True while the child has not exited (reaps it when it has).
  bool running();
  /// Sends `signal` to the child, if it still runs.
  void kill(int signal);
  /// Stops the child: `signal`, then SIGKILL once `grace` has passed. Returns its wait status,
  /// or nullopt when it had already been reaped.
  std::optional<int> stop(int signal = 15, std::chrono::milliseconds grace = std::chrono::seconds(5));
  /// Waits for the child to exit by itself, at most `timeout`; returns its wait status or nullopt.
  std::optional<int> wait(std::chrono::milliseconds timeout);

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;
  std::optional<int> status_;
};

/// What a finished command did.
struct CommandResult {
  int exit_code = -1;   ///< exit status, or 128 + signal number
  std::string out;      ///< stdout
  std::string err;      ///< stderr
};

/// Runs a command to completion with `input` on stdin; kills it after `timeout` (exit_code 128+9).
CommandResult run_command(const std::vector<std::string>& argv, const std::string& input = "",
                          const std::map<std::string, std::string>& env = {},
                          std::chrono::milliseconds timeout = std::chrono::seconds(60));

/// A loopback port that is free for both TCP and UDP right now.
int free_port();

/// Sleeps 50 ms: the polling step of wait_until().
void sleep_briefly();

/// Polls `ready` every 50 ms until it returns true or `timeout` passes; returns its last answer.
template <class Predicate>
bool wait_until(Predicate ready, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (ready()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    sleep_briefly();
  }
}

/// A temporary directory, removed with everything in it when the object dies.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "acmetool-test");
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
};

/// The whole file (empty when it cannot be read): for logs printed on failure.
std::string read_text(const std::filesystem::path& path);

}  // namespace acmetool::test
