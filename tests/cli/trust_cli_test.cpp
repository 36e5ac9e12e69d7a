// `acmetool trust` and `acmetool untrust` as a user runs them: messages, plans, exit codes, and end
// to end `ca init && ca issue localhost && trust`, after which curl (the system store) and headless
// Chromium (the NSS database in HOME) accept openssl s_server's certificate, and untrust undoes it.
// Runs as root; the system store is restored in a destructor even when a check fails.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "process.h"
#include "run_acmetool.h"

namespace fs = std::filesystem;
using acmetool::test::ChildProcess;
using acmetool::test::CommandResult;
using acmetool::test::read_text;
using acmetool::test::run_acmetool;
using acmetool::test::run_command;
using acmetool::test::TempDir;

namespace {

using Env = std::map<std::string, std::string>;

// A root CA certificate in storage at pki/authorities/local/root.crt, made with openssl.
void place_root(const fs::path& storage) {
  const fs::path dir = storage / "pki/authorities/local";
  fs::create_directories(dir);
  const CommandResult r = run_command(
      {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
       "-keyout", (dir / "root.key").string(), "-out", (dir / "root.crt").string(), "-days", "2",
       "-subj", "/CN=acmetool CLI trust test", "-addext", "basicConstraints=critical,CA:TRUE"});
  REQUIRE(r.exit_code == 0);
}

bool nss_lists(const fs::path& home, const std::string& nickname) {
  const std::string db = "sql:" + (home / ".pki/nssdb").string();
  return run_command({"certutil", "-L", "-d", db, "-n", nickname}).exit_code == 0;
}

// The entry name trust uses, from the JSON output of a dry run.
std::string entry_name(const fs::path& storage, const fs::path& home) {
  const CommandResult r = run_acmetool(
      {"--storage", storage, "--json", "trust", "--dry-run", "--store", "nss"}, {{"HOME", home}});
  REQUIRE(r.exit_code == 0);
  return nlohmann::json::parse(r.out).at(0).at("name").get<std::string>();
}

}  // namespace

TEST_CASE("trust and untrust without a local CA print one line naming the storage and exit 1",
          "[cli][trust]") {
  const TempDir storage;
  for (const char* command : {"trust", "untrust"}) {
    const CommandResult r = run_acmetool({"--storage", storage.path(), command, "--ca", "dev"});
    CHECK(r.exit_code == 1);
    CHECK(r.err == "acmetool: no local CA \"dev\" in " + storage.path().string() +
                       ": run 'acmetool ca init' first\n");
    CHECK(r.out.empty());
  }
}

TEST_CASE("trust --dry-run prints the plan with its commands and changes nothing", "[cli][trust]") {
  const TempDir storage, home;
  place_root(storage.path());
  const fs::path nssdb = home.path() / ".pki/nssdb";
  const fs::path root = storage.path() / "pki/authorities/local/root.crt";
  const std::string name = entry_name(storage.path(), home.path());
  CHECK(name.starts_with("acmetool-local-"));

  const CommandResult r =
      run_acmetool({"--storage", storage.path(), "trust", "--dry-run", "--store", "nss"},
                   {{"HOME", home.path()}});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "nss  would-install  " + nssdb.string() + "\n    mkdir -p " + nssdb.string() +
                     " && certutil -N --empty-password -d sql:" + nssdb.string() +
                     " && certutil -A -d sql:" + nssdb.string() + " -t C,, -n " + name + " -i " +
                     root.string() + "\n");
  CHECK(r.err.empty());
  CHECK_FALSE(fs::exists(home.path() / ".pki"));
  CHECK_FALSE(fs::exists(storage.path() / "pki/authorities/local/trust.json"));
}

