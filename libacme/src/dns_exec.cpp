// lego's `exec` provider: runs a program of the user's, `PROGRAM present|cleanup FQDN VALUE`, that
// changes the records however it likes. No shell is involved; the program's exit status decides.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>
#include <vector>

#include "acmetool/acme/error.h"
#include "acmetool/pki/unique_fd.h"
#include "dns_http_internal.h"
#include "dns_providers_internal.h"

extern char** environ;

namespace acmetool::acme {
namespace {

using pki::UniqueFd;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kName = "exec";
constexpr auto kDefaultTimeout = std::chrono::seconds(60);
// Only the last lines matter (for the error message); a chatty program must not fill memory.
constexpr size_t kMaxKeptOutput = 16 * 1024;

// What a finished (or killed) run left behind.
struct RunResult {
  int wait_status = 0;
  bool timed_out = false;
  std::string out, err;  // the last kMaxKeptOutput bytes of each
};

// The last non-empty line of `text`, trimmed; "" when there is none.
std::string last_line(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.remove_suffix(1);
  }
  const size_t newline = text.rfind('\n');
  return std::string(newline == std::string_view::npos ? text : text.substr(newline + 1));
}

void keep_tail(std::string& kept, const char* data, size_t size) {
  kept.append(data, size);
  if (kept.size() > kMaxKeptOutput) kept.erase(0, kept.size() - kMaxKeptOutput);
}

// "60", "60s", "2m" or "500ms".
std::chrono::milliseconds parse_timeout(const std::string& text) {
  long long value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  const std::string_view unit(end, text.data() + text.size() - end);
  if (ec == std::errc() && value > 0) {
    if (unit.empty() || unit == "s") return std::chrono::seconds(value);
    if (unit == "m") return std::chrono::minutes(value);
    if (unit == "ms") return std::chrono::milliseconds(value);
  }
  throw Error("exec: option \"timeout\" (--dns-opt timeout=... or EXEC_TIMEOUT) is \"" + text +
              "\"; expected a positive duration such as 60s, 2m or 500ms");
}

// A child started with posix_spawnp (PATH is searched for a bare name, as lego's exec.Command
// does) in its own process group, stdin on /dev/null, stdout and stderr on pipes.
class Child {
 public:
  explicit Child(const std::vector<std::string>& argv);
  ~Child() {
    if (pid_ > 0) {
      ::kill(-pid_, SIGKILL);
      reap();
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // Reads both pipes until they close or `deadline` passes, then waits for the child (killing
  // its whole group at the deadline, so that grandchildren holding the pipes go too).
  RunResult collect(Clock::time_point deadline);

 private:
  int reap();

  pid_t pid_ = -1;
  UniqueFd out_, err_;
};

Child::Child(const std::vector<std::string>& argv) {
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) throw Error(std::string("pipe: ") + std::strerror(errno));
  UniqueFd out_read(out_pipe[0]), out_write(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) throw Error(std::string("pipe: ") + std::strerror(errno));
  UniqueFd err_read(err_pipe[0]), err_write(err_pipe[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_write.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, err_write.get(), 2);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attributes, 0);

  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const int rc =
      ::posix_spawnp(&pid_, argv[0].c_str(), &actions, &attributes, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (rc != 0) {
    pid_ = -1;
    throw Error("running " + argv[0] + ": " + std::strerror(rc));
  }
  out_ = std::move(out_read);
  err_ = std::move(err_read);
}

int Child::reap() {
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  return status;
}

RunResult Child::collect(Clock::time_point deadline) {
  RunResult result;
  while (out_ || err_) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      ::kill(-pid_, SIGKILL);
      break;
    }
    pollfd fds[2] = {{out_.get(), POLLIN, 0}, {err_.get(), POLLIN, 0}};
    if (::poll(fds, 2, static_cast<int>(left.count())) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].revents == 0) continue;
      UniqueFd& fd = i == 0 ? out_ : err_;
      char buffer[4096];
      const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
      if (n > 0) keep_tail(i == 0 ? result.out : result.err, buffer, static_cast<size_t>(n));
      if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) fd.reset();
    }
  }
  result.wait_status = reap();
  return result;
}

// Why a run failed, in one line: "exited with status 3: <last stderr line>".
std::string failure_reason(const RunResult& run, std::chrono::milliseconds timeout) {
  if (run.timed_out) {
    return "killed after " + std::to_string(timeout.count()) + " ms (option \"timeout\")";
  }
  std::string reason = WIFSIGNALED(run.wait_status)
                           ? "killed by signal " + std::to_string(WTERMSIG(run.wait_status))
                           : "exited with status " + std::to_string(WEXITSTATUS(run.wait_status));
  std::string line = last_line(run.err);
  if (line.empty()) line = last_line(run.out);
  return line.empty() ? reason + " and printed nothing" : reason + ": " + line;
}

class ExecProvider final : public DnsProvider {
 public:
  ExecProvider(std::string program, bool raw, std::chrono::milliseconds timeout)
      : program_(std::move(program)), raw_(raw), timeout_(timeout) {}

  std::string_view name() const override { return kName; }
  void present(const TxtRecord& record) override { run("present", record); }
  void cleanup(const TxtRecord& record) override { run("cleanup", record); }

 private:
  std::vector<std::string> arguments(const char* action, const TxtRecord& record) const;
  void run(const char* action, const TxtRecord& record) const;

  std::string program_;
  bool raw_;
  std::chrono::milliseconds timeout_;
};

// lego's default mode passes the record itself. Its RAW mode passes `-- DOMAIN TOKEN KEY_AUTH`
// for the program to derive the record from, but a TxtRecord (dns_provider.h) holds no token or
// key authorization: the solver hands providers the finished record. So acmetool's RAW mode
// passes the domain lego would (the name under `_acme-challenge.`, no trailing dot — for a record
// moved by a CNAME, the name it was moved to), an empty token, and the TXT value where lego puts
// the key authorization. A RAW program that only stores its third argument works unchanged; one
// that hashes it into the TXT value must use the value as it is.
std::vector<std::string> ExecProvider::arguments(const char* action,
                                                 const TxtRecord& record) const {
  if (raw_) return {program_, action, "--", detail::raw_mode_domain(record.fqdn), "", record.value};
  return {program_, action, record.fqdn, record.value};
}

void ExecProvider::run(const char* action, const TxtRecord& record) const {
  const std::vector<std::string> argv = arguments(action, record);
  const std::string what = program_ + " " + action + " " + record.fqdn;
  RunResult result;
  try {
    Child child(argv);
    result = child.collect(Clock::now() + timeout_);
  } catch (const Error& e) {
    throw DnsError(std::string(kName), record.zone, e.what());
  }
  const bool ok =
      !result.timed_out && WIFEXITED(result.wait_status) && WEXITSTATUS(result.wait_status) == 0;
  if (!ok) {
    throw DnsError(std::string(kName), record.zone, what + ": " + failure_reason(result, timeout_));
  }
}

}  // namespace

namespace detail {

std::unique_ptr<DnsProvider> make_exec_provider(const DnsProviderSettings& settings) {
  std::string program = required_option(settings, "path", "EXEC_PATH");
  const bool raw = raw_mode(settings, "EXEC_MODE");
  const std::optional<std::string> timeout = option_or_env(settings, "timeout", "EXEC_TIMEOUT");
  return std::make_unique<ExecProvider>(std::move(program), raw,
                                        timeout ? parse_timeout(*timeout) : kDefaultTimeout);
}

}  // namespace detail
}  // namespace acmetool::acme
