// `acmetool fmt` as a user and a CI job see it: the formatted text on stdout, exit 0 when the input
// was already formatted and 1 (with one "FILE:LINE: ..." line on stderr) when it was not, --diff,
// --overwrite (atomic, permissions kept), standard input, and the usage errors.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>
#include <sys/stat.h>

#include "fixture_util.h"
#include "process.h"
#include "run_acmetool.h"

namespace fs = std::filesystem;
using acmetool::test::CommandResult;
using acmetool::test::read_text;
using acmetool::test::run_acmetool;
using acmetool::test::run_command;
using acmetool::test::TempDir;
using acmetool::test::write_file;

namespace {

const std::string kMessy = "example.com\n{\n  root * /srv\n\n\n  file_server\n}\n";
const std::string kFormatted = "example.com {\n\troot * /srv\n\n\tfile_server\n}\n";
const std::string kNotFormatted =
    ": Caddyfile input is not formatted; use --overwrite to fix it or --diff to see the changes\n";

unsigned mode_of(const fs::path& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

}  // namespace

TEST_CASE("fmt prints the formatted file and exits 1 naming the first unformatted line", "[cli][fmt]") {
  const TempDir dir;
  const fs::path file = dir.path() / "Caddyfile";
  write_file(file, kMessy);
  const CommandResult r = run_acmetool({"fmt", file.string()});
  CHECK(r.exit_code == 1);
  CHECK(r.out == kFormatted);
  CHECK(r.err == file.string() + ":1" + kNotFormatted);
  CHECK(read_text(file) == kMessy);  // printing never touches the file
}

TEST_CASE("fmt exits 0 and prints the file unchanged when it is already formatted", "[cli][fmt]") {
  const TempDir dir;
  const fs::path file = dir.path() / "Caddyfile";
  write_file(file, kFormatted);
  const CommandResult r = run_acmetool({"fmt", file.string()});
  CHECK(r.exit_code == 0);
  CHECK(r.out == kFormatted);
  CHECK(r.err.empty());
}

TEST_CASE("fmt reads ./Caddyfile by default", "[cli][fmt]") {
  const TempDir dir;
  write_file(dir.path() / "Caddyfile", "a {\n  b\n}\n");
  const CommandResult r = run_command({"sh", "-c", "cd \"$1\" && exec \"$2\" fmt", "sh", dir.path().string(),
                                       ACMETOOL_BINARY});
  CHECK(r.exit_code == 1);
  CHECK(r.out == "a {\n\tb\n}\n");
  CHECK(r.err == "Caddyfile:2" + kNotFormatted);
}

TEST_CASE("fmt counts CRLF line endings as formatted, like upstream", "[cli][fmt]") {
  const TempDir dir;
  const fs::path file = dir.path() / "Caddyfile";
  write_file(file, "a {\r\n\tb\r\n}\r\n");
  const CommandResult r = run_acmetool({"fmt", file.string()});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "a {\n\tb\n}\n");
}

TEST_CASE("fmt - formats standard input", "[cli][fmt]") {
  CommandResult r = run_command({ACMETOOL_BINARY, "fmt", "-"}, kMessy);
  CHECK(r.exit_code == 1);
  CHECK(r.out == kFormatted);
  CHECK(r.err == "-:1" + kNotFormatted);
  r = run_command({ACMETOOL_BINARY, "fmt", "-"}, kFormatted);
  CHECK(r.exit_code == 0);
  CHECK(r.out == kFormatted);
}

TEST_CASE("fmt --diff prints a unified diff that patch applies, and exits 1", "[cli][fmt]") {
  const TempDir dir;
  const fs::path file = dir.path() / "Caddyfile";
  write_file(file, kMessy);
  const CommandResult r = run_acmetool({"fmt", "--diff", file.string()});
  CHECK(r.exit_code == 1);
  CHECK(r.err.empty());
  const std::string name = file.string();
  CHECK(r.out == "--- " + name + "\n+++ " + name +
                     "\n@@ -1,7 +1,5 @@\n-example.com\n-{\n-  root * /srv\n-\n+example.com {\n"
                     "+\troot * /srv\n \n-  file_server\n+\tfile_server\n }\n");
  const CommandResult patch = run_command({"patch", "-s", file.string()}, r.out);
  CHECK(patch.exit_code == 0);
  CHECK(read_text(file) == kFormatted);
}

TEST_CASE("fmt --diff prints nothing and exits 0 for a formatted file", "[cli][fmt]") {
  const TempDir dir;
  const fs::path file = dir.path() / "Caddyfile";
  write_file(file, kFormatted);
  const CommandResult r = run_acmetool({"fmt", "--diff", file.string()});
  CHECK(r.exit_code == 0);
  CHECK(r.out.empty());
  CHECK(r.err.empty());
}

TEST_CASE("fmt --overwrite rewrites the file, keeps its mode, prints nothing and exits 0", "[cli][fmt]") {
  const TempDir dir;
  const fs::path file = dir.path() / "Caddyfile";
  write_file(file, kMessy);
  REQUIRE(::chmod(file.c_str(), 0640) == 0);
  const CommandResult r = run_acmetool({"fmt", "--overwrite", file.string()});
  CHECK(r.exit_code == 0);
  CHECK(r.out.empty());
  CHECK(r.err.empty());
  CHECK(read_text(file) == kFormatted);
  CHECK(mode_of(file) == 0640);
  // No temp file is left next to it.
  CHECK(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()) == 1);
  // Now formatted: a plain check passes.
  CHECK(run_acmetool({"fmt", file.string()}).exit_code == 0);
}

TEST_CASE("fmt --overwrite through a symlink formats the target and keeps the link", "[cli][fmt]") {
  const TempDir dir;
  const fs::path target = dir.path() / "real.caddy";
  const fs::path link = dir.path() / "Caddyfile";
  write_file(target, kMessy);
  fs::create_symlink(target, link);
  CHECK(run_acmetool({"fmt", "--overwrite", link.string()}).exit_code == 0);
  CHECK(fs::is_symlink(link));
  CHECK(read_text(target) == kFormatted);
}

TEST_CASE("fmt usage errors exit 2 with one line", "[cli][fmt]") {
  CommandResult r = run_acmetool({"fmt", "--overwrite", "--diff", "Caddyfile"});
  CHECK(r.exit_code == 2);
  CHECK(r.err == "acmetool: fmt: --overwrite and --diff cannot be combined\n");
  r = run_acmetool({"fmt", "--overwrite", "-"});
  CHECK(r.exit_code == 2);
  CHECK(r.err == "acmetool: fmt: --overwrite needs a FILE, not standard input\n");
  r = run_acmetool({"fmt", "--bogus"});
  CHECK(r.exit_code == 2);
}

TEST_CASE("fmt on a missing file exits 1 with one line naming it", "[cli][fmt]") {
  const TempDir dir;
  const fs::path file = dir.path() / "nope";
  const CommandResult r = run_acmetool({"fmt", file.string()});
  CHECK(r.exit_code == 1);
  CHECK(r.out.empty());
  CHECK(r.err == "acmetool: reading " + file.string() + ": No such file or directory\n");
}