TEST_CASE("trust --store nss then untrust --store nss round-trips the user's NSS database",
          "[cli][trust]") {
  const TempDir storage, home;
  place_root(storage.path());
  const Env env{{"HOME", home.path()}};
  const fs::path nssdb = home.path() / ".pki/nssdb";
  const fs::path record = storage.path() / "pki/authorities/local/trust.json";
  const std::string name = entry_name(storage.path(), home.path());

  CommandResult r = run_acmetool({"--storage", storage.path(), "trust", "--store", "nss"}, env);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "nss  installed  " + nssdb.string() + "\n");
  CHECK(nss_lists(home.path(), name));
  CHECK(read_text(record).find("\"location\": \"" + nssdb.string() + "\"") != std::string::npos);

  r = run_acmetool({"--storage", storage.path(), "--json", "trust", "--store", "nss"}, env);
  CHECK(r.exit_code == 0);
  const nlohmann::json json = nlohmann::json::parse(r.out);
  REQUIRE(json.size() == 1);
  CHECK(json[0].at("store") == "nss");
  CHECK(json[0].at("status") == "already");
  CHECK(json[0].at("location") == nssdb.string());
  CHECK(json[0].at("name") == name);

  r = run_acmetool({"--storage", storage.path(), "untrust", "--store", "nss"}, env);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "nss  removed  " + nssdb.string() + "\n");
  CHECK_FALSE(nss_lists(home.path(), name));
  CHECK_FALSE(fs::exists(record));

  r = run_acmetool({"--storage", storage.path(), "untrust", "--store", "nss"}, env);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "nss  absent  " + nssdb.string() + "\n");
}

TEST_CASE("a trust.json that cannot be read is a warning, since the stores did change",
          "[cli][trust]") {
  const TempDir storage, home;
  place_root(storage.path());
  std::ofstream(storage.path() / "pki/authorities/local/trust.json") << "{not json";

  const CommandResult r = run_acmetool({"--storage", storage.path(), "trust", "--store", "nss"},
                                       {{"HOME", home.path()}});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "nss  installed  " + (home.path() / ".pki/nssdb").string() + "\n");
  CHECK(
      r.err.starts_with("acmetool: warning: not recorded: reading "
                        "pki/authorities/local/trust.json in " +
                        storage.path().string() + ": "));
}

TEST_CASE("a store that fails gives exit 3 when another succeeded and 1 when none did",
          "[cli][trust]") {
  const TempDir storage, home, no_java;
  place_root(storage.path());
  const Env env{{"HOME", home.path()}, {"JAVA_HOME", no_java.path()}};

  CommandResult r =
      run_acmetool({"--storage", storage.path(), "trust", "--store", "nss,java"}, env);
  CHECK(r.exit_code == 3);
  CHECK(r.out.starts_with("nss  installed  "));
  CHECK(r.out.find("\njava  failed  " + (no_java.path() / "lib/security/cacerts").string() +
                   "\n") != std::string::npos);
  CHECK(r.err.starts_with("acmetool: java: no keytool in " + (no_java.path() / "bin").string() +
                          "; run instead: "));

  r = run_acmetool({"--storage", storage.path(), "trust", "--store", "java"}, env);
  CHECK(r.exit_code == 1);
  CHECK(r.out == "java  failed  " + (no_java.path() / "lib/security/cacerts").string() + "\n");
}

TEST_CASE(
    "a store missing from this machine counts against the exit code only when named with --store",
    "[cli][trust]") {
  const TempDir storage, home, bin;
  place_root(storage.path());
  // A PATH with certutil but no keytool, and no JAVA_HOME: the java store does not exist here.
  fs::create_symlink("/usr/bin/certutil", bin.path() / "certutil");
  const Env env{{"HOME", home.path()}, {"PATH", bin.path()}, {"JAVA_HOME", ""}};

  // Nothing was trusted, so untrust has nothing to do in system and nss and changes nothing.
  CommandResult r = run_acmetool({"--storage", storage.path(), "untrust"}, env);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("\njava  skipped  -\n") != std::string::npos);
  CHECK(
      r.err ==
      "acmetool: java: skipped: no Java found (JAVA_HOME is not set and keytool is not on PATH)\n");

  r = run_acmetool({"--storage", storage.path(), "untrust", "--store", "system,nss,java"}, env);
  CHECK(r.exit_code == 3);
}

