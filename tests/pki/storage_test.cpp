#include "acmetool/pki/storage.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "acmetool/pki/error.h"
#include "acmetool/pki/files.h"
#include "acmetool/pki/rfc3339.h"
#include "process.h"

namespace fs = std::filesystem;
namespace pki = acmetool::pki;
using acmetool::test::ChildProcess;
using acmetool::test::read_text;
using acmetool::test::TempDir;
using acmetool::test::wait_until;
using namespace std::chrono_literals;

namespace {

mode_t mode_of(const fs::path& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

// Starts the helper holding `lock` and waits until it says it has it.
ChildProcess start_holder(const TempDir& dir, const std::string& lock, const fs::path& log, long hold_ms = -1) {
  std::vector<std::string> argv = {STORAGE_HELPER, "hold", (dir.path() / "storage").string(), lock};
  if (hold_ms >= 0) argv.push_back(std::to_string(hold_ms));
  ChildProcess holder = ChildProcess::start(argv, log);
  REQUIRE(wait_until([&] { return read_text(log).find("locked") != std::string::npos; }, 10s));
  return holder;
}

void write_foreign_lock(const fs::path& lock_file, const std::string& json) {
  pki::make_dirs(lock_file.parent_path());
  pki::write_file_atomic(lock_file, json, 0644);
}

// A lock file as Caddy writes it: local time with an offset, no acmetool fields.
std::string caddy_lock_json(std::chrono::system_clock::time_point updated) {
  const auto shifted = updated + 1h;  // the same instant written as +01:00
  std::string local = pki::format_rfc3339(shifted);
  local.replace(local.size() - 1, 1, "+01:00");
  return nlohmann::json{{"created", local}, {"updated", local}}.dump();
}

}  // namespace

TEST_CASE("stored values load back byte for byte with private permissions whatever the umask",
          "[pki][storage]") {
  TempDir dir;
  const mode_t old_umask = ::umask(0);
  pki::FileStorage storage(dir.path() / "storage");
  const std::string value("binary\0value\n", 13);
  storage.store("certificates/local/localhost/localhost.key", value);
  ::umask(old_umask);

  CHECK(storage.load("certificates/local/localhost/localhost.key") == value);
  CHECK(mode_of(dir.path() / "storage/certificates/local/localhost/localhost.key") == 0600);
  CHECK(mode_of(dir.path() / "storage/certificates/local/localhost") == 0700);
  CHECK(mode_of(dir.path() / "storage/certificates") == 0700);

  storage.store("certificates/local/localhost/localhost.key", "replaced");
  CHECK(storage.load("certificates/local/localhost/localhost.key") == "replaced");
}

TEST_CASE("load, exists, stat, list and erase follow the storage contract", "[pki][storage]") {
  TempDir dir;
  pki::FileStorage storage(dir.path());
  storage.store("a/one", "1");
  storage.store("a/two", "22");
  storage.store("a/sub/three", "333");
  // A temp file left by a writer that died must not show up as a key.
  pki::write_file_atomic(dir.path() / "a" / (std::string(pki::kTempFilePrefix) + "one.dead"), "x");

  CHECK_FALSE(storage.load("a/missing").has_value());
  CHECK_FALSE(storage.load("a/sub").has_value());
  CHECK(storage.exists("a/sub"));
  CHECK_FALSE(storage.exists("b"));

  CHECK(storage.list("a", false) == std::vector<std::string>{"a/one", "a/sub", "a/two"});
  CHECK(storage.list("a", true) == std::vector<std::string>{"a/one", "a/sub/three", "a/two"});
  CHECK(storage.list("nothing/here", true).empty());

  const auto info = storage.stat("a/two");
  REQUIRE(info.has_value());
  CHECK(info->size == 2);
  CHECK(info->is_terminal);
  CHECK(std::chrono::system_clock::now() - info->modified < 1min);
  CHECK_FALSE(storage.stat("a/sub")->is_terminal);
  CHECK_FALSE(storage.stat("zzz").has_value());

  CHECK(storage.erase("a/sub"));
  CHECK_FALSE(storage.exists("a/sub/three"));
  CHECK_FALSE(storage.erase("a/sub"));
}

TEST_CASE("storage keys that could escape the storage directory are rejected", "[pki][storage]") {
  TempDir dir;
  pki::FileStorage storage(dir.path() / "storage");
  const char* key = GENERATE("", "/etc/passwd", "../outside", "a/../../outside", "a//b", "a/./b", "a/", "..");
  INFO(key);
  CHECK_THROWS_AS(storage.store(key, "x"), pki::Error);
  CHECK_THROWS_AS(storage.load(key), pki::Error);
  CHECK_FALSE(fs::exists(dir.path() / "outside"));
}

TEST_CASE("the default storage location follows ACMETOOL_STORAGE, then XDG_DATA_HOME, then HOME",
          "[pki][storage]") {
  ::setenv("ACMETOOL_STORAGE", "/srv/acme", 1);
  ::setenv("XDG_DATA_HOME", "/xdg", 1);
  ::setenv("HOME", "/home/u", 1);
  CHECK(pki::default_storage_root() == "/srv/acme");
  ::unsetenv("ACMETOOL_STORAGE");
  CHECK(pki::default_storage_root() == "/xdg/acmetool");
  ::setenv("XDG_DATA_HOME", "", 1);
  CHECK(pki::default_storage_root() == "/home/u/.local/share/acmetool");
}

TEST_CASE("a writer killed at random points leaves the whole old or the whole new file", "[pki][storage]") {
  TempDir dir;
  const fs::path file = dir.path() / "cert.pem";
  const size_t size = 4 << 20;
  pki::write_file_atomic(file, std::string(size, 'a'));
  std::mt19937 rng(12345);
  for (int round = 0; round < 15; ++round) {
    ChildProcess writer = ChildProcess::start({STORAGE_HELPER, "write-loop", file.string(), std::to_string(size)});
    std::this_thread::sleep_for(std::chrono::milliseconds(5 + rng() % 60));
    writer.stop(SIGKILL);
    const std::string content = read_text(file);
    INFO("round " << round);
    REQUIRE(content.size() == size);
    REQUIRE((content == std::string(size, 'a') || content == std::string(size, 'b')));
  }
}

TEST_CASE("two processes incrementing a counter under one lock lose no update", "[pki][storage][lock]") {
  TempDir dir;
  const std::string root = (dir.path() / "storage").string();
  const int per_process = 40;
  std::vector<ChildProcess> workers;
  for (int i = 0; i < 2; ++i) {
    workers.push_back(ChildProcess::start(
        {STORAGE_HELPER, "count", root, "issue_cert_example.com", "counter", std::to_string(per_process)},
        dir.path() / ("worker" + std::to_string(i) + ".log")));
  }
  for (auto& worker : workers) {
    const auto status = worker.wait(120s);
    REQUIRE(status.has_value());
    CHECK(WIFEXITED(*status));
    CHECK(WEXITSTATUS(*status) == 0);
  }
  pki::FileStorage storage(root);
  CHECK(storage.load("counter") == std::to_string(2 * per_process));
  CHECK_FALSE(fs::exists(fs::path(root) / "locks/issue_cert_example.com.lock"));
}

TEST_CASE("a lock held by a live process is respected until it is released", "[pki][storage][lock]") {
  TempDir dir;
  ChildProcess holder = start_holder(dir, "issue_cert_a.test", dir.path() / "holder.log", 1500);
  pki::FileStorage storage(dir.path() / "storage", {.lock_poll_interval = 20ms});

  CHECK_FALSE(storage.try_lock("issue_cert_a.test"));
  CHECK_THROWS_AS(storage.lock("issue_cert_a.test", 100ms), pki::LockTimeoutError);
  storage.lock("issue_cert_a.test", 30s);  // returns once the holder unlocks
  CHECK(holder.wait(10s).has_value());
  storage.unlock("issue_cert_a.test");
}

TEST_CASE("a lock whose holder was killed is taken over at once, not after the staleness delay",
          "[pki][storage][lock]") {
  TempDir dir;
  ChildProcess holder = start_holder(dir, "issue_cert_b.test", dir.path() / "holder.log");
  pki::FileStorage storage(dir.path() / "storage");
  CHECK_FALSE(storage.try_lock("issue_cert_b.test"));

  holder.stop(SIGKILL);
  // The lock file is still there, fresh, but its flock died with the process.
  REQUIRE(fs::exists(dir.path() / "storage/locks/issue_cert_b.test.lock"));
  CHECK(storage.try_lock("issue_cert_b.test"));
  storage.unlock("issue_cert_b.test");
}

TEST_CASE("a stale CertMagic lock file is taken over and a fresh one is respected", "[pki][storage][lock]") {
  TempDir dir;
  pki::FileStorage storage(dir.path(), {.lock_stale_after = 10s});
  const fs::path lock_file = dir.path() / "locks/issue_cert_c.test.lock";
  const auto now = std::chrono::system_clock::now();

  write_foreign_lock(lock_file, caddy_lock_json(now));
  CHECK_FALSE(storage.try_lock("issue_cert_c.test"));

  write_foreign_lock(lock_file, caddy_lock_json(now - 20s));
  REQUIRE(storage.try_lock("issue_cert_c.test"));
  const auto ours = nlohmann::json::parse(read_text(lock_file));
  CHECK(ours.at("acmetool").at("pid") == ::getpid());
  storage.unlock("issue_cert_c.test");
  CHECK_FALSE(fs::exists(lock_file));
}

TEST_CASE("an empty lock file counts as held until it is older than the staleness delay",
          "[pki][storage][lock]") {
  TempDir dir;
  pki::FileStorage storage(dir.path(), {.lock_stale_after = 10s});
  const fs::path lock_file = dir.path() / "locks/issue_cert_d.test.lock";
  write_foreign_lock(lock_file, "");
  CHECK_FALSE(storage.try_lock("issue_cert_d.test"));

  const timespec old_times[2] = {{::time(nullptr) - 60, 0}, {::time(nullptr) - 60, 0}};
  REQUIRE(::utimensat(AT_FDCWD, lock_file.c_str(), old_times, 0) == 0);
  CHECK(storage.try_lock("issue_cert_d.test"));
}

TEST_CASE("a held lock keeps its created stamp and refreshes its updated stamp", "[pki][storage][lock]") {
  TempDir dir;
  pki::FileStorage storage(dir.path(), {.lock_refresh_interval = 50ms});
  storage.lock("issue_cert_e.test", 1s);
  const fs::path lock_file = dir.path() / "locks/issue_cert_e.test.lock";
  const auto first = nlohmann::json::parse(read_text(lock_file));
  CHECK(first.at("created") == first.at("updated"));
  CHECK(pki::parse_rfc3339(first.at("created").get<std::string>()).has_value());

  nlohmann::json later;
  REQUIRE(wait_until(
      [&] {
        later = nlohmann::json::parse(read_text(lock_file), nullptr, false);
        return later.is_object() && later.value("updated", "") != first.at("updated");
      },
      5s));
  CHECK(later.at("created") == first.at("created"));
  CHECK(*pki::parse_rfc3339(later.at("updated").get<std::string>()) >
        *pki::parse_rfc3339(first.at("updated").get<std::string>()));
  storage.unlock("issue_cert_e.test");
}

TEST_CASE("threads of one process using separate storage objects exclude each other", "[pki][storage][lock]") {
  TempDir dir;
  pki::FileStorage first(dir.path());
  pki::FileStorage second(dir.path());
  REQUIRE(first.try_lock("shared"));
  bool taken = true;
  std::thread([&] { taken = second.try_lock("shared"); }).join();
  CHECK_FALSE(taken);
  first.unlock("shared");
  std::thread([&] { taken = second.try_lock("shared"); }).join();
  CHECK(taken);
  second.unlock("shared");
}
