// The acmetool binary as a user and a script see it: help, exit codes, one-line errors, and the
// documentation (man pages, completions) that must never drift from the real interface.
#include <catch2/catch.hpp>

#include <regex>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "process.h"
#include "run_acmetool.h"

namespace fs = std::filesystem;
using acmetool::test::CommandResult;
using acmetool::test::read_text;
using acmetool::test::run_acmetool;
using acmetool::test::run_command;
using acmetool::test::TempDir;

namespace {

const fs::path kSource = ACMETOOL_SOURCE_DIR;

// Command path ("" for the root, "ca issue") -> its flags, from the hidden `__interface` command.
std::map<std::string, std::vector<std::string>> interface() {
  const CommandResult r = run_acmetool({"__interface"});
  REQUIRE(r.exit_code == 0);
  std::map<std::string, std::vector<std::string>> out;
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) {
    const size_t tab = line.find('\t');
    if (tab == std::string::npos) {
      out[line];
    } else {
      out[line.substr(0, tab)].push_back(line.substr(tab + 1));
    }
  }
  return out;
}

std::string top_level(const std::string& path) { return path.substr(0, path.find(' ')); }

// "--dry-run" as roff writes it: "\-\-dry\-run".
std::string roff(const std::string& flag) {
  std::string out;
  for (char c : flag) out += c == '-' ? std::string("\\-") : std::string(1, c);
  return out;
}

// "--dry-run" as fish writes it: "-l dry-run"; "-v": "-s v".
std::string fish(const std::string& flag) {
  return flag.starts_with("--") ? "-l " + flag.substr(2) : "-s " + flag.substr(1);
}

bool is_one_line(const std::string& text) {
  return !text.empty() && text.back() == '\n' && text.find('\n') == text.size() - 1;
}

}  // namespace

TEST_CASE("acmetool --help lists every subcommand and global flag", "[cli]") {
  const CommandResult r = run_acmetool({"--help"});
  CHECK(r.exit_code == 0);
  for (const char* name : {"obtain", "renew", "revoke", "account", "ca", "trust", "untrust", "qualify", "fmt",
                           "validate", "adapt", "serve", "certs", "version"}) {
    CHECK(r.out.find("\n  " + std::string(name) + " ") != std::string::npos);
  }
  for (const char* flag : {"--storage", "--json", "--verbose", "--quiet", "--version"}) {
    CHECK(r.out.find(flag) != std::string::npos);
  }
  CHECK(r.out.find("__interface") == std::string::npos);
}

TEST_CASE("every command's --help exits 0 and lists each of its flags", "[cli]") {
  for (const auto& [path, flags] : interface()) {
    if (path.empty()) continue;
    std::vector<std::string> args;
    std::istringstream words(path);
    for (std::string w; words >> w;) args.push_back(w);
    args.push_back("--help");
    const CommandResult r = run_acmetool(args);
    INFO(path);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("Usage: acmetool " + path) != std::string::npos);
    for (const std::string& flag : flags) CHECK(r.out.find(flag) != std::string::npos);
  }
}

TEST_CASE("every command and flag has its man page entry", "[cli][docs]") {
  const auto spec = interface();
  const std::string overview = read_text(kSource / "man/acmetool.1");
  REQUIRE_FALSE(overview.empty());
  for (const auto& [path, flags] : spec) {
    INFO("command: '" << path << "'");
    if (path.empty()) {
      for (const std::string& flag : flags) CHECK(overview.find(roff(flag)) != std::string::npos);
      continue;
    }
    const fs::path page = kSource / "man" / ("acmetool-" + top_level(path) + ".1");
    const std::string text = read_text(page);
    REQUIRE_FALSE(text.empty());
    CHECK(overview.find(top_level(path)) != std::string::npos);
    CHECK(text.find(path.substr(path.rfind(' ') + 1)) != std::string::npos);
    for (const char* section : {".SH SYNOPSIS", ".SH OPTIONS", ".SH EXIT STATUS", ".SH EXAMPLES"}) {
      CHECK(text.find(section) != std::string::npos);
    }
    for (const std::string& flag : flags) {
      INFO("flag " << flag);
      CHECK(text.find(roff(flag)) != std::string::npos);
    }
  }
}

TEST_CASE("every command and flag appears in the bash, zsh and fish completions", "[cli][docs]") {
  const std::string bash = read_text(kSource / "completions/acmetool.bash");
  const std::string zsh = read_text(kSource / "completions/_acmetool");
  const std::string fish_text = read_text(kSource / "completions/acmetool.fish");
  REQUIRE_FALSE(bash.empty());
  REQUIRE_FALSE(zsh.empty());
  REQUIRE_FALSE(fish_text.empty());
  for (const auto& [path, flags] : interface()) {
    INFO("command: '" << path << "'");
    std::istringstream words(path);
    for (std::string w; words >> w;) {
      CHECK(bash.find(w) != std::string::npos);
      CHECK(zsh.find(w) != std::string::npos);
      CHECK(fish_text.find(w) != std::string::npos);
    }
    for (const std::string& flag : flags) {
      INFO("flag " << flag);
      CHECK(bash.find(flag) != std::string::npos);
      CHECK(zsh.find(flag) != std::string::npos);
      CHECK(fish_text.find(fish(flag)) != std::string::npos);
    }
  }
}