TEST_CASE(
    "without root the system store fails with the reason and the sudo commands to run instead",
    "[cli][trust]") {
  const TempDir storage;
  place_root(storage.path());
  fs::permissions(storage.path(), fs::perms::owner_all | fs::perms::group_read |
                                      fs::perms::group_exec | fs::perms::others_read |
                                      fs::perms::others_exec);
  const fs::path root = storage.path() / "pki/authorities/local/root.crt";
  const std::string name = entry_name(storage.path(), storage.path());
  const fs::path anchor = "/usr/local/share/ca-certificates/" + name + ".crt";

  const CommandResult r =
      run_command({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ACMETOOL_BINARY,
                   "--storage", storage.path(), "trust", "--store", "system"});
  CHECK(r.exit_code == 1);
  CHECK(r.out == "system  failed  " + anchor.string() + "\n");
  CHECK(r.err ==
        "acmetool: system: cannot write into /usr/local/share/ca-certificates: Permission denied "
        "(run as "
        "root); run instead: sudo install -m 644 " +
            root.string() + " " + anchor.string() + " && sudo update-ca-certificates\n");
  CHECK_FALSE(fs::exists(anchor));
}

namespace {

bool accepts_connections(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// Takes the root out of the system store and the NSS database when the test ends, passed or failed:
// with `acmetool untrust`, and should that fail, by removing the anchor files of this CA itself.
class UntrustGuard {
 public:
  UntrustGuard(std::vector<std::string> untrust, Env env, std::string anchor_prefix)
      : untrust_(std::move(untrust)),
        env_(std::move(env)),
        anchor_prefix_(std::move(anchor_prefix)) {}
  ~UntrustGuard() {
    try {
      run_acmetool(untrust_, env_);
      bool removed = false;
      std::error_code ec;
      for (const auto& entry : fs::directory_iterator("/usr/local/share/ca-certificates", ec)) {
        if (entry.path().filename().string().starts_with(anchor_prefix_)) {
          removed = fs::remove(entry.path(), ec) || removed;
        }
      }
      if (removed) run_command({"update-ca-certificates", "--fresh"});
    } catch (const std::exception&) {
      // A destructor must not throw; the stale-root sweep in trust_tests catches what is left.
    }
  }
  UntrustGuard(const UntrustGuard&) = delete;
  UntrustGuard& operator=(const UntrustGuard&) = delete;

 private:
  std::vector<std::string> untrust_;
  Env env_;
  std::string anchor_prefix_;
};

struct BrowserResult {
  bool loaded;      ///< the page is s_server's status page
  std::string err;  ///< Chromium's log
};

// Headless Chromium as root with its own profile, reading the NSS database under `home`.
BrowserResult load_in_chromium(const std::string& url, const fs::path& home) {
  const TempDir profile("acmetool-chromium");
  const CommandResult r = run_command(
      {"chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
       "--disable-background-networking", "--disable-component-update", "--disable-sync",
       "--no-proxy-server", "--user-data-dir=" + profile.path().string(), "--dump-dom", url},
      "", {{"HOME", home.string()}}, std::chrono::seconds(90));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return {r.out.find("s_server -accept") != std::string::npos, r.err};
}

CommandResult curl(const std::string& url) {
  return run_command(
      {"curl", "--silent", "--show-error", "--noproxy", "*", "--max-time", "20", url});
}

}  // namespace

TEST_CASE(
    "after ca init and trust, curl and headless Chromium accept a localhost certificate; untrust "
    "undoes it",
    "[cli][trust][e2e]") {
  const TempDir storage, home, out;
  const std::string ca = "test-" + std::to_string(::getpid()) + "-e2e";
  const std::vector<std::string> global{"--storage", storage.path().string()};
  const auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), global.begin(), global.end());
    const CommandResult r = run_acmetool(args, {{"HOME", home.path()}});
    INFO(r.err);
    return r;
  };
  REQUIRE(run({"ca", "--name", ca, "init"}).exit_code == 0);
  REQUIRE(run({"ca", "--name", ca, "issue", "localhost", "--out", out.path()}).exit_code == 0);
  const fs::path leaf = out.path() / "localhost.crt";

  const int port = acmetool::test::free_port();
  const fs::path log = out.path() / "s_server.log";
  ChildProcess server = ChildProcess::start(
      {"openssl", "s_server", "-accept", "127.0.0.1:" + std::to_string(port), "-cert", leaf,
       "-cert_chain", leaf, "-key", out.path() / "localhost.key", "-www"},
      log);
  REQUIRE(acmetool::test::wait_until([&] { return accepts_connections(port); },
                                     std::chrono::seconds(10)));
  const std::string url = "https://localhost:" + std::to_string(port) + "/";
  INFO(read_text(log));

  CommandResult r = curl(url);
  CHECK(r.exit_code == 60);  // CURLE_PEER_FAILED_VERIFICATION: not trusted yet
  CHECK_FALSE(load_in_chromium(url, home.path()).loaded);

  const UntrustGuard guard(
      {"--storage", storage.path(), "untrust", "--ca", ca, "--store", "system,nss"},
      {{"HOME", home.path()}}, "acmetool-" + ca + "-");
  r = run({"trust", "--ca", ca, "--store", "system,nss"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.starts_with("system  installed  /usr/local/share/ca-certificates/acmetool-" + ca +
                          "-"));
  CHECK(r.out.find("\nnss  installed  " + (home.path() / ".pki/nssdb").string() + "\n") !=
        std::string::npos);

  r = curl(url);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("s_server -accept") != std::string::npos);
  CHECK(load_in_chromium(url, home.path()).loaded);

  r = run({"untrust", "--ca", ca, "--store", "system,nss"});
  REQUIRE(r.exit_code == 0);
  CHECK(
      r.out.starts_with("system  removed  /usr/local/share/ca-certificates/acmetool-" + ca + "-"));
  r = curl(url);
  CHECK(r.exit_code == 60);
  const BrowserResult after = load_in_chromium(url, home.path());
  CHECK_FALSE(after.loaded);
  CHECK(after.err.find("ERR_CERT_AUTHORITY_INVALID") != std::string::npos);
}

TEST_CASE("untrust also removes a root that ca rotate --root replaced, and ca status says where roots are",
          "[cli][trust]") {
  TempDir storage, home;
  const Env env = {{"HOME", home.path().string()}};
  const std::string s = storage.path().string();
  REQUIRE(run_acmetool({"--storage", s, "ca", "init"}).exit_code == 0);
  REQUIRE(run_acmetool({"--storage", s, "trust", "--store", "nss"}, env).exit_code == 0);
  const std::string old_name = entry_name(storage.path(), home.path());
  REQUIRE(run_acmetool({"--storage", s, "-q", "ca", "rotate", "--root"}).exit_code == 0);
  REQUIRE(run_acmetool({"--storage", s, "trust", "--store", "nss"}, env).exit_code == 0);
  const std::string new_name = entry_name(storage.path(), home.path());
  REQUIRE(old_name != new_name);
  CHECK(nss_lists(home.path(), old_name));
  CHECK(nss_lists(home.path(), new_name));

  CommandResult status = run_acmetool({"--storage", s, "--json", "ca", "status"});
  const auto trusted = nlohmann::json::parse(status.out).at("trusted_in");
  CHECK(trusted.size() == 2);

  const CommandResult r = run_acmetool({"--storage", s, "untrust", "--store", "nss"}, env);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "nss  removed  " + (home.path() / ".pki/nssdb").string() + "\nnss  removed  " +
                     (home.path() / ".pki/nssdb").string() + "\n");
  CHECK_FALSE(nss_lists(home.path(), old_name));
  CHECK_FALSE(nss_lists(home.path(), new_name));
  status = run_acmetool({"--storage", s, "ca", "status"});
  CHECK(status.out.find("trusted in\tnowhere") != std::string::npos);
}