TEST_CASE("man pages render without warnings", "[cli][docs]") {
  for (const auto& entry : fs::directory_iterator(kSource / "man")) {
    INFO(entry.path());
    const CommandResult r = run_command({"groff", "-man", "-Tutf8", "-ww", "-z", entry.path().string()});
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
  }
  const CommandResult man = run_command({"man", "-l", (kSource / "man/acmetool-obtain.1").string()},
                                        "", {{"MANPAGER", "cat"}, {"MANWIDTH", "80"}});
  CHECK(man.exit_code == 0);
  CHECK(man.out.find("acmetool") != std::string::npos);
}

TEST_CASE("the bash completion registers and completes subcommands", "[cli][docs]") {
  const std::string script = "source '" + (kSource / "completions/acmetool.bash").string() +
                             "' && complete -p acmetool && COMP_WORDS=(acmetool ca i) && COMP_CWORD=2 && "
                             "_acmetool && printf '%s\\n' \"${COMPREPLY[@]}\"";
  const CommandResult r = run_command({"bash", "-c", script});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("complete -F _acmetool acmetool") != std::string::npos);
  CHECK(r.out.find("init\n") != std::string::npos);
  CHECK(r.out.find("issue\n") != std::string::npos);
  CHECK(r.out.find("status") == std::string::npos);
}

TEST_CASE("a parse error exits 2 with one line naming the problem and the command", "[cli]") {
  CommandResult r = run_acmetool({"obtain", "--no-such-flag", "example.com"});
  CHECK(r.exit_code == 2);
  CHECK(is_one_line(r.err));
  CHECK(r.err.starts_with("acmetool: "));
  CHECK(r.err.find("--no-such-flag") != std::string::npos);
  CHECK(r.err.find("acmetool obtain --help") != std::string::npos);
  CHECK(r.out.empty());

  r = run_acmetool({"ca", "issue"});
  CHECK(r.exit_code == 2);
  CHECK(is_one_line(r.err));
  CHECK(r.err.find("names") != std::string::npos);

  r = run_acmetool({"obtain", "--key-type", "dsa", "example.com"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("dsa") != std::string::npos);

  r = run_acmetool({});
  CHECK(r.exit_code == 2);
  CHECK(is_one_line(r.err));
}

TEST_CASE("serve with a Caddyfile that cannot be read says so in one line", "[cli][issue-2]") {
  const CommandResult r = run_acmetool({"serve", "--config", "/nonexistent/Caddyfile"});
  CHECK(r.exit_code != 0);
  CHECK(is_one_line(r.err));
  CHECK(r.err.find("/nonexistent/Caddyfile") != std::string::npos);
}

TEST_CASE("version and --version print the same version", "[cli]") {
  const CommandResult a = run_acmetool({"version"});
  const CommandResult b = run_acmetool({"--version"});
  CHECK(a.exit_code == 0);
  CHECK(b.exit_code == 0);
  REQUIRE(b.out.size() > 1);
  CHECK(a.out == "acmetool " + b.out);
  const CommandResult json = run_acmetool({"version", "--json"});
  CHECK(json.out == "{\"version\":\"" + b.out.substr(0, b.out.size() - 1) + "\"}\n");
}

TEST_CASE("certs lists the certificates of a Caddy-layout storage, with global flags after the command",
          "[cli]") {
  TempDir dir;
  const fs::path site = dir.path() / "certificates/acme-v02.api.letsencrypt.org-directory/wildcard_.example.com";
  fs::create_directories(site);
  std::ofstream(site / "wildcard_.example.com.crt") << "-----BEGIN CERTIFICATE-----\n";
  fs::create_directories(dir.path() / "certificates/local/localhost");  // no .crt: not listed

  CommandResult r = run_acmetool({"certs", "--storage", dir.path().string()});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "wildcard_.example.com\tacme-v02.api.letsencrypt.org-directory\t-\tdamaged\t" +
                     (site / "wildcard_.example.com.crt").string() + "\n");

  r = run_acmetool({"certs", "--json"}, {{"ACMETOOL_STORAGE", dir.path().string()}});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("\"name\": \"wildcard_.example.com\"") != std::string::npos);
  CHECK(r.out.find("\"state\": \"damaged\"") != std::string::npos);

  r = run_acmetool({"--storage", dir.path().string(), "certs", "other.example"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.empty());
}

// catch_discover_tests hands each name to CTest, which splits it at ';': the pieces match no test
// and "pass", so the real test would silently never run.
TEST_CASE("no test name contains a semicolon", "[cli][meta]") {
  const std::regex name(R"re(TEST_CASE\("([^"]*)")re");
  for (const auto& entry : fs::recursive_directory_iterator(fs::path(ACMETOOL_SOURCE_DIR) / "tests")) {
    if (entry.path().extension() != ".cpp") continue;
    const std::string text = read_text(entry.path());
    for (auto it = std::sregex_iterator(text.begin(), text.end(), name); it != std::sregex_iterator(); ++it) {
      INFO(entry.path().string());
      CHECK((*it)[1].str().find(';') == std::string::npos);
    }
  }
}
